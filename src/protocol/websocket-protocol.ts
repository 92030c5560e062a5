import { Buffer } from 'node:buffer';
import { CloseCode } from './close-code.js';
import { encodeClosePayload, parseClosePayload, type CloseInfo } from './close-frame.js';
import { InvalidStateError, ProtocolError } from './errors.js';
import { FrameDecoder, type FrameSink } from './frame-decoder.js';
import type { DeflateCodec } from './deflate-codec.js';
import { encodeFrame, encodeFrameBuffer, encodeTextFrameBuffer } from './frame-encoder.js';
import { MessageAssembler } from './message-assembly.js';
import { MAX_CONTROL_PAYLOAD, Opcode, RSV1, type ControlOpcode, type Role } from './opcode.js';

/**
 * What a {@link WebSocketProtocol} reports. Handlers run synchronously inside `receiveData`;
 * one that throws fails the connection with 1011, and `receiveData` rethrows its error.
 */
export interface ProtocolHandler {
  /** A complete message. For text, `data` holds bytes already validated as UTF-8. */
  onMessage(data: Buffer, binary: boolean): void;
  /** A ping arrived; with `autoPong` (the default) its pong is already queued. */
  onPing?(payload: Buffer): void;
  /** A pong arrived: the answer to a {@link WebSocketProtocol.ping} or an unsolicited heartbeat. */
  onPong?(payload: Buffer): void;
  /** The peer's close frame arrived; the answering close frame, if one was due, is queued. */
  onClose?(info: CloseInfo): void;
  /** The peer broke the protocol; a close frame with `error.closeCode` is queued. */
  onProtocolError?(error: ProtocolError): void;
}

/** How a {@link WebSocketProtocol} behaves; fixed for the connection's life. */
export interface ProtocolOptions {
  /** Which side this is: a `'server'` requires masked frames and sends unmasked ones, a `'client'` the reverse. */
  role: Role;
  /** Largest incoming message in bytes; 0 for no limit. Default 1 MiB. */
  maxPayload?: number;
  /** Answer pings with pongs (RFC 6455 §5.5.2). Default true. */
  autoPong?: boolean;
  /**
   * The codec of a negotiated permessage-deflate: RSV1 is then accepted on the first
   * frame of a message, and `send` can compress.
   */
  deflate?: DeflateCodec;
}

/** How {@link WebSocketProtocol.send} frames one message (or one piece of it). */
export interface SendOptions {
  /** Send as binary; by default strings go as text and bytes as binary. */
  binary?: boolean;
  /** Whether this ends the message. With `false`, later sends continue it. Default true. */
  fin?: boolean;
  /** Split the message into frames of at most this many payload bytes. */
  fragmentSize?: number;
  /**
   * Compress the message with the negotiated permessage-deflate (ignored without one, and
   * for a message sent in pieces with `fin: false`). Default false: the caller decides.
   */
  compress?: boolean;
}

/** The connection's place in the closing handshake, numbered like the WHATWG readyState. */
export const ProtocolState = {
  /** Data flows both ways; no close frame sent or received. */
  Open: 1,
  /** One close frame has gone one way; the other is awaited (or, after ours, nothing more is sent). */
  Closing: 2,
  /** Both close frames exchanged, the connection failed, or the transport ended. */
  Closed: 3,
} as const;
export type ProtocolState = (typeof ProtocolState)[keyof typeof ProtocolState];

/** The default `maxPayload`, 1 MiB: a larger incoming message fails the connection with 1009. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

const EMPTY = Buffer.alloc(0);

/**
 * Payloads up to this size are copied behind their header into one buffer when sent: the
 * writer would join the two pieces anyway, and one small copy costs less than a second
 * buffer. Bigger ones go by reference.
 */
const SMALL_FRAME_COPY = 512;

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The sans-I/O WebSocket connection (RFC 6455 after the opening handshake): bytes in,
 * events and bytes out, no sockets and no timers. Whoever owns the transport feeds it
 * `receiveData`/`receiveEof`, writes what `takeOutgoing` returns, and closes the transport
 * when `shouldCloseTransport` says so (after writing what is queued). It reads frames with
 * a {@link FrameDecoder}, puts messages together with a {@link MessageAssembler}, and
 * answers pings; what it keeps itself is what is sent and the closing state.
 *
 * Closing handshake: `close()` queues our close frame (state Closing); the peer's close
 * frame completes it (state Closed). A close frame from the peer first is answered at
 * once. After our close frame nothing more is sent; after the peer's, nothing more is read.
 */
