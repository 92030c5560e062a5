import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { isValidUtf8, Utf8Validator } from './utf8.js';
import { unicodeString } from '../../test/support/arbitraries.js';

// ---------------------------------------------------------------------------------------
// Oracle, independent of the implementation: WHATWG's fatal decoder for whole inputs, and
// the set of every proper prefix of every scalar value's encoding for unfinished inputs.
// ---------------------------------------------------------------------------------------

const fatalDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function strictlyValid(bytes: Uint8Array): boolean {
  try {
    fatalDecoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

/**
 * Every proper prefix of the UTF-8 encoding of some Unicode scalar value. The last byte of
 * an encoding carries the low 6 bits, so stepping code points by 64 reaches every prefix.
 */
const PROPER_PREFIXES: ReadonlySet<string> = (() => {
  const set = new Set<string>();
  for (let cp = 0x80; cp <= 0x10ffff; cp += 64) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const encoded = Buffer.from(String.fromCodePoint(cp), 'utf8');
    for (let k = 1; k < encoded.length; k++) set.add(encoded.subarray(0, k).toString('hex'));
  }
  return set;
})();

/** Whether some continuation could make `bytes` valid UTF-8. */
function viable(bytes: Uint8Array): boolean {
  for (let tail = 0; tail <= Math.min(3, bytes.length); tail++) {
    const head = bytes.subarray(0, bytes.length - tail);
    if (tail > 0 && !PROPER_PREFIXES.has(hex(bytes.subarray(bytes.length - tail)))) continue;
    if (strictlyValid(head)) return true;
  }
  return false;
}

/** Index of the first byte after which `bytes` cannot be valid, or -1. Viability is prefix-closed. */
function firstInvalidIndex(bytes: Uint8Array): number {
  if (viable(bytes)) return -1;
  let lo = 0; // bytes[0, lo) is viable
  let hi = bytes.length; // bytes[0, hi) is not
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (viable(bytes.subarray(0, mid))) lo = mid;
    else hi = mid;
  }
  return hi - 1;
}

/** Feeds one byte at a time; returns the index where feed() first returned false, or -1. */
function bytewiseFailIndex(bytes: Uint8Array): number {
  const v = new Utf8Validator();
  for (let i = 0; i < bytes.length; i++) {
    if (!v.feed(bytes, i, i + 1)) return i;
  }
  return -1;
}

/** Feeds `bytes` in pieces cut at `cuts`; returns each feed()'s result and the final `complete`. */
function feedPieces(bytes: Uint8Array, cuts: readonly number[]): { results: boolean[]; complete: boolean } {
  const v = new Utf8Validator();
  const results: boolean[] = [];
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    results.push(v.feed(bytes, from, to));
    from = to;
  }
  return { results, complete: v.complete };
}

/** What feedPieces must return according to the oracle (fail-fast at the piece level). */
function expectedPieces(
  bytes: Uint8Array,
  cuts: readonly number[],
  bad = firstInvalidIndex(bytes),
): { results: boolean[]; complete: boolean } {
  const results = [...cuts, bytes.length].map((to) => bad === -1 || bad >= to);
  return { results, complete: bad === -1 && strictlyValid(bytes) };
}

// ---------------------------------------------------------------------------------------

const VALID_TEXTS = [
  '',
  'Hello, world',
  'héllo wörld',
  'ダイヤモンド',
  '😀🎉🌍',
  '\u0000\u007f\u0080\u07ff\u0800\ufffd\uffff',
  '\ud7ff\ue000\u{10000}\u{10ffff}',
  '\ufeffBOM first',
  'κόσμε',
];

