// The server's timing logic, on an in-memory socket with mocked timers: the sweep's
// message timeout (and its heartbeat cadence beside it), and the pauses the inflate budget
// imposes. Real sockets and real time are the attack tests' part (test/attack-*.test.ts).
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { Session } from 'node:inspector/promises';
import { Duplex } from 'node:stream';
import { constants as zlib, deflateRawSync } from 'node:zlib';
import { encodeFrame } from '../protocol/frame-encoder.js';
import type { HttpRequestHead } from '../protocol/http-head.js';
import { Opcode } from '../protocol/opcode.js';
import type { WebSocketConnection } from './connection.js';
import { FramePump } from './frame-pump.js';
import { InflateBudget } from './inflate-budget.js';
import { WebSocketServer, type WebSocketServerOptions } from './server.js';

/** A socket in memory: what the server writes is kept; `write` may be held to fake a peer that does not read. */
class MemorySocket extends Duplex {
  readonly written: Buffer[] = [];
  hold = false;
  private held: Array<() => void> = [];

  /** By default any unwritten byte is backpressure, so that 'drain' follows a release as on a full socket. */
  constructor(writableHighWaterMark = 1) {
    super({ writableHighWaterMark });
  }

  setNoDelay(): this {
    return this;
  }

  setTimeout(): this {
    return this;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.written.push(chunk);
    if (this.hold) this.held.push(done);
    else done();
  }

  /** The peer reads again: held writes complete, and 'drain' follows. With `keepHolding`, later writes are held in turn. */
  release(keepHolding = false): void {
    this.hold = keepHolding;
    for (const done of this.held.splice(0)) done();
  }

  /** Everything written after the 101 response. */
  frames(): Buffer {
    const all = Buffer.concat(this.written);
    return all.subarray(all.indexOf('\r\n\r\n') + 4);
  }

  /** The close frame's code and reason among what was written, or null. */
  closeFrame(): { code: number; reason: string } | null {
    const bytes = this.frames();
    for (let at = 0; at + 2 <= bytes.length; ) {
      const length = bytes[at + 1]! & 0x7f;
      if ((bytes[at]! & 0x0f) === Opcode.Close) {
        return { code: bytes.readUInt16BE(at + 2), reason: bytes.subarray(at + 4, at + 2 + length).toString() };
      }
      at += 2 + length;
    }
    return null;
  }
}

function requestHead(extensions?: string): HttpRequestHead {
  const fields: Array<[string, string]> = [
    ['Host', 'localhost'],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
    ['Sec-WebSocket-Version', '13'],
  ];
  if (extensions !== undefined) fields.push(['Sec-WebSocket-Extensions', extensions]);
  return { method: 'GET', target: '/', version: '1.1', headers: new Map(fields.map(([k, v]) => [k.toLowerCase(), v])), rawHeaders: fields };
}

const frame = (opcode: number, payload: string | Buffer, fin = true, rsv1 = false): Buffer =>
  Buffer.concat(encodeFrame(opcode, typeof payload === 'string' ? Buffer.from(payload) : payload, { fin, rsv1, mask: true }));

/** Lets the socket deliver what was pushed (its 'data' events come on the next tick). */
const delivered = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function connect<T>(
  server: WebSocketServer<T>,
  extensions?: string,
  socket = new MemorySocket(),
): Promise<{ socket: MemorySocket; conn: WebSocketConnection<T> }> {
  const conn = await server.acceptHead(requestHead(extensions), socket, Buffer.alloc(0), { headers: {}, socket: {} });
  assert.ok(conn !== null);
  return { socket, conn };
}

function setup(t: TestContext, options: Omit<WebSocketServerOptions<undefined>, 'handlers'>, messages: string[] = []): WebSocketServer<undefined> {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout', 'Date'], now: 1_000_000 });
  const server = new WebSocketServer<undefined>({ ...options, handlers: { message: (_conn, m) => messages.push(String(m)) } });
  t.after(() => server.stop());
  return server;
}

