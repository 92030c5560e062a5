import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { maskInPlace } from './mask.js';

/** The obvious byte-wise masking of RFC 6455 §5.3, written independently of the implementation. */
function referenceMask(data: Uint8Array, mask: Uint8Array, start: number, end: number, phase: number): number {
  for (let i = start; i < end; i++) data[i] = data[i]! ^ mask[(phase + (i - start)) % 4]!;
  return (phase + (end - start)) % 4;
}

/** Deterministic pseudo-random bytes (xorshift32), so failures are reproducible. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

const MASKS: readonly Uint8Array[] = [
  Uint8Array.of(0x37, 0xfa, 0x21, 0x3d),
  Uint8Array.of(0x01, 0x02, 0x04, 0x80),
  Uint8Array.of(0xff, 0x00, 0xaa, 0x55),
];

describe('maskInPlace', () => {
  test('RFC 6455 §5.7 example: "Hello" masked with 37 fa 21 3d', () => {
    const data = new Uint8Array(Buffer.from('Hello'));
    const phase = maskInPlace(data, MASKS[0]!);
    assert.deepEqual([...data], [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    assert.equal(phase, 1);
  });

  test('matches the byte-wise reference for lengths 0..300, every byteOffset and start 0..7, every phase', () => {
    const source = pseudoRandomBytes(8 + 8 + 300 + 8, 0x9e3779b9);
    const backing = new ArrayBuffer(source.length + 16);
    const expectedBacking = new ArrayBuffer(source.length + 16);
    for (const mask of MASKS) {
      for (let byteOffset = 0; byteOffset < 8; byteOffset++) {
        const view = new Uint8Array(backing, byteOffset, source.length);
        const expected = new Uint8Array(expectedBacking, byteOffset, source.length);
        for (let start = 0; start < 8; start++) {
          for (let length = 0; length <= 300; length++) {
            const end = start + length;
            for (let phase = 0; phase < 4; phase++) {
              view.set(source);
              expected.set(source);
              const expectedPhase = referenceMask(expected, mask, start, end, phase);
              const actualPhase = maskInPlace(view, mask, start, end, phase);
              const diff = firstDifference(view, expected);
              if (diff !== -1 || actualPhase !== expectedPhase) {
                assert.fail(
                  `byteOffset=${byteOffset} start=${start} length=${length} phase=${phase}: ` +
                    `first differing byte ${diff}, phase ${actualPhase} (expected ${expectedPhase})`,
                );
              }
            }
          }
        }
      }
    }
  });

  test('phase values outside 0..3 are taken modulo 4', () => {
    const source = pseudoRandomBytes(100, 7);
    for (const length of [3, 100]) {
      for (const phase of [4, 5, 6, 7, 13]) {
        const a = source.slice(0, length);
        const b = source.slice(0, length);
        const pa = maskInPlace(a, MASKS[0]!, 0, length, phase);
        const pb = referenceMask(b, MASKS[0]!, 0, length, phase % 4);
        assert.deepEqual(a, b);
        assert.equal(pa, pb);
      }
    }
  });

  test('default arguments mask the whole array from phase 0', () => {
    for (const length of [0, 1, 5, 63, 64, 65, 200]) {
      const source = pseudoRandomBytes(length, length + 1);
      const a = source.slice();
      const b = source.slice();
      assert.equal(maskInPlace(a, MASKS[1]!), referenceMask(b, MASKS[1]!, 0, length, 0));
      assert.deepEqual(a, b);
    }
  });

  test('bytes outside [start, end) are never touched', () => {
    const source = pseudoRandomBytes(400, 99);
    for (const [start, end] of [
      [1, 2],
      [3, 70],
      [5, 395],
      [0, 399],
      [1, 400],
    ] as const) {
      const data = source.slice();
      maskInPlace(data, MASKS[2]!, start, end, 3);
      assert.deepEqual(data.subarray(0, start), source.subarray(0, start));
      assert.deepEqual(data.subarray(end), source.subarray(end));
    }
  });

  for (const size of [64 * 1024, 1024 * 1024 + 3]) {
    test(`large payload of ${size} bytes matches the reference at every alignment and phase`, () => {
      const source = pseudoRandomBytes(size + 8, size);
      const backing = new ArrayBuffer(size + 16);
      for (const byteOffset of [0, 1, 2, 3, 5]) {
        for (const phase of [0, 1, 2, 3]) {
          const view = new Uint8Array(backing, byteOffset, size + 8);
          view.set(source);
          const expected = source.slice();
          const start = byteOffset % 3;
          const end = start + size;
          const expectedPhase = referenceMask(expected, MASKS[0]!, start, end, phase);
          assert.equal(maskInPlace(view, MASKS[0]!, start, end, phase), expectedPhase);
          assert.equal(firstDifference(view, expected), -1, `byteOffset=${byteOffset} phase=${phase}`);
        }
      }
    });
  }

  test('masking twice restores the input (small, word-sized and large inputs)', () => {
    for (const length of [0, 1, 2, 3, 4, 7, 63, 64, 65, 127, 128, 1000, 65536, 1024 * 1024 + 3]) {
      const source = pseudoRandomBytes(length + 3, length + 17);
      for (const offset of [0, 1, 3]) {
        const data = source.slice();
        const phase = offset % 4;
        const mid = maskInPlace(data, MASKS[0]!, offset, offset + length, phase);
        if (length >= 4) assert.notDeepEqual(data, source);
        const after = maskInPlace(data, MASKS[0]!, offset, offset + length, phase);
        assert.equal(mid, after);
        assert.equal(firstDifference(data, source), -1, `length=${length} offset=${offset}`);
      }
    }
  });

  test('masking a payload in pieces, carrying the returned phase, equals masking it whole', () => {
    const source = pseudoRandomBytes(1000, 4242);
    const whole = source.slice();
    maskInPlace(whole, MASKS[0]!);
    for (const cuts of [
      [1, 2, 3, 500],
      [63, 64, 129, 131, 999],
      [7, 77, 777],
      [333, 666],
    ]) {
      const pieces = source.slice();
      let phase = 0;
      let from = 0;
      for (const to of [...cuts, source.length]) {
        phase = maskInPlace(pieces, MASKS[0]!, from, to, phase);
        from = to;
      }
      assert.equal(phase, source.length % 4);
      assert.deepEqual(pieces, whole);
    }
  });

  test('returned phase is (phase + length) mod 4', () => {
    const data = new Uint8Array(300);
    for (let length = 0; length <= 300; length += 1) {
      for (let phase = 0; phase < 4; phase++) {
        assert.equal(maskInPlace(data, MASKS[1]!, 0, length, phase), (phase + length) % 4);
      }
    }
  });

  test('the mask array itself is not modified', () => {
    const mask = Uint8Array.of(1, 2, 3, 4);
    maskInPlace(pseudoRandomBytes(1000, 5), mask, 0, 1000, 2);
    assert.deepEqual([...mask], [1, 2, 3, 4]);
  });
});
