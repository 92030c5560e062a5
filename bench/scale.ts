/**
 * Scale on one process: many idle WebSocket connections (100,000 by default) held by one
 * server process, as `hotline serve` runs them, and what they cost.
 *
 *   node --import tsx bench/scale.ts [--connections N] [--kinds serve,hotline,ws,uws,bun]
 *                                    [--publishes N] [--idle-seconds S] [--concurrency C]
 *   npm run build && npm run bench -- scale
 *
 * For each server: the server (alone on CPU 0) and the clients (processes of their own on
 * CPU 1, on raw sockets, spread over source addresses 127.0.0.2-33 so that no address runs
 * out of ephemeral ports) start; the clients open the connections, C at a time; then the
 * server's RSS growth per connection, its CPU share while all of them sit idle (heartbeats,
 * timers), and the time from a publish to its delivery at every connection (each checked:
 * every connection gets every publish once, in order), over --publishes publishes.
 *
 * Kinds: `serve` is `hotline serve` from dist/ (npm run build first) with its default flags
 * but for --max-connections 0, --log-level warn (info logs every connection) and a channel
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
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
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
const SERVER_MAIN = join(here, 'lib', 'server-main.ts');
const BUN_SERVER_MAIN = join(here, 'lib', 'bun-server-main.ts');
/** Descriptors a process needs besides its connections (stdio, epoll, libuv, the listener...). */
const SPARE_DESCRIPTORS = 256;
const API_KEY = 'scale-bench-key-0123456789abcdef';
const CHANNEL = 'scale';
const KINDS = ['serve', 'hotline', 'ws', 'uws', 'bun'] as const;
type ScaleKind = (typeof KINDS)[number];

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '100000' },
    kinds: { type: 'string', default: 'serve' },
    publishes: { type: 'string', default: '20' },
    'idle-seconds': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '256' },
    quick: { type: 'boolean', default: false },
  },
});
const positive = (name: string, value: string | undefined): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
};
const WANTED = args.quick ? 5_000 : positive('connections', args.connections);
const PUBLISHES = args.quick ? 5 : positive('publishes', args.publishes);
const IDLE_SECONDS = args.quick ? 2 : positive('idle-seconds', args['idle-seconds']);
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
  idleCpu: number;
  publishP50: number;
  publishMax: number;
  checked: string;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(kind: ScaleKind, connections: number, serverLimit: number, clientLimit: number): Promise<Row> {
  const { server, port } = await startServer(kind, serverLimit);
  const perClient = clientLimit - SPARE_DESCRIPTORS;
  const clients: LineChild[] = [];
  try {
    await pause(1_000);
    const pid = server.pid;
    const before = processRssBytes(pid);
    for (let opened = 0; opened < connections; opened += perClient) {
      const client = child(`scale client ${clients.length + 1}`, LOAD_CPU, clientLimit, ['--import', 'tsx', CLIENT_MAIN]);
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
      return ask(client, { type: 'open', port, path, protocol, count, concurrency: Math.ceil(CONCURRENCY / clients.length), subscribe }, 'opened', 600_000);
    });
    const opened = (await Promise.all(opens)).reduce((sum, a) => sum + (a.count ?? 0), 0);
    const openSeconds = (Date.now() - started) / 1000;
    if (opened !== connections) throw new BenchFailure(`${kind}: opened ${opened} of ${connections}`);
    await pause(2_000);
    const after = processRssBytes(pid);
    const idle = cpuShareMeter(pid);
    await pause(IDLE_SECONDS * 1000);
    const idleCpu = idle.stop().share;

    const times: number[] = [];
    for (let seq = 1; seq <= PUBLISHES; seq++) {
      // Every client process watches its connections; the first one publishes, told last so
      // that the others watch before the message can reach them.
      const watches = clients.slice(1).map((client) => ask(client, { type: 'publish', seq, via: 'watch' }, 'delivered', 120_000));
      const publisher = ask(clients[0]!, { type: 'publish', seq, via: kind === 'serve' ? 'http' : 'socket', port, apiKey: API_KEY, channel: CHANNEL }, 'delivered', 120_000);
      const answers = await Promise.all([publisher, ...watches]);
      const said = answers[0]!.delivered ?? -1;
      if (kind === 'serve' && said !== connections) throw new BenchFailure(`${kind}: publish ${seq} reached ${said} of ${connections} by the server's count`);
      times.push(Math.max(...answers.map((a) => a.ms ?? 0)));
    }
    return {
      kind,
      connections,
      openSeconds,
      rssPerConnection: (after - before) / connections,
      rssAfter: after,
      idleCpu,
      publishP50: median(times),
      publishMax: Math.max(...times),
      checked: `${PUBLISHES} publishes, each to all ${connections} connections once and in order`,
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
  const kinds = CHOSEN.filter((kind) => {
    const state = kind === 'uws' ? uwsAvailability() : kind === 'bun' ? bunAvailability() : null;
    if (state !== null && !state.available) console.log(`!! ${kind} SKIPPED: ${state.reason}`);
    return state === null || state.available;
  });
  console.log(
    `scale: ${connections.toLocaleString('en-US')} idle connections per server (server on CPU ${SERVER_CPU}, clients on CPU ${LOAD_CPU} ` +
      `from 127.0.0.2-33, ${CONCURRENCY} opening at a time); descriptors ${server.raised ? 'raised with prlimit' : `limited to ${server.limit}`}`,
  );
  const rows: Row[] = [];
  for (const kind of kinds) {
    const row = await measure(kind, connections, server.raised ? connections + SPARE_DESCRIPTORS : server.limit, clientLimit);
    rows.push(row);
    console.log(`  ${kind}: opened in ${row.openSeconds.toFixed(1)} s, ${formatNumber(row.rssPerConnection)} B each, load average ${loadavg()[0]!.toFixed(2)}`);
  }
  const columns = columnsOf('server', 'connections', 'open (s)', 'opened/s', 'RSS/conn', 'RSS total', 'idle CPU', 'publish->all p50', 'publish->all max');
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
        `${r.publishP50.toFixed(1)} ms`,
        `${r.publishMax.toFixed(1)} ms`,
      ]),
    ),
  );
  console.log('');
  console.log('notes:');
  console.log(
    '  RSS/conn: growth of the server\'s RSS from before the first connection to 2 s after the last (no forced GC: hotline serve\n' +
      `      has no hook for one), over the connections. idle CPU: the server's CPU share over ${IDLE_SECONDS} s with every connection\n` +
      '      idle (hotline serve pings each one every 30 s by default; the raw servers have no heartbeat). publish->all: from\n' +
      '      the publish (the HTTP API call, or the message sent on connection 0) to the last connection receiving it; with\n' +
      `      ${PUBLISHES} publishes the max stands in for p99.`,
  );
  for (const r of rows) console.log(`  checked ${r.kind}: ${r.checked}`);
  console.log(`  load average ${loadStart.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}; took ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
}

await runBench(main);
