import { DEFAULT_HISTORY_LIMIT, type Json, type Member, type StandardSchemaV1, type WireEncoding, type WireLimits } from '../wire/index.js';
import type { Broker, PresenceManager } from './engine.js';
import type { RateLimit } from './rate-limit.js';

/** One connection as the hub sees it; the server layer adapts its WebSocket connections. */
export interface ChannelClient<A = unknown> {
  /** Unique across every node sharing the engine. */
  readonly id: string;
  /** What the connection's authentication decided (at upgrade). */
  readonly auth: A;
  /** The presence member; without one the connection does not appear in presence. */
  readonly member: Member | undefined;
  /** Who the upgrade authenticated (see {@link ChannelIdentity.user}). */
  readonly user?: string;
  /** The upgrade request's headers the server kept for hooks (lower-case names), if any. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * How its requests arrive: `msgpack` for a `hotline.v1.msgpack` connection (binary frames),
   * else JSON text frames. What the hub sends it is JSON text either way; the connection
   * writes it in its encoding.
   */
  readonly encoding?: WireEncoding;
  /**
   * Sends one JSON text frame of live traffic (a presence event): past the connection's
   * backpressure limit its slow-consumer policy applies, which on /ws closes it with 1013.
   */
  send(text: string): void;
  /**
   * Sends one JSON text frame that backpressure never drops: answers and replays. The hub
   * bounds them itself, waiting for {@link drained} while {@link bufferedAmount} is high.
   */
  sendReliable(text: string): void;
  /** Bytes queued for the connection and not yet written. */
  readonly bufferedAmount: number;
  /** Buffered bytes past which live traffic meets the slow-consumer policy. */
  readonly backpressureLimit: number;
  /** Settles once the connection wrote out what it had buffered, or closed. */
  drained(): Promise<void>;
  /**
   * Closes the connection with a WebSocket close code (1008 for abuse, 1013 for a slow
   * consumer, 4401 after an expired identity, …); the server then calls the hub's `disconnect`.
   */
  close(code: number, reason: string): void;
  /**
   * Stops reading the connection's requests (frames already read may still arrive), and
   * starts again. Without them, requests past `maxPendingRequests` are refused instead.
   */
  pause?(): void;
  /** Reads the connection's requests again after {@link pause}. */
  resume?(): void;
}

/**
 * Writes one push (a channel message, an ephemeral one, a presence event) to subscribers,
 * as live traffic (the slow-consumer policy applies): encoded, and compressed, once for all
 * of them. Returns how many it reached.
 */
export interface Broadcaster<C> {
  broadcast(text: string, subscribers: Iterable<C>): number;
}

/** What hooks and rpc handlers are told about the request. */
export interface RequestContext<A = unknown> {
  /** The connection the request came on: its id, user, member, and `close` to end it. */
  client: ChannelClient<A>;
  /** The connection's identity now: from the upgrade, or from its latest `auth` request. */
  auth: A;
  /** Who the connection is now (see {@link ChannelIdentity.user}): from the upgrade or its latest `auth`. */
  user?: string;
  /** Whether the connection holds a subscription to the channel (the hub's contexts say; others may not). */
  isSubscribed?(channel: string): boolean;
}

/** Who a connection is: what hooks see, its presence member, and when that stops being true. */
export interface ChannelIdentity<A> {
  /** What the application's hooks see as `context.auth`: claims, roles, whatever it decided. */
  auth: A;
  /** How the connection appears in presence (id and info); without one it does not appear. */
  member?: Member;
  /**
   * Who this is, stable across tokens (a user id): idempotency keys are scoped to it, so a
   * retry after a reconnect or a token refresh is still recognised. Without it, keys are
   * scoped to the SDK's random `sender` id, or to the connection.
   */
  user?: string;
  /** Ms since the epoch; after it, requests are refused until the client re-authenticates. */
  expiresAt?: number;
}

/** A hook's answer: true allows; false answers `forbidden`; a thrown ChannelError answers its code. */
export type Permission = boolean | Promise<boolean>;

/** What applies to the channels a {@link ChannelHubOptions.channels} key matches. */
export interface ChannelRules {
  /** Validates (and may transform) published data: invalid data is answered `bad_request` and never delivered. */
  schema?: StandardSchemaV1;
  /**
   * Whether the channel keeps a member list (default true). False, for channels with huge
   * audiences: subscribers are only counted, nobody is told of joins and leaves, a
   * `presence` request is answered `{count}` alone, and `state` requests `not_found`.
   */
  presence?: boolean;
  /** Validates (and may transform) presence state set with `state`: invalid state is answered `bad_request`. */
  stateSchema?: StandardSchemaV1;
  /** Whether subscribers are told of joins and leaves, instead of the hub's `joinLeave` (see there). */
  joinLeave?: boolean;
  /** Publishes per second per connection to these channels, instead of `publishRate`: one bucket per connection and rule. */
  publishRate?: RateLimit;
}

