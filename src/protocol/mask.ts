/**
 * RFC 6455 §5.3 masking. XOR is its own inverse, so one routine masks and unmasks.
 *
 * Payloads of a few dozen bytes or more are processed a 32-bit word at a time: the
 * leading bytes up to a 4-byte aligned address go one by one, the aligned middle goes
 * through a Uint32Array view with the mask rotated to match, and the tail goes byte-wise.
 */

const WORD_THRESHOLD = 64;
const rotated = new Uint8Array(4);
const rotated32 = new Uint32Array(rotated.buffer);

/**
 * XORs `data[start, end)` in place with `mask` (4 bytes), where `data[start]` is masked
 * with `mask[phase & 3]`. Returns the phase that follows `end`.
 */
export function maskInPlace(
  data: Uint8Array,
  mask: Uint8Array,
  start = 0,
  end = data.length,
  phase = 0,
): number {
  let i = start;
  if (end - start >= WORD_THRESHOLD) {
    const misalignment = (data.byteOffset + i) & 3;
    const lead = misalignment === 0 ? 0 : 4 - misalignment;
    for (const stop = i + lead; i < stop; i++) data[i] ^= mask[phase++ & 3]!;
    const words = (end - i) >>> 2;
    const p = phase & 3;
    rotated[0] = mask[p]!;
    rotated[1] = mask[(p + 1) & 3]!;
    rotated[2] = mask[(p + 2) & 3]!;
    rotated[3] = mask[(p + 3) & 3]!;
    const key = rotated32[0]!;
    const view = new Uint32Array(data.buffer, data.byteOffset + i, words);
    let w = 0;
    for (const unrolled = words & ~3; w < unrolled; w += 4) {
      view[w] ^= key;
      view[w + 1] ^= key;
      view[w + 2] ^= key;
      view[w + 3] ^= key;
    }
    for (; w < words; w++) view[w] ^= key;
    i += words << 2;
    // A whole number of words leaves the phase where it was.
  }
  for (; i < end; i++) data[i] ^= mask[phase++ & 3]!;
  return phase & 3;
}
