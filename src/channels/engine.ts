import type { Member } from '../wire/index.js';

/** A channel's place in its stream: offsets rise by one per message within an epoch. */
export interface StreamPosition {
  epoch: string;
  /** The offset of the newest message; 0 before the first. */
  offset: number;
}

/** A message as an engine stores and delivers it; `data` is its JSON text. */
export interface ChannelMessage {
  channel: string;
  epoch: string;
  offset: number;
  data: string;
}

export interface PublishResult extends StreamPosition {
  /** True when the idempotency key was seen: nothing was published, `offset` is the first one's. */
  duplicate: boolean;
  /** With `duplicate`: the key was seen with other data (a misused key, not a retry). */
  conflict?: boolean;
}

export interface PublishOptions {
  /** Makes the publish idempotent within the engine's window. */
  key?: string;
  /**
   * Who publishes: `key` is scoped to it, so another publisher's same key is another key
   * (and cannot make this publisher's message count as a repeat).
   */
  publisher?: string;
}

export interface HistoryQuery {
  /** Messages after this position; the epoch must match and nothing after it may be trimmed. */
  since?: StreamPosition;
  /** At most this many of the newest messages. */
  limit?: number;
  /** Without `since`: only messages older than this offset (of the current epoch), to page back. */
  before?: number;
}

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
  channel: string;
  kind: 'join' | 'leave';
  /** Identifies the connection (unique across nodes). */
  client: string;
  member: Member;
}

/** What an engine tells the node that uses it. */
export interface EngineListener {
  /** A message on a channel this node subscribed to, from any node; per channel in offset order. */
  message(message: ChannelMessage): void;
  /** A presence change on a channel this node subscribed to. */
  presence(event: PresenceEvent): void;
  /** The engine lost (false) or regained (true) its backend; channels must be recovered after it returns. */
  health?(healthy: boolean): void;
}

/**
 * Everything connections share, between the connections of one node and across nodes:
 * fan-out, per-channel history with offsets and an epoch, idempotent publishes, presence.
 * The channel hub talks to nothing else, so an engine on Redis, NATS or anything with
 * ordered pub/sub and storage can replace the in-memory one without changing the server.
 *
 * Subscriptions are per node and channel, not per connection: the hub subscribes a channel
 * when its first local subscriber arrives and unsubscribes after the last one leaves.
 */
export interface Engine {
  /** Starts delivering to `listener`; called once, before anything else. */
  start(listener: EngineListener): Promise<void>;
  /** Appends to the channel's history and delivers to every subscribed node. */
  publish(channel: string, data: string, options?: PublishOptions): Promise<PublishResult>;
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  history(channel: string, query?: HistoryQuery): Promise<HistoryResult>;
  /** Subscribers of the channel across all nodes, as the hubs reported them. */
  subscriberCount(channel: string): Promise<number>;
  /** This node's subscriber count for a channel changed (engines spanning nodes add them up). */
  setLocalSubscriberCount(channel: string, count: number): void;
  join(channel: string, client: string, member: Member): Promise<void>;
  leave(channel: string, client: string): Promise<void>;
  members(channel: string): Promise<Member[]>;
  /** Whether the engine can serve now (its backend reachable). */
  readonly healthy: boolean;
  close(): Promise<void>;
}

/** Raised by an engine that cannot serve a request now (its backend is unreachable). */
export class EngineUnavailableError extends Error {
  override readonly name = 'EngineUnavailableError';
  readonly code = 'ENGINE_UNAVAILABLE';
}
