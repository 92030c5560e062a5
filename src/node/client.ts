import { Buffer } from 'node:buffer';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { isAnyArrayBuffer } from 'node:util/types';
import { formatExtensions, type ExtensionOffer } from '../protocol/extensions-header.js';
import { buildClientRequest, validateServerResponse } from '../protocol/handshake.js';
import { HttpHeadParser, isToken } from '../protocol/http-head.js';
import {
  acceptDeflateResponse,
  CloseCode,
  deflateClientOffer,
  isApplicationCloseCode,
  MAX_CLOSE_REASON_BYTES,
  WebSocketProtocol,
  type DeflateClientOptions,
  type CloseInfo,
  type ProtocolHandler,
} from '../protocol/index.js';
import { DEFAULT_DEFLATE_THRESHOLD, ZlibDeflateCodec, type PerMessageDeflateOptions } from './deflate.js';
import { CloseEvent, toUsvString } from './events.js';
import { FramePump } from './frame-pump.js';
import { DEFAULT_CLOSE_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT } from './timeouts.js';

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

/** The client's permessage-deflate: what it offers, and how it compresses. */
export interface ClientDeflateOptions extends DeflateClientOptions, PerMessageDeflateOptions {}

export type BinaryType = 'blob' | 'arraybuffer' | 'nodebuffer';

export type WebSocketData = string | ArrayBufferLike | ArrayBufferView | Blob;

/** A `message` event: `data` is a string for text, and for binary what `binaryType` says. */
export type WebSocketMessageEvent = Omit<MessageEvent, 'data'> & { readonly data: string | Blob | ArrayBuffer | Buffer };

/** The Node-only `pong` event: `data` is the pong's payload. */
export type WebSocketPongEvent = Omit<MessageEvent, 'data'> & { readonly data: Buffer };

/** Events a WebSocket fires; `pong` is Node-only. */
export interface WebSocketEventMap {
  open: Event;
  message: WebSocketMessageEvent;
  error: Event;
  close: CloseEvent;
  pong: WebSocketPongEvent;
}

/** The DOM's listener types (Node's typings keep theirs private). */
type EventListenerLike = ((event: Event) => void) | { handleEvent(event: Event): void };
type TypedListener<E extends Event> = ((this: WebSocket, event: E) => unknown) | { handleEvent(event: E): unknown };
interface ListenerOptions {
  capture?: boolean;
}
interface AddListenerOptions extends ListenerOptions {
  once?: boolean;
  passive?: boolean;
  signal?: AbortSignal;
}

type Handler<E extends Event> = ((this: WebSocket, event: E) => unknown) | null;
type AnyHandler = (this: WebSocket, event: Event) => unknown;

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

function syntaxError(message: string): DOMException {
  return new DOMException(message, 'SyntaxError');
}

/** Parses and checks the URL as the WebSocket constructor does (WHATWG WebSockets §3.1). */
function parseWebSocketUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw syntaxError(`invalid URL ${JSON.stringify(String(input))}`);
  }
  // The current spec maps http(s) to ws(s). Both are special schemes, so only the prefix changes.
  if (url.protocol === 'http:') url = new URL('ws' + url.href.slice('http'.length));
  else if (url.protocol === 'https:') url = new URL('wss' + url.href.slice('https'.length));
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw syntaxError(`URL scheme must be ws: or wss:, got ${url.protocol}`);
  }
  // `hash` is '' both without a fragment and with an empty one; the href tells them apart.
  if (url.href.includes('#')) throw syntaxError('a WebSocket URL may not have a fragment');
  return url;
}

function parseProtocols(protocols: string | readonly string[] | undefined): string[] {
  if (protocols === undefined) return [];
  // Web IDL `(DOMString or sequence<DOMString>)`: an iterable is a list, anything else a string.
  const iterable = typeof protocols === 'object' && protocols !== null && Symbol.iterator in protocols;
  const list = iterable ? Array.from(protocols, String) : [String(protocols)];
  const seen = new Set<string>();
  for (const p of list) {
    if (!isToken(p)) throw syntaxError(`subprotocol ${JSON.stringify(p)} is not a token`);
    if (seen.has(p)) throw syntaxError(`subprotocol ${JSON.stringify(p)} is listed twice`);
    seen.add(p);
  }
  return list;
}

