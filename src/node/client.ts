// The WHATWG WebSocket for Node. Its helpers each have a file: argument checks
// (client-arguments.ts), the opening handshake and dialing (client-handshake.ts), events
// and handler attributes (events.ts), bufferedAmount (buffered-amount.ts), and the flush and
// close timer it shares with the server (frame-pump.ts). What is left is the interface the
// spec defines, a little past 450 lines because that interface is wide.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { isAnyArrayBuffer } from 'node:util/types';
import { CloseCode, WebSocketProtocol, type CloseInfo, type ProtocolHandler } from '../protocol/index.js';
import { BufferedAmount } from './buffered-amount.js';
import { bytesOf, checkMaxPayload, checkMilliseconds, closeArguments, parseProtocols, parseWebSocketUrl } from './client-arguments.js';
import { ClientHandshake, ConnectError, dial, type ClientDeflateOptions, type HandshakeResult } from './client-handshake.js';
import { DEFAULT_DEFLATE_THRESHOLD, type ZlibDeflateCodec } from './deflate.js';
import {
  CloseEvent,
  ErrorEvent,
  EventHandlerTarget,
  toArrayBuffer,
  toUsvString,
  type AddListenerOptions,
  type EventHandler,
  type ListenerMethod,
  type ListenerOptions,
  type WebSocketEventMap,
} from './events.js';
import { FramePump } from './frame-pump.js';
import { DEFAULT_CLOSE_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT } from './timeouts.js';

export type { WebSocketEventMap, WebSocketMessageEvent, WebSocketPongEvent } from './events.js';

/** Node-only settings: the third constructor argument, which browsers do not have. */
export interface WebSocketOptions {
  /** Extra request header fields; the ones the handshake sets itself are refused. */
  headers?: Readonly<Record<string, string>>;
  /** Largest incoming message in bytes; 0 for no limit. Default 100 MiB, as `ws`'s client. */
  maxPayload?: number;
  /** Time from connecting to the server's 101 response (ms, default 10000). */
  handshakeTimeout?: number;
  /** Time from the start of the closing handshake until the server closes TCP (ms, default 5000). */
  closeTimeout?: number;
  /** For `wss:`: `ca`, `rejectUnauthorized`, `servername`, client certificates, … */
  tls?: ConnectionOptions;
  /** The Origin header field; a browser always sends one, Node sends none by default. */
  origin?: string;
  /**
   * Offer permessage-deflate (RFC 7692), as browsers do: `true` (the default) offers it
   * with `client_max_window_bits`; an object says what to request and how to compress
   * (messages from 1 KiB on, by default); `false` offers nothing.
   */
  perMessageDeflate?: boolean | ClientDeflateOptions;
}

export { ConnectError, type ClientDeflateOptions, type ConnectErrorCode } from './client-handshake.js';

/** How a binary message's `data` is delivered: a Blob (the default), an ArrayBuffer, or a Node Buffer (no copy). */
export type BinaryType = 'blob' | 'arraybuffer' | 'nodebuffer';

/** What {@link WebSocket.send} takes: a string goes as text, the rest as binary. */
export type WebSocketData = string | ArrayBufferLike | ArrayBufferView | Blob;

type Handler<E extends Event> = EventHandler<WebSocket, E>;

/**
 * The largest message the client accepts by default: 100 MiB, as `ws`'s client. A client
 * reads from a server it chose to connect to, and browsers accept messages far larger than
 * a server's 1 MiB; memory for a message is only taken as its bytes arrive.
 */
export const DEFAULT_CLIENT_MAX_PAYLOAD = 100 * 1024 * 1024;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
type ReadyState = typeof CONNECTING | typeof OPEN | typeof CLOSING | typeof CLOSED;

/** A message waiting behind a Blob being read, or the close that must follow them. */
type Queued =
  | { kind: 'data'; payload: string | Buffer; size: number }
  | { kind: 'blob'; blob: Blob; size: number }
  | { kind: 'close'; code: number | undefined; reason: string };

/**
 * The WHATWG `WebSocket` for Node: the same constructor, attributes, methods and events as
 * in a browser, so that browser code runs unchanged; Node-only settings go in a third
 * constructor argument. The connection runs on hotline's sans-I/O protocol core.
 *
 * Events are dispatched synchronously from the socket's callbacks (one socket read is one
 * task), in the order the spec queues them.
 */
