import {
  encodeErr,
  encodeHistoryOk,
  encodeJoin,
  encodeLeave,
  encodeMsg,
  encodeOk,
  encodePong,
  encodeUnsubPush,
  parseRequest,
  resolveWireLimits,
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_MAX_HISTORY_ANSWER_BYTES,
  type ClientRequest,
  type ErrorCode,
  type HistoryRequest,
  type Json,
  type Member,
  type PubRequest,
  type RpcRequest,
  type SubRequest,
  type WireLimits,
} from '../wire/index.js';
import { ChannelError } from './channel-error.js';
import { historyPage } from './history-page.js';
import { EngineUnavailableError, type ChannelMessage, type Engine, type PresenceEvent } from './engine.js';
import { MemoryEngine } from './memory-engine.js';
import { newChannelMetrics, type ChannelMetrics } from './metrics.js';
import { RequestIntake, type IntakeOptions } from './intake.js';
import { TokenBucket, type RateLimit } from './rate-limit.js';
import { validateWith, type StandardSchemaV1 } from '../wire/index.js';

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
  close(code: number, reason: string): void;
  /** Starts receiving what {@link Broadcaster.broadcast} sends to the channel. */
  join(channel: string): void;
  leave(channel: string): void;
  /**
   * Stops reading the connection's requests (frames already read may still arrive), and
   * starts again. Without them, requests past `maxPendingRequests` are refused instead.
   */
  pause?(): void;
  resume?(): void;
}

/** Writes one text to every connection that joined a channel (encoded once); returns how many. */
export interface Broadcaster {
  broadcast(channel: string, text: string): number;
}

/** What hooks and rpc handlers are told about the request. */
export interface RequestContext<A = unknown> {
  client: ChannelClient<A>;
  /** The connection's identity now: from the upgrade, or from its latest `auth` request. */
  auth: A;
}

