/**
 * The load side of bench/channels.ts, in a process of its own (pinned to the load CPU): the
 * subscribers and the publishers of one scenario against one server, every delivery checked.
 *
 *   node --import tsx bench/lib/channels-client-main.ts '<job JSON>'
 *   job: {"kind":"hotline"|"ws"|"socket.io","port":P,"channels":C,"perChannel":S,
 *         "publishers":N,"inFlight":W,"warmupMs":T,"windowMs":T}
 *
 * Subscribers: C × S connections, S on each channel `c<i>`. For hotline and ws they are raw
 * sockets that read into one shared buffer and parse frames by their headers (the numbers of
 * a message are read from its last bytes: no JSON.parse, no string per message), so that a
 * delivery costs the reader less than it costs the server; Socket.IO's are socket.io-client
 * sockets, as its protocol asks for its own client.
 * Publishers: N connections, each keeping W messages in flight: a message is in flight until
 * every subscriber of its channel got it. Channels are taken in turn. Each message carries
 * its publisher p, the publisher's message number m, its sequence s on (p, channel), and the
 * time it was sent t (µs on this process's clock): `{"pad":"x…","p":0,"m":1,"s":1,"t":123}`.
 *
 * Checks: every subscriber gets, from each publisher, sequence numbers 1, 2, 3… with no gap
 * or repeat (each message once, in order), and after the publishers stop and the messages in
 * flight arrive, the last of each is what the publisher sent to its channel. A close, an
 * `err` reply or an unexpected frame fails the run.
 *
 * Prints JSON lines: {"type":"opened"}, {"type":"window","phase":"start"}, {"type":"window",
 * "phase":"end",...figures}, {"type":"done","checked":...}, or {"type":"error","message"}.
 */
import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { io as ioClient, type Socket as IoSocket } from 'socket.io-client';
import { clientFrame, upgradeRequest } from './raw-client.js';

