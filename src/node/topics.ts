import { Buffer } from 'node:buffer';
import { encodeFrame, Opcode } from '../protocol/index.js';
import type { ConnectionSendOptions, SendData, WebSocketConnection } from './connection.js';
import { DEFAULT_DEFLATE_THRESHOLD, deflateMessage, type DeflateTuning } from './deflate.js';

/** How a server's publishes are compressed for subscribers that negotiated permessage-deflate. */
export interface TopicDeflate {
  threshold: number;
  tuning: DeflateTuning;
}

/**
 * Raised by a topic subscribe or publish on an endpoint whose topics are off: the channel
 * endpoint's connections speak hotline.v1, and a raw publish would put frames into them
 * that are not hotline.v1 messages. Publish to its channels with `channels.publish()`.
 */
export class TopicsDisabledError extends Error {
  /** Always `'TopicsDisabledError'`. */
  override readonly name = 'TopicsDisabledError';
  /** Always `'TOPICS_DISABLED'`. */
  readonly code = 'TOPICS_DISABLED';
}

const TOPICS_OFF =
  "this endpoint's topics are off: its connections speak a protocol of their own (hotline.v1 on a channel endpoint: publish with channels.publish())";

/**
 * Topic subscriptions of one server's connections. A publish encodes its frame once and
 * hands the same bytes to every subscriber; each subscriber's frames are then written
 * together once per tick, so a burst of publishes costs one write per subscriber.
 */
export class TopicRegistry<T> {
  private readonly topics = new Map<string, Set<WebSocketConnection<T>>>();

  /**
   * @param enabled When false, `add` and `publish` throw a {@link TopicsDisabledError}
   * (`frame` still serves the server's own broadcasts).
   */
  constructor(
    private readonly deflate: TopicDeflate = { threshold: DEFAULT_DEFLATE_THRESHOLD, tuning: {} },
    readonly enabled = true,
  ) {}

  /**
   * Adds `conn` to `topic`'s subscribers (a set: twice is once). Connections call it from
   * `subscribe`, which also records the topic so the connection leaves it when it closes.
   * @throws TopicsDisabledError when the registry is not enabled.
   */
  add(topic: string, conn: WebSocketConnection<T>): void {
    if (!this.enabled) throw new TopicsDisabledError(TOPICS_OFF);
    let subscribers = this.topics.get(topic);
    if (subscribers === undefined) {
      subscribers = new Set();
      this.topics.set(topic, subscribers);
    }
    subscribers.add(conn);
  }

  /** Removes `conn` from `topic`'s subscribers; a topic left with none is forgotten. */
  remove(topic: string, conn: WebSocketConnection<T>): void {
    const subscribers = this.topics.get(topic);
    if (subscribers === undefined) return;
    subscribers.delete(conn);
    if (subscribers.size === 0) this.topics.delete(topic);
  }

  /** How many connections are subscribed to `topic` (0 for an unknown topic). */
  subscriberCount(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  /** The topics that have at least one subscriber, as a fresh array. */
  get topicNames(): string[] {
    return [...this.topics.keys()];
  }

  /**
   * Sends `data` to every subscriber of `topic` except `exclude`; returns how many
   * connections it reached (slow consumers that dropped it are not counted). A Blob is
   * not accepted here: read it first, so that every subscriber gets the same bytes now.
   */
  publish(
    topic: string,
    data: Exclude<SendData, Blob>,
    options: ConnectionSendOptions = {},
    exclude?: WebSocketConnection<T>,
  ): number {
    if (!this.enabled) throw new TopicsDisabledError(TOPICS_OFF);
    const subscribers = this.topics.get(topic);
    if (subscribers === undefined) return 0;
    const shared = this.frame(data, options);
    let reached = 0;
    for (const conn of subscribers) {
      if (conn !== exclude && shared.sendTo(conn)) reached++;
    }
    return reached;
  }

  /** One message for many of this server's connections, kept elsewhere than in topics (the channel hub's subscribers). */
  frame(data: Exclude<SendData, Blob>, options: ConnectionSendOptions = {}): SharedFrame {
    return new SharedFrame(data, options, this.deflate);
  }
}

/**
 * One message for many connections: its frame is encoded once, and compressed once per
 * window size for every subscriber that resets its context per message; a subscriber with
 * context takeover gets its own compression (its window depends on its history).
 */
export class SharedFrame {
  private readonly payload: Buffer;
  private readonly binary: boolean;
  private readonly frame: Buffer;
  private readonly compress: boolean;
  private compressed: Map<number, Buffer> | null = null;

  constructor(
    private readonly data: Exclude<SendData, Blob>,
    options: ConnectionSendOptions,
    private readonly deflate: TopicDeflate,
  ) {
    const { payload, binary } = payloadOf(data, options);
    this.payload = payload;
    this.binary = binary;
    this.frame = encodeWhole(binary ? Opcode.Binary : Opcode.Text, payload, false);
    this.compress = options.compress ?? payload.length >= deflate.threshold;
  }

  /** Writes the message to `conn`; false when it did not take it (closed, or a slow consumer's drop). */
  sendTo<T>(conn: WebSocketConnection<T>): boolean {
    const share = this.compress ? conn.deflateShare : undefined;
    if (share === undefined) return conn.sendEncoded(this.frame, this.data) !== 0;
    if (share === null) return conn.send(this.payload, { binary: this.binary, compress: true }) !== 0;
    this.compressed ??= new Map();
    let shared = this.compressed.get(share);
    if (shared === undefined) {
      const deflated = deflateMessage(this.payload, share, this.deflate.tuning);
      shared = deflated === null ? this.frame : encodeWhole(this.binary ? Opcode.Binary : Opcode.Text, deflated, true);
      this.compressed.set(share, shared);
    }
    return conn.sendEncoded(shared, this.data) !== 0;
  }
}

function payloadOf(data: Exclude<SendData, Blob>, options: ConnectionSendOptions): { payload: Buffer; binary: boolean } {
  if (typeof data === 'string') return { payload: Buffer.from(data), binary: options.binary ?? false };
  const payload = Buffer.isBuffer(data)
    ? data
    : ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data);
  return { payload, binary: options.binary ?? true };
}

function encodeWhole(opcode: number, payload: Buffer, rsv1: boolean): Buffer {
  const parts = encodeFrame(opcode, payload, { rsv1 });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