/** Who a connection is: what hooks see, its presence member, and when that stops being true. */
export interface ChannelIdentity<A> {
  auth: A;
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

export interface ChannelRules {
  /** Validates (and may transform) published data: invalid data is answered `bad_request` and never delivered. */
  schema?: StandardSchemaV1;
}

export interface RpcMethod<A = unknown> {
  schema?: StandardSchemaV1;
  handler(params: unknown, context: RequestContext<A>): Json | undefined | Promise<Json | undefined>;
}

export interface ChannelHubOptions<A = unknown> {
  /** Default: a {@link MemoryEngine} with its defaults. */
  engine?: Engine;
  /** Field limits of requests (channel name length, …). */
  limits?: Partial<WireLimits>;
  /** Largest published data, as JSON text (bytes of UTF-16 code units; default 65536). */
  maxDataLength?: number;
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
  rpc?: Record<string, RpcMethod<A> | RpcMethod<A>['handler']>;
  /** May this connection subscribe (also asked for `history` and `presence`)? */
  canSubscribe?(context: RequestContext<A>, channel: string): Permission;
  /** May this connection publish this data here? */
  canPublish?(context: RequestContext<A>, channel: string, data: unknown): Permission;
  /**
   * Checks the token of an `auth` request (sent by clients that cannot authenticate in the
   * upgrade request, and to refresh expiring credentials): an identity, or a thrown
   * ChannelError('unauthorized', …). When set, a connection whose upgrade gave no identity
   * (auth undefined) must authenticate before anything but ping.
   */
  authenticateToken?(token: string, context: RequestContext<A>): ChannelIdentity<A> | Promise<ChannelIdentity<A>>;
  /** How long past expiry a connection may stay without re-authenticating before it is closed with 4401 (ms, default 30000). */
  authGrace?: number;
  /** An error that is not the peer's fault (an rpc handler or hook threw); default: console.error. */
  onError?(error: unknown, context: RequestContext<A>): void;
  now?: () => number;
}

interface Subscription {
  /** Live messages that arrived while the subscription was reading or replaying history. */
  buffer: ChannelMessage[] | null;
  /** Bytes of data in `buffer`: past the connection's backpressure limit it is closed as slow. */
  kept: number;
  /** Whether the sub was answered: presence events go out from then on. */
  answered: boolean;
  /** The stream's epoch and the last offset sent to this connection. */
  epoch: string;
  last: number;
}

interface Session<A> {
  client: ChannelClient<A>;
  auth: A;
  member: Member | undefined;
  authenticated: boolean;
  expiresAt: number | undefined;
  expiryTimer: ReturnType<typeof setTimeout> | null;
  subscriptions: Map<string, Subscription>;
  /** Requests other than rpc and ping run one after another, in the order they came. */
  queue: Promise<void>;
  /** Arrival rate limits, and the requests read and not yet answered (ping aside). */
  intake: RequestIntake;
  /** The authenticated user, which scopes idempotency keys. */
  user: string | undefined;
  closed: boolean;
  publishes: TokenBucket;
  subscribes: TokenBucket;
  rpcs: TokenBucket;
  /** Times of recent bad or rate-limited requests. */
  strikes: number[];
}

interface LocalChannel<A> {
  /** The last message delivered here, to drop repeats (an engine re-reading after an outage). */
  epoch: string;
  offset: number;
  /** Messages delivered here since the channel was subscribed on this node. */
  messages: number;
  sessions: Set<Session<A>>;
  /** Sessions whose subscription is replaying history; live messages are kept for them. */
  recovering: Set<Session<A>>;
  /** Settles once the engine delivers this channel to this node. */
  ready: Promise<void>;
}

export const DEFAULTS = {
  maxDataLength: 64 * 1024,
  maxSubscriptions: 1000,
  publishRate: { perSecond: 50, burst: 100 },
  subscribeRate: { perSecond: 100, burst: 1000 },
  rpcRate: { perSecond: 50, burst: 100 },
  abuseLimit: 100,
  abuseWindow: 10_000,
  defaultHistoryLimit: DEFAULT_HISTORY_LIMIT,
};

/** Policy violation: the close code for sustained abuse. */
const POLICY_VIOLATION = 1008;
/** What a connection whose credentials expired without a refresh is closed with. */
const UNAUTHORIZED_CLOSE = 4401;
/** Try again later: what a subscriber too slow for its channel is closed with, to recover. */
const TRY_AGAIN_LATER = 1013;
/** Service restart: what a subscriber whose stream could not be re-read is closed with. */
const SERVICE_RESTART = 1012;
/** setTimeout's longest delay (2^31 − 1 ms, 24.8 days); a longer one fires at once. */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * The hotline.v1 channel protocol for the connections of one node: requests in, answers
 * and channel messages out, with everything shared between connections (and nodes) kept
 * by an {@link Engine}. Each channel is subscribed in the engine once per node; a message
 * is encoded once and broadcast to every live local subscriber.
 *
 * Recovery: a `sub` with `since` joins the channel's live stream first and keeps what
 * arrives while it reads history, then answers, replays history, replays the kept
 * messages it did not already send (by offset), and only then goes live, so nothing is
 * missed or sent twice.
 */
export class ChannelHub<A = unknown> {
  readonly metrics: ChannelMetrics = newChannelMetrics();
  readonly engine: Engine;
  private readonly sessions = new Map<ChannelClient<A>, Session<A>>();
  private readonly channels = new Map<string, LocalChannel<A>>();
  private readonly limits: WireLimits;
  private readonly options: ChannelHubOptions<A>;
  private readonly rules: Array<[prefix: string, exact: boolean, rules: ChannelRules]>;
  private readonly now: () => number;
  private broadcaster: Broadcaster | null = null;
  private started: Promise<void> | null = null;

  constructor(options: ChannelHubOptions<A> = {}) {
    this.options = options;
    this.engine = options.engine ?? new MemoryEngine({ now: options.now });
    this.limits = resolveWireLimits(options.limits);
    this.now = options.now ?? Date.now;
    this.rules = Object.entries(options.channels ?? {})
      .map(([pattern, rules]): [string, boolean, ChannelRules] =>
        pattern.endsWith('*') ? [pattern.slice(0, -1), false, rules] : [pattern, true, rules],
      )
      .sort((a, b) => b[0].length - a[0].length);
  }

  /** Starts the engine; the server calls it once, with how to reach a channel's connections. */
  start(broadcaster: Broadcaster): Promise<void> {
    this.broadcaster = broadcaster;
    this.started ??= this.engine.start({
      message: (message) => this.deliver(message),
      presence: (event) => this.presenceChanged(event),
      health: (healthy) => {
        if (healthy) void this.resync();
      },
    });
    return this.started;
  }

  async close(): Promise<void> {
    await this.engine.close();
  }