describe('messageTimeout', () => {
  test('a frame dribbled a byte at a time is failed with 1008 at the first sweep past the timeout, and counted', async (t) => {
    // Sweeps every 500 ms (half the timeout); no heartbeat, no idle timeout.
    const server = setup(t, { messageTimeout: 1_000, heartbeatInterval: 0, idleTimeout: 0 });
    const { socket, conn } = await connect(server);
    const bytes = frame(Opcode.Text, 'a'.repeat(20));
    for (let i = 0; i < 3; i++) {
      socket.push(bytes.subarray(i, i + 1));
      await delivered();
      t.mock.timers.tick(300);
    }
    // 900 ms since the first byte: the sweeps at 500 and 1000 (ms from the start) found it younger than 1 s.
    assert.equal(socket.closeFrame(), null);
    assert.equal(conn.partialSince, 1_000_000);
    t.mock.timers.tick(600); // the sweep at 1500
    assert.deepEqual(socket.closeFrame(), { code: 1008, reason: 'frame or message not completed within 1000 ms' });
    assert.equal(socket.writableEnded, true, 'TCP is closed without waiting for the peer');
    assert.equal(server.counters.messageTimeouts, 1);
  });

  test('the clock is per message: messages back to back, each read ending inside the next, are never timed out', async (t) => {
    const messages: string[] = [];
    const server = setup(t, { messageTimeout: 1_000, heartbeatInterval: 0, idleTimeout: 0 }, messages);
    const { socket, conn } = await connect(server);
    const stream = Buffer.concat(Array.from({ length: 8 }, (_, i) => frame(Opcode.Text, `message ${i}`)));
    // Every 700 ms a read that ends inside a message: ~5 s in all, each message under 1 s.
    const step = Math.ceil(stream.length / 8);
    for (let at = 0; at < stream.length; at += step) {
      socket.push(stream.subarray(at, at + step));
      await delivered();
      assert.ok(conn.partialSince === 0 || Date.now() - conn.partialSince < 1_000);
      t.mock.timers.tick(700);
    }
    assert.equal(messages.length, 8);
    assert.equal(socket.closeFrame(), null);
    assert.equal(server.counters.messageTimeouts, 0);
  });

  test('a fragmented message is timed from its first frame, however many whole frames follow', async (t) => {
    const server = setup(t, { messageTimeout: 1_000, heartbeatInterval: 0, idleTimeout: 0 });
    const { socket } = await connect(server);
    socket.push(frame(Opcode.Text, 'a', false));
    for (let i = 0; i < 4; i++) {
      await delivered();
      t.mock.timers.tick(300);
      socket.push(frame(Opcode.Continuation, 'b', false));
    }
    await delivered();
    assert.equal(socket.closeFrame()?.code, 1008);
  });

  test('time this side spends not reading (backpressure) does not count against the peer', async (t) => {
    const server = setup(t, { messageTimeout: 1_000, heartbeatInterval: 0, idleTimeout: 0, backpressureLimit: 0 });
    const { socket, conn } = await connect(server);
    socket.hold = true;
    // A ping (its pong stays unwritten: reading pauses) and the start of a frame.
    socket.push(Buffer.concat([frame(Opcode.Ping, 'p'), frame(Opcode.Text, 'abc').subarray(0, 3)]));
    await delivered();
    assert.equal(conn.readingPaused, true);
    t.mock.timers.tick(5_000);
    assert.equal(socket.closeFrame(), null, 'not timed out while this side did not read');
    socket.release();
    await delivered();
    assert.equal(conn.readingPaused, false);
    t.mock.timers.tick(500);
    assert.equal(socket.closeFrame(), null, 'the peer has had 500 ms of its 1,000');
    t.mock.timers.tick(500);
    assert.equal(socket.closeFrame()?.code, 1008);
  });

  test('0 turns it off; the heartbeat keeps its own interval when the sweep runs more often', async (t) => {
    const off = setup(t, { messageTimeout: 0, heartbeatInterval: 0, idleTimeout: 0 });
    const quiet = await connect(off);
    quiet.socket.push(Buffer.from([0x81]));
    await delivered();
    t.mock.timers.tick(60_000);
    assert.equal(quiet.socket.closeFrame(), null);

    // Sweeps every 250 ms for messages; pings every 1000 ms.
    const server = new WebSocketServer<undefined>({ handlers: { message() {} }, messageTimeout: 500, heartbeatInterval: 1_000, idleTimeout: 0 });
    t.after(() => server.stop());
    const { socket } = await connect(server);
    /** Pings written once `ms` more have passed. */
    const pingsAfter = async (ms: number): Promise<number> => {
      t.mock.timers.tick(ms);
      await delivered();
      return [...socket.frames()].filter((b, i, all) => b === 0x89 && all[i + 1] === 0).length;
    };
    assert.equal(await pingsAfter(750), 0);
    assert.equal(await pingsAfter(250), 1);
    socket.push(frame(Opcode.Pong, ''));
    await delivered();
    assert.equal(await pingsAfter(750), 1);
    assert.equal(await pingsAfter(250), 2);
  });

  test('options are checked', () => {
    assert.throws(() => new WebSocketServer({ handlers: { message() {} }, messageTimeout: -1 }), RangeError);
    assert.throws(() => new WebSocketServer({ handlers: { message() {} }, inflateRate: Number.NaN }), RangeError);
  });
});

