/**
 * The DOM's event pieces the WHATWG `WebSocket` needs and Node 20 lacks: `CloseEvent`, the
 * event map and listener types, and event handler attributes (`onopen`, …).
 */
import type { Buffer } from 'node:buffer';

/** The DOM's `EventInit` (Node's typings keep theirs private). */
export interface EventInitDict {
  bubbles?: boolean;
  cancelable?: boolean;
  composed?: boolean;
}

/** The DOM's `CloseEventInit`: what a {@link CloseEvent} is built from. */
export interface CloseEventInit extends EventInitDict {
  /** Whether the closing handshake completed; default false. */
  wasClean?: boolean;
  /** The close code, converted as a Web IDL unsigned short (modulo 2^16); default 0. */
  code?: number;
  /** The close reason, lone surrogates replaced by U+FFFD; default `''`. */
  reason?: string;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Web IDL `USVString`: lone surrogates become U+FFFD. */
export function toUsvString(value: unknown): string {
  return String(value).replace(LONE_SURROGATE, '\uFFFD');
}

/** Web IDL `unsigned short`: ToNumber, non-finite to 0, truncate, modulo 2^16. */
function toUnsignedShort(value: unknown): number {
  const n = Number(value);
  if (!Number.isFinite(n)) return 0;
  return ((Math.trunc(n) % 65536) + 65536) % 65536;
}

/**
 * The DOM's `CloseEvent`, which Node 20 lacks as a global. Built like the browser's: the
 * init dictionary's members are converted as Web IDL converts them, and the attributes are
 * read-only getters on the prototype.
 */
export class CloseEvent extends Event {
  /** The init dictionary, converted. */
  readonly #init: Readonly<Required<Pick<CloseEventInit, 'wasClean' | 'code' | 'reason'>>>;

  constructor(type: string, init: CloseEventInit = {}) {
    super(type, init);
    this.#init = {
      wasClean: Boolean(init.wasClean),
      code: init.code === undefined ? 0 : toUnsignedShort(init.code),
      reason: init.reason === undefined ? '' : toUsvString(init.reason),
    };
  }

  /** Whether the closing handshake completed. */
  get wasClean(): boolean {
    return this.#init.wasClean;
  }

  /** The close code the server sent, or 1005, 1006 or 1015 (RFC 6455 §7.4.1). */
  get code(): number {
    return this.#init.code;
  }

  /** The close reason the peer sent (UTF-8, at most 123 bytes), or `''`. */
  get reason(): string {
    return this.#init.reason;
  }

  /** `'CloseEvent'`, so `Object.prototype.toString` names it as browsers do. */
  get [Symbol.toStringTag](): string {
    return 'CloseEvent';
  }
}

/** The DOM's `ErrorEventInit`: what an {@link ErrorEvent} is built from. */
export interface ErrorEventInit extends EventInitDict {
  /** A readable description; default `''`. */
  message?: string;
  /** The error itself, whatever was thrown or reported; default undefined. */
  error?: unknown;
}

/**
 * The DOM's `ErrorEvent`, which Node 20 lacks as a global: the `error` event of a
 * connection that failed. Browsers hide why (a page must not probe the network), so their
 * `error` event is a plain Event; in Node, as in Node's own WebSocket, `error` says why:
 * a `HandshakeError` whose `status` is the server's answer to the upgrade (401, 404, …),
 * the socket's error (`code` ECONNREFUSED, ENOTFOUND, a TLS code such as
 * DEPTH_ZERO_SELF_SIGNED_CERT), a `ConnectError` (no answer in time, none at all), or the
 * `ProtocolError` the connection was failed with.
 */
export class ErrorEvent extends Event {
  readonly #message: string;
  readonly #error: unknown;

  constructor(type: string, init: ErrorEventInit = {}) {
    super(type, init);
    this.#message = init.message === undefined ? '' : String(init.message);
    this.#error = init.error;
  }

  /** A readable description of the failure, the error's message. */
  get message(): string {
    return this.#message;
  }

  /** Why the connection failed: a `HandshakeError`, `ConnectError`, `ProtocolError` or Node's socket error (see the class). */
  get error(): unknown {
    return this.#error;
  }

  /** The DOM's script location fields: always empty here. */
  get filename(): string {
    return '';
  }

  /** Always 0: there is no script location. */
  get lineno(): number {
    return 0;
  }

  /** Always 0: there is no script location. */
  get colno(): number {
    return 0;
  }

  /** `'ErrorEvent'`, as in browsers. */
  get [Symbol.toStringTag](): string {
    return 'ErrorEvent';
  }
}

/**
 * A `message` event's data for `binaryType` 'arraybuffer': an ArrayBuffer holding exactly
 * `data`, without a copy when `data` already spans one alone.
 */
export function toArrayBuffer(data: Buffer): ArrayBuffer {
  const buffer = data.buffer;
  if (buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buffer.byteLength) return buffer;
  return buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
}

/** A `message` event: `data` is a string for text, and for binary what `binaryType` says. */
export type WebSocketMessageEvent = Omit<MessageEvent, 'data'> & {
  /** The message: a string for text; a Blob, ArrayBuffer or Buffer for binary, as `binaryType` says. */
  readonly data: string | Blob | ArrayBuffer | Buffer;
};

/** The Node-only `pong` event: `data` is the pong's payload. */
export type WebSocketPongEvent = Omit<MessageEvent, 'data'> & {
  /** The pong's payload, at most 125 bytes. */
  readonly data: Buffer;
};

/** Events a WebSocket fires; `pong` is Node-only. */
export interface WebSocketEventMap {
  /** The opening handshake succeeded. */
  open: Event;
  /** A whole message arrived. */
  message: WebSocketMessageEvent;
  /** The connection failed (or never opened); `close` follows. */
  error: ErrorEvent;
  /** The connection is closed; the last event. */
  close: CloseEvent;
  /** A pong arrived: the answer to `ping()`, or an unsolicited one (Node-only). */
  pong: WebSocketPongEvent;
}

/** The DOM's listener types (Node's typings keep theirs private). */
type EventListenerLike = ((event: Event) => void) | { handleEvent(event: Event): void };
type TypedListener<T, E extends Event> = ((this: T, event: E) => unknown) | { handleEvent(event: E): unknown };

export interface ListenerOptions {
  capture?: boolean;
}

export interface AddListenerOptions extends ListenerOptions {
  once?: boolean;
  passive?: boolean;
  signal?: AbortSignal;
}

/** `addEventListener` or `removeEventListener` of a target `T` firing the events of `M`: typed for its own events. */
export interface ListenerMethod<T, M, O> {
  <K extends keyof M & string>(type: K, listener: TypedListener<T, M[K] & Event>, options?: boolean | O): void;
  (type: string, listener: EventListenerLike, options?: boolean | O): void;
}

/** The value of an event handler attribute such as `onopen`. */
export type EventHandler<T, E extends Event> = ((this: T, event: E) => unknown) | null;

type AnyHandler = (this: unknown, event: Event) => unknown;

/**
 * An EventTarget with event handler attributes: one listener per type, added when a
 * handler is first set and kept in place when it is replaced (so it keeps its order among
 * the listeners), removed when the attribute is set to anything but a function.
 */
export class EventHandlerTarget extends EventTarget {
  readonly #handlers = new Map<string, { handler: AnyHandler; listener: (event: Event) => void }>();

  protected getHandler<H>(type: string): H | null {
    return (this.#handlers.get(type)?.handler ?? null) as H | null;
  }

  protected setHandler(type: string, value: unknown): void {
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
