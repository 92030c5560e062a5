// A topic's publishes of one tick, kept together and written to each subscriber once, when
// the tick's frames go out, instead of being queued on every subscriber by every publish:
// a burst of k publishes to n subscribers costs one pass over the subscribers to start,
// then one per publish only over those that cannot take it this way, then one write each.
//
// What holds it together: a subscriber takes the batch's frames only while nothing else is
// queued for it after them. Anything else sent to it (a send, another topic's publish, its
// close frame) first takes the frames so far the usual way, then it leaves the batch and
// later publishes reach it one by one; so do a publisher a publish passes by (the batch
// keeps no one's exclusions), subscribers that join the topic meanwhile, and those the
// batch cannot serve (closing, compressed on their own, a tap to show them, or past their
// backpressure limit, where the usual path drops or closes).
import type { Buffer } from 'node:buffer';
import type { WebSocketConnection } from './connection.js';
import type { SharedFrame } from './topics.js';
import { planWrite } from './write.js';

export class TopicBatch<T> {
  private readonly frames: Buffer[] = [];
  /** The frames' bytes so far, framing included. */
  bytes = 0;
  /** The least room left under a member's backpressure limit when the batch began. */
  private headroom = Infinity;
  private members = 0;
  /** Some member negotiated permessage-deflate: a publish to compress cannot join. */
  private deflateMembers = false;
  /** Subscribers that get this tick's publishes the usual way. */
  private others: Set<WebSocketConnection<T>> | null = null;

  /** @param subscribers The topic's subscribers (its own set, kept current by the registry). */
  constructor(readonly subscribers: Set<WebSocketConnection<T>>) {}

  /**
   * The batch's first publish: sorts the subscribers; returns how many it reached. The
   * publisher it passes by (`exclude`) gets the later ones the usual way.
   */
  start(shared: SharedFrame, exclude: WebSocketConnection<T> | undefined): number {
    let reached = 0;
    for (const conn of this.subscribers) {
      if (conn === exclude) {
        (this.others ??= new Set()).add(conn);
        continue;
      }
      const deflate = conn.deflateShare !== undefined;
      const room = shared.compress && deflate ? -1 : conn.batchHeadroom();
      if (room >= 0) {
        this.members++;
        if (room < this.headroom) this.headroom = room;
        if (deflate) this.deflateMembers = true;
      } else {
        (this.others ??= new Set()).add(conn);
        if (shared.sendTo(conn)) reached++;
      }
    }
    this.frames.push(shared.encoded);
    this.bytes += shared.encoded.length;
    return reached + this.members;
  }

  /**
   * A later publish to the topic in this tick: how many it reached, or -1 when some member
   * could not take it (its limit, or a compression of its own), and the batch must be
   * settled before it is published.
   * A member takes a frame, as a send would, while what it has buffered before it is
   * within its limit.
   */
  add(shared: SharedFrame, exclude: WebSocketConnection<T> | undefined): number {
    if (this.bytes > this.headroom || (shared.compress && this.deflateMembers)) return -1;
    // A member that publishes (passed by) gets the batch so far now, the rest one by one.
    if (exclude !== undefined) this.detach(exclude);
    // With no member left (each was sent something else), nobody takes the frames here.
    if (this.members > 0) {
      this.frames.push(shared.encoded);
      this.bytes += shared.encoded.length;
    }
    let reached = this.members;
    const { others, subscribers } = this;
    if (others !== null) {
      for (const conn of others) {
        if (conn !== exclude && subscribers.has(conn) && shared.sendTo(conn)) reached++;
      }
    }
    return reached;
  }

  /** Whether `conn` takes this batch's frames when the tick's frames go out. */
  has(conn: WebSocketConnection<T>): boolean {
    return this.subscribers.has(conn) && this.others?.has(conn) !== true;
  }

  /**
   * `conn` leaves the batch (something else is sent to it, or it leaves the topic): the
   * frames so far are queued on it the usual way, and the later publishes reach it so.
   */
  detach(conn: WebSocketConnection<T>): void {
    if (!this.has(conn)) return;
    conn.takeBatched(this.frames, this.bytes);
    this.members--;
    (this.others ??= new Set()).add(conn);
  }

  /** `conn` joins the topic now: it gets the publishes from here on, the usual way. */
  joined(conn: WebSocketConnection<T>): void {
    (this.others ??= new Set()).add(conn);
  }

  /** Queues the frames on every member the usual way (another topic's publish comes next). */
  settle(): void {
    if (this.members === 0) return;
    const { others, frames, bytes } = this;
    for (const conn of this.subscribers) {
      if (others === null || !others.has(conn)) conn.takeBatched(frames, bytes);
    }
  }

  /** Writes the frames to every member: the tick's frames go out. */
  write(): void {
    if (this.members === 0) return;
    const { others, frames, bytes } = this;
    const plan = planWrite(frames, bytes);
    for (const conn of this.subscribers) {
      if (others === null || !others.has(conn)) conn.writeBatch(frames, plan, bytes);
    }
  }
}