describe('inflateRate', () => {
  const compressed = (text: string): Buffer => {
    const deflated = deflateRawSync(Buffer.from(text), { finishFlush: zlib.Z_SYNC_FLUSH });
    return frame(Opcode.Text, deflated.subarray(0, deflated.length - 4), true, true);
  };

  test('InflateBudget: a burst, then the rate; an overdraft is paid back by waiting', () => {
    const budget = new InflateBudget(1_000, 4_000, 0);
    budget.spend(3_000, 0);
    assert.equal(budget.takePause(), 0);
    budget.spend(3_000, 0);
    assert.equal(budget.takePause(), 2_000, '2,000 bytes owed at 1,000/s');
    assert.equal(budget.takePause(), 0, 'told once');
    budget.spend(1_000, 2_000);
    assert.equal(budget.takePause(), 1_000);
    budget.spend(0, 1_000_000);
    budget.spend(4_000, 1_000_000);
    assert.equal(budget.takePause(), 0, 'refilled to the burst, no more');
  });

  test('past the budget, reading pauses after the message and resumes when it refills: nothing lost, in order', async (t) => {
    const messages: string[] = [];
    // 1,000 bytes/s; burst: maxPayload (4,000), more than a second's worth.
    const server = setup(t, { perMessageDeflate: true, inflateRate: 1_000, maxPayload: 4_000, heartbeatInterval: 0, messageTimeout: 0 }, messages);
    const { socket, conn } = await connect(server, 'permessage-deflate');
    const texts = ['a', 'b', 'c', 'd'].map((c) => c.repeat(3_000));
    socket.push(Buffer.concat(texts.map(compressed)));
    await delivered();
    // 3,000 of 4,000, then 3,000 more: 2,000 owed, 2 s.
    assert.deepEqual(messages.map((m) => m[0]), ['a', 'b']);
    assert.equal(conn.readingPaused, true);
    assert.equal(server.counters.inflatePauses, 1);
    socket.push(frame(Opcode.Text, 'e'.repeat(10))); // uncompressed: not counted
    await delivered();
    t.mock.timers.tick(1_999);
    assert.equal(messages.length, 2);
    t.mock.timers.tick(1);
    // Refilled to 0: 'c' is read and owes 3 s; what came after waits.
    assert.deepEqual(messages.map((m) => m[0]), ['a', 'b', 'c']);
    assert.equal(server.counters.inflatePauses, 2);
    t.mock.timers.tick(3_000);
    assert.deepEqual(messages.map((m) => m[0]), ['a', 'b', 'c', 'd']);
    t.mock.timers.tick(3_000);
    await delivered();
    assert.deepEqual(messages.map((m) => m[0]), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(messages.slice(0, 4), texts);
    assert.equal(conn.readingPaused, false);
    assert.equal(socket.closeFrame(), null);
  });

  test('0 is no limit; uncompressed messages are not counted', async (t) => {
    const messages: string[] = [];
    const server = setup(t, { perMessageDeflate: true, inflateRate: 0, maxPayload: 4_000, heartbeatInterval: 0, messageTimeout: 0 }, messages);
    const { socket } = await connect(server, 'permessage-deflate');
    socket.push(Buffer.concat(Array.from({ length: 10 }, () => compressed('x'.repeat(4_000)))));
    await delivered();
    assert.equal(messages.length, 10);

    const limited: string[] = [];
    const other = new WebSocketServer<undefined>({ perMessageDeflate: true, inflateRate: 1_000, maxPayload: 4_000, heartbeatInterval: 0, messageTimeout: 0, handlers: { message: (_c, m) => limited.push(String(m)) } });
    const plain = await connect(other, 'permessage-deflate');
    plain.socket.push(Buffer.concat(Array.from({ length: 10 }, () => frame(Opcode.Text, 'y'.repeat(4_000)))));
    await delivered();
    assert.equal(limited.length, 10);
    assert.equal(other.counters.inflatePauses, 0);
  });

  test('a connection closed while paused leaves no timer behind', async (t) => {
    const server = setup(t, { perMessageDeflate: true, inflateRate: 1_000, maxPayload: 4_000, heartbeatInterval: 0, messageTimeout: 0 });
    const { socket, conn } = await connect(server, 'permessage-deflate');
    socket.push(Buffer.concat([compressed('a'.repeat(4_000)), compressed('b'.repeat(4_000))]));
    await delivered();
    assert.equal(conn.readingPaused, true);
    socket.destroy();
    await delivered();
    assert.equal(server.connections.size, 0);
    t.mock.timers.tick(10_000); // the refill timer, had it been left, would resume a closed connection
    assert.equal(conn.readyState, 3);
  });
});

describe('read backpressure', () => {
  /**
   * A connection with a limit of 100 bytes on a socket with Node's default high-water mark
   * (writes under 16 KiB never return false, so never earn a 'drain'), whose peer does not
   * read: a ping's pong of 122 bytes waits in the socket, and reading pauses.
   */
  async function pausedByAPong(t: TestContext, messages: string[] = []): Promise<{ socket: MemorySocket; conn: WebSocketConnection<undefined> }> {
    const server = setup(t, { backpressureLimit: 100, heartbeatInterval: 0, messageTimeout: 0 }, messages);
    const { socket, conn } = await connect(server, undefined, new MemorySocket(16 * 1024));
    socket.hold = true;
    socket.push(frame(Opcode.Ping, 'x'.repeat(120)));
    await delivered();
    assert.equal(conn.bufferedAmount, 122, 'the pong waits in the socket');
    assert.equal(conn.readingPaused, true);
    return { socket, conn };
  }

  test("under the socket's high-water mark no 'drain' comes: reading resumes when the held bytes are written", async (t) => {
    const messages: string[] = [];
    const { socket, conn } = await pausedByAPong(t, messages);
    socket.push(frame(Opcode.Text, 'after'));
    await delivered();
    assert.deepEqual(messages, [], 'nothing is read while paused');
    socket.release();
    await delivered();
    assert.equal(conn.bufferedAmount, 0);
    assert.equal(conn.readingPaused, false);
    await delivered();
    assert.deepEqual(messages, ['after']);
  });

  test('bytes still over the limit when the held ones are written keep reading paused, until they are written too', async (t) => {
    const { socket, conn } = await pausedByAPong(t);
    // Sent while paused: it goes out behind the pong.
    conn.send('y'.repeat(200), { force: true });
    await delivered();
    // The pong is written, then all that was before the send: the send itself is not.
    socket.release(true);
    await delivered();
    socket.release(true);
    await delivered();
    assert.equal(conn.bufferedAmount, 204, 'the send is still held');
    assert.equal(conn.readingPaused, true);
    socket.release();
    await delivered();
    assert.equal(conn.bufferedAmount, 0);
    assert.equal(conn.readingPaused, false);
  });

  test('pause() holds reading after backpressure ends, and resume() after it reads again', async (t) => {
    const messages: string[] = [];
    const { socket, conn } = await pausedByAPong(t, messages);
    conn.pause();
    socket.push(frame(Opcode.Text, 'later'));
    socket.release();
    await delivered();
    assert.equal(conn.isPaused, true);
    assert.equal(conn.readingPaused, true, 'still paused by the application');
    assert.deepEqual(messages, []);
    conn.resume();
    await delivered();
    assert.equal(conn.readingPaused, false);
    assert.deepEqual(messages, ['later']);
  });
});

describe('what an idle connection keeps', () => {
  /**
   * Live frame pumps of these sockets, found by the inspector (which collects garbage
   * first). Other tests of this file run beside this one, with pumps of their own.
   */
  async function livePumps(sockets: readonly MemorySocket[]): Promise<number> {
    const session = new Session();
    session.connect();
    const probe = globalThis as { __hotlinePumpProbe?: { prototype: object; sockets: ReadonlySet<object> } };
    probe.__hotlinePumpProbe = { prototype: FramePump.prototype, sockets: new Set(sockets) };
    try {
      const { result } = await session.post('Runtime.evaluate', { expression: 'globalThis.__hotlinePumpProbe.prototype' });
      const { objects } = await session.post('Runtime.queryObjects', { prototypeObjectId: result.objectId! });
      const counted = await session.post('Runtime.callFunctionOn', {
        objectId: objects.objectId!,
        functionDeclaration: 'function () { return this.filter((pump) => globalThis.__hotlinePumpProbe.sockets.has(pump.socket)).length; }',
        returnByValue: true,
      });
      return counted.result.value as number;
    } finally {
      delete probe.__hotlinePumpProbe;
      session.disconnect();
    }
  }

  test('no frame pump once the sweep found it with nothing to write; the heartbeat pings and its pongs make none', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'setTimeout', 'Date'], now: 1_000_000 });
    const server = new WebSocketServer<undefined>({ handlers: { message: (conn, m) => conn.send(m) }, heartbeatInterval: 1_000, idleTimeout: 0, messageTimeout: 0 });
    t.after(() => server.stop());
    const connections = await Promise.all(Array.from({ length: 20 }, () => connect(server)));
    for (const { socket } of connections) socket.push(frame(Opcode.Text, 'echo me'));
    await delivered();
    const sockets = connections.map(({ socket }) => socket);
    assert.equal(await livePumps(sockets), 20, 'each echo made a pump');
    for (let ping = 1; ping <= 2; ping++) {
      t.mock.timers.tick(1_000);
      await delivered();
      for (const { socket } of connections) {
        assert.equal([...socket.frames()].filter((b, i, all) => b === 0x89 && all[i + 1] === 0).length, ping, 'the heartbeat pinged');
        socket.push(frame(Opcode.Pong, ''));
      }
      await delivered();
      assert.equal(await livePumps(sockets), 0, `after ping ${ping} and its pong`);
    }
    // An echo still goes out, with a pump made for it.
    connections[0]!.socket.push(frame(Opcode.Text, 'again'));
    await delivered();
    assert.ok(connections[0]!.socket.frames().includes(Buffer.from('again')));
    assert.equal(connections[0]!.conn.readyState, 1);
  });
});
