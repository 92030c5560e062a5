/**
 * Redis engine benchmark: hotline server nodes sharing one Redis, beside one node on the
 * memory engine, over real sockets on 127.0.0.1.
 *
 *   node --import tsx bench/redis.ts [--quick] [--subscribers N] [--seconds S] [--rate R] [--no-pin]
 *
 * --quick          a short smoke run (1 s windows)
 * --subscribers N  subscribers of the benchmark channel, spread evenly over the nodes (default 60)
 * --seconds S      length of each counted window (default 3, 1 with --quick)
 * --rate R         publishes per second in the latency window (default 500)
 * --no-pin         do not pin processes with taskset
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
import { processCpuSeconds } from './lib/proc.js';
import { columnsOf, formatCount, formatNumber, formatTable } from './lib/table.js';
import { RedisNodeProcess } from '../test/support/redis-node.js';
import { RedisServer, redisServerInstalled } from '../test/support/redis-server.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    subscribers: { type: 'string', default: '60' },
    seconds: { type: 'string' },
    rate: { type: 'string', default: '500' },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});

const SUBSCRIBERS = Number(args.subscribers);
const SECONDS = Number(args.seconds ?? (args.quick ? 1 : 3));
const WARMUP_MS = args.quick ? 300 : 1_000;
const RATE = Number(args.rate);
const WINDOW = 32;
const PUBLISHERS = 6;

interface Setup {
  name: string;
  memory: boolean;
  nodes: number;
}

const SETUPS: Setup[] = [
  { name: 'memory engine, 1 node', memory: true, nodes: 1 },
  { name: 'redis engine, 1 node', memory: false, nodes: 1 },
  { name: 'redis engine, 2 nodes', memory: false, nodes: 2 },
  { name: 'redis engine, 3 nodes', memory: false, nodes: 3 },
];

interface Result {
  setup: Setup;
  deliveriesPerSecond: number;
  publishesPerSecond: number;
  nodeCpu: number;
  redisCpu: number;
  loadCpu: number;
  latencyDeliveries: number;
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

async function measure(setup: Setup, redis: RedisServer | null, pin: boolean, index: number): Promise<Result> {
  const nodes = await Promise.all(
    Array.from({ length: setup.nodes }, () =>
      RedisNodeProcess.start(setup.memory ? { memory: true } : { url: redis!.url, engine: {} }, pin ? 0 : undefined),
    ),
  );
  const ch = `bench-${index}`;
  try {
    const subscribers: Subscriber[] = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const node = nodes[i % nodes.length]!;
      const sub = new Subscriber(await open(node.url));
      const helper = new Publisher(sub.ws, ch);
      await helper.request((id) => `{"op":"sub","id":${id},"ch":"${ch}"}`);
      subscribers.push(sub);
    }
    const publishers = await Promise.all(
      Array.from({ length: PUBLISHERS }, async (_, i) => new Publisher(await open(nodes[i % nodes.length]!.url), ch)),
    );

    // Throughput: WINDOW publishes in flight per publisher, until told to stop.
    let running = true;
    const pumps = publishers.flatMap((publisher) =>
      Array.from({ length: WINDOW }, async () => {
        while (running) await publisher.publish();
      }),
    );
    await sleep(WARMUP_MS);
    const cpuPids = nodes.map((n) => n.child.pid!);
    const cpuStart = cpuPids.map((pid) => processCpuSeconds(pid));
    const redisStart = redis !== null ? processCpuSeconds(redis.pid!) : 0;
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
    const redisCpu = redis !== null ? (processCpuSeconds(redis.pid!) - redisStart) / elapsed : 0;
    const load = process.cpuUsage(loadStart);
    const loadCpu = (load.user + load.system) / 1e6 / elapsed;
    running = false;
    await Promise.all(pumps);
    // Let the last deliveries arrive.
    const expected = publishers.reduce((n, p) => n + p.acked, 0);
    const deadline = Date.now() + 10_000;
    while (subscribers.some((s) => s.last < expected) && Date.now() < deadline) await sleep(20);

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
    const total = publishers.reduce((n, p) => n + p.acked + p.errors, 0);
    const drainDeadline = Date.now() + 10_000;
    while (subscribers.some((s) => s.last < total) && Date.now() < drainDeadline) await sleep(20);
    const latencies = Float64Array.from(subscribers.flatMap((s) => s.latencies ?? [])).sort();

    const problems = subscribers.flatMap((s, i) => s.problems.map((p) => `subscriber ${i}: ${p}`));
    const errors = publishers.reduce((n, p) => n + p.errors, 0);
    if (errors > 0) problems.push(`${errors} publishes answered with err`);
    const short = subscribers.filter((s) => s.last !== total);
    if (short.length > 0) problems.push(`${short.length} subscribers stopped short of offset ${total} (at ${short[0]!.last})`);
    if (problems.length > 0) throw new Error(`${setup.name}: deliveries wrong:\n  ${problems.join('\n  ')}`);

    for (const s of subscribers) s.ws.terminate();
    for (const p of publishers) p.ws.terminate();
    return {
      setup,
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
    await Promise.all(nodes.map((node) => node.stop(2_000)));
  }
}

async function main(): Promise<void> {
  if (!redisServerInstalled()) {
    console.log('SKIPPED: redis-server not installed — the Redis benchmark did not run (apt-get install redis-server)');
    return;
  }
  const pin = canPin();
  if (pin) spawnSync('taskset', ['-p', '-c', '1', String(process.pid)]);
  const redis = await RedisServer.start(pin ? { cpu: 1 } : {});
  console.log(
    `Redis engine benchmark: ${SUBSCRIBERS} subscribers of one channel and ${PUBLISHERS} publishers, spread over the nodes; ` +
      `${SECONDS} s windows; latency at ${RATE} publishes/s. ` +
      (pin ? 'Nodes pinned to CPU 0; redis-server and the load generator to CPU 1.' : 'Processes not pinned.'),
  );
  const results: Result[] = [];
  try {
    for (const [index, setup] of SETUPS.entries()) {
      results.push(await measure(setup, setup.memory ? null : redis, pin, index));
    }
  } finally {
    await redis.close();
  }
  const columns = columnsOf('setup', 'deliveries/s', 'publishes/s', 'vs memory', 'p50 ms', 'p99 ms', 'nodes CPU', 'redis CPU', 'load CPU');
  const baseline = results[0]!.deliveriesPerSecond;
  const rows = results.map((r) => [
    r.setup.name,
    formatCount(r.deliveriesPerSecond),
    formatCount(r.publishesPerSecond),
    `${(r.deliveriesPerSecond / baseline).toFixed(2)}x`,
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
      '(nodes added up). All offsets checked contiguous, no repeats.',
  );
}

await main();
