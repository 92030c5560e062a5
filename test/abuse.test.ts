// Abuse against live servers: the `hotline serve` application (createApp + serve) where its
// defaults are what is tested, and the same endpoints composed with small limits where
// createApp offers no option for them (maxConnections, backpressureLimit, slowConsumer,
// heartbeatInterval, maxSubscriptions, and the hub's clock for exact rate-limit counts).
// Beside every abuser, a well-behaved pair of clients (a `ws` client echoing on /echo and a
// hotline.v1 client doing sub/pub on /ws) runs round trips the whole time and must never
// fail. Each test asserts what the abuser saw: status lines, close codes and reasons, what
// was and was not answered, and how the server's own buffers stayed bounded. Volumes adapt
// to the machine's socket buffers, waits are generous, and nothing asserts a speed.
// docs/reliability.md lists the limit behind each case; `todo` tests are bugs it describes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Buffer } from 'node:buffer';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import WebSocket from 'ws';
import { createApp, type App, type AppOptions } from '../src/server/app.js';
import { channelsEndpoint, type ChannelsEndpointOptions } from '../src/server/channels.js';
import { echoHandlers } from '../src/server/echo.js';
import { Logger } from '../src/server/log.js';
import { serve, type RunningServer } from '../src/server/serve.js';
import { WebSocketServer, type WebSocketServerOptions } from '../src/node/server.js';
import { ChannelsClient, type WireMessage } from './support/channels-client.js';
import { quietWindow, sleep, waitFor, within } from './support/wait.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
/** Waits are generous: the suite shares the machine. Tests assert outcomes, never speeds. */
const WAIT = 20_000;

// ───────────────────────────── raw peers ─────────────────────────────

interface ServerFrame {
  opcode: number;
  fin: boolean;
  rsv1: boolean;
  payload: Buffer;
}

/** An incremental parser of the server's frames (unmasked), for peers that receive megabytes. */
class FrameReader {
  readonly frames: ServerFrame[] = [];
  readonly counts = new Map<number, number>();
  error: string | null = null;
  private pending = Buffer.alloc(0);

  count(opcode: number): number {
    return this.counts.get(opcode) ?? 0;
  }

  push(chunk: Buffer): void {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 2) {
      const b0 = buf[at]!;
      const b1 = buf[at + 1]!;
      let length = b1 & 0x7f;
      let offset = at + 2;
      if (length === 126) {
        if (buf.length - at < 4) break;
        length = buf.readUInt16BE(at + 2);
        offset = at + 4;
      } else if (length === 127) {
        if (buf.length - at < 10) break;
        length = Number(buf.readBigUInt64BE(at + 2));
        offset = at + 10;
      }
      if ((b1 & 0x80) !== 0) this.error ??= 'the server masked a frame';
      if (buf.length < offset + length) break;
      const opcode = b0 & 0x0f;
      this.frames.push({ opcode, fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, payload: Buffer.from(buf.subarray(offset, offset + length)) });
      this.counts.set(opcode, this.count(opcode) + 1);
      at = offset + length;
    }
    this.pending = Buffer.from(buf.subarray(at));
  }
}

/** A raw TCP peer: records the HTTP answer, then (after a 101) parses the frames that follow. */
class RawPeer {
  readonly socket: Socket;
  readonly connectedAt = Date.now();
  closedAt: number | null = null;
  gotEnd = false;
  hadError = false;
  reader: FrameReader | null = null;
  readonly closed: Promise<void>;
  private raw: Buffer[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (this.reader !== null) this.reader.push(chunk);
      else this.raw.push(chunk);
    });
    socket.on('end', () => {
      this.gotEnd = true;
    });
    socket.on('error', () => {
      this.hadError = true;
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closedAt = Date.now();
        resolve();
      }),
    );
  }

  static async connect(port: number): Promise<RawPeer> {
    const socket = connect(port, '127.0.0.1');
    const peer = new RawPeer(socket);
    await once(socket, 'connect');
    return peer;
  }

  /** Connects, sends an upgrade request and waits for the answer's head. */
  static async upgrade(port: number, path: string, extra: string[] = []): Promise<{ peer: RawPeer; answer: HttpAnswer }> {
    const peer = await RawPeer.connect(port);
    peer.socket.write(upgradeRequest(port, path, extra));
    await peer.waitForBytes((b) => b.includes('\r\n\r\n'), 'the answer to the upgrade');
    const answer = parseHttpAnswer(peer.bytes);
    if (answer.status === 101) peer.startFrames(answer.headLength);
    return { peer, answer };
  }

  get bytes(): Buffer {
    return Buffer.concat(this.raw);
  }

  startFrames(headLength: number): void {
    const rest = this.bytes.subarray(headLength);
    this.raw = [];
    this.reader = new FrameReader();
    if (rest.length > 0) this.reader.push(rest);
  }

  get frames(): ServerFrame[] {
    return this.reader?.frames ?? [];
  }

  async waitForBytes(condition: (bytes: Buffer) => boolean, what: string, ms = WAIT): Promise<void> {
    await waitFor(() => condition(this.bytes), `${what}; got ${JSON.stringify(this.bytes.toString('latin1').slice(0, 200))}`, ms);
  }

  async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const result = await Promise.race([this.closed.then(() => true as const), timeout]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function upgradeRequest(port: number, path: string, extra: string[] = []): string {
  return (
    [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${KEY}`,
      'Sec-WebSocket-Version: 13',
      ...extra,
    ].join('\r\n') + '\r\n\r\n'
  );
}

interface HttpAnswer {
  status: number;
  statusLine: string;
  headers: Map<string, string>;
  headLength: number;
  body: string;
}

function parseHttpAnswer(bytes: Buffer): HttpAnswer {
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  assert.notEqual(end, -1, `no complete HTTP head in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine = '', ...fields] = text.slice(0, end).split('\r\n');
  const headers = new Map<string, string>();
  for (const field of fields) {
    const colon = field.indexOf(':');
    headers.set(field.slice(0, colon).trim().toLowerCase(), field.slice(colon + 1).trim());
  }
  return { status: Number(statusLine.split(' ')[1]), statusLine, headers, headLength: end + 4, body: text.slice(end + 4) };
}

/** A masked client frame. */
function frame(opcode: number, payload: Buffer = Buffer.alloc(0), options: { fin?: boolean; rsv1?: boolean } = {}): Buffer {
  const length = payload.length;
  const first = ((options.fin ?? true) ? 0x80 : 0) | (options.rsv1 === true ? 0x40 : 0) | opcode;
  let header: Buffer;
  if (length < 126) header = Buffer.from([first, 0x80 | length]);
  else if (length < 0x10000) header = Buffer.from([first, 0x80 | 126, length >> 8, length & 0xff]);
  else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, mask, body]);
}

