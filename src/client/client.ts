// The reconnecting hotline.v1 client. Its helpers each have a file: one socket and its timers
// (connection.ts), where the token comes from and goes (credentials.ts), requests and their
// queue (requests.ts), a channel's subscription (channel.ts), backoff and timers. What is
// left is one job, the client's state machine (connect, authenticate, reconnect or stop,
// route what arrives). It passes 450 lines with the options' documentation (about 90 lines)
// and the contract-typed signatures of channel() and rpc(), not with a second job.
import {
  ChannelCloseCode,
  type ChannelDataOf,
  type ChannelInputOf,
  type ChannelNameOf,
  type Contract,
  type NoContract,
  type RpcNameOf,
  type RpcParamsOf,
  type RpcResultOf,
  DEFAULT_HISTORY_LIMIT,
  MSGPACK_SUBPROTOCOL,
  SUBPROTOCOL,
  parseServerMessage,
  parseServerMsgpack,
  reviveBytes,
  reconnectWindowOf,
  type HistoryOk,
  type InferOutput,
  type Data,
  type Json,
  type Member,
  type ReplyTo,
  type RequestOp,
  type StandardSchemaV1,
  type WireEncoding,
} from '../wire/index.js';
import { backoffDelay, DEFAULT_BACKOFF_MAX, type BackoffOptions } from './backoff.js';
import { Channel, type ChannelHost, type HistoryOptions, type HistoryPage, type SubscribeOptions } from './channel.js';
import { Connection, type ConnectFailure, type WebSocketConstructorLike, type WebSocketLike } from './connection.js';
import { Credentials } from './credentials.js';
import { defaultSessionUrl, HttpSessionSocket, type FetchLike } from './http-session.js';
import { Emitter } from './emitter.js';
import { HotlineError, closedError } from './errors.js';
import { CallHandlers, type CallHandler } from './handlers.js';
import { Requests, type OnDrop } from './requests.js';
import { Timer } from './timer.js';

export type { WebSocketConstructorLike, WebSocketLike } from './connection.js';

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** How the client reaches the server: a WebSocket, or the HTTP session (a streamed GET and POSTed requests). */
export type Transport = 'websocket' | 'sse';

/** When the client gives up on the WebSocket for the HTTP session, and when it tries the WebSocket again. */
export interface FallbackOptions {
  /** WebSocket attempts in a row that fail before they open after which the HTTP session is used (default 2). */
  after?: number;
  /** A WebSocket attempt not open after this long counts as failed (ms, default 5000; `connectTimeout` when that is shorter). */
  timeout?: number;
  /** While on the HTTP session, the WebSocket is tried again this often (ms, default 30000); once it opens the client moves to it. */
  upgradeInterval?: number;
}

/** An rpc call's params and options: the params may be left out only when they may be undefined. */
type RpcArguments<P> = undefined extends P ? [params?: P, options?: { timeout?: number }] : [params: P, options?: { timeout?: number }];

export interface ClientOptions {
  /**
   * The WebSocket class. By default: in Node, hotline's (`hotline/client` resolves to a
   * build that supplies it); elsewhere the platform's (browsers, workers).
   */
  WebSocket?: WebSocketConstructorLike;
  /**
   * How messages are written (default `'json'`). `'msgpack'` offers the subprotocol
   * `hotline.v1.msgpack`: binary frames, with Uint8Array data as msgpack `bin` instead of
   * base64. A server without it selects `hotline.v1`, and the client speaks JSON there.
   * Either way Uint8Array data published arrives as a Uint8Array (in JSON as `{"$bin": …}`).
   */
  encoding?: WireEncoding;
  /** Reconnection: full-jitter exponential backoff (defaults: 1 s, ×2, at most 30 s, unlimited). */
  reconnect?: BackoffOptions;
  /**
   * A channel whose `sub` timed out or was refused for now (`internal`, `rate_limited`)
   * subscribes again after a full-jitter backoff (defaults: 1 s, ×2, at most 30 s), for as
   * long as it is wanted; the connection and other channels carry on meanwhile.
   */
  resubscribe?: Omit<BackoffOptions, 'retries'>;
  /** Give up on a connection attempt that has not opened after this long (ms, default 10000). */
  connectTimeout?: number;
  /** Ping when nothing arrived for this long (ms, default 20000; 0 disables heartbeats). */
  pingInterval?: number;
  /** Declare the connection dead when nothing answers a ping for this long (ms, default 10000). */
  pingTimeout?: number;
  /** Time for the server to answer a request once sent (ms, default 10000). */
  requestTimeout?: number;
  /** Requests made while disconnected wait in a queue: at most this many (default 100)… */
  queueSize?: number;
  /** …for at most this long (ms, default 30000). */
  queueTimeout?: number;
  /**
   * Credentials sent over the connection (an `auth` request) before anything else, on every
   * (re)connect: a token, or a function that gets a fresh one. When the server says when
   * they expire, the client re-authenticates ahead of it without dropping subscriptions.
   * A token the server refuses closes the client.
   *
   * A function is also the refresher when the server refuses the upgrade itself with 401
   * or 403 (seen in Node; browsers hide the status): the client calls it once and retries
   * at once, and stops when refused again. Without a function it stops at the first such
   * refusal.
   */
  token?: string | (() => string | Promise<string>);
  /**
   * Send the token in the upgrade URL's query string under this name (`tokenParam: 'token'`
   * connects to `…/ws?token=…`), for a server that authenticates the upgrade, instead of
   * as an `auth` message. Browsers cannot set headers on a WebSocket; query strings may
   * be logged by proxies, so prefer short-lived tokens.
   */
  tokenParam?: string;
  /**
   * Close codes after which reconnecting is pointless (default: 1002, 1003, 1007, 1008 and
   * 4401/4403, which a server can use for authentication failures).
   */
  finalCloseCodes?: readonly number[];
  /**
   * The transports to use, in order of preference (default `['websocket', 'sse']`). The
   * client falls back to the HTTP session when WebSockets do not get through (see
   * `fallback`), and moves back to a WebSocket once one opens, resubscribing from its
   * offsets, so no message is lost or repeated. An upgrade refused with a status the client
   * can see (in Node: 401, 403, 429, 503…) is the server's answer, not a blocked WebSocket:
   * no fallback then. A server without the session (404/405) leaves the client on
   * WebSockets, saying nothing of it. `['websocket']` never falls back; `['sse']` uses the
   * HTTP session alone.
   */
  transports?: readonly Transport[];
  /** The HTTP session's URL (default: the WebSocket URL's host over http(s), path `/sse/session`). */
  sessionUrl?: string;
  /** When to fall back to the HTTP session and when to try the WebSocket again. */
  fallback?: FallbackOptions;
  /** The `fetch` the HTTP session uses (default: the platform's). */
  fetch?: FetchLike;
}

