import type { Member } from '../wire/index.js';

/** A channel's place in its stream: offsets rise by one per message within an epoch. */
export interface StreamPosition {
  /**
   * Names one unbroken run of the channel's stream. A new epoch starts when the history
   * was lost (a fresh engine, an evicted or expired channel), and its offsets restart.
   */
  epoch: string;
  /** The offset of the newest message; 0 before the first. */
  offset: number;
}

/** A message as an engine stores and delivers it; `data` is its JSON text. */
export interface ChannelMessage {
  /** The channel it was published to. */
  channel: string;
  /** The stream's epoch when it was published. */
  epoch: string;
  /** Its place in the epoch: one more than the message before. */
  offset: number;
  /** The message as JSON text; engines store and pass it on without parsing it. */
  data: string;
}

/** What {@link Broker.publish} did: the message's position, and whether it was a repeat. */
export interface PublishResult extends StreamPosition {
  /** True when the idempotency key was seen: nothing was published, `offset` is the first one's. */
  duplicate: boolean;
  /** With `duplicate`: the key was seen with other data (a misused key, not a retry). */
  conflict?: boolean;
  /**
   * Subscribers of the channel on every node when it was published, as the nodes reported
   * them with {@link Broker.setLocalSubscriberCount} (0 for a duplicate: nothing was
   * delivered). An engine that could not read the other nodes' counts gives this node's.
   */
  subscribers: number;
}

/** Options of one {@link Broker.publish}. */
export interface PublishOptions {
  /** Makes the publish idempotent within the engine's window. */
  key?: string;
  /**
   * Who publishes: `key` is scoped to it, so another publisher's same key is another key
   * (and cannot make this publisher's message count as a repeat).
   */
  publisher?: string;
}

/** Which part of a channel's history {@link Broker.history} reads: to recover from a position (`since`), or to page back. */
export interface HistoryQuery {
  /** Messages after this position; the epoch must match and nothing after it may be trimmed. */
  since?: StreamPosition;
  /** At most this many of the newest messages. */
  limit?: number;
  /** Without `since`: only messages older than this offset (of the current epoch), to page back. */
  before?: number;
}

/** What {@link Broker.history} read, and whether it recovered from `since`. */
export interface HistoryResult {
  /** Where the stream stood when it was read. */
  position: StreamPosition;
  /** In offset order, all after `since` (when recovered) or the newest `limit`. */
  messages: ChannelMessage[];
  /** False when `since` was given but its epoch is gone or part of what followed it was trimmed. */
  recovered: boolean;
}

/** A presence change on a channel, seen by every node. */
export interface PresenceEvent {
  /** The channel joined or left. */
  channel: string;
  /**
   * `join` when the client's member arrived, `update` when it changed (its presence state),
   * `leave` when it went (it left, or its connection closed and did not come back in time).
   */
  kind: 'join' | 'update' | 'leave';
  /** The client's presence key (its public client id; unique across nodes). */
  client: string;
  /** The member as it joined, changed or left: its id, info and state. */
  member: Member;
}

/** What a broker tells the node that uses it. */
export interface BrokerListener {
  /** A message on a channel this node subscribed to, from any node; per channel in offset order. */
  message(message: ChannelMessage): void;
  /** An ephemeral message (see {@link Broker.publishEphemeral}) on a channel this node subscribed to, with its publisher's client id. */
  ephemeral?(channel: string, data: string, client?: string): void;
  /** The broker lost (false) or regained (true) its backend; channels must be recovered after it returns. */
  health?(healthy: boolean): void;
}

/** What a presence manager tells the node that uses it. */
export interface PresenceListener {
  /** A presence change on a channel this node subscribed to (a separate presence manager may tell of others too). */
  presence(event: PresenceEvent): void;
}

/** What a node bus tells the node that uses it. */
export interface NodeBusListener {
  /** A command or an answer from a node (this one included) to this node, or to every node. */
  command?(text: string): void;
}

/** What an {@link Engine} tells the node that uses it: messages, health, presence and commands. */
export interface EngineListener extends BrokerListener, PresenceListener, NodeBusListener {}