/** [description, bytes, index of the first byte after which the input cannot be valid] */
const INVALID: ReadonlyArray<readonly [string, string, number]> = [
  ['overlong 2-byte NUL C0 80', 'c0 80', 0],
  ['overlong 2-byte C1 BF', 'c1 bf', 0],
  ['overlong 3-byte E0 80 80', 'e0 80 80', 1],
  ['overlong 3-byte E0 9F BF', 'e0 9f bf', 1],
  ['overlong 4-byte F0 80 80 80', 'f0 80 80 80', 1],
  ['overlong 4-byte F0 8F BF BF', 'f0 8f bf bf', 1],
  ['surrogate U+D800 ED A0 80', 'ed a0 80', 1],
  ['surrogate U+DFFF ED BF BF', 'ed bf bf', 1],
  ['above U+10FFFF F4 90 80 80', 'f4 90 80 80', 1],
  ['F5 lead', 'f5 80 80 80', 0],
  ['F7 lead', 'f7 bf bf bf', 0],
  ['F8 lead', 'f8 88 80 80 80', 0],
  ['FC lead', 'fc 84 80 80 80 80', 0],
  ['FE', 'fe', 0],
  ['FF', 'ff', 0],
  ['lone continuation 80', '80', 0],
  ['lone continuation BF', 'bf', 0],
  ['continuation after ASCII', '61 62 80', 2],
  ['extra continuation after a 2-byte character', 'c3 a9 a9', 2],
  ['ASCII where a continuation is due (2-byte)', 'c3 28', 1],
  ['ASCII where a continuation is due (3-byte, second)', 'e2 28 a1', 1],
  ['ASCII where a continuation is due (3-byte, third)', 'e2 82 28', 2],
  ['ASCII where a continuation is due (4-byte, fourth)', 'f0 9f 98 41', 3],
  ['lead where a continuation is due', 'e2 c3 a9', 1],
  ['valid prefix then surrogate', '68 c3 a9 ed b0 80', 4],
  ['valid prefix then F4 90', '41 42 43 f4 90 80 80', 4],
];

const TRUNCATED: ReadonlyArray<readonly [string, string]> = [
  ['2-byte lead at the end', '61 c3'],
  ['3-byte sequence missing one byte', '61 e2 82'],
  ['3-byte sequence missing two bytes', 'e2'],
  ['4-byte sequence missing one byte', 'f0 9f 98'],
  ['4-byte sequence missing three bytes', 'f4'],
  ['E0 with its narrowed second byte', 'e0 a0'],
  ['ED with its narrowed second byte', 'ed 9f'],
];

describe('the oracle', () => {
  test('agrees with the hand-computed failure indices and truncations', () => {
    for (const [name, bytes, index] of INVALID) assert.equal(firstInvalidIndex(fromHex(bytes)), index, name);
    for (const [name, bytes] of TRUNCATED) {
      assert.equal(firstInvalidIndex(fromHex(bytes)), -1, name);
      assert.equal(strictlyValid(fromHex(bytes)), false, name);
    }
    for (const text of VALID_TEXTS) assert.equal(firstInvalidIndex(utf8(text)), -1);
  });
});

