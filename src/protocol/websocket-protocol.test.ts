import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { encodeFrame } from './frame-encoder.js';
import { InvalidStateError, ProtocolError, type ProtocolErrorCode } from './errors.js';
import { Opcode, type Role } from './opcode.js';
import {
  ProtocolState,
  WebSocketProtocol,
  type ProtocolHandler,
  type ProtocolOptions,
} from './websocket-protocol.js';
import { recordControl, type ControlEvent } from '../../test/support/protocol-events.js';

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

type Event = { type: 'message'; binary: boolean; data: string } | ControlEvent;

const text = (data: string): Event => ({ type: 'message', binary: false, data });
const binary = (bytes: Uint8Array): Event => ({ type: 'message', binary: true, data: Buffer.from(bytes).toString('hex') });
const ping = (payload: string): Event => ({ type: 'ping', hex: Buffer.from(payload).toString('hex') });
const pong = (payload: string): Event => ({ type: 'pong', hex: Buffer.from(payload).toString('hex') });
const closed = (code: number, reason = ''): Event => ({ type: 'close', code, reason });
const protocolError = (code: ProtocolErrorCode, closeCode: number): Event => ({ type: 'error', code, closeCode });

class Peer {
  readonly events: Event[] = [];
  readonly proto: WebSocketProtocol;
  constructor(role: Role, options: Partial<ProtocolOptions> = {}, overrides: Partial<ProtocolHandler> = {}) {
    const handler: ProtocolHandler = {
      onMessage: (data, isBinary) =>
        this.events.push({ type: 'message', binary: isBinary, data: isBinary ? data.toString('hex') : data.toString('utf8') }),
      ...recordControl(this.events),
      ...overrides,
    };
    this.proto = new WebSocketProtocol(handler, { role, ...options });
  }
  /** Takes the queued bytes as one buffer. */
  take(): Buffer {
    return Buffer.concat(this.proto.takeOutgoing());
  }
  /** Feeds a private copy (the protocol unmasks in place). */
  feed(bytes: Uint8Array): void {
    this.proto.receiveData(Buffer.from(bytes));
  }
}

function pair(serverOptions: Partial<ProtocolOptions> = {}, clientOptions: Partial<ProtocolOptions> = {}): { server: Peer; client: Peer } {
  return { server: new Peer('server', serverOptions), client: new Peer('client', clientOptions) };
}

/** Moves everything queued by `from` into `to`; returns the bytes moved. */
function pump(from: Peer, to: Peer): Buffer {
  const bytes = from.take();
  to.feed(bytes);
  return bytes;
}

interface WireFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** An independent parser for what a protocol queued. */
function parseFrames(bytes: Buffer): WireFrame[] {
  const frames: WireFrame[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const b0 = bytes[pos]!;
    const b1 = bytes[pos + 1]!;
    let length = b1 & 0x7f;
    pos += 2;
    if (length === 126) {
      length = bytes.readUInt16BE(pos);
      pos += 2;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(pos));
      pos += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let key: Buffer | null = null;
    if (masked) {
      key = bytes.subarray(pos, pos + 4);
      pos += 4;
    }
    assert.ok(pos + length <= bytes.length, 'truncated frame in the outgoing bytes');
    const payload = Buffer.from(bytes.subarray(pos, pos + length));
    if (key) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i % 4]!;
    pos += length;
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, masked, payload });
  }
  return frames;
}

/** The frames a peer queued, checking the masking its role requires. */
function outgoingFrames(peer: Peer): WireFrame[] {
  const frames = parseFrames(peer.take());
  for (const f of frames) assert.equal(f.masked, peer.proto.role === 'client', 'client frames masked, server frames not');
  return frames;
}

function closeFrame(code: number | null, reason = ''): { opcode: number; payload: string } {
  if (code === null) return { opcode: Opcode.Close, payload: '' };
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return { opcode: Opcode.Close, payload: Buffer.concat([b, Buffer.from(reason)]).toString('hex') };
}

const summary = (frames: WireFrame[]): Array<{ opcode: number; payload: string }> =>
  frames.map((f) => ({ opcode: f.opcode, payload: f.payload.toString('hex') }));

const KEY = Buffer.from('37fa213d', 'hex');
/** A masked frame, as a client would send it to the server. */
const masked = (opcode: number, payload: Uint8Array | string, fin = true): Buffer =>
  Buffer.concat(encodeFrame(opcode, typeof payload === 'string' ? Buffer.from(payload) : payload, { fin, mask: KEY }));
/** An unmasked frame, as a server would send it to the client. */
const plain = (opcode: number, payload: Uint8Array | string, fin = true): Buffer =>
  Buffer.concat(encodeFrame(opcode, typeof payload === 'string' ? Buffer.from(payload) : payload, { fin }));

