/**
 * Scale on one process: many idle WebSocket connections (100,000 by default) held by one
 * server process, as `hotline serve` runs them, and what they cost.
 *
 *   node --import tsx bench/scale.ts [--connections N] [--kinds serve,hotline,ws,uws,bun]
 *                                    [--publishes N] [--idle-seconds S] [--settle-seconds S]
 *                                    [--concurrency C]
 *                                    [--client c|node] [--sleep]
 *   npm run build && npm run bench -- scale
 *
 * For each server: the server (alone on CPU 0) and the clients (processes of their own on
 * CPU 1, on raw sockets, spread over source addresses 127.0.0.2-33 so that no address runs
 * out of ephemeral ports) start; the clients open the connections, C at a time; then the
 * server's RSS growth per connection, its CPU share while all of them sit idle (heartbeats,
 * timers), its RSS growth per connection once they have sat idle --settle-seconds longer
 * (V8 gives back, unforced, the young generation the burst of upgrades grew), and the time
 * from a publish to its delivery at every connection (each checked: every connection gets
 * every publish once, in order), over --publishes publishes. Then
 * (C client only) the same with 1 KiB of padding in each message, first with every
 * connection reading and then with every tenth one not reading (opened with a 4 KiB
 * receive buffer, so that the server soon holds what it cannot write): the time to reach
 * the other 90%, and then how long the slow tenth takes to get everything once it reads,
 * each message once and in order, none dropped without a close.
 *
 * Kinds: `serve` is `hotline serve` from dist/ (npm run build first) with its default flags
 * but for --max-connections 0 and the per-address limits off (--max-connections-per-address 0,
 * --connection-rate-per-address 0: 100,000 over 32 source addresses is 3,125 each, past the
 * 1,000 one address may hold), --log-level warn (info logs every connection) and a channel
 * `scale` without presence; each connection subscribes with hotline.v1 and the publishes go
 * through the HTTP API. `hotline`, `ws` (with bufferutil), `uws` and `bun` are
 * bench/lib/server-main.ts's fan-out servers (topics, no heartbeats): connection 0 sends each message and the server
 * publishes it to every connection.
 *
 * Descriptors: the server needs one per connection and the clients one each. The benchmark
 * raises the limits of its children with prlimit(1) to what the count needs; where it may
 * not (the hard limit is lower and raising it needs CAP_SYS_RESOURCE), it says so loudly and
 * runs with the most connections the server's limit allows. Clients are split over as many
 * processes as their limit requires.
 *
 * Clients: `c` (the default) is bench/lib/scale-client.c, compiled with the system's `cc`
 * at the start; `node` is bench/lib/scale-client-main.ts. Both speak the same jobs and check
 * the same things. The Node client spends several microseconds of its core on each frame,
 * so with every connection on one core its "publish to all" was the clients' time (about
 * 200 ms for every server alike at 19,744 connections); the C client leaves the server's.
 * The C client spins (polls epoll without sleeping, as bench/server.ts's load generator
 * does by default); with --sleep it sleeps in epoll, and then each write of the server to
 * a sleeping client pays for waking it on the other core (about 40% more per delivery on
 * this machine). Without a compiler the run falls back to the Node client, says so with
 * `!!`, and skips the slow-reader passes, which need the C client.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compileCClient } from './lib/c-client.js';
import { LineChild } from './lib/children.js';
import { bunAvailability, bunExecutable, uwsAvailability } from './lib/native-servers.js';
import { cpuShareMeter, processRssBytes } from './lib/proc.js';
import { BenchFailure, LOAD_CPU, SERVER_CPU } from './lib/processes.js';
import { runBench } from './lib/rounds.js';
import { median } from './lib/stats.js';
import { columnsOf, formatNumber, formatTable } from './lib/table.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '..', 'dist', 'cli', 'main.js');
const CLIENT_MAIN = join(here, 'lib', 'scale-client-main.ts');
const CLIENT_SOURCE = join(here, 'lib', 'scale-client.c');
const SERVER_MAIN = join(here, 'lib', 'server-main.ts');
const BUN_SERVER_MAIN = join(here, 'lib', 'bun-server-main.ts');
/** Descriptors a process needs besides its connections (stdio, epoll, libuv, the listener...). */
const SPARE_DESCRIPTORS = 256;
const API_KEY = 'scale-bench-key-0123456789abcdef';
/** Every SLOW_EVERY-th connection reads slowly in the last pass: 10%, as the issue asks. */
const SLOW_EVERY = 10;
/** Padding in each message of the last two passes, so that a slow reader's backlog reaches the server. */
const PAD_BYTES = 1024;
const CHANNEL = 'scale';
const KINDS = ['serve', 'hotline', 'ws', 'uws', 'bun'] as const;
type ScaleKind = (typeof KINDS)[number];

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '100000' },
    kinds: { type: 'string', default: 'serve' },
    publishes: { type: 'string', default: '20' },
    'idle-seconds': { type: 'string', default: '10' },
    'settle-seconds': { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '256' },
    quick: { type: 'boolean', default: false },
    client: { type: 'string', default: 'c' },
    sleep: { type: 'boolean', default: false },
  },
});
if (args.client !== 'c' && args.client !== 'node') throw new Error(`--client must be c or node, not '${args.client}'`);
const positive = (name: string, value: string | undefined): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
};
const WANTED = args.quick ? 5_000 : positive('connections', args.connections);
const PUBLISHES = args.quick ? 5 : positive('publishes', args.publishes);
const IDLE_SECONDS = args.quick ? 2 : positive('idle-seconds', args['idle-seconds']);
/** Idle time after the idle-CPU window before RSS is read again: V8's memory reducer shrinks the young generation some 25 s into a quiet spell. */
const SETTLE_SECONDS = args.quick ? 2 : positive('settle-seconds', args['settle-seconds']);
const CONCURRENCY = positive('concurrency', args.concurrency);
const CHOSEN = String(args.kinds).split(',').map((k) => {
  if (!(KINDS as readonly string[]).includes(k.trim())) throw new Error(`--kinds: unknown kind '${k}' (${KINDS.join(', ')})`);
  return k.trim() as ScaleKind;
});

