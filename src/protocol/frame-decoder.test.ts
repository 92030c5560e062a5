import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { FrameDecoder, type FrameDecoderOptions, type FrameSink } from './frame-decoder.js';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';
import { RSV1, RSV2, RSV3, type ControlOpcode, type Role } from './opcode.js';
import { fromHex, seq, xorMask } from '../../test/support/bytes.js';

type SinkEvent =
  | { kind: 'start'; opcode: number; fin: boolean; rsv1: boolean; length: number }
  | { kind: 'data'; hex: string }
  | { kind: 'end'; fin: boolean }
  | { kind: 'control'; opcode: ControlOpcode; hex: string };

class RecordingSink implements FrameSink {
  readonly events: SinkEvent[] = [];
  onDataFrameStart(opcode: number, fin: boolean, rsv1: boolean, length: number): void {
    this.events.push({ kind: 'start', opcode, fin, rsv1, length });
  }
  onDataPayload(chunk: Buffer): void {
    this.events.push({ kind: 'data', hex: chunk.toString('hex') });
  }
  onDataFrameEnd(fin: boolean): void {
    this.events.push({ kind: 'end', fin });
  }
  onControlFrame(opcode: ControlOpcode, payload: Buffer): void {
    this.events.push({ kind: 'control', opcode, hex: payload.toString('hex') });
  }
  /** Events with the payload pieces of each frame joined, so chunkings can be compared. */
  get normalized(): SinkEvent[] {
    const out: SinkEvent[] = [];
    for (const e of this.events) {
      const last = out[out.length - 1];
      if (e.kind === 'data' && last?.kind === 'data') out[out.length - 1] = { kind: 'data', hex: last.hex + e.hex };
      else out.push(e);
    }
    return out;
  }
  get payloadBytes(): number {
    return this.events.reduce((n, e) => n + (e.kind === 'data' ? e.hex.length / 2 : 0), 0);
  }
}

const MASK = fromHex('37fa213d');

/** Builds a frame by hand (independently of the encoder), optionally with a non-minimal length. */
function frame(
  b0: number,
  payload: Uint8Array,
  options: { mask?: Uint8Array; lengthForm?: 7 | 16 | 64 } = {},
): Buffer {
  const n = payload.length;
  const form = options.lengthForm ?? (n < 126 ? 7 : n < 0x10000 ? 16 : 64);
  const maskBit = options.mask ? 0x80 : 0;
  let header: Buffer;
  if (form === 7) header = Buffer.from([b0, maskBit | n]);
  else if (form === 16) {
    header = Buffer.alloc(4);
    header[0] = b0;
    header[1] = maskBit | 126;
    header.writeUInt16BE(n, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = b0;
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(n), 2);
  }
  if (!options.mask) return Buffer.concat([header, Buffer.from(payload)]);
  return Buffer.concat([header, Buffer.from(options.mask), xorMask(payload, options.mask)]);
}

function decoder(role: Role, options: Partial<FrameDecoderOptions> = {}): { d: FrameDecoder; sink: RecordingSink } {
  const sink = new RecordingSink();
  return { d: new FrameDecoder(sink, { role, maxPayload: 0, ...options }), sink };
}

function decodeAll(role: Role, bytes: Buffer, options: Partial<FrameDecoderOptions> = {}): SinkEvent[] {
  const { d, sink } = decoder(role, options);
  d.push(Buffer.from(bytes));
  return sink.normalized;
}

function expectViolation(
  role: Role,
  bytes: Buffer,
  code: ProtocolErrorCode,
  closeCode: number,
  options: Partial<FrameDecoderOptions> = {},
): RecordingSink {
  const { d, sink } = decoder(role, options);
  assert.throws(
    () => d.push(Buffer.from(bytes)),
    (error: unknown) => {
      assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
      assert.equal(error.code, code);
      assert.equal(error.closeCode, closeCode);
      return true;
    },
  );
  assert.equal(d.stopped, true);
  // Once failed, the decoder ignores everything.
  const before = sink.events.length;
  d.push(fromHex('810548656c6c6f'));
  d.push(fromHex('818537fa213d7f9f4d5158'));
  assert.equal(sink.events.length, before);
  return sink;
}

