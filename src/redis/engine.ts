import { createHash, randomBytes } from 'node:crypto';
import { createClient, ErrorReply, type RedisClientOptions, type RedisClientType } from 'redis';
import {
  DEFAULT_HISTORY_SIZE,
  DEFAULT_HISTORY_TTL,
  DEFAULT_IDEMPOTENCY_WINDOW,
  EngineUnavailableError,
  type ChannelMessage,
  type Engine,
  type EngineListener,
  type HistoryQuery,
  type HistoryResult,
  type PublishOptions,
  type PublishResult,
  type StreamPosition,
} from '../channels/index.js';
import type { Member } from '../wire/index.js';
import { HISTORY, JOIN, LEAVE, MEMBERS, PUBLISH, SUBSCRIBER_COUNT, SWEEP, type Script } from './scripts.js';

export interface RedisEngineOptions {
  /** Prefix of every key and pub/sub channel name (default 'hotline:'); no braces. */
  prefix?: string;
  /** Messages kept per channel for history and recovery (default 100; 0 keeps none). */
  historySize?: number;
  /** How long a message stays in history (ms, default 300000; 0 for no limit, and then idle channels never expire). */
  historyTtl?: number;
  /** How long a publish key is remembered for idempotent publishes (ms, default 120000). */
  idempotencyWindow?: number;
  /**
   * How long a node's presence members and subscriber counts outlive its last heartbeat
   * (ms, default 15000): a node that crashed is forgotten this long after it stopped.
   */
  nodeTtl?: number;
  /** How often a node refreshes its members and counts and sweeps expired members (ms, default nodeTtl / 3). */
  heartbeatInterval?: number;
  /** A command that Redis has not answered after this long fails as unavailable (ms, default 2000). */
  commandTimeout?: number;
  /** start() fails when Redis cannot be reached for this long (ms, default 10000). */
  connectTimeout?: number;
  /** Commands waiting for Redis on one connection before more are refused as unavailable (default 10000). */
  maxQueuedCommands?: number;
  /** More options for node-redis' createClient (TLS certificates, username, database, …); the URL wins. */
  client?: RedisClientOptions;
  /** Clock (ms); tests pass their own. */
  now?: () => number;
}

export const DEFAULT_NODE_TTL = 15_000;
export const DEFAULT_COMMAND_TIMEOUT = 2_000;
export const DEFAULT_CONNECT_TIMEOUT = 10_000;
export const DEFAULT_MAX_QUEUED_COMMANDS = 10_000;

type Client = RedisClientType;

/** A channel this node subscribed to. */
interface Subscription {
  /** The last message delivered (or, before any, where the stream stood when subscribed). */
  last: StreamPosition | null;
  /** Whether a message of this channel reached the listener since the subscribe. */
  delivered: boolean;
  /** While the stream is being read from history (a gap to fill), live messages wait here. */
  waiting: ChannelMessage[] | null;
  /** The stream lost its epoch after messages went out: nothing more is delivered. */
  broken: boolean;
  /** history() calls waiting for the live stream to reach the position they read (in last's epoch). */
  catchUp: Array<{ offset: number; resolve: () => void }>;
}

/** Error replies that mean "not now" rather than a mistake. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|NOAUTH|WRONGPASS|NOPERM)\b/;

/** This process's part of every epoch it proposes: random, so processes never propose the same. */
const EPOCH_SEED = BigInt(`0x${randomBytes(6).toString('hex')}`).toString(36).padStart(10, '0').slice(-10);
let epochCounter = 0;

/**
 * A fresh epoch candidate ([0-9a-z], 20 to 30 characters): the time, a per-process counter
 * and the process's random seed. Only used when the channel does not exist, so it must be
 * unique, not secret.
 */
function newEpoch(now: number): string {
  epochCounter = (epochCounter + 1) % 46_656;
  return now.toString(36) + epochCounter.toString(36).padStart(3, '0') + EPOCH_SEED;
}

