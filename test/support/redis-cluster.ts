// A real Redis Cluster for one test file: 3 primaries and 3 replicas, each a `redis-server
// --cluster-enabled yes` on a free port in a temporary directory, joined with `redis-cli
// --cluster create … --cluster-replicas 1`. Ready once every node reports `cluster_state:ok`
// and knows all six. A test may fail a primary over (kill it: its replica is promoted) and
// move a slot between primaries.
//
// Needs redis-server (7+: sharded pub/sub) and redis-cli; without them `clusterInstalled()`
// is false and the suites skip loudly (under CI they fail: .ci/run installs both).
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RedisServer } from './redis-server.js';

const run = promisify(execFile);

let installed: boolean | undefined;

/** Whether redis-server and redis-cli can be run here. */
export function clusterInstalled(): boolean {
  if (installed === undefined) {
    const cli = spawnSync('redis-cli', ['--version'], { encoding: 'utf8' });
    const server = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    const version = /v=(\d+)\./.exec(server.stdout ?? '');
    installed = cli.status === 0 && server.status === 0 && version !== null && Number(version[1]) >= 7;
  }
  return installed;
}

/** Stops the test file loudly when the cluster cannot be built; under CI a missing piece fails. */
export function skipWithoutCluster(what: string): boolean {
  if (clusterInstalled()) return false;
  if (process.env.CI === 'true') throw new Error(`redis-server 7+ and redis-cli are needed: CI must run ${what} (.ci/run installs them)`);
  process.stderr.write(`\n*** SKIPPED: redis-server 7+ or redis-cli not installed — ${what} did not run (apt-get install redis-server redis-tools) ***\n\n`);
  return true;
}

/** Node timeout of the cluster (ms): how long until a silent primary is failed over. */
export const CLUSTER_NODE_TIMEOUT = 1_000;

export class RedisCluster {
  private constructor(
    readonly nodes: RedisServer[],
    private readonly dir: string,
  ) {}

  static async start(options: { cpu?: number } = {}): Promise<RedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'hotline-cluster-'));
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        nodes.push(
          await RedisServer.start({
            cpu: options.cpu,
            // Each server has its own directory (RedisServer.start makes one): nodes.conf lives there.
            args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT), '--cluster-require-full-coverage', 'no'],
          }),
        );
      }
      const cluster = new RedisCluster(nodes, dir);
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
      await cluster.settled(30_000);
      return cluster;
    } catch (error) {
      await Promise.all(nodes.map((node) => node.close()));
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Seed URLs, comma-separated, as `--redis-cluster` takes them. */
  get url(): string {
    return this.nodes.map((node) => `redis://127.0.0.1:${node.port}`).join(',');
  }

  /** `redis-cli -p PORT ARGS…`, its output trimmed. */
  async cli(port: number, ...args: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', ['-p', String(port), ...args], { timeout: 10_000 });
    return stdout.trim();
  }

  /** The running nodes' view: `{ port, id, primary, slots }` from CLUSTER NODES. */
  async topology(): Promise<Array<{ port: number; id: string; primary: boolean; failed: boolean; slots: string[] }>> {
    const live = this.nodes.find((node) => node.running)!;
    const text = await this.cli(live.port, 'cluster', 'nodes');
    return text.split('\n').map((line) => {
      const [id, address, flags, , , , , , ...slots] = line.split(' ');
      return { id: id!, port: Number(/:(\d+)@/.exec(address!)![1]), primary: flags!.includes('master'), failed: /fail/.test(flags!), slots };
    });
  }

  /** The primary's port that serves a key's slot. */
  async primaryOf(key: string): Promise<number> {
    const live = this.nodes.find((node) => node.running)!;
    const slot = Number(await this.cli(live.port, 'cluster', 'keyslot', key));
    for (const node of await this.topology()) {
      if (!node.primary || node.failed) continue;
      for (const range of node.slots) {
        const [from, to = from] = range.split('-').map(Number);
        if (slot >= from! && slot <= to!) return node.port;
      }
    }
    throw new Error(`no primary serves slot ${slot}`);
  }

  /** Waits until every running node says the cluster is ok and agrees on the primaries. */
  async settled(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      let ok = true;
      for (const node of this.nodes.filter((n) => n.running)) {
        try {
          const info = await this.cli(node.port, 'cluster', 'info');
          if (!info.includes('cluster_state:ok') || !info.includes(`cluster_known_nodes:${this.nodes.length}`)) ok = false;
        } catch {
          ok = false;
        }
      }
      if (ok) {
        const primaries = (await this.topology()).filter((n) => n.primary && !n.failed && n.slots.length > 0);
        if (primaries.length === 3) return;
      }
      if (Date.now() > deadline) throw new Error('the Redis Cluster did not settle');
      await new Promise((resolve) => setTimeout(resolve, 100)); // polling redis-cli: no event to wait on
    }
  }

  /** Kills a primary (SIGKILL) and resolves once its replica has taken over its slots. */
  async killPrimary(port: number, ms = 20_000): Promise<void> {
    const victim = this.nodes.find((node) => node.port === port)!;
    const before = await this.topology();
    const id = before.find((n) => n.port === port)!.id;
    const replica = (await this.cli(port, 'cluster', 'replicas', id)).split('\n')[0]!;
    const replicaPort = Number(/:(\d+)@/.exec(replica)![1]);
    await victim.kill();
    const deadline = Date.now() + ms;
    for (;;) {
      const info = await this.cli(replicaPort, 'role').catch(() => '');
      if (info.startsWith('master')) return;
      if (Date.now() > deadline) throw new Error(`the replica on ${replicaPort} was not promoted`);
      await new Promise((resolve) => setTimeout(resolve, 50)); // polling redis-cli: no event to wait on
    }
  }

  /**
   * Moves one slot from its primary to another, the way `redis-cli --cluster reshard` does:
   * IMPORTING / MIGRATING, MIGRATE of its keys, then SETSLOT NODE on both and the rest.
   */
  async moveSlot(slot: number, toPort: number): Promise<void> {
    const topology = await this.topology();
    const owner = topology.find((n) => n.primary && !n.failed && n.slots.some((range) => {
      const [from, to = from] = range.split('-').map(Number);
      return slot >= from! && slot <= to!;
    }))!;
    const target = topology.find((n) => n.port === toPort)!;
    await this.cli(target.port, 'cluster', 'setslot', String(slot), 'importing', owner.id);
    await this.cli(owner.port, 'cluster', 'setslot', String(slot), 'migrating', target.id);
    for (;;) {
      const keys = (await this.cli(owner.port, 'cluster', 'getkeysinslot', String(slot), '100')).split('\n').filter((k) => k !== '');
      if (keys.length === 0) break;
      await this.cli(owner.port, 'migrate', '127.0.0.1', String(target.port), '', '0', '5000', 'keys', ...keys);
    }
    for (const node of topology.filter((n) => n.primary && !n.failed)) await this.cli(node.port, 'cluster', 'setslot', String(slot), 'node', target.id);
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.close()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
