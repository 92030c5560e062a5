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
import { cpus, loadavg } from 'node:os';
import { deflateAlone } from './lib/deflate-frames.js';
import { deflatePayloads } from './lib/deflate-payloads.js';
import type { DeflateMessages } from './lib/load-jobs.js';
import { ALL_KINDS, ask, BenchFailure, type Kind } from './lib/processes.js';
import { benchArgs, describeRss, describeWindows, groupsToShow, LOWER_BOUND_NOTE, measureIdleConnections, pct, preflight, Results, runBench, runRounds, runTimed, sourceState, timedMeasurement, untimedMeasurement, wsVersion } from './lib/rounds.js';
import type { Measurement, ScenarioBase } from './lib/rounds.js';
import { columnsOf, formatCount, formatNumber, formatTable } from './lib/table.js';

/** Both ws and hotline compress messages from this size on by default. */
const DEFAULT_THRESHOLD = 1024;

const { settings, values: args } = benchArgs({ kinds: { type: 'string', default: 'hotline,ws-bufferutil' } }, { warmupMs: 700, quickWarmupMs: 300 });
const MEMORY_CONNECTIONS = settings.quick ? 2_000 : 10_000;
const KINDS: readonly Kind[] = String(args['kinds'] ?? '').split(',').map((k) => {
  const kind = k.trim() as Kind;
  if (!ALL_KINDS.includes(kind)) throw new Error(`--kinds: unknown kind '${k}' (${ALL_KINDS.join(', ')})`);
  return kind;
});
if (!KINDS.includes('hotline') || KINDS.length < 2) throw new Error('--kinds must name hotline and at least one ws kind');
const OTHERS = KINDS.filter((kind) => kind !== 'hotline');
const SHORT: Record<Kind, string> = { hotline: 'hotline', ws: 'ws', 'ws-bufferutil': 'ws+bu', uws: 'uWS', bun: 'Bun', baseline: 'baseline' };

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

interface DeflateMeasurement extends Measurement {
  negotiated: string;
  /** What the server kept for permessage-deflate (memory scenario). */
  held?: Record<string, number>;
}

interface Scenario extends ScenarioBase<DeflateMeasurement> {
  group: Group;
  threshold: number;
  metrics: readonly Metric[];
}

const perSecond = (value: number): string => `${formatCount(value)}/s`;
const perCpuSecond = (value: number): string => formatCount(value);
const bytes = (value: number): string => `${formatNumber(value)} B`;

/** server-main.ts's arguments for an echo server compressing from `threshold` bytes. */
function serverOf(threshold: number, nodeFlags: readonly string[] = []): Scenario['server'] {
  return { args: ['echo', '--deflate-threshold', String(threshold)], nodeFlags };
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
    throughput: true,
    server: serverOf(threshold),
    metrics: [
      { key: 'rate', label: 'messages/s', format: perSecond, rate: true },
      { key: 'perCpu', label: 'messages per server CPU-second', format: perCpuSecond },
      { key: 'in', label: 'wire B/msg server->client', format: bytes, compressedKey: 'inCompressed' },
      { key: 'out', label: 'wire B/msg client->server', format: bytes, compressedKey: 'outCompressed' },
    ],
    async measure(load, server) {
      const job = { type: 'deflateEcho', path: '/echo', connections: 100, inFlight, ...messages, clientThreshold: threshold } as const;
      const result = await runTimed(load, server, settings, job, 'deflateRate');
      return {
        ...timedMeasurement(result, {
          rate: result.count / result.seconds,
          perCpu: result.count / (result.serverCpu * result.seconds),
          in: result.receivedBytesPerMessage,
          out: result.sentBytesPerMessage,
          inCompressed: result.receivedCompressed,
          outCompressed: result.sentCompressed,
        }),
        negotiated: result.negotiated,
      };
    },
  };
}