export class WebSocket extends EventHandlerTarget {
  /** `readyState` 0: the opening handshake is under way; `send` throws. */
  static readonly CONNECTING = CONNECTING;
  /** `readyState` 1: open; messages flow both ways. */
  static readonly OPEN = OPEN;
  /** `readyState` 2: the closing handshake has begun; what is sent is discarded. */
  static readonly CLOSING = CLOSING;
  /** `readyState` 3: closed, or the connection never opened. */
  static readonly CLOSED = CLOSED;
  /** {@link WebSocket.CONNECTING}, also on instances as in browsers. */
  declare readonly CONNECTING: typeof CONNECTING;
  /** {@link WebSocket.OPEN}, also on instances. */
  declare readonly OPEN: typeof OPEN;
  /** {@link WebSocket.CLOSING}, also on instances. */
  declare readonly CLOSING: typeof CLOSING;
  /** {@link WebSocket.CLOSED}, also on instances. */
  declare readonly CLOSED: typeof CLOSED;
  // EventTarget's own methods, typed for a WebSocket's events.
  /** EventTarget's `addEventListener`, typed for {@link WebSocketEventMap}: `open`, `message`, `error`, `close` and Node's `pong`. */
  declare addEventListener: ListenerMethod<WebSocket, WebSocketEventMap, AddListenerOptions>;
  /** EventTarget's `removeEventListener`, typed like {@link addEventListener}. */
  declare removeEventListener: ListenerMethod<WebSocket, WebSocketEventMap, ListenerOptions>;

  readonly #url: string;
  readonly #origin: string;
  readonly #secure: boolean;
  readonly #socket: Socket;
  readonly #maxPayload: number;
  readonly #closeTimeout: number;
  /** Compresses messages from this size on, once permessage-deflate is accepted. */
  readonly #deflateThreshold: number;
  #codec: ZlibDeflateCodec | null = null;

  #readyState: ReadyState = CONNECTING;
  #subprotocol = '';
  #binaryType: BinaryType = 'blob';
  /** Until the server's 101 is read; null after it, or once the handshake failed. */
  #handshake: ClientHandshake | null;
  #protocol: WebSocketProtocol | null = null;
  /** Writes what #protocol queues; created with it. */
  #pump: FramePump | null = null;
  #handshakeTimer: NodeJS.Timeout | null = null;
  #tcpConnected = false;
  #tlsEstablished = false;
  #tlsFailed = false;
  #socketClosed = false;
  /** Why the connection failed, first cause only: the `error` event's `error`. */
  #failure: unknown = undefined;
  readonly #buffered = new BufferedAmount();

  // Sends behind a Blob being read (Blob reads are asynchronous; messages keep their order).
  #queue: Queued[] = [];
  #draining = false;

