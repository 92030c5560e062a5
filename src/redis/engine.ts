import { randomBytes } from 'node:crypto';
import type { RedisClientOptions } from 'redis';
import { EngineUnavailableError, retentionFor, retentionOf, type Engine, type EngineListener, type NodeBus, type RetentionOptions } from '../channels/engine.js';
import type { ChannelMessage, HistoryQuery, HistoryResult, PublishOptions, PublishResult } from '../channels/engine.js';
import type { Member } from '../wire/index.js';
import { DEFAULT_NODE_TTL } from './defaults.js';
import { idempotencyKey, RedisKeys, sha1 } from './keys.js';
import { RedisLink } from './link.js';
import { NodeRegistry } from './nodes.js';
import { RedisPresence } from './presence.js';
import { scriptsFor, type ScriptSet } from './scripts.js';
import { ChannelStreams } from './streams.js';

export interface RedisEngineOptions extends RetentionOptions {
  /** Prefix of every key and pub/sub channel name (default 'hotline:'); no braces. */
  prefix?: string;
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
  /**
   * The URL names seed nodes of a Redis Cluster (Redis 7+ or Valkey), separated by commas:
   * `redis://n1:7000,redis://n2:7001`. Pub/sub is then sharded (SPUBLISH/SSUBSCRIBE).
   */
  cluster?: boolean;
  /**
   * Redis keeps every acknowledged write across a restart and a failover (`appendfsync
   * always`, and replicas a failover may promote kept in sync with `WAIT`): only then may a
   * channel keep its epoch when Redis comes back with another replication id. By default
   * (false) that epoch ends, and every position in it is answered `recovered: false`: a
   * snapshot (RDB, or AOF's `everysec`) or a promoted replica may lack the newest messages,
   * and their offsets would be given out again, to other messages.
   */
  durable?: boolean;
}

export { DEFAULT_NODE_TTL };
export const DEFAULT_COMMAND_TIMEOUT = 2_000;
export const DEFAULT_CONNECT_TIMEOUT = 10_000;
export const DEFAULT_MAX_QUEUED_COMMANDS = 10_000;
/** How soon a recovery that failed is tried again while the connections are up (ms). */
const RECOVER_RETRY = 250;

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

/**
 * The Redis engine: channels shared by every node that uses the same Redis. Per channel a
 * meta hash (epoch, offset), a stream of recent messages, idempotency keys and a presence
 * hash, all in one cluster slot; every publish is one Lua script that assigns the offset,
 * appends, trims and publishes atomically, so pub/sub order is offset order. Each node
 * subscribes once per channel on a dedicated connection ({@link ChannelStreams} keeps each
 * channel's delivery in order and without gaps), keeps its presence members
 * ({@link RedisPresence}) and subscriber counts ({@link NodeRegistry}), and beats. It is
 * also the nodes' {@link NodeBus}: each node subscribes to a pub/sub channel of its own and
 * to one of all nodes, and PUBLISH says how many nodes were listening.
 *
 * When Redis is unreachable every call fails promptly with {@link EngineUnavailableError},
 * `healthy` turns false and the listener hears `health(false)`. Once both connections are
 * back (node-redis reconnects and resubscribes by itself) the engine re-registers this
 * node's counts and members, reads every subscribed channel from history after the last
 * message it delivered, and only then reports `health(true)`.
 */
export class RedisEngine implements Engine, NodeBus {
  /** This node's id in Redis (its counts and presence members carry it). */
  readonly nodeId: string;
  /** The URL it connects to, as given to the constructor: it may hold a password, so do not log it. */
  readonly url: string;
  private readonly retention: Required<RetentionOptions>;
  private readonly historySize: number;
  private readonly historyTtl: number;
  private readonly idempotencyWindow: number;
  private readonly channelExpiry: number;
  private readonly heartbeatInterval: number;
  private readonly now: () => number;
  private readonly keys: RedisKeys;
  private readonly scripts: ScriptSet;
  /** The scripts' argument: '1' ends an epoch found under another replication id (see RedisEngineOptions.durable). */
  private readonly checkPrimary: '1' | '0';
  private readonly link: RedisLink;
  private readonly streams: ChannelStreams;
  private readonly node: NodeRegistry;
  private readonly presence: RedisPresence;
  private listener: EngineListener | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private isHealthy = false;
  private started = false;
  private closed = false;
  private recovering: Promise<void> | null = null;
  private recoverAgain: ReturnType<typeof setTimeout> | null = null;
  /** Connection losses so far: a recovery that saw one happen while it ran goes again. */
  private losses = 0;
  private resyncQueued = false;
  private readonly onMessage = (payload: string, name: string): void => this.receive(payload, name);
  private readonly onCommand = (payload: string): void => this.listener?.command?.(payload);