/** The hard descriptor limit children can be given: prlimit raises it where allowed, else what is there. */
function descriptorLimit(wanted: number): { limit: number; raised: boolean } {
  const tried = spawnSync('prlimit', [`--nofile=${wanted}:${wanted}`, 'true']);
  if (tried.status === 0) return { limit: wanted, raised: true };
  const hard = Number(spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim());
  return { limit: Number.isFinite(hard) ? hard : 1024, raised: false };
}

/** The client command: the C client compiled now, or the Node one (asked for, or when compiling fails, said loudly). */
function clientCommand(): { executable: string; args: string[]; name: string; slowReaders: boolean } {
  const node = { executable: process.execPath, args: ['--import', 'tsx', CLIENT_MAIN], name: 'Node (scale-client-main.ts)', slowReaders: false };
  if (args.client === 'node') {
    console.log('!! --client node: the 1 KiB and slow-reader passes need the C client and are skipped');
    return node;
  }
  const built = compileCClient(CLIENT_SOURCE);
  if ('binary' in built) return { executable: built.binary, args: args.sleep ? ['--sleep'] : [], name: `C (scale-client.c, epoll, ${args.sleep ? 'sleeping' : 'spinning'})`, slowReaders: true };
  console.log(`!! cannot compile ${CLIENT_SOURCE} (${built.error}): the Node client measures instead, "publish->all" is then mostly its own time, and the slow-reader passes are skipped`);
  return node;
}

/** A child with `limit` descriptors (soft and hard), pinned to `cpu`, running node (or bun). */
function child(name: string, cpu: number, limit: number, command: readonly string[], executable = process.execPath): LineChild {
  return new LineChild(name, cpu, [`--nofile=${limit}:${limit}`, executable, ...command], process.env, 'prlimit');
}

interface Started {
  server: LineChild;
  port: number;
}