/** The same check, with the stream fed one byte at a time (the error must surface at the same point). */
function expectViolationBytewise(role: Role, bytes: Buffer, code: ProtocolErrorCode, options: Partial<FrameDecoderOptions> = {}): void {
  const { d } = decoder(role, options);
  let thrown: unknown = null;
  for (let i = 0; i < bytes.length && thrown === null; i++) {
    try {
      d.push(Buffer.from(bytes.subarray(i, i + 1)));
    } catch (error) {
      thrown = error;
    }
  }
  assert.ok(thrown instanceof ProtocolError, `no error for ${bytes.toString('hex')} fed byte by byte`);
  assert.equal(thrown.code, code);
}

const hello = Buffer.from('Hello');
const start = (opcode: number, fin: boolean, length: number, rsv1 = false): SinkEvent => ({
  kind: 'start',
  opcode,
  fin,
  rsv1,
  length,
});
const data = (hex: string): SinkEvent => ({ kind: 'data', hex });
const end = (fin: boolean): SinkEvent => ({ kind: 'end', fin });
const control = (opcode: ControlOpcode, hex: string): SinkEvent => ({ kind: 'control', opcode, hex });
/** What a whole message in one frame reports: its start, its payload in one piece, its end. */
const whole = (opcode: number, payload: Buffer): SinkEvent[] => [start(opcode, true, payload.length), data(payload.toString('hex')), end(true)];

describe('FrameDecoder: RFC 6455 §5.7 examples', () => {
  test('a single-frame unmasked text message (client side)', () => {
    assert.deepEqual(decodeAll('client', fromHex('81 05 48 65 6c 6c 6f')), whole(1, hello));
  });

  test('a single-frame masked text message (server side)', () => {
    assert.deepEqual(decodeAll('server', fromHex('81 85 37 fa 21 3d 7f 9f 4d 51 58')), whole(1, hello));
  });

  test('a fragmented unmasked text message', () => {
    const { d, sink } = decoder('client');
    assert.equal(d.inMessage, false);
    d.push(fromHex('01 03 48 65 6c'));
    assert.equal(d.inMessage, true);
    d.push(fromHex('80 02 6c 6f'));
    assert.equal(d.inMessage, false);
    assert.deepEqual(sink.events, [start(1, false, 3), data('48656c'), end(false), start(0, true, 2), data('6c6f'), end(true)]);
  });

  test('an unmasked ping and a masked pong', () => {
    assert.deepEqual(decodeAll('client', fromHex('89 05 48 65 6c 6c 6f')), [control(9, hello.toString('hex'))]);
    assert.deepEqual(decodeAll('server', fromHex('8a 85 37 fa 21 3d 7f 9f 4d 51 58')), [control(10, hello.toString('hex'))]);
  });

  test('256 bytes of binary data in a single unmasked frame (16-bit length)', () => {
    const payload = seq(256, (i) => i);
    const bytes = Buffer.concat([fromHex('82 7e 01 00'), payload]);
    assert.deepEqual(decodeAll('client', bytes), whole(2, payload));
  });

  test('64 KiB of binary data in a single unmasked frame (64-bit length)', () => {
    const payload = seq(65536, (i) => (i * 7) & 0xff);
    const bytes = Buffer.concat([fromHex('82 7f 00 00 00 00 00 01 00 00'), payload]);
    assert.deepEqual(decodeAll('client', bytes), whole(2, payload));
    assert.deepEqual(decodeAll('client', bytes, { maxPayload: 65536 }), whole(2, payload));
  });

  test('empty frames: data frames start and end at once, control frames carry an empty payload', () => {
    assert.deepEqual(decodeAll('client', fromHex('81 00 82 00 89 00 8a 00 88 00')), [
      start(1, true, 0),
      end(true),
      start(2, true, 0),
      end(true),
      control(9, ''),
      control(10, ''),
      control(8, ''),
    ]);
    assert.deepEqual(decodeAll('server', fromHex('81 80 01 02 03 04 89 80 01 02 03 04')), [
      start(1, true, 0),
      end(true),
      control(9, ''),
    ]);
  });

  test('data payloads are unmasked in place and handed out as views of the input', () => {
    const input = fromHex('82 85 37 fa 21 3d 7f 9f 4d 51 58');
    const seen: Buffer[] = [];
    const d = new FrameDecoder(
      {
        onDataFrameStart: () => {},
        onDataPayload: (chunk) => seen.push(chunk),
        onDataFrameEnd: () => {},
        onControlFrame: () => {},
      },
      { role: 'server', maxPayload: 0 },
    );
    d.push(input);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.buffer, input.buffer);
    assert.equal(seen[0]!.byteOffset, input.byteOffset + 6);
    assert.equal(input.subarray(6).toString(), 'Hello');
  });
});

