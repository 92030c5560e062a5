import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Buffer } from 'node:buffer';
import { buildServerResponse, validateClientRequest, type AcceptedRequest, type ServerHandshakeOptions } from '../protocol/handshake.js';
import { buildRejectResponse } from '../protocol/reject-response.js';
import { HandshakeError } from '../protocol/errors.js';
import { formatExtensions } from '../protocol/extensions-header.js';
import { negotiateDeflateServer, type DeflateServerOptions } from '../protocol/permessage-deflate.js';
import type { HttpRequestHead } from '../protocol/http-head.js';
import { CloseCode, SHUTTING_DOWN } from '../protocol/close-code.js';
import { DEFAULT_MAX_PAYLOAD, ProtocolState } from '../protocol/websocket-protocol.js';
import {
  ConnectionContext,
  WebSocketConnection,
  type ConnectionCounters,
  type ConnectionHandlers,
  type MessageTap,
  type ConnectionOptions,
  type ConnectionSendOptions,
  type SendData,
} from './connection.js';
import { DEFAULT_DEFLATE_THRESHOLD, ZlibDeflateCodec, type PerMessageDeflateOptions } from './deflate.js';
import { inflateBudget } from './inflate-budget.js';
import { DEFAULT_CLOSE_TIMEOUT } from './timeouts.js';
import { TopicRegistry } from './topics.js';
import { ConnectionSet } from './connection-set.js';
import { isPromiseLike } from './promise-like.js';
import { compileTrustProxy, setClientAddress, type ClientAddress, type TrustProxy } from './trust-proxy.js';

/** A server's permessage-deflate: what it negotiates, and how it compresses. */
export interface ServerDeflateOptions extends DeflateServerOptions, PerMessageDeflateOptions {}

/** An upgrade refused before the handshake completes, answered as plain HTTP. */
export interface UpgradeRejection {
  /** The HTTP status, 200–599 except 204 and 304 (for example 401, 403, 503). */
  status: number;
  /** The plain-text body; empty by default. */
  message?: string;
  /** Extra header fields, such as `Retry-After` or `WWW-Authenticate`; Content-Length is computed. */
  headers?: Record<string, string>;
}

/**
 * The upgrade request as the `upgrade` hook sees it: a node:http `IncomingMessage` fits,
 * and so does the lighter object the standalone server makes from its own parse.
 */
export interface UpgradeRequest {
  /** The request method (always `GET`: other methods are refused before the hook runs). */
  readonly method?: string;
  /** The request target: path and query, such as `/ws?token=…`. */
  readonly url?: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The TCP connection; its `remoteAddress` is the direct peer's, a proxy's when there is one. */
  readonly socket: {
    /** The peer's IP address (undefined once the socket is gone). */
    readonly remoteAddress?: string;
  };
  /**
   * The client's address, as the connection's `remoteAddress` will be: the peer's, or with
   * the endpoint's `trustProxy` the one its trusted proxies forwarded. Set before the
   * `upgrade` hook runs.
   */
  readonly clientAddress?: string;
}

/** Hears connections open and close, whatever the handlers do. */
export interface ConnectionObserver {
  /** A connection opened; called before the handlers' `open`. */
  open?(conn: WebSocketConnection<unknown>): void;
  /** A connection closed, with the code and reason its `close` handler gets; called before the handler. */
  close?(conn: WebSocketConnection<unknown>, code: number, reason: string): void;
}

/** What an `upgrade` hook decides: the connection's data, or a refusal. */
export type UpgradeDecision<T> =
  | {
      /** Accept: the new connection's `data`. */
      data: T;
    }
  | {
      /** Refuse with this HTTP answer instead of the 101. */
      reject: UpgradeRejection;
    };

