/**
 * permessage-deflate benchmark (RFC 7692): hotline's Node server beside a `ws` server, both
 * with compression on, over real sockets on 127.0.0.1, in the manner of bench/server.ts.
 *
 *   node --import tsx bench/deflate.ts [--quick] [--only NAME] [--rounds N] [--samples] [--sleep]
 *                                      [--kinds hotline,ws-bufferutil,ws]
 *                                      [--profile DIR] [--profile-kinds hotline,ws-bufferutil]
 *
 * --quick          a short smoke run (one round, short windows, 2,000 connections for memory)
 * --only NAME      only the scenarios whose group or name contains NAME (case-insensitive),
 *                  e.g. "chat", "threshold 0", "document", "memory"
 * --rounds N       rounds per scenario (default 3, 1 with --quick)
 * --samples        also print every round's values, CPU shares and checks
 * --sleep          let the load generator sleep in epoll between events (see bench/server.ts)
 * --kinds LIST     the servers to measure (default hotline,ws-bufferutil: ws as deployed with
 *                  bufferutil installed; 'ws' is ws with its plain JavaScript masking)
 * --profile DIR    profile the servers' main threads over each counted window, as
 *                  bench/server.ts does (summarise with bench/lib/profile-summary.ts);
 *                  --profile-kinds picks whose (default hotline)
 *
 * Servers: hotline through `serve` with endpoint option `perMessageDeflate: { threshold }`;
 * ws as `new WebSocketServer({ perMessageDeflate: { threshold } })`; everything else at each
 * one's defaults (bench/lib/server-main.ts --deflate-threshold). Each runs alone in a fresh
 * process pinned to CPU 0, one per measurement, with Node's default flags; the load
 * generator (bench/lib/load-main.ts) is one process pinned to CPU 1.
 *
 * The load generator offers `permessage-deflate; client_no_context_takeover;
 * client_max_window_bits` and fails unless the server accepts it. Having promised to
 * compress every message on its own, it can send pre-encoded (compressed, masked) frames
 * over and over. It cycles through distinct realistic messages (bench/lib/deflate-payloads.ts),
 * so that a server compressing with context takeover does not just echo back-references
 * to the previous copy of the same message. A client message is sent compressed when it
 * has at least the servers' threshold of bytes, as a client with the same setting would.
 *
 * Replies are counted by their frame headers, whatever their length and RSV1 bit, adding
 * up wire bytes (frame headers and payloads; not TCP/IP) over the counted window. The first
 * replies of every connection in every measurement are checked in full against what was
 * sent: uncompressed ones byte for byte, compressed ones after inflating them with zlib,
 * each on its own when the server answered server_no_context_takeover, else through one
 * long-lived streaming inflater per connection. Any difference fails the run.
 *
 * Rounds interleave the servers (their order rotates per round and scenario); values are
 * medians over rounds, ratios medians of per-round ratios. A throughput row whose server
 * was busy less than 90% of the window is a lower bound (≥), as in bench/server.ts.
 *
 * Scenarios:
 * - chat: echo of ~150 B JSON chat messages, 100 connections x 8 in flight, with the
 *   servers' default threshold (1024 B) and with threshold 0.
 * - document: echo of 64 KiB JSON documents (they compress ~6x), 100 connections x 1 and x 4.
 * - memory: RSS growth per connection at 10,000 connections after forced GC, each
 *   connection having negotiated compression and echoed one compressed 2 KiB JSON message.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkTaskset, killAllChildren, LineChild } from './lib/children.js';
import { deflateAlone } from './lib/deflate-frames.js';
import { deflatePayloads } from './lib/deflate-payloads.js';
import type { DeflateMessages, Job, JobAnswer, Timed, WindowEvent } from './lib/load-jobs.js';
import { processRssBytes } from './lib/proc.js';
import { median, medianRatio, rotate, Samples } from './lib/stats.js';
import { formatCount, formatNumber, formatRatio, formatTable, type Column } from './lib/table.js';

const here = dirname(fileURLToPath(import.meta.url));
const SERVER_MAIN = join(here, 'lib', 'server-main.ts');
const LOAD_MAIN = join(here, 'lib', 'load-main.ts');
const SERVER_CPU = 0;
const LOAD_CPU = 1;
/** A throughput measurement whose server was less busy than this is a lower bound. */
const BUSY_THRESHOLD = 0.9;
/** Both ws and hotline compress messages from this size on by default. */
const DEFAULT_THRESHOLD = 1024;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
    samples: { type: 'boolean', default: false },
    sleep: { type: 'boolean', default: false },
    kinds: { type: 'string', default: 'hotline,ws-bufferutil' },
    profile: { type: 'string' },
    'profile-kinds': { type: 'string', default: 'hotline' },
  },
});
const QUICK = args.quick === true;
const ROUNDS = args.rounds !== undefined ? Number(args.rounds) : QUICK ? 1 : 3;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error('--rounds must be a positive integer');
const WARMUP_MS = QUICK ? 300 : 700;
const MEASURE_MS = QUICK ? 400 : 1500;
const MEMORY_CONNECTIONS = QUICK ? 2_000 : 10_000;
const SPIN = args.sleep !== true;
const PROFILE_DIR = args.profile !== undefined ? resolve(args.profile) : null;
const PROFILE_KINDS = new Set((args['profile-kinds'] ?? '').split(',').map((k) => k.trim()));

