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

/** The 4 bytes an empty stored block ends with, which RFC 7692 §7.2.1 removes from every message. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const NO_LIMIT = bufferConstants.MAX_LENGTH;

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
    let out: Buffer;
    try {
      out = inflateRawSync(Buffer.concat([data, TAIL]), {
        windowBits: 15,
        dictionary: this.receiveWindow?.bytes,
        finishFlush: zlib.Z_SYNC_FLUSH,
        maxOutputLength: limit > 0 ? limit : NO_LIMIT,
      });
    } catch (error) {
      // zlib stops as soon as the output passes maxOutputLength: the rest is never inflated.
      if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return null;
      throw error;
    }
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

export const DEFAULT_DEFLATE_THRESHOLD = 1024;
