/**
 * The channel protocol beside what a user would build instead: hotline.v1 (`hotline serve`'s
 * hub), a `ws` server with a Map of channels and JSON fan-out, and Socket.IO rooms; with
 * `--kinds ...,uws`, the ws equivalent's protocol on uWebSockets.js's native pub/sub too.
 *
 *   node --import tsx bench/channels.ts [--quick] [--scenarios 1x10000,1000x10]
 *                                       [--kinds hotline,ws,uws,socket.io] [--window S]
 *                                       [--in-flight W] [--baseline DIR] [--profile DIR]
 *   npm run bench -- channels
 *
 * Scenarios: 1 channel × 10,000 subscribers (2 publishers, 8 messages in flight each) and
 * 1,000 channels × 10 subscribers (4 publishers, 64 in flight each); a message is in flight
 * until every subscriber of its channel has it. Each server (bench/lib/channels-server-main.ts)
 * runs alone on CPU 0, in a fresh process per scenario; the subscribers and publishers
 * (bench/lib/channels-client-main.ts: raw sockets for hotline and ws, socket.io-client for
 * Socket.IO) in one process on CPU 1. After a warm-up, a counted window: deliveries/s, the
 * server's and the load process's CPU share (/proc), deliveries per server CPU-second, and
 * p50/p99 from publish to delivery (the send time is in each message). Then the publishers
 * stop, what is in flight arrives, and every subscriber is checked: each message once, in
 * order, none missing.
 *
 * --quick         2 s counted, 2,000 subscribers of the one channel, 200 channels × 10
 * --in-flight W   messages each publisher keeps in flight, instead of the scenario's
 * --baseline DIR  adds `baseline`: hotline from another checkout (its own
 *                 bench/lib/channels-server-main.ts and src/), to compare two versions in one run
 * --profile DIR   writes a CPU profile of each hotline (and baseline) server's counted window
 *                 to DIR (summarise with bench/lib/profile-summary.ts)
 *
 * Descriptors: each process holds one per connection; the 10,000 subscribers fit the usual
 * hard limit of 20,000 here without raising it.
 */
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LineChild } from './lib/children.js';
import { cpuBusySeconds, cpuShareMeter, type CpuShare } from './lib/proc.js';
import { BenchFailure, LOAD_CPU, SERVER_CPU } from './lib/processes.js';
import { uwsAvailability } from './lib/native-servers.js';
import { BUSY_THRESHOLD, runBench, sourceState, wsVersion } from './lib/rounds.js';
import { columnsOf, formatCount, formatNumber, formatTable } from './lib/table.js';

const here = dirname(fileURLToPath(import.meta.url));
const SERVER_MAIN = join(here, 'lib', 'channels-server-main.ts');
const CLIENT_MAIN = join(here, 'lib', 'channels-client-main.ts');

interface Scenario {
  name: string;
  title: string;
  channels: number;
  perChannel: number;
  publishers: number;
  inFlight: number;
}
const SCENARIOS: readonly Scenario[] = [
  { name: '1x10000', title: '1 channel × 10,000 subscribers', channels: 1, perChannel: 10_000, publishers: 2, inFlight: 8 },
  { name: '1000x10', title: '1,000 channels × 10 subscribers', channels: 1_000, perChannel: 10, publishers: 4, inFlight: 64 },
];
const QUICK: Record<string, Partial<Scenario>> = { '1x10000': { perChannel: 2_000 }, '1000x10': { channels: 200 } };

type Kind = 'hotline' | 'baseline' | 'ws' | 'uws' | 'socket.io';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenarios: { type: 'string' },
    kinds: { type: 'string', default: 'hotline,ws,socket.io' },
    window: { type: 'string' },
    baseline: { type: 'string' },
    profile: { type: 'string' },
    'in-flight': { type: 'string' },
  },
  strict: true,
});
const quick = args.quick === true;
const windowSeconds = Number(args.window ?? (quick ? 2 : 5));
const warmupSeconds = quick ? 1 : 2;
const baseline = args.baseline === undefined ? null : resolve(args.baseline);
const profileDir = args.profile === undefined ? null : resolve(args.profile);
const kinds = String(args.kinds).split(',').map((k) => k.trim()) as Kind[];
for (const kind of kinds) if (!['hotline', 'ws', 'uws', 'socket.io'].includes(kind)) throw new Error(`--kinds: unknown kind '${kind}' (hotline, ws, uws, socket.io)`);
if (kinds.includes('uws')) {
  const state = uwsAvailability();
  if (!state.available) {
    console.log(`!! uWS SKIPPED: ${state.reason}`);
    kinds.splice(kinds.indexOf('uws'), 1);
  }
}
if (baseline !== null) kinds.splice(1, 0, 'baseline');
const chosen = args.scenarios === undefined ? SCENARIOS : String(args.scenarios).split(',').map((name) => {
  const found = SCENARIOS.find((s) => s.name === name.trim());
  if (found === undefined) throw new Error(`--scenarios: unknown '${name}' (${SCENARIOS.map((s) => s.name).join(', ')})`);
  return found;
});
const inFlight = args['in-flight'] === undefined ? null : Number(args['in-flight']);
if (inFlight !== null && !(Number.isInteger(inFlight) && inFlight > 0)) throw new Error('--in-flight must be a positive integer');
const scenarios = chosen.map((s) => ({ ...s, ...(quick ? QUICK[s.name] : {}), ...(inFlight === null ? {} : { inFlight }) }));