/** A {@link WebSocketServer}'s options: the handlers, the handshake's checks, timers, limits and compression. */
export interface WebSocketServerOptions<T> extends ConnectionOptions, ServerHandshakeOptions {
  /** What the server's connections tell the application: `message` is required, the rest optional. */
  handlers: ConnectionHandlers<T>;
  /**
   * Runs after the request passed the handshake checks and before the 101 is written:
   * authenticate, decide the connection's `data`, or refuse with an HTTP status.
   */
  upgrade?(req: UpgradeRequest): UpgradeDecision<T> | Promise<UpgradeDecision<T>>;
  /** Ping every connection this often; one that sent nothing since the last ping is terminated (ms, default 30000, 0 = off). */
  heartbeatInterval?: number;
  /** Close (1001) a connection that sent nothing for this long (ms, default 120000, 0 = off). */
  idleTimeout?: number;
  /**
   * Fail (1008) a connection whose frame, or fragmented message, is not complete this long
   * after its first byte arrived (ms, default 30000, 0 = off): a peer that dribbles a frame
   * a byte at a time stays live for the heartbeat, but not past this. Checked by the
   * server's periodic sweep, so it acts up to half of it late.
   */
  messageTimeout?: number;
  /** Refuse upgrades (503) past this many open connections (default 0: no limit). */
  maxConnections?: number;
  /**
   * Topics: `conn.subscribe(topic)` and `server.publish(topic, data)` (default true). When
   * false they throw a `TopicsDisabledError`, and `serve()`'s publish passes this endpoint
   * by. The channel endpoint turns them off: a raw publish would put frames into its
   * hotline.v1 connections that are not hotline.v1 messages.
   */
  topics?: boolean;
  /**
   * Accept permessage-deflate (RFC 7692) when a client offers it: `true` for the defaults
   * (the server resets its context per message, so a publish is compressed once for all;
   * messages from 1 KiB on are compressed). Default false.
   */
  perMessageDeflate?: boolean | ServerDeflateOptions;
  /**
   * Believe `X-Forwarded-For` and `Forwarded` from these proxies, as Express's and Fastify's
   * option: `true` (every hop), a number of proxies in front, or their addresses and CIDRs
   * (`['10.0.0.0/8']`, `'loopback'`). The client's address found through them is the
   * connection's `remoteAddress`. Default false: the headers are ignored (anyone can send them).
   */
  trustProxy?: TrustProxy;
}

/** What a {@link WebSocketServer} counts since it started (its `counters`; the metrics read them). */
export interface ServerCounters extends ConnectionCounters {
  /** Upgrades answered with 101. */
  accepted: number;
  /** Upgrades refused with an HTTP status: failed checks, `maxConnections`, the `upgrade` hook. */
  rejected: number;
  /** Connections terminated for sending nothing, not even a pong, between two heartbeat pings. */
  heartbeatTimeouts: number;
  /** Connections closed (1001) for sending nothing within `idleTimeout`. */
  idleCloses: number;
  /** Connections failed for not completing a frame or message within `messageTimeout`. */
  messageTimeouts: number;
}

export const DEFAULT_HEARTBEAT_INTERVAL = 30_000;
export const DEFAULT_IDLE_TIMEOUT = 120_000;
/**
 * 30 s: a peer on a link of 256 kbit/s still sends a message of 1 MiB (the default
 * `maxPayload`) within it, and it matches the heartbeat interval, the other bound on how
 * long a peer may hold a connection without doing its part.
 */
export const DEFAULT_MESSAGE_TIMEOUT = 30_000;

/** The answer past `maxConnections`: try again in a few seconds. */
export const TOO_MANY_CONNECTIONS: UpgradeRejection = { status: 503, message: 'too many connections', headers: { 'Retry-After': '5' } };

/** The request head as the protocol core reads it, from what node:http parsed. */
export function requestHead(req: IncomingMessage): HttpRequestHead {
  const headers = new Map<string, string>();
  const rawHeaders: Array<[string, string]> = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    rawHeaders.push([raw[i]!, value]);
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
  }
  return { method: req.method ?? '', target: req.url ?? '/', version: req.httpVersion, headers, rawHeaders };
}

/**
 * Answers an upgrade request as plain HTTP and ends the socket. The peer's end is read (and
 * anything before it dropped) so that the socket closes as soon as the peer closes its
 * side; a peer that never does, or never reads, has it destroyed after `timeout` (ms), or
 * it would keep the socket and its descriptor.
 */
export function refuse(socket: Duplex, rejection: UpgradeRejection, timeout: number = DEFAULT_CLOSE_TIMEOUT): void {
  socket.on('error', ignoreError);
  const timer = setTimeout(destroySocket, timeout, socket);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(buildRejectResponse(rejection.status, rejection.message ?? '', rejection.headers));
  socket.resume();
}

function destroySocket(socket: Duplex): void {
  socket.destroy();
}

function ignoreError(): void {}

/**
 * Accepts WebSocket upgrades for one endpoint and keeps its connections: their topics,
 * heartbeats and counters. Use it from any Node HTTP server's 'upgrade' event through
 * {@link handleUpgrade}.
 */
