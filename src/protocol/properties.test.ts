import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { FrameDecoder, type FrameSink } from './frame-decoder.js';
import { ProtocolError } from './errors.js';
import { Opcode, type ControlOpcode, type Role } from './opcode.js';
import { ProtocolState, WebSocketProtocol } from './websocket-protocol.js';
import { unicodeString } from '../../test/support/arbitraries.js';
import { recordControl, type ControlEvent } from '../../test/support/protocol-events.js';

// ---------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------

/** Split points as fractions of a length not yet known; scaled by {@link cutsFor}. */
const cutFractions = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 1_000_000 }), { maxLength: 24 }),
  fc.constant<number[] | 'bytewise'>('bytewise'),
);

function cutsFor(length: number, fractions: number[] | 'bytewise'): number[] {
  if (fractions === 'bytewise') return Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1);
  const cuts = fractions.map((f) => Math.floor((f * (length + 1)) / 1_000_001));
  return [...new Set(cuts)].sort((a, b) => a - b);
}

function* chunks(bytes: Uint8Array, cuts: readonly number[]): Generator<Buffer> {
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    // A private copy: the protocol unmasks in place.
    yield Buffer.from(bytes.subarray(from, to));
    from = to;
  }
}

interface Part {
  data: string | Uint8Array;
  fragmentSize: number | undefined;
  /** A ping sent after this part, while the message may still be in progress. */
  pingAfter: Uint8Array | null;
}
interface Message {
  binary: boolean;
  parts: Part[];
}

const pingPayload = fc.option(fc.uint8Array({ maxLength: 125 }), { nil: null, freq: 3 });
const fragmentSize = fc.option(fc.integer({ min: 1, max: 24 }), { nil: undefined });

const textMessage: fc.Arbitrary<Message> = fc
  .array(fc.record({ data: unicodeString(40), fragmentSize, pingAfter: pingPayload }), { minLength: 1, maxLength: 3 })
  .map((parts) => ({ binary: false, parts }));

const binaryMessage: fc.Arbitrary<Message> = fc
  .array(fc.record({ data: fc.uint8Array({ maxLength: 200 }), fragmentSize, pingAfter: pingPayload }), {
    minLength: 1,
    maxLength: 3,
  })
  .map((parts) => ({ binary: true, parts }));

/** Occasionally a message needing a 16- or 64-bit length. */
const largeMessage: fc.Arbitrary<Message> = fc
  .tuple(fc.constantFrom(300, 70_000), fc.integer({ min: 0, max: 255 }), fc.boolean())
  .map(([size, fill, isText]) => ({
    binary: !isText,
    parts: [{ data: isText ? 'é'.repeat(size / 2) : new Uint8Array(size).fill(fill), fragmentSize: undefined, pingAfter: null }],
  }));

const conversation = fc.record({
  messages: fc.array(fc.oneof({ weight: 5, arbitrary: textMessage }, { weight: 5, arbitrary: binaryMessage }, { weight: 1, arbitrary: largeMessage }), {
    maxLength: 6,
  }),
  close: fc.option(fc.record({ code: fc.constantFrom(1000, 1001, 1003, 1011, 3000, 4999), reason: unicodeString(30) }), {
    nil: null,
  }),
});

// ---------------------------------------------------------------------------------------
// A recording peer
// ---------------------------------------------------------------------------------------

type Event = { type: 'message'; binary: boolean; hex: string } | ControlEvent;

function recordingProtocol(role: Role, maxPayload?: number): { proto: WebSocketProtocol; events: Event[] } {
  const events: Event[] = [];
  const proto = new WebSocketProtocol(
    {
      onMessage: (data, binary) => events.push({ type: 'message', binary, hex: data.toString('hex') }),
      ...recordControl(events),
    },
    maxPayload === undefined ? { role } : { role, maxPayload },
  );
  return { proto, events };
}

const toHex = (data: string | Uint8Array): string =>
  (typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.length)).toString('hex');

