/**
 * RFC 6455 §5.3 masking. XOR is its own inverse, so one routine masks and unmasks.
 *
 * Payloads of a few dozen bytes or more are processed a 32-bit word at a time: the
 * leading bytes up to a 4-byte aligned address go one by one, the aligned middle goes
 * through a Uint32Array view with the key rotated to match, and the tail goes byte-wise.
 */

const WORD_THRESHOLD = 64;
const rotated = new Uint8Array(4);
const rotated32 = new Uint32Array(rotated.buffer);

/**
 * XORs `data[start, end)` in place with the 4-byte key at `key[keyOffset]`, where
 * `data[start]` is masked with key byte `phase & 3`. Returns the phase that follows `end`.
 */
export function maskInPlace(
  data: Uint8Array,
  key: Uint8Array,
  start = 0,
  end = data.length,
  phase = 0,
  keyOffset = 0,
): number {
  return maskWith(data, key[keyOffset]!, key[keyOffset + 1]!, key[keyOffset + 2]!, key[keyOffset + 3]!, start, end, phase);
}

/** {@link maskInPlace} with the key given as its four bytes (`k0` first), for a caller that keeps them as numbers. */
export function maskWith(data: Uint8Array, k0: number, k1: number, k2: number, k3: number, start: number, end: number, phase: number): number {
  let i = start;
  if (end - start >= WORD_THRESHOLD) {
    // Bytes up to an aligned address, so the middle can be viewed as 32-bit words.
    const misalignment = (data.byteOffset + i) & 3;
    if (misalignment !== 0) {
      for (const stop = i + 4 - misalignment; i < stop; i++, phase++) {
        const p = phase & 3;
        data[i] ^= p === 0 ? k0 : p === 1 ? k1 : p === 2 ? k2 : k3;
      }
    }
    const p = phase & 3;
    rotated[0] = p === 0 ? k0 : p === 1 ? k1 : p === 2 ? k2 : k3;
    rotated[1] = p === 0 ? k1 : p === 1 ? k2 : p === 2 ? k3 : k0;
    rotated[2] = p === 0 ? k2 : p === 1 ? k3 : p === 2 ? k0 : k1;
    rotated[3] = p === 0 ? k3 : p === 1 ? k0 : p === 2 ? k1 : k2;
    const word = rotated32[0]!;
    const words = (end - i) >>> 2;
    const view = new Uint32Array(data.buffer, data.byteOffset + i, words);
    let w = 0;
    for (const unrolled = words & ~3; w < unrolled; w += 4) {
      view[w] ^= word;
      view[w + 1] ^= word;
      view[w + 2] ^= word;
      view[w + 3] ^= word;
    }
    for (; w < words; w++) view[w] ^= word;
    // Whole words leave the phase where it was.
    i += words << 2;
  }
  // Byte-wise: four at a time from a key-aligned phase, then the rest.
  for (; i < end && (phase & 3) !== 0; i++, phase++) {
    const p = phase & 3;
    data[i] ^= p === 1 ? k1 : p === 2 ? k2 : k3;
  }
  for (const stop = end - 3; i < stop; i += 4) {
    data[i] ^= k0;
    data[i + 1] ^= k1;
    data[i + 2] ^= k2;
    data[i + 3] ^= k3;
  }
  for (; i < end; i++, phase++) {
    const p = phase & 3;
    data[i] ^= p === 0 ? k0 : p === 1 ? k1 : p === 2 ? k2 : k3;
  }
  return phase & 3;
}
