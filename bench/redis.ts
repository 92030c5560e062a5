/**
 * Redis engine benchmark: hotline server nodes sharing one Redis, beside one node on the
 * memory engine, over real sockets on 127.0.0.1.
 *
 *   node --import tsx bench/redis.ts [--quick] [--subscribers N] [--seconds S] [--rate R] [--no-pin]
 *                                    [--cluster | --workers] [--channels C]
 *
 * --quick          a short smoke run (1 s windows)
 * --subscribers N  subscribers of the benchmark channel, spread evenly over the nodes (default 60)
 * --seconds S      length of each counted window (default 3, 1 with --quick)
 * --rate R         publishes per second in the latency window (default 500)
 * --no-pin         do not pin processes with taskset
 * --cluster        single Redis against a 3-primary, 3-replica Redis Cluster (2 nodes each,
 *                  C channels spread over the shards; redis CPU adds up all six servers)
 * --workers        `hotline serve --workers 1` against `--workers 2` on one Redis (the built
 *                  CLI: npm run build first), unpinned: the load generator shares the cores
 * --channels C     channels the subscribers and publishers are spread over (default 1; 6
 *                  with --cluster)
 * --idle N         with --workers: then N idle connections, each subscribed to one of 50
 *                  channels, and each worker's share of them and RSS growth (default 2000)
 *
 * Setups: the memory engine on 1 node; the Redis engine on 1, 2 and 3 nodes. Each node is a
 * child process (test/support/redis-node.ts: channelsEndpoint with the engine, behind
 * serve()), started fresh for its setup. With taskset available the nodes share CPU 0 and
 * redis-server and this process (the load generator: `ws` clients) CPU 1, so that on this
 * two-core machine adding nodes adds coordination work, not CPU: the table shows what
 * spreading over nodes costs, not how far it scales (see docs/scaling.md).
 *
 * Every setup has the same subscribers on one channel and the same 6 publisher connections,
 * spread evenly over the nodes (each publishing through its own node). Two counted windows
 * per setup:
 * - throughput: each publisher keeps 32 publishes in flight (a node carries out one
 *   connection's requests one after another, so this keeps each connection busy);
 *   deliveries/s counts the `msg`s all subscribers received in the window (and publishes/s
 *   the acknowledged publishes);
 * - latency: the publishers together send `--rate` publishes per second; each message carries
 *   its send time, and every delivery's publish-to-delivery time goes into p50/p99.
 * Every subscriber's offsets are checked to be contiguous and without repeats across the
 * whole run; any gap or repeat fails the benchmark.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { childrenOf, processCpuSeconds, processRssBytes } from './lib/proc.js';
import { columnsOf, formatCount, formatNumber, formatTable } from './lib/table.js';
import { readdirSync, readlinkSync } from 'node:fs';
import { startCli } from '../test/support/cli-server.js';
import { RedisCluster } from '../test/support/redis-cluster.js';
import { RedisNodeProcess } from '../test/support/redis-node.js';
import { RedisServer, redisServerInstalled } from '../test/support/redis-server.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    subscribers: { type: 'string', default: '60' },
    seconds: { type: 'string' },
    rate: { type: 'string', default: '500' },
    'no-pin': { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
    workers: { type: 'boolean', default: false },
    channels: { type: 'string' },
    idle: { type: 'string', default: '2000' },
  },
  strict: true,
});

const SUBSCRIBERS = Number(args.subscribers);
const SECONDS = Number(args.seconds ?? (args.quick ? 1 : 3));
const WARMUP_MS = args.quick ? 300 : 1_000;
const RATE = Number(args.rate);
const WINDOW = 32;
const PUBLISHERS = 6;
const CHANNELS = Number(args.channels ?? (args.cluster ? 6 : 1));
if (!Number.isInteger(CHANNELS) || CHANNELS < 1 || CHANNELS > PUBLISHERS) throw new Error(`--channels must be 1..${PUBLISHERS}: every channel needs a publisher`);
const MODE: 'nodes' | 'cluster' | 'workers' = args.cluster ? 'cluster' : args.workers ? 'workers' : 'nodes';

interface Setup {
  name: string;
  memory: boolean;
  nodes: number;
  /** The engine's Redis: one server, or the cluster. */
  cluster?: boolean;
  /** `hotline serve --workers N` (one server process of N workers) instead of nodes. */
  workers?: number;
}