describe('FrameDecoder: lengths', () => {
  test('7-bit, 16-bit and 64-bit boundaries', () => {
    for (const n of [0, 1, 125, 126, 127, 65535, 65536, 65537]) {
      const payload = Buffer.alloc(n, 0x61);
      const events = decodeAll('client', frame(0x82, payload));
      assert.deepEqual(events[0], start(2, true, n));
      assert.equal(events.length, n === 0 ? 2 : 3);
      if (n > 0) assert.equal(events[1]!.kind === 'data' && events[1].hex.length, 2 * n);
    }
  });

  test('a 64-bit length with a non-zero high word is accepted (without a limit)', () => {
    const { d, sink } = decoder('client');
    d.push(fromHex('82 7f 00 00 00 01 00 00 00 00 ab cd'));
    assert.deepEqual(sink.events, [start(2, true, 2 ** 32), data('abcd')]);
  });

  test('the largest length, 2^53 - 1, is accepted', () => {
    const { d, sink } = decoder('client');
    d.push(fromHex('82 7f 00 1f ff ff ff ff ff ff 01'));
    assert.deepEqual(sink.events, [start(2, true, Number.MAX_SAFE_INTEGER), data('01')]);
  });

  test('non-minimal 16-bit lengths are rejected (0..125 in the 16-bit form)', () => {
    for (const n of [0, 1, 125]) {
      const bytes = frame(0x82, Buffer.alloc(n), { lengthForm: 16 });
      const sink = expectViolation('client', bytes, 'NON_MINIMAL_LENGTH', 1002);
      assert.deepEqual(sink.events, []);
      expectViolationBytewise('client', bytes, 'NON_MINIMAL_LENGTH');
    }
    assert.deepEqual(decodeAll('client', frame(0x82, Buffer.alloc(126), { lengthForm: 16 }))[0], start(2, true, 126));
  });

  test('non-minimal 64-bit lengths are rejected (below 65536 in the 64-bit form)', () => {
    for (const n of [0, 5, 125, 126, 65535]) {
      const bytes = frame(0x82, Buffer.alloc(n), { lengthForm: 64 });
      const sink = expectViolation('client', bytes, 'NON_MINIMAL_LENGTH', 1002);
      assert.deepEqual(sink.events, []);
      expectViolationBytewise('client', bytes, 'NON_MINIMAL_LENGTH');
    }
  });

  test('a 64-bit length with its most significant bit set is rejected', () => {
    for (const bytes of [fromHex('82 7f 80 00 00 00 00 00 00 00'), fromHex('82 7f ff ff ff ff ff ff ff ff'), fromHex('82 7f 80 00 00 00 00 01 00 00')]) {
      expectViolation('client', bytes, 'LENGTH_MSB_SET', 1002);
      expectViolationBytewise('client', bytes, 'LENGTH_MSB_SET');
    }
  });

  test('a length above 2^53 - 1 is rejected with 1009', () => {
    for (const bytes of [fromHex('82 7f 00 20 00 00 00 00 00 00'), fromHex('82 7f 7f ff ff ff ff ff ff ff')]) {
      expectViolation('client', bytes, 'MESSAGE_TOO_BIG', 1009);
      expectViolationBytewise('client', bytes, 'MESSAGE_TOO_BIG');
    }
  });
});

