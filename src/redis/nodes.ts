import type { RedisKeys } from './keys.js';
import type { RedisLink } from './link.js';
import type { ScriptSet } from './scripts.js';

/**
 * This node's subscriber count per channel, in Redis: each channel has a hash of node id ->
 * `<count>,<expiry>` under the channel's own hash tag, so the publish script adds up the
 * live counts itself (no second call, and on a cluster no slot that every publish goes
 * through). The heartbeat's sweep moves this node's expiry on; a node that stops beating
 * drops out of the sum a node TTL later, and the next sweep removes its entry.
 */
export class NodeRegistry {
  /** This node's subscriber count per channel, as the hub last said. */
  private readonly counts = new Map<string, number>();

  constructor(
    readonly id: string,
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly scripts: ScriptSet,
    private readonly nodeTtl: number,
    private readonly now: () => number,
  ) {}

  /** Kept here, and written to Redis when it can be (all of them again when Redis is back). */
  setCount(channel: string, count: number): void {
    if (count > 0) this.counts.set(channel, count);
    else if (!this.counts.delete(channel)) return;
    if (!this.link.commandsReady) return;
    this.write(channel).catch(() => {});
  }

  /** The channels this node has subscribers of. */
  get channels(): IterableIterator<string> {
    return this.counts.keys();
  }

  /** This node's own count of a channel. */
  localCount(channel: string): number {
    return this.counts.get(channel) ?? 0;
  }

  /** The value of this node's entry in a channel's subs hash ('' when it has no subscribers there). */
  entry(channel: string, now = this.now()): string {
    const count = this.counts.get(channel);
    return count === undefined ? '' : `${count},${now + this.nodeTtl}`;
  }

  /** How long a channel's subs hash outlives its last write (its entries' expiry plus one TTL). */
  get keyTtl(): number {
    return 2 * this.nodeTtl;
  }

  /** Writes all of this node's counts afresh (after Redis came back). */
  async register(): Promise<void> {
    await Promise.all([...this.counts.keys()].map((channel) => this.write(channel)));
  }

  /** Takes this node's counts out of Redis (a clean shutdown). */
  goodbyes(): Array<Promise<unknown>> {
    const channels = [...this.counts.keys()];
    this.counts.clear();
    return channels.map((channel) => this.write(channel));
  }

  clear(): void {
    this.counts.clear();
  }

  private write(channel: string): Promise<unknown> {
    // The entry as it is when sent: a retried write must not carry an older count.
    return this.link.run(this.scripts.count, [this.keys.key(channel, 'subs')], () => [this.id, this.entry(channel), String(this.keyTtl)]);
  }
}
