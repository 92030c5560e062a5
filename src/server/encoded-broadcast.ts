/**
 * A channel message to a channel's live subscribers, each in its connection's encoding: the
 * hub hands over the message as JSON text once; it is made a frame at most once per
 * encoding, and only for encodings that have a subscriber among them, then the same frame
 * is written to every subscriber of that encoding. Transports of their own (SSE) write the
 * JSON text themselves.
 */
import type { WireEncoding } from '../wire/index.js';

/** How a broadcast reaches its subscribers (of type C), and makes shared frames (of type F). */
export interface BroadcastRoute<C, F> {
  /** The subscriber's encoding when it takes shared frames (a WebSocket); null when it writes JSON text itself. */
  encodingOf(subscriber: C): WireEncoding | null;
  /** The shared frame of an encoding; called at most once per encoding and broadcast. */
  frame(encoding: WireEncoding, text: string): F;
  /** Writes a shared frame to a subscriber; false when it did not take it (closed, or closing as too slow). */
  sendFrame(frame: F, subscriber: C): boolean;
  /** A subscriber that writes the JSON text itself; false when it did not take it. */
  deliver(subscriber: C, text: string): boolean;
}

/** Writes `text` (a hotline.v1 `msg` in JSON) to every subscriber; returns how many took it. */
export function broadcastEncoded<C, F>(text: string, subscribers: Iterable<C>, route: BroadcastRoute<C, F>): number {
  let json: F | undefined;
  let msgpack: F | undefined;
  let reached = 0;
  for (const subscriber of subscribers) {
    const encoding = route.encodingOf(subscriber);
    let taken: boolean;
    if (encoding === null) taken = route.deliver(subscriber, text);
    else if (encoding === 'json') taken = route.sendFrame((json ??= route.frame('json', text)), subscriber);
    else taken = route.sendFrame((msgpack ??= route.frame('msgpack', text)), subscriber);
    if (taken) reached++;
  }
  return reached;
}
