/**
 * The client side of bench/scale.ts, in a process of its own (its descriptor limit raised by
 * the parent): many idle WebSocket connections on raw sockets, spread over loopback source
 * addresses 127.0.0.2 and up (each address has its own ~28,000 ephemeral ports), that
 * answer pings and count the messages they get.
 *
 *   node --import tsx bench/lib/scale-client-main.ts
 *
 * Jobs arrive on stdin, one JSON object a line; answers go to stdout the same way:
 *   {"type":"open","port":P,"path":"/ws","protocol":"hotline.v1"|null,"count":N,"concurrency":C,"subscribe":"scale"|null}
 *       -> {"type":"opened","count":N,"ms":T}   with `subscribe`, each connection sends a
 *          hotline.v1 `sub` and waits for its `ok` (a raw server needs none)
 *   {"type":"publish","seq":K,"via":"http","apiKey":KEY,"channel":CH}   (hotline serve's HTTP API)
 *   {"type":"publish","seq":K,"via":"socket"}   (a raw server: connection 0 sends "seq:K", which
 *          the server publishes to everyone)
 *   {"type":"publish","seq":K,"via":"watch"}   (another process publishes; this one watches)
 *       -> {"type":"delivered","seq":K,"ms":T,"delivered":D}  once every connection got message
 *          K (in order: one out of order, or twice, fails the run); D is what the server said
 *   {"type":"exit"}
 * Failures are answered {"type":"error","message":...}. It exits when stdin closes.
 */
import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { clientFrame, upgradeRequest } from './raw-client.js';
import { OPCODE_TEXT } from './frames.js';

const SOURCE_ADDRESSES = 32;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;
const SEQ = /"?seq"?:(\d+)/;

interface Conn {
  socket: Socket;
  /** Bytes of an incomplete upgrade response or frame. */
  pending: Buffer | null;
  upgraded: boolean;
  subscribed: boolean;
  lastSeq: number;
}

let conns: Conn[] = [];
let waiting: { seq: number; left: number; started: bigint; delivered: number; done: (ms: number) => void } | null = null;
let failed: string | null = null;
let onReady: (() => void) | null = null;
let readyLeft = 0;