/** Sends a conversation; returns the bytes and the events the receiver must report. */
function play(sender: WebSocketProtocol, c: { messages: Message[]; close: { code: number; reason: string } | null }): {
  bytes: Buffer;
  expected: Event[];
  pings: string[];
} {
  const expected: Event[] = [];
  const pings: string[] = [];
  for (const message of c.messages) {
    const pieces: string[] = [];
    message.parts.forEach((part, i) => {
      const last = i === message.parts.length - 1;
      const options = { fin: last, binary: message.binary, ...(part.fragmentSize === undefined ? {} : { fragmentSize: part.fragmentSize }) };
      sender.send(part.data, options);
      pieces.push(toHex(part.data));
      if (last) expected.push({ type: 'message', binary: message.binary, hex: pieces.join('') });
      if (part.pingAfter !== null) {
        sender.ping(part.pingAfter);
        expected.push({ type: 'ping', hex: toHex(part.pingAfter) });
        pings.push(toHex(part.pingAfter));
      }
    });
  }
  if (c.close !== null) {
    sender.close(c.close.code, c.close.reason);
    expected.push({ type: 'close', code: c.close.code, reason: c.close.reason });
  }
  return { bytes: Buffer.concat(sender.takeOutgoing()), expected, pings };
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

describe('properties: messages round-trip through a client and a server for any chunking', () => {
  for (const [from, to] of [
    ['client', 'server'],
    ['server', 'client'],
  ] as const) {
    test(`${from} -> ${to}`, () => {
      fc.assert(
        fc.property(conversation, cutFractions, (c, fractions) => {
          const sender = recordingProtocol(from);
          const receiver = recordingProtocol(to);
          const { bytes, expected, pings } = play(sender.proto, c);
          const cuts = fractions === 'bytewise' && bytes.length > 5000 ? [] : cutsFor(bytes.length, fractions);
          for (const chunk of chunks(bytes, cuts)) receiver.proto.receiveData(chunk);

          // Text messages arrive as the same strings, binary as the same bytes, pings in order.
          assert.deepEqual(receiver.events, expected);
          assert.equal(receiver.proto.failure, null);

          // The receiver's answers: a pong per ping, then the echoed close.
          const answers = Buffer.concat(receiver.proto.takeOutgoing());
          sender.proto.receiveData(answers);
          const back: Event[] = pings.map((hex) => ({ type: 'pong', hex }));
          if (c.close !== null) back.push({ type: 'close', code: c.close.code, reason: '' });
          assert.deepEqual(sender.events, back);
          if (c.close !== null) {
            assert.equal(receiver.proto.state, ProtocolState.Closed);
            assert.equal(sender.proto.state, ProtocolState.Closed);
            assert.equal(sender.proto.shouldCloseTransport, from === 'server');
            assert.equal(receiver.proto.shouldCloseTransport, to === 'server');
          } else {
            assert.equal(receiver.proto.state, ProtocolState.Open);
          }
        }),
        { numRuns: 250 },
      );
    });
  }
});

// ---------------------------------------------------------------------------------------
// Arbitrary input
// ---------------------------------------------------------------------------------------

/** Frame-like byte sequences: mostly plausible headers, with every field occasionally wrong. */
const frameish: fc.Arbitrary<Buffer> = fc
  .record({
    fin: fc.oneof({ weight: 8, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    rsv: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 7 }) }),
    opcode: fc.oneof(
      { weight: 16, arbitrary: fc.constantFrom(1, 2) },
      { weight: 5, arbitrary: fc.constant(0) },
      { weight: 6, arbitrary: fc.constantFrom(9, 10) },
      { weight: 2, arbitrary: fc.constant(8) },
      { weight: 1, arbitrary: fc.constantFrom(3, 4, 5, 6, 7, 11, 12, 13, 14, 15) },
    ),
    masked: fc.oneof({ weight: 30, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    key: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    payload: fc.oneof(
      fc.uint8Array({ maxLength: 130 }),
      fc.integer({ min: 20, max: 130 }).map((n) => new Uint8Array(n).fill(0x41)),
      unicodeString(30).map((s) => new Uint8Array(Buffer.from(s))),
      fc.tuple(fc.integer({ min: 0, max: 5100 }), unicodeString(8)).map(([code, reason]) => {
        const b = Buffer.alloc(2);
        b.writeUInt16BE(code);
        return new Uint8Array(Buffer.concat([b, Buffer.from(reason)]));
      }),
    ),
    lengthForm: fc.oneof(
      { weight: 20, arbitrary: fc.constant('minimal') },
      { weight: 1, arbitrary: fc.constantFrom('16', '64') },
    ),
    truncate: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 8 }) }),
  })
  .map(({ fin, rsv, opcode, masked, key, payload, lengthForm, truncate }) => {
    const n = payload.length;
    const form = lengthForm === 'minimal' ? (n < 126 ? 7 : n < 0x10000 ? 16 : 64) : lengthForm === '16' ? 16 : 64;
    const header = Buffer.alloc(form === 7 ? 2 : form === 16 ? 4 : 10);
    header[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
    const maskBit = masked ? 0x80 : 0;
    if (form === 7) header[1] = maskBit | n;
    else if (form === 16) {
      header[1] = maskBit | 126;
      header.writeUInt16BE(n, 2);
    } else {
      header[1] = maskBit | 127;
      header.writeBigUInt64BE(BigInt(n), 2);
    }
    const body = Buffer.from(payload);
    if (masked) for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i % 4]!;
    const frame = Buffer.concat([header, masked ? Buffer.from(key) : Buffer.alloc(0), body]);
    return truncate > 0 ? frame.subarray(0, Math.max(0, frame.length - truncate)) : frame;
  });