/** The events of a {@link HotlineClient} and their listeners' arguments. */
export type ClientEvents = {
  /**
   * The client's state changed (see {@link HotlineClient.state}), or, while open, the
   * transport it uses (`transport` is the open connection's, null when there is none).
   */
  state: [state: ClientState, transport: Transport | null];
  /** A connection closed; `willRetry` says whether the client reconnects. */
  close: [
    event: {
      /** The WebSocket close code (1006 when the connection dropped without one). */
      code: number;
      /** The close reason the server gave, or `''`. */
      reason: string;
      /** False after a final close code (`finalCloseCodes`), a refused upgrade, or the last of `reconnect.retries`: the client closes for good. */
      willRetry: boolean;
    },
  ];
  /**
   * A message the server's application sent to this connection (`channels.send`), outside
   * any channel: not recovered after a reconnect (what must not be missed goes in a channel).
   */
  message: [data: Json];
  /**
   * Why the client could not get in: a connection attempt that failed before it opened
   * (code `connect_failed`; `unauthorized`/`forbidden` for an upgrade or a session refused with 401/403,
   * with `status` wherever the platform reveals it), or credentials refused over the
   * connection. Fired before the `close` event that says whether it retries.
   */
  error: [error: HotlineError];
};

// 1002, 1003 and 1007 are the WebSocket protocol's refusals of what this side sent (a protocol
// error, data of a kind or content it does not take): the same bytes would be refused again.
const DEFAULT_FINAL_CODES: readonly number[] = [1002, 1003, 1007, ChannelCloseCode.PolicyViolation, ChannelCloseCode.Unauthorized, ChannelCloseCode.Forbidden];
/** The first try of a WebSocket after falling back when nothing proved WebSockets blocked (ms). */
const FIRST_UPGRADE = 1_000;
/** Pages of one history() read restarted because the channel's epoch changed under them. */
const HISTORY_RESTARTS = 3;

type WebCrypto = { randomUUID?: () => string; getRandomValues?: (array: Uint8Array) => Uint8Array };