interface Row {
  kind: Kind;
  note: string;
  rate: number;
  server: CpuShare;
  load: CpuShare;
  p50: number;
  p99: number;
  max: number;
  checked: string;
  loadAverage: [number, number];
  /** How busy the server's CPU was with anything (other processes of a shared machine too). */
  serverCore: number;
}

interface WindowEnd {
  type: 'window';
  phase: 'end';
  seconds: number;
  deliveries: number;
  publishes: number;
  p50: number;
  p99: number;
  max: number;
}

function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // ws loads bufferutil when it is installed, as it does for users.
  delete env.WS_NO_BUFFER_UTIL;
  return env;
}

async function next<T extends { type: string }>(child: LineChild, expect: string, timeoutMs: number): Promise<T> {
  const line = await child.nextLine(timeoutMs, expect);
  const answer = JSON.parse(line) as T & { message?: string };
  if (answer.type === 'error') throw new BenchFailure(`${child.name}: ${answer.message}`);
  if (answer.type !== expect) throw new BenchFailure(`${child.name}: said ${line.slice(0, 200)}, expected ${expect}`);
  return answer;
}

async function measure(scenario: Scenario, kind: Kind): Promise<Row> {
  const main = kind === 'baseline' ? join(baseline!, 'bench', 'lib', 'channels-server-main.ts') : SERVER_MAIN;
  const server = new LineChild(`${kind} server`, SERVER_CPU, ['--import', 'tsx', main, kind === 'baseline' ? 'hotline' : kind], serverEnv());
  let client: LineChild | null = null;
  const loadBefore = loadavg()[0]!;
  try {
    const ready = await server.nextLine(30_000, 'start');
    const [word, port, pid, note] = ready.split(' ');
    if (word !== 'ready') throw new BenchFailure(`${kind} server: unexpected first line '${ready}'`);
    if (Number(pid) !== server.pid) throw new BenchFailure(`${kind} server: pid ${pid}, expected ${server.pid} (taskset did not exec?)`);
    const job = {
      // uWS serves the ws equivalent's protocol.
      kind: kind === 'baseline' ? 'hotline' : kind === 'uws' ? 'ws' : kind,
      port: Number(port),
      channels: scenario.channels,
      perChannel: scenario.perChannel,
      publishers: scenario.publishers,
      inFlight: scenario.inFlight,
      warmupMs: warmupSeconds * 1000,
      windowMs: windowSeconds * 1000,
    };
    client = new LineChild(`${kind} load`, LOAD_CPU, ['--import', 'tsx', CLIENT_MAIN, JSON.stringify(job)], process.env);
    await next(client, 'opened', 180_000);
    await next(client, 'window', 30_000);
    const profiling = profileDir !== null && (kind === 'hotline' || kind === 'baseline');
    if (profiling) server.send('profile-start');
    const coreBefore = cpuBusySeconds(SERVER_CPU);
    const serverCpu = cpuShareMeter(server.pid);
    const loadCpu = cpuShareMeter(client.pid);
    const end = await next<WindowEnd>(client, 'window', windowSeconds * 1000 + 30_000);
    const serverShare = serverCpu.stop();
    const serverCore = (cpuBusySeconds(SERVER_CPU) - coreBefore) / serverShare.wallSeconds;
    const loadShare = loadCpu.stop();
    if (profiling) {
      server.send(`profile-stop ${join(profileDir!, `channels-${scenario.name}-${kind}.cpuprofile`)}`);
      const line = await server.nextLine(30_000, 'profile-stop');
      if (line !== 'profiled') throw new BenchFailure(`${kind} server: answered '${line}' to profile-stop`);
    }
    const done = await next<{ type: 'done'; checked: string }>(client, 'done', 60_000);
    return {
      kind,
      note: note ?? kind,
      rate: end.deliveries / end.seconds,
      server: serverShare,
      load: loadShare,
      p50: end.p50,
      p99: end.p99,
      max: end.max,
      checked: done.checked,
      loadAverage: [loadBefore, loadavg()[0]!],
      serverCore,
    };
  } finally {
    // The server first: its side of every connection closes, not the client's ephemeral ports.
    await server.stop('exit', 10_000);
    await client?.stop(null, 10_000);
  }
}

const busy = (row: Row): boolean => row.server.share >= BUSY_THRESHOLD;