function closePayload(code: number, reason: Uint8Array | string = ''): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, typeof reason === 'string' ? Buffer.from(reason) : reason]);
}

/** Moves what `from` queued to `to`, asserting that it is exactly one close frame with `code` and `reason`. */
function passClose(from: Peer, to: Peer, code: number, reason = ''): void {
  const bytes = from.take();
  assert.deepEqual(summary(parseFrames(bytes)), [closeFrame(code, reason)]);
  to.feed(bytes);
}

/** Asserts where `peer` is in the closing handshake, and whether it should close the transport now. */
function assertPhase(peer: Peer, state: ProtocolState, closeTransport: boolean): void {
  assert.equal(peer.proto.state, state);
  assert.equal(peer.proto.shouldCloseTransport, closeTransport);
}

/** The peer's failure, read through a function so that earlier null checks do not narrow it. */
const failureOf = (peer: Peer): ProtocolError | null => peer.proto.failure;

/** Asserts that `peer` failed with `code`/`closeCode` and queued exactly one close frame with it. */
function assertFailed(peer: Peer, code: ProtocolErrorCode, closeCode: number): void {
  assert.ok(peer.proto.failure instanceof ProtocolError, 'failure is set');
  assert.equal(peer.proto.failure.code, code);
  assert.equal(peer.proto.failure.closeCode, closeCode);
  const frames = outgoingFrames(peer);
  assert.equal(frames.length, 1, 'exactly one frame queued');
  assert.equal(frames[0]!.opcode, Opcode.Close);
  assert.equal(frames[0]!.payload.readUInt16BE(0), closeCode);
  assert.ok(frames[0]!.payload.length <= 125);
  assertPhase(peer, ProtocolState.Closed, true);
  assert.equal(peer.proto.canSend, false);
  assert.throws(() => peer.proto.send('x'), InvalidStateError);
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

describe('WebSocketProtocol: messages between a client and a server', () => {
  test('text messages both ways, including non-ASCII', () => {
    const { server, client } = pair();
    client.proto.send('Hello, server');
    client.proto.send('héllo wörld 😀 ✓');
    pump(client, server);
    assert.deepEqual(server.events, [text('Hello, server'), text('héllo wörld 😀 ✓')]);
    server.proto.send('Hello, client');
    const frames = parseFrames(Buffer.concat(server.proto.takeOutgoing()));
    assert.deepEqual(summary(frames), [{ opcode: Opcode.Text, payload: Buffer.from('Hello, client').toString('hex') }]);
    server.proto.send('again');
    pump(server, client);
    assert.deepEqual(client.events, [text('again')]);
  });

  test('binary messages: Uint8Array, Buffer and strings with binary: true', () => {
    const { server, client } = pair();
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
    client.proto.send(bytes);
    client.proto.send(Buffer.from([0, 1, 2]));
    client.proto.send('as bytes', { binary: true });
    client.proto.send(new Uint8Array(bytes.buffer, 10, 20));
    pump(client, server);
    assert.deepEqual(server.events, [
      binary(bytes),
      binary(Buffer.from([0, 1, 2])),
      binary(Buffer.from('as bytes')),
      binary(bytes.subarray(10, 30)),
    ]);
    assert.deepEqual(bytes, Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff), 'the sent payload is untouched');
    server.proto.send(bytes);
    pump(server, client);
    assert.deepEqual(client.events, [binary(bytes)]);
  });

  test('empty text and empty binary messages', () => {
    const { server, client } = pair();
    client.proto.send('');
    client.proto.send(new Uint8Array(0));
    const frames = parseFrames(client.take());
    assert.deepEqual(summary(frames), [
      { opcode: Opcode.Text, payload: '' },
      { opcode: Opcode.Binary, payload: '' },
    ]);
    client.proto.send('');
    client.proto.send(new Uint8Array(0));
    pump(client, server);
    assert.deepEqual(server.events, [text(''), binary(new Uint8Array(0))]);
  });

  test('fragmentSize splits a binary message into frames of at most that size', () => {
    const { server, client } = pair();
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
    client.proto.send(bytes, { fragmentSize: 300 });
    const out = client.take();
    const frames = parseFrames(out);
    assert.deepEqual(
      frames.map((f) => [f.opcode, f.fin, f.payload.length]),
      [
        [Opcode.Binary, false, 300],
        [Opcode.Continuation, false, 300],
        [Opcode.Continuation, false, 300],
        [Opcode.Continuation, true, 100],
      ],
    );
    server.feed(out);
    assert.deepEqual(server.events, [binary(bytes)]);
    // An exact multiple: no empty trailing frame.
    client.proto.send(bytes, { fragmentSize: 100 });
    const exact = parseFrames(client.take());
    assert.equal(exact.length, 10);
    assert.deepEqual(exact.map((f) => f.fin), [...Array<boolean>(9).fill(false), true]);
    // Not larger than one fragment: a single frame.
    client.proto.send(bytes, { fragmentSize: 1000 });
    assert.deepEqual(parseFrames(client.take()).map((f) => [f.opcode, f.fin, f.payload.length]), [[Opcode.Binary, true, 1000]]);
  });

  test('fragmentSize splits text at byte boundaries, cutting characters, and the message still decodes', () => {
    const { server, client } = pair();
    const message = 'aé€😀'.repeat(20);
    client.proto.send(message, { fragmentSize: 7 });
    const out = client.take();
    const frames = parseFrames(out);
    const length = Buffer.byteLength(message);
    assert.equal(frames.length, Math.ceil(length / 7));
    assert.equal(frames[0]!.opcode, Opcode.Text);
    assert.ok(frames.slice(1).every((f) => f.opcode === Opcode.Continuation));
    assert.ok(frames.slice(0, -1).every((f) => !f.fin && f.payload.length === 7));
    assert.equal(frames.at(-1)!.fin, true);
    assert.equal(Buffer.concat(frames.map((f) => f.payload)).toString(), message);
    server.feed(out);
    assert.deepEqual(server.events, [text(message)]);
    // Short text (3 bytes per unit at most fits): one frame.
    client.proto.send('abc', { fragmentSize: 9 });
    assert.equal(parseFrames(client.take()).length, 1);
  });

  test('a streamed message (fin: false, then continuations) with pings in between', () => {
    const { server, client } = pair();
    client.proto.send('Hel', { fin: false });
    client.proto.ping('mid');
    client.proto.send('l', { fin: false });
    client.proto.send(Buffer.from('o'), { fin: false }); // bytes continue a text message
    client.proto.send(' wörld', { fin: true });
    client.proto.send(Buffer.from([1, 2]), { fin: false });
    client.proto.send(Buffer.from([3]), { fin: false, fragmentSize: 1 });
    client.proto.send(Buffer.from([4, 5, 6]), { fragmentSize: 2 });
    const out = client.take();
    assert.deepEqual(
      parseFrames(out).map((f) => [f.opcode, f.fin]),
      [
        [Opcode.Text, false],
        [Opcode.Ping, true],
        [Opcode.Continuation, false],
        [Opcode.Continuation, false],
        [Opcode.Continuation, true],
        [Opcode.Binary, false],
        [Opcode.Continuation, false],
        [Opcode.Continuation, false],
        [Opcode.Continuation, true],
      ],
    );
    server.feed(out);
    assert.deepEqual(server.events, [ping('mid'), text('Hello wörld'), binary(Uint8Array.of(1, 2, 3, 4, 5, 6))]);
    pump(server, client);
    assert.deepEqual(client.events, [pong('mid')]);
  });

  test('compact() between any two bytes loses nothing: fragmented text split mid-character, binary, a ping inside', () => {
    const { server, client } = pair();
    client.proto.send('Grüße, ', { fin: false, fragmentSize: 3 });
    client.proto.ping('mid');
    client.proto.send('wörld', { fin: true, fragmentSize: 2 });
    client.proto.send(Buffer.from([1, 2, 3, 4, 5]), { fragmentSize: 2 });
    client.proto.send('again');
    const out = client.take();
    for (const byte of out) {
      server.proto.compact();
      server.feed(Uint8Array.of(byte));
    }
    server.proto.compact();
    assert.deepEqual(server.events, [ping('mid'), text('Grüße, wörld'), binary(Uint8Array.of(1, 2, 3, 4, 5)), text('again')]);
  });

  test('compact() keeps a text message in progress checked as UTF-8: invalid bytes after it still fail with 1007', () => {
    const { server } = pair();
    // A masked text frame with fin unset, ending in the first byte of a two-byte character.
    server.feed(masked(Opcode.Text, Uint8Array.of(0x61, 0xc3), false));
    server.proto.compact();
    // The continuation does not finish the character (0x41 is not a continuation byte).
    server.feed(masked(Opcode.Continuation, Uint8Array.of(0x41)));
    assert.deepEqual(server.events, [protocolError('INVALID_UTF8', 1007)]);
  });

  test('a 16 MiB message in 64-byte fragments, with maxPayload raised, decodes exactly', () => {
    const size = 16 * 1024 * 1024;
    const client = new Peer('client');
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i += 4) bytes[i] = (i >>> 2) & 0xff;
    bytes[size - 1] = 0xee;
    let received: Buffer | null = null;
    const receiver = new WebSocketProtocol(
      { onMessage: (data) => (received = data) },
      { role: 'server', maxPayload: 32 * 1024 * 1024 },
    );
    client.proto.send(bytes, { fragmentSize: 64 });
    const chunks = client.proto.takeOutgoing();
    assert.equal(chunks.length, size / 64);
    const stream = Buffer.concat(chunks);
    assert.equal(stream.length, (size / 64) * (6 + 64));
    for (let at = 0; at < stream.length; at += 1_000_003) receiver.receiveData(stream.subarray(at, at + 1_000_003));
    assert.ok(received !== null);
    const message: Buffer = received;
    assert.equal(message.length, size);
    assert.ok(message.equals(bytes));
    assert.equal(receiver.failure, null);
    assert.equal(receiver.bufferedAmount, 0);
  });

  test('the default 1 MiB limit fails a fragmented message with 1009 at the fragment that crosses it', () => {
    const { server, client } = pair();
    client.proto.send(new Uint8Array(1024 * 1024 + 64), { fragmentSize: 64 });
    const stream = client.take();
    const frameLength = 6 + 64;
    const limitFrames = (1024 * 1024) / 64;
    server.feed(stream.subarray(0, limitFrames * frameLength));
    assert.equal(server.proto.failure, null);
    assert.equal(server.proto.bufferedAmount, 0);
    server.feed(stream.subarray(limitFrames * frameLength, limitFrames * frameLength + 2)); // just the header
    assertFailed(server, 'MESSAGE_TOO_BIG', 1009);
    assert.deepEqual(server.events, [protocolError('MESSAGE_TOO_BIG', 1009)]);
  });

  test('bufferedAmount counts queued bytes until takeOutgoing', () => {
    const { client } = pair();
    assert.equal(client.proto.bufferedAmount, 0);
    client.proto.send('abc'); // 2 + 4 + 3
    client.proto.ping(); // 2 + 4
    assert.equal(client.proto.bufferedAmount, 15);
    const chunks = client.proto.takeOutgoing();
    assert.equal(chunks.reduce((n, c) => n + c.length, 0), 15);
    assert.equal(client.proto.bufferedAmount, 0);
    assert.deepEqual(client.proto.takeOutgoing(), []);
  });
});