  /** A connection opened. */
  connect(client: ChannelClient<A>, expiresAt?: number): void {
    const now = this.now();
    const session: Session<A> = {
      client,
      auth: client.auth,
      member: client.member,
      authenticated: this.options.authenticateToken === undefined || client.auth !== undefined,
      expiresAt: undefined,
      expiryTimer: null,
      subscriptions: new Map(),
      queue: Promise.resolve(),
      intake: new RequestIntake(this.intakeOptions(), now, client),
      user: client.user,
      closed: false,
      publishes: new TokenBucket(this.options.publishRate ?? DEFAULTS.publishRate, now),
      subscribes: new TokenBucket(this.options.subscribeRate ?? DEFAULTS.subscribeRate, now),
      rpcs: new TokenBucket(this.options.rpcRate ?? DEFAULTS.rpcRate, now),
      strikes: [],
    };
    this.sessions.set(client, session);
    this.metrics.sessions++;
    this.setExpiry(session, expiresAt);
  }

  /** A connection closed, cleanly or not: its subscriptions and presence go. */
  disconnect(client: ChannelClient<A>): void {
    const session = this.sessions.get(client);
    if (session === undefined) return;
    session.closed = true;
    if (session.expiryTimer !== null) clearTimeout(session.expiryTimer);
    this.sessions.delete(client);
    this.metrics.sessions--;
    for (const channel of session.subscriptions.keys()) this.dropSubscription(session, channel);
  }

  /** A text frame from a connection. */
  handleText(client: ChannelClient<A>, text: string): void {
    const session = this.sessions.get(client);
    if (session === undefined || session.closed) return;
    const parsed = parseRequest(text, this.limits);
    if (!parsed.ok) {
      this.fail(session, parsed.id, parsed.code, parsed.message);
      return;
    }
    const request = parsed.request;
    this.metrics.requests[request.op]++;
    if (this.overArrivalRate(session, request)) return;
    if (request.op === 'ping') {
      client.sendReliable(encodePong(request.id));
      return;
    }
    if (!this.admit(session, request.id, text.length)) return;
    const done = (): void => this.release(session, text.length);
    if (request.op === 'auth') {
      session.queue = session.queue.then(() => this.run(session, request.id, () => this.authenticate(session, request.id, request.token))).then(done, done);
      return;
    }
    if (request.op === 'rpc') {
      // An rpc waits for the requests before it (an auth, say) but not for those after it.
      const before = session.queue;
      void this.run(session, request.id, async () => {
        await before;
        const refusal = this.refusal(session);
        if (refusal !== null) return this.fail(session, request.id, 'unauthorized', refusal);
        return this.rpc(session, request);
      }).then(done, done);
      return;
    }
    session.queue = session.queue.then(() =>
      this.run(session, request.id, () => {
        // Checked again in turn: an auth queued before this request may have settled it.
        const late = this.refusal(session);
        if (late !== null) {
          this.fail(session, request.id, 'unauthorized', late);
          return Promise.resolve();
        }
        return this.channelRequest(session, request);
      }),
    ).then(done, done);
  }

  /** A binary frame: hotline.v1 is JSON text only. */
  handleBinary(client: ChannelClient<A>): void {
    const session = this.sessions.get(client);
    if (session !== undefined) this.fail(session, undefined, 'bad_request', 'hotline.v1 messages are JSON text frames, not binary');
  }

  /** Channels with subscribers on this node: their subscriber counts and messages delivered. */
  channelStats(): Array<{ name: string; subscribers: number; messages: number }> {
    return [...this.channels].map(([name, local]) => ({ name, subscribers: local.sessions.size, messages: local.messages }));
  }

  /** Local subscribers of a channel (across its sessions, recovering or live). */
  localSubscribers(channel: string): number {
    return this.channels.get(channel)?.sessions.size ?? 0;
  }

  // ───────────────────────────── intake ─────────────────────────────

  private intakeOptions(): IntakeOptions {
    const o = this.options;
    return {
      rates: { history: o.historyRate, presence: o.presenceRate, unsub: o.unsubscribeRate, ping: o.pingRate, auth: o.authRate },
      maxPendingRequests: o.maxPendingRequests,
      maxPendingBytes: o.maxPendingBytes,
    };
  }

  /** Answers rate_limited (and true) when an arrival-limited op comes too fast: it is never queued. */
  private overArrivalRate(session: Session<A>, request: ClientRequest): boolean {
    const refusal = session.intake.refusal(request.op, this.now());
    if (refusal === null) return false;
    this.fail(session, request.id, 'rate_limited', refusal);
    return true;
  }