interface Job {
  kind: 'hotline' | 'ws' | 'socket.io';
  port: number;
  channels: number;
  perChannel: number;
  publishers: number;
  inFlight: number;
  warmupMs: number;
  windowMs: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const { kind, port, channels, perChannel, publishers, inFlight } = job;
const SOURCE_ADDRESSES = 32;
const CONCURRENCY = 200;
/** Messages a publisher may have had outstanding, by number: past this a lost one is reported. */
const RING = 1 << 16;
const PAD = 'x'.repeat(64);
const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;
/** What a channel message starts with, per server (anything else after the subscription fails the run). */
const MESSAGE_PREFIX = Buffer.from(kind === 'hotline' ? '{"op":"msg",' : '{"type":"message",');
const OK_PREFIX = Buffer.from('{"op":"ok",');
const HISTOGRAM_STEP_US = 10;
/** 10 µs buckets up to 10 s; the last counts everything slower. */
const histogram = new Uint32Array(1_000_001);

let failed = false;
let finished = false;
function answer(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
function fail(message: string): void {
  if (failed || finished) return;
  failed = true;
  answer({ type: 'error', message });
  setTimeout(() => process.exit(1), 100);
}
const nowUs = (): number => Math.round(performance.now() * 1000);

interface Sub {
  channel: number;
  /** The last sequence number from each publisher. */
  last: Int32Array;
  subscribed: boolean;
}

interface Pub {
  index: number;
  /** Messages sent so far (the next one's number is this + 1). */
  sent: number;
  /** The sequence of the last message sent to each channel. */
  seq: Int32Array;
  /** Subscribers yet to get message m, at m % RING. */
  outstanding: Int32Array;
  inFlight: number;
  send(messages: Buffer[] | null, channel: number, m: number, s: number, t: number): void;
  flush(messages: Buffer[] | null): void;
}

const subs: Sub[] = [];
const pubs: Pub[] = [];

/** A publisher's counters, before it has sent anything; each kind adds how it sends. */
function publisherState(index: number): Omit<Pub, 'send' | 'flush'> {
  return { index, sent: 0, seq: new Int32Array(channels), outstanding: new Int32Array(RING), inFlight: 0 };
}
let publishing = false;
let windowOpen = false;
let deliveries = 0;
let windowDeliveries = 0;
let windowPublishes = 0;
let nextChannel = 0;
let readyLeft = 0;
let onAllReady: (() => void) | null = null;
/** Opens more subscribers in the place of one that finished subscribing. */
let launchMore: (() => void) | null = null;

function subscribed(sub: Sub): void {
  sub.subscribed = true;
  if (--readyLeft === 0) onAllReady?.();
  else launchMore?.();
}

/** One delivery: checked, counted, timed; the message that reached its last subscriber frees its publisher a place. */
function delivered(sub: Sub, p: number, m: number, s: number, t: number, now: number): void {
  const pub = pubs[p];
  if (pub === undefined) return fail(`a message from publisher ${p}, of ${publishers}`);
  if (s !== sub.last[p]! + 1) return fail(`a subscriber of c${sub.channel} got sequence ${s} from publisher ${p} after ${sub.last[p]}: a gap or a repeat`);
  sub.last[p] = s;
  deliveries++;
  if (windowOpen) {
    windowDeliveries++;
    const bucket = Math.floor((now - t) / HISTOGRAM_STEP_US);
    histogram[bucket < histogram.length - 1 ? (bucket < 0 ? 0 : bucket) : histogram.length - 1]!++;
  }
  const slot = m % RING;
  if (--pub.outstanding[slot]! === 0) {
    pub.inFlight--;
    if (publishing) scheduleRefill();
  } else if (pub.outstanding[slot]! < 0) fail(`message ${m} of publisher ${p} was delivered more often than it has subscribers`);
}

let refillScheduled = false;
function scheduleRefill(): void {
  if (refillScheduled) return;
  refillScheduled = true;
  setImmediate(refill);
}

/** Tops every publisher up to W messages in flight, each publisher's new messages in one write. */
function refill(): void {
  refillScheduled = false;
  if (!publishing || failed) return;
  for (const pub of pubs) {
    const batch: Buffer[] | null = kind === 'socket.io' ? null : [];
    while (pub.inFlight < inFlight) {
      const channel = nextChannel;
      nextChannel = (nextChannel + 1) % channels;
      const m = ++pub.sent;
      const s = ++pub.seq[channel]!;
      const slot = m % RING;
      if (pub.outstanding[slot] !== 0) return fail(`message ${m - RING} of publisher ${pub.index} never reached all its subscribers`);
      pub.outstanding[slot] = perChannel;
      pub.inFlight++;
      if (windowOpen) windowPublishes++;
      pub.send(batch, channel, m, s, nowUs());
    }
    pub.flush(batch);
  }
}

// ---- raw WebSocket connections (hotline, ws) ----

const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const UPGRADE = (() => {
  const path = kind === 'hotline' ? '/ws' : '/';
  const plain = upgradeRequest(port, path);
  return kind === 'hotline' ? Buffer.from(plain.toString('latin1').replace('\r\n\r\n', '\r\nSec-WebSocket-Protocol: hotline.v1\r\n\r\n'), 'latin1') : plain;
})();

interface Raw {
  socket: Socket;
  pending: Buffer | null;
  upgraded: boolean;
  /** The subscriber this connection is, or null for a publisher. */
  sub: Sub | null;
}

let rawIndex = 0;
function openRaw(sub: Sub | null, onUpgraded: (raw: Raw) => void): Raw {
  const index = rawIndex++;
  const raw: Raw = { socket: null as unknown as Socket, pending: null, upgraded: false, sub };
  raw.socket = connect({
    host: '127.0.0.1',
    port,
    localAddress: `127.0.0.${2 + (index % SOURCE_ADDRESSES)}`,
    onread: { buffer: READ_BUFFER, callback: (bytes: number) => onRead(raw, bytes, onUpgraded) },
  });
  raw.socket.setNoDelay(true);
  raw.socket.on('connect', () => raw.socket.write(UPGRADE));
  raw.socket.on('error', (error) => fail(`a connection failed: ${error.message}`));
  raw.socket.on('close', () => fail('the server closed a connection'));
  return raw;
}

function onRead(raw: Raw, bytes: number, onUpgraded: (raw: Raw) => void): boolean {
  let data: Buffer;
  if (raw.pending === null) data = READ_BUFFER.subarray(0, bytes);
  else {
    data = Buffer.concat([raw.pending, READ_BUFFER.subarray(0, bytes)]);
    raw.pending = null;
  }
  let start = 0;
  if (!raw.upgraded) {
    const end = data.indexOf('\r\n\r\n');
    if (end === -1) {
      raw.pending = Buffer.from(data);
      return true;
    }
    const head = data.toString('latin1', 0, end);
    if (!head.startsWith('HTTP/1.1 101 ')) {
      fail(`upgrade refused: ${head.split('\r\n')[0]}`);
      return true;
    }
    raw.upgraded = true;
    start = end + 4;
    onUpgraded(raw);
  }
  const now = nowUs();
  const used = frames(raw, data, start, now);
  if (used < data.length) raw.pending = Buffer.from(data.subarray(used));
  return true;
}

/** Handles the whole frames of `data` from `start`; returns where the first incomplete one begins. */
function frames(raw: Raw, data: Buffer, start: number, now: number): number {
  let at = start;
  const end = data.length;
  while (end - at >= 2) {
    const opcode = data[at]! & 0x0f;
    let length = data[at + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      if (end - at < 4) break;
      length = data.readUInt16BE(at + 2);
      header = 4;
    } else if (length === 127) {
      fail('a frame of 64 KiB or more');
      return end;
    }
    if (end - at < header + length) break;
    const from = at + header;
    at = from + length;
    if (opcode === OPCODE_TEXT) text(raw, data, from, at, now);
    else if (opcode === OPCODE_PING) raw.socket.write(clientFrame(OPCODE_PONG, data.subarray(from, at)));
    else if (opcode === OPCODE_CLOSE) fail(`the server closed a connection with ${length >= 2 ? data.readUInt16BE(from) : 'no code'}`);
    else if (opcode !== OPCODE_PONG) fail(`a frame with opcode ${opcode}`);
  }
  return at;
}

// The four numbers of a message, read back to front from its end (t, s, m, p).
const numbers = [0, 0, 0, 0];
function readNumbers(data: Buffer, from: number, to: number): boolean {
  let i = to - 1;
  for (let k = 0; k < 4; k++) {
    while (i >= from && (data[i]! < 48 || data[i]! > 57)) i--;
    if (i < from) return false;
    let value = 0;
    let scale = 1;
    while (i >= from && data[i]! >= 48 && data[i]! <= 57) {
      value += (data[i]! - 48) * scale;
      scale *= 10;
      i--;
    }
    numbers[k] = value;
  }
  return true;
}

function text(raw: Raw, data: Buffer, from: number, to: number, now: number): void {
  const sub = raw.sub;
  if (sub === null) {
    // A publisher: hotline answers each publish; the ws server answers nothing.
    if (kind === 'hotline' && data.compare(OK_PREFIX, 0, OK_PREFIX.length, from, Math.min(to, from + OK_PREFIX.length)) === 0) return;
    return fail(`a publisher got ${data.toString('utf8', from, Math.min(to, from + 200))}`);
  }
  if (!sub.subscribed) {
    const reply = data.toString('utf8', from, to);
    if (kind === 'hotline' ? reply.startsWith('{"op":"ok"') : reply.startsWith('{"type":"subscribed"')) return subscribed(sub);
    return fail(`a subscribe answered ${reply.slice(0, 200)}`);
  }
  if (data.compare(MESSAGE_PREFIX, 0, MESSAGE_PREFIX.length, from, Math.min(to, from + MESSAGE_PREFIX.length)) !== 0 || !readNumbers(data, from, to)) {
    return fail(`a subscriber got ${data.toString('utf8', from, Math.min(to, from + 200))}`);
  }
  delivered(sub, numbers[3]!, numbers[2]!, numbers[1]!, numbers[0]!, now);
}

function messageData(pub: number, m: number, s: number, t: number): string {
  return `{"pad":"${PAD}","p":${pub},"m":${m},"s":${s},"t":${t}}`;
}

function rawPublisher(index: number, raw: Raw): Pub {
  return {
    ...publisherState(index),
    send(batch, channel, m, s, t) {
      const data = messageData(index, m, s, t);
      const request = kind === 'hotline' ? `{"op":"pub","id":${m},"ch":"c${channel}","data":${data}}` : `{"type":"publish","channel":"c${channel}","data":${data}}`;
      batch!.push(clientFrame(OPCODE_TEXT, Buffer.from(request)));
    },
    flush(batch) {
      if (batch!.length > 0) raw.socket.write(batch!.length === 1 ? batch![0]! : Buffer.concat(batch!));
    },
  };
}

function subscribeRequest(channel: number): Buffer {
  const request = kind === 'hotline' ? `{"op":"sub","id":1,"ch":"c${channel}"}` : `{"type":"subscribe","channel":"c${channel}"}`;
  return clientFrame(OPCODE_TEXT, Buffer.from(request));
}

// ---- socket.io-client connections ----

const ioSockets: IoSocket[] = [];
let ioIndex = 0;
function openIo(): IoSocket {
  const index = ioIndex++;
  const socket = ioClient(`http://127.0.0.1:${port}`, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    // Passed on to ws: spreads the connections over source addresses as the raw ones are.
    localAddress: `127.0.0.${2 + (index % SOURCE_ADDRESSES)}`,
  } as Parameters<typeof ioClient>[1]);
  socket.on('connect_error', (error: Error) => fail(`a socket.io connection failed: ${error.message}`));
  socket.on('disconnect', (reason: string) => fail(`a socket.io connection ended: ${reason}`));
  ioSockets.push(socket);
  return socket;
}

function ioSubscriber(sub: Sub): void {
  const socket = openIo();
  socket.on('message', (channel: string, data: { p: number; m: number; s: number; t: number }) => {
    if (channel !== `c${sub.channel}`) return fail(`a subscriber of c${sub.channel} got a message of ${channel}`);
    delivered(sub, data.p, data.m, data.s, data.t, nowUs());
  });
  socket.on('connect', () => {
    socket.emit('subscribe', `c${sub.channel}`, () => subscribed(sub));
  });
}

function ioPublisher(index: number, socket: IoSocket): Pub {
  return {
    ...publisherState(index),
    send(_batch, channel, m, s, t) {
      socket.emit('publish', `c${channel}`, { pad: PAD, p: index, m, s, t });
    },
    flush() {},
  };
}

// ---- the run ----

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens every subscriber, CONCURRENCY at a time, each subscribed before the next opens in its place. */
async function openSubscribers(): Promise<void> {
  const total = channels * perChannel;
  readyLeft = total;
  const all = new Promise<void>((resolve) => (onAllReady = resolve));
  let next = 0;
  await new Promise<void>((resolve) => {
    const launch = (): void => {
      while (next < total && next - (total - readyLeft) < CONCURRENCY && !failed) {
        const sub: Sub = { channel: next % channels, last: new Int32Array(publishers), subscribed: false };
        subs.push(sub);
        next++;
        if (kind === 'socket.io') ioSubscriber(sub);
        else openRaw(sub, (raw) => raw.socket.write(subscribeRequest(sub.channel)));
      }
      if (next === total) {
        launchMore = null;
        resolve();
      }
    };
    launchMore = launch;
    launch();
  });
  await all;
}

async function openPublishers(): Promise<void> {
  for (let i = 0; i < publishers; i++) {
    if (kind === 'socket.io') {
      const socket = openIo();
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      pubs.push(ioPublisher(i, socket));
    } else {
      let raw: Raw | null = null;
      await new Promise<void>((resolve) => {
        raw = openRaw(null, () => resolve());
      });
      pubs.push(rawPublisher(i, raw!));
    }
  }
}

function quantile(q: number, total: number): number {
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!;
    // Past the last bucket: slower than the histogram reaches (-1: the parent prints "> 10 s").
    if (seen >= rank) return i === histogram.length - 1 ? -1 : ((i + 1) * HISTOGRAM_STEP_US) / 1000;
  }
  return Number.NaN;
}

