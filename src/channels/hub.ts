import {
  encodeErr,
  encodeHistoryOk,
  encodeJoin,
  encodeLeave,
  encodeMsg,
  encodeOk,
  encodePong,
  parseRequest,
  resolveWireLimits,
  type ClientRequest,
  type ErrorCode,
  type Json,
  type Member,
  type PubRequest,
  type RpcRequest,
  type SubRequest,
  type WireLimits,
} from '../wire/index.js';
import { ChannelError } from './channel-error.js';
import { EngineUnavailableError, type ChannelMessage, type Engine, type PresenceEvent } from './engine.js';
import { MemoryEngine } from './memory-engine.js';
import { newChannelMetrics, type ChannelMetrics } from './metrics.js';
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
  /** Sends one JSON text frame. */
  send(text: string): void;
  close(code: number, reason: string): void;
  /** Starts receiving what {@link Broadcaster.broadcast} sends to the channel. */
  join(channel: string): void;
  leave(channel: string): void;
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
  /**
   * Sustained abuse: this many `bad_request`/`rate_limited` answers within `abuseWindow`
   * ms close the connection with 1008 (default 100 within 10000 ms).
   */
  abuseLimit?: number;
  abuseWindow?: number;
  /** Newest messages a `history` without `limit` returns (default 50). */
  defaultHistoryLimit?: number;
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
  /** Live messages that arrived while the subscription was reading history. */
  buffer: ChannelMessage[] | null;
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
  defaultHistoryLimit: 50,
};

/** Policy violation: the close code for sustained abuse. */
const POLICY_VIOLATION = 1008;
/** What a connection whose credentials expired without a refresh is closed with. */
const UNAUTHORIZED_CLOSE = 4401;
/** Service restart: what a subscriber whose stream could not be re-read is closed with. */
const SERVICE_RESTART = 1012;

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
    if (request.op === 'ping') {
      client.send(encodePong(request.id));
      return;
    }
    if (request.op === 'auth') {
      session.queue = session.queue.then(() => this.run(session, request.id, () => this.authenticate(session, request.id, request.token)));
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
      });
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
    );
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
    // The presence member stays the one subscriptions announced; a refresh changes credentials.
    if (session.subscriptions.size === 0) session.member = identity.member;
    session.authenticated = true;
    this.setExpiry(session, identity.expiresAt);
    this.reply(session, encodeOk(id, identity.expiresAt === undefined ? {} : { expiresAt: identity.expiresAt }));
  }

  private setExpiry(session: Session<A>, expiresAt: number | undefined): void {
    session.expiresAt = expiresAt;
    if (session.expiryTimer !== null) clearTimeout(session.expiryTimer);
    session.expiryTimer = null;
    if (expiresAt === undefined) return;
    const grace = this.options.authGrace ?? 30_000;
    session.expiryTimer = setTimeout(() => {
      if (session.closed) return;
      session.client.close(UNAUTHORIZED_CLOSE, 'credentials expired');
      this.disconnect(session.client);
    }, Math.max(0, expiresAt + grace - this.now()));
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
        return this.history(session, request.id, request.ch, request.limit);
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

    const subscription: Subscription = { buffer: [], epoch: '', last: 0 };
    session.subscriptions.set(channel, subscription);
    this.metrics.subscriptions++;
    const local = this.localChannel(channel);
    local.sessions.add(session);
    local.recovering.add(session);
    this.engine.setLocalSubscriberCount(channel, local.sessions.size);
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
      if (recovered) {
        for (const message of result.messages) this.sendMessage(session, message);
      }
      const buffered = subscription.buffer!;
      subscription.buffer = null;
      for (const message of buffered) this.catchUp(session, subscription, message);
    } catch (error) {
      subscription.buffer = null;
      local.recovering.delete(session);
      if (session.subscriptions.get(channel) === subscription) this.dropSubscription(session, channel);
      throw error;
    }
    // Live once this node's deliveries have reached what was sent: an engine may deliver a
    // message after history already showed it. Until then, catchUp() sends each newer one.
    if (local.epoch === subscription.epoch && local.offset >= subscription.last) {
      local.recovering.delete(session);
      session.client.join(channel);
    }
    const member = session.member;
    if (member === undefined) return;
    try {
      await this.engine.join(channel, session.client.id, member);
    } catch (error) {
      // The sub is answered already: it must not be answered again. Presence misses one member.
      (this.options.onError ?? defaultOnError)(error, this.context(session));
    }
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
    const result = await this.engine.publish(channel, json, { key: request.key });
    if (result.duplicate) {
      this.metrics.duplicatePublishes++;
      this.reply(session, encodeOk(id, { offset: result.offset, delivered: 0 }));
      return;
    }
    this.metrics.publishes++;
    let delivered: number;
    try {
      delivered = await this.engine.subscriberCount(channel);
    } catch {
      // Published and delivered already: the answer must say so, with what this node knows.
      delivered = this.localSubscribers(channel);
    }
    this.reply(session, encodeOk(id, { offset: result.offset, delivered }));
  }

  private async history(session: Session<A>, id: number, channel: string, limit: number | undefined): Promise<void> {
    await this.authorize(this.options.canSubscribe?.(this.context(session), channel), channel, 'read');
    const result = await this.engine.history(channel, { limit: limit ?? this.options.defaultHistoryLimit ?? DEFAULTS.defaultHistoryLimit });
    this.reply(
      session,
      encodeHistoryOk(
        id,
        result.position.epoch,
        result.messages.map((m) => ({ offset: m.offset, dataJson: m.data })),
      ),
    );
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
        subscription.buffer.push(message);
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
      if (session.client.id !== event.client && session.subscriptions.get(event.channel)?.buffer === null) session.client.send(text);
    }
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

  private reply(session: Session<A>, text: string): void {
    if (!session.closed) session.client.send(text);
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

function defaultOnError(error: unknown): void {
  console.error('hotline: a channel hook or rpc handler threw; answered internal:', error);
}
