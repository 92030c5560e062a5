/**
 * Server benchmark: hotline's Node server beside a `ws` server, with ws's plain JavaScript
 * masking and with bufferutil, and beside the native servers uWebSockets.js and Bun when they
 * are installed (bench/lib/native-servers.ts; a missing one is skipped with a loud line),
 * over real sockets on 127.0.0.1. Every figure is also given as a ratio to ws's in the same run.
 *
 *   node --import tsx bench/server.ts [--quick] [--only NAME] [--rounds N] [--samples] [--sleep]
 *                                     [--client c|node]
 *                                     [--kinds hotline,ws-bufferutil,uws,bun]
 *                                     [--profile DIR] [--profile-kinds hotline,ws,...]
 *                                     [--heap-snapshot DIR] [--baseline CHECKOUT]
 *
 * --kinds LIST     only these servers besides hotline and ws (which always run: the ratios are to ws)
 * --quick          a short smoke run (one round, short windows, fewer idle connections)
 * --only NAME      only the scenarios whose group or name contains NAME (case-insensitive),
 *                  e.g. "echo", "16 KiB", "fan-out", "latency", "handshake", "memory"
 * --rounds N       rounds per scenario (default 3, 1 with --quick)
 * --samples        also print every round's values, CPU shares and checks
 * --client c|node who opens the handshake and fan-out rows' connections: C clients
 *                  (default; bench/lib/handshake-client.c and fanout-client.c, compiled with
 *                  `cc` at the start) or the load generator's own Node sockets, which cost it
 *                  about what they cost a server, so that the faster servers wait on them
 * --sleep          let the load generator sleep in epoll between events (by default it spins:
 *                  see below)
 * --baseline CHECKOUT  also measure hotline as another checkout has it (e.g. a worktree of
 *                  an older commit: `git worktree add ../base COMMIT`, with node_modules), in
 *                  the same rounds, with a hotline/baseline column: a regression check that
 *                  does not depend on how busy the machine was between two runs
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
 *   The handshake and fan-out rows' connections are opened by C clients (see --client).
 * - memory: RSS growth per idle connection at 10,000 connections after forced GC, with
 *   default flags and with lean ones (--max-semi-space-size=1, MALLOC_ARENA_MAX=2); then the
 *   RSS growth per connection over 5,000 more, past the young generation's growth during
 *   the first burst (with default flags V8 grows it to its cap there, about 2 KB of the
 *   first figure per connection at 10,000, and keeps it while the server is busy); then the
 *   RSS per connection once all 15,000 have sat idle 8 s, when a collection may give the
 *   young generation back (measured from a server that sat idle as long before them).
 */
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileCClient } from './lib/c-client.js';
import type { LatencyResult, RateResult } from './lib/load-jobs.js';
import { bunAvailability, uwsAvailability, type Availability } from './lib/native-servers.js';
import { ALL_KINDS, BenchFailure, NATIVE_KINDS, serverGc, setBaseline, type Kind, type Server } from './lib/processes.js';
import { processRssBytes } from './lib/proc.js';
import { benchArgs, describeRss, describeWindows, groupsToShow, LOWER_BOUND_NOTE, measureIdleConnections, preflight, Results, runBench, runRounds, runTimed, slug, sourceState, timedMeasurement, untimedMeasurement, wsVersion } from './lib/rounds.js';
import type { Measurement, ScenarioBase } from './lib/rounds.js';
import { columnsOf, formatCount, formatNumber, formatTable } from './lib/table.js';

const { settings, values: args } = benchArgs(
  { 'heap-snapshot': { type: 'string' }, baseline: { type: 'string' }, kinds: { type: 'string' }, client: { type: 'string' } },
  { warmupMs: 700, quickWarmupMs: 200 },
);
const IDLE_CONNECTIONS = settings.quick ? 2_000 : 10_000;
/** Opened after the idle connections are measured, for the RSS of one more (see memoryScenario). */
const MARGINAL_CONNECTIONS = IDLE_CONNECTIONS / 2;
/**
 * How long every connection then sits idle before the last reading: longer than the 5 s over
 * which V8 judges its allocation rate, so that the next collection may give back the young
 * generation the burst of upgrades grew (as V8's memory reducer does by itself, unforced,
 * some 25 s into a quiet spell).
 */
const SETTLE_MS = settings.quick ? 6_000 : 8_000;
const SNAPSHOT_DIR = typeof args['heap-snapshot'] === 'string' ? resolve(args['heap-snapshot']) : null;