async function run(): Promise<void> {
  const openedAt = performance.now();
  await openSubscribers();
  await openPublishers();
  answer({ type: 'opened', ms: performance.now() - openedAt, subscribers: subs.length });
  publishing = true;
  refill();
  await pause(job.warmupMs);
  windowOpen = true;
  const windowStart = performance.now();
  answer({ type: 'window', phase: 'start' });
  await pause(job.windowMs);
  windowOpen = false;
  const seconds = (performance.now() - windowStart) / 1000;
  answer({
    type: 'window',
    phase: 'end',
    seconds,
    deliveries: windowDeliveries,
    publishes: windowPublishes,
    p50: quantile(0.5, windowDeliveries),
    p99: quantile(0.99, windowDeliveries),
    max: quantile(1, windowDeliveries),
  });
  // The publishers stop; what is in flight must still arrive, then every subscriber is checked.
  publishing = false;
  const deadline = performance.now() + 20_000;
  while (pubs.some((pub) => pub.inFlight > 0)) {
    if (failed) return;
    if (performance.now() > deadline) return fail(`${pubs.reduce((n, pub) => n + pub.inFlight, 0)} messages still in flight 20 s after the publishers stopped`);
    await pause(10);
  }
  let expected = 0;
  for (const pub of pubs) for (let c = 0; c < channels; c++) expected += pub.seq[c]! * perChannel;
  for (const sub of subs) {
    for (const pub of pubs) {
      if (sub.last[pub.index] !== pub.seq[sub.channel]) return fail(`a subscriber of c${sub.channel} ended at ${sub.last[pub.index]} of publisher ${pub.index}'s ${pub.seq[sub.channel]}`);
    }
  }
  if (deliveries !== expected) return fail(`${deliveries} deliveries, expected ${expected}`);
  finished = true;
  const messages = pubs.reduce((n, pub) => n + pub.sent, 0);
  answer({ type: 'done', checked: `${messages.toLocaleString('en-US')} messages, ${deliveries.toLocaleString('en-US')} deliveries: each subscriber got each message once, in order` });
}

run().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