function answer(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function fail(message: string): void {
  if (failed !== null) return;
  failed = message;
  answer({ type: 'error', message });
}

function ready(conn: Conn): void {
  conn.subscribed = true;
  if (--readyLeft === 0) onReady?.();
}

function onMessage(conn: Conn, text: string, subscribe: string | null): void {
  if (!conn.subscribed) {
    if (subscribe !== null && text.includes('"op":"ok"')) return ready(conn);
    return fail(`an answer before the subscription: ${text.slice(0, 200)}`);
  }
  const match = SEQ.exec(text);
  if (match === null) return fail(`a message without a sequence number: ${text.slice(0, 200)}`);
  const seq = Number(match[1]);
  if (seq !== conn.lastSeq + 1) return fail(`a connection got message ${seq} after ${conn.lastSeq}`);
  conn.lastSeq = seq;
  if (waiting !== null && seq === waiting.seq && --waiting.left === 0) {
    const w = waiting;
    waiting = null;
    w.done(Number(process.hrtime.bigint() - w.started) / 1e6);
  }
}

/** Parses whole frames out of `data` (unmasked server frames); returns the bytes of an incomplete one. */
function frames(conn: Conn, data: Buffer, subscribe: string | null): Buffer | null {
  let offset = 0;
  while (data.length - offset >= 2) {
    const opcode = data[offset]! & 0x0f;
    let length = data[offset + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      if (data.length - offset < 4) break;
      length = data.readUInt16BE(offset + 2);
      header = 4;
    } else if (length === 127) {
      if (data.length - offset < 10) break;
      length = Number(data.readBigUInt64BE(offset + 2));
      header = 10;
    }
    if (data.length - offset < header + length) break;
    const payload = data.subarray(offset + header, offset + header + length);
    offset += header + length;
    if (opcode === OPCODE_TEXT) onMessage(conn, payload.toString(), subscribe);
    else if (opcode === OPCODE_PING) conn.socket.write(clientFrame(OPCODE_PONG, payload));
    else if (opcode === OPCODE_CLOSE) fail(`the server closed a connection (${payload.length >= 2 ? payload.readUInt16BE(0) : 'no code'})`);
  }
  return offset === data.length ? null : Buffer.from(data.subarray(offset));
}

function onData(conn: Conn, chunk: Buffer, subscribe: string | null, subscribeFrame: Buffer | null): void {
  let data = conn.pending === null ? chunk : Buffer.concat([conn.pending, chunk]);
  conn.pending = null;
  if (!conn.upgraded) {
    const end = data.indexOf('\r\n\r\n');
    if (end < 0) {
      conn.pending = Buffer.from(data);
      return;
    }
    const head = data.subarray(0, end).toString('latin1');
    if (!head.startsWith('HTTP/1.1 101')) return fail(`upgrade refused: ${head.split('\r\n')[0]}`);
    conn.upgraded = true;
    data = data.subarray(end + 4);
    if (subscribeFrame !== null) conn.socket.write(subscribeFrame);
    else ready(conn);
  }
  if (data.length > 0) conn.pending = frames(conn, data, subscribe);
}

async function open(job: { port: number; path: string; protocol: string | null; count: number; concurrency: number; subscribe: string | null }): Promise<void> {
  const started = process.hrtime.bigint();
  const plain = upgradeRequest(job.port, job.path);
  const request = job.protocol === null ? plain : Buffer.from(plain.toString('latin1').replace('\r\n\r\n', `\r\nSec-WebSocket-Protocol: ${job.protocol}\r\n\r\n`), 'latin1');
  const subscribeFrame = job.subscribe === null ? null : clientFrame(OPCODE_TEXT, Buffer.from(JSON.stringify({ op: 'sub', id: 1, ch: job.subscribe })));
  readyLeft = job.count;
  const allReady = new Promise<void>((resolve) => (onReady = resolve));
  let next = 0;
  let inFlight = 0;
  await new Promise<void>((resolve) => {
    const launch = (): void => {
      while (inFlight < job.concurrency && next < job.count && failed === null) {
        const index = next++;
        inFlight++;
        const socket = connect({ host: '127.0.0.1', port: job.port, localAddress: `127.0.0.${2 + (index % SOURCE_ADDRESSES)}` });
        const conn: Conn = { socket, pending: null, upgraded: false, subscribed: false, lastSeq: 0 };
        conns.push(conn);
        socket.setNoDelay(true);
        socket.on('connect', () => socket.write(request));
        socket.on('data', (chunk: Buffer) => {
          const was = conn.subscribed;
          onData(conn, chunk, job.subscribe, subscribeFrame);
          if (!was && conn.subscribed) {
            inFlight--;
            launch();
          }
        });
        socket.on('error', (error) => fail(`connection ${index}: ${error.message}`));
        socket.on('close', () => {
          if (waiting !== null || readyLeft > 0) fail(`connection ${index} closed`);
        });
      }
      if (next === job.count || failed !== null) resolve();
    };
    launch();
  });
  await allReady;
  if (failed === null) answer({ type: 'opened', count: conns.length, ms: Number(process.hrtime.bigint() - started) / 1e6 });
}

async function publish(job: { seq: number; via: 'http' | 'socket' | 'watch'; port: number; apiKey?: string; channel?: string }): Promise<void> {
  // A watcher told late may have connections that already got it.
  const left = conns.filter((conn) => conn.lastSeq < job.seq).length;
  const delivered = new Promise<number>((resolve) => {
    if (left === 0) resolve(0);
    else waiting = { seq: job.seq, left, started: process.hrtime.bigint(), delivered: -1, done: resolve };
  });
  let said = -1;
  if (job.via === 'socket') {
    conns[0]!.socket.write(clientFrame(OPCODE_TEXT, Buffer.from(`seq:${job.seq}`)));
  } else if (job.via === 'http') {
    const response = await fetch(`http://127.0.0.1:${job.port}/api/publish`, {
      method: 'POST',
      headers: { authorization: `apikey ${job.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: job.channel, data: { seq: job.seq } }),
    });
    const body = (await response.json()) as { result?: { delivered: number }; error?: { message: string } };
    if (body.result === undefined) return fail(`publish answered ${response.status}: ${body.error?.message}`);
    said = body.result.delivered;
  }
  const ms = await delivered;
  if (failed === null) answer({ type: 'delivered', seq: job.seq, ms, delivered: said });
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  const job = JSON.parse(line) as { type: string } & Record<string, unknown>;
  const run = job.type === 'open' ? open(job as never) : job.type === 'publish' ? publish(job as never) : null;
  if (job.type === 'exit') {
    for (const conn of conns) conn.socket.destroy();
    conns = [];
    process.exit(0);
  }
  if (run === null) return fail(`unknown job ${job.type}`);
  run.catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
});
lines.on('close', () => process.exit(0));
answer({ type: 'ready' });