// ---------------------------------------------------------------------------------------
// Ping / pong
// ---------------------------------------------------------------------------------------

describe('WebSocketProtocol: ping and pong', () => {
  test('a ping is answered with a pong carrying the same payload, queued before onPing runs', () => {
    let queuedDuringPing = -1;
    const { server, client } = pair();
    const handlerServer = new WebSocketProtocol(
      {
        onMessage: () => {},
        onPing: () => (queuedDuringPing = handlerServer.bufferedAmount),
      },
      { role: 'server' },
    );
    client.proto.ping('abc');
    const bytes = client.take();
    server.feed(bytes);
    handlerServer.receiveData(Buffer.from(bytes));
    assert.equal(queuedDuringPing, 2 + 3);
    assert.deepEqual(server.events, [ping('abc')]);
    assert.deepEqual(summary(outgoingFrames(server)), [{ opcode: Opcode.Pong, payload: Buffer.from('abc').toString('hex') }]);
    // The other way, with a 125-byte payload and an empty one.
    const big = 'p'.repeat(125);
    server.proto.ping(big);
    server.proto.ping();
    pump(server, client);
    assert.deepEqual(client.events, [ping(big), ping('')]);
    assert.deepEqual(summary(outgoingFrames(client)), [
      { opcode: Opcode.Pong, payload: Buffer.from(big).toString('hex') },
      { opcode: Opcode.Pong, payload: '' },
    ]);
  });

  test('autoPong: false reports the ping and queues nothing; pong() sends one by hand', () => {
    const { server, client } = pair({ autoPong: false });
    client.proto.ping('x');
    pump(client, server);
    assert.deepEqual(server.events, [ping('x')]);
    assert.equal(server.proto.bufferedAmount, 0);
    server.proto.pong('y');
    pump(server, client);
    assert.deepEqual(client.events, [pong('y')]);
  });

  test('an unsolicited pong is reported and not answered', () => {
    const { server, client } = pair();
    client.proto.pong('hb');
    pump(client, server);
    assert.deepEqual(server.events, [pong('hb')]);
    assert.equal(server.proto.bufferedAmount, 0);
  });

  test('control payloads over 125 bytes are refused with a RangeError', () => {
    const { client } = pair();
    assert.throws(() => client.proto.ping('x'.repeat(126)), RangeError);
    assert.throws(() => client.proto.pong(new Uint8Array(126)), RangeError);
    assert.equal(client.proto.bufferedAmount, 0);
  });
});