async function startServer(kind: ScaleKind, limit: number): Promise<Started> {
  if (kind === 'serve') {
    if (!existsSync(CLI)) throw new BenchFailure(`${CLI} is missing: run 'npm run build' first`);
    const namespaces = JSON.stringify({ [CHANNEL]: { subscribe: 'anyone', publish: 'server', presence: false } });
    const server = child('hotline serve', SERVER_CPU, limit, [
      CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--max-connections', '0',
      '--max-connections-per-address', '0', '--connection-rate-per-address', '0',
      '--api-key', API_KEY, '--log-level', 'warn', '--namespaces', namespaces,
    ]);
    for (;;) {
      const line = await server.nextLine(30_000, 'start');
      const match = /listening on http:\/\/[^/]*:(\d+)\//.exec(line);
      if (match !== null) return { server, port: Number(match[1]) };
    }
  }
  const server = kind === 'bun'
    ? child('bun server', SERVER_CPU, limit, [BUN_SERVER_MAIN, 'fanout'], bunExecutable() ?? 'bun')
    : child(`${kind} server`, SERVER_CPU, limit, ['--import', 'tsx', SERVER_MAIN, kind === 'ws' ? 'ws-bufferutil' : kind, 'fanout']);
  const line = await server.nextLine(30_000, 'start');
  const [word, port] = line.split(' ');
  if (word !== 'ready') throw new BenchFailure(`${kind} server: unexpected first line '${line}'`);
  return { server, port: Number(port) };
}

interface Answer {
  type: string;
  message?: string;
  count?: number;
  ms?: number;
  delivered?: number;
}

async function ask(client: LineChild, job: object, expect: string, timeoutMs: number): Promise<Answer> {
  client.send(JSON.stringify(job));
  const answer = JSON.parse(await client.nextLine(timeoutMs, expect)) as Answer;
  if (answer.type === 'error') throw new BenchFailure(`${client.name}: ${answer.message}`);
  if (answer.type !== expect) throw new BenchFailure(`${client.name}: answered ${answer.type}, expected ${expect}`);
  return answer;
}