const byteStream: fc.Arbitrary<Buffer> = fc
  .array(fc.oneof({ weight: 20, arbitrary: frameish }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)) }), {
    maxLength: 12,
  })
  .map((parts) => Buffer.concat(parts));

interface ServerOutcome {
  events: Event[];
  outgoing: string;
  state: ProtocolState;
  failure: { code: string; closeCode: number } | null;
}

function runServer(bytes: Uint8Array, cuts: readonly number[]): ServerOutcome {
  const { proto, events } = recordingProtocol('server', 40);
  for (const chunk of chunks(bytes, cuts)) proto.receiveData(chunk);
  return {
    events,
    outgoing: Buffer.concat(proto.takeOutgoing()).toString('hex'),
    state: proto.state,
    failure: proto.failure === null ? null : { code: proto.failure.code, closeCode: proto.failure.closeCode },
  };
}

/** Server frames are unmasked: parse them to opcode and payload. */
function parseServerFrames(hex: string): Array<{ opcode: number; payload: Buffer }> {
  const bytes = Buffer.from(hex, 'hex');
  const frames: Array<{ opcode: number; payload: Buffer }> = [];
  let pos = 0;
  while (pos < bytes.length) {
    assert.equal(bytes[pos + 1]! & 0x80, 0, 'server frames are not masked');
    const length = bytes[pos + 1]!;
    assert.ok(length <= 125, 'only control frames are expected');
    frames.push({ opcode: bytes[pos]! & 0x0f, payload: bytes.subarray(pos + 2, pos + 2 + length) });
    assert.equal(bytes[pos]! & 0xf0, 0x80);
    pos += 2 + length;
  }
  return frames;
}

