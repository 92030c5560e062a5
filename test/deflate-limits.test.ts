// permessage-deflate under hostile input and at scale. Raw TCP clients write their own
// handshake and frames: a compression bomb (64 MiB of zeros in some 64 KiB, whole or in
// fragments) must close with 1009 and end TCP without hurting a well-behaved client on the
// same server; bytes that do not inflate, and RSV1 where RFC 7692 forbids it, must close
// too. Then 10,000 idle connections that negotiated permessage-deflate, each with history
// in its window, against a server in a child process whose memory is measured.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WsClient from 'ws';
import { serve, type RunningServer } from '../src/server/serve.js';
import { echoHandlers } from '../src/server/echo.js';
import {
  FrameParser,
  Op,
  RawFrameReader,
  clientFrame,
  closeCodeOf,
  deflateForWire,
  inflateFromWire,
  rawHandshake,
  type WireFrame,
} from './support/deflate-wire.js';
import { waitFor } from './support/wait.js';

const KiB = 1024;
const MiB = 1024 * 1024;
const OFFER = 'permessage-deflate; client_max_window_bits';

/** A `ws` client that keeps echoing beside the bad ones. */
class GoodClient {
  private counter = 0;
  private constructor(private readonly ws: WsClient) {}

  static async open(port: number): Promise<GoodClient> {
    const ws = new WsClient(`ws://127.0.0.1:${port}/echo`, { perMessageDeflate: { threshold: 0 } });
    await once(ws, 'open');
    assert.equal(ws.extensions, 'permessage-deflate');
    return new GoodClient(ws);
  }

  /** A compressed text and a compressed binary message come back unchanged. */
  async assertEchoes(): Promise<void> {
    assert.equal(this.ws.readyState, WsClient.OPEN, 'the well-behaved client was disconnected');
    const n = ++this.counter;
    const text = `still here ${n} ✓ `.repeat(200);
    const binary = Buffer.alloc(3000, n);
    const got: Array<{ data: Buffer; binary: boolean }> = [];
    const both = new Promise<void>((resolve) => {
      const onMessage = (data: Buffer, isBinary: boolean): void => {
        got.push({ data, binary: isBinary });
        if (got.length === 2) {
          this.ws.off('message', onMessage);
          resolve();
        }
      };
      this.ws.on('message', onMessage);
    });
    this.ws.send(text);
    this.ws.send(binary);
    await both;
    assert.deepEqual({ text: got[0]!.data.toString(), binary: got[0]!.binary }, { text, binary: false });
    assert.ok(got[1]!.binary && got[1]!.data.equals(binary), 'the binary echo differs');
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WsClient.CLOSED) return;
    const closed = once(this.ws, 'close');
    this.ws.close(1000);
    await closed;
  }
}

/** A raw client that negotiated permessage-deflate, with a reader of the server's frames. */
async function rawDeflateClient(port: number): Promise<{ socket: Socket; reader: RawFrameReader }> {
  const hs = await rawHandshake(port, '/echo', OFFER);
  assert.equal(hs.status, 101);
  assert.equal(hs.headers.get('sec-websocket-extensions'), 'permessage-deflate; server_no_context_takeover');
  return { socket: hs.socket, reader: new RawFrameReader(hs.socket, hs.rest) };
}

/** Sends `frames`, then expects a close frame with `code` as the only answer, and the end of TCP. */
async function expectClose(port: number, frames: Buffer[], code: number): Promise<void> {
  const { socket, reader } = await rawDeflateClient(port);
  try {
    for (const frame of frames) socket.write(frame);
    const first = await reader.next();
    assert.ok(first !== null, 'the server ended the connection without a close frame');
    assert.equal(first.opcode, Op.Close, `the server answered with opcode ${first.opcode} instead of a close frame`);
    assert.equal(first.rsv1, false);
    assert.equal(closeCodeOf(first), code);
    // Nothing after the close frame, and the server ends the TCP connection.
    assert.deepEqual(await reader.rest(), []);
  } finally {
    socket.destroy();
  }
}

/** 64 MiB of zeros, deflated: some 64 KiB, far under the 1 MiB limit on the wire. */
const BOMB = deflateForWire(Buffer.alloc(64 * MiB));