interface Row {
  kind: ScaleKind;
  connections: number;
  openSeconds: number;
  rssPerConnection: number;
  rssAfter: number;
  /** RSS growth per connection once every connection has sat idle IDLE_SECONDS + SETTLE_SECONDS. */
  rssIdlePerConnection: number;
  idleCpu: number;
  publishP50: number;
  publishMax: number;
  /** With 1 KiB of padding, everyone reading; then with a tenth not reading (to the others), and the tenth's catching up. */
  paddedP50: number | null;
  paddedMax: number | null;
  slowP50: number | null;
  slowMax: number | null;
  slowDrainMs: number | null;
  checked: string;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type ClientCommand = ReturnType<typeof clientCommand>;

async function measure(kind: ScaleKind, connections: number, serverLimit: number, clientLimit: number, command: ClientCommand): Promise<Row> {
  const { server, port } = await startServer(kind, serverLimit);
  const perClient = clientLimit - SPARE_DESCRIPTORS;
  const clients: LineChild[] = [];
  try {
    await pause(1_000);
    const pid = server.pid;
    const before = processRssBytes(pid);
    for (let opened = 0; opened < connections; opened += perClient) {
      const client = child(`scale client ${clients.length + 1}`, LOAD_CPU, clientLimit, command.args, command.executable);
      clients.push(client);
      const line = await client.nextLine(30_000, 'ready');
      if (line !== '{"type":"ready"}') throw new BenchFailure(`${client.name}: unexpected first line '${line}'`);
    }
    const started = Date.now();
    const subscribe = kind === 'serve' ? CHANNEL : null;
    const path = kind === 'serve' ? '/ws' : '/fanout';
    const protocol = kind === 'serve' ? 'hotline.v1' : null;
    const opens = clients.map((client, i) => {
      const count = Math.min(perClient, connections - i * perClient);
      const slowEvery = command.slowReaders ? SLOW_EVERY : 0;
      return ask(client, { type: 'open', port, path, protocol, count, concurrency: Math.ceil(CONCURRENCY / clients.length), subscribe, slowEvery }, 'opened', 600_000);
    });
    const opened = (await Promise.all(opens)).reduce((sum, a) => sum + (a.count ?? 0), 0);
    const openSeconds = (Date.now() - started) / 1000;
    if (opened !== connections) throw new BenchFailure(`${kind}: opened ${opened} of ${connections}`);
    await pause(2_000);
    const after = processRssBytes(pid);
    const idle = cpuShareMeter(pid);
    await pause(IDLE_SECONDS * 1000);
    const idleCpu = idle.stop().share;
    await pause(SETTLE_SECONDS * 1000);
    const settled = processRssBytes(pid);

    let seq = 0;
    const publishes = async (pad: number): Promise<number[]> => {
      const times: number[] = [];
      for (const last = seq + PUBLISHES; seq < last; ) {
        seq++;
        // Every client process watches its connections; the first one publishes, told last so
        // that the others watch before the message can reach them.
        const watches = clients.slice(1).map((client) => ask(client, { type: 'publish', seq, via: 'watch' }, 'delivered', 120_000));
        const via = kind === 'serve' ? 'http' : 'socket';
        const publisher = ask(clients[0]!, { type: 'publish', seq, via, port, apiKey: API_KEY, channel: CHANNEL, pad }, 'delivered', 120_000);
        const answers = await Promise.all([publisher, ...watches]);
        const said = answers[0]!.delivered ?? -1;
        if (kind === 'serve' && said !== connections) throw new BenchFailure(`${kind}: publish ${seq} reached ${said} of ${connections} by the server's count`);
        times.push(Math.max(...answers.map((a) => a.ms ?? 0)));
      }
      return times;
    };
    const times = await publishes(0);
    let padded: number[] | null = null;
    let slow: number[] | null = null;
    let slowDrainMs: number | null = null;
    let slowCount = 0;
    if (command.slowReaders) {
      padded = await publishes(PAD_BYTES);
      for (const client of clients) slowCount += (await ask(client, { type: 'slow' }, 'slowed', 10_000)).count ?? 0;
      slow = await publishes(PAD_BYTES);
      const drained = await Promise.all(clients.map((client) => ask(client, { type: 'drain' }, 'drained', 120_000)));
      slowDrainMs = Math.max(...drained.map((a) => a.ms ?? 0));
    }
    return {
      kind,
      connections,
      openSeconds,
      rssPerConnection: (after - before) / connections,
      rssAfter: after,
      rssIdlePerConnection: (settled - before) / connections,
      idleCpu,
      publishP50: median(times),
      publishMax: Math.max(...times),
      paddedP50: padded === null ? null : median(padded),
      paddedMax: padded === null ? null : Math.max(...padded),
      slowP50: slow === null ? null : median(slow),
      slowMax: slow === null ? null : Math.max(...slow),
      slowDrainMs,
      checked:
        `${seq} publishes, each to all ${connections} connections once and in order` +
        (slow === null ? '' : ` (the last ${PUBLISHES} with ${slowCount} connections not reading until the end)`),
    };
  } finally {
    for (const client of clients) await client.stop(JSON.stringify({ type: 'exit' }), 10_000);
    // hotline serve shuts down on SIGTERM; the bench servers on `exit`.
    if (kind === 'serve' && server.running) server.process.kill('SIGTERM');
    await server.stop(kind === 'serve' ? null : 'exit', 10_000);
  }
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const loadStart = loadavg()[0]!;
  const server = descriptorLimit(WANTED + SPARE_DESCRIPTORS);
  let connections = WANTED;
  if (!server.raised) {
    connections = Math.min(WANTED, server.limit - SPARE_DESCRIPTORS);
    if (connections < WANTED) {
      console.log(
        `!! the descriptor limit cannot be raised here (hard limit ${server.limit}; raising it needs root with CAP_SYS_RESOURCE, or ` +
          `\`ulimit -Hn ${WANTED + SPARE_DESCRIPTORS}\` before the run): measuring ${connections.toLocaleString('en-US')} connections, ` +
          `not ${WANTED.toLocaleString('en-US')}`,
      );
    }
  }
  const clientLimit = Math.min(server.limit, 65_536);
  const command = clientCommand();
  const kinds = CHOSEN.filter((kind) => {
    const state = kind === 'uws' ? uwsAvailability() : kind === 'bun' ? bunAvailability() : null;
    if (state !== null && !state.available) console.log(`!! ${kind} SKIPPED: ${state.reason}`);
    return state === null || state.available;
  });
  console.log(
    `scale: ${connections.toLocaleString('en-US')} idle connections per server (server on CPU ${SERVER_CPU}, clients on CPU ${LOAD_CPU} ` +
      `from 127.0.0.2-33, ${CONCURRENCY} opening at a time); descriptors ${server.raised ? 'raised with prlimit' : `limited to ${server.limit}`}; ` +
      `client ${command.name}`,
  );
  const rows: Row[] = [];
  for (const kind of kinds) {
    const row = await measure(kind, connections, server.raised ? connections + SPARE_DESCRIPTORS : server.limit, clientLimit, command);
    rows.push(row);
    console.log(`  ${kind}: opened in ${row.openSeconds.toFixed(1)} s, ${formatNumber(row.rssPerConnection)} B each, load average ${loadavg()[0]!.toFixed(2)}`);
  }
  const columns = columnsOf(
    'server', 'connections', 'open (s)', 'opened/s', 'RSS/conn', 'RSS total', 'idle CPU', `RSS/conn idle ${IDLE_SECONDS + SETTLE_SECONDS} s`, 'publish->all p50', 'publish->all max',
    '1 KiB p50', '1 KiB max', '10% slow: rest p50', 'rest max', 'slow drained',
  );
  const ms = (value: number | null): string => (value === null ? '-' : `${value.toFixed(1)} ms`);
  console.log('');
  console.log(
    formatTable(
      columns,
      rows.map((r) => [
        r.kind === 'serve' ? 'hotline serve' : r.kind,
        r.connections.toLocaleString('en-US'),
        r.openSeconds.toFixed(1),
        formatNumber(r.connections / r.openSeconds),
        `${formatNumber(r.rssPerConnection)} B`,
        `${(r.rssAfter / 2 ** 20).toFixed(0)} MiB`,
        `${(r.idleCpu * 100).toFixed(1)}%`,
        `${formatNumber(r.rssIdlePerConnection)} B`,
        ms(r.publishP50),
        ms(r.publishMax),
        ms(r.paddedP50),
        ms(r.paddedMax),
        ms(r.slowP50),
        ms(r.slowMax),
        ms(r.slowDrainMs),
      ]),
    ),
  );
  console.log('');
  console.log('notes:');
  console.log(
    '  RSS/conn: growth of the server\'s RSS from before the first connection to 2 s after the last (no forced GC: hotline serve\n' +
      `      has no hook for one), over the connections. idle CPU: the server's CPU share over ${IDLE_SECONDS} s with every connection\n` +
      '      idle (hotline serve pings each one every 30 s by default; the raw servers have no heartbeat). RSS/conn idle: the\n' +
      `      same growth once every connection has sat idle ${IDLE_SECONDS + SETTLE_SECONDS} s, still without a forced GC. publish->all: from\n` +
      '      the publish (the HTTP API call, or the message sent on connection 0) to the last connection receiving it; with\n' +
      `      ${PUBLISHES} publishes the max stands in for p99. 1 KiB: the same with ${PAD_BYTES} bytes of padding in each message.\n` +
      `      10% slow: the same again while every ${SLOW_EVERY}th connection (4 KiB receive buffer) does not read, to the\n` +
      '      other 90%; slow drained: from when they read again to when all of them have every message (C client only).',
  );
  for (const r of rows) console.log(`  checked ${r.kind}: ${r.checked}`);
  console.log(`  load average ${loadStart.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}; took ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
}

await runBench(main);