const BASELINE = typeof args['baseline'] === 'string' ? resolve(args['baseline']) : null;
if (BASELINE !== null) setBaseline(BASELINE);
const NATIVE: ReadonlyMap<Kind, Availability> = new Map<Kind, Availability>([
  ['uws', uwsAvailability()],
  ['bun', bunAvailability()],
]);
const AVAILABLE: readonly Kind[] = [...ALL_KINDS, ...NATIVE_KINDS.filter((kind) => NATIVE.get(kind)?.available === true)];
/** --kinds picks among ws-bufferutil, uws, bun (hotline and ws always run: every ratio is to ws). */
const CHOSEN: readonly Kind[] = typeof args['kinds'] === 'string'
  ? (() => {
      const named = args['kinds'].split(',').map((k) => k.trim() as Kind);
      for (const kind of named) if (![...ALL_KINDS, ...NATIVE_KINDS].includes(kind)) throw new Error(`--kinds: unknown kind '${kind}'`);
      return AVAILABLE.filter((kind) => kind === 'ws' || kind === 'hotline' || named.includes(kind));
    })()
  : AVAILABLE;
const KINDS: readonly Kind[] = BASELINE === null ? CHOSEN : [...CHOSEN, 'baseline'];
const SHORT: Record<Kind, string> = { hotline: 'hotline', ws: 'ws', 'ws-bufferutil': 'ws+bu', uws: 'uWS', bun: 'Bun', baseline: 'baseline' };
type Mode = 'echo' | 'fanout';

// --------------------------------------------------------------------------------------
// scenarios

type Group = 'echo' | 'latency' | 'fan-out' | 'handshakes' | 'memory';

interface Scenario extends ScenarioBase<Measurement> {
  group: Group;
}

const perSecond = (value: number): string => `${formatCount(value)}/s`;
const micros = (value: number): string => `${formatNumber(value)} µs`;
const bytes = (value: number): string => `${formatNumber(value)} B`;

/** The rate over the window, and per second of the server's CPU time over it (all its threads). */
function rateMeasurement(result: RateResult): Measurement {
  const k = result.serverKernel;
  const per = (n: number): number => n / Math.max(1, result.count);
  return timedMeasurement(result, {
    rate: result.count / result.seconds,
    perCpu: result.count / (result.serverCpu * result.seconds),
    // What the server asked of the kernel per message (or delivery, or connection).
    reads: per(k.reads),
    readSize: k.readBytes / Math.max(1, k.reads),
    writes: per(k.writes),
    writeSize: k.writtenBytes / Math.max(1, k.writes),
    sleeps: per(k.sleeps),
    pageFaults: per(k.pageFaults),
    kernelShare: result.serverSystem / Math.max(1e-9, result.serverCpu),
  });
}

/** The line under a throughput group: the server's system calls and sleeps per unit counted, by kind (medians). */
function describeIo(results: Results, scenario: Scenario, unit: string): string {
  const m = (kind: Kind, field: string): number => results.samples.median(results.key(scenario, kind, field));
  const f = (n: number): string => (n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2));
  // uWS and Bun read (and Bun writes) with recv/send, which /proc/<pid>/io does not count.
  const calls = (kind: Kind, what: 'reads' | 'writes', size: string): string =>
    (kind === 'uws' || kind === 'bun') && m(kind, what) === 0
      ? `${what} not counted (recv/send)`
      : `${f(m(kind, what))} ${what} of ${formatNumber(m(kind, size))} B`;
  return KINDS.map(
    (kind) =>
      `${SHORT[kind]} ${calls(kind, 'reads', 'readSize')}, ${calls(kind, 'writes', 'writeSize')}, ${f(m(kind, 'sleeps'))} sleeps, ${f(m(kind, 'pageFaults'))} page faults, ` +
      `kernel ${(m(kind, 'kernelShare') * 100).toFixed(0)}% of its CPU`,
  ).join('; ') + ` per ${unit}`;
}

/** A throughput row's metrics: per wall second, and per server CPU-second. */
function rateMetrics(label: string): Scenario['metrics'] {
  return [
    { key: 'rate', label, format: perSecond },
    { key: 'perCpu', label: `${label.replace(/\/s$/, '')} per server CPU-second`, format: formatCount, perCpu: true },
  ];
}

function serverOf(mode: Mode, options: { nodeFlags?: readonly string[]; env?: Record<string, string> } = {}): Scenario['server'] {
  return { args: [mode], ...options };
}

