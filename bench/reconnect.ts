/**
 * Reconnects on `hotline serve`'s /ws: connections that open, subscribe to one channel (its
 * presence on, as by default), are answered, and leave, over and over, as clients do in a
 * reconnect storm after a deploy or a network blip. The server is `hotline serve`'s app
 * (bench/lib/sse-server-main.ts) pinned to CPU 0; this process, pinned to CPU 1, keeps
 * `--concurrency` raw connections going at once.
 *
 *   node --import tsx bench/reconnect.ts [--quick] [--seconds S] [--rounds R] [--concurrency N] [--baseline DIR]
 *
 * --seconds S       the counted window of each round (default 5; --quick: 2)
 * --rounds R        rounds per server, alternating (default 3; --quick: 1)
 * --concurrency N   connections in progress at once (default 16)
 * --baseline DIR    also run DIR's hotline (a checkout or `git worktree` with node_modules), in the same rounds
 *
 * Every connection is checked: the 101 with the accept key of its request key and
 * `hotline.v1`, the `ok` to its `sub` (an `err` or anything unexpected fails the run), then
 * the server's close frame 1000 after ours, and its FIN. The figures, per round and their
 * median: connections completed per second, the server's CPU per connection (user +
 * system, from /proc), its CPU share, and its peak RSS in the window (sampled every 50 ms).
 * A disconnected subscriber's presence waits out the grace (5 s): whatever the wait keeps
 * of each connection is multiplied by the connections of those seconds. The server runs with
 * glibc's default allocator settings, as a deployment would.
 *
 * The server closes TCP first, so each connection leaves a TIME_WAIT entry for 60 s, and a
 * table of 100,000 of them made a connection cost the server about twice the CPU (20,000 to
 * 60,000 did not show). Each round therefore starts once the table holds at most 30,000
 * entries (settleTimeWait in bench/lib/proc.ts: it waits up to 70 s, reading
 * /proc/net/sockstat), so that every round meets about the same kernel.
 */
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { computeAccept } from '../src/protocol/handshake.js';
import { startAppServer } from './lib/app-server.js';
import { CLIENT_CLOSE, clientFrame, HOST } from './lib/raw-client.js';
import { median, medianRatio } from './lib/stats.js';
import { processCpuSeconds, processRssBytes, settleTimeWait } from './lib/proc.js';
import { churnArgs } from './lib/churn-args.js';
import { columnsOf, formatCount, formatNumber, formatRatio, formatTable } from './lib/table.js';

const { seconds: SECONDS, rounds: ROUNDS, concurrency: CONCURRENCY, baseline } = churnArgs();
const WARM_UP_MS = 1_000;
const CHANNEL = 'bench:reconnect';

const SUB = clientFrame(0x1, Buffer.from(JSON.stringify({ op: 'sub', id: 1, ch: CHANNEL })));

/**
 * Source addresses, taken in turn: the server closes TCP first, so each connection leaves a
 * TIME_WAIT entry for its 4-tuple, and tens of thousands of them on one source address made
 * every new connection dearer for both sides (server CPU per connection doubled over a few
 * runs in a row). Spread over 250 addresses, it stays flat up to some 60,000 entries; past
 * that the table's size itself costs, which settleTimeWait keeps rounds from meeting.
 */
const SOURCES = Array.from({ length: 250 }, (_, i) => `127.0.0.${i + 2}`);
let nextSource = 0;

/** One connection's life, checked; resolves once the server closed TCP after the closing handshake. */
function reconnectOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const accept = computeAccept(key);
    const localAddress = SOURCES[nextSource++ % SOURCES.length];
    const socket: Socket = connect({ port, host: HOST, localAddress });
    let received: Buffer = Buffer.alloc(0);
    let stage: 'head' | 'answer' | 'closing' | 'closed' = 'head';
    const fail = (message: string): void => {
      socket.destroy();
      reject(new Error(message));
    };
    socket.on('connect', () => {
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: hotline.v1\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (stage === 'head') {
        const end = received.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = received.subarray(0, end).toString('latin1');
        if (!head.startsWith('HTTP/1.1 101 ')) return fail(`no 101: ${head.split('\r\n')[0]}`);
        if (!head.includes(`\r\nSec-WebSocket-Accept: ${accept}`)) return fail('a 101 without the accept key of its request');
        if (!/\r\nSec-WebSocket-Protocol: hotline\.v1(\r\n|$)/.test(head)) return fail('a 101 without hotline.v1');
        received = received.subarray(end + 4);
        stage = 'answer';
        socket.write(SUB);
      }
      // Server frames are unmasked and, here, short (an answer, a join, the close).
      while (received.length >= 2) {
        const length = received[1]! & 0x7f;
        const header = length === 126 ? 4 : 2;
        if (length === 127) return fail('an unexpectedly long frame');
        if (received.length < header) return;
        const size = length === 126 ? received.readUInt16BE(2) : length;
        if (received.length < header + size) return;
        const opcode = received[0]! & 0x0f;
        const payload = received.subarray(header, header + size);
        received = received.subarray(header + size);
        if (opcode === 0x1) {
          const message = JSON.parse(payload.toString()) as { op?: string; id?: number; code?: string };
          if (message.op === 'err') return fail(`the sub was refused: ${message.code}`);
          if (message.op === 'ok' && message.id === 1 && stage === 'answer') {
            stage = 'closing';
            socket.write(CLIENT_CLOSE);
          }
        } else if (opcode === 0x8) {
          if (stage !== 'closing') return fail('closed by the server before the closing handshake');
          if (payload.length < 2 || payload.readUInt16BE(0) !== 1000) return fail('a close frame other than 1000');
          stage = 'closed';
        } else {
          return fail(`an unexpected frame (opcode ${opcode})`);
        }
      }
    });
    socket.on('error', (error) => fail(`socket error: ${error.message}`));
    socket.on('close', () => (stage === 'closed' ? resolve() : reject(new Error(`the connection ended in stage ${stage}`))));
  });
}