describe('Utf8Validator', () => {
  test('accepts valid texts, whole and byte by byte', () => {
    for (const text of VALID_TEXTS) {
      const bytes = utf8(text);
      const whole = new Utf8Validator();
      assert.equal(whole.feed(bytes), true, text);
      assert.equal(whole.complete, true, text);
      assert.equal(bytewiseFailIndex(bytes), -1, text);
      assert.equal(isValidUtf8(bytes), true, text);
    }
  });

  test('accepts every boundary code point', () => {
    for (const cp of [0x0, 0x7f, 0x80, 0x7ff, 0x800, 0xfff, 0x1000, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x3ffff, 0x40000, 0xfffff, 0x100000, 0x10ffff]) {
      const bytes = utf8(String.fromCodePoint(cp));
      const v = new Utf8Validator();
      assert.equal(v.feed(bytes), true, cp.toString(16));
      assert.equal(v.complete, true, cp.toString(16));
    }
  });

  for (const [name, bytesHex, index] of INVALID) {
    test(`rejects ${name} (${bytesHex}) at byte ${index}`, () => {
      const bytes = fromHex(bytesHex);
      // Whole.
      const whole = new Utf8Validator();
      assert.equal(whole.feed(bytes), false);
      assert.equal(whole.complete, false);
      assert.equal(isValidUtf8(bytes), false);
      // One byte at a time: true for every byte before `index`, false exactly at it.
      const v = new Utf8Validator();
      for (let i = 0; i < index; i++) assert.equal(v.feed(bytes, i, i + 1), true, `byte ${i}`);
      assert.equal(v.feed(bytes, index, index + 1), false, `byte ${index}`);
      assert.equal(v.complete, false);
      // Once failed, it stays failed, even on harmless input.
      assert.equal(v.feed(utf8('ok')), false);
      assert.equal(v.complete, false);
    });
  }

  for (const [name, bytesHex] of TRUNCATED) {
    test(`a truncated sequence at the end (${name}) is not complete`, () => {
      const bytes = fromHex(bytesHex);
      const v = new Utf8Validator();
      assert.equal(v.feed(bytes), true);
      assert.equal(v.complete, false);
      assert.equal(isValidUtf8(bytes), false);
    });
  }

  test('invalid inputs padded past the native threshold fail, whole and byte by byte at the right index', () => {
    for (const [name, bytesHex, index] of INVALID) {
      for (const pad of [0, 63, 64, 100]) {
        const bytes = new Uint8Array([...utf8('x'.repeat(pad)), ...fromHex(bytesHex), ...utf8('y'.repeat(80))]);
        const v = new Utf8Validator();
        assert.equal(v.feed(bytes), false, `${name} pad=${pad}`);
        assert.equal(isValidUtf8(bytes), false, `${name} pad=${pad}`);
        assert.equal(bytewiseFailIndex(bytes), pad + index, `${name} pad=${pad}`);
      }
    }
    for (const [name, bytesHex] of TRUNCATED) {
      const bytes = new Uint8Array([...utf8('z'.repeat(70)), ...fromHex(bytesHex)]);
      const v = new Utf8Validator();
      assert.equal(v.feed(bytes), true, name);
      assert.equal(v.complete, false, name);
      assert.equal(isValidUtf8(bytes), false, name);
    }
  });

  test('complete is true exactly at code point boundaries when fed byte by byte', () => {
    const text = 'aé€😀b\u{10ffff}\u0800';
    const bytes = utf8(text);
    const boundaries = new Set<number>([0]);
    let offset = 0;
    for (const ch of text) {
      offset += Buffer.byteLength(ch);
      boundaries.add(offset);
    }
    const v = new Utf8Validator();
    assert.equal(v.complete, true);
    for (let i = 0; i < bytes.length; i++) {
      assert.equal(v.feed(bytes, i, i + 1), true);
      assert.equal(v.complete, boundaries.has(i + 1), `after byte ${i}`);
    }
  });

  test('every split of a valid multibyte text into two and three pieces is accepted', () => {
    const bytes = utf8('aé€😀\u{10ffff}ü\u0800z😀');
    for (let s = 0; s <= bytes.length; s++) {
      const { results, complete } = feedPieces(bytes, [s]);
      assert.deepEqual(results, [true, true], `split ${s}`);
      assert.equal(complete, true);
      for (let t = s; t <= bytes.length; t++) {
        const r = feedPieces(bytes, [s, t]);
        assert.deepEqual(r.results, [true, true, true], `splits ${s},${t}`);
        assert.equal(r.complete, true);
      }
    }
  });

  test('feed honours start and end (bytes outside the range are not read)', () => {
    const bytes = fromHex('ff 61 c3 a9 ff');
    const v = new Utf8Validator();
    assert.equal(v.feed(bytes, 1, 4), true);
    assert.equal(v.complete, true);
    const w = new Utf8Validator();
    assert.equal(w.feed(bytes, 1, 3), true);
    assert.equal(w.complete, false);
    assert.equal(w.feed(bytes, 3, 4), true);
    assert.equal(w.complete, true);
  });

  test('reset() clears a failure and an unfinished character', () => {
    const v = new Utf8Validator();
    assert.equal(v.feed(fromHex('ff')), false);
    v.reset();
    assert.equal(v.complete, true);
    assert.equal(v.feed(fromHex('e2 82')), true);
    assert.equal(v.complete, false);
    v.reset();
    assert.equal(v.complete, true);
    // After reset the pending continuation bytes are forgotten: a lone continuation is invalid.
    assert.equal(v.feed(fromHex('ac')), false);
  });

  describe('native fast path (pieces of 64 bytes or more)', () => {
    const bases = [
      'The quick brown fox jumps over the lazy dog, ünd dann 😀 wieder: ',
      'ascii ascii ascii ascii ascii ascii ascii ascii ascii ascii ascii ascii ascii',
      '€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€',
      '😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀',
      'ééééééééééééééééééééééééééééééééééééééé',
    ].map((s) => utf8(s + s));

    test('a character straddling the piece end is accepted at every split', () => {
      for (const bytes of bases) {
        assert.ok(bytes.length >= 128);
        for (let s = 0; s <= bytes.length; s++) {
          const r = feedPieces(bytes, [s]);
          assert.deepEqual(r.results, [true, true], `split ${s}`);
          assert.equal(r.complete, true, `split ${s}`);
        }
        // A short first piece that leaves a character pending, then a long rest.
        for (let s = 1; s <= 4; s++) {
          for (let t = bytes.length - 4; t <= bytes.length; t++) {
            const r = feedPieces(bytes, [s, t]);
            assert.deepEqual(r.results, [true, true, true], `splits ${s},${t}`);
          }
        }
      }
    });

    test('agrees with the byte-wise oracle when one byte is corrupted, at every split', () => {
      const replacements = [0x80, 0xa0, 0xbf, 0xc0, 0xc1, 0xc3, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x28];
      for (const base of bases) {
        for (let m = 0; m < base.length; m += 7) {
          for (const r of replacements) {
            const bytes = base.slice();
            bytes[m] = r;
            const bad = firstInvalidIndex(bytes);
            const splits = [0, 1, 2, 3, m - 1, m, m + 1, m + 2, 62, 63, 64, 65, 66, 67, bytes.length - 3, bytes.length - 1];
            for (const s of splits) {
              if (s < 0 || s > bytes.length) continue;
              assert.deepEqual(
                feedPieces(bytes, [s]),
                expectedPieces(bytes, [s], bad),
                `base ${hex(base).slice(0, 16)}… byte ${m}=${r.toString(16)} split ${s}`,
              );
            }
            assert.equal(isValidUtf8(bytes), strictlyValid(bytes));
          }
        }
      }
    });

    test('an invalid character straddling the piece end is caught by the byte-wise tail', () => {
      const head = utf8('a'.repeat(70));
      for (const tail of ['e0 80', 'ed a0', 'f4 90', 'f0 80', 'c3 28', 'e2 82 28']) {
        const bytes = new Uint8Array([...head, ...fromHex(tail)]);
        const v = new Utf8Validator();
        assert.equal(v.feed(bytes), false, tail);
        assert.equal(bytewiseFailIndex(bytes), firstInvalidIndex(bytes), tail);
      }
      for (const [tail, rest] of [
        ['e0 a0', '80'],
        ['ed 9f', 'bf'],
        ['f4 8f', 'bf bf'],
        ['f0 90 80', '80'],
        ['c3', 'a9'],
      ] as const) {
        const bytes = new Uint8Array([...head, ...fromHex(tail)]);
        const v = new Utf8Validator();
        assert.equal(v.feed(bytes), true, tail);
        assert.equal(v.complete, false, tail);
        assert.equal(v.feed(fromHex(rest)), true, tail);
        assert.equal(v.complete, true, tail);
      }
    });
  });

  describe('properties (fast-check)', () => {
    const interesting = fc.constantFrom(
      'c0 80', 'c1', 'e0 80', 'e0 a0 80', 'ed a0 80', 'ed 9f bf', 'f0 80', 'f0 90 80 80', 'f4 8f bf bf',
      'f4 90', 'f5', 'ff', '80', 'bf', 'c3', 'e2 82', 'f0 9f 98',
    ).map(fromHex);
    const chunk = fc.oneof(
      { weight: 4, arbitrary: unicodeString(8).map(utf8) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 8, maxLength: 70 }).map(utf8) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 6 }) },
      { weight: 1, arbitrary: interesting },
    );
    const utf8ish = fc.array(chunk, { maxLength: 40 }).map((parts) => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    });
    const withCuts = (bytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<{ bytes: Uint8Array; cuts: number[] }> =>
      bytes.chain((b) =>
        fc
          .uniqueArray(fc.integer({ min: 0, max: b.length }), { maxLength: 6 })
          .map((cuts) => ({ bytes: b, cuts: cuts.sort((x, y) => x - y) })),
      );

    test('any split agrees with TextDecoder(fatal) and fails at the piece holding the first bad byte', () => {
      fc.assert(
        fc.property(withCuts(fc.oneof(utf8ish, fc.uint8Array({ maxLength: 200 }))), ({ bytes, cuts }) => {
          const actual = feedPieces(bytes, cuts);
          const valid = strictlyValid(bytes);
          assert.equal(actual.results.every(Boolean) && actual.complete, valid);
          assert.deepEqual(actual, expectedPieces(bytes, cuts));
          assert.equal(isValidUtf8(bytes), valid);
        }),
        { numRuns: 500 },
      );
    });

    test('fed byte by byte, feed() fails exactly at the first byte that makes the input invalid', () => {
      fc.assert(
        fc.property(utf8ish, (bytes) => {
          assert.equal(bytewiseFailIndex(bytes), firstInvalidIndex(bytes));
        }),
        { numRuns: 300 },
      );
    });
  });
});