  /** Counts a request in flight (see {@link RequestIntake}); false when it was refused. */
  private admit(session: Session<A>, id: number, size: number): boolean {
    const outcome = session.intake.admit(size);
    if (outcome === 'paused') this.metrics.readPauses++;
    if (outcome !== 'refused') return true;
    this.fail(session, id, 'rate_limited', session.intake.boundMessage);
    return false;
  }

  private release(session: Session<A>, size: number): void {
    session.intake.release(size, !session.closed);
  }

  // ───────────────────────────── requests ─────────────────────────────

  private async run(session: Session<A>, id: number, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      if (session.closed) return;
      if (error instanceof ChannelError) {
        this.fail(session, id, error.code, error.message);
      } else if (error instanceof EngineUnavailableError) {
        // Never a silent drop: the request was not carried out, and the client is told.
        this.fail(session, id, 'internal', `unavailable: ${error.message}`);
      } else {
        (this.options.onError ?? defaultOnError)(error, this.context(session));
        this.fail(session, id, 'internal', 'internal error');
      }
    }
  }

  /** Why this connection may not make requests now, or null. */
  private refusal(session: Session<A>): string | null {
    if (!session.authenticated) return 'authenticate first: send {"op":"auth","token":…}';
    if (session.expiresAt !== undefined && this.now() >= session.expiresAt) {
      return 'credentials expired: send a fresh token with {"op":"auth","token":…}';
    }
    return null;
  }

  private async authenticate(session: Session<A>, id: number, token: string): Promise<void> {
    const check = this.options.authenticateToken;
    if (check === undefined) return this.fail(session, id, 'bad_request', 'this server does not take tokens over the connection');
    const identity = await check(token, this.context(session));
    if (session.closed) return;
    session.auth = identity.auth;
    session.user = identity.user;
    session.authenticated = true;
    this.setExpiry(session, identity.expiresAt);
    // Subscriptions the new identity may not read end as the member that joined them.
    await this.recheckSubscriptions(session);
    if (session.closed) return;
    await this.replaceMember(session, identity.member);
    this.reply(session, encodeOk(id, identity.expiresAt === undefined ? {} : { expiresAt: identity.expiresAt }));
  }

  /**
   * After an `auth`, every subscription is asked of canSubscribe again as the new identity:
   * the ones it no longer allows end, and the client is told with an `unsub` push.
   */
  private async recheckSubscriptions(session: Session<A>): Promise<void> {
    const check = this.options.canSubscribe;
    if (check === undefined || session.subscriptions.size === 0) return;
    const context = this.context(session);
    const verdicts = await Promise.all(
      [...session.subscriptions.keys()].map(async (channel): Promise<[string, ChannelError | null]> => {
        try {
          return [channel, (await check(context, channel)) ? null : new ChannelError('forbidden', `no longer allowed to read ${channel}`)];
        } catch (error) {
          if (error instanceof ChannelError) return [channel, error];
          (this.options.onError ?? defaultOnError)(error, context);
          return [channel, new ChannelError('internal', `could not check ${channel} again`)];
        }
      }),
    );
    for (const [channel, refusal] of verdicts) {
      if (refusal !== null && !session.closed) this.endSubscription(session, channel, refusal.code, refusal.message);
    }
  }

  /** The identity's presence member changed: in each channel, leave as the old one and join as the new. */
  private async replaceMember(session: Session<A>, member: Member | undefined): Promise<void> {
    const former = session.member;
    session.member = member;
    if (JSON.stringify(former) === JSON.stringify(member)) return;
    for (const channel of session.subscriptions.keys()) {
      try {
        if (former !== undefined) await this.engine.leave(channel, session.client.id);
        if (member !== undefined && session.subscriptions.has(channel)) await this.engine.join(channel, session.client.id, member);
      } catch (error) {
        (this.options.onError ?? defaultOnError)(error, this.context(session));
      }
    }
  }

  /** Drops a subscription the client did not ask to drop, and tells it so. */
  private endSubscription(session: Session<A>, channel: string, code: ErrorCode, message: string): void {
    if (!session.subscriptions.has(channel)) return;
    // Unsubscribed as the member that joined: its leave is announced.
    this.dropSubscription(session, channel);
    this.reply(session, encodeUnsubPush(channel, code, message));
  }

  private setExpiry(session: Session<A>, expiresAt: number | undefined): void {
    session.expiresAt = expiresAt;
    this.armExpiry(session);
  }