const SETUPS: Setup[] =
  MODE === 'cluster'
    ? [
        { name: 'single redis, 2 nodes', memory: false, nodes: 2 },
        { name: '3-shard cluster, 2 nodes', memory: false, nodes: 2, cluster: true },
      ]
    : MODE === 'workers'
      ? [
          { name: 'serve --workers 1', memory: false, nodes: 1, workers: 1 },
          { name: 'serve --workers 2', memory: false, nodes: 1, workers: 2 },
        ]
      : [
          { name: 'memory engine, 1 node', memory: true, nodes: 1 },
          { name: 'redis engine, 1 node', memory: false, nodes: 1 },
          { name: 'redis engine, 2 nodes', memory: false, nodes: 2 },
          { name: 'redis engine, 3 nodes', memory: false, nodes: 3 },
        ];

/** What a setup runs: the URLs clients connect to, the server processes whose CPU counts. */
interface Target {
  urls: string[];
  pids(): number[];
  /** The processes that hold connections (a serve primary's workers; the nodes). */
  holders(): number[];
  stop(): Promise<void>;
}

/** Open sockets of a process: its connections (and a few of its own: Redis, IPC). */
function socketsOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    }).length;
  } catch {
    return 0;
  }
}

/**
 * Opens `count` idle connections, each subscribed to one of 50 channels, and reports how
 * they spread over the connection-holding processes and how much each one's RSS grew (no
 * forced GC in a serve process: an upper bound of what an idle subscriber costs).
 */
async function idleShare(target: Target, count: number): Promise<string> {
  const holders = target.holders();
  const before = holders.map((pid) => ({ sockets: socketsOf(pid), rss: processRssBytes(pid) }));
  const sockets: WebSocket[] = [];
  try {
    for (let i = 0; i < count; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, count - i) }, async (_, j) => {
          const ws = await open(target.urls[0]!);
          sockets.push(ws);
          await new Publisher(ws, '').request((id) => `{"op":"sub","id":${id},"ch":"idle-${(i + j) % 50}"}`);
        }),
      );
    }
    await sleep(500); // let the last subscriptions settle before reading /proc
    const rows = holders.map((pid, n) => {
      const held = socketsOf(pid) - before[n]!.sockets;
      const grown = processRssBytes(pid) - before[n]!.rss;
      return `  pid ${pid}: ${held} connections, RSS +${(grown / 2 ** 20).toFixed(1)} MiB (${held > 0 ? (grown / held / 1024).toFixed(1) : '-'} KiB each)`;
    });
    return `${count} idle subscribed connections:\n${rows.join('\n')}`;
  } finally {
    for (const ws of sockets) ws.terminate();
  }
}

/** Where the engine's Redis lives: its URL, and the redis-server processes (their CPU counts). */
interface Backend {
  url: string;
  pids: number[];
}