describe('FrameDecoder: violations', () => {
  test('reserved opcodes 3-7 and B-F', () => {
    for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      for (const role of ['client', 'server'] as const) {
        const mask = role === 'server' ? MASK : undefined;
        const sink = expectViolation(role, frame(0x80 | opcode, hello, { mask }), 'RESERVED_OPCODE', 1002);
        assert.deepEqual(sink.events, []);
        expectViolation(role, frame(opcode, hello, { mask }), 'RESERVED_OPCODE', 1002);
      }
    }
  });

  test('RSV1, RSV2 or RSV3 without a negotiated extension', () => {
    for (const rsv of [0x40, 0x20, 0x10, 0x70]) {
      for (const opcode of [1, 2]) {
        expectViolation('client', frame(0x80 | rsv | opcode, hello), 'RESERVED_BITS', 1002);
        expectViolation('server', frame(0x80 | rsv | opcode, hello, { mask: MASK }), 'RESERVED_BITS', 1002);
      }
      for (const opcode of [8, 9, 10]) {
        expectViolation('client', frame(0x80 | rsv | opcode, Buffer.alloc(0)), 'RESERVED_BITS', 1002);
      }
      const sink = expectViolation('client', Buffer.concat([frame(0x01, hello), frame(rsv, hello)]), 'RESERVED_BITS', 1002);
      assert.deepEqual(sink.normalized, [start(1, false, 5), data(hello.toString('hex')), end(false)]);
    }
  });

  test('RSV1 is allowed by allowedRsv on the first data frame only', () => {
    const options = { allowedRsv: RSV1 };
    assert.deepEqual(decodeAll('client', frame(0xc1, hello), options), [
      start(1, true, 5, true),
      data(hello.toString('hex')),
      end(true),
    ]);
    assert.deepEqual(decodeAll('server', frame(0x42, hello, { mask: MASK }), options)[0], start(2, false, 5, true));
    // Continuation frames must not carry it, even within a compressed message.
    const sink = expectViolation('client', Buffer.concat([frame(0x41, hello), frame(0xc0, hello)]), 'RESERVED_BITS', 1002, options);
    assert.deepEqual(sink.normalized, [start(1, false, 5, true), data(hello.toString('hex')), end(false)]);
    // A continuation without RSV1 is fine and reports rsv1 false.
    assert.deepEqual(decodeAll('client', Buffer.concat([frame(0x41, hello), frame(0x80, hello)]), options)[3], start(0, true, 5));
    // Control frames never.
    for (const opcode of [8, 9, 10]) expectViolation('client', frame(0xc0 | opcode, Buffer.alloc(0)), 'RESERVED_BITS', 1002, options);
    // RSV2/RSV3 are still reserved.
    expectViolation('client', frame(0xa1, hello), 'RESERVED_BITS', 1002, options);
    expectViolation('client', frame(0x91, hello), 'RESERVED_BITS', 1002, options);
    expectViolation('client', frame(0xe1, hello), 'RESERVED_BITS', 1002, options);
    // allowedRsv covering all three bits accepts them (rsv1 reports only RSV1).
    assert.deepEqual(decodeAll('client', frame(0xb1, hello), { allowedRsv: RSV1 | RSV2 | RSV3 })[0], start(1, true, 5, false));
  });

  test('masking per role: a server rejects unmasked frames, a client rejects masked ones', () => {
    for (const b0 of [0x81, 0x82, 0x88, 0x89, 0x8a, 0x01]) {
      const sink = expectViolation('server', frame(b0, Buffer.alloc(2, 0x41)), 'MASK_REQUIRED', 1002);
      assert.deepEqual(sink.events, []);
      expectViolation('client', frame(b0, Buffer.alloc(2, 0x41), { mask: MASK }), 'MASK_FORBIDDEN', 1002);
    }
  });

  test('a control frame longer than 125 bytes', () => {
    for (const opcode of [8, 9, 10]) {
      expectViolation('client', frame(0x80 | opcode, Buffer.alloc(126)), 'CONTROL_FRAME_TOO_LONG', 1002);
      expectViolation('client', frame(0x80 | opcode, Buffer.alloc(65536)), 'CONTROL_FRAME_TOO_LONG', 1002);
      expectViolation('server', frame(0x80 | opcode, Buffer.alloc(126), { mask: MASK }), 'CONTROL_FRAME_TOO_LONG', 1002);
      // 125 is the limit, and a 125-byte control frame is fine.
      assert.deepEqual(decodeAll('client', frame(0x80 | opcode, Buffer.alloc(125, 1))), [
        control(opcode as ControlOpcode, '01'.repeat(125)),
      ]);
    }
  });

  test('a fragmented control frame', () => {
    for (const opcode of [8, 9, 10]) {
      expectViolation('client', frame(opcode, Buffer.alloc(0)), 'CONTROL_FRAME_FRAGMENTED', 1002);
      expectViolation('server', frame(opcode, hello, { mask: MASK }), 'CONTROL_FRAME_FRAGMENTED', 1002);
    }
  });

  test('a continuation frame without a message to continue', () => {
    expectViolation('client', frame(0x80, hello), 'UNEXPECTED_CONTINUATION', 1002);
    expectViolation('client', frame(0x00, hello), 'UNEXPECTED_CONTINUATION', 1002);
    expectViolation('server', frame(0x80, hello, { mask: MASK }), 'UNEXPECTED_CONTINUATION', 1002);
    // Also right after a message that has ended.
    const sink = expectViolation('client', Buffer.concat([frame(0x01, hello), frame(0x80, hello), frame(0x80, hello)]), 'UNEXPECTED_CONTINUATION', 1002);
    assert.equal(sink.normalized.length, 6);
  });

  test('a new text or binary frame inside a fragmented message', () => {
    for (const first of [0x01, 0x02]) {
      for (const second of [0x01, 0x02, 0x81, 0x82]) {
        const sink = expectViolation('client', Buffer.concat([frame(first, hello), frame(second, hello)]), 'EXPECTED_CONTINUATION', 1002);
        assert.deepEqual(sink.normalized, [start(first, false, 5), data(hello.toString('hex')), end(false)]);
      }
    }
    // Still inside the message after a non-final continuation.
    expectViolation('client', Buffer.concat([frame(0x01, hello), frame(0x00, hello), frame(0x81, hello)]), 'EXPECTED_CONTINUATION', 1002);
  });

  test('control frames interleaved inside a fragmented message are fine', () => {
    const bytes = Buffer.concat([
      frame(0x01, Buffer.from('Hel'), { mask: MASK }),
      frame(0x89, Buffer.from('p1'), { mask: MASK }),
      frame(0x00, Buffer.from('l'), { mask: MASK }),
      frame(0x8a, Buffer.alloc(0), { mask: MASK }),
      frame(0x89, Buffer.from('p2'), { mask: MASK }),
      frame(0x80, Buffer.from('o'), { mask: MASK }),
      frame(0x88, fromHex('03e8'), { mask: MASK }),
    ]);
    assert.deepEqual(decodeAll('server', bytes), [
      start(1, false, 3),
      data(Buffer.from('Hel').toString('hex')),
      end(false),
      control(9, Buffer.from('p1').toString('hex')),
      start(0, false, 1),
      data('6c'),
      end(false),
      control(10, ''),
      control(9, Buffer.from('p2').toString('hex')),
      start(0, true, 1),
      data('6f'),
      end(true),
      control(8, '03e8'),
    ]);
  });
});