describe('properties: arbitrary bytes fed to a server', () => {
  test('never throw, end open or with a queued 1002/1007/1009 close (or an echoed close), whatever the chunking', () => {
    fc.assert(
      fc.property(byteStream, cutFractions, (bytes, fractions) => {
        let whole: ServerOutcome | null = null;
        let split: ServerOutcome | null = null;
        assert.doesNotThrow(() => {
          whole = runServer(bytes, []);
          split = runServer(bytes, cutsFor(bytes.length, fractions));
        });
        assert.ok(whole !== null && split !== null);
        const outcome: ServerOutcome = whole;
        assert.deepEqual(split, outcome, 'the same bytes in other chunks give the same result');

        const frames = parseServerFrames(outcome.outgoing);
        const pongs = frames.filter((f) => f.opcode === Opcode.Pong);
        const closes = frames.filter((f) => f.opcode === Opcode.Close);
        assert.equal(pongs.length + closes.length, frames.length, 'only pongs and a close frame are sent');
        assert.ok(closes.length <= 1);
        if (closes.length === 1) assert.equal(frames.at(-1)!.opcode, Opcode.Close, 'the close frame is the last frame');
        // Each ping is answered with its payload, in order.
        const pings = outcome.events.filter((e) => e.type === 'ping');
        assert.deepEqual(
          pongs.map((f) => f.payload.toString('hex')),
          pings.map((e) => (e.type === 'ping' ? e.hex : '')),
        );
        const last = outcome.events.at(-1);
        if (outcome.failure !== null) {
          assert.ok([1002, 1007, 1009].includes(outcome.failure.closeCode), `close code ${outcome.failure.closeCode}`);
          assert.equal(closes.length, 1);
          assert.equal(closes[0]!.payload.readUInt16BE(0), outcome.failure.closeCode);
          assert.deepEqual(last, { type: 'error', ...outcome.failure });
          assert.equal(outcome.state, ProtocolState.Closed);
        } else if (last?.type === 'close') {
          // The stream held a valid close frame: it is echoed and nothing after it is read.
          assert.equal(closes.length, 1);
          const echoed = closes[0]!.payload;
          if (last.code === 1005) assert.equal(echoed.length, 0);
          else assert.equal(echoed.toString('hex'), Buffer.from([last.code >> 8, last.code & 0xff]).toString('hex'));
          assert.equal(outcome.state, ProtocolState.Closed);
        } else {
          assert.equal(closes.length, 0);
          assert.equal(outcome.state, ProtocolState.Open);
        }
        assert.ok(outcome.events.filter((e) => e.type === 'error' || e.type === 'close').length <= 1);
      }),
      { numRuns: 500 },
    );
  });

  test('the frame decoder reports the same frames and the same error for any chunking', () => {
    type SinkEvent = string;
    function decode(bytes: Uint8Array, cuts: readonly number[], role: Role): SinkEvent[] {
      const events: SinkEvent[] = [];
      const sink: FrameSink = {
        onDataFrameStart: (opcode, fin, rsv1, length) => events.push(`start ${opcode} ${fin} ${rsv1} ${length}`),
        onDataPayload: (chunk) => {
          const previous = events.at(-1);
          if (previous?.startsWith('data ')) events[events.length - 1] = previous + chunk.toString('hex');
          else events.push('data ' + chunk.toString('hex'));
        },
        onDataFrameEnd: (fin) => events.push(`end ${fin}`),
        onControlFrame: (opcode: ControlOpcode, payload) => events.push(`control ${opcode} ${payload.toString('hex')}`),
      };
      const decoder = new FrameDecoder(sink, { role, maxPayload: 100 });
      for (const chunk of chunks(bytes, cuts)) {
        try {
          decoder.push(chunk);
        } catch (error) {
          assert.ok(error instanceof ProtocolError, `only protocol errors: ${String(error)}`);
          events.push(`error ${error.code} ${error.closeCode}`);
        }
      }
      return events;
    }
    fc.assert(
      fc.property(byteStream, cutFractions, fc.constantFrom<Role>('server', 'client'), (bytes, fractions, role) => {
        const whole = decode(bytes, [], role);
        assert.deepEqual(decode(bytes, cutsFor(bytes.length, fractions), role), whole);
        assert.ok(whole.filter((e) => e.startsWith('error')).length <= 1);
        const error = whole.findIndex((e) => e.startsWith('error'));
        if (error !== -1) assert.equal(error, whole.length - 1, 'nothing after an error');
      }),
      { numRuns: 400 },
    );
  });
});
