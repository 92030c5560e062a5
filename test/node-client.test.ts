// hotline's Node WebSocket client (src/node/client.ts) against the `ws` package's server,
// hotline's own echo server, and raw `node:net` servers that misbehave on purpose. The
// checks follow the WHATWG WebSocket interface: exceptions, attributes, and which events
// fire, in which order, with which close code.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { WebSocket } from '../src/node/client.js';
import { CloseEvent, ErrorEvent } from '../src/node/events.js';
import { ConnectError } from '../src/node/client-handshake.js';
import { HandshakeError, ProtocolError } from '../src/protocol/errors.js';
import { computeAccept } from '../src/protocol/handshake.js';
import { HttpHeadParser, type HttpRequestHead } from '../src/protocol/http-head.js';
import { serve, type RunningServer } from '../src/server/serve.js';
import { echoHandlers } from '../src/server/echo.js';
import { closePayload } from './support/bytes.js';
import { makeCertificate } from './support/tls-certificate.js';

const HOST = '127.0.0.1';
const MiB = 1024 * 1024;

// ───────────────────────────── helpers ─────────────────────────────

const closes = new WeakMap<WebSocket, Promise<CloseEvent>>();

/** A new WebSocket whose close event is awaited by {@link closed}, however late one asks. */
function openSocket(...args: ConstructorParameters<typeof WebSocket>): WebSocket {
  const ws = new WebSocket(...args);
  closes.set(ws, new Promise((resolve) => ws.addEventListener('close', resolve, { once: true })));
  return ws;
}

function closed(ws: WebSocket): Promise<CloseEvent> {
  const promise = closes.get(ws);
  assert.ok(promise, 'open sockets with openSocket()');
  return promise;
}

interface Recorded {
  /** Event types in the order they fired. */
  readonly events: string[];
  readonly messages: unknown[];
  /** The `error` of each error event: why the connection failed. */
  readonly causes: unknown[];
  readonly closed: Promise<CloseEvent>;
}

/** Records every event of `ws` through addEventListener. */
function record(ws: WebSocket): Recorded {
  const events: string[] = [];
  const messages: unknown[] = [];
  const causes: unknown[] = [];
  ws.addEventListener('open', () => events.push('open'));
  ws.addEventListener('message', (event) => {
    events.push('message');
    messages.push(event.data);
  });
  ws.addEventListener('error', (event) => {
    // An ErrorEvent, as Node's own WebSocket fires: browser code sees an Event; Node code, why.
    assert.equal(event.constructor, ErrorEvent, 'error is an ErrorEvent');
    assert.equal(event.message, event.error instanceof Error ? event.error.message : 'the connection closed without a closing handshake');
    events.push('error');
    causes.push(event.error);
  });
  const closed = new Promise<CloseEvent>((resolve) => {
    ws.addEventListener('close', (event) => {
      events.push('close');
      resolve(event);
    });
  });
  return { events, messages, causes, closed };
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('close', (e) => reject(new Error(`closed before open: ${e.code}`)), { once: true });
  });
}

function nextMessage(ws: WebSocket): Promise<unknown> {
  return new Promise((resolve) => ws.addEventListener('message', (e) => resolve(e.data), { once: true }));
}

function messages(ws: WebSocket, count: number): Promise<unknown[]> {
  const out: unknown[] = [];
  return new Promise((resolve) => {
    const onMessage = (e: { data: unknown }): void => {
      out.push(e.data);
      if (out.length === count) {
        ws.removeEventListener('message', onMessage);
        resolve(out);
      }
    };
    ws.addEventListener('message', onMessage);
  });
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function assertDomException(fn: () => unknown, name: string, message?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof DOMException, `${message ?? ''} expected a DOMException, got ${String(error)}`);
    assert.equal(error.name, name, message);
    return true;
  });
}

/** Close events as plain data, for deepEqual. */
function closeOf(event: CloseEvent): { code: number; reason: string; wasClean: boolean } {
  return { code: event.code, reason: event.reason, wasClean: event.wasClean };
}

interface WsServer {
  readonly wss: WebSocketServer;
  readonly url: string;
  /** The next server-side connection, with its upgrade request. */
  connection(): Promise<{ socket: WsSocket; request: IncomingMessage }>;
  close(): Promise<void>;
}