describe('FrameDecoder: maxPayload', () => {
  test('a single frame over the limit fails with 1009 from its header, before any payload', () => {
    for (const n of [101, 126, 65536]) {
      const bytes = frame(0x82, Buffer.alloc(n, 0x55), { mask: MASK });
      const sink = expectViolation('server', bytes, 'MESSAGE_TOO_BIG', 1009, { maxPayload: 100 });
      assert.deepEqual(sink.events, []);
      // Only the header is needed: feeding the header alone (without mask key or payload) fails.
      const headerLength = n < 126 ? 2 : n < 65536 ? 4 : 10;
      const { d, sink: s2 } = decoder('server', { maxPayload: 100 });
      assert.throws(() => d.push(Buffer.from(bytes.subarray(0, headerLength))), { code: 'MESSAGE_TOO_BIG' });
      assert.equal(s2.payloadBytes, 0);
    }
    // Exactly at the limit is fine.
    assert.deepEqual(decodeAll('server', frame(0x82, Buffer.alloc(100), { mask: MASK }), { maxPayload: 100 })[0], start(2, true, 100));
  });

  test('the sum of fragments over the limit fails at the header of the fragment that crosses it', () => {
    const bytes = Buffer.concat([
      frame(0x01, Buffer.alloc(60, 0x61), { mask: MASK }),
      frame(0x89, Buffer.alloc(50, 0x62), { mask: MASK }), // control frames do not count
      frame(0x00, Buffer.alloc(40, 0x63), { mask: MASK }),
      frame(0x80, Buffer.alloc(1, 0x64), { mask: MASK }),
    ]);
    const sink = expectViolation('server', bytes, 'MESSAGE_TOO_BIG', 1009, { maxPayload: 100 });
    assert.deepEqual(sink.normalized, [
      start(1, false, 60),
      data('61'.repeat(60)),
      end(false),
      control(9, '62'.repeat(50)),
      start(0, false, 40),
      data('63'.repeat(40)),
      end(false),
    ]);
    assert.equal(sink.payloadBytes, 100); // nothing of the fragment that crossed the limit
    expectViolationBytewise('server', bytes, 'MESSAGE_TOO_BIG', { maxPayload: 100 });
    // The same message with a 100-byte limit on 100 bytes passes; a new message starts from zero.
    const ok = Buffer.concat([
      frame(0x01, Buffer.alloc(60), { mask: MASK }),
      frame(0x80, Buffer.alloc(40), { mask: MASK }),
      frame(0x82, Buffer.alloc(100), { mask: MASK }),
    ]);
    assert.equal(decodeAll('server', ok, { maxPayload: 100 }).length, 9);
  });

  test('control frames are not subject to maxPayload', () => {
    assert.deepEqual(decodeAll('client', frame(0x89, Buffer.alloc(125, 7)), { maxPayload: 10 }), [control(9, '07'.repeat(125))]);
  });
});

