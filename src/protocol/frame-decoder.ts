import { Buffer } from 'node:buffer';
import { CloseCode } from './close-code.js';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';
import { exactCopy } from './exact-copy.js';
import { maskWith } from './mask.js';
import { MAX_CONTROL_PAYLOAD, Opcode, type ControlOpcode, type Role } from './opcode.js';

/** Receives what a {@link FrameDecoder} finds. Any method may throw a {@link ProtocolError}. */
export interface FrameSink {
  /**
   * A data frame starts. `opcode` is Text, Binary or Continuation; `rsv1` is set only on
   * the first frame of a message, and only when the decoder allows it.
   */
  onDataFrameStart(opcode: number, fin: boolean, rsv1: boolean, length: number): void;
  /** Unmasked payload of the current data frame, as it arrives: a view into the input. */
  onDataPayload(chunk: Buffer): void;
  /** The current data frame ended; with `fin`, so did its message. */
  onDataFrameEnd(fin: boolean): void;
  /** A whole control frame (they are never fragmented and carry at most 125 bytes). */
  onControlFrame(opcode: ControlOpcode, payload: Buffer): void;
}

/** How a {@link FrameDecoder} checks what it reads; fixed for the decoder's life. */
export interface FrameDecoderOptions {
  /** 'server' requires masked frames; 'client' rejects them. */
  role: Role;
  /** Largest message, summed over its fragments, in bytes; 0 for no limit. */
  maxPayload: number;
  /** RSV bits a negotiated extension allows on the first frame of a data message. */
  allowedRsv?: number;
}

// Decoder states: each reads one part of a frame.
const HEADER = 0;
const LENGTH_16 = 1;
const LENGTH_64 = 2;
const MASK_KEY = 3;
const PAYLOAD = 4;
const STOPPED = 5;

/** 2^53 - 1 expressed as the high 32 bits of a 64-bit length. */
const MAX_SAFE_HIGH_WORD = 0x1fffff;

function violation(code: ProtocolErrorCode, message: string): ProtocolError {
  return new ProtocolError(code, CloseCode.ProtocolError, message);
}

/**
 * A streaming RFC 6455 frame decoder. It accepts the byte stream split anywhere, checks
 * every header rule (and the size limit) before any payload is buffered, unmasks in place,
 * and streams data payloads to its sink without copying them. Only a control frame that
 * arrives split is copied, into a buffer of at most 125 bytes.
 *
 * Once a sink method or a header check throws, the decoder stops: later input is ignored.
 */
export class FrameDecoder {
  private readonly sink: FrameSink;
  private readonly requireMask: boolean;
  private readonly maxPayload: number;
  private readonly allowedRsv: number;

  private state = HEADER;
  // The frame being read.
  private fin = false;
  private rsv = 0;
  private opcode = 0;
  private masked = false;
  private remaining = 0;
  // The frame's mask key, byte by byte: small integers held in the object itself, where a
  // buffer of their own cost ~180 bytes of heap per connection that ever sent a frame.
  private key0 = 0;
  private key1 = 0;
  private key2 = 0;
  private key3 = 0;
  /**
   * Header bytes (up to 8) that arrived split across chunks, made by the first header that
   * is: most connections never split one. It has a backing store of its own: a view of
   * Node's shared pool would keep the pool's whole 8 KiB slab alive for as long as the
   * connection lives (a heap snapshot of 5,000 subscribed connections found 0.05 slabs, 420
   * bytes, per connection).
   */
  private split: Buffer | null = null;
  private phase = 0;
  private control: Buffer | null = null;
  private controlFilled = 0;
  // The message being read: its opcode while it is fragmented, and its size so far.
  private messageOpcode = 0;
  private messageLength = 0;
  /** Whether the message being read is compressed (RSV1 on its first frame). */
  private messageCompressed = false;
  private scratchFilled = 0;
  /** Frames and messages received whole: see {@link completed}. */
  private completions = 0;
  // While paused, input is kept undecoded: the rest of the chunk decoding stopped in, and
  // what was pushed since (normally nothing: whoever paused stops reading the transport).
  private paused = false;
  private held: Buffer | null = null;

  constructor(sink: FrameSink, options: FrameDecoderOptions) {
    this.sink = sink;
    this.requireMask = options.role === 'server';
    this.maxPayload = options.maxPayload;
    this.allowedRsv = options.allowedRsv ?? 0;
  }

  /** Whether a fragmented message has begun and not yet ended. */
  get inMessage(): boolean {
    return this.messageOpcode !== 0;
  }

  /**
   * Whether part of a frame, or of a fragmented message, has arrived and the rest has not.
   * Between two messages (and two control frames outside a message) it is false.
   */
  get partial(): boolean {
    return this.state !== STOPPED && (this.state !== HEADER || this.scratchFilled > 0 || this.messageOpcode !== 0);
  }

  /**
   * How many messages, and control frames outside a message, were received whole. It
   * changes whenever one ends, so while {@link partial} holds, a new count means a new one began.
   */
  get completed(): number {
    return this.completions;
  }

