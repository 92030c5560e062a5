/**
 * The fuzzing peer's own frame codec, independent of hotline's: an encoder that writes any
 * header (reserved opcodes, RSV bits, wrong masking, lying lengths) and a strict reader of
 * what the peer under test sends back.
 */
import { Buffer } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import type { FrameSpec, Payload } from './model.js';

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

const EMPTY = Buffer.alloc(0);

export function payloadLength(payload: Payload | undefined): number {
  return payload === undefined ? 0 : payload.length;
}

/** The bytes of a payload (a filled or patterned payload is allocated here). */
export function materialize(payload: Payload | undefined): Buffer {
  if (payload === undefined) return EMPTY;
  if (payload instanceof Uint8Array) {
    return Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  }
  if ('pattern' in payload) return patternBytes(payload.pattern, payload.seed, payload.length);
  return Buffer.alloc(payload.length, payload.fill);
}

/**
 * Patterned payloads recently made: a message is made when it is sent and again when its
 * echo is compared. Bounded by bytes, oldest out first. Callers must not modify them.
 */
const patternCache = new Map<string, Buffer>();
let patternCacheBytes = 0;
const PATTERN_CACHE_LIMIT = 64 * 1024 * 1024;

function patternBytes(pattern: 'text' | 'binary', seed: number, length: number): Buffer {
  const key = `${pattern}:${seed}:${length}`;
  const cached = patternCache.get(key);
  if (cached !== undefined) return cached;
  const bytes = generatePattern(pattern, seed, length);
  if (length > PATTERN_CACHE_LIMIT / 4) return bytes;
  patternCache.set(key, bytes);
  patternCacheBytes += length;
  for (const [oldest, buffer] of patternCache) {
    if (patternCacheBytes <= PATTERN_CACHE_LIMIT) break;
    patternCache.delete(oldest);
    patternCacheBytes -= buffer.length;
  }
  return bytes;
}

/** Whether two payloads hold the same bytes (a filled payload is compared without allocating it). */
export function payloadEquals(expected: Payload, actual: Uint8Array): boolean {
  if (expected.length !== actual.length) return false;
  const actualBuffer = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  if (expected instanceof Uint8Array) return actualBuffer.equals(expected);
  if ('pattern' in expected) return actualBuffer.equals(materialize(expected));
  const fill = expected.fill;
  for (let i = 0; i < actual.length; i++) if (actual[i] !== fill) return false;
  return true;
}

/** A 32-bit PRNG (mulberry32): the same seed gives the same bytes on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const WORDS = [
  'the', 'of', 'and', 'a', 'to', 'in', 'is', 'frame', 'message', 'window', 'deflate', 'context',
  'socket', 'server', 'client', 'payload', 'extension', 'offer', 'response', 'hotline', 'sliding',
  'compression', 'takeover', 'bits', 'octet', 'final', 'block', 'stored', 'huffman', 'literal',
  'distance', 'length', 'κόσμε', '日本語', 'ünïcödé', 'naïve', 'façade', '€', '😀', '𝄞', 'ß', 'ø',
].map((w) => Buffer.from(w, 'utf8'));

/**
 * `length` bytes of a deterministic pattern. Text: sentences of words (some multi-byte),
 * a third of them repeats of an earlier sentence (a recent one or any), padded with ASCII
 * letters to the exact length, so it is valid UTF-8. Binary: runs of random bytes, a third
 * of them copies of an earlier run (a recent one or any).
 */
export function generatePattern(pattern: 'text' | 'binary', seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  const next = prng(seed * 2654435761 + (pattern === 'text' ? 1 : 2));
  // Earlier sentences or runs, as [start, end) pairs.
  const starts: number[] = [];
  const ends: number[] = [];
  let pos = 0;
  while (pos < length) {
    const start = pos;
    if (starts.length > 0 && next() % 3 === 0) {
      // Half the repeats are of a recent run (within a window), half of any earlier one.
      const recent = Math.min(starts.length, 48);
      const i = next() % 2 === 0 ? starts.length - 1 - (next() % recent) : next() % starts.length;
      const from = starts[i]!;
      const to = Math.min(ends[i]!, from + (length - pos));
      if (pattern === 'text' && to < ends[i]!) break; // would cut a character: pad instead
      out.copyWithin(pos, from, to);
      pos += to - from;
    } else if (pattern === 'text') {
      const words = 4 + (next() % 12);
      for (let w = 0; w < words; w++) {
        const word = WORDS[next() % WORDS.length]!;
        if (pos + word.length + 1 > length) break;
        word.copy(out, pos);
        pos += word.length;
        out[pos++] = w === words - 1 ? 0x2e : 0x20;
      }
      if (pos === start) break;
    } else {
      const run = Math.min(4 + (next() % 60), length - pos);
      for (let k = 0; k < run; k += 4) {
        let r = next();
        for (let b = 0; b < 4 && k + b < run; b++, r >>>= 8) out[pos++] = r & 0xff;
      }
    }
    starts.push(start);
    ends.push(pos);
  }
  // Text: pad with ASCII letters (a word may not fit the last bytes).
  while (pos < length) out[pos++] = 0x61 + (next() % 26);
  return out;
}

