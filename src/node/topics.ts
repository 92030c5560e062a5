import { Buffer } from 'node:buffer';
import { encodeFrame, Opcode } from '../protocol/index.js';
import type { ConnectionSendOptions, SendData, WebSocketConnection } from './connection.js';

/**
 * Topic subscriptions of one server's connections. A publish encodes its frame once and
 * hands the same bytes to every subscriber; each subscriber's frames are then written
 * together once per tick, so a burst of publishes costs one write per subscriber.
 */
export class TopicRegistry<T> {
  private readonly topics = new Map<string, Set<WebSocketConnection<T>>>();

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
   */
  publish(
    topic: string,
    data: Exclude<SendData, Blob>,
    options: ConnectionSendOptions = {},
    exclude?: WebSocketConnection<T>,
  ): number {
    const subscribers = this.topics.get(topic);
    if (subscribers === undefined) return 0;
    const frame = encodeOnce(data, options);
    let reached = 0;
    for (const conn of subscribers) {
      if (conn !== exclude && conn.sendEncoded(frame) !== 0) reached++;
    }
    return reached;
  }
}

/** One unmasked frame, in one buffer, for any number of connections. */
export function encodeOnce(data: Exclude<SendData, Blob>, options: ConnectionSendOptions = {}): Buffer {
  let payload: Buffer;
  let binary: boolean;
  if (typeof data === 'string') {
    payload = Buffer.from(data);
    binary = options.binary ?? false;
  } else {
    payload = Buffer.isBuffer(data)
      ? data
      : ArrayBuffer.isView(data)
        ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
        : Buffer.from(data);
    binary = options.binary ?? true;
  }
  const parts = encodeFrame(binary ? Opcode.Binary : Opcode.Text, payload);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
