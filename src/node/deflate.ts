import { Buffer, constants as bufferConstants } from 'node:buffer';
import { constants as zlib, deflateRawSync, inflateRawSync } from 'node:zlib';
import type { DeflateCodec, DeflateParams, Role } from '../protocol/index.js';
import type { InflateBudget } from './inflate-budget.js';

/** zlib settings for compressing; both default to zlib's own defaults. */
export interface DeflateTuning {
  /** Compression level, 0–9 (default 6: zlib's default). */
  level?: number;
  /** zlib memLevel, 1–9 (default 8): memory for the match finder; lower is smaller and slower. */
  memLevel?: number;
}

/**
 * What is inflated after each message: the 4 bytes of an empty stored block that RFC 7692
 * §7.2.1 removes from every message, then an empty final block (01 00 00 ff ff). A message
 * that ends where §7.2.1 says, at a block boundary, is thereby a complete deflate stream,
 * so zlib can be told to finish it: one cut inside a block cannot finish (it fails), and
 * bytes after a final block of the message's own are left over (refused below).
 */
const TAIL_AND_END = Buffer.from([0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff]);
const NO_LIMIT = bufferConstants.MAX_LENGTH;
const EMPTY = Buffer.alloc(0);

/** What `inflateRawSync` returns with `info: true`: the output and the engine that made it. */
interface InflateInfo {
  buffer: Buffer;
  engine: { bytesWritten: number };
}

/**
 * The last bytes of what went through one direction of a connection with context
 * takeover: the LZ77 window the peer's inflater (or our deflater) still refers to. Kept as
 * plain bytes (at most 2^windowBits of them, far less for a chat connection) instead of a
 * live zlib context (some 300 KiB for deflate, 40 KiB for inflate) per idle connection.
 */
export class SlidingWindow {
  private buffer: Buffer | null = null;
  private length = 0;

  constructor(private readonly size: number) {}

  get bytes(): Buffer | undefined {
    return this.length === 0 ? undefined : this.buffer!.subarray(0, this.length);
  }

  append(data: Buffer): void {
    const size = this.size;
    if (data.length >= size) {
      if (this.buffer === null || this.buffer.length < size) this.buffer = Buffer.allocUnsafeSlow(size);
      data.copy(this.buffer, 0, data.length - size);
      this.length = size;
      return;
    }
    const keep = Math.min(this.length, size - data.length);
    const needed = keep + data.length;
    if (this.buffer === null || needed > this.buffer.length) {
      // Grow geometrically up to the window size, so short messages cost short copies. Not
      // from Node's shared pool: a kept window would pin a whole 8 KiB pool block.
      const grown = Buffer.allocUnsafeSlow(Math.min(size, Math.max(needed, 2 * (this.buffer?.length ?? 0), 256)));
      if (keep > 0) this.buffer!.copy(grown, 0, this.length - keep, this.length);
      this.buffer = grown;
    } else if (keep < this.length) {
      this.buffer.copyWithin(0, this.length - keep, this.length);
    }
    data.copy(this.buffer, keep);
    this.length = needed;
  }
}

/** The smallest window (log2) from which zlib can reach `bytes` back, within 9..max. */
function windowFor(bytes: number, max: number): number {
  let bits = 9;
  // zlib keeps 262 bytes of lookahead out of the window: a match can reach back only
  // 2^bits - 262 bytes, so the window must exceed the history by that much.
  while (bits < max && (1 << bits) - 262 < bytes) bits++;
  return bits;
}

/**
 * Compresses one message on its own (no context): the form a publish shares among every
 * subscriber whose connection resets its context per message. Returns null when `windowBits`
 * is 8, which zlib cannot produce.
 */
export function deflateMessage(data: Buffer, windowBits: number, tuning: DeflateTuning = {}, dictionary?: Buffer): Buffer | null {
  if (windowBits < 9) return null;
  // A window larger than the data and its history changes nothing but the memory zlib
  // allocates (and zeroes) for this call, so small messages get small windows.
  const bits = windowFor(data.length + (dictionary?.length ?? 0), windowBits);
  const out = deflateRawSync(data, {
    level: tuning.level ?? zlib.Z_DEFAULT_COMPRESSION,
    memLevel: Math.min(tuning.memLevel ?? 8, Math.max(1, bits - 6)),
    windowBits: bits,
    dictionary,
    finishFlush: zlib.Z_SYNC_FLUSH,
  });
  // Z_SYNC_FLUSH ends the output with an empty stored block: 00 00 ff ff.
  return out.subarray(0, out.length - 4);
}