/** A channel name as it appears inside a key's hash tag: without braces (escaped, reversibly). */
function tagged(channel: string): string {
  return /[{}%]/.test(channel) ? channel.replace(/[{}%]/g, (c) => `%${c.charCodeAt(0).toString(16)}`) : channel;
}

/** The key (under the channel) of an idempotency key: scoped to its publisher, hashed to a bounded length. */
function idempotencyKey(key: string, publisher: string | undefined): string {
  return publisher === undefined ? `key:${key}` : `pkey:${sha1(`${publisher.length}:${publisher}:${key}`)}`;
}

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('base64url');
}

/** The URL without its password, for messages. */
function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return messageOf(error.errors[0]);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/**
 * The Redis engine: channels shared by every node that uses the same Redis. Per channel a
 * meta hash (epoch, offset), a stream of recent messages, idempotency keys and a presence
 * hash, all in one cluster slot; every publish is one Lua script that assigns the offset,
 * appends, trims and publishes atomically, so pub/sub order is offset order. Each node
 * subscribes once per channel on a dedicated connection.
 *
 * When Redis is unreachable every call fails promptly with {@link EngineUnavailableError},
 * `healthy` turns false and the listener hears `health(false)`. Once both connections are
 * back (node-redis reconnects and resubscribes by itself) the engine re-registers this
 * node's counts and members, reads every subscribed channel from history after the last
 * message it delivered, and only then reports `health(true)`.
 */
export class RedisEngine implements Engine {
  /** This node's id in Redis (its counts and presence members carry it). */
  readonly nodeId: string;
  readonly url: string;
  private readonly prefix: string;
  private readonly historySize: number;
  private readonly historyTtl: number;
  private readonly idempotencyWindow: number;
  private readonly channelExpiry: number;
  private readonly nodeTtl: number;
  private readonly heartbeatInterval: number;
  private readonly commandTimeout: number;
  private readonly connectTimeout: number;
  private readonly now: () => number;
  private readonly commands: Client;
  private readonly subscriber: Client;
  private listener: EngineListener | null = null;
  private readonly subscriptions = new Map<string, Subscription>();
  /** This node's subscriber count per channel, as the hub last said. */
  private readonly localCounts = new Map<string, number>();
  /**
   * Subscriber counts read together with a publish (in the same round trip), for a
   * subscriberCount() made as soon as the publish resolves (before the next event-loop turn).
   */
  private readonly countsWithPublish = new Map<string, Promise<number>>();
  /** This node's presence members: channel -> client -> stored value parts. */
  private readonly localMembers = new Map<string, Map<string, string>>();
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private isHealthy = false;
  private started = false;
  private closed = false;
  private recovering: Promise<void> | null = null;
  private recoverAgain: ReturnType<typeof setTimeout> | null = null;
  private resyncQueued = false;
  private lastError = '';
  private readonly onMessage = (payload: string, name: string): void => this.receive(payload, name);

