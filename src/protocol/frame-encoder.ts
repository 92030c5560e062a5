import { Buffer } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import { maskInPlace } from './mask.js';

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

/**
 * Unmasked payloads up to this size are copied behind their header, so a frame is one
 * buffer; larger ones are passed as a second buffer, uncopied, for a vectored write.
 */
export const MERGE_LIMIT = 4096;

const RANDOM_POOL_SIZE = 8192;
const randomPool = Buffer.allocUnsafe(RANDOM_POOL_SIZE);
let randomOffset = RANDOM_POOL_SIZE;

/** Fills 4 bytes of `target` at `offset` with a mask key from a cryptographically strong source. */
function writeMaskKey(target: Buffer, offset: number): void {
  if (randomOffset === RANDOM_POOL_SIZE) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  randomPool.copy(target, offset, randomOffset, randomOffset + 4);
  randomOffset += 4;
}

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
    target.writeUInt16BE(length, 2);
    offset = 4;
  } else {
    target[1] = maskBit | 127;
    target.writeUInt32BE(Math.floor(length / 0x100000000), 2);
    target.writeUInt32BE(length >>> 0, 6);
    offset = 10;
  }
  if (mask === true) {
    writeMaskKey(target, offset);
    offset += 4;
  } else if (mask !== false) {
    target.set(mask.subarray(0, 4), offset);
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
 * Encodes one frame as one or two buffers to write in order. A masked frame is always one
 * buffer holding a masked copy (the caller's payload is never modified); an unmasked frame
 * above {@link MERGE_LIMIT} is its header followed by the caller's payload, uncopied.
 */
export function encodeFrame(opcode: number, payload: Uint8Array, options: FrameOptions = {}): Buffer[] {
  const fin = options.fin ?? true;
  const rsv1 = options.rsv1 ?? false;
  const mask = options.mask ?? false;
  const length = payload.length;
  const masked = mask !== false;
  if (!masked && length > MERGE_LIMIT) {
    const header = encodeFrameHeader(opcode, length, fin, rsv1);
    return [header, Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, length)];
  }
  const frame = Buffer.allocUnsafe(headerSize(length, masked) + length);
  const offset = writeHeader(frame, opcode, length, fin, rsv1, mask);
  frame.set(payload, offset);
  if (masked) maskInPlace(frame, frame.subarray(offset - 4, offset), offset, frame.length, 0);
  return [frame];
}

/**
 * Encodes a text frame straight from a string: the UTF-8 bytes are written behind the
 * header in one allocation, without an intermediate buffer.
 */
export function encodeTextFrame(opcode: number, text: string, options: FrameOptions = {}): Buffer[] {
  const fin = options.fin ?? true;
  const mask = options.mask ?? false;
  const masked = mask !== false;
  const length = Buffer.byteLength(text);
  if (!masked && length > MERGE_LIMIT) {
    return [encodeFrameHeader(opcode, length, fin, options.rsv1 ?? false), Buffer.from(text)];
  }
  const frame = Buffer.allocUnsafe(headerSize(length, masked) + length);
  const offset = writeHeader(frame, opcode, length, fin, options.rsv1 ?? false, mask);
  frame.write(text, offset);
  if (masked) maskInPlace(frame, frame.subarray(offset - 4, offset), offset, frame.length, 0);
  return [frame];
}