  /**
   * At expiresAt the subscriptions end (nothing more is delivered to the old identity); a
   * grace period later, a connection that has not re-authenticated is closed with 4401.
   * A deadline past setTimeout's range is reached in steps.
   */
  private armExpiry(session: Session<A>): void {
    if (session.expiryTimer !== null) clearTimeout(session.expiryTimer);
    session.expiryTimer = null;
    const expiresAt = session.expiresAt;
    if (expiresAt === undefined || session.closed) return;
    const now = this.now();
    const closeAt = expiresAt + (this.options.authGrace ?? 30_000);
    if (now >= closeAt) {
      session.client.close(UNAUTHORIZED_CLOSE, 'credentials expired');
      this.disconnect(session.client);
      return;
    }
    if (now >= expiresAt) {
      for (const channel of [...session.subscriptions.keys()]) {
        this.endSubscription(session, channel, 'unauthorized', 'credentials expired: authenticate again, then subscribe');
      }
    }
    const next = now < expiresAt ? expiresAt : closeAt;
    session.expiryTimer = setTimeout(() => this.armExpiry(session), Math.min(next - now, MAX_TIMER_DELAY));
    (session.expiryTimer as { unref?: () => void }).unref?.();
  }

  private context(session: Session<A>): RequestContext<A> {
    return { client: session.client, auth: session.auth };
  }

  private channelRequest(session: Session<A>, request: Exclude<ClientRequest, { op: 'ping' | 'rpc' | 'auth' }>): Promise<void> {
    if (session.closed) return Promise.resolve();
    switch (request.op) {
      case 'sub':
        return this.subscribe(session, request);
      case 'unsub':
        if (session.subscriptions.has(request.ch)) this.dropSubscription(session, request.ch);
        this.reply(session, encodeOk(request.id));
        return Promise.resolve();
      case 'pub':
        return this.publish(session, request);
      case 'history':
        return this.history(session, request);
      case 'presence':
        return this.presence(session, request.id, request.ch);
    }
  }

  private async subscribe(session: Session<A>, request: SubRequest): Promise<void> {
    const { ch: channel, id } = request;
    if (!session.subscribes.take(this.now())) return this.fail(session, id, 'rate_limited', 'subscribing too fast');
    if (session.subscriptions.has(channel)) return this.fail(session, id, 'bad_request', `already subscribed to ${channel}`);
    const max = this.options.maxSubscriptions ?? DEFAULTS.maxSubscriptions;
    if (session.subscriptions.size >= max) return this.fail(session, id, 'too_large', `at most ${max} subscriptions per connection`);
    await this.authorize(this.options.canSubscribe?.(this.context(session), channel), channel, 'subscribe to');
    if (session.closed) return;
    // The credentials may have expired while the hook decided.
    const expired = this.refusal(session);
    if (expired !== null) return this.fail(session, id, 'unauthorized', expired);

    const subscription: Subscription = { buffer: [], kept: 0, answered: false, epoch: '', last: 0 };
    session.subscriptions.set(channel, subscription);
    this.metrics.subscriptions++;
    const local = this.localChannel(channel);
    local.sessions.add(session);
    local.recovering.add(session);
    this.engine.setLocalSubscriberCount(channel, local.sessions.size);
    let missed: ChannelMessage[];
    try {
      await local.ready;
      const result = await this.engine.history(channel, { since: request.since });
      if (session.closed || session.subscriptions.get(channel) !== subscription) return;
      const { position, recovered } = result;
      if (request.since !== undefined) {
        if (recovered) this.metrics.recoveries.recovered++;
        else this.metrics.recoveries.notRecovered++;
      }
      this.reply(session, encodeOk(id, { epoch: position.epoch, offset: position.offset, recovered }));
      subscription.epoch = position.epoch;
      subscription.last = position.offset;
      subscription.answered = true;
      missed = recovered ? result.messages : [];
    } catch (error) {
      subscription.buffer = null;
      local.recovering.delete(session);
      if (session.subscriptions.get(channel) === subscription) this.dropSubscription(session, channel);
      throw error;
    }
    // Not awaited: a replay paced by a slow reader must not hold up the requests after it.
    this.replay(session, channel, subscription, missed).catch((error: unknown) =>
      (this.options.onError ?? defaultOnError)(error, this.context(session)),
    );
    const member = session.member;
    if (member === undefined) return;
    try {
      await this.engine.join(channel, session.client.id, member);
    } catch (error) {
      // The sub is answered already: it must not be answered again. Presence misses one member.
      (this.options.onError ?? defaultOnError)(error, this.context(session));
    }
  }