function randomKey(): string {
  const crypto = (globalThis as { crypto?: WebCrypto }).crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

/**
 * This client's `sender` id: the server scopes idempotency keys to it (when the connection
 * has no authenticated user), so it must not be guessable. randomUUID needs a secure
 * context; getRandomValues does not.
 */
function unguessableId(): string {
  const crypto = (globalThis as { crypto?: WebCrypto }).crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  if (crypto?.getRandomValues) return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  return randomKey();
}

/**
 * A hotline.v1 client that stays connected: it reconnects with backoff, resubscribes every
 * channel from its last offset, retries unanswered publishes with their idempotency keys,
 * and queues requests made while disconnected. Create it with {@link connect}.
 *
 * Each timer has one owner: a request its timeouts ({@link Requests}), a connection its
 * connect timeout, heartbeat and token refresh ({@link Connection}), a channel its
 * resubscription backoff ({@link Channel}), the client the wait before reconnecting.
 */
export class HotlineClient<C extends Contract = NoContract> extends Emitter<ClientEvents> {
  /** The endpoint URL as given to {@link connect} (the token, when sent in the URL, is added per attempt). */
  readonly url: string;
  private readonly options: ClientOptions;
  private readonly WebSocketClass: WebSocketConstructorLike;
  private readonly channels = new Map<string, Channel<unknown>>();
  /** Sent with every publish, the same across reconnects, so that a retry's key is recognised. */
  private readonly sender = unguessableId();
  private readonly requests: Requests;
  private readonly handlers = new CallHandlers();
  private readonly host: ChannelHost;
  private connection: Connection | null = null;
  /** The connection requests go out on: set once it is open and authenticated. */
  private readyConnection: Connection | null = null;
  /** The connection a fresh token is being fetched and sent for, after credentials expired. */
  private reauthenticating: Connection | null = null;
  /** The transport of the current connection (attempt or open). */
  private using: Transport = 'websocket';
  /** The transport the listeners were last told of. */
  private announced: Transport | null = null;
  /** WebSocket attempts in a row that failed before they opened. */
  private wsFailures = 0;
  /** True while the constructor makes the first attempt: what cannot even start is thrown to connect()'s caller then. */
  private constructing = false;
  /** Set when a WebSocket proved blocked (answered without its Upgrade, or not constructible), not just failed. */
  private wsBlocked = false;
  /** False once the session endpoint answered 404/405 (a server without it); true again when a WebSocket opens. */
  private sessionOffered = true;
  /** A WebSocket tried while on the HTTP session; it replaces the session once open. */
  private probe: Connection | null = null;
  private readonly upgradeTimer = new Timer();
  private readonly transports: readonly Transport[];
  private currentState: ClientState = 'connecting';
  /** Failed connection attempts in a row: how far the backoff has grown. */
  private attempt = 0;
  private readonly credentials: Credentials;
  /** The backoff before the next connection attempt. */
  private readonly retry = new Timer();
  private readonly onOnline = (): void => {
    // Back online: no reason to sit out the backoff.
    if (this.currentState === 'reconnecting' && this.retry.armed) {
      this.retry.clear();
      this.open();
    }
  };

  constructor(url: string, options: ClientOptions = {}) {
    super();
    this.url = url;
    this.options = options;
    const platform = (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
    const WebSocketClass = options.WebSocket ?? platform;
    if (WebSocketClass === undefined) {
      throw new TypeError("no WebSocket class: pass { WebSocket } (in Node, import 'hotline/client', which brings hotline's)");
    }
    this.WebSocketClass = WebSocketClass;
    this.transports = options.transports ?? ['websocket', 'sse'];
    if (this.transports.length === 0 || this.transports.some((t) => t !== 'websocket' && t !== 'sse')) {
      throw new TypeError("transports: a list of 'websocket' and 'sse'");
    }
    this.credentials = new Credentials(options);
    // With the token in the URL the socket is made later: an invalid URL must still throw here.
    if (this.credentials.inUrl) new URL(url);
    this.requests = new Requests(options, {
      online: () => this.online(),
      send: (message) => this.connection?.send(message),
    });
    this.host = this.channelHost();
    const target = globalThis as { addEventListener?: (type: string, listener: () => void) => void };
    target.addEventListener?.('online', this.onOnline);
    this.constructing = true;
    try {
      this.open();
    } finally {
      this.constructing = false;
    }
  }

  /** `connecting` until the first connection opens, `open` while connected, `reconnecting` after a drop, `closed` for good. */
  get state(): ClientState {
    return this.currentState;
  }

  /** The transport of the open connection (`websocket`, or `sse` for the HTTP session); null while not open. */
  get transport(): Transport | null {
    return this.currentState === 'open' && this.readyConnection !== null ? this.using : null;
  }

  /**
   * The channel `name` (one object per name): typed by the client's contract, by `T`, or by
   * a Standard Schema (types only: the server checks the data).
   */
  channel<S extends StandardSchemaV1>(
    name: string,
    options: {
      /** Types the channel's data as this schema's output; the client does not run it. */
      schema: S;
    } & SubscribeOptions,
  ): Channel<InferOutput<S>>;
  channel<T = never, N extends ChannelNameOf<C> = ChannelNameOf<C>>(
    name: N,
    options?: SubscribeOptions,
  ): [T] extends [never] ? Channel<ChannelDataOf<C, N>, ChannelInputOf<C, N>> : Channel<T>;
  channel(name: string, options?: SubscribeOptions): Channel<unknown> {
    let channel = this.channels.get(name);
    if (channel === undefined) {
      channel = new Channel<unknown>(name, this.host);
      this.channels.set(name, channel);
    }
    // A private channel's token (or how to get one): the latest given is used from the next sub on.
    if (options !== undefined && (options.token !== undefined || options.getToken !== undefined)) channel.configure(options);
    return channel;
  }

  /**
   * Calls a server rpc method, typed by the client's contract (or `R`). Not retried after a
   * drop (it may have run): fails with 'disconnected'.
   */
  rpc<R = never, M extends RpcNameOf<C> = RpcNameOf<C>>(
    method: M,
    ...args: RpcArguments<RpcParamsOf<C, M>>
  ): Promise<[R] extends [never] ? RpcResultOf<C, M> : R> {
    const [params, options = {}] = args as [Json | undefined, { timeout?: number }?];
    const fields: Record<string, Json> = { method };
    if (params !== undefined) fields.params = params;
    return this.ask('rpc', fields, 'fail', options.timeout).then((reply) => reply.result as [R] extends [never] ? RpcResultOf<C, M> : R);
  }

  /**
   * Answers the server's calls of `method` (`channels.call(clientId, method, params)`, as
   * Socket.IO's `emitWithAck`): the handler gets the params, and what it returns (or
   * resolves to) is the reply; what it throws fails the call (with the error's `code`).
   * A call with no handler is answered `not_found`. Returns the function that removes it.
   */
  handle<P = Json>(method: string, handler: CallHandler<P>): () => void {
    return this.handlers.handle(method, handler as CallHandler);
  }

  /** Closes for good: no reconnection; queued and pending requests fail with 'closed'. */
  close(): void {
    if (this.currentState !== 'closed') this.finish(closedError());
  }

  // ───────────────────────── what channels use ─────────────────────────

  private channelHost(): ChannelHost {
    return {
      online: () => this.online(),
      closed: () => this.currentState === 'closed',
      sub: (name, since, token, done, failed) => {
        const fields: Record<string, Json> = { ch: name };
        if (since !== null) fields.since = { epoch: since.epoch, offset: since.offset };
        if (token !== undefined) fields.token = token;
        // The same id on every connection: a reconnect keeps its presence (see presence.ts on the server).
        fields.sender = this.sender;
        // Not resent after a drop: the channel subscribes again from where it then stands.
        this.requests.send(this.requests.make('sub', fields, 'forget', done, failed));
      },
      unsub: (name) => this.sendUnanswered('unsub', { ch: name }),
      retryDelay: (retry) => backoffDelay(retry, this.options.resubscribe),
      publishTo: (name, data, key) =>
        this.ask('pub', { ch: name, data, key: key ?? randomKey(), sender: this.sender }, 'resend').then((reply) => {
          if (!('offset' in reply)) throw new HotlineError('internal', 'the server answered a publish without its offset');
          return { offset: reply.offset, delivered: reply.delivered };
        }),
      // A stale cursor or typing flag is worth nothing after a reconnect: not resent.
      publishEphemeral: (name, data) => this.ask('pub', { ch: name, data, ephemeral: true }, 'fail').then(({ delivered }) => ({ delivered })),
      historyOf: (name, options) => this.historyOf(name, options),
      presenceOf: (name) =>
        this.ask('presence', { ch: name }, 'resend').then((reply) => ({ members: (reply.members ?? []) as Member[], count: reply.count, truncated: reply.truncated === true, joinLeave: reply.joinLeave !== false })),
      // The channel sends its state again after each resubscription: one lost in a drop is not resent here.
      stateOf: (name, state) => this.ask('state', state === null ? { ch: name } : { ch: name, state }, 'fail').then(() => undefined),
    };
  }

  /**
   * Follows history pages (each bounded in bytes by the server) back from `before` until
   * `limit` messages are in or none older are kept. The limit is always sent, the server's
   * default when not given, so that pages after the first know where to stop.
   */
  private async historyOf(name: string, options: HistoryOptions): Promise<HistoryPage<Json>> {
    const limit = options.limit ?? DEFAULT_HISTORY_LIMIT;
    for (let restarts = 0; ; restarts++) {
      const read = await this.historyPages(name, limit, options.before);
      if (read !== null) return read;
      // The channel's history was lost between two pages (a new epoch): offsets restarted.
      if (restarts === HISTORY_RESTARTS) throw new HotlineError('internal', `the history of ${name} kept changing epoch while it was read`);
    }
  }

  /** One read of history pages, or null when the epoch changed between pages. */
  private async historyPages(name: string, limit: number, before: number | undefined): Promise<HistoryPage<Json> | null> {
    let messages: HistoryOk['messages'] = [];
    let epoch: string | undefined;
    for (;;) {
      const fields: Record<string, Json> = { ch: name, limit: limit - messages.length };
      if (before !== undefined) fields.before = before;
      const page = await this.ask('history', fields, 'resend');
      if (epoch !== undefined && page.epoch !== epoch) return null;
      epoch = page.epoch;
      messages = page.messages.concat(messages);
      const more = page.more === true;
      if (!more || messages.length >= limit || page.messages.length === 0) return { epoch, messages, more };
      before = page.messages[0]!.offset;
    }
  }

  // ───────────────────────── connection ─────────────────────────

  /** Whether requests go out now: connected, and authenticated when a token is asked for. */
  private online(): boolean {
    return this.currentState === 'open' && this.connection !== null && this.connection === this.readyConnection && this.connection.open;
  }

  private setState(state: ClientState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.announced = this.transport;
    this.emit('state', state, this.announced);
  }

  private open(): void {
    if (!this.credentials.inUrl) {
      this.openSocket(undefined);
      return;
    }
    // The token goes in the URL: get it first. A client closed meanwhile opens nothing.
    this.credentials.take().then(
      (token) => {
        if (this.currentState === 'closed' || this.connection !== null) return;
        this.openSocket(token);
      },
      () => {
        if (this.currentState !== 'closed' && this.connection === null) this.disconnected(4000, 'could not get a token', { message: 'could not get a token' });
      },
    );
  }

  /** The transport of the next attempt: the WebSocket until it failed `fallback.after` times in a row, when the HTTP session may be used. */
  private nextTransport(): Transport {
    if (!this.transports.includes('sse')) return 'websocket';
    if (!this.transports.includes('websocket')) return 'sse';
    return this.sessionOffered && this.wsFailures >= (this.options.fallback?.after ?? 2) ? 'sse' : 'websocket';
  }

  private urlFor(transport: Transport, token: string | undefined): string {
    const base = transport === 'websocket' ? this.url : (this.options.sessionUrl ?? defaultSessionUrl(this.url));
    return token === undefined ? base : this.credentials.urlWith(base, token);
  }

  private openSocket(token: string | undefined): void {
    const transport = this.nextTransport();
    let socket: WebSocketLike;
    try {
      socket = this.socketFor(transport, token);
    } catch (error) {
      if (transport === 'websocket' && this.transports.includes('sse') && this.sessionOffered) {
        // A platform (or page) that cannot make WebSockets at all: the HTTP session at once.
        this.wsFailures = Infinity;
        this.wsBlocked = true;
        return this.openSocket(token);
      }
      // An invalid URL will never work; nor will a WebSocket that cannot be made where the
      // server offers no session.
      const failed = new HotlineError('closed', `cannot connect: ${error instanceof Error ? error.message : String(error)}`);
      const first = this.constructing;
      if (!first) this.emit('error', failed);
      if ((this.currentState as ClientState) !== 'closed') this.shutdown(failed);
      // From connect() the caller sees it thrown; later (a timer, a callback) the error event says it.
      if (first) throw error;
      return;
    }
    this.using = transport;
    const connection: Connection = new Connection(
      socket,
      {
        opened: () => this.onOpen(connection),
        received: (data) => this.onMessage(data),
        ended: (code, reason, failure) => this.attemptEnded(transport, code, reason, failure),
        ping: () => this.sendUnanswered('ping', {}),
      },
      transport === 'websocket' ? this.wsOptions() : this.options,
    );
    this.connection = connection;
  }

  /**
   * A connection of `transport` ended. Before it opened, the failure decides what the next
   * attempt uses: a WebSocket that failed without a word (all a browser ever says) or that
   * was answered as if no Upgrade had been asked for counts towards the fallback; one refused
   * with any other status reached the server, whose answer stands as it would without a
   * fallback (401/403 final, 429/503 retried with backoff). A session the server does not
   * offer (404/405) is not tried again until a WebSocket opens, and is not reported: the
   * client goes on as a WebSocket-only client would.
   */
  private attemptEnded(transport: Transport, code: number, reason: string, failure: ConnectFailure | undefined): void {
    if (failure !== undefined && this.transports.includes('sse') && this.transports.includes('websocket')) {
      if (transport === 'websocket') {
        if (failure.status === undefined) this.wsFailures++;
        else if (upgradeBlocked(failure.status)) {
          // Nothing between here and the server speaks WebSocket: the session at once.
          this.wsFailures = Math.max(this.wsFailures + 1, this.options.fallback?.after ?? 2);
          this.wsBlocked = true;
          // A 404 may also be a wrong URL: it keeps its status (the session will say which).
          if (failure.status !== 404) failure = { message: `the upgrade was answered with HTTP ${failure.status}: WebSockets do not get through` };
        }
      } else {
        // The session did not open either (a proxy that drops everything, a server that is
        // down): the next attempts are WebSockets again, then the session, in turn.
        this.wsFailures = 0;
        if (failure.status === 404 || failure.status === 405) {
          // Not an attempt of its own: the WebSocket goes at once, as it would have without
          // the fallback, and the app hears nothing of it.
          this.sessionOffered = false;
          this.connection = null;
          this.open();
          return;
        }
      }
    }
    this.disconnected(code, reason, failure);
  }

  private socketFor(transport: Transport, token: string | undefined): WebSocketLike {
    // msgpack first: the server takes it when it can, JSON otherwise.
    if (transport === 'websocket') return new this.WebSocketClass(this.urlFor('websocket', token), this.options.encoding === 'msgpack' ? [MSGPACK_SUBPROTOCOL, SUBPROTOCOL] : SUBPROTOCOL);
    const fetch = this.options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (fetch === undefined) throw new TypeError('no fetch for the HTTP session: pass { fetch }');
    return new HttpSessionSocket(this.urlFor('sse', token), fetch.bind(globalThis));
  }

  /** A WebSocket attempt's options: it gives up sooner when there is a fallback to go to. */
  private wsOptions(): ClientOptions {
    if (!this.transports.includes('sse')) return this.options;
    const timeout = Math.min(this.options.fallback?.timeout ?? 5_000, this.options.connectTimeout ?? 10_000);
    return { ...this.options, connectTimeout: timeout };
  }

  /** While on the HTTP session: a WebSocket is tried every `fallback.upgradeInterval` (or after `delay`). */
  private scheduleUpgrade(delay = this.options.fallback?.upgradeInterval ?? 30_000): void {
    if (!this.transports.includes('websocket') || this.using !== 'sse') return;
    this.upgradeTimer.set(delay, () => {
      if (this.currentState !== 'open' || this.using !== 'sse' || this.probe !== null) return;
      if (!this.credentials.inUrl) return this.startProbe(undefined);
      this.credentials.fetch().then(
        (token) => {
          if (this.currentState === 'open' && this.using === 'sse' && this.probe === null) this.startProbe(token);
        },
        () => this.scheduleUpgrade(),
      );
    });
  }

  private startProbe(token: string | undefined): void {
    let socket: WebSocketLike;
    try {
      socket = this.socketFor('websocket', token);
    } catch {
      return this.scheduleUpgrade();
    }
    const probe: Connection = new Connection(
      socket,
      {
        opened: () => this.upgradeTo(probe),
        received: (text) => {
          if (this.connection === probe) this.onMessage(text);
        },
        ended: (code, reason, failure) => {
          if (this.probe === probe) {
            this.probe = null;
            this.scheduleUpgrade();
          } else if (this.connection === probe) this.disconnected(code, reason, failure);
        },
        ping: () => this.sendUnanswered('ping', {}),
      },
      this.wsOptions(),
    );
    this.probe = probe;
  }

  /**
   * A WebSocket opened while on the HTTP session: it takes over once no request is in flight
   * (none is failed or resent for the move). The channels subscribe again on it from the
   * last offset they delivered, and the session's stream is dropped unread from here on, so
   * each message is delivered once, in order.
   */
  private upgradeTo(probe: Connection): void {
    this.probe = null;
    const old = this.connection;
    if (this.currentState !== 'open' || old === null || old !== this.readyConnection || !this.requests.idle) {
      probe.close(1000, '');
      // Busy now: soon again, without waiting for a whole interval.
      if (this.currentState === 'open' && this.using === 'sse') this.scheduleUpgrade(1_000);
      return;
    }
    for (const channel of this.channels.values()) channel.disconnected();
    old.close(1000, '');
    this.connection = probe;
    this.readyConnection = null;
    this.using = 'websocket';
    this.wsFailures = 0;
    this.onOpen(probe);
  }

  private onOpen(connection: Connection): void {
    this.attempt = 0;
    this.credentials.opened();
    if (!this.credentials.inMessage) {
      this.ready(connection);
      return;
    }
    this.credentials.take().then(
      (token) => {
        if (this.connection !== connection) return;
        // Sent first: the server handles a connection's requests in order, so everything
        // after it is authenticated without waiting for the answer.
        this.sendAuth(connection, token);
        this.ready(connection);
      },
      () => {
        if (this.connection === connection) connection.abandon('could not get a token');
      },
    );
  }

  /**
   * @param accepted Called with the answer's expiry once the server took the token.
   * @param failed Called when it did not (after a refusal has ended the client).
   */
  private sendAuth(connection: Connection, token: string, accepted?: (expiresAt: number | undefined) => void, failed?: (error: HotlineError) => void): void {
    const auth = this.requests.make(
      'auth',
      { token },
      'forget',
      (reply) => {
        this.scheduleRefresh(connection, reply.expiresAt);
        accepted?.(reply.expiresAt);
      },
      (error) => {
        const failure = new HotlineError(error.code, `authentication failed: ${error.message}`);
        if (error.code === 'unauthorized' || error.code === 'forbidden' || error.code === 'bad_request') {
          this.emit('error', failure);
          if (this.currentState !== 'closed') this.finish(failure);
        }
        failed?.(failure);
      },
    );
    this.requests.send(auth);
  }

  /**
   * The credentials expired before their refresh was answered (its timer held up by a busy
   * host or a sleeping device), and the server ended the subscriptions, asking the client to
   * authenticate again, then subscribe. With a token function this does so now: one fresh
   * token for the connection, then every channel that waits subscribes again, recovering
   * from where it stood. False when it cannot (the channel ends, as before).
   */
  private reauthenticate(): boolean {
    const connection = this.readyConnection;
    if (connection === null || connection !== this.connection || !this.credentials.inMessage || !this.credentials.refreshable) return false;
    if (this.reauthenticating === connection) return true;
    this.reauthenticating = connection;
    const giveUp = (error: HotlineError): void => {
      if (this.reauthenticating === connection) this.reauthenticating = null;
      if (this.connection === connection) for (const channel of this.channels.values()) channel.waitingEnded(error);
    };
    this.credentials.fetch().then(
      (token) => {
        if (this.connection !== connection || this.currentState !== 'open') return;
        this.sendAuth(connection, token, (expiresAt) => {
          if (this.reauthenticating === connection) this.reauthenticating = null;
          // A token already expired again would only end them again.
          if (expiresAt !== undefined && expiresAt <= Date.now()) return giveUp(new HotlineError('unauthorized', 'the fresh token had expired too'));
          for (const channel of this.channels.values()) channel.connected();
        }, giveUp);
      },
      (error: unknown) => giveUp(new HotlineError('unauthorized', `could not get a fresh token: ${error instanceof Error ? error.message : String(error)}`)),
    );
    return true;
  }

  private scheduleRefresh(connection: Connection, expiresAt: number | undefined): void {
    if (expiresAt === undefined || !this.credentials.refreshable) return connection.refresh.clear();
    const left = expiresAt - Date.now();
    // Refresh with a quarter of the lifetime (at most a minute) to spare.
    connection.refresh.set(Math.max(0, left - Math.min(60_000, left / 4)), () => {
      this.credentials.fetch().then(
        (token) => {
          if (this.connection === connection && this.currentState === 'open') this.sendAuth(connection, token);
        },
        () => {},
      );
    });
  }

  private ready(connection: Connection): void {
    if (this.connection !== connection) return;
    this.readyConnection = connection;
    if (this.using === 'websocket') {
      this.wsFailures = 0;
      this.sessionOffered = true;
      this.wsBlocked = false;
    }
    // WebSockets that failed without a word may have met a server that was down (a restart)
    // rather than a proxy that blocks them: try one again soon, not after a whole interval.
    this.scheduleUpgrade(this.wsBlocked ? undefined : Math.min(FIRST_UPGRADE, this.options.fallback?.upgradeInterval ?? 30_000));
    if (this.currentState === 'open' && this.announced !== this.using) {
      // Moved to another transport without closing: the same state, told with its transport.
      this.announced = this.using;
      this.emit('state', 'open', this.using);
    } else this.setState('open');
    // A 'state' listener may have closed the client.
    if (this.connection !== connection) return;
    // Subscriptions first, so that publishes resent below are seen by them.
    for (const channel of this.channels.values()) channel.connected();
    this.requests.flush();
    connection.startHeartbeat();
  }

  private onMessage(data: string | Uint8Array): void {
    const message = typeof data === 'string' ? parseServerMessage(data) : parseServerMsgpack(data);
    if (message === null) return;
    // Bytes in JSON come as {"$bin": base64}: the app gets Uint8Arrays in either encoding.
    if (typeof data === 'string' && data.includes('"$bin"')) reviveBytes(message);
    switch (message.op) {
      case 'msg':
        this.channels.get(message.ch)?.receive(message.offset, message.data);
        return;
      case 'ephemeral':
        this.channels.get(message.ch)?.receiveEphemeral(message.data, message.client);
        return;
      case 'join':
      case 'leave':
      case 'update':
        this.channels.get(message.ch)?.presenceEvent(message.op, message.member);
        return;
      case 'unsub': {
        // The server ended a subscription (the identity changed, or credentials expired).
        const channel = this.channels.get(message.ch);
        if (channel === undefined) return;
        // Expired before the refresh was answered: wait for a fresh token, then subscribe again.
        if (message.code === 'unauthorized' && this.reauthenticate()) channel.disconnected();
        else channel.ended(new HotlineError(message.code, message.message));
        return;
      }
      case 'message':
        this.emit('message', message.data);
        return;
      case 'call': {
        // A call belongs to its connection: a reply after a reconnect would answer nothing.
        const connection = this.connection;
        this.handlers.run(message, (fields) => {
          if (this.connection === connection) this.sendUnanswered('reply', fields);
        });
        return;
      }
      default:
        if (message.id !== undefined) this.requests.answer(message.id, message);
    }
  }

  private disconnected(code: number, reason: string, failure?: ConnectFailure): void {
    this.detach();
    if (this.currentState === 'closed') return;
    // Requests in flight: idempotent ones go again after the reconnect, in their order, before
    // anything queued since; an rpc may have run, so it fails.
    this.requests.dropped(code);
    // An upgrade refused with 401/403 will be refused again as it is: the client stops,
    // unless it has a token function to refresh with, once.
    let refused: HotlineError | null = null;
    let refresh = false;
    if (failure !== undefined) {
      const error = connectError(failure);
      this.emit('error', error);
      if ((this.currentState as ClientState) === 'closed') return;
      if (error.code === 'unauthorized' || error.code === 'forbidden') {
        if (this.credentials.refreshAfterRefusal()) refresh = true;
        else refused = error;
      }
    }
    const finalCodes = this.options.finalCloseCodes ?? DEFAULT_FINAL_CODES;
    const retries = this.options.reconnect?.retries ?? Infinity;
    const willRetry = refused === null && (refresh || (!finalCodes.includes(code) && this.attempt < retries));
    this.emit('close', { code, reason, willRetry });
    // A listener may have closed the client (the compiler cannot know emit() may do that).
    if ((this.currentState as ClientState) === 'closed') return;
    if (!willRetry) {
      this.shutdown(refused ?? new HotlineError('closed', `the server closed the connection (${code}${reason ? ` ${reason}` : ''})`));
      return;
    }
    this.setState('reconnecting');
    for (const channel of this.channels.values()) channel.disconnected();
    if ((this.currentState as ClientState) !== 'reconnecting') return;
    if (refresh) {
      this.refreshAndRetry();
      return;
    }
    this.retry.set(this.reconnectDelay(reason), () => this.open());
  }

  /**
   * How long to wait before the next attempt: a server going away may ask for the reconnects
   * to be spread over a window (a deploy), and then one uniformly random delay within it
   * (capped by `reconnect.max`) replaces the backoff; else the backoff's next delay.
   */
  private reconnectDelay(reason: string): number {
    const window = reconnectWindowOf(reason);
    if (window === null) return backoffDelay(this.attempt++, this.options.reconnect);
    return Math.floor(Math.random() * Math.min(window, this.options.reconnect?.max ?? DEFAULT_BACKOFF_MAX));
  }

  /** Gets a fresh token for the next attempt, then connects at once; no token: the client stops. */
  private refreshAndRetry(): void {
    this.credentials.fetch().then(
      (token) => {
        if (this.currentState !== 'reconnecting' || this.connection !== null) return;
        this.credentials.keep(token);
        this.open();
      },
      (error: unknown) => {
        if (this.currentState === 'closed') return;
        const failed = new HotlineError('unauthorized', `could not refresh the token: ${error instanceof Error ? error.message : String(error)}`);
        this.emit('error', failed);
        // A listener may have closed the client.
        if ((this.currentState as ClientState) !== 'closed') this.finish(failed);
      },
    );
  }

  private detach(code?: number, reason?: string): void {
    this.connection?.close(code, reason);
    this.connection = null;
    this.readyConnection = null;
    this.upgradeTimer.clear();
    this.probe?.close(1000, '');
    this.probe = null;
  }

  /** Ends for good: the state, the channels and the requests learn why; the socket closes. */
  private finish(error: HotlineError): void {
    this.shutdown(error);
    this.detach(1000, ''); // a normal closure
  }

  private shutdown(error: HotlineError): void {
    this.setState('closed');
    this.retry.clear();
    this.upgradeTimer.clear();
    this.probe?.close(1000, '');
    this.probe = null;
    const target = globalThis as { removeEventListener?: (type: string, listener: () => void) => void };
    target.removeEventListener?.('online', this.onOnline);
    for (const channel of this.channels.values()) channel.closed(error);
    this.requests.failAll(error);
  }

  // ───────────────────────── requests ─────────────────────────

  private ask<Op extends RequestOp>(op: Op, fields: Record<string, Data>, onDrop: OnDrop, timeout?: number): Promise<ReplyTo[Op]> {
    if (this.currentState === 'closed') return Promise.reject(closedError());
    return this.requests.ask(op, fields, onDrop, timeout);
  }

  /** A request whose answer nobody waits for: its `ok` or `pong` only shows the connection lives. */
  private sendUnanswered(op: 'unsub' | 'ping' | 'reply', fields: Record<string, Data>): void {
    this.connection?.send({ op, id: this.requests.id(), ...fields });
  }
}

/**
 * Whether an upgrade's answer says the WebSocket handshake never reached a WebSocket server:
 * 426 (the Upgrade header was dropped on the way, as hotline serve answers a plain GET on a
 * WebSocket path), a plain 2xx/3xx page, or 404 (a proxy that routes the HTTP paths and not
 * the WebSocket one, as an nginx with a `location /sse` alone; a wrong URL gets 404 from the
 * session too, and the client then stays on WebSockets). Any other status is the server's
 * (or its proxy's) answer to this client, and the session would get the same one.
 */
function upgradeBlocked(status: number): boolean {
  return status === 426 || status === 404 || (status >= 200 && status < 400);
}

/** The error a failed connection attempt is reported with. */
function connectError({ status, message }: ConnectFailure): HotlineError {
  if (status === undefined) return new HotlineError('connect_failed', `could not connect: ${message}`);
  const code = status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : 'connect_failed';
  return new HotlineError(code, `the server refused the connection with HTTP ${status}`, status);
}

/** Connects to a hotline.v1 endpoint (such as ws://host/ws) and stays connected. */
export function connect<C extends Contract = NoContract>(
  url: string,
  options: ClientOptions & {
    /** The app's contract: types channels' data and rpc calls (for the compiler; nothing is sent). */
    contract?: C;
  } = {},
): HotlineClient<C> {
  return new HotlineClient<C>(url, options);
}
