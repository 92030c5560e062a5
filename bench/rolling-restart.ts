/**
 * A rolling deploy, measured: SDK clients behind a TCP balancer in front of 3 `hotline serve`
 * nodes sharing one Redis; the nodes are restarted one at a time (SIGTERM, wait for the exit,
 * start again on the same port, wait for it to listen), while one publisher keeps publishing.
 *
 *   node --import tsx bench/rolling-restart.ts [--quick] [--clients N] [--window MS]
 *
 * --quick       200 clients instead of 1,000
 * --clients N   SDK clients (default 1000), spread over the nodes by the balancer
 * --window MS   the reconnect window of the hinted run (default 5000, the server's default)
 *
 * Two runs: the nodes with `--reconnect-window 0` (no hint: the SDK's own backoff, a random
 * wait up to 1 s on the first attempt) and with the window. For each: how long each moved
 * client was away (close to open), and the busiest 100 ms of reconnects the other nodes took.
 *
 * Checked, and failing loudly otherwise: every client came back after each restart, every
 * channel subscription recovered (`recovered: true` after each reconnect), and every client
 * received every message the publisher published, once and in order.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { connect, type HotlineClient } from '../src/client-node.js';
import { startCli, type CliServer } from '../test/support/cli-server.js';
import { RedisServer, redisServerInstalled } from '../test/support/redis-server.js';
import { TcpBalancer } from '../test/support/tcp-balancer.js';
import { waitFor } from '../test/support/wait.js';
import { columnsOf, formatTable } from './lib/table.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    clients: { type: 'string' },
    window: { type: 'string', default: '5000' },
  },
  strict: true,
});
const CLIENTS = Number(args.clients ?? (args.quick ? 200 : 1000));
const WINDOW = Number(args.window);
const NODES = 3;
const CHANNEL = 'deploy';
/**
 * One publish this often during the restarts: each must reach every client once, in order.
 * Slow enough that what a client misses while away (up to the window plus a restart) stays
 * within the Redis engine's history (100 messages), so that it can be recovered.
 */
const PUBLISH_EVERY_MS = 100;

class BenchFailure extends Error {}

interface Watched {
  client: HotlineClient;
  /** When its connection closed, while it is away. */
  closedAt: number | null;
  /** Each absence (close to open), ms. */
  away: number[];
  /** The sequence numbers received, to check once and in order. */
  last: number;
  received: number;
  notRecovered: number;
}

interface RunResult {
  label: string;
  away: number[];
  peakPer100ms: number;
  moved: number;
  messages: number;
}

async function startNode(port: number, redis: string, window: number): Promise<CliServer> {
  return startCli(port, ['--redis', redis, '--reconnect-window', String(window), '--log-level', 'warn', '--max-connections', String(CLIENTS + 100), '--max-connections-per-address', '0', '--connection-rate-per-address', '0']);
}