/** A short human-readable form of some bytes: length, then text or hex of the start. */
export function describeBytes(bytes: Uint8Array, limit = 24): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const head = buf.subarray(0, limit);
  const more = buf.length > limit ? '…' : '';
  const printable = head.every((b) => b >= 0x20 && b < 0x7f);
  const shown = printable ? JSON.stringify(head.toString('latin1') + more) : `${head.toString('hex').replace(/(..)/g, '$1 ').trim()}${more}`;
  return `${buf.length} B ${shown}`;
}

export function describePayload(payload: Payload | undefined): string {
  if (payload === undefined) return '0 B';
  if (payload instanceof Uint8Array) return describeBytes(payload);
  if ('pattern' in payload) return `${payload.length} B of ${payload.pattern} pattern #${payload.seed}`;
  return `${payload.length} B of 0x${payload.fill.toString(16).padStart(2, '0')}`;
}

const OPCODE_NAMES: Readonly<Record<number, string>> = {
  0: 'continuation',
  1: 'text',
  2: 'binary',
  8: 'close',
  9: 'ping',
  10: 'pong',
};

export function opcodeName(opcode: number): string {
  return OPCODE_NAMES[opcode] ?? `reserved-0x${opcode.toString(16)}`;
}

export function describeFrame(frame: FrameSpec, defaultMasked: boolean): string {
  const fin = frame.fin ?? true;
  const rsv = frame.rsv ?? 0;
  const masked = frame.masked ?? defaultMasked;
  let s = `${opcodeName(frame.opcode)}(fin=${fin ? 1 : 0}`;
  if (rsv !== 0) s += ` rsv=${rsv}`;
  if (masked !== defaultMasked) s += masked ? ' MASKED' : ' UNMASKED';
  if (frame.declaredLength !== undefined) s += ` declared-length=${frame.declaredLength}`;
  return `${s} ${describePayload(frame.payload)})`;
}

function headerLength(length: number, masked: boolean, forceLong: boolean): number {
  const base = forceLong || length > 0xffff ? 10 : length > 125 ? 4 : 2;
  return base + (masked ? 4 : 0);
}

/** The size of a frame on the wire. */
export function encodedLength(frame: FrameSpec, defaultMasked: boolean): number {
  const length = frame.declaredLength ?? payloadLength(frame.payload);
  const masked = frame.masked ?? defaultMasked;
  return headerLength(length, masked, frame.declaredLength !== undefined) + payloadLength(frame.payload);
}

const maskPool = Buffer.alloc(4096);
let maskPoolOffset = maskPool.length;

function nextMaskKey(target: Buffer, offset: number): void {
  if (maskPoolOffset === maskPool.length) {
    randomFillSync(maskPool);
    maskPoolOffset = 0;
  }
  maskPool.copy(target, offset, maskPoolOffset, maskPoolOffset + 4);
  maskPoolOffset += 4;
}

/**
 * Writes one frame at `offset` in `target` (which must have room for
 * {@link encodedLength} bytes); the payload comes from `source[start, end)`.
 * Returns the offset after the frame.
 */
export function writeFrame(
  target: Buffer,
  offset: number,
  header: { opcode: number; fin: boolean; rsv: number; masked: boolean; declaredLength?: number },
  source: Buffer,
  start = 0,
  end = source.length,
): number {
  const length = end - start;
  const announced = header.declaredLength ?? length;
  target[offset] = (header.fin ? 0x80 : 0) | ((header.rsv & 0x7) << 4) | (header.opcode & 0xf);
  const maskBit = header.masked ? 0x80 : 0;
  let pos = offset + 2;
  if (header.declaredLength === undefined && announced <= 125) {
    target[offset + 1] = maskBit | announced;
  } else if (header.declaredLength === undefined && announced <= 0xffff) {
    target[offset + 1] = maskBit | 126;
    target.writeUInt16BE(announced, pos);
    pos += 2;
  } else {
    target[offset + 1] = maskBit | 127;
    target.writeUInt32BE(Math.floor(announced / 0x100000000), pos);
    target.writeUInt32BE(announced % 0x100000000, pos + 4);
    pos += 8;
  }
  if (!header.masked) {
    source.copy(target, pos, start, end);
    return pos + length;
  }
  nextMaskKey(target, pos);
  const k0 = target[pos]!;
  const k1 = target[pos + 1]!;
  const k2 = target[pos + 2]!;
  const k3 = target[pos + 3]!;
  pos += 4;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    target[pos + i] = source[start + i]! ^ k0;
    target[pos + i + 1] = source[start + i + 1]! ^ k1;
    target[pos + i + 2] = source[start + i + 2]! ^ k2;
    target[pos + i + 3] = source[start + i + 3]! ^ k3;
  }
  const key = [k0, k1, k2, k3];
  for (; i < length; i++) target[pos + i] = source[start + i]! ^ key[i & 3]!;
  return pos + length;
}