describe('compressed input from raw clients: bombs, garbage, misplaced RSV1 (server: perMessageDeflate on, maxPayload 1 MiB)', { timeout: 60_000 }, () => {
  let server: RunningServer;
  let good: GoodClient;

  before(async () => {
    server = await serve({
      port: 0,
      host: '127.0.0.1',
      websocket: { '/echo': echoHandlers },
      endpoint: { perMessageDeflate: true, maxPayload: MiB, heartbeatInterval: 0, closeTimeout: 1_000 },
      shutdownTimeout: 1_000,
    });
    good = await GoodClient.open(server.port);
  });

  after(async () => {
    await good?.close();
    await server?.close();
  });

  test('the bomb is small on the wire', () => {
    assert.ok(BOMB.length < 128 * KiB, `the bomb is ${BOMB.length} B`);
  });

  test('a compression bomb in one frame: close 1009, TCP ends, the other client keeps echoing', async () => {
    await good.assertEchoes();
    await expectClose(server.port, [clientFrame(Op.Binary, BOMB, { rsv1: true })], 1009);
    await good.assertEchoes();
  });

  test('a compression bomb in 16 fragments, RSV1 on the first: close 1009, TCP ends, the other client keeps echoing', async () => {
    await good.assertEchoes();
    const size = Math.ceil(BOMB.length / 16);
    const frames: Buffer[] = [];
    for (let at = 0; at < BOMB.length; at += size) {
      const first = at === 0;
      const last = at + size >= BOMB.length;
      frames.push(clientFrame(first ? Op.Binary : Op.Continuation, BOMB.subarray(at, at + size), { fin: last, rsv1: first }));
    }
    assert.equal(frames.length, 16);
    await expectClose(server.port, frames, 1009);
    await good.assertEchoes();
  });

  test('a text bomb just past the limit: 1 MiB + 1 B of "a" closes with 1009, 1 MiB exactly echoes', async () => {
    await expectClose(server.port, [clientFrame(Op.Text, deflateForWire(Buffer.alloc(MiB + 1, 'a')), { rsv1: true })], 1009);
    const { socket, reader } = await rawDeflateClient(server.port);
    try {
      socket.write(clientFrame(Op.Text, deflateForWire(Buffer.alloc(MiB, 'a')), { rsv1: true }));
      const echo = (await reader.next())!;
      assert.equal(echo.opcode, Op.Text);
      assert.equal(echo.rsv1, true, 'the echo (over the 1 KiB threshold) is compressed');
      assert.equal(echo.payload === null ? -1 : inflateFromWire(echo.payload).equals(Buffer.alloc(MiB, 'a')), true);
    } finally {
      socket.destroy();
    }
  });

  test('bytes that do not inflate: close 1007, and the other client keeps echoing', async () => {
    // A block of the reserved type 3.
    await expectClose(server.port, [clientFrame(Op.Binary, Buffer.from([0xff, 0xff, 0xff, 0xff]), { rsv1: true })], 1007);
    // A stored block whose length and its complement disagree.
    await expectClose(server.port, [clientFrame(Op.Binary, Buffer.from('0005000000', 'hex'), { rsv1: true })], 1007);
    // RFC 7692's second "Hello", which refers back to a first one this connection never sent.
    await expectClose(server.port, [clientFrame(Op.Text, Buffer.from('f200110000', 'hex'), { rsv1: true })], 1007);
    await good.assertEchoes();
  });

  test('compressed text that inflates to invalid UTF-8: close 1007', async () => {
    await expectClose(server.port, [clientFrame(Op.Text, deflateForWire(Buffer.from([0x48, 0xc3, 0x28])), { rsv1: true })], 1007);
  });

  test('RSV1 on a continuation frame or a control frame: close 1002', async () => {
    const hello = deflateForWire(Buffer.from('Hello'));
    await expectClose(
      server.port,
      [clientFrame(Op.Text, hello.subarray(0, 2), { fin: false, rsv1: true }), clientFrame(Op.Continuation, hello.subarray(2), { rsv1: true })],
      1002,
    );
    await expectClose(server.port, [clientFrame(Op.Ping, Buffer.alloc(0), { rsv1: true })], 1002);
  });

  test('RSV1 from a client that did not offer permessage-deflate: close 1002', async () => {
    const hs = await rawHandshake(server.port, '/echo');
    assert.equal(hs.status, 101);
    assert.equal(hs.headers.get('sec-websocket-extensions'), undefined);
    const reader = new RawFrameReader(hs.socket, hs.rest);
    try {
      hs.socket.write(clientFrame(Op.Text, deflateForWire(Buffer.from('Hello')), { rsv1: true }));
      const answer = await reader.rest();
      assert.equal(answer.length, 1);
      assert.equal(closeCodeOf(answer[0]!), 1002);
    } finally {
      hs.socket.destroy();
    }
  });

  test('a ping between the fragments of a compressed message is answered first, and the message inflates', async () => {
    const text = 'fragmented and compressed, '.repeat(100);
    const compressed = deflateForWire(Buffer.from(text));
    const { socket, reader } = await rawDeflateClient(server.port);
    try {
      socket.write(
        Buffer.concat([
          clientFrame(Op.Text, compressed.subarray(0, 10), { fin: false, rsv1: true }),
          clientFrame(Op.Ping, Buffer.from('between')),
          clientFrame(Op.Continuation, compressed.subarray(10)),
        ]),
      );
      const pong = (await reader.next())!;
      assert.deepEqual([pong.opcode, pong.rsv1, pong.payload?.toString()], [Op.Pong, false, 'between']);
      const echo = (await reader.next())!;
      assert.deepEqual([echo.opcode, echo.rsv1, echo.fin], [Op.Text, true, true]);
      assert.equal(inflateFromWire(echo.payload!).toString(), text);
    } finally {
      socket.destroy();
    }
  });

  // maxPayload is "the largest incoming message": 1 MiB of random bytes deflates to a little
  // more than 1 MiB, and must be accepted compressed as it is uncompressed.
  test(
    'a 1 MiB message that does not compress is accepted like its uncompressed form',
    async () => {
      const random = randomBytes(MiB);
      const compressed = deflateForWire(random);
      assert.ok(compressed.length > MiB, `the deflated form is ${compressed.length} B`);
      const { socket, reader } = await rawDeflateClient(server.port);
      try {
        socket.write(clientFrame(Op.Binary, compressed, { rsv1: true }));
        const echo = (await reader.next())!;
        assert.equal(echo.opcode, Op.Binary, `the server answered with opcode ${echo.opcode} (close ${echo.opcode === Op.Close ? closeCodeOf(echo) : '-'})`);
      } finally {
        socket.destroy();
      }
    },
  );
});

