import { encodeMsgpack, encodingOf, stringifyWithBytes, type WireEncoding } from '../wire/index.js';
import { Timer } from './timer.js';

/** The part of the WebSocket interface the client uses: the browser's, or hotline's for Node. */
export interface WebSocketLike {
  /** The WHATWG readyState: 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Sends one frame: JSON text, or msgpack bytes on a `hotline.v1.msgpack` connection. */
  send(data: string | Uint8Array): void;
  /** The subprotocol the server selected, once open: which encoding the connection speaks. */
  readonly protocol?: string;
  /** Set to `'arraybuffer'` by the client, so that binary frames arrive as bytes (browsers default to Blobs). */
  binaryType?: string;
  /** Starts the closing handshake, with a code of 1000 or 3000–4999. */
  close(code?: number, reason?: string): void;
  /** Set by the client: the connection opened. */
  onopen: Handler<unknown>;
  /** Set by the client: a message arrived. */
  onmessage: Handler<{
    /** The message: a string for a text frame, an ArrayBuffer (or a Node Buffer) for a binary one. */
    data: unknown;
  }>;
  /** Set by the client: the connection closed, or never opened. */
  onclose: Handler<{
    /** The close code (1006 when the connection dropped without a close frame). */
    code: number;
    /** The close reason, or `''`. */
    reason: string;
  }>;
  /** Set by the client: the connection failed; `onclose` follows. */
  onerror: Handler<unknown>;
}

/**
 * An event handler property, compared bivariantly (as methods are), so that WebSocket
 * classes whose handlers take their own Event types fit: the browser's and hotline's.
 */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'] | null;

export type WebSocketConstructorLike = new (url: string, protocols: string | string[]) => WebSocketLike;

export interface ConnectionOptions {
  connectTimeout?: number;
  pingInterval?: number;
  pingTimeout?: number;
}

/**
 * What is known of a connection attempt that failed before it opened. `status` is the HTTP
 * status the server refused the upgrade with, when the WebSocket class reveals it: hotline's
 * Node client does (its error event's `error.status`); browsers never do.
 */
export interface ConnectFailure {
  status?: number;
  message: string;
}

export interface ConnectionEvents {
  opened(): void;
  /** A text frame (JSON), or a binary frame's bytes (msgpack). */
  received(data: string | Uint8Array): void;
  /**
   * The socket closed, or was given up on: the connection is over, nothing more comes from
   * it. `failure` is set when it never opened.
   */
  ended(code: number, reason: string, failure?: ConnectFailure): void;
  /** Time for the heartbeat's application ping. */
  ping(): void;
}

const OPEN = 1;

/** Reads an error event the way hotline's Node client fills it; a browser's says nothing. */
function failureOf(event: unknown): ConnectFailure {
  const { error, message } = (event ?? {}) as { error?: unknown; message?: unknown };
  const status = (error as { status?: unknown } | null | undefined)?.status;
  const text = error instanceof Error ? error.message : typeof message === 'string' && message !== '' ? message : 'the connection failed before it opened';
  // A 101 with something wrong in it is no refusal.
  return typeof status === 'number' && status >= 200 && status <= 599 ? { status, message: text } : { message: text };
}

/**
 * The code a connection ends with when the client gives up on it (it did not open in time,
 * nothing answered a ping, no token came): one of the 4000–4999 codes RFC 6455 §7.4.2
 * leaves to applications, reported in the client's `close` event and never sent. Not
 * final: the client reconnects.
 */
export const ABANDONED = 4000;

/**
 * One WebSocket from its opening to its end, and the timers that live as long as it does:
 * the connect timeout, the heartbeat and the token refresh. Once it ended or was closed,
 * it calls nothing and holds no timer.
 */
export class Connection {
  /** Re-authenticates before the credentials expire: credentials belong to a connection. */
  readonly refresh = new Timer();
  private readonly connectTimer = new Timer();
  private readonly heartbeat = new Timer();
  private live = true;
  private opened = false;
  private failure: ConnectFailure | undefined;
  private lastReceived = 0;
  /** When the unanswered ping went out; 0 when none is. */
  private pingSentAt = 0;
  /** What the server selected: JSON until the connection opens as `hotline.v1.msgpack`. */
  encoding: WireEncoding = 'json';

  constructor(
    private readonly socket: WebSocketLike,
    private readonly events: ConnectionEvents,
    private readonly options: ConnectionOptions,
  ) {
    // Binary frames as bytes, not Blobs that would need an asynchronous read.
    if ('binaryType' in socket) socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      this.opened = true;
      this.encoding = encodingOf(socket.protocol);
      this.connectTimer.clear();
      this.lastReceived = Date.now();
      events.opened();
    };
    socket.onmessage = ({ data }) => {
      const frame = typeof data === 'string' ? data : data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Uint8Array ? data : null;
      if (frame === null) return;
      this.lastReceived = Date.now();
      this.pingSentAt = 0;
      events.received(frame);
    };
    socket.onclose = ({ code, reason }) => {
      this.stop();
      events.ended(code, reason, this.opened ? undefined : (this.failure ?? { message: `closed before it opened (${code})` }));
    };
    socket.onerror = (event) => {
      if (!this.opened) this.failure ??= failureOf(event);
    };
    // A server that accepted TCP but never answers the handshake.
    this.connectTimer.set(options.connectTimeout ?? 10_000, () => this.abandon('connect timeout'));
  }

  get open(): boolean {
    return this.live && this.socket.readyState === OPEN;
  }

  /** Sends a request in the connection's encoding; bytes in it go as msgpack `bin`, or in JSON as `{"$bin": base64}`. */
  send(message: object): void {
    if (!this.open) return;
    this.socket.send(this.encoding === 'msgpack' ? encodeMsgpack(message) : (stringifyWithBytes(message) as string));
  }

  /**
   * Pings after `pingInterval` of silence; when nothing at all arrives within `pingTimeout`
   * of the ping, the connection is dead without the OS knowing: it is abandoned.
   */
  startHeartbeat(): void {
    const interval = this.options.pingInterval ?? 20_000;
    if (interval <= 0 || !this.live) return;
    const timeout = this.options.pingTimeout ?? 10_000;
    const tick = Math.max(50, Math.min(interval, timeout) / 2);
    const beat = (): void => {
      this.heartbeat.set(tick, beat);
      const now = Date.now();
      if (this.pingSentAt !== 0) {
        if (now - this.pingSentAt >= timeout) this.abandon('heartbeat timeout');
      } else if (now - this.lastReceived >= interval) {
        this.pingSentAt = now;
        this.events.ping();
      }
    };
    this.heartbeat.set(tick, beat);
  }

  /** Gives up on a socket that looks dead (or is of no use), and ends as if it had closed with {@link ABANDONED}. */
  abandon(reason: string): void {
    if (!this.live) return;
    this.close();
    this.events.ended(ABANDONED, reason, this.opened ? undefined : { message: reason });
  }

  /** Closes the socket without a word to the events (the client let go of it). */
  close(code?: number, reason?: string): void {
    if (!this.live) return;
    this.stop();
    try {
      this.socket.close(code, reason);
    } catch {
      // closing a socket that never opened may throw on some platforms
    }
  }

  private stop(): void {
    this.live = false;
    const socket = this.socket;
    socket.onopen = socket.onmessage = socket.onclose = null;
    this.connectTimer.clear();
    this.heartbeat.clear();
    this.refresh.clear();
  }
}