/** Encodes frames back to back into one buffer. */
export function encodeFrames(frames: readonly FrameSpec[], defaultMasked: boolean): Buffer {
  let total = 0;
  for (const frame of frames) total += encodedLength(frame, defaultMasked);
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const frame of frames) {
    offset = writeFrame(
      out,
      offset,
      {
        opcode: frame.opcode,
        fin: frame.fin ?? true,
        rsv: frame.rsv ?? 0,
        masked: frame.masked ?? defaultMasked,
        declaredLength: frame.declaredLength,
      },
      materialize(frame.payload),
    );
  }
  return out;
}

/** Encodes one message as frames of at most `fragmentSize` payload bytes, into one buffer. */
export function encodeFragmented(opcode: number, payload: Payload, fragmentSize: number, masked: boolean): Buffer {
  const source = materialize(payload);
  const count = Math.max(1, Math.ceil(source.length / fragmentSize));
  let total = 0;
  for (let i = 0; i < count; i++) {
    const length = Math.min(fragmentSize, source.length - i * fragmentSize);
    total += headerLength(length, masked, false) + length;
  }
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const start = i * fragmentSize;
    const end = Math.min(source.length, start + fragmentSize);
    offset = writeFrame(
      out,
      offset,
      { opcode: i === 0 ? opcode : OP_CONTINUATION, fin: i === count - 1, rsv: 0, masked },
      source,
      start,
      end,
    );
  }
  return out;
}

/** A frame as read from the peer, unmasked. */
export interface ReadFrame {
  readonly fin: boolean;
  readonly rsv: number;
  readonly opcode: number;
  readonly masked: boolean;
  readonly payload: Buffer;
}

/** A queue of received chunks that hands out exact byte counts without re-copying what it keeps. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private headOffset = 0;
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  byteAt(index: number): number {
    let i = index + this.headOffset;
    for (const chunk of this.chunks) {
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
    }
    throw new RangeError('byteAt past the end');
  }

  take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.chunks[0]!;
    if (first.length - this.headOffset >= n) {
      const out = first.subarray(this.headOffset, this.headOffset + n);
      this.advance(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const available = chunk.length - this.headOffset;
      const step = Math.min(available, n - filled);
      chunk.copy(out, filled, this.headOffset, this.headOffset + step);
      filled += step;
      this.advance(step);
    }
    return out;
  }

  private advance(n: number): void {
    this.length -= n;
    this.headOffset += n;
    while (this.chunks.length > 0 && this.headOffset >= this.chunks[0]!.length) {
      this.headOffset -= this.chunks[0]!.length;
      this.chunks.shift();
    }
  }
}

/** Frames larger than this from the peer are treated as garbage rather than buffered. */
const MAX_READ_FRAME = 256 * 1024 * 1024;

/**
 * Splits the peer's byte stream into frames. It checks only what it needs to find frame
 * boundaries; the rules of RFC 6455 are checked by whoever consumes the frames.
 */
export class FrameReader {
  private readonly queue = new ByteQueue();
  private broken = false;

  constructor(
    private readonly onFrame: (frame: ReadFrame) => void,
    private readonly onGarbage: (detail: string) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.broken) return;
    this.queue.push(chunk);
    while (!this.broken && this.readOne()) {
      // keep reading
    }
  }

  /** Bytes received that do not yet form a whole frame. */
  get pending(): number {
    return this.queue.length;
  }

  private readOne(): boolean {
    const q = this.queue;
    if (q.length < 2) return false;
    const b0 = q.byteAt(0);
    const b1 = q.byteAt(1);
    const masked = (b1 & 0x80) !== 0;
    const short = b1 & 0x7f;
    let header = 2;
    let length = short;
    if (short === 126) {
      if (q.length < 4) return false;
      length = (q.byteAt(2) << 8) | q.byteAt(3);
      header = 4;
    } else if (short === 127) {
      if (q.length < 10) return false;
      let high = 0;
      for (let i = 2; i < 6; i++) high = high * 256 + q.byteAt(i);
      let low = 0;
      for (let i = 6; i < 10; i++) low = low * 256 + q.byteAt(i);
      if (high !== 0 || low > MAX_READ_FRAME) {
        this.broken = true;
        this.onGarbage(`frame announces ${high * 0x100000000 + low} bytes`);
        return false;
      }
      length = low;
      header = 10;
    }
    const keyLength = masked ? 4 : 0;
    if (q.length < header + keyLength + length) return false;
    q.take(header);
    const key = masked ? Buffer.from(q.take(4)) : null;
    let payload = q.take(length);
    if (key !== null) {
      payload = Buffer.from(payload);
      for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i & 3]!;
    }
    this.onFrame({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 0x7, opcode: b0 & 0xf, masked, payload });
    return true;
  }
}