// ---------------------------------------------------------------------------------------
// Closing handshake
// ---------------------------------------------------------------------------------------

describe('WebSocketProtocol: closing handshake', () => {
  test('client-initiated: code echoed, Open -> Closing -> Closed, only the server closes the transport', () => {
    const { server, client } = pair();
    assert.equal(client.proto.state, ProtocolState.Open);
    assert.equal(server.proto.state, ProtocolState.Open);
    client.proto.close(1000, 'done');
    assert.equal(client.proto.state, ProtocolState.Closing);
    assert.deepEqual(client.proto.closeSent, { code: 1000, reason: 'done' });
    assert.equal(client.proto.shouldCloseTransport, false);
    passClose(client, server, 1000, 'done');
    assert.deepEqual(server.events, [closed(1000, 'done')]);
    assert.deepEqual(server.proto.closeReceived, { code: 1000, reason: 'done' });
    assert.deepEqual(server.proto.closeSent, { code: 1000, reason: '' });
    assertPhase(server, ProtocolState.Closed, true);
    passClose(server, client, 1000);
    assert.deepEqual(client.events, [closed(1000)]);
    assertPhase(client, ProtocolState.Closed, false);
    assert.equal(client.proto.failure, null);
    assert.equal(server.proto.failure, null);
    assert.equal(client.proto.bufferedAmount, 0);
  });

  test('server-initiated: the client echoes the code; the server closes the transport after the echo', () => {
    const { server, client } = pair();
    server.proto.close(4001, 'bye');
    assertPhase(server, ProtocolState.Closing, false);
    pump(server, client);
    assert.deepEqual(client.events, [closed(4001, 'bye')]);
    assertPhase(client, ProtocolState.Closed, false);
    passClose(client, server, 4001);
    assert.deepEqual(server.events, [closed(4001)]);
    assertPhase(server, ProtocolState.Closed, true);
    assert.equal(server.proto.bufferedAmount, 0);
  });

  test('the closing state is read-only from outside: an owner cannot forge a close or clear a failure', () => {
    const { server } = pair();
    server.feed(masked(Opcode.Close, closePayload(1000, 'bye')));
    const proto = server.proto;
    const writable = proto as unknown as Record<'closeSent' | 'closeReceived' | 'failure' | 'eofReceived', unknown>;
    for (const name of ['closeSent', 'closeReceived', 'failure', 'eofReceived'] as const) {
      assert.throws(() => (writable[name] = null), TypeError, `${name} cannot be assigned`);
    }
    // @ts-expect-error closeReceived has no setter
    assert.throws(() => (proto.closeReceived = null), TypeError);
    assert.deepEqual(proto.closeReceived, { code: 1000, reason: 'bye' });
    assert.deepEqual(proto.closeSent, { code: 1000, reason: '' });
    assert.equal(proto.state, ProtocolState.Closed);
    assert.equal(proto.shouldCloseTransport, true);
  });

  test('the answering close frame is already queued when onClose runs', () => {
    let queued = -1;
    const receiver: WebSocketProtocol = new WebSocketProtocol(
      { onMessage: () => {}, onClose: () => (queued = receiver.bufferedAmount) },
      { role: 'server' },
    );
    receiver.receiveData(masked(Opcode.Close, closePayload(1001)));
    assert.equal(queued, 4);
  });

  test('an empty close frame is reported as 1005 and answered with an empty close frame', () => {
    const { server, client } = pair();
    client.proto.close();
    assert.deepEqual(client.proto.closeSent, { code: 1005, reason: '' });
    const bytes = client.take();
    assert.deepEqual(summary(parseFrames(bytes)), [closeFrame(null)]);
    server.feed(bytes);
    assert.deepEqual(server.events, [closed(1005)]);
    const answer = server.take();
    assert.deepEqual(summary(parseFrames(answer)), [closeFrame(null)]);
    client.feed(answer);
    assert.deepEqual(client.events, [closed(1005)]);
  });

  test('simultaneous close: each side reports the other\'s code and sends only one close frame', () => {
    const { server, client } = pair();
    client.proto.close(1000, 'c');
    server.proto.close(1001, 's');
    const fromClient = client.take();
    const fromServer = server.take();
    server.feed(fromClient);
    client.feed(fromServer);
    assert.deepEqual(server.events, [closed(1000, 'c')]);
    assert.deepEqual(client.events, [closed(1001, 's')]);
    assert.equal(server.proto.bufferedAmount, 0);
    assert.equal(client.proto.bufferedAmount, 0);
    assert.equal(server.proto.state, ProtocolState.Closed);
    assert.equal(client.proto.state, ProtocolState.Closed);
    assert.equal(server.proto.shouldCloseTransport, true);
    assert.equal(client.proto.shouldCloseTransport, false);
  });

  test('close() twice queues one frame; close() checks its arguments', () => {
    const { client } = pair();
    assert.throws(() => client.proto.close(1005), RangeError);
    assert.throws(() => client.proto.close(1000, 'r'.repeat(124)), RangeError);
    assert.throws(() => client.proto.close(undefined, 'reason without code'), RangeError);
    assert.equal(client.proto.closeSent, null);
    assert.equal(client.proto.state, ProtocolState.Open);
    client.proto.close(1000);
    client.proto.close(1001);
    assert.deepEqual(summary(outgoingFrames(client)), [closeFrame(1000)]);
  });

  test('close() with a non-integer code is refused rather than sent truncated', () => {
    const { client } = pair();
    assert.throws(() => client.proto.close(1000.5), RangeError);
    assert.equal(client.proto.closeSent, null);
  });

  test('send, ping and pong after close() throw InvalidStateError', () => {
    const { server, client } = pair();
    client.proto.close(1000);
    assert.equal(client.proto.canSend, false);
    assert.throws(() => client.proto.send('x'), InvalidStateError);
    assert.throws(() => client.proto.send(new Uint8Array(1)), InvalidStateError);
    assert.throws(() => client.proto.ping(), InvalidStateError);
    assert.throws(() => client.proto.pong(), InvalidStateError);
    try {
      client.proto.send('x');
    } catch (error) {
      assert.ok(error instanceof InvalidStateError);
      assert.equal(error.code, 'INVALID_STATE');
    }
    // The side that answered a close cannot send either.
    pump(client, server);
    assert.throws(() => server.proto.send('x'), InvalidStateError);
    assert.throws(() => server.proto.ping('x'), InvalidStateError);
  });

  test('messages from the peer are still delivered while our close is in flight', () => {
    const { server, client } = pair();
    server.proto.close(1000);
    assert.equal(server.proto.state, ProtocolState.Closing);
    client.proto.send('late');
    pump(client, server);
    assert.deepEqual(server.events, [text('late')]);
    pump(server, client);
    pump(client, server);
    assert.deepEqual(server.events, [text('late'), closed(1000)]);
    assert.equal(server.proto.state, ProtocolState.Closed);
  });

  test('data after a received close frame is ignored, in the same chunk or later', () => {
    const server = new Peer('server');
    server.feed(Buffer.concat([masked(Opcode.Close, closePayload(1000)), masked(Opcode.Text, 'ignored'), masked(Opcode.Ping, 'p')]));
    server.feed(masked(Opcode.Text, 'ignored too'));
    server.feed(Buffer.from([0xff, 0xff, 0xff])); // not even a protocol error
    assert.deepEqual(server.events, [closed(1000)]);
    assert.deepEqual(summary(outgoingFrames(server)), [closeFrame(1000)]);
    assert.equal(server.proto.failure, null);
  });

  test('pings after our close frame are reported but not answered', () => {
    const { server, client } = pair();
    server.proto.close(1000);
    server.take();
    client.proto.ping('late ping');
    pump(client, server);
    assert.deepEqual(server.events, [ping('late ping')]);
    assert.equal(server.proto.bufferedAmount, 0);
  });

  test('a message in progress when the close frame arrives is discarded', () => {
    const { server, client } = pair();
    client.proto.send('part one, ', { fin: false });
    client.proto.send('part two', { fin: false });
    client.proto.close(1001, 'leaving');
    pump(client, server);
    assert.deepEqual(server.events, [closed(1001, 'leaving')]);
    assert.deepEqual(summary(outgoingFrames(server)), [closeFrame(1001)]);
  });

  test('receiveEof closes everything: state Closed, transport to close, no sending', () => {
    const { server } = pair();
    server.proto.receiveEof();
    assert.equal(server.proto.eofReceived, true);
    assertPhase(server, ProtocolState.Closed, true);
    assert.throws(() => server.proto.send('x'), InvalidStateError);
    server.proto.close(1000);
    assert.equal(server.proto.bufferedAmount, 0);
    server.feed(masked(Opcode.Text, 'after eof'));
    assert.deepEqual(server.events, []);
  });
});

