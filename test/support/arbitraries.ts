// fast-check generators shared by the property tests.
import fc from 'fast-check';

/**
 * Strings of arbitrary Unicode scalar values (no lone surrogates), weighted evenly across
 * the 1- to 4-byte UTF-8 forms so that multibyte characters are common.
 */
export const unicodeString = (maxLength: number): fc.Arbitrary<string> =>
  fc
    .array(
      fc.oneof(
        fc.integer({ min: 0, max: 0x7f }),
        fc.integer({ min: 0x80, max: 0x7ff }),
        fc.integer({ min: 0x800, max: 0xf7ff }).map((c) => (c >= 0xd800 ? c + 0x800 : c)),
        fc.integer({ min: 0x10000, max: 0x10ffff }),
      ),
      { maxLength },
    )
    .map((codePoints) => String.fromCodePoint(...codePoints));