function closeCodeOf(f: ServerFrame | undefined): number | null {
  return f !== undefined && f.opcode === 0x8 && f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
}

// ───────────────────────────── well-behaved clients ─────────────────────────────

/** A raw hotline.v1 client of `path`, with the generous limit for its requests and waits. */
const openHotline = (port: number, path = '/ws'): Promise<ChannelsClient> => ChannelsClient.connect(`ws://127.0.0.1:${port}${path}`, { timeout: WAIT });

/** A `ws` client on /echo that checks its messages come back unchanged. */
class EchoClient {
  private readonly queue: Array<{ data: Buffer; binary: boolean }> = [];
  private readonly waiters: Array<(m: { data: Buffer; binary: boolean }) => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('error', () => {});
    ws.on('message', (data: Buffer, binary: boolean) => {
      const waiter = this.waiters.shift();
      if (waiter !== undefined) waiter({ data, binary });
      else this.queue.push({ data, binary });
    });
  }

  static async open(port: number, path = '/echo', options: WebSocket.ClientOptions = { perMessageDeflate: false }): Promise<EchoClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, options);
    const client = new EchoClient(ws);
    await once(ws, 'open');
    return client;
  }

  private next(): Promise<{ data: Buffer; binary: boolean }> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no echo within ${WAIT} ms`)), WAIT);
      this.waiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  async roundTrip(n: number): Promise<void> {
    assert.equal(this.ws.readyState, WebSocket.OPEN, 'the well-behaved echo client was disconnected');
    const text = `still here ${n} ✓`;
    const binary = Buffer.from([n & 0xff, 0, 0xff, (n >> 8) & 0xff]);
    this.ws.send(text);
    this.ws.send(binary);
    const first = await this.next();
    const second = await this.next();
    assert.deepEqual({ text: first.data.toString(), binary: first.binary }, { text, binary: false });
    assert.deepEqual({ bytes: [...second.data], binary: second.binary }, { bytes: [...binary], binary: true });
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = once(this.ws, 'close');
    this.ws.close(1000);
    await closed;
  }
}

/** The pair of well-behaved clients beside every abuser. */
class GoodClients {
  private n = 0;

  private constructor(
    readonly echo: EchoClient,
    readonly hotline: ChannelsClient,
  ) {}

  static async open(port: number): Promise<GoodClients> {
    const echo = await EchoClient.open(port);
    const hotline = await openHotline(port);
    const sub = await hotline.request('sub', { ch: 'good:room' });
    assert.equal(sub.op, 'ok', JSON.stringify(sub));
    const good = new GoodClients(echo, hotline);
    await good.check();
    return good;
  }

  /** One echo round trip on /echo, and one publish on /ws that comes back to its subscriber. */
  async check(): Promise<void> {
    const n = ++this.n;
    await this.echo.roundTrip(n);
    const ok = await this.hotline.request('pub', { ch: 'good:room', data: { n } });
    assert.equal(ok.op, 'ok', `the well-behaved hotline.v1 client got ${JSON.stringify(ok)}`);
    await this.hotline.waitFor((m) => m.op === 'msg' && m.ch === 'good:room' && (m.data as { n?: number }).n === n, `its message ${n}`, undefined, 0);
  }

  /**
   * Runs check() over and over until stopped (or `maxRounds` ran); stop() rethrows the first
   * failure and returns the rounds.
   */
  background(maxRounds = Infinity): { stop(): Promise<number> } {
    let running = true;
    let rounds = 0;
    let failure: unknown = null;
    const loop = (async () => {
      while (running && rounds < maxRounds) {
        try {
          await this.check();
          rounds++;
        } catch (error) {
          failure = error;
          return;
        }
        await sleep(20); // pacing
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        if (failure !== null) throw failure;
        // One more, after the abuse.
        await this.check();
        return rounds + 1;
      },
    };
  }

  async close(): Promise<void> {
    await this.echo.close();
    await this.hotline.close();
  }
}

// ───────────────────────────── servers ─────────────────────────────

interface Harness {
  server: RunningServer;
  port: number;
  echo: WebSocketServer<unknown>;
  channels: WebSocketServer<unknown>;
  /** A hub metric: from createApp's /metrics text, or from the hub itself. */
  hub(metric: 'abuseCloses' | 'subscriptions' | 'sessions' | `errors.${string}`): number;
  good: GoodClients;
  close(): Promise<void>;
}

/** The `hotline serve` application as the CLI starts it (its defaults), with a silent logger. */
async function startApp(options: AppOptions = {}, handshakeTimeout?: number): Promise<Harness> {
  const app: App = createApp({ logger: new Logger('silent'), ...options });
  await app.ready;
  const server = await serve({ port: 0, host: '127.0.0.1', websocket: app.websocket, request: app.request, handshakeTimeout, shutdownTimeout: 1_000 });
  const good = await GoodClients.open(server.port);
  const metric = (name: string, labels = ''): number => {
    const line = app.metrics().split('\n').find((l) => l.startsWith(`${name}${labels} `));
    return line === undefined ? NaN : Number(line.split(' ')[1]);
  };
  return {
    server,
    port: server.port,
    echo: app.websocket['/echo']!,
    channels: app.websocket['/ws']!,
    hub(name) {
      if (name === 'abuseCloses') return metric('hotline_channel_abuse_closes_total');
      if (name === 'subscriptions') return metric('hotline_channel_subscriptions');
      if (name === 'sessions') return metric('hotline_channel_sessions');
      return metric('hotline_channel_errors_total', `{code="${name.slice('errors.'.length)}"}`);
    },
    good,
    async close() {
      await good.close();
      await server.close();
      await app.close();
    },
  };
}

/** What both endpoints take besides their handlers (the app's own maxPayload and perMessageDeflate included). */
type EndpointLimits = Omit<WebSocketServerOptions<undefined>, 'handlers' | 'upgrade' | 'protocols'>;

interface CustomOptions {
  endpoint?: EndpointLimits;
  /** Options of the /ws endpoint and its hub only. */
  channels?: ChannelsEndpointOptions<undefined>;
  /** Further endpoints. */
  extra?: Record<string, WebSocketServer<unknown>>;
  handshakeTimeout?: number;
}

/**
 * The app's two endpoints composed as createApp composes them (echoHandlers on /echo, the
 * channels endpoint on /ws), with limits createApp does not expose.
 */
async function startCustom(options: CustomOptions): Promise<Harness> {
  const endpoint = options.endpoint ?? {};
  const echo = new WebSocketServer<undefined>({ ...endpoint, handlers: echoHandlers });
  const channels = channelsEndpoint<undefined>({ ...endpoint, ...options.channels });
  await channels.ready;
  const server = await serve({
    port: 0,
    host: '127.0.0.1',
    websocket: { '/echo': echo as WebSocketServer<unknown>, '/ws': channels.server as WebSocketServer<unknown>, ...options.extra },
    handshakeTimeout: options.handshakeTimeout,
    shutdownTimeout: 1_000,
  });
  const good = await GoodClients.open(server.port);
  return {
    server,
    port: server.port,
    echo: echo as WebSocketServer<unknown>,
    channels: channels.server as WebSocketServer<unknown>,
    hub(name) {
      const m = channels.hub.metrics;
      if (name === 'abuseCloses') return m.abuseCloses;
      if (name === 'subscriptions') return m.subscriptions;
      if (name === 'sessions') return m.sessions;
      return m.errors[name.slice('errors.'.length) as keyof typeof m.errors];
    },
    good,
    async close() {
      await good.close();
      await server.close();
      await channels.hub.close();
    },
  };
}

/** Samples the largest bufferedAmount of an endpoint's connections every few ms. */
function sampleBuffered(endpoint: WebSocketServer<unknown>): { max(): number; stop(): void } {
  let max = 0;
  const timer = setInterval(() => {
    for (const conn of endpoint.connections) max = Math.max(max, conn.bufferedAmount);
  }, 2);
  return { max: () => max, stop: () => clearInterval(timer) };
}

// ═════════════════════════════════════════════════════════════════════════════════════

describe('slowloris', { timeout: 60_000 }, () => {
  const HANDSHAKE_TIMEOUT = 500;
  let h: Harness;
  before(async () => {
    h = await startApp({}, HANDSHAKE_TIMEOUT);
  });
  after(async () => {
    await h?.close();
  });

  test('20 peers dribbling their upgrade request a byte at a time: cut off at the handshake timeout, unanswered', async () => {
    const background = h.good.background();
    const request = upgradeRequest(h.port, '/echo');
    const peers = await Promise.all(Array.from({ length: 20 }, () => RawPeer.connect(h.port)));
    const sent = peers.map(() => 0);
    // At 25 ms a byte the request would take over 4 s to arrive.
    const dribble = setInterval(() => {
      peers.forEach((peer, i) => {
        if (!peer.socket.destroyed && sent[i]! < request.length) peer.socket.write(request[sent[i]!++]!);
      });
    }, 25);
    try {
      const closed = await Promise.all(peers.map((p) => p.closedWithin(WAIT)));
      assert.deepEqual(closed, peers.map(() => true), 'every dribbling peer is disconnected');
    } finally {
      clearInterval(dribble);
    }
    for (const [i, peer] of peers.entries()) {
      assert.equal(peer.bytes.length, 0, 'the server answers nothing (no 408): it just closes');
      assert.ok(sent[i]! < request.length, 'the request never completed');
      assert.ok(peer.closedAt! - peer.connectedAt >= HANDSHAKE_TIMEOUT * 0.8, `closed after ${peer.closedAt! - peer.connectedAt} ms, before the timeout`);
    }
    assert.ok((await background.stop()) >= 1);
  });

  test(
    'a plain HTTP request dribbled on a kept-alive connection is cut off as well',
    async () => {
      const background = h.good.background();
      const peer = await RawPeer.connect(h.port);
      try {
        peer.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
        await peer.waitForBytes((b) => b.toString('latin1').includes('0\r\n\r\n'), 'the /healthz answer (chunked)');
        const slow = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(1000)}`;
        let i = 0;
        const dribble = setInterval(() => {
          if (!peer.socket.destroyed) peer.socket.write(slow[i++ % slow.length]!);
        }, 50);
        const closed = await peer.closedWithin(HANDSHAKE_TIMEOUT + 5_000);
        clearInterval(dribble);
        assert.equal(closed, true, `a dribbled second request is still open ${HANDSHAKE_TIMEOUT + 5_000} ms later`);
      } finally {
        peer.destroy();
        await background.stop();
      }
    },
  );
});