/**
 * The messages that connections share, between the connections of one node and across
 * nodes: fan-out, per-channel history with offsets and an epoch, idempotent publishes.
 * The channel hub talks to nothing else for messages, so a broker on Redis, NATS or
 * anything with ordered pub/sub and storage can replace the in-memory one.
 *
 * Subscriptions are per node and channel, not per connection: the hub subscribes a channel
 * when its first local subscriber arrives and unsubscribes after the last one leaves.
 */
export interface Broker {
  /** Starts delivering to `listener`; called once, before anything else. */
  start(listener: BrokerListener): Promise<void>;
  /** Appends to the channel's history and delivers to every subscribed node. */
  publish(channel: string, data: string, options?: PublishOptions): Promise<PublishResult>;
  /**
   * Delivers to every node subscribed now, without an offset or history (an engine without
   * it refuses ephemeral publishes); resolves to the channel's subscribers on every node.
   * `client` is the publisher's client id (its presence key), which the hub stamps on the
   * message: the listener must get it back as it was.
   */
  publishEphemeral?(channel: string, data: string, client?: string): Promise<number>;
  /** The channel's subscribers on every node, as they were reported with {@link setLocalSubscriberCount}. */
  subscriberCount?(channel: string): Promise<number>;
  /** Starts delivering the channel's messages, from every node, to this node's listener; again is a no-op. */
  subscribe(channel: string): Promise<void>;
  /** Stops delivering the channel's messages to this node; its history is kept. */
  unsubscribe(channel: string): Promise<void>;
  /**
   * Reads the channel's history: without a query, all that is kept. With `since`, the
   * messages after it, all or none (`recovered: false` when some are gone or more than `limit`).
   */
  history(channel: string, query?: HistoryQuery): Promise<HistoryResult>;
  /** This node's subscriber count for a channel changed: publish results add up every node's. */
  setLocalSubscriberCount(channel: string, count: number): void;
  /** Whether the broker can serve now (its backend reachable). */
  readonly healthy: boolean;
  /** Stops delivering and releases the backend (timers, connections); the broker is not used again. */
  close(): Promise<void>;
}

/**
 * Who is in each channel, across nodes: one member per connection that joined, and the
 * join and leave events. Kept apart from the {@link Broker} so that an engine may offer
 * one without the other.
 */
export interface PresenceManager {
  /**
   * Starts announcing changes; called once. Not called when the same object is the hub's
   * broker too: its {@link Broker.start} listener is an {@link EngineListener}.
   */
  start?(listener: PresenceListener): Promise<void>;
  /**
   * Adds the client (by its presence key) as `member` of the channel, held by the connection
   * `owner` (its connection id): announced as a `join` the first time, as an `update` when
   * the member changed. A new owner takes the key over (the client reconnected).
   */
  join(channel: string, client: string, member: Member, owner?: string): Promise<void>;
  /**
   * Removes the client's member from the channel, announced as a `leave`; a no-op if it was
   * not in, or (with `owner`) when another connection holds the key now (it came back).
   */
  leave(channel: string, client: string, owner?: string): Promise<void>;
  /** The channel's members on every node, one per client (a user on two tabs is there twice); at most `limit`. */
  members(channel: string, limit?: number): Promise<Member[]>;
  /** How many members the channel has on every node. */
  memberCount?(channel: string): Promise<number>;
  /** Not called when the same object is the hub's broker (its {@link Broker.close} ends both). */
  close?(): Promise<void>;
}

/**
 * Commands between the nodes that share an engine, to one node by its id or to all of them:
 * the server API's commands for a user's or a client's connections (send, disconnect,
 * unsubscribe, call) and their answers travel on it, to {@link NodeBusListener.command}.
 * Delivery is at most once; the counts say how many nodes were listening, so that the
 * sender knows how many answers to wait for. A hub whose engine is no node bus serves
 * this node's connections alone.
 */