// ───────────────────────────── 10,000 idle compressed connections ─────────────────────────────

const CONNECTIONS = 10_000;
const CONCURRENCY = 200;
/**
 * Asserted bound on the server's RSS growth per idle connection. Measured on Node 20, Linux
 * x64: 5.1 to 6.3 KiB (1.8 KiB of it JS heap, 0.8 KiB buffers), against some 300 KiB for a
 * live zlib deflate and inflate pair; the bound leaves a margin of more than 2.5 times.
 */
const BOUND_KIB = 16;
/** File descriptors each process needs: one per connection, plus headroom for Node, tsx and zlib. */
const FDS_NEEDED = CONNECTIONS + 1_000;

function openFileLimit(): number {
  const text = execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  return text === 'unlimited' ? Infinity : Number(text);
}

interface Usage {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  connections: number;
}

/** The server of support/deflate-memory-server.ts, in its own process. */
class MemoryServer {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: Interface,
    private readonly iterator: AsyncIterator<string>,
    readonly port: number,
  ) {}

  static async start(): Promise<MemoryServer> {
    const script = fileURLToPath(new URL('./support/deflate-memory-server.ts', import.meta.url));
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(`[memory server] ${chunk.toString()}`));
    const lines = createInterface({ input: child.stdout });
    const iterator = lines[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done === true) throw new Error('the memory server exited before it listened');
    return new MemoryServer(child, lines, iterator, (JSON.parse(first.value) as { port: number }).port);
  }

  async usage(): Promise<Usage> {
    this.child.stdin.write('rss\n');
    const line = await this.iterator.next();
    if (line.done === true) throw new Error('the memory server exited');
    return JSON.parse(line.value) as Usage;
  }

  /** Asks the server to exit and waits for it; kills it if it does not. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.stdin.end('exit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    this.lines.close();
  }
}

/**
 * One raw connection: handshake offering permessage-deflate, one compressed text message of
 * about 200 B, its echo read and checked. The socket is then left idle, without listeners
 * but one for errors, so the test process stays light.
 */
