// Byte helpers the tests share: hex literals, patterned buffers, masking done the plain way
// (a reference for the optimised maskInPlace), and close payloads built by hand.
import { Buffer } from 'node:buffer';

/** The bytes of a hex string; whitespace between them is ignored ('81 05 48'). */
export function fromHex(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}

/** A Buffer of `n` bytes where byte i is `f(i) & 0xff`. */
export function seq(n: number, f: (i: number) => number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = f(i) & 0xff;
  return b;
}

/** `payload` XORed with the 4-byte `key` (masking and unmasking are the same), in a copy. */
export function xorMask(payload: Uint8Array, key: Uint8Array): Buffer {
  const out = Buffer.from(payload);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! ^ key[i % 4]!;
  return out;
}

/** A close frame's payload: the code, then the reason as UTF-8. */
export function closePayload(code: number, reason = ''): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
}