/** glibc's own allocator settings for the server, as a deployment has them (`npm run bench` pins others for its own timing). */
const SERVER_ENV: NodeJS.ProcessEnv = { ...process.env };
delete SERVER_ENV['GLIBC_TUNABLES'];

interface Round {
  perSecond: number;
  cpuPerConnection: number;
  cpuShare: number;
  peakRss: number;
  connections: number;
}

async function round(checkout: string | undefined): Promise<Round> {
  const server = await startAppServer({ checkout, cpu: 0, env: SERVER_ENV });
  try {
    let completed = 0;
    let running = true;
    let failure: Error | null = null;
    const loop = async (): Promise<void> => {
      while (running && failure === null) {
        try {
          await reconnectOnce(server.port);
          completed++;
        } catch (error) {
          failure ??= error as Error;
        }
      }
    };
    const loops = Array.from({ length: CONCURRENCY }, loop);
    await sleep(WARM_UP_MS);
    let peakRss = processRssBytes(server.pid);
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, processRssBytes(server.pid))), 50);
    const before = { completed, cpu: processCpuSeconds(server.pid), at: performance.now() };
    await sleep(SECONDS * 1000);
    const after = { completed, cpu: processCpuSeconds(server.pid), at: performance.now() };
    clearInterval(sampler);
    running = false;
    await Promise.all(loops);
    if (failure !== null) throw failure;
    const connections = after.completed - before.completed;
    if (connections === 0) throw new Error('no connection completed in the window');
    const cpu = after.cpu - before.cpu;
    const wall = (after.at - before.at) / 1000;
    return { perSecond: connections / wall, cpuPerConnection: cpu / connections, cpuShare: cpu / wall, peakRss, connections };
  } finally {
    server.child.stdin!.end();
  }
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

// The load on CPU 1, the server on CPU 0 (startAppServer pins it).
const pinned = spawnSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });
if (pinned.status !== 0) console.log('(taskset is missing: the load and the server are not pinned)');

const kinds: Array<[string, string | undefined]> = [['hotline', undefined]];
if (baseline !== undefined) kinds.push(['baseline', baseline]);
const results = new Map<string, Round[]>(kinds.map(([name]) => [name, []]));
const loadStart = loadavg()[0]!;
for (let r = 1; r <= ROUNDS; r++) {
  for (const [name, checkout] of r % 2 === 1 ? kinds : [...kinds].reverse()) {
    await settleTimeWait();
    const result = await round(checkout);
    results.get(name)!.push(result);
    console.log(
      `  r${r} ${name.padEnd(8)} ${formatCount(result.perSecond)} connections/s, ${formatNumber(result.cpuPerConnection * 1e6)} µs of server CPU each ` +
        `(${Math.round(result.cpuShare * 100)}% busy), peak RSS ${mib(result.peakRss)}; ${formatCount(result.connections)} checked`,
    );
  }
}

const summary = kinds.map(([name]) => {
  const rounds = results.get(name)!;
  return {
    name,
    perSecond: median(rounds.map((x) => x.perSecond)),
    cpuPerConnection: median(rounds.map((x) => x.cpuPerConnection)),
    cpuShare: median(rounds.map((x) => x.cpuShare)),
    peakRss: median(rounds.map((x) => x.peakRss)),
  };
});
console.log(`\nopen /ws, sub (presence on), ok, close; ${CONCURRENCY} at a time, ${SECONDS} s windows, median of ${ROUNDS} round(s); vs baseline: the median of the rounds' ratios`);
const base = summary.find((s) => s.name === 'baseline');
const baseRounds = results.get('baseline');
/** The median of the per-round ratios to the baseline: rounds alternate, so each pair met the same machine. */
const vsBaseline = (name: string, figure: (round: Round) => number): string =>
  formatRatio(medianRatio(results.get(name)!.map(figure), baseRounds!.map(figure)));
console.log(
  formatTable(
    columnsOf('server', 'connections/s', 'server CPU µs each', ...(base ? ['vs baseline'] : []), 'server CPU', 'peak RSS', ...(base ? ['vs baseline'] : [])),
    summary.map((s) => [
      s.name,
      formatCount(s.perSecond),
      formatNumber(s.cpuPerConnection * 1e6),
      ...(base ? [vsBaseline(s.name, (r) => r.cpuPerConnection)] : []),
      `${Math.round(s.cpuShare * 100)}%`,
      mib(s.peakRss),
      ...(base ? [vsBaseline(s.name, (r) => r.peakRss)] : []),
    ]),
  ),
);
console.log(`load average ${loadStart.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}; a server under 90% busy was limited by the load, and its CPU per connection is the figure to compare`);
process.exit(0);