async function idleCompressedConnection(port: number, i: number): Promise<Socket> {
  const hs = await rawHandshake(port, '/echo', OFFER);
  const socket = hs.socket;
  socket.on('error', () => {});
  assert.equal(hs.status, 101, `connection ${i}: status`);
  assert.match(hs.headers.get('sec-websocket-extensions') ?? '', /^permessage-deflate(;|$)/, `connection ${i}: no permessage-deflate`);
  const text = JSON.stringify({
    op: 'publish',
    channel: `room:${i % 97}`,
    id: i,
    data: { user: `user-${i}`, text: 'hello, is anyone there? the quick brown fox jumps over the lazy dog', at: 1_700_000_000_000 + i },
  });
  const echo = await new Promise<WireFrame>((resolve, reject) => {
    const parser = new FrameParser((frame) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      resolve(frame);
    });
    const onData = (chunk: Buffer): void => parser.push(chunk);
    const onClose = (): void => reject(new Error(`connection ${i} closed before its echo`));
    socket.on('data', onData);
    socket.on('close', onClose);
    if (hs.rest.length > 0) parser.push(hs.rest);
    socket.resume();
    // A 512-byte window and the smallest memLevel: zlib sets up a far smaller context for each
    // of the 10,000 messages (the offer let the client pick any window).
    socket.write(clientFrame(Op.Text, deflateForWire(Buffer.from(text), 9, 1), { rsv1: true }));
  });
  assert.equal(echo.opcode, Op.Text);
  const payload = echo.rsv1 ? inflateFromWire(echo.payload!) : echo.payload!;
  assert.equal(payload.toString(), text, `connection ${i}: the echo differs`);
  return socket;
}

/** Opens `count` connections, `concurrency` at a time. */
async function openMany(port: number, count: number, concurrency: number, sockets: Socket[]): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        sockets.push(await idleCompressedConnection(port, i));
      } catch (error) {
        next = count; // the other workers stop too
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function waitForConnections(server: MemoryServer, count: number): Promise<Usage> {
  // Polls the child's count, not a clock: the sockets' closes reach it in their own time.
  let last: Usage | undefined;
  return waitFor(async () => ((last = await server.usage()).connections === count ? last : undefined), `the server to have ${count} connections`, {
    every: 25,
    state: () => `it has ${last?.connections}`,
  });
}

const kib = (bytes: number): string => `${(bytes / KiB).toFixed(2)} KiB`;

describe('idle connections with permessage-deflate', { timeout: 120_000 }, () => {
  test(`${CONNECTIONS.toLocaleString('en')} idle compressed connections, each with history, cost the server under ${BOUND_KIB} KiB of RSS each`, async (t) => {
    const limit = openFileLimit();
    if (limit < FDS_NEEDED) {
      const message = `ulimit -n is ${limit}; this test needs ${FDS_NEEDED} file descriptors in each of its two processes`;
      process.stderr.write(`\n!!! SKIPPING the ${CONNECTIONS} connections test: ${message}\n\n`);
      t.skip(message);
      return;
    }
    const server = await MemoryServer.start();
    const sockets: Socket[] = [];
    try {
      // Warm up: the code paths, zlib and the allocator, with connections that then close.
      const warm: Socket[] = [];
      await openMany(server.port, 200, CONCURRENCY, warm);
      for (const socket of warm) socket.destroy();
      await waitForConnections(server, 0);
      const before = await server.usage();

      await openMany(server.port, CONNECTIONS, CONCURRENCY, sockets);
      const loaded = await waitForConnections(server, CONNECTIONS);

      const per = (key: keyof Usage): number => (loaded[key] - before[key]) / CONNECTIONS;
      const report =
        `${CONNECTIONS} idle permessage-deflate connections: RSS ${kib(before.rss)} → ${kib(loaded.rss)}, ` +
        `${kib(per('rss'))} per connection (heap ${kib(per('heapUsed'))}, external ${kib(per('external'))}, ` +
        `array buffers ${kib(per('arrayBuffers'))})`;
      t.diagnostic(report);
      assert.ok(per('rss') < BOUND_KIB * KiB, report);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.stop();
    }
  });
});