export class WebSocketServer<T = undefined> {
  private readonly openConnections = new ConnectionSet<WebSocketConnection<T>>();

  /**
   * The open connections (those whose `close` has not run), in the order they opened.
   * Iterating visits those open when it began that are still open when reached.
   */
  get connections(): ReadonlySet<WebSocketConnection<T>> {
    return this.openConnections;
  }
  /** The topic subscriptions of this server's connections, behind `conn.subscribe` and {@link publish}. */
  readonly topics: TopicRegistry<T>;
  /** Running totals for metrics; read them, do not write them. */
  readonly counters: ServerCounters = {
    accepted: 0,
    rejected: 0,
    droppedMessages: 0,
    slowConsumerCloses: 0,
    handlerErrors: 0,
    messagesIn: 0,
    bytesIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    heartbeatTimeouts: 0,
    idleCloses: 0,
    inflatePauses: 0,
    messageTimeouts: 0,
  };
  private readonly options: WebSocketServerOptions<T>;
  private readonly context: ConnectionContext<T>;
  private readonly heartbeat: NodeJS.Timeout | null;
  /** Sweeps so far, and every how many a heartbeat ping goes out (0: never). */
  private sweeps = 0;
  private readonly pingEvery: number;
  private readonly deflate: ServerDeflateOptions | null;
  /** Upgrades waiting for the `upgrade` hook's decision. */
  private pendingUpgrades = 0;
  /** Closed with the server: see {@link closeWith}. */
  private readonly owned: Array<{ close(): Promise<void> | void }> = [];
  /** Finds the client behind trusted proxies; null when none is trusted. */
  private readonly clientAddress: ClientAddress | null;

  /** Told of every connection that opens or closes (for logs and inspectors); null for none. */
  observer: ConnectionObserver | null = null;

  /** Sees every message in and out of this server's connections while set (for an inspector). */
  get tap(): MessageTap | null {
    return this.context.tap;
  }

  set tap(tap: MessageTap | null) {
    this.context.tap = tap;
  }

  constructor(options: WebSocketServerOptions<T>) {
    this.options = options;
    this.clientAddress = compileTrustProxy(options.trustProxy);
    const handlers = options.handlers;
    const connections = this.openConnections;
    const trackedHandlers: ConnectionHandlers<T> = {
      ...handlers,
      open: (conn) => {
        this.observer?.open?.(conn as WebSocketConnection<unknown>);
        handlers.open?.(conn);
      },
      close: (conn, code, reason) => {
        connections.delete(conn);
        this.observer?.close?.(conn as WebSocketConnection<unknown>, code, reason);
        handlers.close?.(conn, code, reason);
      },
    };
    const deflate = options.perMessageDeflate ?? false;
    this.deflate = deflate === false ? null : deflate === true ? {} : deflate;
    const threshold = this.deflate?.threshold ?? DEFAULT_DEFLATE_THRESHOLD;
    this.topics = new TopicRegistry<T>({ threshold, tuning: this.deflate ?? {} }, options.topics ?? true);
    this.context = new ConnectionContext(trackedHandlers, options, this.counters, this.topics, threshold);
    const interval = options.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL;
    const idle = options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT;
    const messageTimeout = options.messageTimeout ?? DEFAULT_MESSAGE_TIMEOUT;
    for (const [name, value] of [['heartbeatInterval', interval], ['idleTimeout', idle], ['messageTimeout', messageTimeout]] as const) {
      if (!(value >= 0 && Number.isFinite(value))) throw new RangeError(`${name} must be a non-negative number of ms, not ${String(value)}`);
    }
    // One sweep over all connections rather than a timer each. It runs at the heartbeat
    // interval, or at a fraction of it when a timeout needs a finer check (idle within 30 s
    // of its time, messages within half of theirs), and pings on every so many sweeps.
    const checks = [idle > 0 ? Math.min(idle, DEFAULT_HEARTBEAT_INTERVAL) : 0, messageTimeout / 2].filter((t) => t > 0);
    const finest = checks.length > 0 ? Math.min(...checks) : 0;
    this.pingEvery = interval > 0 ? Math.max(1, Math.ceil(interval / (finest || interval))) : 0;
    const period = interval > 0 ? interval / this.pingEvery : finest;
    this.heartbeat = period > 0 ? setInterval(() => this.sweep(interval > 0, idle, messageTimeout), period) : null;
    this.heartbeat?.unref();
  }

