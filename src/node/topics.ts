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
 * Topic subscriptions of one server's connections. A publish encodes its frame once and
 * hands the same bytes to every subscriber; each subscriber's frames are then written
 * together once per tick, so a burst of publishes costs one write per subscriber.
 */
export class TopicRegistry<T> {
  private readonly topics = new Map<string, Set<WebSocketConnection<T>>>();

  constructor(private readonly deflate: TopicDeflate = { threshold: DEFAULT_DEFLATE_THRESHOLD, tuning: {} }) {}

  add(topic: string, conn: WebSocketConnection<T>): void {
    let subscribers = this.topics.get(topic);
    if (subscribers === undefined) {
      subscribers = new Set();
      this.topics.set(topic, subscribers);
    }
    subscribers.add(conn);
  }

  remove(topic: string, conn: WebSocketConnection<T>): void {
    const subscribers = this.topics.get(topic);
    if (subscribers === undefined) return;
    subscribers.delete(conn);
    if (subscribers.size === 0) this.topics.delete(topic);
  }

  subscriberCount(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  get topicNames(): string[] {
    return [...this.topics.keys()];
  }

  /**
   * Sends `data` to every subscriber of `topic` except `exclude`; returns how many
   * connections it reached (slow consumers that dropped it are not counted). A Blob is
   * not accepted here: read it first, so that every subscriber gets the same bytes now.
   *
   * Compression follows each subscriber's permessage-deflate: one compressed frame per
   * window size serves every subscriber that resets its context per message; a subscriber
   * with context takeover gets its own compression (its window depends on its history).
   */
  publish(
    topic: string,
    data: Exclude<SendData, Blob>,
    options: ConnectionSendOptions = {},
    exclude?: WebSocketConnection<T>,
  ): number {
    const subscribers = this.topics.get(topic);
    if (subscribers === undefined) return 0;
    const { payload, binary } = payloadOf(data, options);
    const frame = encodeWhole(binary ? Opcode.Binary : Opcode.Text, payload, false);
    const compress = options.compress ?? payload.length >= this.deflate.threshold;
    let compressed: Map<number, Buffer> | null = null;
    let reached = 0;
    for (const conn of subscribers) {
      if (conn === exclude) continue;
      let result: number;
      const share = compress ? conn.deflateShare : undefined;
      if (share === undefined) {
        result = conn.sendEncoded(frame, data);
      } else if (share === null) {
        result = conn.send(payload, { binary, compress: true });
      } else {
        compressed ??= new Map();
        let shared = compressed.get(share);
        if (shared === undefined) {
          const deflated = deflateMessage(payload, share, this.deflate.tuning);
          shared = deflated === null ? frame : encodeWhole(binary ? Opcode.Binary : Opcode.Text, deflated, true);
          compressed.set(share, shared);
        }
        result = conn.sendEncoded(shared, data);
      }
      if (result !== 0) reached++;
    }
    return reached;
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