  /**
   * @throws DOMException `SyntaxError` for an invalid URL, a scheme other than ws, wss,
   * http and https, a fragment, or subprotocols that are not tokens or are repeated;
   * TypeError or RangeError for invalid Node-only options.
   */
  constructor(url: string | URL, protocols?: string | readonly string[], options: WebSocketOptions = {}) {
    super();
    const parsed = parseWebSocketUrl(url);
    const offered = parseProtocols(protocols);
    this.#url = parsed.href;
    this.#origin = parsed.origin;
    this.#secure = parsed.protocol === 'wss:';
    const handshakeTimeout = checkMilliseconds('handshakeTimeout', options.handshakeTimeout, DEFAULT_HANDSHAKE_TIMEOUT);
    this.#closeTimeout = checkMilliseconds('closeTimeout', options.closeTimeout, DEFAULT_CLOSE_TIMEOUT);
    this.#maxPayload = checkMaxPayload(options.maxPayload, DEFAULT_CLIENT_MAX_PAYLOAD);
    const deflate = options.perMessageDeflate ?? true;
    const deflateOptions = deflate === false ? null : deflate === true ? {} : deflate;
    this.#deflateThreshold = deflateOptions?.threshold ?? DEFAULT_DEFLATE_THRESHOLD;
    this.#handshake = new ClientHandshake(parsed, offered, deflateOptions, options);
    this.#socket = dial(parsed, options.tls ?? {}, (chunk) => this.#onData(chunk));
    if (this.#secure) {
      this.#socket.once('secureConnect', () => {
        this.#tlsEstablished = true;
      });
    }
    const socket = this.#socket;
    socket.setNoDelay(true);
    socket.once('connect', () => {
      this.#tcpConnected = true;
    });
    socket.on('end', () => this.#onEnd());
    socket.on('error', (error) => {
      // 'close' follows and reports the closure; the error event carries this as its cause.
      // A failed TLS handshake also gets a close code of its own.
      this.#failure ??= error;
      if (this.#secure && this.#tcpConnected && !this.#tlsEstablished) this.#tlsFailed = true;
    });
    socket.on('close', () => this.#onSocketClose());
    // Written before the connection is up: the socket buffers it until then.
    socket.write(this.#handshake.request, 'latin1');

    this.#handshakeTimer = setTimeout(
      () => this.#failHandshake(new ConnectError('HANDSHAKE_TIMEOUT', `no answer to the upgrade within ${handshakeTimeout} ms`)),
      handshakeTimeout,
    );
    this.#handshakeTimer.unref();
  }

  /** The URL as parsed: http: and https: became ws: and wss:. */
  get url(): string {
    return this.#url;
  }

  /** CONNECTING (0) until the server's 101, OPEN (1), CLOSING (2) from the closing handshake's start, CLOSED (3). */
  get readyState(): ReadyState {
    return this.#readyState;
  }

  /** The subprotocol the server selected; '' if none. */
  get protocol(): string {
    return this.#subprotocol;
  }

  /** The extensions the server accepted, as its response named them. */
  get extensions(): string {
    return this.#codec?.extension ?? '';
  }

  get binaryType(): BinaryType {
    return this.#binaryType;
  }

  /** 'blob' (default), 'arraybuffer', or the Node-only 'nodebuffer'; other values are ignored, as in browsers. */
  set binaryType(value: BinaryType) {
    if (value === 'blob' || value === 'arraybuffer' || value === 'nodebuffer') this.#binaryType = value;
  }

  /** Bytes of application data queued by `send` and not yet handed to the operating system. */
  get bufferedAmount(): number {
    if (!this.#socketClosed) this.#settleWritten();
    return this.#buffered.amount;
  }

  /**
   * Sends a message: a string as text; an ArrayBuffer, a view of one, or a Blob as binary.
   * After the closing handshake has started the data is discarded, yet counted in
   * `bufferedAmount`, as the spec says.
   * @throws DOMException `InvalidStateError` while CONNECTING.
   */
  send(data: WebSocketData): void {
    // Web IDL: the argument is required (undefined would otherwise go as "undefined").
    if (arguments.length === 0) throw new TypeError('send() needs an argument');
    if (this.#readyState === CONNECTING) {
      throw new DOMException('cannot send before the connection is open', 'InvalidStateError');
    }
    let item: Queued;
    if (data instanceof Blob) {
      item = { kind: 'blob', blob: data, size: data.size };
    } else if (isAnyArrayBuffer(data) || ArrayBuffer.isView(data)) {
      const bytes = bytesOf(data);
      item = { kind: 'data', payload: bytes, size: bytes.length };
    } else {
      const text = toUsvString(data);
      item = { kind: 'data', payload: text, size: Buffer.byteLength(text) };
    }
    this.#buffered.add(item.size);
    if (this.#readyState !== OPEN) return;
    if (item.kind === 'data' && !this.#draining) this.#transmit(item.payload, item.size);
    else this.#enqueue(item);
  }

  /**
   * Starts the closing handshake (or, while CONNECTING, abandons the connection). The
   * connection is CLOSED once the server closes TCP, or after `closeTimeout`.
   * @throws DOMException `InvalidAccessError` for a code other than 1000 or 3000–4999;
   * `SyntaxError` for a reason over 123 bytes of UTF-8.
   */
  close(code?: number, reason?: string): void {
    const args = closeArguments(code, reason);
    if (this.#readyState === CLOSING || this.#readyState === CLOSED) return;
    if (this.#readyState === CONNECTING) {
      // Failing the connection: no handshake to finish; error and close (1006) follow.
      this.#readyState = CLOSING;
      this.#failure ??= new ConnectError('ABORTED', 'close() was called before the connection opened');
      this.#abandonHandshake();
      return;
    }
    this.#readyState = CLOSING;
    if (this.#draining) this.#enqueue({ kind: 'close', ...args });
    else this.#startClosingHandshake(args.code, args.reason);
  }

  /** Node-only: sends a ping (at most 125 bytes); the answer fires a `pong` event. */
  ping(data: string | ArrayBufferLike | ArrayBufferView = ''): void {
    if (this.#readyState === CONNECTING) {
      throw new DOMException('cannot ping before the connection is open', 'InvalidStateError');
    }
    const protocol = this.#protocol;
    if (this.#readyState !== OPEN || protocol === null || !protocol.canSend) return;
    protocol.ping(typeof data === 'string' ? data : bytesOf(data));
    this.#pump!.schedule();
  }

  // Opening handshake

  #onData(chunk: Buffer): void {
    if (this.#protocol !== null) {
      this.#receive(chunk);
      return;
    }
    const handshake = this.#handshake;
    if (handshake === null) return; // the handshake already failed
    let accepted: HandshakeResult | null;
    try {
      accepted = handshake.push(chunk);
    } catch (error) {
      // A malformed head, a status other than 101 (the error's `status`), a wrong accept,
      // an unoffered subprotocol or extension: all fail the connection with 1006.
      this.#failHandshake(error);
      return;
    }
    if (accepted === null) return;
    const { codec } = accepted;
    this.#handshake = null;
    this.#clearHandshakeTimer();
    this.#codec = codec;
    this.#protocol = new WebSocketProtocol(this.#protocolHandler(), {
      role: 'client',
      maxPayload: this.#maxPayload,
      deflate: codec ?? undefined,
    });
    this.#pump = new FramePump(this.#socket, this.#protocol, this.#closeTimeout);
    this.#subprotocol = accepted.protocol;
    this.#readyState = OPEN;
    this.dispatchEvent(new Event('open'));
    // Frames that came in the same read as the response head.
    const rest = accepted.rest;
    if (rest.length > 0 && !this.#socket.destroyed) this.#receive(rest);
  }

  #failHandshake(cause: unknown): void {
    if (this.#protocol !== null || this.#handshake === null) return;
    this.#failure ??= cause;
    this.#abandonHandshake();
  }

  #abandonHandshake(): void {
    this.#handshake = null;
    this.#clearHandshakeTimer();
    this.#socket.destroy();
  }

  #clearHandshakeTimer(): void {
    if (this.#handshakeTimer !== null) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
  }

  // The open connection

  #protocolHandler(): ProtocolHandler {
    return {
      onMessage: (data: Buffer, binary: boolean) => this.#onMessage(data, binary),
      onPong: (payload: Buffer) => {
        this.dispatchEvent(new MessageEvent('pong', { data: payload, origin: this.#origin }));
      },
      onClose: (_info: CloseInfo) => {
        // The server started (or answered) the closing handshake; its answer is queued.
        // Now the server is to close TCP.
        if (this.#readyState === OPEN) this.#readyState = CLOSING;
        this.#pump!.armCloseTimer();
      },
      onProtocolError: () => {
        // The protocol queued a close frame with the error's code; the pump writes it and
        // closes TCP at once (failing the connection).
        if (this.#readyState === OPEN) this.#readyState = CLOSING;
      },
    };
  }

  #onMessage(data: Buffer, binary: boolean): void {
    // The spec drops messages that arrive once the closing handshake has started.
    if (this.#readyState !== OPEN) return;
    let payload: string | Blob | ArrayBuffer | Buffer;
    if (!binary) payload = data.toString('utf8');
    else if (this.#binaryType === 'nodebuffer') payload = data;
    else if (this.#binaryType === 'arraybuffer') payload = toArrayBuffer(data);
    else payload = new Blob([data]);
    this.dispatchEvent(new MessageEvent('message', { data: payload, origin: this.#origin }));
  }

  #receive(chunk: Uint8Array): void {
    // Handlers only dispatch events, and dispatchEvent reports listener exceptions itself
    // instead of throwing, so receiveData does not throw here.
    const pump = this.#pump!;
    pump.beginRead();
    try {
      this.#protocol!.receiveData(chunk);
    } finally {
      pump.endRead();
    }
  }

  #onEnd(): void {
    const protocol = this.#protocol;
    if (protocol === null) return; // during the handshake 'close' follows and fails it
    protocol.receiveEof();
    this.#pump!.flush();
  }

  #onSocketClose(): void {
    this.#socketClosed = true;
    this.#clearHandshakeTimer();
    this.#pump?.stop();
    this.#settleWritten();
    if (this.#readyState === CLOSED) return;
    const protocol = this.#protocol;
    const received = protocol?.closeReceived ?? null;
    // RFC 6455 §7.1.5, §7.4.1: the code of the server's close frame; 1006 without one,
    // or 1015 when the TLS handshake failed.
    const code = received?.code ?? (this.#tlsFailed ? CloseCode.TlsHandshake : CloseCode.AbnormalClosure);
    const wasClean = protocol !== null && received !== null && protocol.closeSent !== null && protocol.failure === null;
    this.#readyState = CLOSED;
    this.#queue = [];
    if (received === null) {
      if (this.#handshake !== null) this.#failure ??= new ConnectError('NO_RESPONSE', 'the server closed the connection before answering the upgrade');
      const error = protocol?.failure ?? this.#failure;
      const message = error instanceof Error ? error.message : 'the connection closed without a closing handshake';
      this.dispatchEvent(new ErrorEvent('error', { error, message }));
    }
    this.dispatchEvent(new CloseEvent('close', { code, reason: received?.reason ?? '', wasClean }));
  }

  // Sending

  #transmit(payload: string | Buffer, size: number): void {
    const protocol = this.#protocol;
    // Once the close frame is out nothing more may go; the bytes stay counted, unsent.
    if (protocol === null || !protocol.canSend) return;
    const compress = this.#codec !== null && size >= this.#deflateThreshold;
    protocol.send(payload, { binary: typeof payload !== 'string', compress });
    const pump = this.#pump!;
    this.#buffered.transmitted(pump.taken + protocol.bufferedAmount, size);
    pump.schedule();
  }

  #startClosingHandshake(code: number | undefined, reason: string): void {
    const protocol = this.#protocol;
    if (protocol === null || !protocol.canSend) return;
    protocol.close(code, reason);
    const pump = this.#pump!;
    pump.schedule();
    pump.armCloseTimer();
  }

  #enqueue(item: Queued): void {
    this.#queue.push(item);
    if (!this.#draining) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    while (this.#queue.length > 0) {
      const item = this.#queue.shift()!;
      if (item.kind === 'close') {
        this.#startClosingHandshake(item.code, item.reason);
      } else if (item.kind === 'data') {
        this.#transmit(item.payload, item.size);
      } else {
        let bytes: Buffer;
        try {
          bytes = Buffer.from(await item.blob.arrayBuffer());
        } catch {
          // The message cannot be sent, so the ones after it must not be either.
          this.#queue = [];
          this.#protocol?.fail(CloseCode.InternalError, 'could not read a Blob to send');
          this.#pump?.flush();
          break;
        }
        if (this.#readyState === CLOSED) break;
        this.#transmit(bytes, item.size);
      }
    }
    this.#draining = false;
  }

  /** Drops from bufferedAmount the messages whose frames the socket has written. */
  #settleWritten(): void {
    const pump = this.#pump;
    this.#buffered.settle(pump === null ? 0 : pump.taken - pump.unwritten);
  }

  /** Handler of the `open` event: the handshake succeeded and `protocol` and `extensions` are set. */
  get onopen(): Handler<Event> {
    return this.getHandler('open');
  }

  set onopen(value: Handler<Event>) {
    this.setHandler('open', value);
  }

  /** Handler of the `message` event: `data` is a string for text, and for binary what `binaryType` says. */
  get onmessage(): Handler<WebSocketEventMap['message']> {
    return this.getHandler('message');
  }

  set onmessage(value: Handler<WebSocketEventMap['message']>) {
    this.setHandler('message', value);
  }

  /** Handler of the `error` event, fired before `close` when the connection failed; its `error` says why. */
  get onerror(): Handler<ErrorEvent> {
    return this.getHandler('error');
  }

  set onerror(value: Handler<ErrorEvent>) {
    this.setHandler('error', value);
  }

  /** Handler of the `close` event, fired once, last, however the connection ended (also if it never opened). */
  get onclose(): Handler<CloseEvent> {
    return this.getHandler('close');
  }

  set onclose(value: Handler<CloseEvent>) {
    this.setHandler('close', value);
  }
}

// The constants are on the prototype too (WHATWG: `ws.OPEN === 1`), read-only as in Web IDL.
for (const [name, value] of Object.entries({ CONNECTING, OPEN, CLOSING, CLOSED })) {
  Object.defineProperty(WebSocket.prototype, name, { value, enumerable: true });
}

Object.defineProperty(WebSocket.prototype, Symbol.toStringTag, { value: 'WebSocket', configurable: true });