/** A ratio of rates, marked ≥ / ≤ / ? where one or both rates are lower bounds (server not busy). */
function ratio(a: Row, b: Row | undefined): string {
  if (b === undefined || a === b) return '';
  const value = `${(a.rate / b.rate).toFixed(2)}×`;
  if (busy(a) && busy(b)) return value;
  if (!busy(a) && !busy(b)) return `? ${value}`;
  return busy(a) ? `≤ ${value}` : `≥ ${value}`;
}

/** A latency in ms; -1 stands for one past the client's histogram (10 s). */
function latency(ms: number): string {
  return ms < 0 ? '> 10 s' : `${formatNumber(ms)} ms`;
}

function perCpu(row: Row): number {
  return row.rate / row.server.share;
}

async function main(): Promise<void> {
  if (profileDir !== null) mkdirSync(profileDir, { recursive: true });
  const startedAt = Date.now();
  const loadStart = loadavg();
  console.log(
    `channels: ${sourceState()}, ws ${wsVersion()}, socket.io 4; server on CPU ${SERVER_CPU}, subscribers and publishers on CPU ${LOAD_CPU}; ` +
      `${warmupSeconds} s warm-up, ${windowSeconds} s counted; load average ${loadStart.map((l) => l.toFixed(2)).join(' ')}`,
  );
  const tables: string[] = [];
  for (const scenario of scenarios) {
    const rows: Row[] = [];
    for (const kind of kinds) {
      const row = await measure(scenario, kind);
      rows.push(row);
      console.log(
        `  ${scenario.name} ${kind}: ${formatCount(row.rate)} deliveries/s, server ${(row.server.share * 100).toFixed(0)}% busy ` +
          `(its CPU ${(row.serverCore * 100).toFixed(0)}% with other processes), load ${(row.load.share * 100).toFixed(0)}%, ` +
          `p99 ${latency(row.p99)}, load average ${row.loadAverage.map((l) => l.toFixed(2)).join(' -> ')}`,
      );
    }
    const ws = rows.find((r) => r.kind === 'ws');
    const io = rows.find((r) => r.kind === 'socket.io');
    const table = formatTable(
      columnsOf('server', 'deliveries/s', 'vs ws', 'vs socket.io', 'server CPU', 'its core', 'per server CPU-s', 'vs ws', 'vs socket.io', 'p50', 'p99', 'load CPU'),
      rows.map((r) => [
        `${busy(r) ? '' : '≥ '}${r.kind === 'ws' ? r.note : r.kind}`,
        formatCount(r.rate),
        ratio(r, ws),
        ratio(r, io),
        `${(r.server.share * 100).toFixed(0)}%`,
        `${(r.serverCore * 100).toFixed(0)}%`,
        formatCount(perCpu(r)),
        ws === undefined || r === ws ? '' : `${(perCpu(r) / perCpu(ws)).toFixed(2)}×`,
        io === undefined || r === io ? '' : `${(perCpu(r) / perCpu(io)).toFixed(2)}×`,
        latency(r.p50),
        latency(r.p99),
        `${(r.load.share * 100).toFixed(0)}%`,
      ]),
    );
    const s = scenario;
    tables.push(
      `${s.title.replace(/10,000|1,000/g, (m) => m)}${quick ? ' (quick: ' + (s.channels * s.perChannel).toLocaleString('en-US') + ' subscribers)' : ''}; ` +
        `${s.publishers} publishers × ${s.inFlight} messages in flight\n${table}\n` +
        rows.map((r) => `  checked ${r.kind}: ${r.checked}`).join('\n'),
    );
  }
  console.log('');
  console.log(tables.join('\n\n'));
  console.log('');
  console.log('notes:');
  console.log(
    '  deliveries/s: messages received by all subscribers together over the counted window. server CPU: its CPU time (user +\n' +
      '      system, /proc) over the window\'s wall time; its core: how busy that CPU was with anything (other processes of a\n' +
      '      shared machine too). per server CPU-s: deliveries/s over the server\'s share, to compare servers that something\n' +
      '      other than their own work held back. load CPU: the same share for the subscribers and publishers.\n' +
      '  p50/p99: from a message\'s send by its publisher to its arrival at a subscriber, over every delivery of the window\n' +
      '      (10 µs buckets); with a bounded number in flight this is queueing at full load, not an idle round trip.\n' +
      `  ≥ : the server was busy less than ${BUSY_THRESHOLD * 100}% of the window (the load process, or other processes on its core when\n` +
      '      "its core" is near 100%, held it back): its rate is a lower bound of what it can do, and a ratio is marked ≥ or ≤\n' +
      '      when one side is such a bound, "?" when both are.\n' +
      '  hotline: `hotline serve`\'s app with its defaults, but for the per-address connection cap and the publish rate\n' +
      '      (lifted), no compression, and presence off (the others keep no member lists).' +
      (kinds.includes('uws') ? '\n  uws: uWebSockets.js on the ws equivalent\'s protocol, its channels its own pub/sub (subscribe, app.publish).' : ''),
  );
  console.log(`  load average ${loadStart[0]!.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}; took ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
}

await runBench(main);
