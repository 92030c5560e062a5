/**
 * A small, deliberately independent reference for RFC 6455 framing, used to build benchmark
 * inputs and to check what the codecs under test produce. It shares no code with
 * src/protocol, so a bug there cannot hide itself by also being in the reference.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';

export const OPCODE_TEXT = 0x1;
export const OPCODE_BINARY = 0x2;

/** Header size of a frame with a payload of `length` bytes. */
export function referenceHeaderSize(length: number, masked: boolean): number {
  const base = length <= 125 ? 2 : length <= 0xffff ? 4 : 10;
  return base + (masked ? 4 : 0);
}

/** Writes a final frame (FIN set) with `payload` at `offset` of `target`; returns the end offset. */
export function writeReferenceFrame(
  target: Buffer,
  offset: number,
  opcode: number,
  payload: Uint8Array,
  maskKey: Uint8Array | null,
): number {
  const length = payload.length;
  let at = offset;
  target[at++] = 0x80 | opcode;
  const maskBit = maskKey === null ? 0 : 0x80;
  if (length <= 125) {
    target[at++] = maskBit | length;
  } else if (length <= 0xffff) {
    target[at++] = maskBit | 126;
    target[at++] = length >>> 8;
    target[at++] = length & 0xff;
  } else {
    target[at++] = maskBit | 127;
    const high = Math.floor(length / 2 ** 32);
    const low = length >>> 0;
    for (let shift = 24; shift >= 0; shift -= 8) target[at++] = (high >>> shift) & 0xff;
    for (let shift = 24; shift >= 0; shift -= 8) target[at++] = (low >>> shift) & 0xff;
  }
  if (maskKey === null) {
    target.set(payload, at);
    return at + length;
  }
  target.set(maskKey.subarray(0, 4), at);
  at += 4;
  for (let i = 0; i < length; i++) target[at + i] = payload[i]! ^ maskKey[i & 3]!;
  return at + length;
}

export interface ParsedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** The masking key (a copy), or null. */
  maskKey: Buffer | null;
  /** Unmasked payload (a copy when the frame was masked). */
  payload: Buffer;
}

/** Parses a buffer that holds whole frames back to back; throws on anything malformed or left over. */
export function parseReferenceFrames(wire: Buffer): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  let at = 0;
  while (at < wire.length) {
    if (wire.length - at < 2) throw new Error(`truncated header at ${at}`);
    const b0 = wire[at]!;
    const b1 = wire[at + 1]!;
    at += 2;
    let length = b1 & 0x7f;
    if (length === 126) {
      length = wire.readUInt16BE(at);
      if (length <= 125) throw new Error(`non-minimal 16-bit length at ${at}`);
      at += 2;
    } else if (length === 127) {
      const high = wire.readUInt32BE(at);
      const low = wire.readUInt32BE(at + 4);
      length = high * 2 ** 32 + low;
      if (length <= 0xffff) throw new Error(`non-minimal 64-bit length at ${at}`);
      at += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let key: Buffer | null = null;
    if (masked) {
      key = wire.subarray(at, at + 4);
      at += 4;
    }
    if (wire.length - at < length) throw new Error(`truncated payload at ${at}`);
    let payload = wire.subarray(at, at + length);
    if (key !== null) {
      const clear = Buffer.allocUnsafe(length);
      for (let i = 0; i < length; i++) clear[i] = payload[i]! ^ key[i & 3]!;
      payload = clear;
    }
    at += length;
    frames.push({
      fin: (b0 & 0x80) !== 0,
      rsv: (b0 >>> 4) & 7,
      opcode: b0 & 0x0f,
      masked,
      maskKey: key === null ? null : Buffer.from(key),
      payload,
    });
  }
  return frames;
}

/** Random bytes (deterministic content does not matter for masking or copying speed). */
export function binaryPayload(size: number): Buffer {
  return randomBytes(size);
}

/**
 * Valid UTF-8 text of exactly `size` bytes, mostly ASCII with some 2-, 3- and 4-byte
 * characters, like chat or JSON traffic in several languages. It starts with an ASCII byte.
 */
export function textPayload(size: number): string {
  const pattern =
    '{"user":"José","text":"naïve café — 5 € 😀","tags":["zürich","東京","ok"],"n":12345} ';
  let text = '';
  let bytes = 0;
  const patternBytes = Buffer.byteLength(pattern);
  while (bytes + patternBytes <= size) {
    text += pattern;
    bytes += patternBytes;
  }
  // Fill the rest character by character, ending with ASCII when a wide one does not fit.
  for (const char of pattern) {
    const width = Buffer.byteLength(char);
    if (bytes + width > size) break;
    text += char;
    bytes += width;
  }
  text += 'x'.repeat(size - bytes);
  // A flat, sequential string (not a rope of concatenations), as one read from JSON would be.
  const flat = Buffer.from(text).toString('utf8');
  if (Buffer.byteLength(flat) !== size) throw new Error('textPayload: size mismatch');
  return flat;
}