  /**
   * @param url `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS; with
   *   `cluster: true`, the seed nodes' URLs separated by commas.
   */
  constructor(url = 'redis://127.0.0.1:6379', options: RedisEngineOptions = {}) {
    this.url = url;
    this.keys = new RedisKeys(options.prefix ?? 'hotline:');
    this.retention = retentionOf(options);
    ({ historySize: this.historySize, historyTtl: this.historyTtl, idempotencyWindow: this.idempotencyWindow, now: this.now } = this.retention);
    this.channelExpiry = this.historyTtl > 0 ? Math.max(this.historyTtl, this.idempotencyWindow) : 0;
    const nodeTtl = options.nodeTtl ?? DEFAULT_NODE_TTL;
    this.heartbeatInterval = options.heartbeatInterval ?? Math.max(50, Math.floor(nodeTtl / 3));
    const commandTimeout = options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT;
    const connectTimeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
    for (const [name, value] of Object.entries({
      historySize: this.historySize,
      historyTtl: this.historyTtl,
      idempotencyWindow: this.idempotencyWindow,
      nodeTtl,
      heartbeatInterval: this.heartbeatInterval,
      commandTimeout,
      connectTimeout,
    })) {
      if (!Number.isInteger(value) || value < 0) throw new RangeError(`RedisEngine: ${name} must be a whole number ≥ 0, not ${value}`);
    }
    if (this.idempotencyWindow < 1 || nodeTtl < 1) throw new RangeError('RedisEngine: idempotencyWindow and nodeTtl must be at least 1 ms');
    this.nodeId = `${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
    this.link = new RedisLink(url, this.nodeId, {
      commandTimeout,
      connectTimeout,
      maxQueuedCommands: options.maxQueuedCommands ?? DEFAULT_MAX_QUEUED_COMMANDS,
      client: options.client,
      cluster: options.cluster === true,
    });
    this.scripts = scriptsFor(this.link.sharded);
    this.checkPrimary = options.durable === true ? '0' : '1';
    this.node = new NodeRegistry(this.nodeId, this.link, this.keys, this.scripts, nodeTtl, this.now);
    this.presence = new RedisPresence(this.nodeId, this.link, this.keys, this.scripts, nodeTtl, this.now);
    this.streams = new ChannelStreams({
      read: (channel, query) => this.read(channel, query),
      deliver: (message) => this.listener?.message(message),
      healthy: () => this.isHealthy,
      broken: () => this.resync(),
      commandTimeout,
    });
  }

  get healthy(): boolean {
    return this.isHealthy;
  }

  async start(listener: EngineListener): Promise<void> {
    if (this.started) throw new Error('RedisEngine: start() was already called');
    this.started = true;
    this.listener = listener;
    try {
      await this.link.connect({ lost: () => this.lost(), regained: () => this.regained() });
      // Listening before start() settles, so that every node counts itself in sendToAll.
      await this.link.listen([this.keys.nodeBus(this.nodeId), this.keys.allNodesBus()], this.onCommand);
    } catch (error) {
      await this.close();
      throw error;
    }
    this.heartbeat = setInterval(() => void this.beat(), this.heartbeatInterval);
    this.heartbeat.unref?.();
    await this.recover(false);
  }

  /**
   * One script stores, publishes, and adds up the channel's subscribers over the live nodes
   * (their counts sit in the channel's slot): one round trip to one shard.
   */
  async publish(channel: string, data: string, options: PublishOptions = {}): Promise<PublishResult> {
    const keys = [this.keys.key(channel, 'meta'), this.keys.key(channel, 'log'), this.keys.key(channel, 'subs')];
    if (options.key !== undefined) keys.push(this.keys.key(channel, idempotencyKey(options.key, options.publisher)));
    const now = this.now();
    const own = this.retentionOf(channel);
    const published = this.link.run(this.scripts.publish, keys, [
      newEpoch(now),
      String(now),
      String(own.historySize),
      String(own.historyTtl),
      String(own.expiry),
      String(this.idempotencyWindow),
      this.keys.pubsubName(channel),
      data,
      options.key === undefined ? '' : sha1(data),
      this.checkPrimary,
    ]);
    const [epoch, offset, outcome, subscribers] = (await published) as [string, number, number, number];
    const result: PublishResult = { epoch, offset: Number(offset), duplicate: Number(outcome) !== 0, subscribers: Number(subscribers) };
    if (Number(outcome) === 2) result.conflict = true;
    return result;
  }

  async subscribe(channel: string): Promise<void> {
    if (this.streams.has(channel)) return;
    const stream = this.streams.open(channel);
    try {
      await this.link.listen([this.keys.pubsubName(channel)], this.onMessage);
      // Where the stream stands now: older messages that still arrive live are repeats.
      await this.streams.position(channel);
    } catch (error) {
      if (this.streams.isOpen(channel, stream)) {
        this.streams.close(channel);
        this.link.unlisten(this.keys.pubsubName(channel), this.onMessage).catch(() => {});
      }
      throw error;
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.streams.has(channel)) return;
    this.streams.close(channel);
    await this.link.unlisten(this.keys.pubsubName(channel), this.onMessage);
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
    await this.streams.caughtUp(channel, result.position);
    return result;
  }

  async sendToNode(node: string, text: string): Promise<boolean> {
    return (await this.link.publish(this.keys.nodeBus(node), text)) > 0;
  }

  async sendToAll(text: string): Promise<number> {
    return this.link.publish(this.keys.allNodesBus(), text);
  }

  setLocalSubscriberCount(channel: string, count: number): void {
    this.node.setCount(channel, count);
  }

  async publishEphemeral(channel: string, data: string, client?: string): Promise<number> {
    const now = String(this.now());
    // `E<client>\n<data>` (data is JSON text: no raw newline), a kind of its own so that a node
    // of an older version, during a rolling deploy, ignores it rather than send `<client>\n` as data.
    const payload = client === undefined ? `e${data}` : `E${client}\n${data}`;
    return Number(await this.link.run(this.scripts.ephemeral, [this.keys.key(channel, 'subs')], [this.keys.pubsubName(channel), now, payload]));
  }

  async subscriberCount(channel: string): Promise<number> {
    return Number(await this.link.run(this.scripts.subscribers, [this.keys.key(channel, 'subs')], [String(this.now())]));
  }

  join(channel: string, client: string, member: Member, owner?: string): Promise<void> {
    return this.presence.join(channel, client, member, owner);
  }

  leave(channel: string, client: string, owner?: string): Promise<void> {
    return this.presence.leave(channel, client, owner);
  }

  members(channel: string, limit?: number): Promise<Member[]> {
    return this.presence.members(channel, limit);
  }

  memberCount(channel: string): Promise<number> {
    return this.presence.memberCount(channel);
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
    if (wasHealthy && this.link.commandsReady) await Promise.allSettled([...this.presence.goodbyes(), ...this.node.goodbyes()]);
    this.presence.clear();
    this.node.clear();
    this.streams.clear();
    this.listener = null;
    await this.link.close();
  }

  /** A channel's history size and age, and how long its keys outlive its last publish (0: forever). */
  private retentionOf(channel: string): { historySize: number; historyTtl: number; expiry: number } {
    const own = retentionFor(this.retention, channel);
    if (own.historySize === this.historySize && own.historyTtl === this.historyTtl) return { ...own, expiry: this.channelExpiry };
    return { ...own, expiry: own.historyTtl > 0 ? Math.max(own.historyTtl, this.idempotencyWindow) : 0 };
  }

  /** The history read itself, without waiting for the live stream. */
  private async read(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const since = query.since;
    const now = this.now();
    const own = this.retentionOf(channel);
    const reply = (await this.link.run(
      this.scripts.history,
      [this.keys.key(channel, 'meta'), this.keys.key(channel, 'log')],
      [
        newEpoch(now),
        String(now),
        String(own.historySize),
        String(own.historyTtl),
        String(own.expiry),
        since === undefined ? 'newest' : 'since',
        since?.epoch ?? '',
        String(since?.offset ?? 0),
        String(query.limit ?? -1),
        String(query.before ?? 0),
        this.checkPrimary,
      ],
    )) as Array<string | number>;
    const epoch = String(reply[0]);
    const messages: ChannelMessage[] = [];
    for (let i = 3; i + 1 < reply.length; i += 2) {
      messages.push({ channel, epoch, offset: Number(reply[i]), data: String(reply[i + 1]) });
    }
    const recovered = since !== undefined && Number(reply[2]) === 1;
    return { position: { epoch, offset: Number(reply[1]) }, messages: since !== undefined && !recovered ? [] : messages, recovered };
  }

  /** A pub/sub message: a channel message or a presence event. */
  private receive(payload: string, name: string): void {
    const channel = this.keys.channelOfPubsubName(name);
    if (channel === null || this.listener === null || !this.streams.has(channel)) return;
    const kind = payload.charCodeAt(0);
    if (kind === 109 /* m */) {
      const a = payload.indexOf(',', 1);
      const b = payload.indexOf(',', a + 1);
      if (a < 0 || b < 0) return;
      this.streams.accept(channel, { channel, epoch: payload.slice(1, a), offset: Number(payload.slice(a + 1, b)), data: payload.slice(b + 1) });
    } else if (kind === 101 /* e */) {
      this.listener.ephemeral?.(channel, payload.slice(1));
    } else if (kind === 69 /* E */) {
      const newline = payload.indexOf('\n');
      if (newline > 0) this.listener.ephemeral?.(channel, payload.slice(newline + 1), payload.slice(1, newline));
    } else if (kind === 106 /* j */ || kind === 108 /* l */ || kind === 117 /* u */) {
      const newline = payload.indexOf('\n');
      if (newline < 0) return;
      let member: Member;
      try {
        member = JSON.parse(payload.slice(1, newline)) as Member;
      } catch {
        return;
      }
      this.listener.presence({ channel, kind: kind === 106 ? 'join' : kind === 117 ? 'update' : 'leave', client: payload.slice(newline + 1), member });
    }
  }

  // ───────────────────────────── health ─────────────────────────────

  private lost(): void {
    if (this.closed || !this.started) return;
    this.losses++;
    if (!this.isHealthy) return;
    this.isHealthy = false;
    this.listener?.health?.(false);
    // On a cluster the link stays ready through a lost node connection, and no 'node-ready'
    // need follow (a moved slot's old pub/sub connection is closed for good once its channels
    // went to the new owner): recovery starts now, and retries until it goes through.
    if (this.link.ready) void this.recover();
  }

  private regained(): void {
    if (this.closed || !this.started || this.heartbeat === null) return;
    if (this.link.ready) void this.recover();
  }

  /**
   * Both connections are up: write this node's counts and members again, recover every
   * channel's stream from history, and report health(true). Tried again soon when it fails,
   * when the connections are not up at its end, or when a connection was lost while it ran
   * (what it re-read may predate that loss).
   */
  private recover(announce = true): Promise<void> {
    if (this.isHealthy || this.closed) return Promise.resolve();
    // Cleared in a later tick than it is set (a synchronous clear before the assignment
    // would leave a settled promise here, and every later recover() would return it).
    this.recovering ??= this.recoverOnce(announce).then((done) => {
      this.recovering = null;
      if (!done) this.recoverLater();
    });
    return this.recovering;
  }

  /** One recovery; whether it went through (the engine is healthy again). */
  private async recoverOnce(announce: boolean): Promise<boolean> {
    try {
      const losses = this.losses;
      await this.streams.recover(async () => {
        // node-redis resubscribes by itself; on a cluster a failover or a moved slot may
        // leave one behind, and listening again costs nothing where it did not.
        await this.link.probe();
        await this.link.loadScripts(Object.values(this.scripts));
        await this.link.listen([this.keys.nodeBus(this.nodeId), this.keys.allNodesBus()], this.onCommand);
        await this.link.listen([...this.streams.channels].map((channel) => this.keys.pubsubName(channel)), this.onMessage);
        await this.node.register();
        await this.presence.refresh();
      });
      if (this.closed) return true;
      if (!this.link.ready || this.losses !== losses) return false;
      this.isHealthy = true;
      if (announce) this.listener?.health?.(true);
      return true;
    } catch {
      return this.closed;
    }
  }

  /** Tries recover() again after a pause, once the connections are up (else it waits and looks again). */
  private recoverLater(): void {
    if (this.closed || this.isHealthy || this.recoverAgain !== null) return;
    this.recoverAgain = setTimeout(() => {
      this.recoverAgain = null;
      if (this.closed || this.isHealthy) return;
      if (this.link.ready) void this.recover();
      else this.recoverLater();
    }, RECOVER_RETRY);
    this.recoverAgain.unref?.();
  }

  /**
   * A channel's stream broke (its epoch is gone): the listener re-reads its channels, as
   * after an outage, and learns that this one cannot be recovered. While unhealthy,
   * recover() reports health(true) when done.
   */
  private resync(): void {
    if (!this.isHealthy || this.resyncQueued) return;
    this.resyncQueued = true;
    queueMicrotask(() => {
      this.resyncQueued = false;
      if (this.isHealthy) this.listener?.health?.(true);
    });
  }

  /**
   * The heartbeat: members and counts, the sweep of expired members of subscribed channels,
   * and a check that each subscribed channel's stream has reached where Redis stands (a
   * message pub/sub never brought, say across a failover, is read from history).
   */
  private async beat(): Promise<void> {
    if (!this.isHealthy || !this.link.commandsReady) return;
    const now = this.now();
    try {
      await this.link.probe();
      await this.presence.refresh();
      const channels = new Set([...this.streams.channels, ...this.node.channels]);
      const swept = await this.presence.sweep(channels, now, this.channelExpiry, (channel) => this.node.entry(channel, now), this.node.keyTtl);
      for (const { channel, epoch, offset } of swept) if (epoch !== null) this.streams.verify(channel, { epoch, offset });
    } catch (error) {
      // Connected, but Redis does not answer (stopped, overloaded, a half-open connection):
      // unhealthy until a full recovery goes through. A closed connection reports itself.
      if (error instanceof EngineUnavailableError && this.isHealthy && this.link.ready) {
        this.link.lastError = error.message;
        this.lost();
        void this.recover();
      }
    }
  }
}