describe('a flood of handshakes past maxConnections', { timeout: 60_000 }, () => {
  const MAX = 8;
  let h: Harness;
  before(async () => {
    h = await startCustom({ endpoint: { maxConnections: MAX } });
  });
  after(async () => {
    await h?.close();
  });

  for (const path of ['/echo', '/ws']) {
    test(`${path}: 100 handshakes over the limit get 503 with Retry-After and are closed; a freed slot is usable again`, async () => {
      const endpoint = path === '/echo' ? h.echo : h.channels;
      const background = h.good.background();
      const fillers: RawPeer[] = [];
      try {
        // The well-behaved client holds one slot.
        while (endpoint.connections.size < MAX) {
          const { peer, answer } = await RawPeer.upgrade(h.port, path);
          assert.equal(answer.status, 101);
          fillers.push(peer);
        }
        const rejectedBefore = endpoint.counters.rejected;
        const attempts = await Promise.all(
          Array.from({ length: 100 }, async () => {
            const { peer, answer } = await RawPeer.upgrade(h.port, path);
            const closed = await peer.closedWithin(WAIT);
            peer.destroy();
            return { answer, closed, gotEnd: peer.gotEnd };
          }),
        );
        for (const { answer, closed, gotEnd } of attempts) {
          assert.equal(answer.statusLine, 'HTTP/1.1 503 Service Unavailable');
          assert.equal(answer.headers.get('retry-after'), '5');
          assert.equal(answer.headers.get('connection'), 'close');
          assert.equal(answer.body, 'too many connections');
          assert.ok(closed && gotEnd, 'the server closes TCP (FIN) after the 503');
        }
        assert.equal(endpoint.counters.rejected - rejectedBefore, 100);
        assert.equal(endpoint.connections.size, MAX);
        fillers.pop()!.destroy();
        await waitFor(() => endpoint.connections.size === MAX - 1, 'a slot to free');
        const { peer, answer } = await RawPeer.upgrade(h.port, path);
        fillers.push(peer);
        assert.equal(answer.status, 101, 'a freed slot is usable again');
      } finally {
        for (const peer of fillers) peer.destroy();
        await waitFor(() => endpoint.connections.size === 1, 'the fillers to go');
        assert.ok((await background.stop()) >= 1);
      }
    });
  }

  test(
    '/ws with an asynchronous authenticate: a concurrent flood stays within maxConnections',
    async () => {
      const channels = channelsEndpoint<undefined>({
        maxConnections: MAX,
        authenticate: async () => {
          await sleep(50); // a slow hook, so that the flood arrives while upgrades are pending
          return { auth: undefined };
        },
      });
      await channels.ready;
      const server = await serve({ port: 0, host: '127.0.0.1', websocket: { '/ws': channels.server as WebSocketServer<unknown> }, shutdownTimeout: 1_000 });
      const peers: RawPeer[] = [];
      try {
        const answers = await Promise.all(
          Array.from({ length: 40 }, async () => {
            const { peer, answer } = await RawPeer.upgrade(server.port, '/ws');
            peers.push(peer);
            return answer.status;
          }),
        );
        const accepted = answers.filter((s) => s === 101).length;
        assert.equal(answers.filter((s) => s !== 101 && s !== 503).length, 0);
        assert.ok(accepted <= MAX, `${accepted} connections accepted with maxConnections ${MAX}`);
        assert.ok(channels.server.connections.size <= MAX);
      } finally {
        for (const peer of peers) peer.destroy();
        await server.close();
        await channels.hub.close();
      }
    },
  );
});