function echoScenario(size: number, binary: boolean, inFlight: number): Scenario {
  const label = `${size >= 1024 ? `${size / 1024} KiB` : `${size} B`} ${binary ? 'binary' : 'text'}`;
  return {
    group: 'echo',
    name: `echo ${label}, 100 conns x ${inFlight} in flight`,
    server: serverOf('echo'),
    metrics: rateMetrics('messages/s'),
    throughput: true,
    async measure(load, server) {
      const result = await runTimed(load, server, settings, { type: 'echo', path: '/echo', connections: 100, inFlight, binary, size }, 'rate');
      return rateMeasurement(result);
    },
  };
}

const latencyScenario: Scenario = {
  group: 'latency',
  name: 'round trip 32 B text, 1 conn, 1 in flight',
  server: serverOf('echo'),
  metrics: [
    { key: 'p50', label: 'p50', format: micros },
    { key: 'p99', label: 'p99', format: micros },
  ],
  throughput: false,
  async measure(load, server) {
    const result: LatencyResult = await runTimed(load, server, settings, { type: 'latency', path: '/echo', size: 32 }, 'latency');
    return timedMeasurement(result, { p50: result.p50Us, p99: result.p99Us, rate: result.roundTrips / result.seconds });
  },
};

/**
 * Who opens the handshake and fan-out rows' connections: the C clients
 * (bench/lib/handshake-client.c, bench/lib/fanout-client.c), compiled now, or the load
 * generator's own Node sockets when asked (--client node) or when a C client cannot be
 * compiled, said loudly. A Node socket costs the load generator about as much as it costs
 * a server, so in those rows the faster servers waited on it.
 */
const C_CLIENTS: { handshake: string | undefined; fanout: string | undefined; name: string } = (() => {
  const node = { handshake: undefined, fanout: undefined, name: "the load generator's Node sockets" };
  if (args['client'] === 'node') return node;
  if (args['client'] !== undefined && args['client'] !== 'c') throw new Error('--client: c or node');
  const here = dirname(fileURLToPath(import.meta.url));
  const handshake = compileCClient(join(here, 'lib', 'handshake-client.c'));
  const fanout = compileCClient(join(here, 'lib', 'fanout-client.c'));
  if ('binary' in handshake && 'binary' in fanout) {
    return { handshake: handshake.binary, fanout: fanout.binary, name: "C clients on the load generator's core (bench/lib/handshake-client.c, fanout-client.c)" };
  }
  const why = 'error' in handshake ? handshake.error : 'error' in fanout ? fanout.error : '';
  console.log(`!! cannot compile the C clients (${why}): the load generator's Node sockets open the handshake and fan-out rows' connections, and the faster servers wait on them there`);
  return node;
})();

function fanoutScenario(subscribers: number): Scenario {
  return {
    group: 'fan-out',
    name: `publish 32 B text to ${subscribers.toLocaleString('en-US')} subscribers, 8 in flight`,
    server: serverOf('fanout'),
    metrics: rateMetrics('deliveries/s'),
    throughput: true,
    async measure(load, server) {
      const job = { type: 'fanout', path: '/fanout', subscribers, inFlight: 8, size: 32, lagLimit: 64, client: C_CLIENTS.fanout } as const;
      const result = await runTimed(load, server, settings, job, 'rate');
      return rateMeasurement(result);
    },
  };
}

const HANDSHAKE_CONCURRENCY = 16;
const handshakeScenario: Scenario = {
  group: 'handshakes',
  name: `connect, upgrade, close; ${HANDSHAKE_CONCURRENCY} at a time`,
  server: serverOf('echo'),
  metrics: rateMetrics('connections/s'),
  throughput: true,
  async measure(load, server) {
    const job = { type: 'handshake', path: '/echo', concurrency: HANDSHAKE_CONCURRENCY, client: C_CLIENTS.handshake } as const;
    const result = await runTimed(load, server, settings, job, 'rate');
    return rateMeasurement(result);
  },
};

function describeKind(kind: Kind): string {
  const state = NATIVE.get(kind);
  if (kind === 'ws-bufferutil') return 'ws + bufferutil';
  if (kind === 'uws') return `uWebSockets.js ${state?.available === true ? state.version : ''} (App().ws, app.publish)`;
  if (kind === 'bun') return `Bun ${state?.available === true ? state.version : ''} (Bun.serve, server.publish)`;
  return kind;
}

/** With --heap-snapshot, has the server write a heap snapshot named `<kind>-<label>-<stage>`. */
async function snapshot(server: Server, label: string, stage: string): Promise<void> {
  if (SNAPSHOT_DIR === null) return;
  server.child.send(`snapshot ${join(SNAPSHOT_DIR, `${server.kind}-${label}-${stage}.heapsnapshot`)}`);
  const line = await server.child.nextLine(120_000, 'snapshot');
  if (line !== 'snapshot') throw new BenchFailure(`${server.kind} server: unexpected answer '${line}' to snapshot`);
}