/**
 * permessage-deflate with zlib for one connection. Each message is one synchronous zlib
 * call with a context made for it and freed after it, so no zlib memory stays with an
 * idle connection and at most one context is alive at a time per thread; with context
 * takeover, the history the peer relies on is passed as a preset dictionary.
 */
export class ZlibDeflateCodec implements DeflateCodec {
  private readonly sendBits: number;
  private readonly sendWindow: SlidingWindow | null;
  private readonly receiveWindow: SlidingWindow | null;

  /**
   * @param extension the negotiated element as the response header names it, for
   * `extensions`.
   * @param budget what every inflated message is taken from (a server's `inflateRate`);
   * the connection reads it to pause.
   */
  constructor(
    params: DeflateParams,
    role: Role,
    readonly extension: string,
    private readonly tuning: DeflateTuning = {},
    readonly budget: InflateBudget | null = null,
  ) {
    const server = role === 'server';
    const ownNoTakeover = server ? params.serverNoContextTakeover : params.clientNoContextTakeover;
    const peerNoTakeover = server ? params.clientNoContextTakeover : params.serverNoContextTakeover;
    this.sendBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    const receiveBits = server ? params.clientMaxWindowBits : params.serverMaxWindowBits;
    this.sendWindow = ownNoTakeover || this.sendBits < 9 ? null : new SlidingWindow(1 << this.sendBits);
    this.receiveWindow = peerNoTakeover ? null : new SlidingWindow(1 << receiveBits);
  }

  /** Whether every message this side sends is compressed on its own, so it can be shared. */
  get sharedWindowBits(): number | null {
    return this.sendWindow === null && this.sendBits >= 9 ? this.sendBits : null;
  }

  compress(data: Buffer): Buffer | null {
    const out = deflateMessage(data, this.sendBits, this.tuning, this.sendWindow?.bytes);
    if (out !== null) this.sendWindow?.append(data);
    return out;
  }

  decompress(data: Buffer, limit: number): Buffer | null {
    // An empty payload holds no block at all; peers send an empty message so, and `ws` reads it as one.
    if (data.length === 0) return EMPTY;
    const input = Buffer.concat([data, TAIL_AND_END]);
    let inflated: InflateInfo;
    try {
      inflated = inflateRawSync(input, {
        windowBits: 15,
        dictionary: this.receiveWindow?.bytes,
        finishFlush: zlib.Z_FINISH,
        maxOutputLength: limit > 0 ? limit : NO_LIMIT,
        info: true,
      }) as unknown as InflateInfo;
    } catch (error) {
      // zlib stops as soon as the output passes maxOutputLength: the rest is never inflated.
      if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return null;
      throw error;
    }
    // The stream may end before what was appended, at a final block of the message's own
    // (RFC 7692 §7.2.3.4). What the message holds after that block may only be the one
    // byte §7.2.3.4 shows: the header bits of an empty stored block (BFINAL 0, BTYPE 00)
    // whose LEN and NLEN are the removed tail. Anything else is data after the final block.
    const after = input.length - inflated.engine.bytesWritten - TAIL_AND_END.length;
    if (after > 1 || (after === 1 && (data[data.length - 1]! & 0x07) !== 0)) {
      throw new Error('data after the final deflate block');
    }
    const out = inflated.buffer;
    this.receiveWindow?.append(out);
    this.budget?.spend(out.length);
    return out;
  }
}

/** permessage-deflate settings of a server or client, beyond what is negotiated. */
export interface PerMessageDeflateOptions extends DeflateTuning {
  /** Messages below this many bytes are sent uncompressed (default 1024). */
  threshold?: number;
}

/** Messages under 1 KiB go uncompressed by default: below it deflate saves little and costs CPU. */
export const DEFAULT_DEFLATE_THRESHOLD = 1024;