  /**
   * The client's address for an upgrade on `socket`: the peer's, or behind trusted proxies
   * (`trustProxy`) the one they forwarded in `headers` (lower-case names).
   */
  clientAddressOf(socket: Duplex | UpgradeRequest['socket'], headers: ReadonlyMap<string, string>): string {
    const peer = (socket as UpgradeRequest['socket']).remoteAddress ?? '';
    return this.clientAddress?.(peer, headers) ?? peer;
  }

  /**
   * Completes the opening handshake on `socket`, or answers it with the HTTP error the
   * request deserves. Resolves to the connection, or null when the request was refused.
   * Without an `upgrade` hook the whole handshake happens before this returns.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, data?: T): Promise<WebSocketConnection<T> | null> {
    return this.acceptHead(requestHead(req), socket, head, req, data);
  }

  /**
   * The same for a request head parsed by hotline itself (the standalone server reads
   * upgrade requests without node:http). `request` is what the `upgrade` hook sees.
   */
  acceptHead(
    head: HttpRequestHead,
    socket: Duplex,
    rest: Buffer,
    request: UpgradeRequest,
    data?: T,
  ): Promise<WebSocketConnection<T> | null> {
    return Promise.resolve(this.upgradeHead(head, socket, rest, request, data));
  }

  /**
   * {@link acceptHead} for a server answering many handshakes: without an `upgrade` hook
   * it returns the connection (or null, refused) at once, with no promise made; with one,
   * a promise of it, as `acceptHead` does.
   */
  upgradeHead(
    head: HttpRequestHead,
    socket: Duplex,
    rest: Buffer,
    request: UpgradeRequest,
    data?: T,
  ): WebSocketConnection<T> | null | Promise<WebSocketConnection<T> | null> {
    let accepted: AcceptedRequest;
    try {
      accepted = validateClientRequest(head, this.options);
    } catch (error) {
      if (!(error instanceof HandshakeError)) throw error;
      this.refuse(socket, { status: error.status, message: error.message, headers: { ...error.headers } });
      return null;
    }
    const max = this.options.maxConnections ?? 0;
    // Handshakes still waiting for the upgrade hook count too, or a concurrent flood whose
    // hooks overlap would all pass the check.
    if (max > 0 && this.connections.size + this.pendingUpgrades >= max) {
      this.refuse(socket, TOO_MANY_CONNECTIONS);
      return null;
    }
    const hook = this.options.upgrade;
    if (hook === undefined) return this.complete(accepted, head, socket, rest, data as T);
    // Behind a proxy, a hook deciding by address needs the client's, not the proxy's.
    const address = this.clientAddressOf(socket, head.headers);
    setClientAddress(request, address);
    let decided: UpgradeDecision<T> | Promise<UpgradeDecision<T>>;
    try {
      decided = hook(request);
    } catch (error) {
      return this.hookFailed(socket, error);
    }
    // A hook that decided at once (nothing to authenticate) completes in this read, as no hook does.
    if (!isPromiseLike(decided)) return this.decided(decided, accepted, head, socket, rest, address);
    // Frames the client sends before the hook decides wait in the socket, not dropped.
    socket.pause();
    // Nobody owns the socket while the hook decides, and a paused socket still reads: a
    // reset meanwhile is an 'error' with no listener, which would end the process.
    socket.on('error', ignoreError);
    this.pendingUpgrades++;
    return Promise.resolve(decided)
      .finally(() => {
        this.pendingUpgrades--;
        socket.off('error', ignoreError);
      })
      .then(
        (decision) => this.decided(decision, accepted, head, socket, rest, address),
        (error: unknown) => this.hookFailed(socket, error),
      );
  }

  /** The hook's decision carried out: the 101 and the connection, or the refusal it chose. */
  private decided(decision: UpgradeDecision<T>, accepted: AcceptedRequest, head: HttpRequestHead, socket: Duplex, rest: Buffer, address: string): WebSocketConnection<T> | null {
    if ('reject' in decision) {
      this.refuse(socket, decision.reject);
      return null;
    }
    return this.complete(accepted, head, socket, rest, decision.data, address);
  }

  private hookFailed(socket: Duplex, error: unknown): null {
    console.error('hotline: the upgrade hook threw; answered 500:', error);
    this.refuse(socket, { status: 500, message: 'internal error' });
    return null;
  }

