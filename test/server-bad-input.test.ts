// Bad input against one hotline echo server over raw TCP, with a well-behaved `ws` client
// connected beside it that must still echo correctly after every case: malformed
// handshakes (exact status lines and headers), protocol violations after a good handshake
// (exact close codes, parsed from the server's bytes), and peers that stall, never read,
// never handshake, or make a handler throw. After every refusal or failure the server must
// close TCP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { serve, type RunningServer } from '../src/server/serve.js';
import { echoHandlers } from '../src/server/echo.js';
import { closePayload } from './support/bytes.js';
import { quietWindow, waitFor } from './support/wait.js';

const MAX_PAYLOAD = 64 * 1024;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
/** How long the server gets to close TCP after refusing or failing a connection. */
const CLOSE_WITHIN_MS = 2_000;

// ---------------------------------------------------------------------------------------
// Raw peers

/** A raw TCP peer that records every byte it receives and how the connection ended. */
class RawPeer {
  readonly socket: Socket;
  private readonly chunks: Buffer[] = [];
  /** Set when the server sent FIN. */
  gotEnd = false;
  hadError = false;
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    socket.on('end', () => {
      this.gotEnd = true;
    });
    socket.on('error', () => {
      this.hadError = true;
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async connect(port: number): Promise<RawPeer> {
    const socket = connect(port, '127.0.0.1');
    const peer = new RawPeer(socket);
    await once(socket, 'connect');
    return peer;
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** True when the socket closed within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const result = await Promise.race([this.closed.then(() => true as const), timeout]);
    clearTimeout(timer);
    return result;
  }

  async waitForBytes(condition: (bytes: Buffer) => boolean, what: string, ms = 5_000): Promise<void> {
    await waitFor(() => condition(this.bytes), what, { ms, state: () => `got ${JSON.stringify(this.bytes.toString('latin1'))}` });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function request(lines: string[]): string {
  return lines.join('\r\n') + '\r\n\r\n';
}

function goodRequest(port: number, path = '/echo'): string {
  return request([
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${KEY}`,
    'Sec-WebSocket-Version: 13',
  ]);
}

interface HttpAnswer {
  statusLine: string;
  headers: Map<string, string>;
  body: string;
}

function parseHttpAnswer(bytes: Buffer): HttpAnswer {
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  assert.notEqual(end, -1, `no complete HTTP response head in ${JSON.stringify(text)}`);
  const [statusLine, ...fields] = text.slice(0, end).split('\r\n');
  const headers = new Map<string, string>();
  for (const field of fields) {
    const colon = field.indexOf(':');
    headers.set(field.slice(0, colon).trim().toLowerCase(), field.slice(colon + 1).trim());
  }
  return { statusLine: statusLine!, headers, body: text.slice(end + 4) };
}

/** Connects, completes a good handshake, and returns the peer with the 101 head consumed. */
async function upgradedPeer(port: number, path = '/echo'): Promise<{ peer: RawPeer; headLength: number }> {
  const peer = await RawPeer.connect(port);
  peer.socket.write(goodRequest(port, path));
  await peer.waitForBytes((b) => b.includes('\r\n\r\n'), 'the 101 response');
  const head = peer.bytes;
  const headLength = head.indexOf('\r\n\r\n') + 4;
  assert.match(head.subarray(0, headLength).toString('latin1'), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  return { peer, headLength };
}

// ---------------------------------------------------------------------------------------
// Frames

interface FrameOptions {
  fin?: boolean;
  rsv?: number;
  masked?: boolean;
  /** The length written in the header, when it should differ from the payload's. */
  declaredLength?: number;
}

/** A client frame (masked unless told otherwise), built by hand. */
function frame(opcode: number, payload: Buffer = Buffer.alloc(0), options: FrameOptions = {}): Buffer {
  const masked = options.masked ?? true;
  const length = options.declaredLength ?? payload.length;
  const first = ((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode;
  let header: Buffer;
  if (length < 126) {
    header = Buffer.from([first, length]);
  } else if (length < 0x10000) {
    header = Buffer.from([first, 126, length >> 8, length & 0xff]);
  } else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  if (!masked) return Buffer.concat([header, payload]);
  header[1]! |= 0x80;
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, mask, body]);
}

interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Parses the server's (unmasked) frames; a trailing partial frame is an error. */
function parseServerFrames(bytes: Buffer): ServerFrame[] {
  const frames: ServerFrame[] = [];
  let at = 0;
  while (at < bytes.length) {
    assert.ok(bytes.length - at >= 2, 'a partial frame header from the server');
    const b0 = bytes[at]!;
    const b1 = bytes[at + 1]!;
    assert.equal(b1 & 0x80, 0, 'the server masked a frame');
    assert.equal(b0 & 0x70, 0, 'the server set RSV bits');
    let length = b1 & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(offset));
      offset += 8;
    }
    assert.ok(offset + length <= bytes.length, 'a partial frame payload from the server');
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: bytes.subarray(offset, offset + length) });
    at = offset + length;
  }
  return frames;
}

// ---------------------------------------------------------------------------------------
// The well-behaved client beside the bad ones

class GoodClient {
  readonly ws: WebSocket;
  private readonly queue: Array<{ data: Buffer; isBinary: boolean }> = [];
  private readonly waiters: Array<(message: { data: Buffer; isBinary: boolean }) => void> = [];
  private counter = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter({ data, isBinary });
      else this.queue.push({ data, isBinary });
    });
  }

  static async open(port: number, path = '/echo'): Promise<GoodClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    await once(ws, 'open');
    return new GoodClient(ws);
  }

  private next(ms: number): Promise<{ data: Buffer; isBinary: boolean }> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        reject(new Error(`the well-behaved client got no echo within ${ms} ms`));
      }, ms);
      const waiter = (message: { data: Buffer; isBinary: boolean }): void => {
        clearTimeout(timer);
        resolve(message);
      };
      this.waiters.push(waiter);
    });
  }

  /** Sends a unique text and a unique binary message and checks both come back unchanged. */
  async assertEchoes(ms = 2_000): Promise<void> {
    assert.equal(this.ws.readyState, WebSocket.OPEN, 'the well-behaved client was disconnected');
    const n = ++this.counter;
    const text = `still here ${n} ✓`;
    const binary = Buffer.from([n & 0xff, 0, 0xff, (n >> 8) & 0xff]);
    this.ws.send(text);
    this.ws.send(binary);
    const first = await this.next(ms);
    const second = await this.next(ms);
    assert.deepEqual({ text: first.data.toString(), isBinary: first.isBinary }, { text, isBinary: false });
    assert.deepEqual({ bytes: [...second.data], isBinary: second.isBinary }, { bytes: [...binary], isBinary: true });
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = once(this.ws, 'close');
    this.ws.close(1000);
    await closed;
  }
}

// ---------------------------------------------------------------------------------------

describe('one hotline echo server under bad input', { timeout: 60_000 }, () => {
  let server: RunningServer;
  let good: GoodClient;
  const peers: RawPeer[] = [];

  const rawPeer = async (): Promise<RawPeer> => {
    const peer = await RawPeer.connect(server.port);
    peers.push(peer);
    return peer;
  };

  before(async () => {
    server = await serve({
      port: 0,
      host: '127.0.0.1',
      websocket: { '/echo': echoHandlers },
      endpoint: { maxPayload: MAX_PAYLOAD, closeTimeout: 1_000 },
      shutdownTimeout: 1_000,
    });
    good = await GoodClient.open(server.port);
    await good.assertEchoes();
  });

  after(async () => {
    for (const peer of peers) peer.destroy();
    await good?.close();
    await server?.close();
  });

  describe('malformed handshakes get exact HTTP answers, then TCP is closed', () => {
    interface Refusal {
      statusLine: string;
      /** Headers that must be present with exactly these values (names lower case). */
      headers?: Record<string, string>;
    }

    async function expectRefusal(raw: string | Buffer, expected: Refusal): Promise<HttpAnswer> {
      const peer = await rawPeer();
      peer.socket.write(raw);
      await peer.waitForBytes((b) => b.includes('\r\n\r\n'), 'an HTTP answer');
      const answer = parseHttpAnswer(peer.bytes);
      assert.equal(answer.statusLine, expected.statusLine);
      for (const [name, value] of Object.entries(expected.headers ?? {})) {
        assert.equal(answer.headers.get(name), value, `header ${name} in ${JSON.stringify(peer.bytes.toString('latin1'))}`);
      }
      assert.equal(answer.headers.has('sec-websocket-accept'), false, 'a refusal must not carry Sec-WebSocket-Accept');
      assert.equal(
        await peer.closedWithin(CLOSE_WITHIN_MS),
        true,
        `the server did not close TCP within ${CLOSE_WITHIN_MS} ms of refusing the upgrade (kept alive?)`,
      );
      assert.equal(peer.gotEnd, true, 'the server reset the connection instead of closing it');
      await good.assertEchoes();
      return answer;
    }

    const base = (port: number): string[] => [
      'GET /echo HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${KEY}`,
      'Sec-WebSocket-Version: 13',
    ];
    const without = (lines: string[], prefix: string): string[] => lines.filter((l) => !l.startsWith(prefix));
    const replace = (lines: string[], prefix: string, line: string): string[] =>
      lines.map((l) => (l.startsWith(prefix) ? line : l));

    test('missing Sec-WebSocket-Key: 400', async () => {
      await expectRefusal(request(without(base(server.port), 'Sec-WebSocket-Key')), {
        statusLine: 'HTTP/1.1 400 Bad Request',
        headers: { connection: 'close' },
      });
    });

    test('Sec-WebSocket-Version 8: 426 with Sec-WebSocket-Version: 13', async () => {
      await expectRefusal(request(replace(base(server.port), 'Sec-WebSocket-Version', 'Sec-WebSocket-Version: 8')), {
        statusLine: 'HTTP/1.1 426 Upgrade Required',
        headers: { 'sec-websocket-version': '13', connection: 'close' },
      });
    });

    test('missing Sec-WebSocket-Version: 426 with Sec-WebSocket-Version: 13', async () => {
      await expectRefusal(request(without(base(server.port), 'Sec-WebSocket-Version')), {
        statusLine: 'HTTP/1.1 426 Upgrade Required',
        headers: { 'sec-websocket-version': '13' },
      });
    });

    test('a key of 15 bytes (base64): 400', async () => {
      const short = randomBytes(15).toString('base64');
      await expectRefusal(request(replace(base(server.port), 'Sec-WebSocket-Key', `Sec-WebSocket-Key: ${short}`)), {
        statusLine: 'HTTP/1.1 400 Bad Request',
      });
    });

    test('a key of 17 bytes (base64): 400', async () => {
      const long = randomBytes(17).toString('base64');
      await expectRefusal(request(replace(base(server.port), 'Sec-WebSocket-Key', `Sec-WebSocket-Key: ${long}`)), {
        statusLine: 'HTTP/1.1 400 Bad Request',
      });
    });

    test('no Upgrade header: 426 naming websocket and version 13', async () => {
      await expectRefusal(request(without(base(server.port), 'Upgrade:')), {
        statusLine: 'HTTP/1.1 426 Upgrade Required',
        headers: { upgrade: 'websocket', 'sec-websocket-version': '13' },
      });
    });

    // RFC 6455 §4.2.1 and docs/decisions.md: a request without Connection: Upgrade is a
    // bad handshake (400), even though node:http routes it as a plain request.
    test('no Connection: Upgrade: 400', async () => {
      await expectRefusal(request(without(base(server.port), 'Connection:')), {
        statusLine: 'HTTP/1.1 400 Bad Request',
      });
    });

    test('POST: 405 with Allow: GET', async () => {
      await expectRefusal(request(replace(base(server.port), 'GET ', 'POST /echo HTTP/1.1')), {
        statusLine: 'HTTP/1.1 405 Method Not Allowed',
        headers: { allow: 'GET', connection: 'close' },
      });
    });

    test('HTTP/1.0: 400', async () => {
      await expectRefusal(request(replace(base(server.port), 'GET ', 'GET /echo HTTP/1.0')), {
        statusLine: 'HTTP/1.1 400 Bad Request',
        headers: { connection: 'close' },
      });
    });

    for (const version of ['HTTP/2.0', 'HTTP/9.9', 'HTTP/0.9']) {
      test(`${version}: 505, naming HTTP/1.1`, async () => {
        const answer = await expectRefusal(request(replace(base(server.port), 'GET ', `GET /echo ${version}`)), {
          statusLine: 'HTTP/1.1 505 HTTP Version Not Supported',
          headers: { connection: 'close' },
        });
        assert.match(answer.body, /upgrade over HTTP\/1\.1/);
      });
    }

    test('garbage instead of HTTP: 400 (from the HTTP parser)', async () => {
      await expectRefusal(Buffer.from('\x16\x03\x01\x02\x00garbage, not HTTP\r\n\r\n', 'latin1'), {
        statusLine: 'HTTP/1.1 400 Bad Request',
        headers: { connection: 'close' },
      });
    });

    test('20 KiB of headers: 431', async () => {
      const lines = base(server.port);
      for (let i = 0; i < 20; i++) lines.push(`X-Filler-${i}: ${'x'.repeat(1024)}`);
      await expectRefusal(request(lines), {
        statusLine: 'HTTP/1.1 431 Request Header Fields Too Large',
        headers: { connection: 'close' },
      });
    });

    test('an upgrade to a path with no endpoint: 404', async () => {
      await expectRefusal(request(replace(base(server.port), 'GET ', 'GET /nowhere HTTP/1.1')), {
        statusLine: 'HTTP/1.1 404 Not Found',
      });
    });
  });

  describe('protocol violations after a good handshake: the exact close code, then TCP closed', () => {
    /** Sends `bytes` after a good handshake and expects one close frame with `code` and FIN. */
    async function expectFailure(bytes: Buffer, code: number): Promise<void> {
      const { peer, headLength } = await upgradedPeer(server.port);
      peers.push(peer);
      peer.socket.write(bytes);
      const closedInTime = await peer.closedWithin(CLOSE_WITHIN_MS);
      const frames = parseServerFrames(peer.bytes.subarray(headLength));
      assert.deepEqual(
        frames.map((f) => ({ opcode: f.opcode, fin: f.fin, code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null })),
        [{ opcode: 0x8, fin: true, code }],
        'the server should answer with exactly one close frame',
      );
      const reason = frames[0]!.payload.subarray(2);
      assert.equal(Buffer.from(reason.toString('utf8')).equals(reason), true, 'the close reason is not UTF-8');
      assert.ok(reason.length <= 123, 'the close reason is too long for a control frame');
      assert.equal(closedInTime, true, `the server did not close TCP within ${CLOSE_WITHIN_MS} ms`);
      assert.equal(peer.gotEnd, true, 'the server reset the connection instead of closing it');
      await good.assertEchoes();
    }

    test('an unmasked client frame: 1002', async () => {
      await expectFailure(frame(0x1, Buffer.from('hello'), { masked: false }), 1002);
    });

    test('invalid UTF-8 in a text frame: 1007', async () => {
      await expectFailure(frame(0x1, Buffer.from([0x68, 0x69, 0xc3, 0x28])), 1007);
    });

    test('invalid UTF-8 split across continuation frames: 1007', async () => {
      const bytes = Buffer.concat([
        frame(0x1, Buffer.from([0x61, 0xe2, 0x82]), { fin: false }),
        frame(0x0, Buffer.from([0x41]), { fin: true }),
      ]);
      await expectFailure(bytes, 1007);
    });

    test('a frame over maxPayload: 1009, answered from the header alone', async () => {
      // Only the header goes out: the server must not wait for a payload it will refuse.
      await expectFailure(frame(0x2, Buffer.alloc(0), { declaredLength: MAX_PAYLOAD + 1 }), 1009);
    });

    test('a message over maxPayload in fragments: 1009', async () => {
      const half = Buffer.alloc(MAX_PAYLOAD / 2 + 1, 0x61);
      await expectFailure(Buffer.concat([frame(0x2, half, { fin: false }), frame(0x0, half, { fin: true })]), 1009);
    });

    for (const code of [1005, 1006, 999, 2000, 1004, 1015, 5000]) {
      test(`close code ${code} on the wire: 1002`, async () => {
        await expectFailure(frame(0x8, closePayload(code)), 1002);
      });
    }

    test('a 1-byte close payload: 1002', async () => {
      await expectFailure(frame(0x8, Buffer.from([0x03])), 1002);
    });

    test('a close reason that is not UTF-8: 1007', async () => {
      await expectFailure(frame(0x8, Buffer.concat([closePayload(1000), Buffer.from([0xff, 0xfe])])), 1007);
    });

    for (const opcode of [0x3, 0x7, 0xb, 0xf]) {
      test(`reserved opcode 0x${opcode.toString(16)}: 1002`, async () => {
        await expectFailure(frame(opcode, Buffer.from('x')), 1002);
      });
    }

    test('RSV1 set without an extension: 1002', async () => {
      await expectFailure(frame(0x1, Buffer.from('x'), { rsv: 0b100 }), 1002);
    });

    test('a fragmented ping: 1002', async () => {
      await expectFailure(frame(0x9, Buffer.from('x'), { fin: false }), 1002);
    });

    test('a ping with a 126-byte payload: 1002', async () => {
      await expectFailure(frame(0x9, Buffer.alloc(126, 0x70)), 1002);
    });

    test('a continuation frame with nothing to continue: 1002', async () => {
      await expectFailure(frame(0x0, Buffer.from('x')), 1002);
    });

    test('garbage bytes instead of a frame: 1002', async () => {
      await expectFailure(Buffer.from('GARBAGE, NOT A FRAME!!', 'latin1'), 1002);
    });

    test('0xff bytes instead of a frame: 1002', async () => {
      await expectFailure(Buffer.alloc(32, 0xff), 1002);
    });
  });

  describe('peers that stall or do not read', () => {
    test('half a frame, then silence: the server still serves others', async () => {
      const { peer } = await upgradedPeer(server.port);
      peers.push(peer);
      // A masked text frame header announcing 16-bit length, cut after the first length byte.
      peer.socket.write(Buffer.from([0x81, 0xfe, 0x00]));
      const stalled = [...server.endpoints.get('/echo')!.connections].at(-1)!;
      await waitFor(() => stalled.partialSince !== 0, 'the server to hold the half frame');
      await good.assertEchoes();
      const another = await GoodClient.open(server.port);
      await another.assertEchoes();
      await another.close();
      assert.equal(peer.socket.destroyed, false, 'nothing in the server times out a stalled frame yet');
      peer.destroy();
    });

    test('a client that never reads while the server echoes megabytes to it: others are unaffected', async () => {
      const { peer } = await upgradedPeer(server.port);
      peers.push(peer);
      // Stop reading: the server's echoes pile up in its buffers and then in the kernel's.
      peer.socket.pause();
      const chunk = Buffer.alloc(32 * 1024, 0x5a);
      const total = 16 * 1024 * 1024;
      const endpoint = server.endpoints.get('/echo')!;
      const stalled = [...endpoint.connections].at(-1)!;
      for (let sent = 0; sent < total; sent += chunk.length) peer.socket.write(frame(0x2, chunk));
      // The server reads, echoes, and stops reading once its echoes back up.
      await waitFor(() => stalled.readingPaused, 'the server to stop reading the peer that does not read');
      for (let i = 0; i < 5; i++) await good.assertEchoes();
      const another = await GoodClient.open(server.port);
      await another.assertEchoes();
      await another.close();
      peer.destroy();
      await peer.closed;
      // The server notices the reset and forgets the connection; it keeps serving.
      await waitFor(() => endpoint.connections.size === 1, 'only the well-behaved client to be left', 2_000);
      await good.assertEchoes();
    });

    test('a client that connects and never sends a handshake: others are unaffected', async () => {
      const silent = await rawPeer();
      const partial = await rawPeer();
      partial.socket.write(`GET /echo HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\n`);
      // Nothing marks a head still incomplete: an answer to it would have come in this window.
      await quietWindow(100);
      await good.assertEchoes();
      const another = await GoodClient.open(server.port);
      await another.assertEchoes();
      await another.close();
      assert.equal(silent.bytes.length, 0);
      assert.equal(partial.bytes.length, 0);
      silent.destroy();
      partial.destroy();
    });
  });
});

describe('a message handler that throws', { timeout: 30_000 }, () => {
  let server: RunningServer;
  const errors: unknown[] = [];

  before(async () => {
    server = await serve({
      port: 0,
      host: '127.0.0.1',
      websocket: {
        '/echo': {
          message(conn, message) {
            if (message === 'boom') throw new Error('boom');
            conn.send(message);
          },
          error(_conn, error) {
            errors.push(error);
          },
        },
      },
      endpoint: { closeTimeout: 1_000 },
      shutdownTimeout: 1_000,
    });
  });

  after(async () => {
    await server?.close();
  });

  test('fails only its own connection, with 1011; others on the server keep working', async () => {
    const neighbour = await GoodClient.open(server.port);
    await neighbour.assertEchoes();
    const { peer, headLength } = await upgradedPeer(server.port);
    try {
      peer.socket.write(Buffer.concat([frame(0x1, Buffer.from('boom')), frame(0x1, Buffer.from('after boom'))]));
      assert.equal(await peer.closedWithin(CLOSE_WITHIN_MS), true, 'the server did not close TCP');
      assert.equal(peer.gotEnd, true, 'the server reset the connection instead of closing it');
      const frames = parseServerFrames(peer.bytes.subarray(headLength));
      assert.deepEqual(
        frames.map((f) => ({ opcode: f.opcode, code: f.payload.readUInt16BE(0) })),
        [{ opcode: 0x8, code: 1011 }],
        'one close frame with 1011, and nothing echoed after the failure',
      );
      assert.equal(errors.length, 1);
      assert.equal((errors[0] as Error).message, 'boom');
      assert.equal(server.endpoints.get('/echo')!.counters.handlerErrors, 1);
      await neighbour.assertEchoes();
      const another = await GoodClient.open(server.port);
      await another.assertEchoes();
      await another.close();
    } finally {
      peer.destroy();
      await neighbour.close();
    }
  });

  test('a ws client that makes the handler throw sees 1011', async () => {
    const victim = await GoodClient.open(server.port);
    const closed = once(victim.ws, 'close') as Promise<[number, Buffer]>;
    victim.ws.send('boom');
    const [code] = await closed;
    assert.equal(code, 1011);
    const neighbour = await GoodClient.open(server.port);
    await neighbour.assertEchoes();
    await neighbour.close();
  });
});