async function run(label: string, window: number, redis: string): Promise<RunResult> {
  const nodes: CliServer[] = [];
  for (let i = 0; i < NODES; i++) nodes.push(await startNode(0, redis, window));
  const ports = nodes.map((node) => node.port);
  const balancer = await TcpBalancer.start(ports);
  const url = `ws://127.0.0.1:${balancer.port}/ws`;
  const watched: Watched[] = [];
  const opens: number[] = [];
  /** Messages that came out of order, or twice: a gap or a repeat fails the run. */
  const disorder: string[] = [];
  let publisher: HotlineClient | null = null;
  let publishing: NodeJS.Timeout | null = null;
  try {
    for (let i = 0; i < CLIENTS; i++) {
      const client = connect(url, { pingInterval: 0 });
      const entry: Watched = { client, closedAt: null, away: [], last: 0, received: 0, notRecovered: 0 };
      client.on('close', () => {
        entry.closedAt ??= performance.now();
      });
      client.on('state', (state) => {
        if (state !== 'open' || entry.closedAt === null) return;
        const now = performance.now();
        entry.away.push(now - entry.closedAt);
        opens.push(now);
        entry.closedAt = null;
      });
      const channel = client.channel(CHANNEL);
      channel.on('message', (data) => {
        const seq = (data as { seq: number }).seq;
        // Every client subscribed before the first publish: it must see 1, 2, 3, ... exactly.
        if (seq !== entry.last + 1) disorder.push(`client ${i}: message ${seq} after ${entry.last}`);
        entry.last = seq;
        entry.received++;
      });
      channel.on('subscribed', (event) => {
        if (!event.first && !event.recovered) entry.notRecovered++;
      });
      channel.subscribe().catch((error: unknown) => disorder.push(`client ${i}: subscribe failed: ${String(error)}`));
      watched.push(entry);
    }
    await waitFor(() => watched.every((w) => w.client.state === 'open' && w.client.channel(CHANNEL).state === 'subscribed'), 'every client subscribed', { ms: 60_000 });

    publisher = connect(url, { pingInterval: 0 });
    let seq = 0;
    let inFlight: Promise<unknown> = Promise.resolve();
    publishing = setInterval(() => {
      seq++;
      const data = { seq };
      // One at a time, in order: the SDK queues publishes while it reconnects and sends them again with their key.
      inFlight = inFlight.then(() => publisher!.channel(CHANNEL).publish(data)).catch((error: unknown) => {
        throw new BenchFailure(`publish ${data.seq}: ${String(error)}`);
      });
    }, PUBLISH_EVERY_MS);

    const restartStart = performance.now();
    for (let i = 0; i < NODES; i++) {
      const exit = await nodes[i]!.stop('SIGTERM');
      if (exit !== 0) throw new BenchFailure(`node ${i + 1} exited with ${exit}`);
      nodes[i] = await startNode(ports[i]!, redis, window);
      await waitFor(() => watched.every((w) => w.closedAt === null), `every client back after restarting node ${i + 1}`, { ms: 60_000 });
    }
    const restartSeconds = (performance.now() - restartStart) / 1000;
    clearInterval(publishing);
    publishing = null;
    await inFlight;
    await waitFor(() => watched.every((w) => w.last === seq), `every client got all ${seq} messages`, { ms: 30_000 });

    // A resubscription told `recovered: false` is not a loss (the client is told), but it is not what this measures.
    const notRecovered = watched.reduce((n, w) => n + w.notRecovered, 0);
    if (notRecovered > 0) throw new BenchFailure(`${notRecovered} resubscriptions were told recovered: false (more missed than history holds?)`);
    if (disorder.length > 0) throw new BenchFailure(`${disorder.length} messages out of order or repeated, e.g. ${disorder[0]}`);
    const away = watched.flatMap((w) => w.away).sort((a, b) => a - b);
    const buckets = new Map<number, number>();
    for (const at of opens) buckets.set(Math.floor(at / 100), (buckets.get(Math.floor(at / 100)) ?? 0) + 1);
    console.log(`  ${label}: ${NODES} nodes restarted in ${restartSeconds.toFixed(1)} s; ${seq} messages, each to all ${CLIENTS} clients once and in order; every resubscription recovered`);
    return { label, away, peakPer100ms: Math.max(...buckets.values()), moved: away.length, messages: seq };
  } finally {
    if (publishing !== null) clearInterval(publishing);
    publisher?.close();
    for (const w of watched) w.client.close();
    await balancer.close();
    for (const node of nodes) await node.stop('SIGKILL');
  }
}

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function main(): Promise<void> {
  if (!redisServerInstalled()) {
    console.log('rolling-restart: SKIPPED, redis-server is not installed (apt-get install redis-server)');
    return;
  }
  const redis = await RedisServer.start();
  try {
    console.log(`rolling restart: ${CLIENTS} SDK clients, ${NODES} hotline serve nodes on one Redis behind a TCP balancer, one publish every ${PUBLISH_EVERY_MS} ms`);
    const results = [await run('no hint (SDK backoff)', 0, redis.url), await run(`reconnect window ${WINDOW} ms`, WINDOW, redis.url)];
    const columns = columnsOf('nodes restarted one at a time', 'reconnects', 'away p50', 'p90', 'p99', 'max', 'busiest 100 ms');
    const ms = (n: number): string => `${n.toFixed(0)} ms`;
    const rows = results.map((r) => [r.label, String(r.moved), ms(quantile(r.away, 0.5)), ms(quantile(r.away, 0.9)), ms(quantile(r.away, 0.99)), ms(r.away[r.away.length - 1]!), `${r.peakPer100ms} reconnects`]);
    console.log('');
    console.log(formatTable(columns, rows));
    console.log('  away: from a client\'s close event to its next open; busiest 100 ms: reconnects the remaining nodes took in the busiest 100 ms');
  } finally {
    await redis.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof BenchFailure ? `rolling-restart: FAILED: ${error.message}` : error);
  process.exit(1);
});