const memoryScenario: Scenario = {
  group: 'memory',
  name: `RSS per connection at ${MEMORY_CONNECTIONS.toLocaleString('en-US')}, one 2 KiB message each, default flags`,
  threshold: DEFAULT_THRESHOLD,
  throughput: false,
  server: serverOf(DEFAULT_THRESHOLD, ['--expose-gc']),
  metrics: [{ key: 'perConnection', label: 'bytes/connection', format: bytes }],
  async measure(load, server) {
    const open = (connections: number, concurrency: number, hold: boolean) =>
      load.run({ type: 'deflateOpen', port: server.port, path: '/echo', connections, concurrency, hold, ...MEMORY_MESSAGE }, 'deflateOpened');
    let held: Record<string, number> = {};
    const memory = await measureIdleConnections(server, MEMORY_CONNECTIONS, {
      // Connections that negotiate, echo once compressed and close, so that code and pools
      // any first connection brings in are not counted per connection.
      warmUp: () => open(200, 50, false),
      open: () => open(MEMORY_CONNECTIONS, 200, true),
      async between(stage) {
        if (stage === 'after') held = (await ask<Record<string, number>>(server, 'deflate-state')).json;
      },
    });
    await load.run({ type: 'closeAll' }, 'closed');
    const opened = memory.opened;
    if (opened.compressedReplies !== MEMORY_CONNECTIONS) {
      throw new BenchFailure(`only ${opened.compressedReplies} of ${MEMORY_CONNECTIONS} replies came back compressed`);
    }
    return {
      ...untimedMeasurement(memory.values, `RSS ${(memory.before / 2 ** 20).toFixed(1)} -> ${(memory.after / 2 ** 20).toFixed(1)} MiB; ${opened.checked}`),
      negotiated: opened.negotiated,
      held,
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

/** Sizes of a message set, plain and compressed on its own (as the load generator sends them). */
function describeMessages(spec: Omit<DeflateMessages, 'clientThreshold'>): string {
  const payloads = deflatePayloads(spec);
  const plain = payloads.map((p) => p.length);
  const packed = payloads.map((p) => deflateAlone(p).length);
  const mean = (list: number[]): number => list.reduce((a, b) => a + b, 0) / list.length;
  const range = Math.min(...plain) === Math.max(...plain) ? `${plain[0]} B` : `${Math.min(...plain)}-${Math.max(...plain)} B (mean ${mean(plain).toFixed(0)})`;
  return `${payloads.length} distinct, ${range}, each compressed on its own to ${mean(packed).toFixed(0)} B on average (${(mean(plain) / mean(packed)).toFixed(1)}x)`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadStart = loadavg()[0]!;
  preflight(settings);

  const only = settings.only?.toLowerCase();
  const scenarios = SCENARIOS.filter((s) => only === undefined || s.name.toLowerCase().includes(only) || s.group.includes(only));
  if (scenarios.length === 0) throw new BenchFailure(`--only ${settings.only}: no scenario matches`);

  const describeKind = (kind: Kind): string =>
    kind === 'hotline' ? `hotline (${sourceState()})` : kind === 'ws' ? `ws ${wsVersion()} (plain JS masking)` : `ws ${wsVersion()} + bufferutil`;
  console.log(
    `permessage-deflate: ${KINDS.map(describeKind).join(' vs ')}; ` +
      `node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}`,
  );
  console.log(`${describeWindows(settings)}; load average ${loadStart.toFixed(2)}`);

  const results = new Results();
  const { samples, checks } = results;
  const negotiated = new Map<string, Set<string>>();
  const held = new Map<string, Record<string, number>>();
  const key = (scenario: Scenario, kind: Kind, metric: string): string => results.key(scenario, kind, metric);
  await runRounds(scenarios, KINDS, settings, results, (scenario, kind, _round, m) => {
    const set = negotiated.get(kind) ?? new Set<string>();
    set.add(m.negotiated);
    negotiated.set(kind, set);
    if (m.held !== undefined) held.set(key(scenario, kind, 'held'), m.held);
  });

  const columns = columnsOf(
    'scenario',
    ...KINDS.map((kind) => (kind === 'ws-bufferutil' ? 'ws+bufferutil' : kind)),
    ...OTHERS.map((kind) => `hotline/${SHORT[kind]}`),
    ...KINDS.map((kind) => `CPU ${SHORT[kind]}`),
  );
  let lowerBounds = false;
  for (const { group, title, scenarios: inGroup } of groupsToShow(GROUPS, scenarios)) {
    const rows: string[][] = [];
    for (const scenario of inGroup) {
      for (const [i, metric] of scenario.metrics.entries()) {
        const marks = metric.rate === true;
        const value = (kind: Kind): string => {
          const compressed =
            metric.compressedKey === undefined ? '' : ` (${pct(samples.median(key(scenario, kind, metric.compressedKey)))} deflated)`;
          return `${results.valueCell(scenario, kind, metric, marks)}${compressed}`;
        };
        const ratio = (other: Kind): string => results.ratioCell(scenario, other, metric.key, marks);
        const share = (kind: Kind): string => {
          const s = results.busy(scenario, kind);
          return s === null || i > 0 ? '' : pct(s);
        };
        if (marks && KINDS.some((kind) => results.bound(scenario, kind))) lowerBounds = true;
        const name = scenario.metrics.length > 1 ? (i === 0 ? `${scenario.name}: ${metric.label}` : `  ${metric.label}`) : scenario.name;
        rows.push([name, ...KINDS.map(value), ...OTHERS.map(ratio), ...KINDS.map(share)]);
      }
    }
    console.log('');
    console.log(title);
    console.log(formatTable(columns, rows));
    results.printFooter(group, inGroup, KINDS, settings);
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
        console.log(`  RSS: ${describeRss(results, scenario, KINDS)}`);
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
  if (lowerBounds) console.log(LOWER_BOUND_NOTE);
  console.log(
    '  memory: the server runs with --expose-gc (GC forced twice before each RSS reading) and first serves 200 connections\n' +
      '      that negotiate, echo one compressed message and close; then every connection negotiates, sends one compressed\n' +
      '      2 KiB message, gets it back compressed (checked) and stays open, idle.',
  );
  console.log(
    `all ${results.measurements} measurements verified (negotiation, every echo counted and of the right type, the first replies of\n` +
      '  each connection in full, inflated where compressed); ' +
      `load average ${loadStart.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}; took ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  if (settings.samples) {
    for (const [name, list] of checks) console.log(`  checked ${name.replace(/\|checked$/, '')}: ${list[list.length - 1]}`);
  }
}

await runBench(main);