type Kind = 'hotline' | 'ws' | 'ws-bufferutil';
const ALL_KINDS: readonly Kind[] = ['hotline', 'ws', 'ws-bufferutil'];
const KINDS: readonly Kind[] = (args.kinds ?? '').split(',').map((k) => {
  const kind = k.trim() as Kind;
  if (!ALL_KINDS.includes(kind)) throw new Error(`--kinds: unknown kind '${k}' (${ALL_KINDS.join(', ')})`);
  return kind;
});
if (!KINDS.includes('hotline') || KINDS.length < 2) throw new Error('--kinds must name hotline and at least one ws kind');
const OTHERS = KINDS.filter((kind) => kind !== 'hotline');
const SHORT: Record<Kind, string> = { hotline: 'hotline', ws: 'ws', 'ws-bufferutil': 'ws+bu' };

class BenchFailure extends Error {
  override name = 'BenchFailure';
}

// --------------------------------------------------------------------------------------
// processes (as in bench/server.ts)

function serverEnv(kind: Kind): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.GLIBC_TUNABLES;
  delete env.WS_NO_BUFFER_UTIL;
  if (kind === 'ws') env.WS_NO_BUFFER_UTIL = '1';
  return env;
}

interface Server {
  child: LineChild;
  kind: Kind;
  port: number;
  pid: number;
  profiling: boolean;
}

function profileWindow(server: Server): (phase: WindowEvent['phase']) => void {
  return (phase) => {
    if (server.profiling) server.child.send(phase === 'start' ? 'profile-start' : 'profile-stop');
  };
}

async function startServer(kind: Kind, threshold: number, nodeFlags: readonly string[], label: string): Promise<Server> {
  const profile =
    PROFILE_DIR !== null && PROFILE_KINDS.has(kind) ? ['--profile', join(PROFILE_DIR, `${kind}-${label}.cpuprofile`)] : [];
  const child = new LineChild(
    `${kind} server`,
    SERVER_CPU,
    [...nodeFlags, '--import', 'tsx', SERVER_MAIN, kind, 'echo', '--deflate-threshold', String(threshold), ...profile],
    serverEnv(kind),
  );
  try {
    const line = await child.nextLine(30_000, 'start');
    const [word, port, pid, masking] = line.split(' ');
    if (word !== 'ready') throw new BenchFailure(`${kind} server: unexpected first line '${line}'`);
    const expectedMasking = kind === 'hotline' ? 'none' : kind === 'ws' ? 'js' : 'bufferutil';
    if (masking !== expectedMasking) throw new BenchFailure(`${kind} server masks with '${masking}'`);
    if (Number(pid) !== child.pid) throw new BenchFailure(`${kind} server: pid ${pid}, expected ${child.pid} (taskset did not exec?)`);
    return { child, kind, port: Number(port), pid: child.pid, profiling: profile.length > 0 };
  } catch (error) {
    await child.stop(null, 1_000);
    throw error;
  }
}

async function stopServer(server: Server): Promise<void> {
  await server.child.stop('exit', 10_000);
}

class LoadGenerator {
  private readonly child: LineChild;
  private nextId = 1;

