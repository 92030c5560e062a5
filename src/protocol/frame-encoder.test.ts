import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { encodeFrame, encodeFrameBuffer, encodeFrameHeader, encodeTextFrame, encodeTextFrameBuffer } from './frame-encoder.js';
import { Opcode } from './opcode.js';
import { unicodeString } from '../../test/support/arbitraries.js';
import { fromHex, seq, xorMask } from '../../test/support/bytes.js';

const joined = (frames: Buffer[]): string => Buffer.concat(frames).toString('hex');
const KEY = fromHex('37 fa 21 3d');
/** Payload lengths at the edges of the 7-, 16- and 64-bit length forms, and their length bytes (unmasked). */
const LENGTHS: ReadonlyArray<readonly [number, string]> = [
  [0, '00'],
  [1, '01'],
  [125, '7d'],
  [126, '7e007e'],
  [127, '7e007f'],
  [65535, '7effff'],
  [65536, '7f0000000000010000'],
  [65537, '7f0000000000010001'],
];

/** Parses one encoded frame (independently of the decoder). */
function parse(bytes: Buffer): { b0: number; masked: boolean; length: number; key: Buffer | null; payload: Buffer } {
  const b0 = bytes[0]!;
  const masked = (bytes[1]! & 0x80) !== 0;
  let length = bytes[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    length = bytes.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    length = Number(bytes.readBigUInt64BE(2));
    offset = 10;
  }
  const key = masked ? bytes.subarray(offset, offset + 4) : null;
  if (masked) offset += 4;
  const raw = bytes.subarray(offset);
  assert.equal(raw.length, length, 'payload length matches the header');
  return { b0, masked, length, key, payload: key ? xorMask(raw, key) : Buffer.from(raw) };
}

describe('encodeFrame: RFC 6455 §5.7 examples', () => {
  const hello = Buffer.from('Hello');

  test('unmasked "Hello"', () => {
    assert.equal(joined(encodeFrame(Opcode.Text, hello)), '810548656c6c6f');
  });

  test('masked "Hello" with key 37 fa 21 3d', () => {
    assert.equal(joined(encodeFrame(Opcode.Text, hello, { mask: KEY })), '818537fa213d7f9f4d5158');
  });

  test('fragmented "Hel" + "lo"', () => {
    assert.equal(joined(encodeFrame(Opcode.Text, Buffer.from('Hel'), { fin: false })), '010348656c');
    assert.equal(joined(encodeFrame(Opcode.Continuation, Buffer.from('lo'))), '80026c6f');
  });

  test('unmasked ping and masked pong', () => {
    assert.equal(joined(encodeFrame(Opcode.Ping, hello)), '890548656c6c6f');
    assert.equal(joined(encodeFrame(Opcode.Pong, hello, { mask: KEY })), '8a8537fa213d7f9f4d5158');
  });

  test('256 bytes of binary data', () => {
    const payload = seq(256, (i) => i);
    const frames = encodeFrame(Opcode.Binary, payload);
    assert.equal(frames.length, 2);
    assert.equal(frames[0]!.toString('hex'), '827e0100');
    assert.equal(frames[1], payload);
  });

  test('64 KiB of binary data: header and the caller\'s payload, uncopied', () => {
    const payload = Buffer.alloc(65536, 0x5a);
    const frames = encodeFrame(Opcode.Binary, payload);
    assert.equal(frames.length, 2);
    assert.equal(frames[0]!.toString('hex'), '827f0000000000010000');
    assert.equal(frames[1], payload);
  });

  test('the key can be given as a longer Uint8Array; only its first 4 bytes are used', () => {
    assert.equal(
      joined(encodeFrame(Opcode.Text, hello, { mask: new Uint8Array([0x37, 0xfa, 0x21, 0x3d, 0x99, 0x98]) })),
      '818537fa213d7f9f4d5158',
    );
  });
});