/** Lets the server sit idle {@link SETTLE_MS}, then collects garbage twice, a second apart (V8 releases what it shrank at the next collection). */
async function settle(server: Server): Promise<{ connections: number }> {
  await new Promise((done) => setTimeout(done, SETTLE_MS));
  await serverGc(server);
  await new Promise((done) => setTimeout(done, 1_000));
  return serverGc(server);
}

function memoryScenario(lean: boolean): Scenario {
  const leanFlags = ['--max-semi-space-size=1'];
  const leanEnv = { MALLOC_ARENA_MAX: '2' };
  return {
    group: 'memory',
    name: `RSS per idle connection at ${IDLE_CONNECTIONS.toLocaleString('en-US')}, ${lean ? 'lean flags' : 'default flags'}`,
    metrics: [
      { key: 'perConnection', label: 'bytes/connection', format: bytes },
      { key: 'marginal', label: `RSS per connection past ${IDLE_CONNECTIONS.toLocaleString('en-US')}`, format: bytes },
      { key: 'settled', label: `RSS per connection, all ${(IDLE_CONNECTIONS + MARGINAL_CONNECTIONS).toLocaleString('en-US')} idle ${SETTLE_MS / 1000} s`, format: bytes },
    ],
    throughput: false,
    server: serverOf('echo', { nodeFlags: ['--expose-gc', ...(lean ? leanFlags : [])], env: lean ? leanEnv : {} }),
    async measure(load, server) {
      const open = (connections: number, concurrency: number, echoOnce: boolean, hold: boolean) =>
        load.run({ type: 'open', port: server.port, path: '/echo', connections, concurrency, echoOnce, hold }, 'opened');
      const memory = await measureIdleConnections(server, IDLE_CONNECTIONS, {
        // Connections that handshake, echo once and close, so that code and pools that any
        // first connection brings in are not counted per connection.
        // Then idle, as at the last reading, so that what idling gives back is not counted
        // against the connections.
        warmUp: async () => {
          await open(200, 50, true, false);
          await settle(server);
        },
        open: () => open(IDLE_CONNECTIONS, 200, false, true),
        between: (stage) => snapshot(server, slug(lean ? 'lean' : 'default'), stage),
      });
      // What one more connection costs once the first ones have grown V8's young
      // generation (a cost of the burst, capped, not of each connection).
      await open(MARGINAL_CONNECTIONS, 200, false, true);
      const more = await serverGc(server);
      if (more.connections !== IDLE_CONNECTIONS + MARGINAL_CONNECTIONS) {
        throw new BenchFailure(`the server holds ${more.connections} connections, expected ${IDLE_CONNECTIONS + MARGINAL_CONNECTIONS}`);
      }
      const marginal = (processRssBytes(server.pid) - memory.after) / MARGINAL_CONNECTIONS;
      // Idle for a while: what a server holding these connections for minutes keeps.
      const settled = await settle(server);
      if (settled.connections !== more.connections) throw new BenchFailure(`the server holds ${settled.connections} connections after idling, expected ${more.connections}`);
      const settledPerConnection = (processRssBytes(server.pid) - memory.before) / settled.connections;
      await load.run({ type: 'closeAll' }, 'closed');
      return untimedMeasurement(
        { ...memory.values, marginal, settled: settledPerConnection },
        `RSS ${(memory.before / 2 ** 20).toFixed(1)} -> ${(memory.after / 2 ** 20).toFixed(1)} MiB; the server held all ${memory.held} connections`,
      );
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

async function main(): Promise<void> {
  const started = Date.now();
  const loadStart = loadavg()[0]!;
  preflight(settings);
  if (SNAPSHOT_DIR !== null) mkdirSync(SNAPSHOT_DIR, { recursive: true });

  const only = settings.only?.toLowerCase();
  const scenarios = SCENARIOS.filter(
    (s) => only === undefined || s.name.toLowerCase().includes(only) || s.group.includes(only),
  );
  if (scenarios.length === 0) throw new BenchFailure(`--only ${settings.only}: no scenario matches`);

  const others = KINDS.filter((kind) => kind !== 'hotline' && kind !== 'ws' && kind !== 'baseline');
  console.log(
    `server: hotline (${sourceState()}) vs ws ${wsVersion()} (plain JS masking)${others.length > 0 ? `, ${others.map(describeKind).join(', ')}` : ''}; ` +
      `node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}`,
  );
  for (const [kind, state] of NATIVE) {
    if (!state.available) console.log(`!! ${SHORT[kind]} SKIPPED: ${state.reason}`);
  }
  if (BASELINE !== null) console.log(`baseline: hotline at ${BASELINE} (${sourceState(BASELINE)})`);
  console.log(describeWindows(settings));
  console.log(`load generator: ${settings.spin ? 'spins (polls its event loop; default)' : 'sleeps in epoll between events (--sleep)'}`);
  if (scenarios.some((s) => s.group === 'handshakes' || s.group === 'fan-out')) console.log(`handshake and fan-out connections: ${C_CLIENTS.name}`);

  const results = new Results();
  const { samples, checks } = results;
  const key = (scenario: Scenario, kind: Kind, metric: string): string => results.key(scenario, kind, metric);
  await runRounds(scenarios, KINDS, settings, results);

  // Every figure beside ws's; hotline's beside uWS's too, the fastest it is measured against.
  const ratios: Array<[Kind, Kind]> = [
    ...KINDS.filter((kind) => kind !== 'ws').map((kind): [Kind, Kind] => [kind, 'ws']),
    ...(KINDS.includes('uws') ? [['hotline', 'uws'] as [Kind, Kind]] : []),
    ...(BASELINE !== null ? [['hotline', 'baseline'] as [Kind, Kind]] : []),
  ];
  const columns = columnsOf(
    'scenario',
    ...KINDS.map((kind) => SHORT[kind]),
    ...ratios.map(([of, to]) => `${SHORT[of]}/${SHORT[to]}`),
    ...KINDS.map((kind) => `CPU ${SHORT[kind]}`),
  );
  let lowerBounds = false;
  for (const { group, title, scenarios: inGroup } of groupsToShow(GROUPS, scenarios)) {
    const rows: string[][] = [];
    for (const scenario of inGroup) {
      if (KINDS.some((kind) => results.bound(scenario, kind))) lowerBounds = true;
      for (const metric of scenario.metrics) {
        const marks = metric.perCpu !== true;
        const share = (kind: Kind): string => {
          const s = results.busy(scenario, kind);
          return s === null ? '-' : `${(s * 100).toFixed(0)}%`;
        };
        const name = metric !== scenario.metrics[0] ? `  ${metric.label}` : scenario.name;
        rows.push([
          name,
          ...KINDS.map((kind) => results.valueCell(scenario, kind, metric, marks)),
          ...ratios.map(([of, to]) => results.ratioCell(scenario, to, metric.key, marks, of)),
          ...KINDS.map((kind) => (marks ? share(kind) : '')),
        ]);
      }
    }
    console.log('');
    console.log(title);
    console.log(formatTable(columns, rows));
    results.printFooter(group, inGroup, KINDS, settings);
    const unit = group === 'echo' ? 'message' : group === 'fan-out' ? 'delivery' : group === 'handshakes' ? 'connection' : null;
    if (unit !== null) {
      console.log('  the server\'s system calls (all threads; /proc/<pid>/io) and sleeps (main thread\'s voluntary context switches):');
      for (const scenario of inGroup) console.log(`    ${scenario.name}: ${describeIo(results, scenario, unit)}`);
    }
    if (group === 'memory') {
      for (const scenario of inGroup) {
        console.log(`  ${scenario.name}: RSS ${describeRss(results, scenario, KINDS)}`);
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
    '  CPU columns: the server process\'s CPU time (all threads) over the counted window, as a share of one core (median).\n' +
      '  per server CPU-second: the count over the server\'s CPU time in the window, so a row that the load generator or the\n' +
      '      round trips limited (server under 90% busy) still compares the servers\' cost per message.',
  );
  if (lowerBounds) console.log(LOWER_BOUND_NOTE);
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
      '      client.send(data, { binary }); uWS subscribes in open and calls app.publish, Bun server.publish (both native\n' +
      '      topic fan-out; their send-buffer limits raised to 64 MiB so that publish never skips a subscriber).',
  );
  console.log(
    `all ${results.measurements} measurements verified (echo sizes and types, the first message of each connection byte for byte,\n` +
      '  every subscriber got every publish, every handshake got its 101 and close frame, counts add up); ' +
      `load average ${loadStart.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}; took ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  if (settings.samples) {
    for (const [name, list] of checks) console.log(`  checked ${name.replace(/\|checked$/, '')}: ${list[list.length - 1]}`);
  }
}

await runBench(main);