/** The connection of `endpoint` that has received the most bytes: the flooding peer's. */
function busiest(endpoint: WebSocketServer<unknown>): { bytesReceived: number; bufferedAmount: number } | undefined {
  return [...endpoint.connections].sort((a, b) => b.bytesReceived - a.bytesReceived)[0];
}

/**
 * Writes what `next(i)` builds, `batch` at a time, until the server stops reading this
 * peer: its buffer for the peer is past `limit` (the server pauses reading then, until the
 * peer drains it), bytes wait unsent on our side, and the server's count of bytes received
 * stands still. Loopback socket buffers differ between machines, so the volume adapts to
 * them. Returns how many items were written.
 */
async function floodUntilStalled(peer: RawPeer, endpoint: WebSocketServer<unknown>, limit: number, next: (i: number) => Buffer, batch: number, cap: number): Promise<number> {
  let written = 0;
  while (written < cap) {
    peer.socket.write(Buffer.concat(Array.from({ length: batch }, (_, j) => next(written + j))));
    written += batch;
    let last = -1;
    let since = Date.now();
    while (true) {
      await sleep(20); // a stall shows only as bytesReceived standing still for a while
      const conn = busiest(endpoint);
      const received = conn?.bytesReceived ?? 0;
      if (received !== last) {
        last = received;
        since = Date.now();
      } else if (peer.socket.writableLength === 0) {
        break;
      } else if (Date.now() - since > 300 && (conn?.bufferedAmount ?? 0) > limit) {
        return written;
      }
    }
  }
  throw new Error(`the server never stopped reading (${written} items written)`);
}