  /**
   * Sends a subscription what it missed, then the live messages kept meanwhile, each once
   * the connection has room (a replay larger than the backpressure limit waits for the
   * client to read instead of meeting the slow-consumer policy), then makes it live.
   */
  private async replay(session: Session<A>, channel: string, subscription: Subscription, missed: ChannelMessage[]): Promise<void> {
    const current = (): boolean => !session.closed && session.subscriptions.get(channel) === subscription;
    // The missed messages end at the answer's offset, where `last` stands already.
    for (const message of missed) {
      await this.pace(session);
      if (!current()) return;
      this.sendReplayed(session, message);
    }
    // Kept messages are taken from the front by index (many small ones must not cost a
    // shift each); what was sent is cut off now and then. More may arrive meanwhile.
    const kept = subscription.buffer!;
    let next = 0;
    while (next < kept.length) {
      await this.pace(session);
      if (!current()) return;
      const message = kept[next++]!;
      subscription.kept -= keptSize(message);
      if (next >= 1024 && next * 2 >= kept.length) {
        kept.splice(0, next);
        next = 0;
      }
      if (message.epoch !== subscription.epoch || message.offset <= subscription.last) continue;
      this.sendReplayed(session, message);
      subscription.last = message.offset;
    }
    subscription.buffer = null;
    // Live once this node's deliveries have reached what was sent: an engine may deliver a
    // message after history already showed it. Until then, catchUp() sends each newer one.
    const local = this.channels.get(channel);
    if (local !== undefined && local.epoch === subscription.epoch && local.offset >= subscription.last) {
      local.recovering.delete(session);
      session.client.join(channel);
    }
  }

  /** One message of a replay: never dropped (the replay is paced instead). */
  private sendReplayed(session: Session<A>, message: ChannelMessage): void {
    session.client.sendReliable(encodeMsg(message.channel, message.offset, message.data));
    this.metrics.deliveries++;
  }

  /**
   * Waits while the connection holds half its backpressure limit or more: what is sent
   * reliably (replays, history pages) stays within the limit plus one message, and leaves
   * room for live messages, which meet the slow-consumer policy past the limit.
   */
  private async pace(session: Session<A>): Promise<void> {
    const client = session.client;
    if (!session.closed && client.bufferedAmount >= client.backpressureLimit / 2) await client.drained();
  }

  /** A message for a subscription not yet live: sent unless already sent. */
  private catchUp(session: Session<A>, subscription: Subscription, message: ChannelMessage): void {
    if (message.epoch !== subscription.epoch || message.offset <= subscription.last) return;
    this.sendMessage(session, message);
    subscription.last = message.offset;
  }

  private async publish(session: Session<A>, request: PubRequest): Promise<void> {
    const { ch: channel, id } = request;
    if (!session.publishes.take(this.now())) return this.fail(session, id, 'rate_limited', 'publishing too fast');
    let data: unknown = request.data;
    const schema = this.rulesFor(channel)?.schema;
    if (schema !== undefined) {
      const checked = await validateWith(schema, data);
      if (!checked.ok) return this.fail(session, id, 'bad_request', `invalid data for ${channel}: ${checked.message}`);
      data = checked.value;
    }
    const json = JSON.stringify(data) as string | undefined;
    if (json === undefined) return this.fail(session, id, 'bad_request', 'data is not JSON');
    const max = this.options.maxDataLength ?? DEFAULTS.maxDataLength;
    if (json.length > max) return this.fail(session, id, 'too_large', `data is ${json.length} characters of JSON; the limit is ${max}`);
    await this.authorize(this.options.canPublish?.(this.context(session), channel, data), channel, 'publish to');
    if (session.closed) return;
    const result = await this.engine.publish(channel, json, request.key === undefined ? {} : { key: request.key, publisher: this.publisherOf(session, request) });
    if (result.conflict === true) {
      return this.fail(session, id, 'bad_request', `key ${JSON.stringify(request.key)} was used for other data in ${channel}: use a fresh key for each message`);
    }
    if (result.duplicate) {
      this.metrics.duplicatePublishes++;
      this.reply(session, encodeOk(id, { offset: result.offset, delivered: 0 }));
      return;
    }
    this.metrics.publishes++;
    this.reply(session, encodeOk(id, { offset: result.offset, delivered: result.subscribers }));
  }