async function startWs(options: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<WsServer> {
  const wss = new WebSocketServer({ ...options, port: 0, host: HOST });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as { port: number }).port;
  const waiting: Array<(c: { socket: WsSocket; request: IncomingMessage }) => void> = [];
  const arrived: Array<{ socket: WsSocket; request: IncomingMessage }> = [];
  wss.on('connection', (socket, request) => {
    const c = { socket, request };
    const w = waiting.shift();
    if (w) w(c);
    else arrived.push(c);
  });
  return {
    wss,
    url: `ws://${HOST}:${port}`,
    connection: () => {
      const c = arrived.shift();
      return c ? Promise.resolve(c) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** A ws server that echoes every message as it came. */
async function startWsEcho(options: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<WsServer> {
  const server = await startWs(options);
  server.wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  return server;
}

interface RawServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A raw TCP server: for each connection it reads the request head and calls `onRequest`
 * with the socket (further bytes from the client arrive as 'data' on it; `rest` holds any
 * that came with the head).
 */
async function startRaw(onRequest: (socket: Socket, head: HttpRequestHead, rest: Buffer) => void): Promise<RawServer> {
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const parser = new HttpHeadParser('request');
    const onData = (chunk: Buffer): void => {
      let head: HttpRequestHead | null;
      try {
        head = parser.push(chunk);
      } catch {
        socket.destroy(); // not HTTP (a TLS ClientHello, say)
        return;
      }
      if (head === null) return;
      socket.off('data', onData);
      onRequest(socket, head, Buffer.from(parser.rest));
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `ws://${HOST}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function switchingProtocols(head: HttpRequestHead, extra = ''): string {
  const key = head.headers.get('sec-websocket-key') ?? '';
  return (
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${computeAccept(key)}\r\n${extra}\r\n`
  );
}

/** An unmasked server frame (payload under 126 bytes unless stated), optionally masked with `mask`. */
function serverFrame(opcode: number, payload: Buffer | string, mask?: Buffer): Buffer {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  assert.ok(bytes.length < 126);
  const header = Buffer.from([0x80 | opcode, (mask ? 0x80 : 0) | bytes.length]);
  if (!mask) return Buffer.concat([header, bytes]);
  const masked = Buffer.from(bytes.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([header, mask, masked]);
}

interface ClientFrame {
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Collects the (small, masked) frames a client sends on `socket`, and whether it ended TCP. */
function readClientFrames(socket: Socket, rest: Buffer): { frames: ClientFrame[]; ended: Promise<void> } {
  const frames: ClientFrame[] = [];
  let buffered = rest;
  const parse = (): void => {
    while (buffered.length >= 2) {
      const length = buffered[1]! & 0x7f;
      const masked = (buffered[1]! & 0x80) !== 0;
      assert.ok(length < 126, 'test helper reads small frames only');
      const total = 2 + (masked ? 4 : 0) + length;
      if (buffered.length < total) return;
      const payload = Buffer.from(buffered.subarray(total - length, total));
      if (masked) {
        const key = buffered.subarray(2, 6);
        for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i % 4]!;
      }
      frames.push({ opcode: buffered[0]! & 0x0f, masked, payload });
      buffered = buffered.subarray(total);
    }
  };
  parse();
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    parse();
  });
  const ended = new Promise<void>((resolve) => {
    socket.on('end', () => resolve());
    socket.on('close', () => resolve());
  });
  return { frames, ended };
}

function startHotlineEcho(maxPayload?: number): Promise<RunningServer> {
  return serve({
    port: 0,
    host: HOST,
    websocket: { '/echo': echoHandlers },
    endpoint: maxPayload === undefined ? {} : { maxPayload },
    shutdownTimeout: 500,
  });
}

// ───────────────────────────── the interface ─────────────────────────────

describe('constructor', () => {
  test('throws a SyntaxError DOMException for invalid URLs, schemes, fragments and subprotocols', () => {
    const cases: Array<[string, string | string[] | undefined]> = [
      ['not a url', undefined],
      ['/relative/path', undefined],
      ['ftp://example.com/', undefined],
      ['file:///tmp/x', undefined],
      ['ws://example.com/#fragment', undefined],
      ['ws://example.com/#', undefined],
      ['ws://example.com/', ['chat', 'chat']],
      ['ws://example.com/', ['a b']],
      ['ws://example.com/', ''],
      ['ws://example.com/', ['ok', 'no,comma']],
      ['ws://example.com/', ['é']],
    ];
    for (const [url, protocols] of cases) {
      assertDomException(() => new WebSocket(url, protocols), 'SyntaxError', `${url} ${JSON.stringify(protocols)}`);
    }
  });

  test('maps http: and https: to ws: and wss:, and serializes the URL', async () => {
    const server = await startWsEcho();
    try {
      const httpUrl = server.url.replace('ws:', 'http:') + '/a%20b?x=1';
      const ws = openSocket(httpUrl);
      assert.equal(ws.url, `${server.url}/a%20b?x=1`);
      const { request } = await Promise.all([opened(ws), server.connection()]).then(([, c]) => c);
      assert.equal(request.url, '/a%20b?x=1');
      ws.close();
      await closed(ws);
      const secure = openSocket('HTTPS://LocalHost:443/p'); // closed at once, before it connects
      assert.equal(secure.url, 'wss://localhost/p');
      secure.close();
      await closed(secure);
    } finally {
      await server.close();
    }
  });

  test('invalid Node-only options throw', () => {
    assert.throws(() => new WebSocket('ws://127.0.0.1:1/', [], { handshakeTimeout: -1 }), RangeError);
    assert.throws(() => new WebSocket('ws://127.0.0.1:1/', [], { maxPayload: 1.5 }), RangeError);
    assert.throws(() => new WebSocket('ws://127.0.0.1:1/', [], { headers: { Upgrade: 'h2c' } }), TypeError);
    assert.throws(() => new WebSocket('ws://127.0.0.1:1/', [], { headers: { 'X-Bad': 'a\r\nb' } }), TypeError);
  });
});

describe('attributes and constants', () => {
  test('constants on the class and the instance; initial attributes', async () => {
    const server = await startWsEcho();
    try {
      assert.deepEqual([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED], [0, 1, 2, 3]);
      const ws = openSocket(server.url);
      assert.deepEqual([ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED], [0, 1, 2, 3]);
      assert.ok(ws instanceof EventTarget);
      assert.equal(Object.prototype.toString.call(ws), '[object WebSocket]');
      assert.equal(ws.readyState, WebSocket.CONNECTING);
      assert.equal(ws.protocol, '');
      assert.equal(ws.extensions, '');
      assert.equal(ws.bufferedAmount, 0);
      assert.equal(ws.binaryType, 'blob');
      ws.binaryType = 'arraybuffer';
      assert.equal(ws.binaryType, 'arraybuffer');
      ws.binaryType = 'text' as unknown as 'blob'; // ignored, as in browsers
      assert.equal(ws.binaryType, 'arraybuffer');
      ws.binaryType = 'nodebuffer';
      assert.equal(ws.binaryType, 'nodebuffer');
      assert.equal(ws.onopen, null);
      await opened(ws);
      assert.equal(ws.readyState, WebSocket.OPEN);
      ws.close();
      assert.equal(ws.readyState, WebSocket.CLOSING);
      await closed(ws);
      assert.equal(ws.readyState, WebSocket.CLOSED);
    } finally {
      await server.close();
    }
  });

  test('send while CONNECTING throws InvalidStateError', async () => {
    const server = await startWsEcho();
    try {
      const ws = openSocket(server.url);
      assertDomException(() => ws.send('too early'), 'InvalidStateError');
      assert.throws(() => Reflect.apply(ws.send, ws, []), TypeError, 'the argument is required');
      assertDomException(() => ws.ping(), 'InvalidStateError');
      await opened(ws);
      ws.close();
      await closed(ws);
    } finally {
      await server.close();
    }
  });

  test('close() argument checks: InvalidAccessError for codes, SyntaxError for long reasons', async () => {
    const server = await startWs();
    try {
      const ws = openSocket(server.url);
      const [, { socket }] = await Promise.all([opened(ws), server.connection()]);
      for (const code of [0, 999, 1001, 1005, 1006, 1015, 2000, 2999, 5000, 65535, 70000, -1, Number.NaN]) {
        assertDomException(() => ws.close(code), 'InvalidAccessError', `code ${code}`);
      }
      assertDomException(() => ws.close(1000, 'x'.repeat(124)), 'SyntaxError', '124-byte reason');
      assertDomException(() => ws.close(1000, 'é'.repeat(62)), 'SyntaxError', '124 bytes of UTF-8 in 62 characters');
      assert.equal(ws.readyState, WebSocket.OPEN, 'a refused close() changes nothing');
      const reason = 'r'.repeat(123);
      const serverSaw = new Promise<[number, string]>((resolve) => socket.on('close', (code, r) => resolve([code, r.toString()])));
      ws.close(4999, reason);
      assert.equal(ws.readyState, WebSocket.CLOSING);
      ws.close(1000); // CLOSING: does nothing
      assert.deepEqual(await serverSaw, [4999, reason]);
      const event = await closed(ws);
      assert.deepEqual(closeOf(event), { code: 4999, reason, wasClean: true });
    } finally {
      await server.close();
    }
  });

  test('onX properties and addEventListener both fire; replacing a handler keeps its place; null removes it', async () => {
    const server = await startWs();
    try {
      const calls: string[] = [];
      const ws = openSocket(server.url);
      ws.onmessage = () => calls.push('onmessage first');
      ws.addEventListener('message', () => calls.push('listener'));
      ws.onmessage = function (this: WebSocket, event) {
        assert.equal(this, ws);
        calls.push(`onmessage ${String(event.data)}`);
      };
      ws.onopen = () => calls.push('onopen');
      ws.addEventListener('open', () => calls.push('open listener'));
      const handler = ws.onmessage;
      assert.equal(typeof handler, 'function');
      const [, { socket }] = await Promise.all([opened(ws), server.connection()]);
      socket.send('one');
      await nextMessage(ws);
      ws.onmessage = null;
      assert.equal(ws.onmessage, null);
      socket.send('two');
      await nextMessage(ws);
      assert.deepEqual(calls, ['onopen', 'open listener', 'onmessage one', 'listener', 'listener']);

      const order: string[] = [];
      ws.onerror = () => order.push('onerror');
      ws.onclose = (event) => order.push(`onclose ${event.code}`);
      ws.addEventListener('close', () => order.push('close listener'));
      socket.close(4321);
      await closed(ws);
      assert.deepEqual(order, ['onclose 4321', 'close listener']);
    } finally {
      await server.close();
    }
  });

  test('CloseEvent is built like the browser one', () => {
    const event = new CloseEvent('close', { code: 4000, reason: 'bye', wasClean: true });
    assert.ok(event instanceof Event);
    assert.equal(event.type, 'close');
    assert.deepEqual(closeOf(event), { code: 4000, reason: 'bye', wasClean: true });
    assert.deepEqual(closeOf(new CloseEvent('close')), { code: 0, reason: '', wasClean: false });
    assert.equal(new CloseEvent('close', { code: 65536 + 1000 }).code, 1000, 'unsigned short wraps');
    assert.equal(new CloseEvent('close', { reason: 'a\uD800b' }).reason, 'a\uFFFDb', 'USVString');
    assert.equal(Object.prototype.toString.call(event), '[object CloseEvent]');
    assert.throws(() => {
      (event as unknown as { code: number }).code = 1;
    }, TypeError);
  });
});

// ───────────────────────────── messages ─────────────────────────────

describe('messages against a ws server', () => {
  let server: WsServer;
  before(async () => {
    server = await startWsEcho();
  });
  after(async () => {
    await server.close();
  });

  test('text, and binary as Blob (default), ArrayBuffer and Buffer; empty messages', async () => {
    const ws = openSocket(server.url);
    const rec = record(ws);
    await opened(ws);

    ws.send('héllo ✓');
    assert.equal(await nextMessage(ws), 'héllo ✓');
    ws.send('');
    assert.equal(await nextMessage(ws), '');

    const bytes = Buffer.from([0, 1, 2, 254, 255]);
    ws.send(bytes);
    const blob = await nextMessage(ws);
    assert.ok(blob instanceof Blob);
    assert.deepEqual(Buffer.from(await blob.arrayBuffer()), bytes);

    ws.binaryType = 'arraybuffer';
    ws.send(new Uint8Array(bytes).buffer);
    const ab = await nextMessage(ws);
    assert.ok(ab instanceof ArrayBuffer);
    assert.deepEqual(Buffer.from(ab), bytes);
    ws.send(new ArrayBuffer(0));
    const emptyAb = await nextMessage(ws);
    assert.ok(emptyAb instanceof ArrayBuffer);
    assert.equal(emptyAb.byteLength, 0);

    ws.binaryType = 'nodebuffer';
    // A view in the middle of a larger buffer sends only its own bytes.
    const backing = new Uint16Array([0x0102, 0x0304, 0x0506, 0x0708]);
    ws.send(new DataView(backing.buffer, 2, 4));
    const view = await nextMessage(ws);
    assert.ok(Buffer.isBuffer(view));
    assert.deepEqual(view, Buffer.from(backing.buffer, 2, 4));
    ws.send(new Uint8Array(0));
    const emptyBuf = await nextMessage(ws);
    assert.ok(Buffer.isBuffer(emptyBuf));
    assert.equal(emptyBuf.length, 0);

    ws.binaryType = 'blob';
    ws.send(new Blob([]));
    const emptyBlob = await nextMessage(ws);
    assert.ok(emptyBlob instanceof Blob);
    assert.equal(emptyBlob.size, 0);

    ws.close(1000);
    const event = await rec.closed;
    assert.deepEqual(closeOf(event), { code: 1000, reason: '', wasClean: true });
    assert.equal(rec.events.filter((e) => e === 'message').length, 8);
    assert.deepEqual(rec.events.filter((e) => e !== 'message'), ['open', 'close']);
  });

  test('message events carry the origin of the URL', async () => {
    const ws = openSocket(`${server.url}/some/path?q=1`);
    await opened(ws);
    const event = new Promise<MessageEvent>((resolve) => ws.addEventListener('message', (e) => resolve(e as MessageEvent), { once: true }));
    ws.send('x');
    const e = await event;
    assert.ok(e instanceof MessageEvent);
    assert.equal(e.origin, server.url);
    ws.close();
    await closed(ws);
  });

  test('a Blob keeps its place among the messages sent after it, and so does close()', async () => {
    const sink = await startWs();
    try {
      const ws = openSocket(sink.url);
      const [, { socket }] = await Promise.all([opened(ws), sink.connection()]);
      const received: Array<string | number[]> = [];
      socket.on('message', (data: Buffer, isBinary) => received.push(isBinary ? [...data] : data.toString()));
      const serverClose = new Promise<[number, string]>((resolve) => socket.on('close', (code, r) => resolve([code, r.toString()])));
      ws.send('first');
      ws.send(new Blob(['second (blob)']));
      ws.send('third');
      ws.send(new Blob([new Uint8Array([4, 4])]));
      ws.send(new Uint8Array([5]));
      ws.close(1000, 'done');
      ws.send('after close: not sent');
      assert.deepEqual(await serverClose, [1000, 'done']);
      assert.deepEqual(received, ['first', [...Buffer.from('second (blob)')], 'third', [4, 4], [5]]);
      assert.deepEqual(closeOf(await closed(ws)), { code: 1000, reason: 'done', wasClean: true });
    } finally {
      await sink.close();
    }
  });

  test('other values are sent as their string, as Web IDL converts them', async () => {
    const ws = openSocket(server.url);
    await opened(ws);
    ws.send(42 as unknown as string);
    assert.equal(await nextMessage(ws), '42');
    ws.send('lone \uD800 surrogate');
    assert.equal(await nextMessage(ws), 'lone \uFFFD surrogate');
    ws.close();
    await closed(ws);
  });

  test('fragmented messages from the server are reassembled', async () => {
    const raw = await startWs();
    try {
      const ws = openSocket(raw.url);
      ws.binaryType = 'nodebuffer';
      const [, { socket }] = await Promise.all([opened(ws), raw.connection()]);
      const got = messages(ws, 3);
      socket.send('Hel', { fin: false });
      socket.send('lo, ', { fin: false });
      socket.send('world', { fin: true });
      socket.send(Buffer.from([1, 2]), { binary: true, fin: false });
      socket.ping('in between');
      socket.send(Buffer.from([3]), { binary: true, fin: true });
      socket.send('after');
      const data = await got;
      assert.equal(data[0], 'Hello, world');
      assert.deepEqual(data[1], Buffer.from([1, 2, 3]));
      assert.equal(data[2], 'after');
      ws.close();
      await closed(ws);
    } finally {
      await raw.close();
    }
  });

  test("the server's ping is answered with its payload; ping() gets a pong event", async () => {
    const raw = await startWs();
    try {
      const ws = openSocket(raw.url);
      const [, { socket }] = await Promise.all([opened(ws), raw.connection()]);
      const pong = new Promise<Buffer>((resolve) => socket.once('pong', resolve));
      socket.ping('are you there');
      assert.equal((await pong).toString(), 'are you there');

      const clientPong = new Promise<Buffer>((resolve) => ws.addEventListener('pong', (e) => resolve(e.data), { once: true }));
      ws.ping('node only');
      assert.equal((await clientPong).toString(), 'node only');
      assert.throws(() => ws.ping(Buffer.alloc(126)), RangeError);
      ws.close();
      await closed(ws);
    } finally {
      await raw.close();
    }
  });

  test('subprotocol negotiation', async () => {
    const picky = await startWs({
      handleProtocols: (offered: Set<string>) => (offered.has('v2.chat') ? 'v2.chat' : false),
    });
    try {
      const ws = openSocket(picky.url, ['v1.chat', 'v2.chat']);
      const [, { request }] = await Promise.all([opened(ws), picky.connection()]);
      assert.equal(request.headers['sec-websocket-protocol'], 'v1.chat, v2.chat');
      assert.equal(ws.protocol, 'v2.chat');
      ws.close();
      await closed(ws);

      // Offered, but the server picks none: allowed, protocol stays ''.
      const none = openSocket(picky.url, 'other');
      await opened(none);
      assert.equal(none.protocol, '');
      none.close();
      await closed(none);
    } finally {
      await picky.close();
    }
  });

  test('request headers: Host with the port, Origin and extra headers', async () => {
    const raw = await startWs();
    try {
      const ws = openSocket(`${raw.url}/p?q`, undefined, {
        origin: 'https://app.example',
        headers: { 'X-Token': 'abc', 'User-Agent': 'hotline-test' },
      });
      const [, { request }] = await Promise.all([opened(ws), raw.connection()]);
      assert.equal(request.headers.host, raw.url.slice('ws://'.length));
      assert.equal(request.headers.origin, 'https://app.example');
      assert.equal(request.headers['x-token'], 'abc');
      assert.equal(request.headers['user-agent'], 'hotline-test');
      assert.equal(request.url, '/p?q');
      ws.close();
      await closed(ws);
    } finally {
      await raw.close();
    }
  });

  test('bufferedAmount counts queued application bytes, then those sent after closing', async () => {
    const ws = openSocket(server.url);
    await opened(ws);
    ws.send('hello'); // 5 bytes
    ws.send(new Uint8Array(10));
    ws.send('é'); // 2 bytes of UTF-8
    assert.equal(ws.bufferedAmount, 17, 'nothing is written before the task ends');
    await messages(ws, 3);
    assert.equal(ws.bufferedAmount, 0, 'everything was handed to the OS');
    ws.close();
    ws.send('discarded'); // CLOSING: counted, not sent
    ws.send(new Blob(['1234']));
    assert.equal(ws.bufferedAmount, 13);
    await closed(ws);
    ws.send('x');
    assert.equal(ws.bufferedAmount, 14);
  });
});

describe('messages against the hotline echo server', () => {
  let server: RunningServer;
  before(async () => {
    server = await startHotlineEcho(32 * MiB);
  });
  after(async () => {
    await server.close();
  });

  test('text, binary and empty messages', async () => {
    const ws = openSocket(`ws://${HOST}:${server.port}/echo`);
    ws.binaryType = 'arraybuffer';
    const rec = record(ws);
    await opened(ws);
    const got = messages(ws, 4);
    ws.send('text ✓');
    ws.send(new Uint8Array([9, 8, 7]));
    ws.send('');
    ws.send(new Uint8Array(0));
    const data = await got;
    assert.equal(data[0], 'text ✓');
    assert.deepEqual([...new Uint8Array(data[1] as ArrayBuffer)], [9, 8, 7]);
    assert.equal(data[2], '');
    assert.ok(data[3] instanceof ArrayBuffer);
    assert.equal((data[3] as ArrayBuffer).byteLength, 0);
    ws.close(1000, 'thanks');
    // The close event reports the server's close frame: hotline echoes the code, not the reason.
    assert.deepEqual(closeOf(await rec.closed), { code: 1000, reason: '', wasClean: true });
  });

  test('a 16 MiB binary and a 16 MiB text message, with maxPayload raised on both sides', async () => {
    const ws = openSocket(`ws://${HOST}:${server.port}/echo`, [], { maxPayload: 32 * MiB });
    ws.binaryType = 'nodebuffer';
    await opened(ws);
    const big = Buffer.alloc(16 * MiB);
    for (let i = 0; i < big.length; i += 4096) big[i] = i / 4096;
    big[big.length - 1] = 0xab;
    ws.send(big);
    const back = await nextMessage(ws);
    assert.ok(Buffer.isBuffer(back));
    assert.ok(back.equals(big), '16 MiB binary echoed intact');
    const text = 'ü'.repeat(8 * MiB); // 16 MiB of UTF-8
    ws.send(text);
    assert.equal(await nextMessage(ws), text);
    ws.close();
    await closed(ws);
  });

  test('a message over the client maxPayload fails the connection with 1009', async () => {
    const seen = deferred<ClientFrame[]>();
    const raw = await startRaw((socket, head, rest) => {
      socket.write(switchingProtocols(head));
      const { frames, ended } = readClientFrames(socket, rest);
      socket.write(serverFrame(0x1, 'x'.repeat(100)));
      void ended.then(() => {
        socket.destroy();
        seen.resolve(frames);
      });
    });
    try {
      const ws = openSocket(raw.url, [], { maxPayload: 50 });
      const rec = record(ws);
      const event = await rec.closed;
      assert.deepEqual(closeOf(event), { code: 1006, reason: '', wasClean: false });
      assert.deepEqual(rec.events, ['open', 'error', 'close']);
      const frames = await seen.promise;
      assert.equal(frames.length, 1);
      assert.equal(frames[0]!.opcode, 0x8);
      assert.equal(frames[0]!.payload.readUInt16BE(0), 1009);
    } finally {
      await raw.close();
    }
  });
});


// ───────────────────────────── closing ─────────────────────────────

describe('every way a connection ends', () => {
  test('client-initiated close with code and reason: clean, and quick', async () => {
    const server = await startWs();
    try {
      const ws = openSocket(server.url);
      const rec = record(ws);
      const [, { socket }] = await Promise.all([opened(ws), server.connection()]);
      const serverSaw = new Promise<[number, string]>((resolve) => socket.on('close', (code, r) => resolve([code, r.toString()])));
      const started = Date.now();
      ws.close(3001, 'client says bye');
      assert.equal(ws.readyState, WebSocket.CLOSING);
      const event = await rec.closed;
      assert.ok(Date.now() - started < 1000, 'closed when the server closed TCP, not at the close timeout');
      assert.deepEqual(await serverSaw, [3001, 'client says bye']);
      assert.deepEqual(closeOf(event), { code: 3001, reason: 'client says bye', wasClean: true });
      assert.deepEqual(rec.events, ['open', 'close']);
      assert.equal(ws.readyState, WebSocket.CLOSED);
    } finally {
      await server.close();
    }
  });

  test('close() without arguments sends an empty close frame: the server echoes none, 1005', async () => {
    const server = await startWs();
    try {
      const ws = openSocket(server.url);
      const [, { socket }] = await Promise.all([opened(ws), server.connection()]);
      const serverSaw = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
      ws.close();
      assert.equal(await serverSaw, 1005);
      assert.deepEqual(closeOf(await closed(ws)), { code: 1005, reason: '', wasClean: true });
    } finally {
      await server.close();
    }
  });

  test('server-initiated close with code and reason', async () => {
    const server = await startWs();
    try {
      const ws = openSocket(server.url);
      const rec = record(ws);
      const [, { socket }] = await Promise.all([opened(ws), server.connection()]);
      socket.send('last words');
      socket.close(4002, 'server says bye');
      const event = await rec.closed;
      assert.deepEqual(closeOf(event), { code: 4002, reason: 'server says bye', wasClean: true });
      assert.deepEqual(rec.events, ['open', 'message', 'close']);
      assert.deepEqual(rec.messages, ['last words']);
    } finally {
      await server.close();
    }
  });

  test('server closes without a code: 1005', async () => {
    const server = await startWs();
    try {
      const ws = openSocket(server.url);
      const rec = record(ws);
      const [, { socket }] = await Promise.all([opened(ws), server.connection()]);
      socket.close();
      assert.deepEqual(closeOf(await rec.closed), { code: 1005, reason: '', wasClean: true });
      assert.deepEqual(rec.events, ['open', 'close']);
    } finally {
      await server.close();
    }
  });

  test('server destroys the socket: error, then close 1006, not clean', async () => {
    const server = await startWs();
    try {
      const ws = openSocket(server.url);
      const rec = record(ws);
      const [, { socket }] = await Promise.all([opened(ws), server.connection()]);
      socket.terminate();
      assert.deepEqual(closeOf(await rec.closed), { code: 1006, reason: '', wasClean: false });
      assert.deepEqual(rec.events, ['open', 'error', 'close']);
    } finally {
      await server.close();
    }
  });

  test('server sends a masked frame: the client fails with 1002, closes TCP, error then close 1006', async () => {
    const seen = deferred<ClientFrame[]>();
    const raw = await startRaw((socket, head, rest) => {
      const { frames, ended } = readClientFrames(socket, rest);
      socket.write(Buffer.concat([Buffer.from(switchingProtocols(head)), serverFrame(0x1, 'ok')]));
      setTimeout(() => socket.write(serverFrame(0x1, 'masked', Buffer.from([1, 2, 3, 4]))), 20);
      // The client must close TCP itself after failing; the server only watches.
      void ended.then(() => seen.resolve(frames));
    });
    try {
      const ws = openSocket(raw.url);
      const rec = record(ws);
      const event = await rec.closed;
      assert.deepEqual(closeOf(event), { code: 1006, reason: '', wasClean: false });
      assert.deepEqual(rec.events, ['open', 'message', 'error', 'close']);
      assert.ok(rec.causes[0] instanceof ProtocolError && rec.causes[0].code === 'MASK_FORBIDDEN', String(rec.causes[0]));
      const frames = await seen.promise;
      assert.equal(frames.length, 1);
      assert.ok(frames[0]!.masked, 'client frames are masked');
      assert.equal(frames[0]!.opcode, 0x8);
      assert.equal(frames[0]!.payload.readUInt16BE(0), 1002);
    } finally {
      await raw.close();
    }
  });

  test('server sends invalid UTF-8: the client fails with 1007; error then close 1006', async () => {
    const seen = deferred<ClientFrame[]>();
    const raw = await startRaw((socket, head, rest) => {
      const { frames, ended } = readClientFrames(socket, rest);
      socket.write(switchingProtocols(head));
      socket.write(serverFrame(0x1, Buffer.from([0x48, 0xc0, 0x80])));
      void ended.then(() => seen.resolve(frames));
    });
    try {
      const ws = openSocket(raw.url);
      const rec = record(ws);
      assert.deepEqual(closeOf(await rec.closed), { code: 1006, reason: '', wasClean: false });
      assert.deepEqual(rec.events, ['open', 'error', 'close']);
      const frames = await seen.promise;
      assert.equal(frames[0]!.payload.readUInt16BE(0), 1007);
    } finally {
      await raw.close();
    }
  });

  test('the server never answers close(): destroyed after closeTimeout, 1006', async () => {
    const raw = await startRaw((socket, head) => {
      socket.write(switchingProtocols(head));
      socket.on('data', () => {}); // reads the close frame, answers nothing, keeps TCP open
    });
    try {
      const ws = openSocket(raw.url, [], { closeTimeout: 200 });
      const rec = record(ws);
      await opened(ws);
      const started = Date.now();
      ws.close(1000);
      const event = await rec.closed;
      assert.ok(Date.now() - started >= 190, 'waited for the close timeout');
      assert.deepEqual(closeOf(event), { code: 1006, reason: '', wasClean: false });
      assert.deepEqual(rec.events, ['open', 'error', 'close']);
    } finally {
      await raw.close();
    }
  });

  test('the server closes but keeps TCP open: the client answers, waits closeTimeout, then reports the clean close', async () => {
    const seen = deferred<ClientFrame[]>();
    const raw = await startRaw((socket, head, rest) => {
      const { frames } = readClientFrames(socket, rest);
      socket.write(Buffer.concat([Buffer.from(switchingProtocols(head)), serverFrame(0x8, closePayload(4100, 'done'))]));
      socket.on('close', () => seen.resolve(frames));
    });
    try {
      const ws = openSocket(raw.url, [], { closeTimeout: 200 });
      const rec = record(ws);
      const event = await rec.closed;
      assert.deepEqual(closeOf(event), { code: 4100, reason: 'done', wasClean: true });
      assert.deepEqual(rec.events, ['open', 'close']);
      const frames = await seen.promise;
      assert.equal(frames.length, 1);
      assert.equal(frames[0]!.opcode, 0x8);
      assert.equal(frames[0]!.payload.readUInt16BE(0), 4100, 'the client echoes the code');
    } finally {
      await raw.close();
    }
  });

  test('messages that arrive after close() are not delivered', async () => {
    const raw = await startRaw((socket, head) => {
      // The message comes in the same read as the 101; the client closes in onopen first.
      socket.write(Buffer.concat([Buffer.from(switchingProtocols(head)), serverFrame(0x1, 'too late')]));
      socket.on('data', () => socket.end(serverFrame(0x8, closePayload(1000))));
    });
    try {
      const ws = openSocket(raw.url);
      const rec = record(ws);
      ws.onopen = () => ws.close(1000);
      assert.deepEqual(closeOf(await rec.closed), { code: 1000, reason: '', wasClean: true });
      assert.deepEqual(rec.events, ['open', 'close']);
    } finally {
      await raw.close();
    }
  });

  test('frames in the same read as the 101 are delivered after open', async () => {
    const raw = await startRaw((socket, head) => {
      socket.write(
        Buffer.concat([Buffer.from(switchingProtocols(head)), serverFrame(0x1, 'early'), serverFrame(0x8, closePayload(1000))]),
      );
      socket.on('data', () => socket.end());
    });
    try {
      const ws = openSocket(raw.url);
      const rec = record(ws);
      assert.deepEqual(closeOf(await rec.closed), { code: 1000, reason: '', wasClean: true });
      assert.deepEqual(rec.events, ['open', 'message', 'close']);
      assert.deepEqual(rec.messages, ['early']);
    } finally {
      await raw.close();
    }
  });

  test('close() while CONNECTING fails the connection: CLOSING, then error and close 1006', async () => {
    const server = await startWs();
    try {
      const ws = openSocket(server.url);
      const rec = record(ws);
      ws.close(1000, 'never mind');
      assert.equal(ws.readyState, WebSocket.CLOSING);
      assert.deepEqual(closeOf(await rec.closed), { code: 1006, reason: '', wasClean: false });
      assert.deepEqual(rec.events, ['error', 'close']);
      assert.equal(ws.readyState, WebSocket.CLOSED);
      assert.ok(rec.causes[0] instanceof ConnectError && rec.causes[0].code === 'ABORTED', String(rec.causes[0]));
    } finally {
      await server.close();
    }
  });
});

// ───────────────────────────── opening handshake failures ─────────────────────────────

describe('opening handshake failures: error, then close 1006', () => {
  /** Resolves to the error event's `error`: why it failed. */
  async function expectHandshakeFailure(ws: WebSocket): Promise<unknown> {
    const rec = record(ws);
    assert.deepEqual(closeOf(await rec.closed), { code: 1006, reason: '', wasClean: false });
    assert.deepEqual(rec.events, ['error', 'close']);
    assert.equal(ws.readyState, WebSocket.CLOSED);
    assert.equal(ws.protocol, '');
    return rec.causes[0];
  }

  function assertHandshakeError(cause: unknown, code: string, status: number): void {
    assert.ok(cause instanceof HandshakeError, `a HandshakeError, not ${String(cause)}`);
    assert.equal(cause.code, code);
    assert.equal(cause.status, status);
  }

  test('404 from the hotline server: the error event carries the status', async () => {
    const server = await startHotlineEcho();
    try {
      const cause = await expectHandshakeFailure(openSocket(`ws://${HOST}:${server.port}/nowhere`));
      assertHandshakeError(cause, 'UNEXPECTED_STATUS', 404);
      assert.equal((cause as Error).message, 'expected status 101, got 404 Not Found');
    } finally {
      await server.close();
    }
  });

  test('wrong Sec-WebSocket-Accept', async () => {
    const raw = await startRaw((socket) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${computeAccept('dGhlIHNhbXBsZSBub25jZQ==')}\r\n\r\n`,
      );
    });
    try {
      assertHandshakeError(await expectHandshakeFailure(openSocket(raw.url)), 'BAD_ACCEPT', 101);
    } finally {
      await raw.close();
    }
  });

  test('a subprotocol that was not offered', async () => {
    const raw = await startRaw((socket, head) => socket.write(switchingProtocols(head, 'Sec-WebSocket-Protocol: sneaky\r\n')));
    try {
      assertHandshakeError(await expectHandshakeFailure(openSocket(raw.url, ['chat'])), 'UNEXPECTED_PROTOCOL', 101);
    } finally {
      await raw.close();
    }
  });

  test('an extension that was not offered', async () => {
    const raw = await startRaw((socket, head) => socket.write(switchingProtocols(head, 'Sec-WebSocket-Extensions: permessage-deflate\r\n')));
    try {
      assertHandshakeError(await expectHandshakeFailure(openSocket(raw.url, [], { perMessageDeflate: false })), 'UNEXPECTED_EXTENSION', 101);
    } finally {
      await raw.close();
    }
  });

  for (const answer of [
    'x-webkit-deflate-frame',
    'permessage-deflate; client_max_window_bits=10',
    'permessage-deflate; server_max_window_bits',
    'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    'permessage-deflate; level=9',
    'permessage-deflate, permessage-deflate',
  ]) {
    test(`an unacceptable permessage-deflate answer: ${answer}`, async () => {
      const raw = await startRaw((socket, head) => socket.write(switchingProtocols(head, `Sec-WebSocket-Extensions: ${answer}\r\n`)));
      try {
        const cause = await expectHandshakeFailure(openSocket(raw.url, [], { perMessageDeflate: { clientMaxWindowBits: false } }));
        assert.ok(cause instanceof HandshakeError && cause.status === 101, String(cause));
      } finally {
        await raw.close();
      }
    });
  }

  test('a malformed response head', async () => {
    const raw = await startRaw((socket) => socket.write('HTTP/1.1 101 OK\nUpgrade: websocket\r\n\r\n'));
    try {
      assertHandshakeError(await expectHandshakeFailure(openSocket(raw.url)), 'MALFORMED_HTTP', 400);
    } finally {
      await raw.close();
    }
  });

  test('the server closes the connection before answering', async () => {
    const raw = await startRaw((socket) => socket.end());
    try {
      const cause = await expectHandshakeFailure(openSocket(raw.url));
      assert.ok(cause instanceof ConnectError && cause.code === 'NO_RESPONSE', String(cause));
    } finally {
      await raw.close();
    }
  });

  test('nothing listens on the port', async () => {
    const raw = await startRaw(() => {});
    const url = raw.url;
    await raw.close();
    const cause = await expectHandshakeFailure(openSocket(url));
    assert.equal((cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  });

  test('a server that never answers: handshakeTimeout', async () => {
    const raw = await startRaw(() => {});
    try {
      const started = Date.now();
      const cause = await expectHandshakeFailure(openSocket(raw.url, [], { handshakeTimeout: 250 }));
      assert.ok(cause instanceof ConnectError && cause.code === 'HANDSHAKE_TIMEOUT', String(cause));
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 240 && elapsed < 2000, `failed after ${elapsed} ms`);
    } finally {
      await raw.close();
    }
  });
});

// ───────────────────────────── wss ─────────────────────────────

const certificate = makeCertificate('the wss:// tests are');
const noOpenssl = certificate === null ? 'openssl is missing: wss:// is not tested' : false;

describe('wss:// against an https server with a certificate made at test time', { skip: noOpenssl }, () => {
  let https: HttpsServer;
  let wss: WebSocketServer;
  let port = 0;
  before(async () => {
    https = createHttpsServer({ key: certificate!.key, cert: certificate!.cert });
    wss = new WebSocketServer({ server: https });
    wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
    await new Promise<void>((resolve) => https.listen(0, HOST, () => resolve()));
    port = (https.address() as { port: number }).port;
  });
  after(async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => https.close(() => resolve()));
    rmSync(certificate!.dir, { recursive: true, force: true });
  });

  test('with the certificate as ca it connects (SNI by host name) and echoes', async () => {
    const ws = openSocket(`wss://localhost:${port}/`, [], { tls: { ca: certificate!.cert } });
    const rec = record(ws);
    await opened(ws);
    ws.send('over TLS');
    assert.equal(await nextMessage(ws), 'over TLS');
    ws.close(1000);
    assert.deepEqual(closeOf(await rec.closed), { code: 1000, reason: '', wasClean: true });
  });

  test('an IP address host verifies against the IP in the certificate', async () => {
    const ws = openSocket(`wss://${HOST}:${port}/`, [], { tls: { ca: certificate!.cert } });
    await opened(ws);
    ws.close();
    await closed(ws);
  });

  test('without the ca the certificate is refused: error, then close 1015', async () => {
    const ws = openSocket(`wss://localhost:${port}/`);
    const rec = record(ws);
    assert.deepEqual(closeOf(await rec.closed), { code: 1015, reason: '', wasClean: false });
    assert.deepEqual(rec.events, ['error', 'close']);
    // Node's TLS error, with its code: what to fix is in it.
    assert.equal((rec.causes[0] as NodeJS.ErrnoException).code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  test('a wss:// URL to a plain TCP server: the TLS handshake fails, 1015', async () => {
    // The ClientHello is no HTTP head: the raw server drops the connection.
    const raw = await startRaw(() => {});
    try {
      const ws = openSocket(`wss://${HOST}:${raw.port}/`, [], { tls: { ca: certificate!.cert } });
      const rec = record(ws);
      const event = await rec.closed;
      assert.equal(event.code, 1015);
      assert.deepEqual(rec.events, ['error', 'close']);
    } finally {
      await raw.close();
    }
  });
});