  /**
   * Refuses an upgrade to this endpoint with an HTTP answer (counted as rejected); a peer
   * that does not close its side within `closeTimeout` has the socket destroyed.
   */
  refuse(socket: Duplex, rejection: UpgradeRejection): void {
    this.counters.rejected++;
    refuse(socket, rejection, this.context.closeTimeout);
  }

  /**
   * Sends to every subscriber of `topic`, encoding the frame once; returns how many it reached.
   * @throws TopicsDisabledError when this endpoint's topics are off (the channel endpoint).
   */
  publish(topic: string, data: Exclude<SendData, Blob>, options?: ConnectionSendOptions): number {
    return this.topics.publish(topic, data, options);
  }

  /** How many of this server's connections are subscribed to `topic`. */
  subscriberCount(topic: string): number {
    return this.topics.subscriberCount(topic);
  }

  /** Closes every connection with `code` (1001 by default). */
  closeAll(code: number = CloseCode.GoingAway, reason = SHUTTING_DOWN): void {
    for (const conn of this.connections) conn.close(code, reason);
  }

  /** Destroys every connection's socket at once, without a closing handshake (after `closeAll` timed out, say). */
  terminateAll(): void {
    for (const conn of this.connections) conn.terminate();
  }

  /** Stops the heartbeat; call when the server shuts down. */
  stop(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
  }

  /**
   * Closes `resource` when this server is shut down by `serve()`'s `close()` or `attach()`'s
   * `closeConnections()`, once its connections are gone: what the endpoint owns (the
   * channel endpoint's hub and engine, whose Redis connections would keep the process alive).
   */
  closeWith(resource: {
    /** Releases the resource; awaited by {@link closeOwned}. */
    close(): Promise<void> | void;
  }): void {
    this.owned.push(resource);
  }

  /** Closes what was given to {@link closeWith}; the shutdown calls it after the connections. */
  async closeOwned(): Promise<void> {
    const owned = this.owned.splice(0);
    await Promise.all(owned.map((resource) => resource.close()));
  }

  /** Writes the 101 and starts the connection, unless the socket went away while the hook decided. */
  /** `address`: the client's, when the hook's request already has it (else found here, behind trusted proxies only). */
  private complete(accepted: AcceptedRequest, head: HttpRequestHead, socket: Duplex, rest: Buffer, data: T, address?: string): WebSocketConnection<T> | null {
    if (socket.destroyed) return null;
    const negotiated = this.deflate === null ? null : negotiateDeflateServer(accepted.extensions, this.deflate);
    const extensions = negotiated === null ? undefined : [negotiated.response];
    const response = buildServerResponse({ accept: accepted.accept, protocol: accepted.protocol, extensions });
    const codec =
      negotiated === null
        ? null
        : new ZlibDeflateCodec(
            negotiated.params,
            'server',
            formatExtensions(extensions!),
            this.deflate!,
            inflateBudget(this.context.inflateRate, this.context.maxPayload ?? DEFAULT_MAX_PAYLOAD),
          );
    address ??= this.clientAddress?.((socket as Socket).remoteAddress ?? '', head.headers);
    const conn = new WebSocketConnection<T>(socket as Socket, this.context, data, accepted.protocol ?? '', codec, address);
    this.openConnections.add(conn);
    this.counters.accepted++;
    conn.start(response, rest);
    return conn;
  }

  private sweep(heartbeat: boolean, idle: number, messageTimeout: number): void {
    const now = Date.now();
    const ping = heartbeat && ++this.sweeps % this.pingEvery === 0;
    for (const conn of this.connections) {
      // A closing connection has its own timer.
      if (conn.readyState !== ProtocolState.Open) continue;
      // An idle connection keeps no message assembler (~150 B); a busy one makes another.
      conn.compact();
      // Time this side spent not reading is not the peer's (see `partialSince`).
      if (messageTimeout > 0 && conn.partialSince !== 0 && !conn.readingPaused && now - conn.partialSince >= messageTimeout) {
        this.counters.messageTimeouts++;
        conn.fail(CloseCode.PolicyViolation, `frame or message not completed within ${messageTimeout} ms`);
      } else if (idle > 0 && now - conn.lastReceivedAt >= idle) {
        this.counters.idleCloses++;
        conn.close(CloseCode.GoingAway, 'idle timeout');
      } else if (ping) {
        if (conn.awaitingPong) {
          this.counters.heartbeatTimeouts++;
          conn.terminate();
        } else {
          conn.awaitingPong = true;
          conn.heartbeat();
        }
      }
    }
  }
}