export class WebSocketProtocol implements FrameSink {
  /** Which side of the connection this is (from {@link ProtocolOptions.role}). */
  readonly role: Role;
  /** Largest incoming message in bytes, 0 for no limit: the option, or {@link DEFAULT_MAX_PAYLOAD}. */
  readonly maxPayload: number;
  private readonly handler: ProtocolHandler;
  private readonly autoPong: boolean;
  private readonly decoder: FrameDecoder;
  private readonly masked: boolean;
  private readonly deflate: DeflateCodec | null;
  /** The incoming message being put together from its frames. */
  /** Created by the first data message: an idle connection keeps none. */
  private message: MessageAssembler | null = null;

  // Null while empty: an idle connection keeps no arrays.
  private outgoing: Buffer[] | null = null;
  private outgoingLength = 0;

  // The closing state: only this class changes it (owners read it through the getters).
  #closeSent: CloseInfo | null = null;
  #closeReceived: CloseInfo | null = null;
  #failure: ProtocolError | null = null;
  #eofReceived = false;

  // Whether the last send left a message unfinished (fin: false).
  private sendingFragmented = false;

  constructor(handler: ProtocolHandler, options: ProtocolOptions) {
    this.handler = handler;
    this.role = options.role;
    this.masked = options.role === 'client';
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.autoPong = options.autoPong ?? true;
    this.deflate = options.deflate ?? null;
    this.decoder = new FrameDecoder(this, {
      role: options.role,
      maxPayload: this.maxPayload,
      allowedRsv: this.deflate === null ? 0 : RSV1,
    });
  }

  /** Our close frame, once sent. */
  get closeSent(): CloseInfo | null {
    return this.#closeSent;
  }

  /** The peer's close frame, once received. */
  get closeReceived(): CloseInfo | null {
    return this.#closeReceived;
  }

  /** Why we failed the connection, if we did. */
  get failure(): ProtocolError | null {
    return this.#failure;
  }

  /** Whether the transport reported end of stream. */
  get eofReceived(): boolean {
    return this.#eofReceived;
  }