  /**
   * Whose keys a publish's key is among: the authenticated user's, else the client's random
   * sender id (kept across its reconnects), else this connection's alone.
   */
  private publisherOf(session: Session<A>, request: PubRequest): string {
    if (session.user !== undefined) return `u:${session.user}`;
    if (request.sender !== undefined) return `s:${request.sender}`;
    return `c:${session.client.id}`;
  }

  /**
   * A page of history: the newest `limit` messages (before `before`) that fit in
   * `maxHistoryAnswerBytes`, with `more` when older ones are kept. One more than asked is
   * read to know. Sent once the connection has room, so big pages wait for a slow reader.
   */
  private async history(session: Session<A>, request: HistoryRequest): Promise<void> {
    const { id, ch: channel, before } = request;
    await this.authorize(this.options.canSubscribe?.(this.context(session), channel), channel, 'read');
    const limit = request.limit ?? this.options.defaultHistoryLimit ?? DEFAULTS.defaultHistoryLimit;
    const result = await this.engine.history(channel, { limit: limit + 1, before });
    const page = historyPage(result.messages, limit, this.options.maxHistoryAnswerBytes ?? DEFAULT_MAX_HISTORY_ANSWER_BYTES);
    await this.pace(session);
    this.reply(session, encodeHistoryOk(id, result.position.epoch, page.entries, page.more));
  }

  private async presence(session: Session<A>, id: number, channel: string): Promise<void> {
    await this.authorize(this.options.canSubscribe?.(this.context(session), channel), channel, 'see presence in');
    const members = await this.engine.members(channel);
    this.reply(session, encodeOk(id, { members }));
  }

  private async rpc(session: Session<A>, request: RpcRequest): Promise<void> {
    const { id, method } = request;
    if (!session.rpcs.take(this.now())) return this.fail(session, id, 'rate_limited', 'calling too fast');
    const entry = Object.hasOwn(this.options.rpc ?? {}, method) ? this.options.rpc![method] : undefined;
    if (entry === undefined) return this.fail(session, id, 'not_found', `no rpc method ${JSON.stringify(method)}`);
    const { handler, schema } = typeof entry === 'function' ? { handler: entry, schema: undefined } : entry;
    let params: unknown = request.params;
    if (schema !== undefined) {
      const checked = await validateWith(schema, params);
      if (!checked.ok) return this.fail(session, id, 'bad_request', `invalid params for ${method}: ${checked.message}`);
      params = checked.value;
    }
    const result = await handler(params, this.context(session));
    if (session.closed) return;
    this.reply(session, encodeOk(id, { result: result ?? null }));
  }

  private async authorize(permission: Permission | undefined, channel: string, action: string): Promise<void> {
    if (permission === undefined) return;
    if (!(await permission)) throw new ChannelError('forbidden', `not allowed to ${action} ${channel}`);
  }

  // ───────────────────────────── delivery ─────────────────────────────

  private localChannel(channel: string): LocalChannel<A> {
    let local = this.channels.get(channel);
    if (local === undefined) {
      local = { epoch: '', offset: 0, messages: 0, sessions: new Set(), recovering: new Set(), ready: this.engine.subscribe(channel) };
      // A failed engine subscription fails the subscribes waiting on it; the next one retries.
      local.ready.catch(() => {
        if (this.channels.get(channel) === local && local!.sessions.size === 0) this.channels.delete(channel);
      });
      this.channels.set(channel, local);
    }
    return local;
  }

  /** A message from the engine for a channel this node subscribed to. */
  private deliver(message: ChannelMessage): void {
    const local = this.channels.get(message.channel);
    if (local === undefined) return;
    if (message.epoch === local.epoch && message.offset <= local.offset) return;
    local.epoch = message.epoch;
    local.offset = message.offset;
    local.messages++;
    let caughtUp: Array<Session<A>> | null = null;
    for (const session of local.recovering) {
      const subscription = session.subscriptions.get(message.channel);
      if (subscription === undefined) continue;
      if (subscription.buffer !== null) {
        this.keep(session, subscription, message);
      } else {
        this.catchUp(session, subscription, message);
        if (message.epoch === subscription.epoch && message.offset >= subscription.last) (caughtUp ??= []).push(session);
      }
    }
    const live = local.sessions.size - local.recovering.size;
    if (live > 0 && this.broadcaster !== null) {
      this.metrics.deliveries += this.broadcaster.broadcast(message.channel, encodeMsg(message.channel, message.offset, message.data));
    }
    // Joined after this message's broadcast, which they already had.
    for (const session of caughtUp ?? []) {
      local.recovering.delete(session);
      session.client.join(message.channel);
    }
  }