// ---------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------

describe('WebSocketProtocol: protocol errors', () => {
  const serverCases: ReadonlyArray<readonly [string, Buffer, ProtocolErrorCode, number]> = [
    ['an unmasked frame', plain(Opcode.Text, 'hi'), 'MASK_REQUIRED', 1002],
    ['a reserved opcode', masked(0x3, 'hi'), 'RESERVED_OPCODE', 1002],
    ['RSV1 without an extension', (() => { const b = masked(Opcode.Text, 'hi'); b[0] = b[0]! | 0x40; return b; })(), 'RESERVED_BITS', 1002],
    ['a 126-byte ping', masked(Opcode.Ping, Buffer.alloc(126)), 'CONTROL_FRAME_TOO_LONG', 1002],
    ['a fragmented ping', masked(Opcode.Ping, 'p', false), 'CONTROL_FRAME_FRAGMENTED', 1002],
    ['a continuation without a message', masked(Opcode.Continuation, 'x'), 'UNEXPECTED_CONTINUATION', 1002],
    ['a new message inside a fragmented one', Buffer.concat([masked(Opcode.Text, 'a', false), masked(Opcode.Text, 'b')]), 'EXPECTED_CONTINUATION', 1002],
    ['invalid UTF-8 in a text message', masked(Opcode.Text, Buffer.from([0x61, 0xff])), 'INVALID_UTF8', 1007],
    ['a surrogate in a text message', masked(Opcode.Text, Buffer.from([0xed, 0xa0, 0x80])), 'INVALID_UTF8', 1007],
    ['a text message ending inside a character', masked(Opcode.Text, Buffer.from([0x61, 0xe2, 0x82])), 'INVALID_UTF8', 1007],
    ['a message over maxPayload', masked(Opcode.Binary, Buffer.alloc(1024 * 1024 + 1)), 'MESSAGE_TOO_BIG', 1009],
    ['a one-byte close payload', masked(Opcode.Close, Buffer.from([0x03])), 'INVALID_CLOSE_PAYLOAD', 1002],
    ['close code 1005 on the wire', masked(Opcode.Close, closePayload(1005)), 'INVALID_CLOSE_CODE', 1002],
    ['close code 999', masked(Opcode.Close, closePayload(999)), 'INVALID_CLOSE_CODE', 1002],
    ['a close reason that is not UTF-8', masked(Opcode.Close, closePayload(1000, Buffer.from([0xc0, 0x80]))), 'INVALID_UTF8', 1007],
  ];

  for (const [name, bytes, code, closeCode] of serverCases) {
    test(`server: ${name} fails with ${closeCode} (${code})`, () => {
      const server = new Peer('server');
      server.feed(bytes);
      assert.deepEqual(server.events, [protocolError(code, closeCode)]);
      assertFailed(server, code, closeCode);
      // Nothing more is read.
      server.feed(masked(Opcode.Text, 'after'));
      server.feed(masked(Opcode.Ping, 'after'));
      assert.deepEqual(server.events, [protocolError(code, closeCode)]);
      assert.equal(server.proto.bufferedAmount, 0);
    });
  }

  test('client: a masked frame from the server fails with 1002 and a masked close frame', () => {
    const client = new Peer('client');
    client.feed(masked(Opcode.Text, 'hi'));
    assert.deepEqual(client.events, [protocolError('MASK_FORBIDDEN', 1002)]);
    assertFailed(client, 'MASK_FORBIDDEN', 1002);
  });

  test('a failure after our close frame queues no second close frame', () => {
    const server = new Peer('server');
    server.proto.close(1000);
    server.take();
    server.feed(plain(Opcode.Text, 'unmasked'));
    assert.equal(failureOf(server)?.code, 'MASK_REQUIRED');
    assert.equal(server.proto.bufferedAmount, 0);
    assert.equal(server.proto.shouldCloseTransport, true);
  });

  test('fail(1011) queues a close frame, stops reading and reports no protocol error', () => {
    const { server, client } = pair();
    client.proto.send('in flight');
    server.proto.fail(1011, 'oops');
    assert.equal(failureOf(server)?.code, 'LOCAL_FAILURE');
    assert.equal(failureOf(server)?.closeCode, 1011);
    assert.deepEqual(summary(outgoingFrames(server)), [closeFrame(1011, 'oops')]);
    assertPhase(server, ProtocolState.Closed, true);
    assert.throws(() => server.proto.send('x'), InvalidStateError);
    pump(client, server);
    assert.deepEqual(server.events, []);
  });

  test('fail() with a code that may not be sent throws before changing anything', () => {
    const server = new Peer('server');
    assert.throws(() => server.proto.fail(1005), RangeError);
    assert.throws(() => server.proto.fail(1011, 'x'.repeat(124)), RangeError);
    assert.equal(server.proto.failure, null);
    assert.equal(server.proto.state, ProtocolState.Open);
    assert.equal(server.proto.bufferedAmount, 0);
  });

  test('fail() after our close frame sends nothing more', () => {
    const server = new Peer('server');
    server.proto.close(1000);
    server.take();
    server.proto.fail(1011);
    assert.equal(server.proto.bufferedAmount, 0);
    assert.equal(failureOf(server)?.closeCode, 1011);
    assert.equal(server.proto.shouldCloseTransport, true);
  });

  test('fail-fast UTF-8: bytes arriving one at a time fail at the first invalid byte', () => {
    for (const [payloadHex, badIndex] of [
      ['61 62 63 c3 28 64 65 66', 4],
      ['e0 80 80 61 62', 1],
      ['68 69 ed a0 80 21', 3],
      ['f4 90 80 80', 1],
      ['ff 61', 0],
      ['61 62 63 80 61', 3],
    ] as const) {
      const payload = Buffer.from(payloadHex.replace(/ /g, ''), 'hex');
      const frame = masked(Opcode.Text, Buffer.concat([payload, Buffer.from('x'.repeat(10))]));
      const headerLength = 6;
      const server = new Peer('server');
      for (let i = 0; i < frame.length; i++) {
        server.feed(frame.subarray(i, i + 1));
        if (i < headerLength + badIndex) {
          assert.equal(server.proto.failure, null, `${payloadHex}: failed early at byte ${i}`);
          assert.equal(server.proto.bufferedAmount, 0);
        } else if (i === headerLength + badIndex) {
          // Before the rest of the frame arrives, the 1007 close frame is already queued.
          assert.equal(failureOf(server)?.code, 'INVALID_UTF8', `${payloadHex}: not failed at byte ${i}`);
          const frames = outgoingFrames(server);
          assert.equal(frames.length, 1);
          assert.equal(frames[0]!.opcode, Opcode.Close);
          assert.equal(frames[0]!.payload.readUInt16BE(0), 1007);
        }
      }
      assert.deepEqual(server.events, [protocolError('INVALID_UTF8', 1007)]);
      assert.equal(server.proto.bufferedAmount, 0);
    }
  });

  test('fail-fast UTF-8 on the client side too, with an unmasked frame', () => {
    const client = new Peer('client');
    const frame = plain(Opcode.Text, Buffer.from([0x61, 0xc0, 0x80, 0x61]));
    client.feed(frame.subarray(0, 3));
    assert.equal(client.proto.failure, null);
    client.feed(frame.subarray(3, 4));
    assert.equal(failureOf(client)?.closeCode, 1007);
    assert.equal(parseFrames(client.take())[0]!.payload.readUInt16BE(0), 1007);
  });

  test('invalid UTF-8 in the second fragment fails before the third arrives', () => {
    const server = new Peer('server');
    server.feed(masked(Opcode.Text, 'ab', false));
    assert.equal(server.proto.failure, null);
    server.feed(masked(Opcode.Continuation, Buffer.from([0x63, 0xff]), false));
    assert.equal(failureOf(server)?.code, 'INVALID_UTF8');
    assert.equal(failureOf(server)?.closeCode, 1007);
    const frames = outgoingFrames(server);
    assert.deepEqual(frames.map((f) => [f.opcode, f.payload.readUInt16BE(0)]), [[Opcode.Close, 1007]]);
    server.feed(masked(Opcode.Continuation, 'cd'));
    assert.deepEqual(server.events, [protocolError('INVALID_UTF8', 1007)]);
  });

  test('a character split across fragments is fine; an invalid continuation in the next fragment is not', () => {
    const ok = new Peer('server');
    ok.feed(masked(Opcode.Text, Buffer.from([0x61, 0xe2]), false));
    ok.feed(masked(Opcode.Continuation, Buffer.from([0x82]), false));
    ok.feed(masked(Opcode.Continuation, Buffer.from([0xac, 0x62])));
    assert.deepEqual(ok.events, [text('a€b')]);

    const bad = new Peer('server');
    bad.feed(masked(Opcode.Text, Buffer.from([0x61, 0xe2]), false));
    assert.equal(bad.proto.failure, null);
    bad.feed(masked(Opcode.Continuation, Buffer.from([0x28]), false));
    assert.equal(failureOf(bad)?.closeCode, 1007);
  });

  test('a binary message is never checked for UTF-8', () => {
    const server = new Peer('server');
    server.feed(masked(Opcode.Binary, Buffer.from([0xff, 0xc0, 0x80])));
    assert.deepEqual(server.events, [binary(Uint8Array.of(0xff, 0xc0, 0x80))]);
  });

  test('a text message after a binary one is validated from a clean state', () => {
    const server = new Peer('server');
    server.feed(masked(Opcode.Binary, Buffer.from([0xe2]))); // would leave a validator mid-character
    server.feed(masked(Opcode.Text, 'ok'));
    assert.deepEqual(server.events, [binary(Uint8Array.of(0xe2)), text('ok')]);
  });

  test('handler exceptions that are not ProtocolError propagate out of receiveData', () => {
    const boom = new Error('boom');
    const server = new Peer('server', {}, {
      onMessage: () => {
        throw boom;
      },
    });
    assert.throws(() => server.feed(masked(Opcode.Text, 'hi')), (e: unknown) => e === boom);
    // The connection is failed with 1011 so that it cannot go on half-handled.
    assert.equal(server.proto.failure?.closeCode, 1011);
    assertPhase(server, ProtocolState.Closed, true);
    assert.deepEqual([...Buffer.concat(server.proto.takeOutgoing())], [0x88, 0x10, 0x03, 0xf3, ...Buffer.from('internal error')]);
    server.feed(masked(Opcode.Text, 'ignored'));
    assert.equal(server.proto.bufferedAmount, 0);

    const pinger = new Peer('server', {}, {
      onPing: () => {
        throw new TypeError('ping handler');
      },
    });
    assert.throws(() => pinger.feed(masked(Opcode.Ping, 'x')), TypeError);

    const closer = new Peer('server', {}, {
      onClose: () => {
        throw new RangeError('close handler');
      },
    });
    assert.throws(() => closer.feed(masked(Opcode.Close, closePayload(1000))), RangeError);
  });
});
