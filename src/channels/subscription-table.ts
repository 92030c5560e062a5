import type { Subscription } from './subscription.js';

/**
 * One connection's subscriptions by channel. Most connections hold one: it is kept in a
 * field, and a Map is made by the second (a Map's table costs ~200 B even empty, as much
 * as the rest of a subscription). Iteration goes over a snapshot, so that what it visits
 * may be dropped along the way.
 */
export class SubscriptionTable<A> {
  private one: Subscription<A> | null = null;
  private many: Map<string, Subscription<A>> | null = null;

  /** How many channels the connection is subscribed to. */
  get size(): number {
    if (this.many !== null) return this.many.size;
    return this.one === null ? 0 : 1;
  }

  /** The subscription to `channel`, if any. */
  get(channel: string): Subscription<A> | undefined {
    if (this.many !== null) return this.many.get(channel);
    return this.one !== null && this.one.channel === channel ? this.one : undefined;
  }

  /** Whether the connection is subscribed to `channel`. */
  has(channel: string): boolean {
    return this.get(channel) !== undefined;
  }

  /** Keeps `subscription` under its channel, in place of any there before. */
  add(subscription: Subscription<A>): void {
    if (this.many !== null) {
      this.many.set(subscription.channel, subscription);
    } else if (this.one === null || this.one.channel === subscription.channel) {
      this.one = subscription;
    } else {
      this.many = new Map([
        [this.one.channel, this.one],
        [subscription.channel, subscription],
      ]);
      this.one = null;
    }
  }

  /** Forgets the subscription to `channel`; false when there was none. */
  delete(channel: string): boolean {
    if (this.many !== null) {
      const deleted = this.many.delete(channel);
      // Back to a field (or nothing): a connection that left its channels keeps no table.
      if (this.many.size <= 1) {
        this.one = this.many.size === 1 ? this.many.values().next().value! : null;
        this.many = null;
      }
      return deleted;
    }
    if (this.one === null || this.one.channel !== channel) return false;
    this.one = null;
    return true;
  }

  /** The channels, in the order they were subscribed to (a snapshot). */
  channels(): string[] {
    if (this.many !== null) return [...this.many.keys()];
    return this.one === null ? [] : [this.one.channel];
  }

  /** The subscriptions, in the order they were made (a snapshot). */
  subscriptions(): Array<Subscription<A>> {
    if (this.many !== null) return [...this.many.values()];
    return this.one === null ? [] : [this.one];
  }
}