  /**
   * The engine's backend came back: messages published meanwhile by other nodes may never
   * have been pushed here. Each channel is read from history after the last message this
   * node delivered; where that is impossible, its subscribers are closed with 1012 (service
   * restart) so that their clients resubscribe and learn what they lost.
   */
  private async resync(): Promise<void> {
    for (const [channel, local] of this.channels) {
      if (local.epoch === '') continue;
      try {
        const result = await this.engine.history(channel, { since: { epoch: local.epoch, offset: local.offset } });
        if (result.recovered) {
          for (const message of result.messages) this.deliver(message);
          continue;
        }
      } catch {
        // Still unreachable: treated like a lost history.
      }
      for (const session of [...local.sessions]) session.client.close(SERVICE_RESTART, 'channel stream lost; resubscribe');
    }
  }

  private presenceChanged(event: PresenceEvent): void {
    const local = this.channels.get(event.channel);
    if (local === undefined) return;
    const text = event.kind === 'join' ? encodeJoin(event.channel, event.member) : encodeLeave(event.channel, event.member);
    for (const session of local.sessions) {
      // Not before a subscription's answer: only once it has read history.
      if (session.client.id !== event.client && session.subscriptions.get(event.channel)?.answered === true) session.client.send(text);
    }
  }

  /**
   * Keeps a live message for a subscription still reading or replaying history. What is
   * kept is bounded like a socket's buffer: past the backpressure limit the client is too
   * slow for the channel, and is closed with 1013 to reconnect and recover.
   */
  private keep(session: Session<A>, subscription: Subscription, message: ChannelMessage): void {
    subscription.buffer!.push(message);
    subscription.kept += keptSize(message);
    if (subscription.kept <= session.client.backpressureLimit || session.closed) return;
    this.metrics.slowConsumerCloses++;
    session.client.close(TRY_AGAIN_LATER, 'slow consumer: reconnect and recover');
    this.disconnect(session.client);
  }

  private sendMessage(session: Session<A>, message: ChannelMessage): void {
    session.client.send(encodeMsg(message.channel, message.offset, message.data));
    this.metrics.deliveries++;
  }

  private dropSubscription(session: Session<A>, channel: string): void {
    if (!session.subscriptions.delete(channel)) return;
    this.metrics.subscriptions--;
    if (!session.closed) session.client.leave(channel);
    const local = this.channels.get(channel);
    if (local === undefined) return;
    local.sessions.delete(session);
    local.recovering.delete(session);
    this.engine.setLocalSubscriberCount(channel, local.sessions.size);
    if (session.member !== undefined) this.engine.leave(channel, session.client.id).catch(() => {});
    if (local.sessions.size === 0) {
      this.channels.delete(channel);
      this.engine.unsubscribe(channel).catch(() => {});
    }
  }

  private rulesFor(channel: string): ChannelRules | undefined {
    for (const [prefix, exact, rules] of this.rules) {
      if (exact ? channel === prefix : channel.startsWith(prefix)) return rules;
    }
    return undefined;
  }

  // ───────────────────────────── answers ─────────────────────────────

  /** Answers are never dropped: they are bounded by the request rate, and large ones are paced. */
  private reply(session: Session<A>, text: string): void {
    if (!session.closed) session.client.sendReliable(text);
  }

  private fail(session: Session<A>, id: number | undefined, code: ErrorCode, message: string): void {
    this.metrics.errors[code]++;
    this.reply(session, encodeErr(id, code, message));
    if (code !== 'bad_request' && code !== 'rate_limited') return;
    const now = this.now();
    const window = this.options.abuseWindow ?? DEFAULTS.abuseWindow;
    session.strikes.push(now);
    while (session.strikes.length > 0 && session.strikes[0]! <= now - window) session.strikes.shift();
    if (session.strikes.length >= (this.options.abuseLimit ?? DEFAULTS.abuseLimit) && !session.closed) {
      this.metrics.abuseCloses++;
      session.client.close(POLICY_VIOLATION, 'too many bad or rate-limited requests');
      this.disconnect(session.client);
    }
  }
}

/** What a kept message counts toward the backpressure limit: about its frame. */
function keptSize(message: ChannelMessage): number {
  return message.data.length + message.channel.length + 48;
}

function defaultOnError(error: unknown): void {
  console.error('hotline: a channel hook or rpc handler threw; answered internal:', error);
}
