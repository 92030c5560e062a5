import { Buffer } from 'node:buffer';
import { encodeFrame, Opcode } from '../protocol/index.js';
import type { ConnectionSendOptions, SendData, WebSocketConnection } from './connection.js';
import { DEFAULT_DEFLATE_THRESHOLD, deflateMessage, type DeflateTuning } from './deflate.js';
import { beforeNextFlush } from './frame-pump.js';
import { TopicBatch } from './topic-batch.js';

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
 * Topic subscriptions of one server's connections. A publish encodes its frame once; a
 * topic's publishes of one tick are kept together and written to each subscriber at the
 * tick's end (topic-batch.ts), so a burst of publishes costs one write per subscriber and
 * no work per subscriber per publish.
 */
export class TopicRegistry<T> {
  private readonly topics = new Map<string, Set<WebSocketConnection<T>>>();
  /** This tick's publishes to one topic, not yet written (see topic-batch.ts). */
  private batch: TopicBatch<T> | null = null;
  private readonly writeBatch = (): void => {
    const batch = this.batch;
    this.batch = null;
    batch?.write();
  };

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
    if (this.batch?.subscribers === subscribers) this.batch.joined(conn);
    subscribers.add(conn);
  }

  /** Removes `conn` from `topic`'s subscribers; a topic left with none is forgotten. */
  remove(topic: string, conn: WebSocketConnection<T>): void {
    const subscribers = this.topics.get(topic);
    if (subscribers === undefined) return;
    // It was subscribed when this tick's publishes were made: they reach it.
    if (this.batch?.subscribers === subscribers) this.batch.detach(conn);
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
    const pending = this.batch;
    if (pending !== null) {
      if (pending.subscribers === subscribers) {
        const reached = pending.add(shared, exclude);
        if (reached >= 0) return reached;
      }
      // Another topic's publish (or one this batch cannot take) is queued behind this one's.
      pending.settle();
      this.batch = null;
    }
    const batch = new TopicBatch(subscribers);
    const reached = batch.start(shared, exclude);
    if (pending === null) beforeNextFlush(this.writeBatch);
    this.batch = batch;
    return reached;
  }

  /**
   * `conn` is sent something else (a send, a close): this tick's publishes it has not been
   * written yet are queued on it first, so that they keep their place.
   */
  detach(conn: WebSocketConnection<T>): void {
    this.batch?.detach(conn);
  }

  /** Bytes of this tick's publishes waiting to be written to `conn` (its `bufferedAmount` counts them). */
  batchedBytes(conn: WebSocketConnection<T>): number {
    const batch = this.batch;
    return batch !== null && batch.has(conn) ? batch.bytes : 0;
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
  /** The frame, encoded once, uncompressed. */
  readonly encoded: Buffer;
  /** Whether subscribers that negotiated permessage-deflate get it compressed. */
  readonly compress: boolean;
  private compressed: Map<number, Buffer> | null = null;

  constructor(
    private readonly data: Exclude<SendData, Blob>,
    options: ConnectionSendOptions,
    private readonly deflate: TopicDeflate,
  ) {
    const { payload, binary } = payloadOf(data, options);
    this.payload = payload;
    this.binary = binary;
    this.encoded = encodeWhole(binary ? Opcode.Binary : Opcode.Text, payload, false);
    this.compress = options.compress ?? payload.length >= deflate.threshold;
  }

  /** Writes the message to `conn`; false when it did not take it (closed, or a slow consumer's drop). */
  sendTo<T>(conn: WebSocketConnection<T>): boolean {
    const share = this.compress ? conn.deflateShare : undefined;
    if (share === undefined) return conn.sendEncoded(this.encoded, this.data) !== 0;
    if (share === null) return conn.send(this.payload, { binary: this.binary, compress: true }) !== 0;
    this.compressed ??= new Map();
    let shared = this.compressed.get(share);
    if (shared === undefined) {
      const deflated = deflateMessage(this.payload, share, this.deflate.tuning);
      shared = deflated === null ? this.encoded : encodeWhole(this.binary ? Opcode.Binary : Opcode.Text, deflated, true);
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