describe('FrameDecoder: chunking', () => {
  // A mixed server-side stream: every header form, fragments, interleaved control frames.
  const keys = [fromHex('37fa213d'), fromHex('00000000'), fromHex('ffffffff'), fromHex('01020304')];
  const mixedFrames: Buffer[] = [
    frame(0x81, Buffer.from('Hello'), { mask: keys[0] }),
    frame(0x01, Buffer.from('frag-'), { mask: keys[1] }),
    frame(0x89, Buffer.from('ping!'), { mask: keys[2] }),
    frame(0x00, Buffer.alloc(0), { mask: keys[3] }),
    frame(0x8a, Buffer.alloc(0), { mask: keys[0] }),
    frame(0x80, Buffer.from('mented'), { mask: keys[1] }),
    frame(0x82, seq(130, (i) => i), { mask: keys[2] }),
    frame(0x82, Buffer.alloc(0), { mask: keys[3] }),
    frame(0x89, seq(125, (i) => 255 - i), { mask: keys[0] }),
    frame(0x88, fromHex('03e8') , { mask: keys[1] }),
  ];
  const stream = Buffer.concat(mixedFrames);

  function decodeChunks(bytes: Buffer, cuts: readonly number[]): SinkEvent[] {
    const { d, sink } = decoder('server');
    let from = 0;
    for (const to of [...cuts, bytes.length]) {
      d.push(Buffer.from(bytes.subarray(from, to)));
      from = to;
    }
    return sink.normalized;
  }

  const reference = decodeChunks(stream, []);

  test('the whole stream decodes to the expected frames', () => {
    assert.deepEqual(reference.filter((e) => e.kind !== 'data'), [
      start(1, true, 5),
      end(true),
      start(1, false, 5),
      end(false),
      control(9, Buffer.from('ping!').toString('hex')),
      start(0, false, 0),
      end(false),
      control(10, ''),
      start(0, true, 6),
      end(true),
      start(2, true, 130),
      end(true),
      start(2, true, 0),
      end(true),
      control(9, seq(125, (i) => 255 - i).toString('hex')),
      control(8, '03e8'),
    ]);
    assert.deepEqual(
      reference.filter((e) => e.kind === 'data'),
      [
        data(Buffer.from('Hello').toString('hex')),
        data(Buffer.from('frag-').toString('hex')),
        data(Buffer.from('mented').toString('hex')),
        data(seq(130, (i) => i).toString('hex')),
      ],
    );
  });

  test('every single split point produces the same frames', () => {
    for (let s = 0; s <= stream.length; s++) assert.deepEqual(decodeChunks(stream, [s]), reference, `split at ${s}`);
  });

  test('every pair of split points in the first 80 bytes produces the same frames', () => {
    for (let s = 0; s <= 80; s++) {
      for (let t = s; t <= 80; t++) assert.deepEqual(decodeChunks(stream, [s, t]), reference, `splits at ${s}, ${t}`);
    }
  });

  test('one byte at a time produces the same frames, and payload arrives byte by byte', () => {
    const cuts = Array.from({ length: stream.length - 1 }, (_, i) => i + 1);
    assert.deepEqual(decodeChunks(stream, cuts), reference);
    const { d, sink } = decoder('server');
    for (let i = 0; i < stream.length; i++) d.push(Buffer.from(stream.subarray(i, i + 1)));
    const pieces = sink.events.filter((e) => e.kind === 'data');
    assert.ok(pieces.every((e) => e.kind === 'data' && e.hex.length === 2));
    assert.equal(pieces.length, 5 + 5 + 6 + 130);
  });

  test('a 64 KiB masked frame split anywhere in its header, mask key or payload', () => {
    const payload = seq(70000, (i) => (i * 31) & 0xff);
    const bytes = Buffer.concat([frame(0x82, payload, { mask: keys[0] }), frame(0x89, hello, { mask: keys[1] })]);
    const expected = [start(2, true, 70000), data(payload.toString('hex')), end(true), control(9, hello.toString('hex'))];
    for (const s of [1, 2, 3, 5, 9, 10, 11, 13, 14, 15, 17, 1000, 70013, 70014, 70015, 70016, 70019]) {
      assert.deepEqual(decodeChunks(bytes, [s]), expected, `split at ${s}`);
    }
    const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    assert.deepEqual(decodeChunks(bytes, cuts), expected);
  });

  test('a control frame split across chunks is delivered whole', () => {
    const bytes = frame(0x89, Buffer.from('0123456789'), { mask: keys[0] });
    for (let s = 1; s < bytes.length; s++) {
      for (let t = s; t < bytes.length; t++) {
        const { d, sink } = decoder('server');
        d.push(Buffer.from(bytes.subarray(0, s)));
        d.push(Buffer.from(bytes.subarray(s, t)));
        if (t < bytes.length) assert.deepEqual(sink.events, [], `splits ${s},${t}`);
        d.push(Buffer.from(bytes.subarray(t)));
        assert.deepEqual(sink.events, [control(9, Buffer.from('0123456789').toString('hex'))]);
      }
    }
  });

  test('stop() makes the decoder ignore further input', () => {
    const { d, sink } = decoder('client');
    d.push(fromHex('81 05 48 65'));
    d.stop();
    assert.equal(d.stopped, true);
    d.push(fromHex('6c 6c 6f 81 00'));
    assert.deepEqual(sink.events, [start(1, true, 5), data('4865')]);
  });

  test('a sink that throws stops the decoder; the error propagates unchanged', () => {
    const boom = new Error('boom');
    let calls = 0;
    const d = new FrameDecoder(
      {
        onDataFrameStart: () => {},
        onDataPayload: () => {
          calls++;
          throw boom;
        },
        onDataFrameEnd: () => {},
        onControlFrame: () => {},
      },
      { role: 'client', maxPayload: 0 },
    );
    assert.throws(() => d.push(fromHex('81 05 48 65 6c 6c 6f')), (e: unknown) => e === boom);
    assert.equal(d.stopped, true);
    d.push(fromHex('81 05 48 65 6c 6c 6f'));
    assert.equal(calls, 1);
  });
});
