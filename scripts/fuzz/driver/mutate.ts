// Byte-level mutation shared by every target (structure-aware mutations live with each
// target, which knows its format).
import { Buffer } from 'node:buffer';
import { concatBuffers } from './input.js';
import type { Rng } from './rng.js';

const INTERESTING_BYTES = [0x00, 0x01, 0x7e, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x0d, 0x0a, 0x20, 0x22, 0x5c, 0x2c, 0x3b, 0x3d];
export const INTERESTING_NUMBERS: readonly bigint[] = [
  0n, 1n, 125n, 126n, 127n, 128n, 255n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n, 0x7fffffffn, 0x80000000n, 0xffffffffn,
  0x100000000n, 0x1fffffffffffffn, 0x20000000000000n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn,
];

/** Byte-level mutations, stacked `rounds` times; the input is never modified. */
export function mutateBytes(rng: Rng, input: Buffer, pool: readonly Buffer[], dict: readonly Buffer[], rounds: number, maxLength = 1 << 20): Buffer {
  let data = input;
  for (let round = 0; round < rounds; round++) {
    const length = data.length;
    const at = rng.int(length + 1);
    switch (rng.int(12)) {
      case 0: {
        if (length === 0) break;
        data = Buffer.from(data);
        const i = rng.int(length);
        data[i] = (data[i] as number) ^ (1 << rng.int(8));
        break;
      }
      case 1: {
        if (length === 0) break;
        data = Buffer.from(data);
        data[rng.int(length)] = rng.pick(INTERESTING_BYTES);
        break;
      }
      case 2: {
        if (length === 0) break;
        data = Buffer.from(data);
        data[rng.int(length)] = rng.int(256);
        break;
      }
      case 3:
        data = data.subarray(0, at);
        break;
      case 4: {
        const n = 1 + rng.size(Math.max(0, Math.min(64, length - at) - 1));
        data = concatBuffers([data.subarray(0, at), data.subarray(at + n)]);
        break;
      }
      case 5: {
        // A repeated fragment.
        const n = 1 + rng.size(Math.max(0, Math.min(512, length - at) - 1));
        const piece = data.subarray(at, at + n);
        const times = 1 + rng.size(31);
        data = concatBuffers([data.subarray(0, at), ...Array<Buffer>(times).fill(piece), data.subarray(at)]);
        break;
      }
      case 6:
        data = concatBuffers([data.subarray(0, at), rng.bytes(1 + rng.size(63)), data.subarray(at)]);
        break;
      case 7: {
        const other = rng.pick(pool);
        const from = rng.int(other.length + 1);
        const piece = other.subarray(from, from + 1 + rng.size(Math.max(0, other.length - from - 1)));
        data = concatBuffers([data.subarray(0, at), piece, data.subarray(at)]);
        break;
      }
      case 8: {
        const other = rng.pick(pool);
        data = concatBuffers([data.subarray(0, at), other.subarray(rng.int(other.length + 1))]);
        break;
      }
      case 9:
        data = concatBuffers([data.subarray(0, at), rng.pick(dict), data.subarray(at)]);
        break;
      case 10: {
        const token = rng.pick(dict);
        data = concatBuffers([data.subarray(0, at), token, data.subarray(at + token.length)]);
        break;
      }
      case 11: {
        // An interesting number written big-endian over whatever was there (length fields).
        const width = rng.pick([1, 2, 4, 8]);
        if (length < width) break;
        const pos = rng.int(length - width + 1);
        const value = rng.pick(INTERESTING_NUMBERS) & ((1n << BigInt(8 * width)) - 1n);
        data = Buffer.from(data);
        for (let i = 0; i < width; i++) data[pos + i] = Number((value >> BigInt(8 * (width - 1 - i))) & 0xffn);
        break;
      }
    }
    if (data.length > maxLength) data = data.subarray(0, maxLength);
  }
  return data;
}