  /** Where the closing handshake stands; Closed also after a failure or the transport's end of stream. */
  get state(): ProtocolState {
    if (this.#failure !== null || this.#eofReceived) return ProtocolState.Closed;
    if (this.#closeSent !== null && this.#closeReceived !== null) return ProtocolState.Closed;
    if (this.#closeSent !== null || this.#closeReceived !== null) return ProtocolState.Closing;
    return ProtocolState.Open;
  }

  /** Whether data frames may still be sent. */
  get canSend(): boolean {
    return this.#closeSent === null && !this.#eofReceived;
  }

  /**
   * Whether the owner should close the transport once the queued bytes are written: after
   * a failure, after end of stream, and on the server once the closing handshake is done
   * (RFC 6455 §7.1.1: the server closes the TCP connection first). A client waits for the
   * server to close, with a timeout of its own.
   */
  get shouldCloseTransport(): boolean {
    if (this.#failure !== null || this.#eofReceived) return true;
    return this.role === 'server' && this.#closeSent !== null && this.#closeReceived !== null;
  }

  /** Bytes queued for the transport and not yet taken. */
  get bufferedAmount(): number {
    return this.outgoingLength;
  }

  /** Takes the bytes to write, in order. */
  takeOutgoing(): Buffer[] {
    const chunks = this.outgoing ?? [];
    this.outgoing = null;
    this.outgoingLength = 0;
    return chunks;
  }

  /**
   * Whether part of a frame, or of a fragmented message, has arrived and the rest has not.
   * The core keeps no clock: an owner that limits how long a peer may take to finish a
   * frame or message times it, using {@link receivedCount} to tell a new one from the last.
   */
  get receivingPartial(): boolean {
    return this.decoder.partial;
  }

  /**
   * Lets go of the state only a message in progress needs (its assembler and UTF-8
   * validator), unless one is in progress: an owner calls it on a connection from time to
   * time, so that one that has gone quiet holds none until its next message.
   */
  compact(): void {
    if (!this.decoder.partial) this.message = null;
  }

  /** Messages, and control frames outside a message, received whole so far. */
  get receivedCount(): number {
    return this.decoder.completed;
  }

  /** Feeds bytes from the transport. The protocol takes ownership of `chunk` (it is unmasked in place). */
  receiveData(chunk: Uint8Array): void {
    if (this.decoder.stopped) return;
    this.decode(toBuffer(chunk));
  }

  /**
   * Stops reading at the current position, so that an owner can pace a peer: called from a
   * handler, it takes effect once that handler returns. Bytes from the rest of the chunk,
   * and from later `receiveData` calls, are kept undecoded until {@link resume}.
   */
  pause(): void {
    this.decoder.pause();
  }

  /** Whether {@link pause} holds incoming bytes undecoded until {@link resume}. */
  get paused(): boolean {
    return this.decoder.isPaused;
  }

  /** Decodes what was kept while paused (handlers run, as in `receiveData`), and reads on. */
  resume(): void {
    this.decode(null);
  }

  /** Pushes `chunk` to the decoder, or with null resumes it; a peer's error fails the connection. */
  private decode(chunk: Buffer | null): void {
    try {
      if (chunk === null) this.decoder.resume();
      else this.decoder.push(chunk);
      this.message?.settle();
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.failWith(error);
        return;
      }
      // A handler threw: the connection cannot go on from a half-handled message, so it
      // fails with 1011 and the error goes to the caller to report.
      this.failWith(new ProtocolError('LOCAL_FAILURE', CloseCode.InternalError, 'internal error'), false);
      throw error;
    }
  }

  /** The transport ended. Bytes kept while paused are dropped: resume first to read them. */
  receiveEof(): void {
    this.decoder.stop();
    this.#eofReceived = true;
  }

  /** Queues a message (or, with `fin: false`, the start or continuation of one). */
  send(data: string | Uint8Array, options: SendOptions = {}): void {
    if (!this.canSend) throw new InvalidStateError('cannot send after the close frame');
    const fin = options.fin ?? true;
    const binary = options.binary ?? typeof data !== 'string';
    let opcode: number = this.sendingFragmented ? Opcode.Continuation : binary ? Opcode.Binary : Opcode.Text;
    const fragmentSize = options.fragmentSize ?? 0;
    let rsv1 = false;
    let bytes: Uint8Array | undefined;
    if (options.compress === true && this.deflate !== null && fin && !this.sendingFragmented) {
      const compressed = this.deflate.compress(typeof data === 'string' ? Buffer.from(data) : toBuffer(data));
      if (compressed !== null) {
        bytes = compressed;
        rsv1 = true;
      }
    }
    if (bytes === undefined && typeof data === 'string' && (fragmentSize === 0 || data.length * 3 <= fragmentSize)) {
      this.pushFrame(encodeTextFrameBuffer(opcode, data, { fin, mask: this.masked }));
    } else {
      bytes ??= typeof data === 'string' ? Buffer.from(data) : data;
      if (fragmentSize > 0 && bytes.length > fragmentSize) {
        for (let offset = 0; offset < bytes.length; offset += fragmentSize) {
          const last = offset + fragmentSize >= bytes.length;
          const piece = bytes.subarray(offset, offset + fragmentSize);
          // RSV1 marks the message, so only its first frame carries it (RFC 7692 §6).
          this.push(encodeFrame(opcode, piece, { fin: fin && last, rsv1: rsv1 && offset === 0, mask: this.masked }));
          opcode = Opcode.Continuation;
        }
      } else if (this.masked || bytes.length <= SMALL_FRAME_COPY) {
        this.pushFrame(encodeFrameBuffer(opcode, bytes, { fin, rsv1, mask: this.masked }));
      } else {
        this.push(encodeFrame(opcode, bytes, { fin, rsv1, mask: this.masked }));
      }
    }
    this.sendingFragmented = !fin;
  }

  /**
   * Queues a frame that was encoded elsewhere, so that one encoding can be written to many
   * connections (a publish). It must be a complete, unmasked data frame for a server and
   * must not fall inside a message sent with `fin: false`.
   */
  sendEncoded(frame: Buffer): void {
    if (!this.canSend) throw new InvalidStateError('cannot send after the close frame');
    if (this.sendingFragmented) throw new InvalidStateError('a fragmented message is being sent');
    this.pushFrame(frame);
  }

  /**
   * Queues a ping; the peer's pong arrives at {@link ProtocolHandler.onPong}. A string goes
   * as UTF-8. Throws a RangeError over 125 bytes, an InvalidStateError after our close frame.
   */
  ping(payload: string | Uint8Array = EMPTY): void {
    this.sendControl(Opcode.Ping, payload);
  }

  /**
   * Queues a pong: unsolicited as a one-way heartbeat, or to answer a ping by hand when
   * `autoPong` is off. Throws like {@link ping}.
   */
  pong(payload: string | Uint8Array = EMPTY): void {
    this.sendControl(Opcode.Pong, payload);
  }

  /**
   * Starts (or answers) the closing handshake. Without a code the close frame is empty.
   * Throws a RangeError for a code that may not be sent or a reason over 123 bytes.
   * Does nothing once our close frame has gone.
   */
  close(code?: number, reason = ''): void {
    if (this.#closeSent !== null || this.#eofReceived) return;
    const payload = encodeClosePayload(code, reason);
    this.#closeSent = { code: code ?? CloseCode.NoStatusReceived, reason };
    this.push(encodeFrame(Opcode.Close, payload, { mask: this.masked }));
  }

  /**
   * Fails the connection (RFC 6455 §7.1.7) for a reason of our own, such as 1011 after an
   * application error: sends a close frame if none was sent, reads nothing more, and asks
   * for the transport to be closed.
   */
  fail(code: number, reason = ''): void {
    encodeClosePayload(code, reason); // throws the RangeError before any state changes
    this.failWith(new ProtocolError('LOCAL_FAILURE', code as CloseCode, reason), false);
  }

  private failWith(error: ProtocolError, report = true): void {
    if (this.#failure !== null) return;
    this.#failure = error;
    this.decoder.stop();
    this.message?.discard();
    if (this.#closeSent === null && !this.#eofReceived && this.#closeReceived === null) {
      this.close(error.closeCode, truncateReason(error.message));
    }
    if (report) this.handler.onProtocolError?.(error);
  }

  private sendControl(opcode: ControlOpcode, payload: string | Uint8Array): void {
    if (!this.canSend) throw new InvalidStateError('cannot send after the close frame');
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
    if (bytes.length > MAX_CONTROL_PAYLOAD) {
      throw new RangeError(`control frame payload is ${bytes.length} bytes; the limit is 125`);
    }
    this.push(encodeFrame(opcode, bytes, { mask: this.masked }));
  }

  private pushFrame(frame: Buffer): void {
    (this.outgoing ??= []).push(frame);
    this.outgoingLength += frame.length;
  }

  private push(frames: Buffer[]): void {
    const outgoing = (this.outgoing ??= []);
    for (const frame of frames) {
      outgoing.push(frame);
      this.outgoingLength += frame.length;
    }
  }

  // FrameSink: data frames go to the message being assembled.

  onDataFrameStart(opcode: number, _fin: boolean, rsv1: boolean, _length: number): void {
    // The decoder refuses a continuation with no message begun, so `message` exists for one.
    if (opcode !== Opcode.Continuation) (this.message ??= new MessageAssembler(this.maxPayload, this.deflate)).start(opcode, rsv1);
  }

  onDataPayload(chunk: Buffer): void {
    this.message!.append(chunk);
  }

  onDataFrameEnd(fin: boolean): void {
    if (!fin) return;
    const message = this.message!;
    const data = message.finish();
    this.handler.onMessage(data, message.binary);
  }

  onControlFrame(opcode: ControlOpcode, payload: Buffer): void {
    if (opcode === Opcode.Ping) {
      if (this.autoPong && this.canSend) this.pong(payload);
      this.handler.onPing?.(payload);
    } else if (opcode === Opcode.Pong) {
      this.handler.onPong?.(payload);
    } else {
      const info = parseClosePayload(payload);
      this.#closeReceived = info;
      this.decoder.stop();
      this.message?.discard();
      if (this.#closeSent === null) {
        this.close(info.code === CloseCode.NoStatusReceived ? undefined : info.code);
      }
      this.handler.onClose?.(info);
    }
  }
}

/** Keeps a failure reason within a close frame's 123 bytes. */
function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let cut = reason.slice(0, 120);
  while (Buffer.byteLength(cut) > 120) cut = cut.slice(0, -1);
  return cut + '...';
}