  private constructor(child: LineChild) {
    this.child = child;
  }

  static async start(): Promise<LoadGenerator> {
    const child = new LineChild('load generator', LOAD_CPU, ['--import', 'tsx', LOAD_MAIN], process.env);
    const line = await child.nextLine(30_000, 'start');
    if (line !== 'ready') throw new BenchFailure(`load generator: unexpected first line '${line}'`);
    return new LoadGenerator(child);
  }

  async run<R extends JobAnswer['type']>(
    job: Job,
    expect: R,
    onWindow?: (phase: WindowEvent['phase']) => void,
  ): Promise<Extract<JobAnswer, { type: R }>> {
    const id = this.nextId++;
    this.child.send(JSON.stringify({ ...job, id }));
    let answer: JobAnswer | WindowEvent;
    for (;;) {
      const line = await this.child.nextLine(180_000, `job ${job.type}`);
      answer = JSON.parse(line) as JobAnswer | WindowEvent;
      if (answer.type !== 'window') break;
      if (answer.id !== id) throw new BenchFailure(`load generator: window of job ${answer.id} during job ${id}`);
      onWindow?.(answer.phase);
    }
    if (answer.id !== id) throw new BenchFailure(`load generator answered job ${answer.id}, expected ${id}`);
    if (answer.type === 'error') throw new BenchFailure(`load generator, ${job.type}: ${answer.message}`);
    if (answer.type !== expect) throw new BenchFailure(`load generator answered ${answer.type} to ${job.type}`);
    return answer as Extract<JobAnswer, { type: R }>;
  }

  stop(): Promise<void> {
    return this.child.stop(null, 5_000);
  }
}

/** Asks a server a one-line question; returns the answer's JSON part. */
async function ask<T>(server: Server, command: string, timeoutMs = 30_000): Promise<{ head: string; json: T }> {
  server.child.send(command);
  const line = await server.child.nextLine(timeoutMs, command);
  const match = /^(\S+(?: \d+)?) (\{.*\})$/.exec(line);
  if (match === null || !match[1]!.startsWith(command)) throw new BenchFailure(`${server.kind} server: unexpected answer '${line}' to ${command}`);
  return { head: match[1]!, json: JSON.parse(match[2]!) as T };
}

// --------------------------------------------------------------------------------------
// scenarios

type Group = 'chat' | 'document' | 'memory';

interface Metric {
  key: string;
  label: string;
  format(value: number): string;
  /** The throughput metric (the ≥ mark applies to it). */
  rate?: boolean;
  /** A sample key whose median is shown after the value, as a share compressed. */
  compressedKey?: string;
}

interface Measurement {
  values: Record<string, number>;
  serverCpu: number | null;
  serverSystem: number | null;
  loadBusy: number | null;
  othersOnCore: number | null;
  othersOnLoadCore: number | null;
  negotiated: string;
  /** What the server kept for permessage-deflate (memory scenario). */
  held?: Record<string, number>;
  checked: string;
}

interface Scenario {
  group: Group;
  name: string;
  threshold: number;
  metrics: readonly Metric[];
  nodeFlags?: readonly string[];
  measure(load: LoadGenerator, server: Server): Promise<Measurement>;
}

const perSecond = (value: number): string => `${formatCount(value)}/s`;
const perCpuSecond = (value: number): string => formatCount(value);
const bytes = (value: number): string => `${formatNumber(value)} B`;

function timedTarget(server: Server): Timed & { port: number } {
  return {
    port: server.port,
    serverPid: server.pid,
    serverCore: SERVER_CPU,
    loadCore: LOAD_CPU,
    spin: SPIN,
    warmupMs: WARMUP_MS,
    measureMs: MEASURE_MS,
  };
}

const CHAT: Omit<DeflateMessages, 'clientThreshold'> = { payload: 'chat', size: 0, variety: 512, verifyReplies: 4 };
const DOCUMENT: Omit<DeflateMessages, 'clientThreshold'> = { payload: 'document', size: 64 * 1024, variety: 8, verifyReplies: 2 };
const MEMORY_MESSAGE: DeflateMessages = {
  payload: 'document',
  size: 2 * 1024,
  variety: 16,
  clientThreshold: DEFAULT_THRESHOLD,
  verifyReplies: 1,
};