  /**
   * Stops decoding at the current position: once the sink call in progress returns, the
   * rest of the chunk, and anything pushed later, is kept undecoded until {@link resume}.
   */
  pause(): void {
    if (this.state !== STOPPED) this.paused = true;
  }

  /** Whether {@link pause} holds input undecoded until {@link resume}. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Decodes what was kept while paused, and goes on decoding what is pushed. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = null;
    if (held !== null) this.push(held);
  }

  /** Ignores all further input (after a close frame, or once the connection failed). */
  stop(): void {
    this.state = STOPPED;
    this.paused = false;
    this.held = null;
  }

  /** Whether the decoder ignores input for good: after {@link stop}, or once a check or sink call threw. */
  get stopped(): boolean {
    return this.state === STOPPED;
  }

  /**
   * Decodes `chunk`. The decoder takes ownership: payload bytes are unmasked in place and
   * handed to the sink as views, so the caller must not reuse the buffer. What it keeps past
   * the call (bytes held while paused) it copies, so it never keeps `chunk`'s memory alive.
   */
  push(chunk: Buffer): void {
    if (this.state === STOPPED) return;
    if (this.paused) {
      this.held = this.held === null ? exactCopy(chunk) : exactCopy(this.held, chunk);
      return;
    }
    try {
      this.decode(chunk);
    } catch (error) {
      this.state = STOPPED;
      throw error;
    }
  }

