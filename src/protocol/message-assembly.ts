// One incoming data message put together from its frames: its bytes, its text checked as
// UTF-8 while they arrive, and its inflating when it came compressed. The connection's state
// and closing handshake are websocket-protocol.ts's; this is only the message in progress.
import { Buffer } from 'node:buffer';
import { CloseCode } from './close-code.js';
import type { DeflateCodec } from './deflate-codec.js';
import { ProtocolError } from './errors.js';
import { Opcode } from './opcode.js';
import { isValidUtf8, Utf8Validator } from './utf8.js';

const EMPTY = Buffer.alloc(0);

/**
 * The message being received: its first piece is kept as a view of the transport's read (a
 * message in one frame and one read is never copied), then, from the second piece on or
 * once the read ends, one buffer that doubles as it fills (up to maxPayload). Memory follows
 * the message's size whatever the number of fragments: a message of 1-byte fragments costs
 * its bytes, not an object per byte, and pins none of the reads they came in.
 */
export class MessageAssembler {
  /** Whether the message in progress is binary (else text). */
  binary = false;
  private compressed = false;
  private first: Buffer | null = null;
  private buffer: Buffer | null = null;
  private length = 0;
  /** Created by the first text message: many connections only ever send binary, or nothing. */
  private utf8: Utf8Validator | null = null;

  constructor(
    private readonly maxPayload: number,
    private readonly deflate: DeflateCodec | null,
  ) {}

  /** A message's first frame: `opcode` Text or Binary, `rsv1` set when it is compressed. */
  start(opcode: number, rsv1: boolean): void {
    this.binary = opcode === Opcode.Binary;
    // A compressed message is validated once inflated, not as its deflate bytes arrive.
    this.compressed = rsv1;
    if (!this.binary && !rsv1) (this.utf8 ??= new Utf8Validator()).reset();
  }

  /**
   * Payload bytes of the message, in order (a view of the read, unmasked).
   * @throws ProtocolError INVALID_UTF8 at the first byte that cannot be UTF-8 text.
   */
  append(chunk: Buffer): void {
    if (!this.binary && !this.compressed && !this.utf8!.feed(chunk)) {
      throw new ProtocolError('INVALID_UTF8', CloseCode.InvalidPayload, 'text message is not valid UTF-8');
    }
    if (this.length === 0) {
      this.first = chunk;
      this.length = chunk.length;
      return;
    }
    const length = this.length + chunk.length;
    let buffer = this.buffer;
    if (buffer === null || buffer.length < length) {
      buffer = this.grow(buffer, length);
      if (this.first !== null) {
        this.first.copy(buffer, 0);
        this.first = null;
      }
    }
    chunk.copy(buffer, this.length);
    this.length = length;
  }

  /**
   * The message's last frame ended: its bytes, inflated if it came compressed.
   * @throws ProtocolError for text that ends inside a character or is not UTF-8, and for
   * compressed data that does not inflate or inflates past maxPayload.
   */
  finish(): Buffer {
    if (!this.binary && !this.compressed && !this.utf8!.complete) {
      throw new ProtocolError('INVALID_UTF8', CloseCode.InvalidPayload, 'text message ends inside a character');
    }
    let data: Buffer;
    if (this.buffer !== null) data = this.buffer.subarray(0, this.length);
    else data = this.first ?? EMPTY;
    this.discard();
    return this.compressed ? this.inflate(data) : data;
  }

  /**
   * A read was decoded and the message goes on past it: a first piece that is still a view
   * of that read moves into the assembly buffer, so that an unfinished message keeps what
   * the peer sent of it and not the read it came in (up to 64 KiB, or a slab that other
   * reads share).
   */
  settle(): void {
    const first = this.first;
    if (first === null) return;
    first.copy(this.grow(null, this.length), 0);
    this.first = null;
  }

  /** Lets go of what was received of the message (the connection failed or closed). */
  discard(): void {
    this.first = null;
    this.buffer = null;
    this.length = 0;
  }

  /** A bigger assembly buffer holding what the old one held: double, at least `needed`, at most maxPayload. */
  private grow(old: Buffer | null, needed: number): Buffer {
    // The first buffer has room for twice the first piece: a message cut by the end of a
    // read then usually takes its next piece without copying the first one again.
    let capacity = Math.max(needed, (old?.length ?? this.length) * 2, 1024);
    if (this.maxPayload > 0) capacity = Math.min(capacity, Math.max(needed, this.maxPayload));
    // A store of its own, not a slice of Node's pool: an unfinished message pins its bytes only.
    const buffer = Buffer.allocUnsafeSlow(capacity);
    if (old !== null) old.copy(buffer, 0, 0, this.length);
    this.buffer = buffer;
    return buffer;
  }

  private inflate(data: Buffer): Buffer {
    let inflated: Buffer | null;
    try {
      inflated = this.deflate!.decompress(data, this.maxPayload);
    } catch {
      throw new ProtocolError('INVALID_COMPRESSED_DATA', CloseCode.InvalidPayload, 'compressed message does not inflate');
    }
    if (inflated === null) {
      throw new ProtocolError(
        'MESSAGE_TOO_BIG',
        CloseCode.MessageTooBig,
        `message inflates past the limit of ${this.maxPayload} bytes`,
      );
    }
    if (!this.binary && !isValidUtf8(inflated)) {
      throw new ProtocolError('INVALID_UTF8', CloseCode.InvalidPayload, 'text message is not valid UTF-8');
    }
    return inflated;
  }
}