function echoScenario(
  group: Group,
  name: string,
  messages: Omit<DeflateMessages, 'clientThreshold'>,
  threshold: number,
  inFlight: number,
): Scenario {
  return {
    group,
    name,
    threshold,
    metrics: [
      { key: 'rate', label: 'messages/s', format: perSecond, rate: true },
      { key: 'perCpu', label: 'messages per server CPU-second', format: perCpuSecond },
      { key: 'in', label: 'wire B/msg server->client', format: bytes, compressedKey: 'inCompressed' },
      { key: 'out', label: 'wire B/msg client->server', format: bytes, compressedKey: 'outCompressed' },
    ],
    async measure(load, server) {
      const result = await load.run(
        {
          type: 'deflateEcho',
          ...timedTarget(server),
          path: '/echo',
          connections: 100,
          inFlight,
          ...messages,
          clientThreshold: threshold,
        },
        'deflateRate',
        profileWindow(server),
      );
      return {
        values: {
          rate: result.count / result.seconds,
          perCpu: result.count / (result.serverCpu * result.seconds),
          in: result.receivedBytesPerMessage,
          out: result.sentBytesPerMessage,
          inCompressed: result.receivedCompressed,
          outCompressed: result.sentCompressed,
        },
        serverCpu: result.serverCpu,
        serverSystem: result.serverSystem,
        loadBusy: result.loadCpu - result.loadSpinIdle,
        othersOnCore: Math.max(0, result.serverCoreBusy - result.serverCpu),
        othersOnLoadCore: Math.max(0, result.loadCoreBusy - result.loadCpu),
        negotiated: result.negotiated,
        checked: result.checked,
      };
    },
  };
}

/** V8's view of the server's memory (see heapFigures in server-main.ts). */
interface HeapFigures {
  newSpace: number;
  oldSpaces: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

async function serverGc(server: Server): Promise<{ connections: number; heap: HeapFigures }> {
  const { head, json } = await ask<HeapFigures>(server, 'gc');
  return { connections: Number(head.split(' ')[1]), heap: json };
}

const memoryScenario: Scenario = {
  group: 'memory',
  name: `RSS per connection at ${MEMORY_CONNECTIONS.toLocaleString('en-US')}, one 2 KiB message each, default flags`,
  threshold: DEFAULT_THRESHOLD,
  metrics: [{ key: 'perConnection', label: 'bytes/connection', format: bytes }],
  nodeFlags: ['--expose-gc'],
  async measure(load, server) {
    const open = (connections: number, concurrency: number, hold: boolean) =>
      load.run({ type: 'deflateOpen', port: server.port, path: '/echo', connections, concurrency, hold, ...MEMORY_MESSAGE }, 'deflateOpened');
    // Warm-up: connections that negotiate, echo once compressed and close, so that code and
    // pools any first connection brings in are not counted per connection.
    await open(200, 50, false);
    let idle = await serverGc(server);
    for (let i = 0; i < 20 && idle.connections !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      idle = await serverGc(server);
    }
    if (idle.connections !== 0) throw new BenchFailure(`${server.kind} server still holds ${idle.connections} connections after the warm-up`);
    const before = processRssBytes(server.pid);
    const opened = await open(MEMORY_CONNECTIONS, 200, true);
    const loaded = await serverGc(server);
    const after = processRssBytes(server.pid);
    const { json: held } = await ask<Record<string, number>>(server, 'deflate-state');
    await load.run({ type: 'closeAll' }, 'closed');
    if (opened.connections !== MEMORY_CONNECTIONS || loaded.connections !== MEMORY_CONNECTIONS) {
      throw new BenchFailure(`opened ${opened.connections} connections, the server holds ${loaded.connections}, expected ${MEMORY_CONNECTIONS}`);
    }
    if (opened.compressedReplies !== MEMORY_CONNECTIONS) {
      throw new BenchFailure(`only ${opened.compressedReplies} of ${MEMORY_CONNECTIONS} replies came back compressed`);
    }
    const perConnection = (field: keyof HeapFigures): number => (loaded.heap[field] - idle.heap[field]) / MEMORY_CONNECTIONS;
    return {
      values: {
        perConnection: (after - before) / MEMORY_CONNECTIONS,
        before,
        after,
        heapUsed: perConnection('heapUsed'),
        newSpace: perConnection('newSpace'),
        oldSpaces: perConnection('oldSpaces'),
        external: perConnection('external'),
      },
      serverCpu: null,
      serverSystem: null,
      loadBusy: null,
      othersOnCore: null,
      othersOnLoadCore: null,
      negotiated: opened.negotiated,
      held,
      checked: `RSS ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB; ${opened.checked}`,
    };
  },
};

const CONNS = '100 conns';
const SCENARIOS: readonly Scenario[] = [
  echoScenario('chat', `chat ~150 B, threshold ${DEFAULT_THRESHOLD} (default), ${CONNS} x 8`, CHAT, DEFAULT_THRESHOLD, 8),
  echoScenario('chat', `chat ~150 B, threshold 0, ${CONNS} x 8`, CHAT, 0, 8),
  echoScenario('document', `64 KiB JSON, ${CONNS} x 1`, DOCUMENT, DEFAULT_THRESHOLD, 1),
  echoScenario('document', `64 KiB JSON, ${CONNS} x 4`, DOCUMENT, DEFAULT_THRESHOLD, 4),
  memoryScenario,
];

const GROUPS: ReadonlyArray<{ group: Group; title: string }> = [
  {
    group: 'chat',
    title: 'chat: echo of JSON chat messages (messages/s: higher is better; wire bytes per message: lower is better)',
  },
  {
    group: 'document',
    title: 'document: echo of 64 KiB JSON documents (messages/s: higher is better; wire bytes per message: lower is better)',
  },
  {
    group: 'memory',
    title: 'memory: server RSS per connection after forced GC (lower is better; ratios below 1 favour hotline)',
  },
];

// --------------------------------------------------------------------------------------

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

function sourceState(): string {
  try {
    const root = join(here, '..');
    const head = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const changed = execFileSync('git', ['-C', root, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.trim() !== '').length;
    return changed === 0 ? `src at ${head}` : `src at ${head} + ${changed} changed file${changed === 1 ? '' : 's'}`;
  } catch {
    return 'src (no git)';
  }
}

function wsVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('ws/package.json') as { version: string }).version;
}