  private decode(chunk: Buffer): void {
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      if (this.paused) {
        this.held = exactCopy(chunk.subarray(pos));
        return;
      }
      switch (this.state) {
        case HEADER: {
          if (this.scratchFilled === 0 && end - pos >= 2) {
            this.readHeader(chunk[pos]!, chunk[pos + 1]!);
            pos += 2;
          } else {
            pos = this.gather(chunk, pos, 2);
            if (this.scratchFilled < 2) return;
            this.scratchFilled = 0;
            this.readHeader(this.split![0]!, this.split![1]!);
          }
          break;
        }
        case LENGTH_16:
        case LENGTH_64: {
          // The extended length: read from the chunk when it is whole there, else gathered.
          const size = this.state === LENGTH_16 ? 2 : 8;
          let source = chunk;
          let at = pos;
          if (this.scratchFilled === 0 && end - pos >= size) {
            pos += size;
          } else {
            pos = this.gather(chunk, pos, size);
            if (this.scratchFilled < size) return;
            this.scratchFilled = 0;
            source = this.split!;
            at = 0;
          }
          if (size === 2) this.readLength16(source.readUInt16BE(at));
          else this.readLength64(source.readUInt32BE(at), source.readUInt32BE(at + 4));
          break;
        }
        case MASK_KEY: {
          let source = chunk;
          let at = pos;
          if (this.scratchFilled === 0 && end - pos >= 4) {
            pos += 4;
          } else {
            pos = this.gather(chunk, pos, 4);
            if (this.scratchFilled < 4) return;
            this.scratchFilled = 0;
            source = this.split!;
            at = 0;
          }
          this.key0 = source[at]!;
          this.key1 = source[at + 1]!;
          this.key2 = source[at + 2]!;
          this.key3 = source[at + 3]!;
          this.beginPayload();
          break;
        }
        case PAYLOAD: {
          const available = end - pos;
          const take = available < this.remaining ? available : this.remaining;
          if (this.opcode >= Opcode.Close) {
            pos = this.readControlPayload(chunk, pos, take);
          } else {
            const stop = pos + take;
            if (this.masked) this.phase = maskWith(chunk, this.key0, this.key1, this.key2, this.key3, pos, stop, this.phase);
            this.remaining -= take;
            this.sink.onDataPayload(chunk.subarray(pos, stop));
            pos = stop;
            if (this.remaining === 0) this.endDataFrame();
          }
          break;
        }
        default:
          return;
      }
    }
  }

  /** Copies up to `need - scratchFilled` header bytes into `split`; returns the new position. */
  private gather(chunk: Buffer, pos: number, need: number): number {
    const n = Math.min(need - this.scratchFilled, chunk.length - pos);
    chunk.copy((this.split ??= Buffer.allocUnsafeSlow(8)), this.scratchFilled, pos, pos + n);
    this.scratchFilled += n;
    return pos + n;
  }

  private readLength16(length: number): void {
    if (length < 126) {
      throw violation('NON_MINIMAL_LENGTH', 'a 16-bit length must be at least 126');
    }
    this.readLength(length);
  }

  private readLength64(high: number, low: number): void {
    if (high > 0x7fffffff) {
      throw violation('LENGTH_MSB_SET', 'the most significant bit of a 64-bit length must be 0');
    }
    if (high === 0 && low < 0x10000) {
      throw violation('NON_MINIMAL_LENGTH', 'a 64-bit length must be at least 65536');
    }
    if (high > MAX_SAFE_HIGH_WORD) {
      throw new ProtocolError('MESSAGE_TOO_BIG', CloseCode.MessageTooBig, 'frame length exceeds 2^53 - 1 bytes');
    }
    this.readLength(high * 0x100000000 + low);
  }

  private readHeader(b0: number, b1: number): void {
    const fin = (b0 & 0x80) !== 0;
    const rsv = (b0 >>> 4) & 0x7;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const length = b1 & 0x7f;

    if (opcode >= Opcode.Close) {
      if (opcode > Opcode.Pong) throw violation('RESERVED_OPCODE', `reserved opcode ${opcode}`);
      if (!fin) throw violation('CONTROL_FRAME_FRAGMENTED', 'control frames must not be fragmented');
      if (length > MAX_CONTROL_PAYLOAD) {
        throw violation('CONTROL_FRAME_TOO_LONG', 'control frame payload exceeds 125 bytes');
      }
      if (rsv !== 0) throw violation('RESERVED_BITS', 'RSV bits set on a control frame');
    } else if (opcode === Opcode.Continuation) {
      if (this.messageOpcode === 0) {
        throw violation('UNEXPECTED_CONTINUATION', 'continuation frame without a message to continue');
      }
      if (rsv !== 0) throw violation('RESERVED_BITS', 'RSV bits set on a continuation frame');
    } else if (opcode <= Opcode.Binary) {
      if (this.messageOpcode !== 0) {
        throw violation('EXPECTED_CONTINUATION', 'new data frame before the fragmented message ended');
      }
      if ((rsv & ~this.allowedRsv) !== 0) {
        throw violation('RESERVED_BITS', 'RSV bits set without a negotiated extension');
      }
    } else {
      throw violation('RESERVED_OPCODE', `reserved opcode ${opcode}`);
    }
    if (masked !== this.requireMask) {
      throw masked
        ? violation('MASK_FORBIDDEN', 'a server must not mask its frames')
        : violation('MASK_REQUIRED', 'a client must mask its frames');
    }

    this.fin = fin;
    this.rsv = rsv;
    this.opcode = opcode;
    this.masked = masked;
    if (length === 126) this.state = LENGTH_16;
    else if (length === 127) this.state = LENGTH_64;
    else this.readLength(length);
  }

  private readLength(length: number): void {
    if (this.opcode < Opcode.Close) {
      if (this.opcode !== Opcode.Continuation) this.messageCompressed = (this.rsv & 0x4) !== 0;
      const total = (this.opcode === Opcode.Continuation ? this.messageLength : 0) + length;
      // maxPayload limits the message; deflate can make incompressible data slightly longer
      // (5 bytes per stored block of at most 64 KiB, often 16 KiB), so compressed bytes get
      // 0.1% more room. The
      // inflated size is held to maxPayload exactly when it is inflated.
      const limit = this.messageCompressed ? this.maxPayload + Math.ceil(this.maxPayload / 1024) + 64 : this.maxPayload;
      if (this.maxPayload > 0 && total > limit) {
        throw new ProtocolError(
          'MESSAGE_TOO_BIG',
          CloseCode.MessageTooBig,
          `message exceeds the limit of ${this.maxPayload} bytes`,
        );
      }
      this.messageLength = total;
    }
    this.remaining = length;
    if (this.masked) this.state = MASK_KEY;
    else this.beginPayload();
  }

  private beginPayload(): void {
    this.phase = 0;
    this.state = PAYLOAD;
    const opcode = this.opcode;
    if (opcode >= Opcode.Close) {
      if (this.remaining === 0) this.endControlFrame(Buffer.alloc(0));
      return;
    }
    if (opcode !== Opcode.Continuation) this.messageOpcode = this.fin ? 0 : opcode;
    else if (this.fin) this.messageOpcode = 0;
    this.sink.onDataFrameStart(opcode, this.fin, (this.rsv & 0x4) !== 0, this.remaining);
    if (this.remaining === 0 && this.state === PAYLOAD) this.endDataFrame();
  }

  private endDataFrame(): void {
    if (this.state === PAYLOAD) this.state = HEADER;
    if (this.fin) this.completions++;
    this.sink.onDataFrameEnd(this.fin);
  }

  private readControlPayload(chunk: Buffer, pos: number, take: number): number {
    const stop = pos + take;
    if (this.control === null && take === this.remaining) {
      // The whole payload is here: hand out a view.
      if (this.masked) maskWith(chunk, this.key0, this.key1, this.key2, this.key3, pos, stop, 0);
      this.remaining = 0;
      this.endControlFrame(chunk.subarray(pos, stop));
      return stop;
    }
    if (this.control === null) {
      this.control = Buffer.allocUnsafe(this.remaining);
      this.controlFilled = 0;
    }
    chunk.copy(this.control, this.controlFilled, pos, stop);
    this.controlFilled += take;
    this.remaining -= take;
    if (this.remaining === 0) {
      const payload = this.control;
      this.control = null;
      if (this.masked) maskWith(payload, this.key0, this.key1, this.key2, this.key3, 0, payload.length, 0);
      this.endControlFrame(payload);
    }
    return stop;
  }

  private endControlFrame(payload: Buffer): void {
    if (this.state === PAYLOAD) this.state = HEADER;
    if (this.messageOpcode === 0) this.completions++;
    this.sink.onControlFrame(this.opcode as ControlOpcode, payload);
  }
}