function checkMilliseconds(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number of milliseconds`);
  }
  return value;
}

/** Web IDL `[Clamp] unsigned short`: clamped to 0–65535, rounded half to even. */
function clampUnsignedShort(value: unknown): number {
  const n = Number(value);
  if (Number.isNaN(n)) return 0;
  const x = Math.min(Math.max(n, 0), 65535);
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5 || (fraction === 0.5 && floor % 2 === 1)) return floor + 1;
  return floor;
}

function bytesOf(data: ArrayBufferLike | ArrayBufferView): Buffer {
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** An ArrayBuffer holding exactly `data`, without a copy when `data` already spans one alone. */
function toArrayBuffer(data: Buffer): ArrayBuffer {
  const buffer = data.buffer;
  if (buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buffer.byteLength) return buffer;
  return buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
}

/**
 * The WHATWG `WebSocket` for Node: the same constructor, attributes, methods and events as
 * in a browser, so that browser code runs unchanged; Node-only settings go in a third
 * constructor argument. The connection runs on hotline's sans-I/O protocol core.
 *
 * Events are dispatched synchronously from the socket's callbacks (one socket read is one
 * task), in the order the spec queues them.
 */
export class WebSocket extends EventTarget {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  declare readonly CONNECTING: typeof CONNECTING;
  declare readonly OPEN: typeof OPEN;
  declare readonly CLOSING: typeof CLOSING;
  declare readonly CLOSED: typeof CLOSED;

  readonly #url: string;
  readonly #origin: string;
  readonly #secure: boolean;
  readonly #socket: Socket;
  readonly #key: string;
  readonly #offered: string[];
  readonly #maxPayload: number;
  readonly #closeTimeout: number;
  readonly #deflate: ClientDeflateOptions | null;
  #offeredExtensions: ExtensionOffer[] = [];
  #codec: ZlibDeflateCodec | null = null;

  #readyState: ReadyState = CONNECTING;
  #subprotocol = '';
  #binaryType: BinaryType = 'blob';
  #parser: HttpHeadParser<'response'> | null = new HttpHeadParser('response');
  #protocol: WebSocketProtocol | null = null;
  /** Writes what #protocol queues; created with it. */
  #pump: FramePump | null = null;
  #handshakeTimer: NodeJS.Timeout | null = null;
  #tcpConnected = false;
  #tlsEstablished = false;
  #tlsFailed = false;
  #socketClosed = false;

  // bufferedAmount: application bytes sent and not yet handed to the OS. Each transmitted
  // message is recorded with the offset, in the stream of bytes taken from the protocol,
  // at which its frames end; it leaves the count once the socket has written past it.
  #buffered = 0;
  #inFlight: Array<{ end: number; size: number }> = [];
  #inFlightHead = 0;

  // Sends behind a Blob being read (Blob reads are asynchronous; messages keep their order).
  #queue: Queued[] = [];
  #draining = false;

  readonly #handlers = new Map<string, { handler: AnyHandler; listener: (event: Event) => void }>();

  /**
   * @throws DOMException `SyntaxError` for an invalid URL, a scheme other than ws, wss,
   * http and https, a fragment, or subprotocols that are not tokens or are repeated;
   * TypeError or RangeError for invalid Node-only options.
   */
  constructor(url: string | URL, protocols?: string | readonly string[], options: WebSocketOptions = {}) {
    super();
    const parsed = parseWebSocketUrl(url);
    this.#offered = parseProtocols(protocols);
    this.#url = parsed.href;
    this.#origin = parsed.origin;
    this.#secure = parsed.protocol === 'wss:';
    const handshakeTimeout = checkMilliseconds('handshakeTimeout', options.handshakeTimeout, DEFAULT_HANDSHAKE_TIMEOUT);
    this.#closeTimeout = checkMilliseconds('closeTimeout', options.closeTimeout, DEFAULT_CLOSE_TIMEOUT);
    if (options.maxPayload !== undefined && !(Number.isSafeInteger(options.maxPayload) && options.maxPayload >= 0)) {
      throw new RangeError('maxPayload must be a non-negative integer (0 for no limit)');
    }
    this.#maxPayload = options.maxPayload ?? DEFAULT_CLIENT_MAX_PAYLOAD;
    const deflate = options.perMessageDeflate ?? true;
    this.#deflate = deflate === false ? null : deflate === true ? {} : deflate;
    if (this.#deflate !== null) this.#offeredExtensions = [deflateClientOffer(this.#deflate)];

    // Host carries the port only when it is not the scheme's default; the URL parser already
    // dropped a default port, so `host` is exactly the field's value.
    const { key, request } = buildClientRequest({
      host: parsed.host,
      path: parsed.pathname + parsed.search,
      protocols: this.#offered,
      origin: options.origin,
      headers: options.headers,
      extensions: this.#offeredExtensions,
    });
    this.#key = key;

    const hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
    const port = parsed.port === '' ? (this.#secure ? 443 : 80) : Number(parsed.port);
    if (this.#secure) {
      const tlsOptions = options.tls ?? {};
      this.#socket = tlsConnect({
        ...tlsOptions,
        host: hostname,
        port,
        // SNI takes host names only (RFC 6066 §3).
        servername: tlsOptions.servername ?? (isIP(hostname) === 0 ? hostname : undefined),
      });
      this.#socket.once('secureConnect', () => {
        this.#tlsEstablished = true;
      });
    } else {
      this.#socket = netConnect({ host: hostname, port });
    }
    const socket = this.#socket;
    socket.setNoDelay(true);
    socket.once('connect', () => {
      this.#tcpConnected = true;
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('error', () => {
      // What failed is not exposed (browsers do not expose it either); 'close' follows and
      // reports the closure. Only a failed TLS handshake gets a code of its own.
      if (this.#secure && this.#tcpConnected && !this.#tlsEstablished) this.#tlsFailed = true;
    });
    socket.on('close', () => this.#onSocketClose());
    // Written before the connection is up: the socket buffers it until then.
    socket.write(request, 'latin1');

    this.#handshakeTimer = setTimeout(() => this.#failHandshake(), handshakeTimeout);
    this.#handshakeTimer.unref();
  }

  get url(): string {
    return this.#url;
  }

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
    this.#settleWritten();
    return this.#buffered;
  }

  get onopen(): Handler<Event> {
    return this.#getHandler('open');
  }

  set onopen(value: Handler<Event>) {
    this.#setHandler('open', value);
  }

  get onmessage(): Handler<WebSocketEventMap['message']> {
    return this.#getHandler('message');
  }

  set onmessage(value: Handler<WebSocketEventMap['message']>) {
    this.#setHandler('message', value);
  }

  get onerror(): Handler<Event> {
    return this.#getHandler('error');
  }

  set onerror(value: Handler<Event>) {
    this.#setHandler('error', value);
  }

  get onclose(): Handler<CloseEvent> {
    return this.#getHandler('close');
  }

  set onclose(value: Handler<CloseEvent>) {
    this.#setHandler('close', value);
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
    this.#buffered += item.size;
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
    let closeCode: number | undefined;
    if (code !== undefined) {
      closeCode = clampUnsignedShort(code);
      if (closeCode !== CloseCode.NormalClosure && !isApplicationCloseCode(closeCode)) {
        throw new DOMException(`close code must be 1000 or in 3000–4999, got ${String(code)}`, 'InvalidAccessError');
      }
    }
    let closeReason = '';
    if (reason !== undefined) {
      closeReason = toUsvString(reason);
      const length = Buffer.byteLength(closeReason);
      if (length > MAX_CLOSE_REASON_BYTES) {
        throw syntaxError(`close reason is ${length} bytes of UTF-8; the limit is ${MAX_CLOSE_REASON_BYTES}`);
      }
    }
    if (this.#readyState === CLOSING || this.#readyState === CLOSED) return;
    if (this.#readyState === CONNECTING) {
      // Failing the connection: no handshake to finish; error and close (1006) follow.
      this.#readyState = CLOSING;
      this.#abandonHandshake();
      return;
    }
    this.#readyState = CLOSING;
    // A close frame cannot carry a reason without a code; 1000 is what a reason implies.
    if (closeCode === undefined && closeReason !== '') closeCode = CloseCode.NormalClosure;
    if (this.#draining) this.#enqueue({ kind: 'close', code: closeCode, reason: closeReason });
    else this.#startClosingHandshake(closeCode, closeReason);
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
    const parser = this.#parser;
    if (parser === null) return; // the handshake already failed
    let accepted: { protocol: string; extensions: ExtensionOffer[] };
    let codec: ZlibDeflateCodec | null = null;
    try {
      const head = parser.push(chunk);
      if (head === null) return;
      accepted = validateServerResponse(head, {
        key: this.#key,
        protocols: this.#offered,
        extensions: this.#offeredExtensions,
      });
      const { extensions } = accepted;
      const params = this.#deflate === null ? null : acceptDeflateResponse(extensions, this.#deflate, head.status);
      // extensions reports the header as the server sent it (RFC 6455 §4.1, WHATWG).
      const header = head.headers.get('sec-websocket-extensions') ?? formatExtensions(extensions);
      if (params !== null) codec = new ZlibDeflateCodec(params, 'client', header, this.#deflate!);
    } catch {
      // A malformed head, a status other than 101, a wrong accept, an unoffered
      // subprotocol or extension: all fail the connection with 1006.
      this.#failHandshake();
      return;
    }
    this.#parser = null;
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
    const rest = parser.rest;
    if (rest.length > 0 && !this.#socket.destroyed) this.#receive(rest);
  }

  #failHandshake(): void {
    if (this.#protocol !== null || this.#parser === null) return;
    this.#abandonHandshake();
  }

  #abandonHandshake(): void {
    this.#parser = null;
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
    this.#settleWritten(true);
    if (this.#readyState === CLOSED) return;
    const protocol = this.#protocol;
    const received = protocol?.closeReceived ?? null;
    // RFC 6455 §7.1.5, §7.4.1: the code of the server's close frame; 1006 without one,
    // or 1015 when the TLS handshake failed.
    const code = received?.code ?? (this.#tlsFailed ? CloseCode.TlsHandshake : CloseCode.AbnormalClosure);
    const wasClean = protocol !== null && received !== null && protocol.closeSent !== null && protocol.failure === null;
    this.#readyState = CLOSED;
    this.#queue = [];
    if (received === null) this.dispatchEvent(new Event('error'));
    this.dispatchEvent(new CloseEvent('close', { code, reason: received?.reason ?? '', wasClean }));
  }

  // Sending

  #transmit(payload: string | Buffer, size: number): void {
    const protocol = this.#protocol;
    // Once the close frame is out nothing more may go; the bytes stay counted, unsent.
    if (protocol === null || !protocol.canSend) return;
    const compress = this.#codec !== null && size >= (this.#deflate!.threshold ?? DEFAULT_DEFLATE_THRESHOLD);
    protocol.send(payload, { binary: typeof payload !== 'string', compress });
    const pump = this.#pump!;
    this.#inFlight.push({ end: pump.taken + protocol.bufferedAmount, size });
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
  #settleWritten(final = false): void {
    if (this.#socketClosed && !final) return;
    const written = (this.#pump?.taken ?? 0) - this.#socket.writableLength;
    const inFlight = this.#inFlight;
    let head = this.#inFlightHead;
    while (head < inFlight.length && inFlight[head]!.end <= written) {
      this.#buffered -= inFlight[head]!.size;
      head++;
    }
    if (head === inFlight.length) {
      this.#inFlight = [];
      head = 0;
    } else if (head > 1024 && head * 2 > inFlight.length) {
      this.#inFlight = inFlight.slice(head);
      head = 0;
    }
    this.#inFlightHead = head;
  }

  override addEventListener<K extends keyof WebSocketEventMap>(
    type: K,
    listener: TypedListener<WebSocketEventMap[K]>,
    options?: boolean | AddListenerOptions,
  ): void;
  override addEventListener(type: string, listener: EventListenerLike, options?: boolean | AddListenerOptions): void;
  override addEventListener(type: string, listener: EventListenerLike, options?: boolean | AddListenerOptions): void {
    super.addEventListener(type, listener, options);
  }

  override removeEventListener<K extends keyof WebSocketEventMap>(
    type: K,
    listener: TypedListener<WebSocketEventMap[K]>,
    options?: boolean | ListenerOptions,
  ): void;
  override removeEventListener(type: string, listener: EventListenerLike, options?: boolean | ListenerOptions): void;
  override removeEventListener(type: string, listener: EventListenerLike, options?: boolean | ListenerOptions): void {
    super.removeEventListener(type, listener, options);
  }

  // Event handler attributes: one listener per type, added when a handler is first set and
  // kept in place when it is replaced (so it keeps its order among the listeners).

  #getHandler<E extends Event>(type: string): Handler<E> {
    return (this.#handlers.get(type)?.handler ?? null) as Handler<E>;
  }

  #setHandler<E extends Event>(type: string, value: Handler<E>): void {
    const slot = this.#handlers.get(type);
    if (typeof value !== 'function') {
      if (slot !== undefined) {
        this.removeEventListener(type, slot.listener);
        this.#handlers.delete(type);
      }
      return;
    }
    const handler = value as AnyHandler;
    if (slot !== undefined) {
      slot.handler = handler;
      return;
    }
    const created = {
      handler,
      listener: (event: Event): void => {
        created.handler.call(this, event);
      },
    };
    this.#handlers.set(type, created);
    this.addEventListener(type, created.listener);
  }
}

// The constants are on the prototype too (WHATWG: `ws.OPEN === 1`), read-only as in Web IDL.
for (const [name, value] of Object.entries({ CONNECTING, OPEN, CLOSING, CLOSED })) {
  Object.defineProperty(WebSocket.prototype, name, { value, enumerable: true });
}

Object.defineProperty(WebSocket.prototype, Symbol.toStringTag, { value: 'WebSocket', configurable: true });
