import { Buffer } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import { maskInPlace } from './mask.js';

/** How one frame is encoded: fragmenting, compression bit and masking. All default to off except `fin`. */
export interface FrameOptions {
  /** Last frame of its message (default true). */
  fin?: boolean;
  /** Sets RSV1, the permessage-deflate "compressed" bit (first frame of a message only). */
  rsv1?: boolean;
  /**
   * Masks the frame, as every client frame must be: `true` for a fresh random key, or the
   * 4-byte key itself (tests and vectors).
   */
  mask?: boolean | Uint8Array;
}

const RANDOM_POOL_SIZE = 8192;
const randomPool = Buffer.allocUnsafe(RANDOM_POOL_SIZE);
let randomOffset = RANDOM_POOL_SIZE;

/** Below this size a masked payload is copied and masked in one byte-wise pass. */
const SMALL_MASKED = 64;

function headerSize(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/** Writes the frame header at the start of `target`; returns where the payload begins. */
function writeHeader(
  target: Buffer,
  opcode: number,
  length: number,
  fin: boolean,
  rsv1: boolean,
  mask: boolean | Uint8Array,
): number {
  target[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = mask === false ? 0 : 0x80;
  let offset: number;
  if (length < 126) {
    target[1] = maskBit | length;
    offset = 2;
  } else if (length < 0x10000) {
    target[1] = maskBit | 126;
    target[2] = length >>> 8;
    target[3] = length & 0xff;
    offset = 4;
  } else {
    target[1] = maskBit | 127;
    target.writeUInt32BE(Math.floor(length / 0x100000000), 2);
    target.writeUInt32BE(length >>> 0, 6);
    offset = 10;
  }
  if (mask === true) {
    // A key from a pool of cryptographically strong random bytes, refilled as it runs out.
    if (randomOffset === RANDOM_POOL_SIZE) {
      randomFillSync(randomPool);
      randomOffset = 0;
    }
    target[offset] = randomPool[randomOffset]!;
    target[offset + 1] = randomPool[randomOffset + 1]!;
    target[offset + 2] = randomPool[randomOffset + 2]!;
    target[offset + 3] = randomPool[randomOffset + 3]!;
    randomOffset += 4;
    offset += 4;
  } else if (mask !== false) {
    target[offset] = mask[0]!;
    target[offset + 1] = mask[1]!;
    target[offset + 2] = mask[2]!;
    target[offset + 3] = mask[3]!;
    offset += 4;
  }
  return offset;
}

/** The header of a frame whose payload is written separately (unmasked frames only). */
export function encodeFrameHeader(opcode: number, length: number, fin = true, rsv1 = false): Buffer {
  const header = Buffer.allocUnsafe(headerSize(length, false));
  writeHeader(header, opcode, length, fin, rsv1, false);
  return header;
}

/**
 * Encodes one frame as buffers to write in order. An unmasked frame is its header followed
 * by the caller's payload, uncopied (the writer joins small pieces into one write). A masked
 * frame is one buffer holding a masked copy: the caller's payload is never modified.
 */
export function encodeFrame(opcode: number, payload: Uint8Array, options: FrameOptions = {}): Buffer[] {
  const fin = options.fin ?? true;
  const rsv1 = options.rsv1 ?? false;
  const mask = options.mask ?? false;
  const length = payload.length;
  if (mask === false) {
    const header = encodeFrameHeader(opcode, length, fin, rsv1);
    if (length === 0) return [header];
    return [header, Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, length)];
  }
  return [encodeFrameBuffer(opcode, payload, options)];
}

/**
 * Encodes one frame as one buffer holding a copy of the payload (masked, for a client): for
 * a masked frame, and for a small payload, whose copy costs less than writing two pieces.
 * The caller's payload is never modified.
 */
export function encodeFrameBuffer(opcode: number, payload: Uint8Array, options: FrameOptions = {}): Buffer {
  const mask = options.mask ?? false;
  const length = payload.length;
  const frame = Buffer.allocUnsafe(headerSize(length, mask !== false) + length);
  const offset = writeHeader(frame, opcode, length, options.fin ?? true, options.rsv1 ?? false, mask);
  if (mask === false) {
    frame.set(payload, offset);
  } else if (length < SMALL_MASKED) {
    const k0 = frame[offset - 4]!;
    const k1 = frame[offset - 3]!;
    const k2 = frame[offset - 2]!;
    const k3 = frame[offset - 1]!;
    for (let i = 0; i < length; i++) {
      const p = i & 3;
      frame[offset + i] = payload[i]! ^ (p === 0 ? k0 : p === 1 ? k1 : p === 2 ? k2 : k3);
    }
  } else {
    frame.set(payload, offset);
    maskInPlace(frame, frame, offset, frame.length, 0, offset - 4);
  }
  return frame;
}

/** Encodes a text frame from a string: {@link encodeFrame} of its UTF-8 bytes. */
export function encodeTextFrame(opcode: number, text: string, options: FrameOptions = {}): Buffer[] {
  return encodeFrame(opcode, Buffer.from(text), options);
}

/**
 * Encodes a text frame from a string as one buffer: the header, then the text written into
 * it as UTF-8 (masked there, for a client). One allocation per frame, where encoding the
 * text apart and writing the header beside it took three and a join.
 */
export function encodeTextFrameBuffer(opcode: number, text: string, options: FrameOptions = {}): Buffer {
  const mask = options.mask ?? false;
  const length = Buffer.byteLength(text);
  const frame = Buffer.allocUnsafe(headerSize(length, mask !== false) + length);
  const offset = writeHeader(frame, opcode, length, options.fin ?? true, options.rsv1 ?? false, mask);
  if (length > 0) {
    frame.write(text, offset);
    if (mask !== false) maskInPlace(frame, frame, offset, frame.length, 0, offset - 4);
  }
  return frame;
}