describe('encodeFrame: header fields', () => {
  test('fin and rsv1 bits', () => {
    const p = Buffer.from('x');
    assert.equal(encodeFrame(Opcode.Text, p)[0]![0], 0x81);
    assert.equal(encodeFrame(Opcode.Text, p, { fin: false })[0]![0], 0x01);
    assert.equal(encodeFrame(Opcode.Text, p, { rsv1: true })[0]![0], 0xc1);
    assert.equal(encodeFrame(Opcode.Binary, p, { rsv1: true, fin: false })[0]![0], 0x42);
    assert.equal(encodeFrame(Opcode.Continuation, p, { fin: true })[0]![0], 0x80);
    assert.equal(encodeFrame(Opcode.Close, Buffer.alloc(0))[0]!.toString('hex'), '8800');
    assert.equal(encodeFrame(Opcode.Close, Buffer.alloc(0), { mask: KEY })[0]!.toString('hex'), '888037fa213d');
  });

  test('7/16/64-bit length boundaries, unmasked and masked', () => {
    for (const [n, lengthHex] of LENGTHS) {
      const payload = seq(n, (i) => i & 0xff);
      const plain = Buffer.concat(encodeFrame(Opcode.Binary, payload));
      const headerLength = lengthHex.length / 2 + 1;
      assert.equal(plain.subarray(0, headerLength).toString('hex'), '82' + lengthHex, `n=${n}`);
      assert.equal(plain.length, headerLength + n);
      assert.deepEqual(plain.subarray(headerLength), payload);

      const masked = Buffer.concat(encodeFrame(Opcode.Binary, payload, { mask: KEY }));
      const maskedLengthHex = ((parseInt(lengthHex.slice(0, 2), 16) | 0x80).toString(16)) + lengthHex.slice(2);
      assert.equal(masked.subarray(0, headerLength + 4).toString('hex'), '82' + maskedLengthHex + '37fa213d', `masked n=${n}`);
      assert.equal(masked.length, headerLength + 4 + n);
      assert.deepEqual(xorMask(masked.subarray(headerLength + 4), KEY), payload);
    }
  });

  test('encodeFrameHeader: every length form, up to 2^53 - 1', () => {
    // Past 65537, lengths too large to build a payload for.
    const huge: ReadonlyArray<readonly [number, string]> = [
      [2 ** 32 - 1, '7f00000000ffffffff'],
      [2 ** 32, '7f0000000100000000'],
      [2 ** 40 + 5, '7f0000010000000005'],
      [Number.MAX_SAFE_INTEGER, '7f001fffffffffffff'],
    ];
    for (const [n, lengthHex] of [...LENGTHS, ...huge]) {
      assert.equal(encodeFrameHeader(Opcode.Binary, n).toString('hex'), '82' + lengthHex, `n=${n}`);
    }
    assert.equal(encodeFrameHeader(Opcode.Text, 3, false).toString('hex'), '0103');
    assert.equal(encodeFrameHeader(Opcode.Text, 3, true, true).toString('hex'), 'c103');
    assert.equal(encodeFrameHeader(Opcode.Continuation, 300, false).toString('hex'), '007e012c');
  });
});

describe('encodeFrame: unmasked payloads are never copied', () => {
  test('an unmasked frame is its header followed by the caller\'s payload, for every size', () => {
    for (const n of [1, 125, 126, 4096, 65535, 65536, 100000]) {
      const payload = Buffer.alloc(n, 0x42);
      const frames = encodeFrame(Opcode.Binary, payload, { fin: false, rsv1: true });
      assert.equal(frames.length, 2, `n=${n}`);
      assert.deepEqual(frames[0], encodeFrameHeader(Opcode.Binary, n, false, true));
      assert.equal(frames[1], payload);
    }
  });

  test('an empty unmasked frame is its header alone', () => {
    assert.deepEqual(encodeFrame(Opcode.Binary, Buffer.alloc(0)).map((b) => b.toString('hex')), ['8200']);
  });

  test('a plain Uint8Array is wrapped without copying', () => {
    const backing = new Uint8Array(300);
    const payload = backing.subarray(7, 217);
    const frames = encodeFrame(Opcode.Binary, payload);
    assert.equal(frames.length, 2);
    assert.ok(Buffer.isBuffer(frames[1]));
    assert.equal(frames[1]!.buffer, backing.buffer);
    assert.equal(frames[1]!.byteOffset, 7);
    assert.equal(frames[1]!.length, 210);
  });

  test('masked frames are always one buffer, whatever the size', () => {
    for (const n of [0, 63, 64, 4097, 70000]) {
      const payload = seq(n, (i) => i & 0xff);
      const frames = encodeFrame(Opcode.Binary, payload, { mask: KEY });
      assert.equal(frames.length, 1);
      assert.deepEqual(parse(frames[0]!).payload, payload);
    }
  });

  test('encodeTextFrame sizes the frame by UTF-8 bytes, not string length', () => {
    const frames = encodeTextFrame(Opcode.Text, 'é'.repeat(2049));
    assert.equal(frames[0]!.toString('hex'), '817e1002');
    assert.equal(frames[1]!.toString(), 'é'.repeat(2049));
  });
});