async function startTarget(setup: Setup, backend: Backend | null, pin: boolean): Promise<Target> {
  if (setup.workers !== undefined) {
    // info: the primary says when each worker is ready (connections log at open and close only, outside the windows).
    // The publishers are the load: no per-connection publish rate. Every client is on
    // 127.0.0.1: no per-address connection cap or rate (the idle step opens 2,000 at once).
    const server = await startCli(0, ['--workers', String(setup.workers), '--redis', backend!.url, '--max-connections', '0', '--max-connections-per-address', '0', '--connection-rate-per-address', 'off', '--publish-rate', '1000000:1000000'], { logLevel: 'info', startTimeout: 60_000 });
    const deadline = Date.now() + 60_000;
    while ((server.output().match(/"event":"worker_ready"/g) ?? []).length < setup.workers) {
      if (setup.workers === 1 && childrenOf(server.child.pid!).length === 0 && /listening on/.test(server.output())) break;
      if (Date.now() > deadline) throw new Error(`${setup.name}: the workers did not get ready`);
      await sleep(50);
    }
    const primary = server.child.pid!;
    const workers = (): number[] => (setup.workers! > 1 ? childrenOf(primary) : [primary]);
    return { urls: [`${server.ws}/ws`], pids: () => [primary, ...childrenOf(primary)], holders: workers, stop: async () => void (await server.stop('SIGTERM')) };
  }
  const nodes = await Promise.all(
    Array.from({ length: setup.nodes }, () =>
      RedisNodeProcess.start(setup.memory ? { memory: true } : { url: backend!.url, engine: setup.cluster ? { cluster: true } : {} }, pin ? 0 : undefined),
    ),
  );
  return { urls: nodes.map((n) => n.url), pids: () => nodes.map((n) => n.child.pid!), holders: () => nodes.map((n) => n.child.pid!), stop: async () => void (await Promise.all(nodes.map((node) => node.stop(2_000)))) };
}

interface Result {
  setup: Setup;
  /** Deliveries per CPU-second of the server processes (nodes or workers and their primary). */
  deliveriesPerServerCpuSecond: number;
  deliveriesPerSecond: number;
  publishesPerSecond: number;
  nodeCpu: number;
  redisCpu: number;
  loadCpu: number;
  latencyDeliveries: number;
  /** --workers: how idle connections spread over the workers, and their RSS. */
  idle?: string;
  p50: number;
  p99: number;
}

function canPin(): boolean {
  if (args['no-pin'] || cpus().length < 2) return false;
  const result = spawnSync('taskset', ['-c', '1', 'true']);
  return result.error === undefined && result.status === 0;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A subscriber: counts deliveries, checks offsets, records latencies while asked to. */
class Subscriber {
  deliveries = 0;
  last = 0;
  problems: string[] = [];
  latencies: number[] | null = null;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (raw: Buffer) => {
      const message = JSON.parse(raw.toString()) as { op: string; offset?: number; data?: number };
      if (message.op !== 'msg') return;
      const now = performance.now();
      this.deliveries++;
      if (message.offset !== this.last + 1 && this.problems.length < 5) {
        this.problems.push(`offset ${message.offset} after ${this.last}`);
      }
      this.last = message.offset!;
      if (this.latencies !== null) this.latencies.push(now - message.data!);
    });
  }
}

/** A publisher connection: requests with ids, answers counted. */
class Publisher {
  private nextId = 1;
  private readonly waiting = new Map<number, () => void>();
  acked = 0;
  errors = 0;

  constructor(
    readonly ws: WebSocket,
    readonly ch: string,
  ) {
    ws.on('message', (raw: Buffer) => {
      const message = JSON.parse(raw.toString()) as { op: string; id?: number };
      if (message.id === undefined) return;
      if (message.op === 'ok') this.acked++;
      else this.errors++;
      const settle = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      settle?.();
    });
  }

  publish(): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(`{"op":"pub","id":${id},"ch":"${this.ch}","data":${performance.now()}}`);
    });
  }

  request(text: (id: number) => string): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(text(id));
    });
  }
}

