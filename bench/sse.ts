/**
 * SSE and the SDK's HTTP session against WebSocket: the same channel hub (`hotline serve`'s
 * app, bench/lib/sse-server-main.ts) read over /ws, /sse and /sse/session, in a fresh server
 * process for each transport.
 *
 *   node --import tsx bench/sse.ts [--quick] [--subscribers N] [--idle N] [--seconds S]
 *
 * --subscribers N  readers of the benchmark channel (default 100)
 * --idle N         idle readers for the memory figure (default 2000)
 * --seconds S      length of the counted window (default 3; --quick: 1, and 20 readers, 200 idle)
 *
 * Two figures per transport (memory first, on a fresh heap):
 * - deliveries: 4 publisher connections each keep 32 publishes of ~100 bytes in flight (on
 *   /ws, or for the session row HTTP sessions too, their publishes POSTed as the SDK does:
 *   what waits goes in one POST, one POST at a time); deliveries/s counts the channel messages every reader received in the window, and
 *   the server's CPU time (user + system, from /proc) in the window divided by them gives its
 *   cost per delivery. Every reader checks its offsets: contiguous, no repeat (a gap or a
 *   repeat fails the benchmark).
 * - memory per idle reader: the server's RSS after N readers subscribed (each to a channel of
 *   its own), less its RSS before, over N.
 * Readers are this process's: `ws` clients for /ws, node:http responses parsed as SSE for /sse,
 * and for /sse/session a streamed GET whose `sub` is POSTed, as the SDK's fallback does.
 */
import { request, type IncomingMessage } from 'node:http';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { startAppServer } from './lib/app-server.js';
import { processCpuSeconds } from './lib/proc.js';
import { columnsOf, formatCount, formatNumber, formatSize, formatTable } from './lib/table.js';
import { rssOf } from '../test/support/attack.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    subscribers: { type: 'string' },
    idle: { type: 'string' },
    seconds: { type: 'string' },
  },
  strict: true,
});
const quick = args.quick === true;
const readers = Number(args.subscribers ?? (quick ? 20 : 100));
const idle = Number(args.idle ?? (quick ? 200 : 2000));
const seconds = Number(args.seconds ?? (quick ? 1 : 3));
const CHANNEL = 'bench:sse';

type Transport = 'sse' | 'ws' | 'session';

/** Counts one reader's channel messages, checking that offsets follow one another. */
class Reader {
  count = 0;
  last = -1;
  ready = false;
  check(offset: number): void {
    if (this.last !== -1 && offset !== this.last + 1) throw new Error(`a reader got offset ${offset} after ${this.last}: a gap or a repeat`);
    this.last = offset;
    this.count++;
  }
}

async function wsReader(port: number, channel: string): Promise<{ reader: Reader; close(): void }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, 'hotline.v1', { perMessageDeflate: false });
  const reader = new Reader();
  ws.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as { op: string; offset?: number };
    if (message.op === 'ok') reader.ready = true;
    else if (message.op === 'msg') reader.check(message.offset!);
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify({ op: 'sub', id: 1, ch: channel }));
  return { reader, close: () => ws.terminate() };
}

/** Calls `each` with every event (the text before its blank line) of an event stream. */
function onEvents(res: IncomingMessage, each: (event: string) => void): void {
  let buffer = '';
  res.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      each(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  });
}

async function sseReader(port: number, channel: string): Promise<{ reader: Reader; close(): void }> {
  const reader = new Reader();
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    request(`http://127.0.0.1:${port}/sse?ch=${channel}`, { agent: false }, resolve).on('error', reject).end();
  });
  onEvents(res, (event) => {
    if (event.includes('event: subscribed')) reader.ready = true;
    const at = event.indexOf('data: {"op":"msg"');
    if (at !== -1) reader.check((JSON.parse(event.slice(at + 6)) as { offset: number }).offset);
  });
  return { reader, close: () => res.destroy() };
}

/**
 * One HTTP session as the SDK drives it: a streamed GET whose events are hotline.v1 texts, and
 * requests POSTed as newline-delimited JSON, what waits in one POST, one POST at a time.
 */
class Session {
  private id = '';
  private outbox: string[] = [];
  private posting = false;
  private res: IncomingMessage | null = null;

  private constructor(private readonly port: number) {}

  static async open(port: number, onText: (text: string) => void): Promise<Session> {
    const session = new Session(port);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      request(`http://127.0.0.1:${port}/sse/session`, { agent: false, headers: { accept: 'text/event-stream' } }, resolve).on('error', reject).end();
    });
    if (res.statusCode !== 200) throw new Error(`the session GET was answered ${res.statusCode}`);
    session.res = res;
    let opened: () => void;
    const ready = new Promise<void>((resolve) => (opened = resolve));
    onEvents(res, (event) => {
      const at = event.indexOf('data: ');
      if (at === -1) return;
      if (event.startsWith('event: session')) {
        session.id = (JSON.parse(event.slice(at + 6)) as { session: string }).session;
        opened();
      } else onText(event.slice(at + 6));
    });
    await ready;
    return session;
  }

  send(line: string): void {
    this.outbox.push(line);
    if (!this.posting && this.outbox.length === 1) queueMicrotask(() => this.post());
  }

  close(): void {
    this.res?.destroy();
  }

  private post(): void {
    if (this.posting || this.outbox.length === 0) return;
    this.posting = true;
    const body = this.outbox.splice(0, 100).join('\n');
    const req = request(
      `http://127.0.0.1:${this.port}/sse/session`,
      { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'hotline-session': this.id, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.once('end', () => {
          if (res.statusCode !== 204) throw new Error(`a POST was answered ${res.statusCode}`);
          this.posting = false;
          this.post();
        });
      },
    );
    req.on('error', (error) => {
      throw error;
    });
    req.end(body);
  }
}