/** Sizes of a message set, plain and compressed on its own (as the load generator sends them). */
function describeMessages(spec: Omit<DeflateMessages, 'clientThreshold'>): string {
  const payloads = deflatePayloads(spec);
  const plain = payloads.map((p) => p.length);
  const packed = payloads.map((p) => deflateAlone(p).length);
  const mean = (list: number[]): number => list.reduce((a, b) => a + b, 0) / list.length;
  const range = Math.min(...plain) === Math.max(...plain) ? `${plain[0]} B` : `${Math.min(...plain)}-${Math.max(...plain)} B (mean ${mean(plain).toFixed(0)})`;
  return `${payloads.length} distinct, ${range}, each compressed on its own to ${mean(packed).toFixed(0)} B on average (${(mean(plain) / mean(packed)).toFixed(1)}x)`;
}

function pct(share: number | null | undefined): string {
  return `${((share ?? 0) * 100).toFixed(0)}%`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadStart = loadavg()[0]!;
  if (process.platform !== 'linux') throw new BenchFailure('this benchmark reads /proc: it runs on Linux only');
  if (cpus().length < 2) throw new BenchFailure('this benchmark needs two CPUs (server and load generator pinned apart)');
  checkTaskset([SERVER_CPU, LOAD_CPU]);
  if (PROFILE_DIR !== null) mkdirSync(PROFILE_DIR, { recursive: true });

  const only = args.only?.toLowerCase();
  const scenarios = SCENARIOS.filter((s) => only === undefined || s.name.toLowerCase().includes(only) || s.group.includes(only));
  if (scenarios.length === 0) throw new BenchFailure(`--only ${args.only}: no scenario matches`);

  const describeKind = (kind: Kind): string =>
    kind === 'hotline' ? `hotline (${sourceState()})` : kind === 'ws' ? `ws ${wsVersion()} (plain JS masking)` : `ws ${wsVersion()} + bufferutil`;
  console.log(
    `permessage-deflate: ${KINDS.map(describeKind).join(' vs ')}; ` +
      `node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}`,
  );
  console.log(
    `each server alone on CPU ${SERVER_CPU} in a fresh process per measurement, load generator on CPU ${LOAD_CPU}; ` +
      `${ROUNDS} round${ROUNDS === 1 ? '' : 's'}, ${WARMUP_MS} ms warm-up + ${MEASURE_MS} ms counted per measurement` +
      (QUICK ? ' [quick]' : '') +
      `; load average ${loadStart.toFixed(2)}`,
  );

  const load = await LoadGenerator.start();
  const samples = new Samples();
  const cpu = new Samples();
  const loadBusy = new Samples();
  const others = new Samples();
  const othersLoad = new Samples();
  const negotiated = new Map<string, Set<string>>();
  const held = new Map<string, Record<string, number>>();
  const checks = new Map<string, string>();
  const underBusy = new Map<string, string[]>();
  const key = (scenario: Scenario, kind: Kind, metric: string): string => `${scenario.name}|${kind}|${metric}`;
  let measurements = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [index, scenario] of scenarios.entries()) {
        for (const kind of rotate(KINDS, round + index)) {
          const label = `${slug(scenario.name)}-r${round + 1}`;
          const server = await startServer(kind, scenario.threshold, scenario.nodeFlags ?? [], label);
          let m: Measurement;
          try {
            if (!server.child.running) throw new BenchFailure(`${kind} server died`);
            m = await scenario.measure(load, server);
            if (!server.child.running) throw new BenchFailure(`${kind} server died during the measurement`);
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            throw new BenchFailure(`[${kind}] ${scenario.name}, round ${round + 1}: ${message}`);
          } finally {
            await stopServer(server);
          }
          measurements++;
          for (const [metric, value] of Object.entries(m.values)) samples.add(key(scenario, kind, metric), value);
          if (m.serverCpu !== null) {
            cpu.add(key(scenario, kind, 'cpu'), m.serverCpu);
            if (m.serverCpu < BUSY_THRESHOLD) {
              const list = underBusy.get(scenario.group) ?? [];
              list.push(`${kind} r${round + 1} ${pct(m.serverCpu)}`);
              underBusy.set(scenario.group, list);
            }
          }
          if (m.loadBusy !== null) loadBusy.add(scenario.group, m.loadBusy);
          if (m.othersOnCore !== null) others.add(scenario.group, m.othersOnCore);
          if (m.othersOnLoadCore !== null) othersLoad.add(scenario.group, m.othersOnLoadCore);
          const set = negotiated.get(kind) ?? new Set<string>();
          set.add(m.negotiated);
          negotiated.set(kind, set);
          if (m.held !== undefined) held.set(key(scenario, kind, 'held'), m.held);
          checks.set(key(scenario, kind, 'checked'), m.checked);
          if (args.samples === true) {
            const values = scenario.metrics.map((metric) => `${metric.label} ${metric.format(m.values[metric.key]!)}`).join(', ');
            const busy = m.serverCpu === null ? '' : `, server CPU ${pct(m.serverCpu)} (kernel ${pct(m.serverSystem)})`;
            const gen = m.loadBusy === null ? '' : `, load generator busy ${pct(m.loadBusy)}`;
            const rest = m.othersOnCore === null ? '' : `, others on the cores ${pct(m.othersOnCore)} / ${pct(m.othersOnLoadCore)}`;
            console.log(`  r${round + 1} ${kind.padEnd(13)} ${scenario.name}: ${values}${busy}${gen}${rest}; ${m.checked}`);
          }
        }
      }
    }
  } finally {
    await load.stop();
  }

  const columns: Column[] = [
    { header: 'scenario', align: 'left' },
    ...KINDS.map((kind) => ({ header: kind === 'ws-bufferutil' ? 'ws+bufferutil' : kind })),
    ...OTHERS.map((kind) => ({ header: `hotline/${SHORT[kind]}` })),
    ...KINDS.map((kind) => ({ header: `CPU ${SHORT[kind]}` })),
  ];
  let lowerBounds = false;
  for (const { group, title } of GROUPS) {
    const inGroup = scenarios.filter((s) => s.group === group);
    if (inGroup.length === 0) continue;
    const rows: string[][] = [];
    for (const scenario of inGroup) {
      const busy = (kind: Kind): number | null => {
        const list = cpu.get(key(scenario, kind, 'cpu'));
        return list.length === 0 ? null : median(list);
      };
      const bound = (kind: Kind): boolean => {
        const share = busy(kind);
        return share !== null && share < BUSY_THRESHOLD;
      };
      for (const [i, metric] of scenario.metrics.entries()) {
        const marks = metric.rate === true;
        const value = (kind: Kind): string => {
          const v = samples.median(key(scenario, kind, metric.key));
          const compressed =
            metric.compressedKey === undefined ? '' : ` (${pct(samples.median(key(scenario, kind, metric.compressedKey)))} deflated)`;
          return `${marks && bound(kind) ? '≥ ' : ''}${metric.format(v)}${compressed}`;
        };
        const ratio = (other: Kind): string => {
          const r = medianRatio(samples.get(key(scenario, 'hotline', metric.key)), samples.get(key(scenario, other, metric.key)));
          if (!marks) return formatRatio(r);
          const mark = bound('hotline') && !bound(other) ? '≥ ' : !bound('hotline') && bound(other) ? '≤ ' : '';
          return `${mark}${formatRatio(r)}${bound('hotline') && bound(other) ? ' ?' : ''}`;
        };
        const share = (kind: Kind): string => {
          const s = busy(kind);
          return s === null || i > 0 ? '' : pct(s);
        };
        if (marks && KINDS.some(bound)) lowerBounds = true;
        const name = scenario.metrics.length > 1 ? (i === 0 ? `${scenario.name}: ${metric.label}` : `  ${metric.label}`) : scenario.name;
        rows.push([name, ...KINDS.map(value), ...OTHERS.map(ratio), ...KINDS.map(share)]);
      }
    }
    console.log('');
    console.log(title);
    console.log(formatTable(columns, rows));
    let worst = { spread: 0, where: '' };
    for (const scenario of inGroup) {
      for (const kind of KINDS) {
        const spread = samples.spread(key(scenario, kind, scenario.metrics[0]!.key));
        if (spread > worst.spread) worst = { spread, where: `${kind}, ${scenario.name}` };
      }
    }
    if (ROUNDS > 1) console.log(`  largest spread between rounds: ${(worst.spread * 100).toFixed(0)}% (${worst.where})`);
    const idle = underBusy.get(group);
    if (idle !== undefined) {
      console.log(`  measurements with the server under ${BUSY_THRESHOLD * 100}% busy (values are lower bounds): ${idle.join(', ')}`);
    }
    const gen = loadBusy.get(group);
    const share = (list: readonly number[]): string => `median ${pct(median(list))}, max ${pct(Math.max(...list))}`;
    if (gen.length > 0) {
      console.log(
        `  over the windows: load generator busy ${SPIN ? '(CPU minus idle spinning) ' : ''}${share(gen)}; other processes on the ` +
          `server's core ${share(others.get(group))}, on the load generator's ${share(othersLoad.get(group))}`,
      );
    }
    for (const scenario of inGroup) {
      if (scenario.group !== 'chat' || scenario.threshold !== DEFAULT_THRESHOLD) continue;
      const shares = KINDS.map((kind) => `${kind} ${pct(samples.median(key(scenario, kind, 'inCompressed')))}`).join(', ');
      console.log(
        `  threshold ${DEFAULT_THRESHOLD} row: the load generator sends these messages uncompressed (below the threshold); replies\n` +
          `      compressed: ${shares}. ws applies its threshold only when server_no_context_takeover is in effect\n` +
          '      (lib/sender.js); with its default context takeover it compresses every message, small ones included.',
      );
    }
    if (group === 'memory') {
      for (const scenario of inGroup) {
        const describe = (kind: Kind): string => {
          const before = samples.median(key(scenario, kind, 'before'));
          const after = samples.median(key(scenario, kind, 'after'));
          return `${kind} ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB`;
        };
        console.log(`  RSS: ${KINDS.map(describe).join(', ')}`);
        for (const kind of KINDS) {
          const m = (field: string): string => formatNumber(samples.median(key(scenario, kind, field)));
          console.log(
            `  ${kind} per connection: ${m('heapUsed')} B live JS + ${m('external')} B external (zlib and Buffers); ` +
              `V8 committed ${m('oldSpaces')} B old + ${m('newSpace')} B young`,
          );
          const state = held.get(key(scenario, kind, 'held'));
          if (state === undefined) continue;
          const n = MEMORY_CONNECTIONS;
          if (kind === 'hotline') {
            console.log(
              `    keeps for permessage-deflate (last round): ${state.codecs} codecs; ${state.receiveWindows} receive windows ` +
                `holding ${formatNumber((state.receiveWindowBytes ?? 0) / n)} B per connection (in ArrayBuffers of ` +
                `${formatNumber((state.backingBytes ?? 0) / n)} B per connection); ${state.sendWindows} send windows ` +
                `(${formatNumber((state.sendWindowBytes ?? 0) / n)} B); no zlib context between messages`,
            );
          } else {
            console.log(
              `    keeps for permessage-deflate (last round): ${state.inflateStreams} live zlib inflate streams and ` +
                `${state.deflateStreams} deflate streams for ${state.extensions} connections (zlib's own sizing: deflate\n` +
                '    with windowBits 15, memLevel 8 allocates 128 + 128 KiB plus its state, inflate a 32 KiB window plus its state;\n' +
                "    each Node zlib stream also keeps a 16 KiB output buffer)",
            );
          }
        }
      }
    }
  }

  console.log('');
  console.log('notes:');
  console.log(
    `  servers: hotline serve() with endpoint option perMessageDeflate: { threshold }, ws new WebSocketServer({ perMessageDeflate:\n` +
      '      { threshold } }), all else at their defaults; threshold as in each row (1024 B is both defaults).',
  );
  for (const kind of KINDS) {
    console.log(`  ${kind} answered: ${[...(negotiated.get(kind) ?? [])].map((h) => `'${h}'`).join(', ')}`);
  }
  console.log(
    "  the load generator offers 'permessage-deflate; client_no_context_takeover; client_max_window_bits', so its\n" +
      '      pre-encoded compressed frames (each compressed on its own, zlib level 6, 32 KiB window) stay valid when\n' +
      '      replayed; it compresses a message when it has at least the row\'s threshold of bytes, as a client with the\n' +
      '      same setting would.',
  );
  if (scenarios.some((s) => s.group === 'chat')) console.log(`  chat messages: ${describeMessages(CHAT)}`);
  if (scenarios.some((s) => s.group === 'document')) console.log(`  documents: ${describeMessages(DOCUMENT)}`);
  if (scenarios.some((s) => s.group === 'memory')) console.log(`  memory message: ${describeMessages(MEMORY_MESSAGE)}`);
  console.log(
    '  messages per server CPU-second: messages/s over the server\'s CPU share, i.e. the work each message costs the server\n' +
      '      (all its threads); unlike messages/s it holds when other processes take the server\'s core. A server with\n' +
      '      more runnable threads (ws: zlib runs on libuv\'s pool) gets a larger share of a contended core.',
  );
  console.log(
    '  wire B/msg: WebSocket frame bytes (header + payload, no TCP/IP) per message over the counted window; "deflated": the\n' +
      '      share of those messages sent compressed (RSV1). CPU columns: the server process (all threads, zlib\'s pool included)\n' +
      '      over the window, as a share of one core (median).',
  );
  if (lowerBounds) {
    console.log(
      `  ≥ : the server was busy less than ${BUSY_THRESHOLD * 100}% of the window, so something else (the load generator,\n` +
        '      round trips between the processes) limited it: the true capacity is at least this. A ratio is marked ≥ or ≤\n' +
        '      when only one side is such a bound, and "?" when both are.',
    );
  }
  console.log(
    '  memory: the server runs with --expose-gc (GC forced twice before each RSS reading) and first serves 200 connections\n' +
      '      that negotiate, echo one compressed message and close; then every connection negotiates, sends one compressed\n' +
      '      2 KiB message, gets it back compressed (checked) and stays open, idle.',
  );
  console.log(
    `all ${measurements} measurements verified (negotiation, every echo counted and of the right type, the first replies of\n` +
      '  each connection in full, inflated where compressed); ' +
      `load average ${loadStart.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}; took ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  if (args.samples === true) {
    for (const [name, text] of checks) console.log(`  checked ${name.replace(/\|checked$/, '')}: ${text}`);
  }
}

try {
  await main();
} catch (error) {
  killAllChildren();
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error);
  process.exitCode = 1;
}