async function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, ['hotline.v1'], { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

async function measure(setup: Setup, backend: Backend | null, pin: boolean, index: number): Promise<Result> {
  const target = await startTarget(setup, backend, pin);
  const urls = target.urls;
  const channelOf = (i: number): string => `bench-${index}-${i % CHANNELS}`;
  try {
    const subscribers: Array<Subscriber & { ch?: string }> = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const sub: Subscriber & { ch?: string } = new Subscriber(await open(urls[i % urls.length]!));
      sub.ch = channelOf(i);
      const helper = new Publisher(sub.ws, sub.ch);
      await helper.request((id) => `{"op":"sub","id":${id},"ch":"${sub.ch}"}`);
      subscribers.push(sub);
    }
    const publishers = await Promise.all(Array.from({ length: PUBLISHERS }, async (_, i) => new Publisher(await open(urls[i % urls.length]!), channelOf(i))));
    /** Publishes answered on a channel: the offset its subscribers must reach. */
    const sentTo = (ch: string): number => publishers.filter((p) => p.ch === ch).reduce((n, p) => n + p.acked + p.errors, 0);

    // Throughput: WINDOW publishes in flight per publisher, until told to stop.
    let running = true;
    const pumps = publishers.flatMap((publisher) =>
      Array.from({ length: WINDOW }, async () => {
        while (running) await publisher.publish();
      }),
    );
    await sleep(WARMUP_MS);
    const cpuPids = target.pids();
    const cpuStart = cpuPids.map((pid) => processCpuSeconds(pid));
    const redisPids = backend?.pids ?? [];
    const redisStart = redisPids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
    const loadStart = process.cpuUsage();
    const deliveredStart = subscribers.reduce((n, s) => n + s.deliveries, 0);
    const ackedStart = publishers.reduce((n, p) => n + p.acked, 0);
    const t0 = performance.now();
    await sleep(SECONDS * 1_000);
    if (process.env.BENCH_TRACE === '1') console.error(setup.name, 'acked in window', publishers.reduce((n, p) => n + p.acked, 0) - ackedStart);
    const elapsed = (performance.now() - t0) / 1_000;
    const delivered = subscribers.reduce((n, s) => n + s.deliveries, 0) - deliveredStart;
    const acked = publishers.reduce((n, p) => n + p.acked, 0) - ackedStart;
    const nodeCpu = cpuPids.reduce((sum, pid, i) => sum + processCpuSeconds(pid) - cpuStart[i]!, 0) / elapsed;
    const redisCpu = (redisPids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0) - redisStart) / elapsed;
    const load = process.cpuUsage(loadStart);
    const loadCpu = (load.user + load.system) / 1e6 / elapsed;
    running = false;
    await Promise.all(pumps);
    // Let the last deliveries arrive.
    const deadline = Date.now() + 10_000;
    while (subscribers.some((s) => s.last < sentTo(s.ch!)) && Date.now() < deadline) await sleep(20);

    // Latency: a steady rate, spread over the publishers.
    for (const s of subscribers) s.latencies = [];
    const perPublisherInterval = (1_000 * publishers.length) / RATE;
    let latencyRunning = true;
    const inFlight: Promise<void>[] = [];
    const senders = publishers.map(async (publisher, i) => {
      await sleep((perPublisherInterval * i) / publishers.length);
      let next = performance.now();
      while (latencyRunning) {
        inFlight.push(publisher.publish());
        next += perPublisherInterval;
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
      }
    });
    await sleep(SECONDS * 1_000);
    latencyRunning = false;
    await Promise.all(senders);
    await Promise.all(inFlight);
    const drainDeadline = Date.now() + 10_000;
    while (subscribers.some((s) => s.last < sentTo(s.ch!)) && Date.now() < drainDeadline) await sleep(20);
    const latencies = Float64Array.from(subscribers.flatMap((s) => s.latencies ?? [])).sort();

    const problems = subscribers.flatMap((s, i) => s.problems.map((p) => `subscriber ${i}: ${p}`));
    const errors = publishers.reduce((n, p) => n + p.errors, 0);
    if (errors > 0) problems.push(`${errors} publishes answered with err`);
    const short = subscribers.filter((s) => s.last !== sentTo(s.ch!));
    if (short.length > 0) problems.push(`${short.length} subscribers stopped short of their channel's last offset (${short[0]!.ch}: ${short[0]!.last} of ${sentTo(short[0]!.ch!)})`);
    if (problems.length > 0) throw new Error(`${setup.name}: deliveries wrong:\n  ${problems.join('\n  ')}`);

    for (const s of subscribers) s.ws.terminate();
    for (const p of publishers) p.ws.terminate();
    const idle = setup.workers !== undefined ? await idleShare(target, Number(args.idle)) : undefined;
    return {
      idle,
      setup,
      deliveriesPerServerCpuSecond: delivered / elapsed / nodeCpu,
      deliveriesPerSecond: delivered / elapsed,
      publishesPerSecond: acked / elapsed,
      nodeCpu,
      redisCpu,
      loadCpu,
      latencyDeliveries: latencies.length,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
    };
  } finally {
    await target.stop();
  }
}