/** An rpc method with checks: its params' schema, its result's schema, and the handler. */
export interface RpcMethod<A = unknown> {
  /** Checks (and may transform) the params: invalid ones are answered `bad_request` and the handler is not called. */
  schema?: StandardSchemaV1;
  /** Checks the handler's answer (a contract's `result`): one outside it is answered `internal` and told to `onError`. */
  result?: StandardSchemaV1;
  /**
   * Answers the call: its result goes to the caller as `result` (undefined as null). A
   * thrown {@link ChannelError} answers its code; anything else `internal`, told to `onError`.
   */
  handler(params: unknown, context: RequestContext<A>): Json | undefined | Promise<Json | undefined>;
}

/**
 * Decisions and answers asked of the application's backend (`hotline serve`'s proxy hooks),
 * after the hub's own rules allowed the request: they add to those rules, never replace
 * them. Each rejects with a ChannelError to refuse (its code answers the client; a backend
 * that failed or did not answer is `internal`, which clients may retry).
 */
export interface ChannelProxy<A = unknown> {
  /** Asked once per `sub`, after canSubscribe allowed it (not for history, presence or an `auth` recheck). */
  subscribe?(context: RequestContext<A>, channel: string): Promise<void>;
  /**
   * Asked once per `pub`, after the data passed the channel's checks and canPublish:
   * resolves to `{ data }` to publish that instead (checked by the channel's rules again),
   * or undefined to publish it as it is.
   */
  publish?(
    context: RequestContext<A>,
    channel: string,
    data: unknown,
  ): Promise<
    | {
        /** The data to publish instead. */
        data: unknown;
      }
    | undefined
  >;
  /** Answers an `rpc` whose method is not among the `rpc` option's. */
  rpc?(context: RequestContext<A>, method: string, params: Json | undefined): Promise<Json>;
}