  /**
   * @param url `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS.
   */
  constructor(url = 'redis://127.0.0.1:6379', options: RedisEngineOptions = {}) {
    this.url = url;
    this.prefix = options.prefix ?? 'hotline:';
    if (/[{}]/.test(this.prefix)) throw new RangeError('RedisEngine: the key prefix may not contain braces');
    this.historySize = options.historySize ?? DEFAULT_HISTORY_SIZE;
    this.historyTtl = options.historyTtl ?? DEFAULT_HISTORY_TTL;
    this.idempotencyWindow = options.idempotencyWindow ?? DEFAULT_IDEMPOTENCY_WINDOW;
    this.channelExpiry = this.historyTtl > 0 ? Math.max(this.historyTtl, this.idempotencyWindow) : 0;
    this.nodeTtl = options.nodeTtl ?? DEFAULT_NODE_TTL;
    this.heartbeatInterval = options.heartbeatInterval ?? Math.max(50, Math.floor(this.nodeTtl / 3));
    this.commandTimeout = options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT;
    this.connectTimeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
    this.now = options.now ?? Date.now;
    for (const [name, value] of Object.entries({
      historySize: this.historySize,
      historyTtl: this.historyTtl,
      idempotencyWindow: this.idempotencyWindow,
      nodeTtl: this.nodeTtl,
      heartbeatInterval: this.heartbeatInterval,
      commandTimeout: this.commandTimeout,
      connectTimeout: this.connectTimeout,
    })) {
      if (!Number.isInteger(value) || value < 0) throw new RangeError(`RedisEngine: ${name} must be a whole number ≥ 0, not ${value}`);
    }
    if (this.idempotencyWindow < 1 || this.nodeTtl < 1) throw new RangeError('RedisEngine: idempotencyWindow and nodeTtl must be at least 1 ms');
    this.nodeId = `${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
    const clientOptions: RedisClientOptions = {
      ...options.client,
      url,
      // Never queue while disconnected: a call fails at once instead of waiting for Redis.
      disableOfflineQueue: true,
      commandsQueueMaxLength: options.maxQueuedCommands ?? DEFAULT_MAX_QUEUED_COMMANDS,
      // The engine bounds every call itself (commandTimeout); no second timer per command.
      commandOptions: { timeout: 0, ...options.client?.commandOptions },
      socket: {
        connectTimeout: Math.min(this.connectTimeout, 5_000),
        // Quick at first (a restart takes a moment), then every 1 s at most.
        reconnectStrategy: (retries: number) => Math.min(25 * 2 ** retries, 1_000) + Math.floor(Math.random() * 25),
        ...options.client?.socket,
      },
    };
    // Named so that CLIENT LIST tells the nodes and their two connections apart.
    this.commands = createClient({ ...clientOptions, name: `hotline:${this.nodeId}:cmd` }) as unknown as Client;
    this.subscriber = createClient({ ...clientOptions, name: `hotline:${this.nodeId}:sub` }) as unknown as Client;
  }

  get healthy(): boolean {
    return this.isHealthy;
  }

  async start(listener: EngineListener): Promise<void> {
    if (this.started) throw new Error('RedisEngine: start() was already called');
    this.started = true;
    this.listener = listener;
    for (const client of [this.commands, this.subscriber]) {
      client.on('error', (error: unknown) => {
        this.lastError = messageOf(error);
        this.lost();
      });
      client.on('end', () => this.lost());
      client.on('reconnecting', () => this.lost());
      client.on('ready', () => this.regained());
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new EngineUnavailableError(`cannot reach Redis at ${redactUrl(this.url)} within ${this.connectTimeout} ms${this.lastError ? `: ${this.lastError}` : ''}`)),
        this.connectTimeout,
      );
    });
    const connecting = Promise.all([this.commands.connect(), this.subscriber.connect()]);
    connecting.catch(() => {}); // after a time-out, close() makes it fail: nobody waits for it then
    try {
      await Promise.race([connecting, timedOut]);
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    this.heartbeat = setInterval(() => void this.beat(), this.heartbeatInterval);
    this.heartbeat.unref?.();
    await this.recover(false);
  }

  async publish(channel: string, data: string, options: PublishOptions = {}): Promise<PublishResult> {
    const keys = [this.key(channel, 'meta'), this.key(channel, 'log')];
    if (options.key !== undefined) keys.push(this.key(channel, idempotencyKey(options.key, options.publisher)));
    const published = this.run(PUBLISH, keys, [
      newEpoch(this.now()),
      String(this.now()),
      String(this.historySize),
      String(this.historyTtl),
      String(this.channelExpiry),
      String(this.idempotencyWindow),
      this.pubsubName(channel),
      data,
      options.key === undefined ? '' : sha1(data),
    ]);
    // A hub asks for the channel's subscriber count right after a publish (its `delivered`):
    // sent now, in the same write, it costs no round trip of its own.
    const count = this.readSubscriberCount(channel);
    count.catch(() => {});
    this.countsWithPublish.set(channel, count);
    const forget = (): void => {
      if (this.countsWithPublish.get(channel) === count) this.countsWithPublish.delete(channel);
    };
    let reply: [string, number, number];
    try {
      reply = (await published) as [string, number, number];
    } finally {
      // Only a subscriberCount() in the same turn as the publish's answer takes this count.
      setImmediate(forget);
    }
    const outcome = Number(reply[2]);
    const result: PublishResult = { epoch: reply[0], offset: Number(reply[1]), duplicate: outcome !== 0 };
    if (outcome === 2) result.conflict = true;
    return result;
  }

  async subscribe(channel: string): Promise<void> {
    if (this.subscriptions.has(channel)) return;
    const subscription: Subscription = { last: null, delivered: false, waiting: [], broken: false, catchUp: [] };
    this.subscriptions.set(channel, subscription);
    try {
      await this.deadline(this.subscriber.subscribe(this.pubsubName(channel), this.onMessage), 'subscribe');
      // Where the stream stands now: older messages that still arrive live are repeats.
      await this.positionAndDrain(channel, subscription);
    } catch (error) {
      if (this.subscriptions.get(channel) === subscription) {
        this.subscriptions.delete(channel);
        this.subscriber.unsubscribe(this.pubsubName(channel), this.onMessage).catch(() => {});
      }
      throw error;
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    const subscription = this.subscriptions.get(channel);
    if (subscription === undefined) return;
    this.subscriptions.delete(channel);
    this.releaseCatchUp(subscription);
    await this.deadline(this.subscriber.unsubscribe(this.pubsubName(channel), this.onMessage), 'unsubscribe');
  }

  /**
   * Reads the channel's history. For a channel this node subscribed to, it resolves only
   * once every message up to the position it read has gone to the listener: the read (on
   * the command connection) can overtake the pub/sub messages (on the subscriber
   * connection), and a caller that goes live at that position must not then receive
   * messages at or before it.
   */
  async history(channel: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    const result = await this.read(channel, query);
    await this.caughtUp(channel, result.position);
    return result;
  }

  /** The history read itself, without waiting for the live stream. */
  private async read(channel: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    const since = query.since;
    const reply = (await this.run(
      HISTORY,
      [this.key(channel, 'meta'), this.key(channel, 'log')],
      [
        newEpoch(this.now()),
        String(this.now()),
        String(this.historySize),
        String(this.historyTtl),
        String(this.channelExpiry),
        since === undefined ? 'newest' : 'since',
        since?.epoch ?? '',
        String(since?.offset ?? 0),
        String(query.limit ?? -1),
        String(query.before ?? 0),
      ],
    )) as Array<string | number>;
    const epoch = String(reply[0]);
    const position: StreamPosition = { epoch, offset: Number(reply[1]) };
    const messages: ChannelMessage[] = [];
    for (let i = 3; i + 1 < reply.length; i += 2) {
      messages.push({ channel, epoch, offset: Number(reply[i]), data: String(reply[i + 1]) });
    }
    const recovered = since !== undefined && Number(reply[2]) === 1;
    return { position, messages: since !== undefined && !recovered ? [] : messages, recovered };
  }

  async subscriberCount(channel: string): Promise<number> {
    const withPublish = this.countsWithPublish.get(channel);
    if (withPublish !== undefined) {
      // Read with the publish that just resolved: it answers that publish's `delivered`.
      this.countsWithPublish.delete(channel);
      return withPublish;
    }
    return this.readSubscriberCount(channel);
  }

  private async readSubscriberCount(channel: string): Promise<number> {
    const reply = await this.run(SUBSCRIBER_COUNT, [this.nodesKey()], [String(this.now()), this.nodeKeyPrefix(), channel]);
    return Number(reply);
  }

  setLocalSubscriberCount(channel: string, count: number): void {
    if (count > 0) this.localCounts.set(channel, count);
    else if (!this.localCounts.delete(channel)) return;
    if (!this.commands.isReady) return; // written in full when Redis is back
    const key = this.nodeKey();
    const write = count > 0 ? this.commands.hSet(key, channel, count) : this.commands.hDel(key, channel);
    Promise.all([write, this.commands.pExpire(key, this.nodeTtl)]).catch(() => {});
  }

  async join(channel: string, client: string, member: Member): Promise<void> {
    let members = this.localMembers.get(channel);
    if (members === undefined) {
      members = new Map();
      this.localMembers.set(channel, members);
    }
    // Kept here first: if Redis cannot be reached now, the heartbeat adds it when it is back.
    const json = JSON.stringify(member);
    members.set(client, json);
    await this.run(JOIN, [this.key(channel, 'presence')], [
      this.pubsubName(channel),
      String(this.presenceKeyTtl()),
      client,
      this.memberValue(json),
    ]);
  }

  async leave(channel: string, client: string): Promise<void> {
    const members = this.localMembers.get(channel);
    if (members !== undefined) {
      members.delete(client);
      if (members.size === 0) this.localMembers.delete(channel);
    }
    await this.run(LEAVE, [this.key(channel, 'presence')], [this.pubsubName(channel), client]);
  }

  async members(channel: string): Promise<Member[]> {
    const reply = (await this.run(MEMBERS, [this.key(channel, 'presence')], [String(this.now())])) as string[];
    return reply.map((json) => JSON.parse(json) as Member);
  }

  /**
   * Leaves with this node's members (their leaves are published), takes its counts out of
   * Redis, and closes both connections after the commands already sent are answered.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    if (this.recoverAgain !== null) clearTimeout(this.recoverAgain);
    this.heartbeat = null;
    const wasHealthy = this.isHealthy;
    this.isHealthy = false;
    if (wasHealthy && this.commands.isReady) {
      const goodbyes: Promise<unknown>[] = [];
      for (const [channel, members] of this.localMembers) {
        for (const client of members.keys()) {
          goodbyes.push(this.run(LEAVE, [this.key(channel, 'presence')], [this.pubsubName(channel), client]));
        }
      }
      goodbyes.push(this.deadline(this.commands.zRem(this.nodesKey(), this.nodeId), 'close'));
      goodbyes.push(this.deadline(this.commands.del(this.nodeKey()), 'close'));
      await Promise.allSettled(goodbyes);
    }
    this.localMembers.clear();
    this.localCounts.clear();
    this.countsWithPublish.clear();
    for (const subscription of this.subscriptions.values()) this.releaseCatchUp(subscription);
    this.subscriptions.clear();
    this.listener = null;
    await Promise.allSettled([this.quit(this.subscriber), this.quit(this.commands)]);
  }

  // ───────────────────────────── delivery ─────────────────────────────

  /** A pub/sub message: a channel message or a presence event. */
  private receive(payload: string, name: string): void {
    const channel = this.channelOfPubsubName(name);
    if (channel === null || this.listener === null) return;
    const kind = payload.charCodeAt(0);
    if (kind === 109 /* m */) {
      const subscription = this.subscriptions.get(channel);
      if (subscription === undefined) return;
      const a = payload.indexOf(',', 1);
      const b = payload.indexOf(',', a + 1);
      if (a < 0 || b < 0) return;
      this.accept(channel, subscription, {
        channel,
        epoch: payload.slice(1, a),
        offset: Number(payload.slice(a + 1, b)),
        data: payload.slice(b + 1),
      });
    } else if (kind === 106 /* j */ || kind === 108 /* l */) {
      if (!this.subscriptions.has(channel)) return;
      const newline = payload.indexOf('\n');
      if (newline < 0) return;
      let member: Member;
      try {
        member = JSON.parse(payload.slice(1, newline)) as Member;
      } catch {
        return;
      }
      this.listener.presence({ channel, kind: kind === 106 ? 'join' : 'leave', client: payload.slice(newline + 1), member });
    }
  }

  /**
   * Delivers a channel's messages in offset order, each once: repeats are dropped, and a
   * gap (messages this node missed while its subscription was down) is filled from history
   * before anything after it goes out.
   */
  private accept(channel: string, subscription: Subscription, message: ChannelMessage): void {
    if (subscription.broken) return;
    if (subscription.waiting !== null) {
      subscription.waiting.push(message);
      return;
    }
    const last = subscription.last;
    if (last === null || (message.epoch === last.epoch && message.offset === last.offset + 1)) {
      this.deliver(subscription, message);
    } else if (message.epoch === last.epoch && message.offset <= last.offset) {
      // a repeat
    } else if (message.epoch !== last.epoch && !subscription.delivered) {
      // Nothing went out from the old epoch: take the new one from its start.
      subscription.last = { epoch: message.epoch, offset: 0 };
      this.releaseCatchUp(subscription);
      subscription.waiting = [message];
      void this.fill(channel, subscription);
    } else if (message.epoch !== last.epoch) {
      this.breakStream(subscription);
    } else {
      subscription.waiting = [message];
      void this.fill(channel, subscription);
    }
  }

  private deliver(subscription: Subscription, message: ChannelMessage): void {
    subscription.last = { epoch: message.epoch, offset: message.offset };
    subscription.delivered = true;
    this.listener?.message(message);
    if (subscription.catchUp.length > 0) {
      const still = [];
      for (const waiter of subscription.catchUp) {
        if (waiter.offset <= message.offset) waiter.resolve();
        else still.push(waiter);
      }
      subscription.catchUp = still;
    }
  }

  /**
   * Waits until the live stream of a subscribed channel has delivered `position` (it is
   * normally a fraction of a millisecond behind). If it lags, the gap is read from history;
   * after the command timeout the wait ends anyway.
   */
  private caughtUp(channel: string, position: StreamPosition): Promise<void> {
    const subscription = this.subscriptions.get(channel);
    const last = subscription?.last;
    if (subscription === undefined || subscription.broken || last == null) return Promise.resolve();
    if (last.epoch !== position.epoch || last.offset >= position.offset) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(nudge);
        clearTimeout(giveUp);
        resolve();
      };
      const waiter = { offset: position.offset, resolve: done };
      subscription.catchUp.push(waiter);
      const nudge = setTimeout(() => {
        if (this.subscriptions.get(channel) === subscription && subscription.waiting === null && !subscription.broken) {
          subscription.waiting = [];
          void this.fill(channel, subscription);
        }
      }, 100);
      const giveUp = setTimeout(() => {
        subscription.catchUp = subscription.catchUp.filter((w) => w !== waiter);
        done();
      }, this.commandTimeout);
    });
  }

  private releaseCatchUp(subscription: Subscription): void {
    const waiting = subscription.catchUp;
    subscription.catchUp = [];
    for (const waiter of waiting) waiter.resolve();
  }

  /**
   * Reads what followed the last delivered message from history, then passes on what waited.
   * When Redis does not answer: `rethrow` (recover() retries as a whole), or a retry soon.
   */
  private async fill(channel: string, subscription: Subscription, rethrow = false): Promise<void> {
    const last = subscription.last;
    if (last === null) return;
    let result: HistoryResult;
    try {
      result = await this.read(channel, { since: last });
    } catch (error) {
      if (rethrow) throw error;
      const retry = setTimeout(() => {
        // While unhealthy, recover() fills it when Redis is back.
        if (this.isHealthy && this.subscriptions.get(channel) === subscription && subscription.waiting !== null) {
          void this.fill(channel, subscription);
        }
      }, 250);
      retry.unref?.();
      return;
    }
    if (this.subscriptions.get(channel) !== subscription || subscription.broken) return;
    if (!result.recovered) {
      if (!subscription.delivered) {
        subscription.last = result.position;
        this.releaseCatchUp(subscription);
      } else {
        this.breakStream(subscription);
        return;
      }
    } else {
      for (const message of result.messages) {
        if (message.offset > subscription.last!.offset) this.deliver(subscription, message);
      }
    }
    this.drain(channel, subscription);
  }

  /** Ends the waiting and passes on what waited (which may start another fill). */
  private drain(channel: string, subscription: Subscription): void {
    const waiting = subscription.waiting ?? [];
    subscription.waiting = null;
    for (let i = 0; i < waiting.length; i++) {
      this.accept(channel, subscription, waiting[i]!);
      if (subscription.waiting !== null) {
        (subscription.waiting as ChannelMessage[]).push(...waiting.slice(i + 1));
        return;
      }
    }
  }

  /**
   * The channel's epoch is gone (Redis lost its data) after messages of it went out here:
   * nothing of the new epoch is delivered on this subscription, and the listener is asked
   * to re-read its channels, which tells it the old stream cannot be recovered (the hub then
   * closes the channel's subscribers with 1012 and they subscribe afresh).
   */
  private breakStream(subscription: Subscription): void {
    subscription.broken = true;
    subscription.waiting = null;
    this.releaseCatchUp(subscription);
    if (!this.isHealthy || this.resyncQueued) return; // recover() reports health(true) when done
    this.resyncQueued = true;
    queueMicrotask(() => {
      this.resyncQueued = false;
      if (this.isHealthy) this.listener?.health?.(true);
    });
  }

  // ───────────────────────────── health ─────────────────────────────

  private lost(): void {
    if (this.closed || !this.started) return;
    if (!this.isHealthy) return;
    this.isHealthy = false;
    this.listener?.health?.(false);
  }

  private regained(): void {
    if (this.closed || !this.started || this.heartbeat === null) return;
    if (this.commands.isReady && this.subscriber.isReady) void this.recover();
  }

  /**
   * Both connections are up (node-redis has resubscribed every channel before it reports
   * ready): write this node's counts and members again, fill every subscription from
   * history, and report health(true). Retried until it succeeds while the connections stay up.
   */
  private recover(announce = true): Promise<void> {
    this.recovering ??= (async () => {
      try {
        if (this.isHealthy || this.closed) return;
        for (const subscription of this.subscriptions.values()) subscription.waiting ??= [];
        await this.registerNode();
        await Promise.all(
          [...this.subscriptions].map(([channel, subscription]) =>
            subscription.last === null ? this.positionAndDrain(channel, subscription) : this.fill(channel, subscription, true),
          ),
        );
        if (!this.commands.isReady || !this.subscriber.isReady || this.closed) return;
        this.isHealthy = true;
        if (announce) this.listener?.health?.(true);
      } catch {
        if (!this.closed && this.recoverAgain === null) {
          this.recoverAgain = setTimeout(() => {
            this.recoverAgain = null;
            this.regained();
          }, 250);
          this.recoverAgain.unref?.();
        }
      } finally {
        this.recovering = null;
      }
    })();
    return this.recovering;
  }

  /** A new subscription's starting point: where the stream stands once its pub/sub is live. */
  private async positionAndDrain(channel: string, subscription: Subscription): Promise<void> {
    const { position } = await this.read(channel, { limit: 0 });
    if (this.subscriptions.get(channel) !== subscription || subscription.last !== null) return;
    subscription.last = position;
    this.drain(channel, subscription);
  }

  /** Writes this node's liveness, all its subscriber counts and all its members. */
  private async registerNode(): Promise<void> {
    const key = this.nodeKey();
    const multi = this.commands.multi().del(key);
    if (this.localCounts.size > 0) multi.hSet(key, Object.fromEntries(this.localCounts));
    multi.pExpire(key, this.nodeTtl).zAdd(this.nodesKey(), { score: this.now() + this.nodeTtl, value: this.nodeId });
    await this.deadline(multi.exec(), 'register');
    await this.refreshMembers();
  }

  /** Refreshes the expiry of this node's members; ones Redis lost are added (and announced) again. */
  private async refreshMembers(): Promise<void> {
    await Promise.all(
      [...this.localMembers].map(([channel, members]) => {
        const args = [this.pubsubName(channel), String(this.presenceKeyTtl())];
        for (const [client, json] of members) args.push(client, this.memberValue(json));
        return this.run(JOIN, [this.key(channel, 'presence')], args);
      }),
    );
  }

  /** The heartbeat: liveness, counts, members, and the sweep of expired members of subscribed channels. */
  private async beat(): Promise<void> {
    if (!this.isHealthy || !this.commands.isReady) return;
    const now = this.now();
    try {
      const key = this.nodeKey();
      const [, , alive] = await this.deadline(
        this.commands
          .multi()
          .zAdd(this.nodesKey(), { score: now + this.nodeTtl, value: this.nodeId })
          .zRemRangeByScore(this.nodesKey(), '-inf', now)
          .pExpire(key, this.nodeTtl)
          .exec(),
        'heartbeat',
      );
      if (Number(alive) === 0 && this.localCounts.size > 0) {
        // The counts hash expired (this process stalled) or Redis lost it: write it again.
        await this.deadline(this.commands.multi().hSet(key, Object.fromEntries(this.localCounts)).pExpire(key, this.nodeTtl).exec(), 'heartbeat');
      }
      await this.refreshMembers();
      await Promise.all(
        [...this.subscriptions.keys()].map((channel) =>
          this.run(SWEEP, [this.key(channel, 'meta'), this.key(channel, 'presence')], [String(now), this.pubsubName(channel), String(this.channelExpiry)]),
        ),
      );
    } catch (error) {
      // Connected, but Redis does not answer (stopped, overloaded, a half-open connection):
      // unhealthy until a full recovery goes through. A closed connection reports itself.
      if (error instanceof EngineUnavailableError && this.isHealthy && this.commands.isReady && this.subscriber.isReady) {
        this.lastError = error.message;
        this.lost();
        void this.recover();
      }
    }
  }

  // ───────────────────────────── Redis ─────────────────────────────

  private key(channel: string, suffix: string): string {
    return `${this.prefix}{${tagged(channel)}}:${suffix}`;
  }

  private pubsubName(channel: string): string {
    return `${this.prefix}{${tagged(channel)}}`;
  }

  private channelOfPubsubName(name: string): string | null {
    const open = this.prefix.length;
    if (!name.startsWith(this.prefix) || name.charCodeAt(open) !== 123 || !name.endsWith('}')) return null;
    const inner = name.slice(open + 1, -1);
    return inner.includes('%') ? inner.replace(/%([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) : inner;
  }

  private nodesKey(): string {
    return `${this.prefix}nodes:{live}`;
  }

  private nodeKeyPrefix(): string {
    return `${this.prefix}nodes:{live}:`;
  }

  private nodeKey(): string {
    return this.nodeKeyPrefix() + this.nodeId;
  }

  /**
   * The presence hash outlives its members' expiry by a node TTL, so that a live node's
   * sweep finds the expired members and announces their leaves; it vanishes by itself
   * only when no node is left to refresh or sweep it.
   */
  private presenceKeyTtl(): number {
    return 2 * this.nodeTtl;
  }

  /** A presence hash value: `<node>,<expiry>,<member JSON>`. */
  private memberValue(json: string): string {
    return `${this.nodeId},${this.now() + this.nodeTtl},${json}`;
  }

  /** Runs a script by its SHA, loading it when Redis does not have it (first use, or after a restart). */
  private async run(script: Script, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.deadline(this.commands.sendCommand(['EVALSHA', script.sha, ...tail]), script.name);
    } catch (error) {
      if (!(error instanceof EngineUnavailableError) && messageOf(error).startsWith('NOSCRIPT')) {
        return this.deadline(this.commands.sendCommand(['EVAL', script.source, ...tail]), script.name);
      }
      throw error;
    }
  }

  /** Bounds a Redis call by the command timeout and turns "cannot reach Redis" into EngineUnavailableError. */
  private async deadline<T>(work: Promise<T>, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new EngineUnavailableError(`Redis did not answer ${what} within ${this.commandTimeout} ms`)), this.commandTimeout);
    });
    try {
      return await Promise.race([work, timeout]);
    } catch (error) {
      if (error instanceof EngineUnavailableError) throw error;
      const message = messageOf(error);
      if (error instanceof ErrorReply && !TRANSIENT_REPLY.test(message)) throw error;
      throw new EngineUnavailableError(`Redis ${what}: ${message}`, { cause: error });
    } finally {
      clearTimeout(timer);
      work.catch(() => {});
    }
  }

  private async quit(client: Client): Promise<void> {
    if (!client.isOpen) {
      client.destroy();
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        client.close(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.commandTimeout);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (client.isOpen) client.destroy();
    }
  }
}