describe('a client that never reads', { timeout: 120_000 }, () => {
  const LIMIT = 64 * 1024;
  const SIZE = 4096;
  const CLOSE_TIMEOUT = 3_000;
  /** One frame may go out once the buffer is at the limit; nothing more. */
  const BOUND = LIMIT + SIZE + 1024;
  const FAST = { perSecond: 1_000_000, burst: 1_000_000 };
  const DATA = 'n'.repeat(SIZE - 64);
  let h: Harness;
  let strict: ReturnType<typeof channelsEndpoint<undefined>>;
  before(async () => {
    strict = channelsEndpoint<undefined>({ backpressureLimit: LIMIT, slowConsumer: 'close', closeTimeout: CLOSE_TIMEOUT, publishRate: FAST });
    await strict.ready;
    // /ws with 'drop' set: its default is 'try-again-later' (test/attack-slow-consumer.test.ts).
    h = await startCustom({
      endpoint: { backpressureLimit: LIMIT },
      channels: { publishRate: FAST, slowConsumer: 'drop' },
      extra: { '/ws-close': strict.server as WebSocketServer<unknown> },
    });
  });
  after(async () => {
    await h?.close();
    await strict?.hub.close();
  });

  function message(i: number): Buffer {
    const payload = Buffer.alloc(SIZE, i & 0xff);
    payload.writeUInt32BE(i, 0);
    return payload;
  }

  test('an echo peer that floods and never reads: the server stops reading it, buffers stay within backpressureLimit plus one frame, echoes come in order once it reads', async () => {
    const background = h.good.background();
    const { peer, answer } = await RawPeer.upgrade(h.port, '/echo');
    assert.equal(answer.status, 101);
    const sampler = sampleBuffered(h.echo);
    const droppedBefore = h.echo.counters.droppedMessages;
    try {
      peer.socket.pause();
      const sent = await floodUntilStalled(peer, h.echo, LIMIT, (i) => frame(0x2, message(i)), 64, 16_384);
      const stalledAt = busiest(h.echo)!.bytesReceived;
      await quietWindow(500);
      assert.equal(busiest(h.echo)!.bytesReceived, stalledAt, 'read backpressure: the server reads nothing more from it');
      assert.ok(sampler.max() <= BOUND, `the server buffered ${sampler.max()} bytes for one peer (limit ${LIMIT})`);
      // The peer reads at last: every message was echoed, in order, or dropped (only echoes
      // that a read produced after the buffer passed the limit are).
      peer.socket.resume();
      const dropped = (): number => h.echo.counters.droppedMessages - droppedBefore;
      await waitFor(() => (peer.reader?.count(0x2) ?? 0) + dropped() === sent, `all ${sent} messages to be echoed or dropped`, 60_000);
      let last = -1;
      for (const f of peer.frames) {
        assert.equal(f.opcode, 0x2);
        const i = f.payload.readUInt32BE(0);
        assert.ok(i > last && f.payload.equals(message(i)), 'echoes arrive intact and in order');
        last = i;
      }
      assert.equal(peer.reader?.error, null);
      assert.ok(sampler.max() <= BOUND, `the server buffered ${sampler.max()} bytes for one peer (limit ${LIMIT})`);
      assert.equal(peer.socket.destroyed, false);
    } finally {
      sampler.stop();
      peer.destroy();
      assert.ok((await background.stop()) >= 1);
    }
  });

  /** A raw hotline.v1 peer subscribed to `news` that then stops reading. */
  async function stalledSubscriber(path: string): Promise<RawPeer> {
    const { peer, answer } = await RawPeer.upgrade(h.port, path, ['Sec-WebSocket-Protocol: hotline.v1']);
    assert.equal(answer.status, 101);
    peer.socket.write(frame(0x1, Buffer.from('{"op":"sub","id":1,"ch":"news"}')));
    // The answer, then the subscriber's own presence join.
    await waitFor(() => peer.frames.length === 2, 'the sub answer and its join');
    assert.match(peer.frames[0]!.payload.toString(), /^\{"op":"ok","id":1,/);
    assert.match(peer.frames[1]!.payload.toString(), /^\{"op":"join",/);
    peer.socket.pause();
    return peer;
  }

  /** Publishes ~4 KiB messages to `news`, 64 at a time, until `done()`; returns how many. */
  async function publishUntil(path: string, done: () => boolean): Promise<number> {
    const publisher = await openHotline(h.port, path);
    let published = 0;
    try {
      while (!done()) {
        assert.ok(published < 16_384, 'the slow consumer was never detected');
        const answers = await Promise.all(Array.from({ length: 64 }, (_, j) => publisher.request('pub', { ch: 'news', data: `${published + j} ${DATA}` })));
        for (const a of answers) assert.equal(a.op, 'ok');
        published += 64;
      }
    } finally {
      await publisher.close();
    }
    return published;
  }

  function news(peer: RawPeer): Array<{ offset: number; data: string }> {
    return peer.frames.slice(1).map((f) => JSON.parse(f.payload.toString()) as { op: string; ch: string; offset: number; data: string }).filter((m) => m.op === 'msg' && m.ch === 'news');
  }

  test(`a subscriber that never reads, policy 'drop': messages past backpressureLimit are dropped and counted; it sees gaps in the offsets`, async () => {
    const background = h.good.background();
    const peer = await stalledSubscriber('/ws');
    const sampler = sampleBuffered(h.channels);
    const droppedBefore = h.channels.counters.droppedMessages;
    const dropped = (): number => h.channels.counters.droppedMessages - droppedBefore;
    try {
      const published = await publishUntil('/ws', () => dropped() >= 64);
      assert.ok(sampler.max() <= BOUND, `the server buffered ${sampler.max()} bytes for one subscriber (limit ${LIMIT})`);
      assert.equal(peer.socket.destroyed, false, "'drop' keeps the connection");
      peer.socket.resume();
      await waitFor(() => news(peer).length + dropped() === published, `all ${published} messages to be delivered or dropped`, 60_000);
      // One more once it reads again: it arrives, and the offsets show what was dropped.
      const publisher = await openHotline(h.port);
      assert.equal((await publisher.request('pub', { ch: 'news', data: 'after' })).op, 'ok');
      await publisher.close();
      await waitFor(() => news(peer).some((m) => m.data === 'after'), 'the message after the drops');
      const first = (JSON.parse(peer.frames[0]!.payload.toString()) as { offset: number }).offset;
      const offsets = news(peer).map((m) => m.offset);
      assert.ok(offsets.every((o, i) => o > (i === 0 ? first : offsets[i - 1]!)), 'offsets increase');
      const missing = offsets[offsets.length - 1]! - first - offsets.length;
      assert.equal(missing, dropped(), 'every dropped message is a gap in the offsets the subscriber sees');
      assert.ok(sampler.max() <= BOUND, `the server buffered ${sampler.max()} bytes for one subscriber (limit ${LIMIT})`);
    } finally {
      sampler.stop();
      peer.destroy();
      assert.ok((await background.stop()) >= 1);
    }
  });

  test(`a subscriber that never reads, policy 'close': closed with 1008 "slow consumer" and TCP closed; its session is released`, async () => {
    const background = h.good.background();
    const peer = await stalledSubscriber('/ws-close');
    const sampler = sampleBuffered(strict.server as WebSocketServer<unknown>);
    const closesBefore = strict.server.counters.slowConsumerCloses;
    try {
      await publishUntil('/ws-close', () => strict.server.counters.slowConsumerCloses > closesBefore);
      // Reading now, the peer finds what the server said before it hung up.
      peer.socket.resume();
      assert.equal(await peer.closedWithin(CLOSE_TIMEOUT + WAIT), true, 'the server closes TCP');
      const frames = peer.frames;
      const last = frames[frames.length - 1];
      assert.equal(closeCodeOf(last), 1008);
      assert.equal(last!.payload.subarray(2).toString(), 'slow consumer: backpressure limit exceeded');
      assert.ok(frames.slice(1, -1).every((f) => f.opcode === 0x1), 'only channel messages before it');
      assert.equal(strict.server.counters.slowConsumerCloses - closesBefore, 1);
      await waitFor(() => strict.server.connections.size === 0 && strict.hub.metrics.sessions === 0, 'the session to be released');
      assert.ok(sampler.max() <= BOUND, `the server buffered ${sampler.max()} bytes for one subscriber (limit ${LIMIT})`);
    } finally {
      sampler.stop();
      peer.destroy();
      assert.ok((await background.stop()) >= 1);
    }
  });
});

describe('ping floods', { timeout: 90_000 }, () => {
  function pingPayload(i: number, size: number): Buffer {
    const payload = Buffer.alloc(size, 0x70);
    payload.writeUInt32BE(i, 0);
    return payload;
  }

  function assertPongs(peer: RawPeer, count: number, size: number): void {
    const pongs = peer.frames.filter((f) => f.opcode === 0xa);
    assert.equal(pongs.length, count);
    pongs.forEach((pong, i) => {
      if (!pong.payload.equals(pingPayload(i, size))) assert.fail(`pong ${i} does not carry ping ${i}'s payload`);
    });
    assert.equal(peer.frames.length, count, 'nothing but pongs');
  }

  describe('the app with its defaults', () => {
    let h: Harness;
    before(async () => {
      h = await startApp();
    });
    after(async () => {
      await h?.close();
    });

    test('20 000 pings from a peer that reads: each answered by its pong, in order; no limit applies', async () => {
      const background = h.good.background();
      const { peer, answer } = await RawPeer.upgrade(h.port, '/echo');
      assert.equal(answer.status, 101);
      try {
        const COUNT = 20_000;
        for (let batch = 0; batch < COUNT; batch += 1000) {
          peer.socket.write(Buffer.concat(Array.from({ length: 1000 }, (_, j) => frame(0x9, pingPayload(batch + j, 16)))));
          await sleep(1); // pacing
        }
        await waitFor(() => (peer.reader?.count(0xa) ?? 0) >= COUNT, 'every pong', 60_000);
        assertPongs(peer, COUNT, 16);
        assert.equal(peer.socket.destroyed, false, 'the connection stays open');
      } finally {
        peer.destroy();
        assert.ok((await background.stop()) >= 1);
      }
    });
  });

  describe('backpressureLimit 64 KiB', () => {
    const LIMIT = 64 * 1024;
    let h: Harness;
    before(async () => {
      h = await startCustom({ endpoint: { backpressureLimit: LIMIT } });
    });
    after(async () => {
      await h?.close();
    });

    test('pings from a peer that never reads: reading pauses, pongs stay bounded, none is lost', async () => {
      const background = h.good.background();
      const { peer, answer } = await RawPeer.upgrade(h.port, '/echo');
      assert.equal(answer.status, 101);
      const sampler = sampleBuffered(h.echo);
      // Pongs bypass the slow-consumer policy; one read (64 KiB) of pings can queue up to 64 KiB of pongs past the limit.
      const bound = LIMIT + 64 * 1024 + 1024;
      try {
        peer.socket.pause();
        const sent = await floodUntilStalled(peer, h.echo, LIMIT, (i) => frame(0x9, pingPayload(i, 125)), 2000, 400_000);
        assert.ok(sampler.max() <= bound, `the server buffered ${sampler.max()} bytes of pongs (limit ${LIMIT})`);
        peer.socket.resume();
        await waitFor(() => (peer.reader?.count(0xa) ?? 0) >= sent, `all ${sent} pongs`, 60_000);
        assertPongs(peer, sent, 125);
        assert.ok(sampler.max() <= bound, `the server buffered ${sampler.max()} bytes of pongs (limit ${LIMIT})`);
      } finally {
        sampler.stop();
        peer.destroy();
        assert.ok((await background.stop()) >= 1);
      }
    });
  });
});

/**
 * The hub's rate limits refill with time, and the hub takes a token when it processes a
 * request, not when it arrives: on a loaded machine a flood is processed so slowly that it
 * refills as it goes. These floods run against the /ws endpoint with its default limits and a
 * clock that stands still while the flood is in flight, so the counts are exact.
 */
describe('floods on /ws (default hub limits, the clock stopped during each flood)', { timeout: 60_000 }, () => {
  let stopped: number | null = null;
  /**
   * The well-behaved client publishes once a round, and the stopped clock refills its bucket
   * no more than the flooder's: on a slow machine a flood lasts long enough for 100 rounds,
   * past the default burst. 20 rounds a flood keeps it within its own limit over all four.
   */
  const GOOD_ROUNDS = 20;
  let h: Harness;
  let tight: Harness;
  before(async () => {
    const now = (): number => stopped ?? Date.now();
    h = await startCustom({ channels: { now } });
    tight = await startCustom({ channels: { now, maxSubscriptions: 10 } });
  });
  after(async () => {
    await h?.close();
    await tight?.close();
  });

  /** Sends requests until the server closes the connection (at most 2000); returns what came back. */
  async function flood(port: number, request: (i: number) => unknown): Promise<{ log: WireMessage[]; close: { code: number; reason: string } }> {
    const client = await openHotline(port);
    stopped = Date.now();
    try {
      for (let i = 1; i <= 2000 && client.ws.readyState === WebSocket.OPEN; i++) {
        const value = request(i);
        client.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
        if (i % 100 === 0) await sleep(1); // pacing
      }
      const close = await within(client.closed, 'the flooding connection to be closed', WAIT);
      return { log: client.log, close };
    } finally {
      stopped = null;
      client.ws.terminate();
    }
  }

  const ABUSE_CLOSE = { code: 1008, reason: 'too many bad or rate-limited requests' };

  /** The answers as runs of [what, count]: `ok`, or an error code. */
  /** The replies in `log`, in runs of the same kind; presence events (a subscriber sees its own join) are not replies. */
  function runs(log: WireMessage[]): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    for (const m of log) {
      if (m.op === 'join' || m.op === 'leave') continue;
      const what = m.op === 'ok' ? 'ok' : `${m.op} ${m.code ?? ''}`;
      const last = out[out.length - 1];
      if (last !== undefined && last[0] === what) last[1]++;
      else out.push([what, 1]);
    }
    return out;
  }

  test('a publish flood: ok for the burst, then rate_limited, and the 100th rate_limited closes with 1008', async (t) => {
    const background = h.good.background(GOOD_ROUNDS);
    const abuseBefore = h.hub('abuseCloses');
    const limitedBefore = h.hub('errors.rate_limited');
    const { log, close } = await flood(h.port, (i) => ({ op: 'pub', id: i, ch: 'flood', data: { i } }));
    assert.deepEqual(close, ABUSE_CLOSE);
    const [oks, limited, ...rest] = runs(log);
    t.diagnostic(`publish burst: ${oks?.[1]}`);
    assert.equal(oks?.[0], 'ok');
    assert.ok(oks[1] >= 50, `a burst of ${oks[1]} publishes`);
    assert.deepEqual(limited, ['err rate_limited', 100], 'the 100th strike within 10 s closes; nothing after it is answered');
    assert.deepEqual(rest, []);
    assert.ok(log.every((m, i) => m.id === i + 1), 'answers in order');
    assert.equal(log[log.length - 1]!.message, 'publishing too fast');
    assert.equal(h.hub('abuseCloses') - abuseBefore, 1);
    assert.equal(h.hub('errors.rate_limited') - limitedBefore, 100);
    assert.ok((await background.stop()) >= 1);
  });

  test('a flood of malformed requests: bad_request without an id for each, and the 100th closes with 1008', async () => {
    const background = h.good.background(GOOD_ROUNDS);
    const { log, close } = await flood(h.port, (i) => `{"op":"pub","id":${i},`);
    assert.deepEqual(close, ABUSE_CLOSE);
    assert.equal(log.length, 100);
    assert.ok(log.every((m) => m.op === 'err' && m.code === 'bad_request' && m.id === undefined && m.message === 'the message is not valid JSON'));
    assert.ok((await background.stop()) >= 1);
  });

  test('a subscription flood: ok for the burst, then rate_limited, then 1008; its subscriptions are released', async (t) => {
    const background = h.good.background(GOOD_ROUNDS);
    const subscriptionsBefore = h.hub('subscriptions');
    const { log, close } = await flood(h.port, (i) => ({ op: 'sub', id: i, ch: `flood:${i}` }));
    assert.deepEqual(close, ABUSE_CLOSE);
    const [oks, limited, ...rest] = runs(log);
    t.diagnostic(`subscribe burst: ${oks?.[1]}`);
    assert.equal(oks?.[0], 'ok');
    assert.ok(oks[1] >= 100, `a burst of ${oks[1]} subscriptions`);
    assert.deepEqual(limited, ['err rate_limited', 100]);
    assert.deepEqual(rest, []);
    assert.equal(log[log.length - 1]!.message, 'subscribing too fast');
    await waitFor(() => h.hub('subscriptions') === subscriptionsBefore, 'the subscriptions of the closed connection to go');
    assert.ok((await background.stop()) >= 1);
  });

  test('past maxSubscriptions (10): too_large, which is not a strike, for the rest of the burst; then rate_limited and 1008', async () => {
    const background = tight.good.background(GOOD_ROUNDS);
    const { log, close } = await flood(tight.port, (i) => ({ op: 'sub', id: i, ch: `many:${i}` }));
    assert.deepEqual(close, ABUSE_CLOSE);
    const [oks, tooLarge, limited, ...rest] = runs(log);
    assert.deepEqual(oks, ['ok', 10]);
    assert.equal(tooLarge?.[0], 'err too_large');
    assert.ok(tooLarge[1] >= 90, `${tooLarge[1]} too_large answers, none of them a strike`);
    assert.equal(log.filter((m) => m.op !== 'join')[10]!.message, 'at most 10 subscriptions per connection');
    assert.deepEqual(limited, ['err rate_limited', 100]);
    assert.deepEqual(rest, []);
    await waitFor(() => tight.hub('subscriptions') === 1, 'only the well-behaved subscription to remain');
    assert.ok((await background.stop()) >= 1);
  });
});

describe('deeply nested and huge JSON on /ws (the app, maxPayload 256 KiB)', { timeout: 60_000 }, () => {
  const MAX_PAYLOAD = 256 * 1024;
  let h: Harness;
  before(async () => {
    h = await startApp({ maxPayload: MAX_PAYLOAD });
  });
  after(async () => {
    await h?.close();
  });

  test('nesting past 64 levels (and 100 000 levels): bad_request without an id; the connection stays usable', async () => {
    const background = h.good.background();
    const client = await openHotline(h.port);
    try {
      const nested = (depth: number): string => `{"op":"pub","id":7,"ch":"x","data":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
      client.ws.send(nested(64));
      assert.equal((await client.waitFor((m) => m.id === 7, 'the 64-level answer', undefined, 0)).op, 'ok', '64 levels are allowed');
      for (const depth of [65, 100_000]) {
        const at = client.log.length;
        client.ws.send(nested(depth));
        const answer = await client.waitFor(() => true, `the answer to ${depth} levels`, undefined, at);
        assert.deepEqual(answer, { op: 'err', code: 'bad_request', message: 'the message nests objects and arrays deeper than 64 levels' });
      }
      assert.equal((await client.request('ping')).op, 'pong', 'the connection still works');
    } finally {
      await client.close();
      assert.ok((await background.stop()) >= 1);
    }
  });

  test('publish data over maxDataLength (64 Ki characters): too_large with the id', async () => {
    const client = await openHotline(h.port);
    try {
      const answer = await client.request('pub', { ch: 'x', data: 'd'.repeat(70_000) });
      assert.equal(answer.op, 'err');
      assert.equal(answer.code, 'too_large');
      assert.equal(answer.message, 'data is 70002 characters of JSON; the limit is 65536');
      assert.equal((await client.request('ping')).op, 'pong');
    } finally {
      await client.close();
    }
  });

  test('a message over maxPayload: 1009, and the connection is closed', async () => {
    const background = h.good.background();
    const client = await openHotline(h.port);
    client.ws.send(JSON.stringify({ op: 'pub', id: 1, ch: 'x', data: 'd'.repeat(MAX_PAYLOAD) }));
    const close = await client.closed;
    assert.equal(close.code, 1009);
    assert.equal(close.reason, `message exceeds the limit of ${MAX_PAYLOAD} bytes`);
    assert.equal(client.log.length, 0, 'no answer');
    assert.ok((await background.stop()) >= 1);
  });
});

describe('compression bombs (the app, permessage-deflate on, maxPayload 1 MiB)', { timeout: 60_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startApp({ perMessageDeflate: true });
  });
  after(async () => {
    await h?.close();
  });

  test('a 1 MB frame that would inflate to ~1 GB: 1009 as soon as 1 MiB is passed, with no memory spike', async () => {
    // Sync-flushed deflate of 1 MiB of zeros is byte-aligned and self-contained: copies of it
    // concatenate into one stream, 1 MiB more per copy.
    const segment = deflateRawSync(Buffer.alloc(1024 * 1024), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    const copies = Math.floor((1024 * 1024 - 64) / segment.length);
    const bomb = Buffer.concat(Array<Buffer>(copies).fill(segment)).subarray(0, copies * segment.length - 4);
    assert.throws(() => inflateRawSync(bomb, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 4 * 1024 * 1024 }), { code: 'ERR_BUFFER_TOO_LARGE' });
    assert.ok(copies >= 900, `the bomb holds ${copies} MiB`);

    const background = h.good.background();
    const { peer, answer } = await RawPeer.upgrade(h.port, '/echo', ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits']);
    assert.equal(answer.status, 101);
    assert.match(answer.headers.get('sec-websocket-extensions') ?? '', /^permessage-deflate/);
    let peak = 0;
    const base = process.memoryUsage().arrayBuffers;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    }, 1);
    try {
      peer.socket.write(frame(0x2, bomb, { rsv1: true }));
      assert.equal(await peer.closedWithin(WAIT), true, 'the server closes TCP');
      assert.deepEqual(peer.frames.map((f) => [f.opcode, closeCodeOf(f)]), [[0x8, 1009]]);
      assert.equal(peer.frames[0]!.payload.subarray(2).toString(), 'message inflates past the limit of 1048576 bytes');
      assert.ok(peak < 128 * 1024 * 1024, `array buffers grew by ${(peak / 1048576).toFixed(0)} MiB`);
    } finally {
      clearInterval(sampler);
      peer.destroy();
      assert.ok((await background.stop()) >= 1);
    }
  });

  test('a ws client compressing 16 MiB of zeros: its ~16 KB message is refused with 1009', async () => {
    const background = h.good.background();
    const abuser = await EchoClient.open(h.port, '/echo', { perMessageDeflate: true });
    assert.match(abuser.ws.extensions, /permessage-deflate/);
    const closed = once(abuser.ws, 'close') as Promise<[number, Buffer]>;
    abuser.ws.send(Buffer.alloc(16 * 1024 * 1024));
    const [code, reason] = await closed;
    assert.equal(code, 1009);
    assert.equal(reason.toString(), 'message inflates past the limit of 1048576 bytes');
    assert.ok((await background.stop()) >= 1);
  });
});

/** A TCP relay that can start dropping everything, in both directions, without closing either side. */
class BlackholeProxy {
  readonly server: NetServer;
  private dropping = false;
  private readonly sockets = new Set<Socket>();

  private constructor(server: NetServer) {
    this.server = server;
  }

  static async start(target: number): Promise<BlackholeProxy> {
    const server = createNetServer();
    const proxy = new BlackholeProxy(server);
    server.on('connection', (client) => {
      const upstream = connect(target, '127.0.0.1');
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        proxy.sockets.add(from);
        from.on('error', () => {});
        from.on('data', (chunk: Buffer) => {
          if (!proxy.dropping) to.write(chunk);
        });
        // A vanished peer sends no FIN: closes are not relayed while dropping.
        from.on('end', () => {
          if (!proxy.dropping) to.end();
        });
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  vanish(): void {
    this.dropping = true;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('half-open connections (heartbeatInterval 1 s)', { timeout: 60_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startCustom({ endpoint: { heartbeatInterval: 1_000 } });
  });
  after(async () => {
    await h?.close();
  });

  test('a hotline.v1 peer that goes silent after subscribing: pinged, then terminated; its session and subscription are released', async () => {
    const background = h.good.background();
    const timeoutsBefore = h.channels.counters.heartbeatTimeouts;
    const { peer, answer } = await RawPeer.upgrade(h.port, '/ws', ['Sec-WebSocket-Protocol: hotline.v1']);
    assert.equal(answer.status, 101);
    assert.equal(answer.headers.get('sec-websocket-protocol'), 'hotline.v1');
    peer.socket.write(frame(0x1, Buffer.from('{"op":"sub","id":1,"ch":"silent"}')));
    await waitFor(() => peer.frames.length > 0, 'the sub answer');
    assert.equal(h.hub('sessions'), 2);
    assert.equal(h.hub('subscriptions'), 2);
    // Then nothing: it never answers a ping.
    assert.equal(await peer.closedWithin(WAIT), true, 'the server terminates it');
    const [subOk, ownJoin, ...rest] = peer.frames;
    assert.match(subOk!.payload.toString(), /^\{"op":"ok","id":1,/);
    assert.match(ownJoin!.payload.toString(), /^\{"op":"join",/);
    assert.ok(rest.length >= 1 && rest.every((f) => f.opcode === 0x9), 'after the answer and its own join, only pings; no close frame (terminated)');
    assert.equal(h.channels.counters.heartbeatTimeouts - timeoutsBefore, 1);
    await waitFor(() => h.hub('sessions') === 1 && h.hub('subscriptions') === 1, 'the session and its subscription to go');
    assert.ok((await background.stop()) >= 1, 'the well-behaved clients answer pings and stay');
  });

  test('a ws client whose network vanishes (no FIN, nothing delivered): the server terminates its side', async () => {
    const background = h.good.background();
    const proxy = await BlackholeProxy.start(h.port);
    const victim = await EchoClient.open(proxy.port);
    try {
      await victim.roundTrip(1);
      const timeoutsBefore = h.echo.counters.heartbeatTimeouts;
      proxy.vanish();
      await waitFor(() => h.echo.counters.heartbeatTimeouts > timeoutsBefore, 'the heartbeat to terminate it');
      await waitFor(() => h.echo.connections.size === 1, 'the server to forget it');
      assert.equal(victim.ws.readyState, WebSocket.OPEN, 'the client itself never learns: it is half-open from its side');
    } finally {
      victim.ws.terminate();
      await proxy.close();
      assert.ok((await background.stop()) >= 1);
    }
  });
});
