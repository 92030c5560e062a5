/**
 * Server benchmark: hotline's Node server beside a `ws` server, with ws's plain JavaScript
 * masking and with bufferutil, over real sockets on 127.0.0.1.
 *
 *   node --import tsx bench/server.ts [--quick] [--only NAME] [--rounds N] [--samples] [--sleep]
 *                                     [--profile DIR] [--profile-kinds hotline,ws,...]
 *                                     [--heap-snapshot DIR]
 *
 * --quick          a short smoke run (one round, short windows, fewer idle connections)
 * --only NAME      only the scenarios whose group or name contains NAME (case-insensitive),
 *                  e.g. "echo", "16 KiB", "fan-out", "latency", "handshake", "memory"
 * --rounds N       rounds per scenario (default 3, 1 with --quick)
 * --samples        also print every round's values, CPU shares and checks
 * --sleep          let the load generator sleep in epoll between events (by default it spins:
 *                  see below)
 * --heap-snapshot DIR  in the memory scenarios, also write heap snapshots of each server
 *                  before and after opening the idle connections (compare them with
 *                  bench/lib/heap-summary.ts); this disturbs the RSS figures of that run
 * --profile DIR    profile the servers' main threads over each counted window (V8's sampling
 *                  profiler, 250 µs), writing DIR/<kind>-<scenario>-r<round>.cpuprofile;
 *                  summarise them with bench/lib/profile-summary.ts. --profile-kinds picks whose
 *                  (default hotline)
 *
 * Processes: every server under test (bench/lib/server-main.ts) runs alone in a fresh
 * process pinned to CPU 0, one per measurement; the load generator (bench/lib/load-main.ts)
 * is one long-lived process pinned to CPU 1, on raw sockets with pre-encoded masked frames,
 * counting replies by their frame headers. Servers run with Node's default flags and glibc's
 * default allocator settings (GLIBC_TUNABLES removed), as a deployed server would.
 *
 * The load generator keeps its event loop polling (setImmediate) instead of sleeping between
 * events. On loopback the kernel charges waking a sleeping reader to the writer, so a
 * sleeping load generator would make every server write pay for a cross-CPU wake-up (an
 * interprocessor interrupt, costly in a virtual machine) that a server talking to remote
 * clients never pays. Its CPU time then reads ~100%; what it reports as busy is that minus
 * the time between consecutive loop turns that found nothing to read.
 *
 * Each measurement reads the server's CPU time from /proc over the counted window: a
 * throughput row whose server was busy less than 90% of the window is limited by something
 * else (the load generator, round trips) and is shown as a lower bound (≥).
 *
 * Rounds interleave the implementations (their order rotates per round and scenario);
 * values are medians over rounds, ratios medians of per-round ratios.
 *
 * Scenarios (every one checked, and failing loudly, when what came back is not what was sent):
 * - echo: 100 connections, 1 or 8 messages in flight on each, 32 B text and 16 KiB binary.
 * - latency: round-trip time of 32 B text on one connection, one message in flight.
 * - fan-out: 1,000 or 10,000 subscribers to one topic and one publisher; see the notes printed.
 * - handshakes: connect, upgrade (the 101 and its accept key checked), closing handshake.
 * - memory: RSS growth per idle connection at 10,000 connections after forced GC, with
 *   default flags and with lean ones (--max-semi-space-size=1, MALLOC_ARENA_MAX=2).
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkTaskset, killAllChildren, LineChild } from './lib/children.js';
import type { Job, JobAnswer, LatencyResult, RateResult, Timed, WindowEvent } from './lib/load-jobs.js';
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

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
    samples: { type: 'boolean', default: false },
    profile: { type: 'string' },
    'profile-kinds': { type: 'string', default: 'hotline' },
    sleep: { type: 'boolean', default: false },
    'heap-snapshot': { type: 'string' },
  },
});
const QUICK = args.quick === true;
const ROUNDS = args.rounds !== undefined ? Number(args.rounds) : QUICK ? 1 : 3;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error('--rounds must be a positive integer');
const WARMUP_MS = QUICK ? 200 : 700;
const MEASURE_MS = QUICK ? 400 : 1500;
const IDLE_CONNECTIONS = QUICK ? 2_000 : 10_000;
const SPIN = args.sleep !== true;
const SNAPSHOT_DIR = args['heap-snapshot'] !== undefined ? resolve(args['heap-snapshot']) : null;
const PROFILE_DIR = args.profile !== undefined ? resolve(args.profile) : null;
const PROFILE_KINDS = new Set((args['profile-kinds'] ?? '').split(',').map((k) => k.trim()));

type Kind = 'hotline' | 'ws' | 'ws-bufferutil';
const KINDS: readonly Kind[] = ['hotline', 'ws', 'ws-bufferutil'];
type Mode = 'echo' | 'fanout';

class BenchFailure extends Error {
  override name = 'BenchFailure';
}

// --------------------------------------------------------------------------------------
// processes

/** The environment of a server of `kind`: Node's and glibc's defaults, ws told whether to use bufferutil. */
function serverEnv(kind: Kind, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.GLIBC_TUNABLES;
  delete env.WS_NO_BUFFER_UTIL;
  if (kind === 'ws') env.WS_NO_BUFFER_UTIL = '1';
  return env;
}