async function sessionReader(port: number, channel: string): Promise<{ reader: Reader; close(): void }> {
  const reader = new Reader();
  const session = await Session.open(port, (text) => {
    if (text.startsWith('{"op":"ok"')) reader.ready = true;
    else if (text.startsWith('{"op":"msg"')) reader.check((JSON.parse(text) as { offset: number }).offset);
  });
  session.send(JSON.stringify({ op: 'sub', id: 1, ch: channel }));
  return { reader, close: () => session.close() };
}

const open = (transport: Transport, port: number, channel: string) =>
  transport === 'sse' ? sseReader(port, channel) : transport === 'session' ? sessionReader(port, channel) : wsReader(port, channel);

async function until(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** 4 publishers (on /ws, or HTTP sessions for the session row), each keeping 32 publishes in flight until stopped. */
async function publishers(port: number, transport: Transport): Promise<{ stop(): Promise<void> }> {
  const payload = JSON.stringify({ text: 'x'.repeat(80) });
  let running = true;
  const closers = await Promise.all(
    Array.from({ length: 4 }, async () => {
      let id = 0;
      let send: () => void;
      const answered = (text: string): void => {
        if (text.startsWith('{"op":"ok"') && running) send();
      };
      let close: () => void;
      if (transport === 'session') {
        const session = await Session.open(port, answered);
        send = () => session.send(`{"op":"pub","id":${++id},"ch":"${CHANNEL}","data":${payload}}`);
        close = () => session.close();
      } else {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, 'hotline.v1', { perMessageDeflate: false });
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        send = () => ws.send(`{"op":"pub","id":${++id},"ch":"${CHANNEL}","data":${payload}}`);
        ws.on('message', (data: Buffer) => answered(data.toString()));
        close = () => ws.close();
      }
      for (let i = 0; i < 32; i++) send();
      return close;
    }),
  );
  return {
    async stop() {
      running = false;
      for (const close of closers) close();
    },
  };
}

async function measure(transport: Transport): Promise<{ rate: number; cpuPerDelivery: number; perIdle: number }> {
  const server = await startAppServer();
  try {
    // Memory per idle reader first, on a fresh heap: each reader on a channel of its own.
    const rssBefore = rssOf(server.pid);
    const idles: Array<{ reader: Reader; close(): void }> = [];
    for (let i = 0; i < idle; i += 50) idles.push(...(await Promise.all(Array.from({ length: Math.min(50, idle - i) }, (_, j) => open(transport, server.port, `idle:${i + j}`)))));
    await until(() => idles.every((s) => s.reader.ready), 'the idle readers to subscribe');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const perIdle = (rssOf(server.pid) - rssBefore) / idle;
    for (const s of idles) s.close();

    const subscribed = await Promise.all(Array.from({ length: readers }, () => open(transport, server.port, CHANNEL)));
    await until(() => subscribed.every((s) => s.reader.ready), 'the readers to subscribe');
    const load = await publishers(server.port, transport);
    // Warm up, then the counted window.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const countAt = (): number => subscribed.reduce((n, s) => n + s.reader.count, 0);
    const before = countAt();
    const cpuBefore = processCpuSeconds(server.pid);
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const delivered = countAt() - before;
    const elapsed = (performance.now() - started) / 1000;
    const cpu = processCpuSeconds(server.pid) - cpuBefore;
    await load.stop();
    for (const s of subscribed) s.close();
    return { rate: delivered / elapsed, cpuPerDelivery: (cpu / delivered) * 1e6, perIdle };
  } finally {
    server.child.stdin!.end();
  }
}

const results: Array<[Transport, Awaited<ReturnType<typeof measure>>]> = [];
const loadBefore = loadavg()[0]!;
for (const transport of ['ws', 'sse', 'session'] as const) results.push([transport, await measure(transport)]);
const ws = results[0]![1];
// The 1-minute load average before and after: what else ran on the machine meanwhile.
const loadDuring = `${loadBefore.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}`;
console.log(`${readers} readers of one channel, 4 publishers × 32 in flight, ${seconds} s; ${idle} idle readers for memory; load average during the run ${loadDuring}`);
console.log(
  formatTable(
    columnsOf('transport', 'deliveries/s', 'server CPU µs/delivery', 'vs /ws per delivery', 'RSS per idle reader'),
    results.map(([transport, r]) => [
      transport === 'ws' ? '/ws (WebSocket)' : transport === 'sse' ? '/sse (Server-Sent Events)' : '/sse/session (SDK fallback: stream + POSTs)',
      formatCount(r.rate),
      formatNumber(r.cpuPerDelivery),
      `${formatNumber(r.cpuPerDelivery / ws.cpuPerDelivery)}×`,
      formatSize(r.perIdle),
    ]),
  ),
);
process.exit(0);
