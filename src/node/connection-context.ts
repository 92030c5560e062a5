import type { Buffer } from 'node:buffer';
import type { WebSocketConnection } from './connection.js';
import { DEFAULT_DEFLATE_THRESHOLD } from './deflate.js';
import { DEFAULT_INFLATE_RATE } from './inflate-budget.js';
import { DEFAULT_CLOSE_TIMEOUT } from './timeouts.js';
import type { TopicRegistry } from './topics.js';

// The surface of a server's connections: what their owner is told (handlers), how they are
// set up (options, and the context they share), what they count, and the shapes of a send.

/** What a connection sends: a string as text, bytes or a Blob as binary (unless `binary` says otherwise). */
export type SendData = string | ArrayBuffer | ArrayBufferView | Blob;

/** How one message is sent: its type, compression, and whether it may pass the backpressure limit. */
export interface ConnectionSendOptions {
  /** Send a string as binary, or bytes as text (they must be UTF-8). */
  binary?: boolean;
  /**
   * With permessage-deflate negotiated, `false` sends this message uncompressed. By
   * default messages at or above the threshold are compressed.
   */
  compress?: boolean;
  /**
   * Queue the message even past `backpressureLimit`: the slow-consumer policy does not
   * apply. For messages that must not be lost (answers to requests) whose sender bounds
   * them itself, by waiting for `drain` before it sends more.
   */
  force?: boolean;
}

/** Send results, as Bun reports them: bytes written, or one of these. */
export const SendResult = {
  /** The message was discarded (slow consumer, or the connection is closing). */
  Dropped: 0,
  /** The message is queued behind others: the peer is not keeping up. */
  Backpressure: -1,
} as const;

/** What a connection's owner is told. Every handler is optional but `message`. */
export interface ConnectionHandlers<T = unknown> {
  /** The connection is open: the handshake's 101 is written and it may send. Runs before its first `message`. */
  open?(conn: WebSocketConnection<T>): void;
  /**
   * Text arrives as a string, binary as a Buffer; with `decodeText: false` text arrives as
   * a Buffer too (its UTF-8, already checked). `isBinary` tells which the peer sent.
   */
  message(conn: WebSocketConnection<T>, message: string | Buffer, isBinary: boolean): void;
  /**
   * The connection ended, once, however it ended: `code` and `reason` are the peer's close
   * frame, or 1005 (it had no code) / 1006 (TCP ended without one) and `''`.
   */
  close?(conn: WebSocketConnection<T>, code: number, reason: string): void;
  /** The connection's buffered bytes fell back under the limit after a send returned -1. */
  drain?(conn: WebSocketConnection<T>): void;
  /** A ping arrived; its pong is already queued. */
  ping?(conn: WebSocketConnection<T>, payload: Buffer): void;
  /** A pong arrived: the answer to `conn.ping()` or the server's heartbeat, or an unsolicited one. */
  pong?(conn: WebSocketConnection<T>, payload: Buffer): void;
  /** A handler threw: the connection is failed with 1011 and this is told once. */
  error?(conn: WebSocketConnection<T>, error: unknown): void;
}

/**
 * What to do with a send while a connection's buffered bytes exceed `backpressureLimit`:
 * 'drop' discards it; 'close' closes with 1008 (policy violation: the peer should not come
 * back as it is); 'try-again-later' closes with 1013 (try again later: the peer reconnects,
 * and a hotline.v1 client resubscribes and recovers what it missed).
 */
export type SlowConsumerPolicy = 'drop' | 'close' | 'try-again-later';

/** Limits and policies every connection of a server shares (part of `WebSocketServerOptions`). */
export interface ConnectionOptions {
  /** Largest incoming message, in bytes (default 1 MiB). */
  maxPayload?: number;
  /** How long to wait for the peer's close frame, and then for it to close TCP (ms, default 5000). */
  closeTimeout?: number;
  /**
   * Buffered outgoing bytes past which the connection is a slow consumer (default 1 MiB):
   * reading from it pauses until it drains, and sends follow `slowConsumer`.
   */
  backpressureLimit?: number;
  /** 'drop' (default) discards sends past the limit; 'close' closes with 1008, 'try-again-later' with 1013. */
  slowConsumer?: SlowConsumerPolicy;
  /**
   * Bytes per second a connection may inflate with permessage-deflate (default 4 MiB/s,
   * with a burst of one second's worth or `maxPayload`, whichever is more; 0 = no limit).
   * Past it, reading from the connection pauses until the budget refills: the peer is
   * slowed, and nothing it sent is lost.
   */
  inflateRate?: number;
  /**
   * `false` hands text messages to `message` as a Buffer of their UTF-8 (checked as valid,
   * as always), as `ws` and uWebSockets.js do, instead of decoding each into a string
   * (default true). For handlers that pass text on without reading it, such as a relay or
   * an echo: they skip decoding it and encoding it again to send it.
   */
  decodeText?: boolean;
}

/** Counters a server keeps across its connections (for metrics). */
export interface ConnectionCounters {
  droppedMessages: number;
  slowConsumerCloses: number;
  handlerErrors: number;
  /** Times reading from a connection paused because it inflated more than `inflateRate` allows. */
  inflatePauses: number;
  /** Messages received, and their payload bytes (after decompression). */
  messagesIn: number;
  bytesIn: number;
  /** Messages queued to send, and the bytes of their frames. */
  messagesOut: number;
  bytesOut: number;
}

/** Sees every message a server's connections receive and send (an inspector); off unless set. */
export type MessageTap = (conn: WebSocketConnection<unknown>, direction: 'in' | 'out', data: string | Buffer) => void;

/**
 * Buffered outgoing bytes past which a connection is a slow consumer (1 MiB): a peer may
 * fall this far behind in reading before it is paced and `slowConsumer` applies.
 */
export const DEFAULT_BACKPRESSURE_LIMIT = 1024 * 1024;

/**
 * What every connection of one server shares, resolved once and referenced by each
 * connection rather than copied into it (10,000 idle connections, 10,000 copies).
 */
export class ConnectionContext<T = unknown> {
  readonly maxPayload: number | undefined;
  readonly closeTimeout: number;
  readonly backpressureLimit: number;
  readonly slowConsumer: SlowConsumerPolicy;
  /** Bytes per second each connection may inflate; 0 for no limit. */
  readonly inflateRate: number;
  /** Smallest message compressed when a connection negotiated permessage-deflate. */
  readonly deflateThreshold: number;
  /** Whether text messages reach `message` as strings (see {@link ConnectionOptions.decodeText}). */
  readonly decodeText: boolean;
  /** Set while something inspects the server's messages. */
  tap: MessageTap | null = null;

  constructor(
    readonly handlers: ConnectionHandlers<T>,
    options: ConnectionOptions = {},
    readonly counters?: ConnectionCounters,
    readonly topics?: TopicRegistry<T>,
    deflateThreshold = DEFAULT_DEFLATE_THRESHOLD,
  ) {
    this.deflateThreshold = deflateThreshold;
    this.maxPayload = options.maxPayload;
    this.closeTimeout = options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
    this.backpressureLimit = options.backpressureLimit ?? DEFAULT_BACKPRESSURE_LIMIT;
    this.decodeText = options.decodeText ?? true;
    this.slowConsumer = options.slowConsumer ?? 'drop';
    this.inflateRate = options.inflateRate ?? DEFAULT_INFLATE_RATE;
    if (!(this.inflateRate >= 0 && Number.isFinite(this.inflateRate))) {
      throw new RangeError(`inflateRate must be a non-negative number of bytes per second, not ${String(options.inflateRate)}`);
    }
  }
}