interface ServerOptions {
  nodeFlags?: readonly string[];
  env?: Record<string, string>;
  /** Names the profile file when profiling. */
  label: string;
}

interface Server {
  child: LineChild;
  kind: Kind;
  port: number;
  pid: number;
  profiling: boolean;
}

/** Profiles a profiling server over the counted window only. */
function profileWindow(server: Server): (phase: WindowEvent['phase']) => void {
  return (phase) => {
    if (server.profiling) server.child.send(phase === 'start' ? 'profile-start' : 'profile-stop');
  };
}

async function startServer(kind: Kind, mode: Mode, options: ServerOptions): Promise<Server> {
  const profile =
    PROFILE_DIR !== null && PROFILE_KINDS.has(kind) ? ['--profile', join(PROFILE_DIR, `${kind}-${options.label}.cpuprofile`)] : [];
  const child = new LineChild(
    `${kind} server`,
    SERVER_CPU,
    [...(options.nodeFlags ?? []), '--import', 'tsx', SERVER_MAIN, kind, mode, ...profile],
    serverEnv(kind, options.env ?? {}),
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
  // 'exit' lets a profiling server write its profile; a server that hangs is killed.
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

  /** Runs a job; `onWindow` hears when its counted window starts and ends. */
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

// --------------------------------------------------------------------------------------
// scenarios

type Group = 'echo' | 'latency' | 'fan-out' | 'handshakes' | 'memory';

interface Metric {
  key: string;
  label: string;
  format(value: number): string;
}

interface Measurement {
  values: Record<string, number>;
  /** The server's CPU share over the counted window; null where it means nothing. */
  serverCpu: number | null;
  /** The part of it spent in the kernel. */
  serverSystem: number | null;
  loadCpu: number | null;
  /** CPU the server's core spent on anything but the server (other processes) over the window. */
  othersOnCore: number | null;
  /** The same for the load generator's core. */
  othersOnLoadCore: number | null;
  /** Of loadCpu, the estimated time a spinning load generator found nothing to do. */
  loadIdle: number | null;
  checked: string;
}

interface Scenario {
  group: Group;
  name: string;
  mode: Mode;
  metrics: readonly Metric[];
  /** Whether the ≥ mark applies (throughput rows, where an idle server means a bound). */
  throughput: boolean;
  server?: Omit<ServerOptions, 'label'>;
  measure(load: LoadGenerator, server: Server): Promise<Measurement>;
}

const perSecond = (value: number): string => `${formatCount(value)}/s`;
const micros = (value: number): string => `${formatNumber(value)} µs`;
const bytes = (value: number): string => `${formatNumber(value)} B`;

function rateMeasurement(result: RateResult): Measurement {
  return {
    values: { rate: result.count / result.seconds },
    serverCpu: result.serverCpu,
    serverSystem: result.serverSystem,
    loadCpu: result.loadCpu,
    othersOnCore: Math.max(0, result.serverCoreBusy - result.serverCpu),
    othersOnLoadCore: Math.max(0, result.loadCoreBusy - result.loadCpu),
    loadIdle: result.loadSpinIdle,
    checked: result.checked,
  };
}

/** What every timed job says about where the server is and how the load generator runs. */
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

function echoScenario(size: number, binary: boolean, inFlight: number): Scenario {
  const label = `${size >= 1024 ? `${size / 1024} KiB` : `${size} B`} ${binary ? 'binary' : 'text'}`;
  return {
    group: 'echo',
    name: `echo ${label}, 100 conns x ${inFlight} in flight`,
    mode: 'echo',
    metrics: [{ key: 'rate', label: 'messages/s', format: perSecond }],
    throughput: true,
    async measure(load, server) {
      const result = await load.run(
        {
          type: 'echo',
          ...timedTarget(server),
          path: '/echo',
          connections: 100,
          inFlight,
          binary,
          size,
        },
        'rate',
        profileWindow(server),
      );
      return rateMeasurement(result);
    },
  };
}

const latencyScenario: Scenario = {
  group: 'latency',
  name: 'round trip 32 B text, 1 conn, 1 in flight',
  mode: 'echo',
  metrics: [
    { key: 'p50', label: 'p50', format: micros },
    { key: 'p99', label: 'p99', format: micros },
  ],
  throughput: false,
  async measure(load, server) {
    const result: LatencyResult = await load.run(
      {
        type: 'latency',
        ...timedTarget(server),
        path: '/echo',
        size: 32,
      },
      'latency',
      profileWindow(server),
    );
    return {
      values: { p50: result.p50Us, p99: result.p99Us, rate: result.roundTrips / result.seconds },
      serverCpu: result.serverCpu,
      serverSystem: result.serverSystem,
      loadCpu: result.loadCpu,
      othersOnCore: Math.max(0, result.serverCoreBusy - result.serverCpu),
      othersOnLoadCore: Math.max(0, result.loadCoreBusy - result.loadCpu),
      loadIdle: result.loadSpinIdle,
      checked: result.checked,
    };
  },
};

function fanoutScenario(subscribers: number): Scenario {
  return {
    group: 'fan-out',
    name: `publish 32 B text to ${subscribers.toLocaleString('en-US')} subscribers, 8 in flight`,
    mode: 'fanout',
    metrics: [{ key: 'rate', label: 'deliveries/s', format: perSecond }],
    throughput: true,
    async measure(load, server) {
      const result = await load.run(
        {
          type: 'fanout',
          ...timedTarget(server),
          path: '/fanout',
          subscribers,
          inFlight: 8,
          size: 32,
          lagLimit: 64,
        },
        'rate',
        profileWindow(server),
      );
      return rateMeasurement(result);
    },
  };
}

const HANDSHAKE_CONCURRENCY = 16;

const handshakeScenario: Scenario = {
  group: 'handshakes',
  name: `connect, upgrade, close; ${HANDSHAKE_CONCURRENCY} at a time`,
  mode: 'echo',
  metrics: [{ key: 'rate', label: 'connections/s', format: perSecond }],
  throughput: true,
  async measure(load, server) {
    const result = await load.run(
      {
        type: 'handshake',
        ...timedTarget(server),
        path: '/echo',
        concurrency: HANDSHAKE_CONCURRENCY,
      },
      'rate',
      profileWindow(server),
    );
    return rateMeasurement(result);
  },
};

/** V8's view of the server's memory (see heapFigures in server-main.ts). */
interface HeapFigures {
  newSpace: number;
  oldSpaces: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** With --heap-snapshot, has the server write a heap snapshot named `<kind>-<label>-<stage>`. */
async function snapshot(server: Server, label: string, stage: string): Promise<void> {
  if (SNAPSHOT_DIR === null) return;
  server.child.send(`snapshot ${join(SNAPSHOT_DIR, `${server.kind}-${label}-${stage}.heapsnapshot`)}`);
  const line = await server.child.nextLine(120_000, 'snapshot');
  if (line !== 'snapshot') throw new BenchFailure(`${server.kind} server: unexpected answer '${line}' to snapshot`);
}

/** Forces garbage collection in the server; returns how many connections it holds, and its heap figures. */
async function serverGc(server: Server): Promise<{ connections: number; heap: HeapFigures }> {
  server.child.send('gc');
  const line = await server.child.nextLine(30_000, 'gc');
  const match = /^gc (\d+) (\{.*\})$/.exec(line);
  if (match === null) throw new BenchFailure(`${server.kind} server: unexpected answer '${line}' to gc`);
  return { connections: Number(match[1]), heap: JSON.parse(match[2]!) as HeapFigures };
}

function memoryScenario(lean: boolean): Scenario {
  const leanFlags = ['--max-semi-space-size=1'];
  const leanEnv = { MALLOC_ARENA_MAX: '2' };
  return {
    group: 'memory',
    name: `RSS per idle connection at ${IDLE_CONNECTIONS.toLocaleString('en-US')}, ${lean ? 'lean flags' : 'default flags'}`,
    mode: 'echo',
    metrics: [{ key: 'perConnection', label: 'bytes/connection', format: bytes }],
    throughput: false,
    server: { nodeFlags: ['--expose-gc', ...(lean ? leanFlags : [])], env: lean ? leanEnv : {} },
    async measure(load, server) {
      // Warm up: connections that handshake, echo once and close, so that code and pools
      // that any first connection brings in are not counted per connection.
      await load.run(
        { type: 'open', port: server.port, path: '/echo', connections: 200, concurrency: 50, echoOnce: true, hold: false },
        'opened',
      );
      let idle = await serverGc(server);
      for (let i = 0; i < 20 && idle.connections !== 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        idle = await serverGc(server);
      }
      if (idle.connections !== 0) {
        throw new BenchFailure(`${server.kind} server still holds ${idle.connections} connections after the warm-up`);
      }
      const before = processRssBytes(server.pid);
      await snapshot(server, slug(lean ? 'lean' : 'default'), 'before');
      const opened = await load.run(
        {
          type: 'open',
          port: server.port,
          path: '/echo',
          connections: IDLE_CONNECTIONS,
          concurrency: 200,
          echoOnce: false,
          hold: true,
        },
        'opened',
      );
      const loaded = await serverGc(server);
      const after = processRssBytes(server.pid);
      await snapshot(server, slug(lean ? 'lean' : 'default'), 'after');
      const held = loaded.connections;
      await load.run({ type: 'closeAll' }, 'closed');
      if (opened.connections !== IDLE_CONNECTIONS || held !== IDLE_CONNECTIONS) {
        throw new BenchFailure(`opened ${opened.connections} connections, the server holds ${held}, expected ${IDLE_CONNECTIONS}`);
      }
      const perConnection = (field: keyof HeapFigures): number => (loaded.heap[field] - idle.heap[field]) / IDLE_CONNECTIONS;
      return {
        values: {
          perConnection: (after - before) / IDLE_CONNECTIONS,
          before,
          after,
          heapUsed: perConnection('heapUsed'),
          newSpace: perConnection('newSpace'),
          oldSpaces: perConnection('oldSpaces'),
          external: perConnection('external'),
        },
        serverCpu: null,
        serverSystem: null,
        loadCpu: null,
        othersOnCore: null,
        othersOnLoadCore: null,
        loadIdle: null,
        checked: `RSS ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB; the server held all ${held} connections`,
      };
    },
  };
}

const SCENARIOS: readonly Scenario[] = [
  echoScenario(32, false, 1),
  echoScenario(32, false, 8),
  echoScenario(16 * 1024, true, 1),
  echoScenario(16 * 1024, true, 8),
  latencyScenario,
  fanoutScenario(1_000),
  fanoutScenario(10_000),
  handshakeScenario,
  memoryScenario(false),
  memoryScenario(true),
];

const GROUPS: ReadonlyArray<{ group: Group; title: string }> = [
  { group: 'echo', title: 'echo: messages/s echoed (higher is better)' },
  { group: 'latency', title: 'latency: round-trip time (lower is better; ratios below 1 favour hotline)' },
  { group: 'fan-out', title: 'fan-out: deliveries/s at the subscribers (higher is better)' },
  { group: 'handshakes', title: 'handshakes: connections/s through upgrade and closing handshake (higher is better)' },
  { group: 'memory', title: 'memory: server RSS per idle connection after forced GC (lower is better; ratios below 1 favour hotline)' },
];

// --------------------------------------------------------------------------------------

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** The commit the servers' source is at, and whether src/ has changes on top of it. */
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

async function main(): Promise<void> {
  const started = Date.now();
  const loadStart = loadavg()[0]!;
  if (process.platform !== 'linux') throw new BenchFailure('this benchmark reads /proc: it runs on Linux only');
  if (cpus().length < 2) throw new BenchFailure('this benchmark needs two CPUs (server and load generator pinned apart)');
  checkTaskset([SERVER_CPU, LOAD_CPU]);
  if (PROFILE_DIR !== null) mkdirSync(PROFILE_DIR, { recursive: true });
  if (SNAPSHOT_DIR !== null) mkdirSync(SNAPSHOT_DIR, { recursive: true });

  const only = args.only?.toLowerCase();
  const scenarios = SCENARIOS.filter(
    (s) => only === undefined || s.name.toLowerCase().includes(only) || s.group.includes(only),
  );
  if (scenarios.length === 0) throw new BenchFailure(`--only ${args.only}: no scenario matches`);

  console.log(
    `server: hotline (${sourceState()}) vs ws ${wsVersion()} (plain JS masking) and ws + bufferutil; ` +
      `node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}`,
  );
  console.log(
    `each server alone on CPU ${SERVER_CPU} in a fresh process per measurement, load generator on CPU ${LOAD_CPU}; ` +
      `${ROUNDS} round${ROUNDS === 1 ? '' : 's'}, ${WARMUP_MS} ms warm-up + ${MEASURE_MS} ms counted per measurement` +
      (QUICK ? ' [quick]' : ''),
  );

  const load = await LoadGenerator.start();
  const samples = new Samples();
  const cpu = new Samples();
  const loadCpu = new Samples();
  const others = new Samples();
  const othersLoad = new Samples();
  const checks = new Map<string, string[]>();
  /** Per group, the measurements whose server was less busy than BUSY_THRESHOLD. */
  const underBusy = new Map<string, string[]>();
  const key = (scenario: Scenario, kind: Kind, metric: string): string => `${scenario.name}|${kind}|${metric}`;
  let measurements = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [index, scenario] of scenarios.entries()) {
        for (const kind of rotate(KINDS, round + index)) {
          const label = `${slug(scenario.name)}-r${round + 1}`;
          const server = await startServer(kind, scenario.mode, { ...scenario.server, label });
          let measurement: Measurement;
          try {
            if (!server.child.running) throw new BenchFailure(`${kind} server died`);
            measurement = await scenario.measure(load, server);
            if (!server.child.running) throw new BenchFailure(`${kind} server died during the measurement`);
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            throw new BenchFailure(`[${kind}] ${scenario.name}, round ${round + 1}: ${message}`);
          } finally {
            await stopServer(server);
          }
          measurements++;
          for (const [metric, value] of Object.entries(measurement.values)) samples.add(key(scenario, kind, metric), value);
          if (measurement.serverCpu !== null) {
            cpu.add(key(scenario, kind, 'cpu'), measurement.serverCpu);
            if (scenario.throughput && measurement.serverCpu < BUSY_THRESHOLD) {
              const list = underBusy.get(scenario.group) ?? [];
              list.push(`${kind} r${round + 1} ${(measurement.serverCpu * 100).toFixed(0)}%`);
              underBusy.set(scenario.group, list);
            }
          }
          const loadBusy = measurement.loadCpu === null ? null : measurement.loadCpu - (measurement.loadIdle ?? 0);
          if (loadBusy !== null) loadCpu.add(scenario.group, loadBusy);
          if (measurement.othersOnCore !== null) others.add(scenario.group, measurement.othersOnCore);
          if (measurement.othersOnLoadCore !== null) othersLoad.add(scenario.group, measurement.othersOnLoadCore);
          const list = checks.get(key(scenario, kind, 'checked')) ?? [];
          list.push(measurement.checked);
          checks.set(key(scenario, kind, 'checked'), list);
          if (args.samples === true) {
            const values = scenario.metrics.map((m) => `${m.label} ${m.format(measurement.values[m.key]!)}`).join(', ');
            const pct = (share: number | null): string => `${((share ?? 0) * 100).toFixed(0)}%`;
            const busy =
              measurement.serverCpu === null
                ? ''
                : `, server CPU ${pct(measurement.serverCpu)} (kernel ${pct(measurement.serverSystem)})`;
            const gen = loadBusy === null ? '' : `, load generator busy ${pct(loadBusy)}`;
            const rest =
              measurement.othersOnCore === null
                ? ''
                : `, others on the cores ${pct(measurement.othersOnCore)} / ${pct(measurement.othersOnLoadCore)}`;
            console.log(`  r${round + 1} ${kind.padEnd(13)} ${scenario.name}: ${values}${busy}${gen}${rest}; ${measurement.checked}`);
          }
        }
      }
    }
  } finally {
    await load.stop();
  }

  const columns: Column[] = [
    { header: 'scenario', align: 'left' },
    { header: 'hotline' },
    { header: 'ws' },
    { header: 'ws+bufferutil' },
    { header: 'hotline/ws' },
    { header: 'hotline/ws+bu' },
    { header: 'CPU hotline' },
    { header: 'CPU ws' },
    { header: 'CPU ws+bu' },
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
        return scenario.throughput && share !== null && share < BUSY_THRESHOLD;
      };
      for (const metric of scenario.metrics) {
        const value = (kind: Kind): string => {
          const v = samples.median(key(scenario, kind, metric.key));
          return `${bound(kind) ? '≥ ' : ''}${metric.format(v)}`;
        };
        const ratio = (other: Kind): string => {
          const r = medianRatio(samples.get(key(scenario, 'hotline', metric.key)), samples.get(key(scenario, other, metric.key)));
          const mark = bound('hotline') && !bound(other) ? '≥ ' : !bound('hotline') && bound(other) ? '≤ ' : '';
          return `${mark}${formatRatio(r)}${bound('hotline') && bound(other) ? ' ?' : ''}`;
        };
        const share = (kind: Kind): string => {
          const s = busy(kind);
          return s === null ? '-' : `${(s * 100).toFixed(0)}%`;
        };
        if (KINDS.some(bound)) lowerBounds = true;
        const name = scenario.metrics.length > 1 ? `${scenario.name}: ${metric.label}` : scenario.name;
        rows.push([name, value('hotline'), value('ws'), value('ws-bufferutil'), ratio('ws'), ratio('ws-bufferutil'), share('hotline'), share('ws'), share('ws-bufferutil')]);
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
    const gen = loadCpu.get(group);
    const rest = others.get(group);
    const restLoad = othersLoad.get(group);
    const share = (list: readonly number[]): string =>
      `median ${(median(list) * 100).toFixed(0)}%, max ${(Math.max(...list) * 100).toFixed(0)}%`;
    if (gen.length > 0) {
      console.log(
        `  over the windows: load generator busy ${SPIN ? '(CPU minus idle spinning) ' : ''}${share(gen)}; other processes on the ` +
          `server's core ${share(rest)}, on the load generator's ${share(restLoad)}`,
      );
    }
    if (group === 'memory') {
      for (const scenario of inGroup) {
        const describe = (kind: Kind): string => {
          const before = samples.median(key(scenario, kind, 'before'));
          const after = samples.median(key(scenario, kind, 'after'));
          return `${kind} ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB`;
        };
        console.log(`  ${scenario.name}: RSS ${KINDS.map(describe).join(', ')}`);
        const split = (kind: Kind): string => {
          const m = (field: string): string => formatNumber(samples.median(key(scenario, kind, field)));
          return `${kind} ${m('heapUsed')} B live JS + ${m('external')} B external; V8 committed ${m('oldSpaces')} B old + ${m('newSpace')} B young`;
        };
        console.log(`    per connection: ${KINDS.map(split).join('; ')}`);
      }
    }
  }

  console.log('');
  console.log('notes:');
  console.log(
    '  CPU columns: the server process\'s CPU time (all threads) over the counted window, as a share of one core (median).',
  );
  if (lowerBounds) {
    console.log(
      `  ≥ : the server was busy less than ${BUSY_THRESHOLD * 100}% of the window, so something else (the load generator,\n` +
        '      round trips between the processes) limited it: the true capacity is at least this. A ratio is marked ≥ or ≤\n' +
        '      when only one side is such a bound, and "?" when both are.',
    );
  }
  console.log(
    '  latency: one message at a time, so the server idles between messages by design (its CPU share is shown, not marked).\n' +
      '  memory: lean flags are --max-semi-space-size=1 and MALLOC_ARENA_MAX=2 in the server\'s environment; every memory\n' +
      '      server runs with --expose-gc (GC is forced twice before each RSS reading) and first serves 200 connections\n' +
      '      that echo once and close, so that one-time costs are not counted per connection.',
  );
  console.log(
    `  fan-out: every connection is subscribed, the publisher (connected last) too; it keeps 8 publishes outstanding\n` +
      '      until it gets its own copy back, and pauses while any subscriber lags 64 publishes behind. hotline publishes\n' +
      "      with server.publish (one encoding, written per subscriber once per tick); ws loops over wss.clients calling\n" +
      '      client.send(data, { binary }).',
  );
  console.log(
    `all ${measurements} measurements verified (echo sizes and types, the first message of each connection byte for byte,\n` +
      '  every subscriber got every publish, every handshake got its 101 and close frame, counts add up); ' +
      `load average ${loadStart.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}; took ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  if (args.samples === true) {
    for (const [name, list] of checks) console.log(`  checked ${name.replace(/\|checked$/, '')}: ${list[list.length - 1]}`);
  }
}

try {
  await main();
} catch (error) {
  killAllChildren();
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : error);
  process.exitCode = 1;
}