export interface NodeBus {
  /** This node's id, without a '.': client ids are `NODE.N`, so a client's node is known from its id. */
  readonly nodeId: string;
  /** Sends to one node; resolves to whether a node listening under that id received it. */
  sendToNode(node: string, text: string): Promise<boolean>;
  /** Sends to every node, this one included; resolves to how many received it. */
  sendToAll(text: string): Promise<number>;
}

/** Whether an engine also carries commands between nodes (the Redis engine does, the memory engine's single node needs none). */
export function isNodeBus(value: object): value is NodeBus {
  const candidate = value as Partial<NodeBus>;
  return typeof candidate.nodeId === 'string' && typeof candidate.sendToNode === 'function' && typeof candidate.sendToAll === 'function';
}

/** A broker that is its own presence manager: what the memory and Redis engines are. */
export interface Engine extends Broker, PresenceManager {
  /** Starts delivering messages, presence events (and commands, for a node bus) to `listener`; called once, first. */
  start(listener: EngineListener): Promise<void>;
  /** Ends both roles: stops delivering and releases the backend. */
  close(): Promise<void>;
}

/** Whether a broker also keeps presence, so the hub need not be given a separate presence manager. */
export function isPresenceManager(value: object): value is PresenceManager {
  const candidate = value as Partial<PresenceManager>;
  return typeof candidate.join === 'function' && typeof candidate.leave === 'function' && typeof candidate.members === 'function';
}

/** What an engine keeps of each channel; the memory and Redis engines share these options. */
export interface RetentionOptions {
  /** Messages kept per channel for history and recovery (default 100; 0 keeps none). */
  historySize?: number;
  /**
   * How long a message stays in history (ms, default 300000: 5 minutes; 0 for no limit,
   * and then an idle channel is kept until evicted or, in Redis, forever).
   */
  historyTtl?: number;
  /** How long a publish key is remembered for idempotent publishes (ms, default 120000). */
  idempotencyWindow?: number;
  /**
   * A channel's own history size and age, where they differ from the engine's (a server's
   * namespaces): asked when a channel is published to or read, so it must be cheap and
   * give the same answer for the same channel. Absent fields take the engine's.
   */
  channelRetention?: (channel: string) => ChannelRetention | undefined;
  /** Clock (ms); tests pass their own. */
  now?: () => number;
}

/** One channel's retention, overriding the engine's. */
export interface ChannelRetention {
  historySize?: number;
  historyTtl?: number;
}

/** Messages kept per channel by default (`historySize`). */
export const DEFAULT_HISTORY_SIZE = 100;
/** How long a message stays in history by default (`historyTtl`): 5 minutes, in ms. */
export const DEFAULT_HISTORY_TTL = 5 * 60_000;
/** How long a publish key is remembered by default (`idempotencyWindow`): 2 minutes, in ms. */
export const DEFAULT_IDEMPOTENCY_WINDOW = 2 * 60_000;

/** The retention options with their defaults. */
export function retentionOf(options: RetentionOptions): Required<RetentionOptions> {
  return {
    historySize: options.historySize ?? DEFAULT_HISTORY_SIZE,
    historyTtl: options.historyTtl ?? DEFAULT_HISTORY_TTL,
    idempotencyWindow: options.idempotencyWindow ?? DEFAULT_IDEMPOTENCY_WINDOW,
    channelRetention: options.channelRetention ?? (() => undefined),
    now: options.now ?? Date.now,
  };
}

/** A channel's history size and age: its own where `channelRetention` gives them, else the engine's. */
export function retentionFor(retention: Required<RetentionOptions>, channel: string): { historySize: number; historyTtl: number } {
  const own = retention.channelRetention(channel);
  return { historySize: own?.historySize ?? retention.historySize, historyTtl: own?.historyTtl ?? retention.historyTtl };
}

/** Raised by an engine that cannot serve a request now (its backend is unreachable). */
export class EngineUnavailableError extends Error {
  /** Always `'EngineUnavailableError'`. */
  override readonly name = 'EngineUnavailableError';
  /** Always `'ENGINE_UNAVAILABLE'`; the hub answers the request with an `internal` err whose message begins `unavailable:`. */
  readonly code = 'ENGINE_UNAVAILABLE';
}