describe('encodeFrame: masking', () => {
  test('random masks differ from frame to frame (also across the key pool refill)', () => {
    const keys = new Set<string>();
    const count = 5000;
    for (let i = 0; i < count; i++) {
      const frame = encodeFrame(Opcode.Binary, Buffer.from('abcd'), { mask: true })[0]!;
      assert.equal(frame[1], 0x84);
      const { key, payload } = parse(frame);
      assert.equal(payload.toString(), 'abcd');
      keys.add(key!.toString('hex'));
    }
    // 5000 random 32-bit keys collide with probability ~0.3%; allow a couple of collisions.
    assert.ok(keys.size >= count - 2, `only ${keys.size} distinct keys out of ${count}`);
    const text = new Set<string>();
    for (let i = 0; i < 200; i++) text.add(parse(encodeTextFrame(Opcode.Text, 'hi', { mask: true })[0]!).key!.toString('hex'));
    assert.ok(text.size >= 199);
  });

  test('the caller\'s payload is never modified when masking', () => {
    for (const n of [1, 5, 63, 64, 125, 126, 4097, 70000]) {
      const payload = seq(n, (i) => (i * 13) & 0xff);
      const copy = Buffer.from(payload);
      encodeFrame(Opcode.Binary, payload, { mask: true });
      encodeFrame(Opcode.Binary, payload, { mask: KEY });
      assert.deepEqual(payload, copy, `n=${n}`);
      const u8 = new Uint8Array(copy);
      encodeFrame(Opcode.Binary, u8, { mask: KEY });
      assert.deepEqual(Buffer.from(u8), copy);
    }
  });

  test('the caller\'s key is not modified', () => {
    const key = fromHex('37fa213d');
    encodeFrame(Opcode.Binary, Buffer.alloc(1000, 1), { mask: key });
    assert.equal(key.toString('hex'), '37fa213d');
  });

  test('a masked frame unmasks to its payload for every length 0..300', () => {
    for (let n = 0; n <= 300; n++) {
      const payload = seq(n, (i) => (i * 7 + n) & 0xff);
      const { masked, payload: decoded, length } = parse(encodeFrame(Opcode.Binary, payload, { mask: true })[0]!);
      assert.equal(masked, true);
      assert.equal(length, n);
      assert.deepEqual(decoded, payload);
    }
  });
});

describe('encodeTextFrame', () => {
  test('equals encodeFrame of the UTF-8 bytes for fixed examples', () => {
    const texts = ['', 'Hello', 'héllo wörld', '😀'.repeat(40), 'x'.repeat(125), 'y'.repeat(126), 'é'.repeat(40000), 'a\u0000b'];
    for (const text of texts) {
      const bytes = Buffer.from(text);
      for (const options of [{}, { fin: false }, { rsv1: true }, { mask: KEY }, { mask: KEY, fin: false, rsv1: true }]) {
        assert.equal(
          joined(encodeTextFrame(Opcode.Text, text, options)),
          joined(encodeFrame(Opcode.Text, bytes, options)),
          `${text.slice(0, 10)} ${JSON.stringify(options)}`,
        );
      }
      assert.equal(joined(encodeTextFrame(Opcode.Continuation, text)), joined(encodeFrame(Opcode.Continuation, bytes)));
      assert.equal(encodeTextFrame(Opcode.Text, text).length, encodeFrame(Opcode.Text, bytes).length);
    }
  });

  test('equals encodeFrame of the UTF-8 bytes (property)', () => {
    fc.assert(
      fc.property(
        unicodeString(100),
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.uint8Array({ minLength: 4, maxLength: 4 }), { nil: undefined }),
        (text, fin, rsv1, mask) => {
          const options = { fin, rsv1, mask };
          assert.equal(joined(encodeTextFrame(Opcode.Text, text, options)), joined(encodeFrame(Opcode.Text, Buffer.from(text), options)));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('one-buffer encodings (what a connection queues)', () => {
  test('encodeTextFrameBuffer is encodeTextFrame joined, for every option and size', () => {
    const texts = ['', 'Hello', 'héllo wörld', '😀'.repeat(40), 'x'.repeat(125), 'y'.repeat(126), 'é'.repeat(40000), 'z'.repeat(70000), 'a\u0000b', 'lone \uD800 surrogate'];
    for (const text of texts) {
      for (const options of [{}, { fin: false }, { rsv1: true }, { mask: KEY }, { mask: KEY, fin: false, rsv1: true }]) {
        const one = encodeTextFrameBuffer(Opcode.Text, text, options);
        assert.equal(one.toString('hex'), joined(encodeTextFrame(Opcode.Text, text, options)), `${text.slice(0, 10)} ${JSON.stringify(options)}`);
      }
    }
  });

  test('encodeTextFrameBuffer with a random mask unmasks to the text', () => {
    fc.assert(
      fc.property(unicodeString(100), (text) => {
        const { payload } = parse(encodeTextFrameBuffer(Opcode.Text, text, { mask: true }));
        assert.equal(Buffer.from(payload).toString(), text);
      }),
      { numRuns: 100 },
    );
  });

  test('encodeFrameBuffer is encodeFrame joined, and leaves the payload as it was', () => {
    for (const n of [0, 1, 63, 64, 125, 126, 511, 512, 4097, 70000]) {
      const payload = seq(n, (i) => (i * 7) & 0xff);
      const copy = Buffer.from(payload);
      for (const options of [{}, { fin: false, rsv1: true }, { mask: KEY }]) {
        const one = encodeFrameBuffer(Opcode.Binary, payload, options);
        assert.equal(one.toString('hex'), joined(encodeFrame(Opcode.Binary, payload, options)), `n=${n} ${JSON.stringify(options)}`);
        assert.ok(one.buffer !== payload.buffer || n === 0, 'a copy, not a view of the payload');
      }
      assert.deepEqual(Buffer.from(payload), copy);
    }
  });
});