/** A {@link ChannelHub}'s engine, limits, rates, rules and the application's hooks; every one optional. */
export interface ChannelHubOptions<A = unknown> {
  /**
   * Where messages go between connections and nodes (default: a {@link MemoryEngine} with
   * its defaults). An engine that is also a presence manager (the memory and Redis
   * engines) serves presence too, unless `presence` is given.
   */
  engine?: Broker;
  /** Who is in each channel, when the engine does not keep it (or another should). */
  presence?: PresenceManager;
  /** Field limits of requests (channel name length, …). */
  limits?: Partial<WireLimits>;
  /** Largest published data, as JSON text (bytes of UTF-16 code units; default 65536). */
  maxDataLength?: number;
  /**
   * Members a `presence` answer lists at most (default 1000): past it, the answer holds the
   * first ones, the `count` of all, and `truncated: true`.
   */
  maxPresenceMembers?: number;
  /** The largest presence state (`state` request), as JSON text (UTF-16 code units, default 1024). */
  maxPresenceStateLength?: number;
  /**
   * How long a disconnected client stays present (ms, default 5000): a reconnect with the
   * same client id (`sender`) within it subscribes again without a leave and a join.
   */
  presenceGrace?: number;
  /**
   * Whether a channel's subscribers are told of its joins and leaves (default true; a
   * channel's rules may say otherwise). Each join and leave is one frame to every
   * subscriber, so on a channel of N subscribers that come and go it is N² frames; off,
   * members are still kept (`presence` answers them) and `update`s of presence state still
   * go out, but the SDK's live map then only changes with updates and resubscriptions.
   */
  joinLeave?: boolean;
  /** Subscriptions one connection may hold (default 1000). */
  maxSubscriptions?: number;
  /** Publishes per second per connection (default 50/s, burst 100). */
  publishRate?: RateLimit;
  /** Subscribes per second per connection (default 100/s, burst 1000: a reconnecting client resubscribes everything at once). */
  subscribeRate?: RateLimit;
  /** Rpc calls per second per connection (default 50/s, burst 100). */
  rpcRate?: RateLimit;
  /** History requests per second per connection (default 20/s, burst 100). */
  historyRate?: RateLimit;
  /** Presence requests per second per connection (default 20/s, burst 100). */
  presenceRate?: RateLimit;
  /** Unsubscribes per second per connection (default 100/s, burst 1000, as subscribes). */
  unsubscribeRate?: RateLimit;
  /** Pings per second per connection (default 10/s, burst 50). */
  pingRate?: RateLimit;
  /** `auth` requests per second per connection (default 1/s, burst 10): each one runs `authenticateToken`. */
  authRate?: RateLimit;
  /**
   * Requests of one connection read but not yet answered (default 256). Past it the hub
   * stops reading the connection until half of them are answered; requests that were
   * already read meanwhile still wait their turn, so a burst (a reconnect resubscribing
   * everything) is never refused. A client that cannot pause is answered `rate_limited`.
   */
  maxPendingRequests?: number;
  /** The same bound on the requests' total text (UTF-16 code units, default 1 MiB). */
  maxPendingBytes?: number;
  /**
   * Sustained abuse: this many `bad_request`/`rate_limited` answers within `abuseWindow`
   * ms close the connection with 1008 (default 100 within 10000 ms).
   */
  abuseLimit?: number;
  /** The window `abuseLimit` counts answers in (ms, default 10000). */
  abuseWindow?: number;
  /** Newest messages a `history` without `limit` returns (default 50). */
  defaultHistoryLimit?: number;
  /**
   * The largest `history` answer, in bytes of JSON text (default 512 KiB, under the 1 MiB
   * clients accept by default): a longer one holds the newest messages that fit and says
   * `more`, and the client asks for the rest with `before`.
   */
  maxHistoryAnswerBytes?: number;
  /** Rules per channel: keys are names, or prefixes ending in `*` ("chat:*"); the longest match wins. */
  channels?: Record<string, ChannelRules>;
  /**
   * The methods clients may call with `rpc`, by name: a handler alone, or an {@link RpcMethod}
   * with schemas. A name not here is answered `not_found`.
   */
  rpc?: Record<string, RpcMethod<A> | RpcMethod<A>['handler']>;
  /**
   * May this connection subscribe (also asked for `history` and `presence` unless their own
   * hooks are given)? `token` is the `sub` request's subscription token, if it sent one;
   * asked again after an `auth`, with the token the subscription was made with.
   */
  canSubscribe?(context: RequestContext<A>, channel: string, token?: string): Permission;
  /** May this connection read the channel's history (default: canSubscribe, without a token)? */
  canReadHistory?(context: RequestContext<A>, channel: string): Permission;
  /** May this connection read the channel's presence (default: canSubscribe, without a token)? */
  canReadPresence?(context: RequestContext<A>, channel: string): Permission;
  /** May this connection publish this data here? */
  canPublish?(context: RequestContext<A>, channel: string, data: unknown): Permission;
  /** The application's backend, asked after the rules above (subscribe, publish) or for rpc methods not in `rpc`. */
  proxy?: ChannelProxy<A>;
  /**
   * Checks the token of an `auth` request (sent by clients that cannot authenticate in the
   * upgrade request, and to refresh expiring credentials): an identity, or a thrown
   * ChannelError('unauthorized', …). When set, a connection whose upgrade gave no identity
   * (auth undefined) must authenticate before anything but ping.
   */
  authenticateToken?(token: string, context: RequestContext<A>): ChannelIdentity<A> | Promise<ChannelIdentity<A>>;
  /** How long past expiry a connection may stay without re-authenticating before it is closed with 4401 (ms, default 30000). */
  authGrace?: number;
  /** How long the server API's `call` waits for a client's reply unless told (ms, default 10000). */
  callTimeout?: number;
  /**
   * Calls of the server API to one connection waiting for its reply (default 64): past it a
   * call fails `too_many_pending` without being sent, so a client that never replies holds
   * at most this many, each until its timeout.
   */
  maxPendingCalls?: number;
  /**
   * Commands of the server API (send, disconnect, unsubscribe, call) of this node waiting
   * for other nodes' answers (default 10000); past it they fail `too_many_pending`.
   */
  maxPendingCommands?: number;
  /** How long a send, disconnect or unsubscribe waits for every node it reached to answer (ms, default 5000). */
  nodeTimeout?: number;
  /** An error that is not the peer's fault (an rpc handler or hook threw); default: console.error. */
  onError?(error: unknown, context: RequestContext<A>): void;
  /** Clock (ms since the epoch) for rates, expiry and grace; tests pass their own. Default `Date.now`. */
  now?: () => number;
}

export const DEFAULTS = {
  maxDataLength: 64 * 1024,
  maxSubscriptions: 1000,
  publishRate: { perSecond: 50, burst: 100 },
  subscribeRate: { perSecond: 100, burst: 1000 },
  rpcRate: { perSecond: 50, burst: 100 },
  abuseLimit: 100,
  abuseWindow: 10_000,
  authGrace: 30_000,
  defaultHistoryLimit: DEFAULT_HISTORY_LIMIT,
  callTimeout: 10_000,
  maxPendingCalls: 64,
  maxPendingCommands: 10_000,
  nodeTimeout: 5_000,
  maxPresenceMembers: 1000,
  maxPresenceStateLength: 1024,
  presenceGrace: 5_000,
  joinLeave: true,
};