async function main(): Promise<void> {
  if (!redisServerInstalled()) {
    console.log('SKIPPED: redis-server not installed — the Redis benchmark did not run (apt-get install redis-server)');
    return;
  }
  // --workers measures what a second core buys: nothing is pinned.
  const pin = MODE !== 'workers' && canPin();
  if (pin) spawnSync('taskset', ['-p', '-c', '1', String(process.pid)]);
  const redis = await RedisServer.start(pin ? { cpu: 1 } : {});
  const cluster = MODE === 'cluster' ? await RedisCluster.start(pin ? { cpu: 1 } : {}) : null;
  const single: Backend = { url: redis.url, pids: [redis.pid!] };
  const sharded: Backend | null = cluster && { url: cluster.url, pids: cluster.nodes.map((n) => n.pid!) };
  console.log(
    `Redis engine benchmark: ${SUBSCRIBERS} subscribers of ${CHANNELS === 1 ? 'one channel' : `${CHANNELS} channels`} and ${PUBLISHERS} publishers, spread over the nodes; ` +
      `${SECONDS} s windows; latency at ${RATE} publishes/s. ` +
      (pin ? 'Nodes pinned to CPU 0; redis-server and the load generator to CPU 1.' : 'Processes not pinned (the load generator shares the cores).'),
  );
  const results: Result[] = [];
  try {
    for (const [index, setup] of SETUPS.entries()) {
      results.push(await measure(setup, setup.memory ? null : setup.cluster ? sharded : single, pin, index));
    }
  } finally {
    await redis.close();
    await cluster?.close();
  }
  const columns = columnsOf('setup', 'deliveries/s', 'publishes/s', MODE === 'nodes' ? 'vs memory' : 'vs first', 'deliveries/server CPU-s', 'p50 ms', 'p99 ms', 'server CPU', 'redis CPU', 'load CPU');
  const baseline = results[0]!.deliveriesPerSecond;
  const rows = results.map((r) => [
    r.setup.name,
    formatCount(r.deliveriesPerSecond),
    formatCount(r.publishesPerSecond),
    `${(r.deliveriesPerSecond / baseline).toFixed(2)}x`,
    formatCount(r.deliveriesPerServerCpuSecond),
    formatNumber(r.p50),
    formatNumber(r.p99),
    `${Math.round(r.nodeCpu * 100)}%`,
    r.setup.memory ? '-' : `${Math.round(r.redisCpu * 100)}%`,
    `${Math.round(r.loadCpu * 100)}%`,
  ]);
  console.log('');
  console.log(formatTable(columns, rows));
  console.log('');
  console.log(
    `deliveries/s: msgs received by all subscribers per second with ${WINDOW} publishes in flight per publisher; ` +
      'p50/p99: publish-to-delivery time at the fixed rate; CPU: share of one core over the throughput window ' +
      '(server: the nodes, or the serve primary and its workers, added up; redis: every redis-server). ' +
      'All offsets checked contiguous, no repeats, every subscriber at its channel\'s last offset.',
  );
  for (const r of results) if (r.idle !== undefined) console.log(`\n${r.setup.name}: ${r.idle}`);
}

await main();
