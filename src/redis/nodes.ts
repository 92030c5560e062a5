import type { RedisKeys } from './keys.js';
import type { RedisLink } from './link.js';
import { SUBSCRIBER_COUNT } from './scripts.js';

/**
 * This node in Redis: its liveness (a score in the live-node set that the heartbeat moves
 * on) and its subscriber count per channel, which a publish adds up over the live nodes.
 * A node that stops beating drops out of the sum a node TTL later.
 */
export class NodeRegistry {
  /** This node's subscriber count per channel, as the hub last said. */
  private readonly counts = new Map<string, number>();

  constructor(
    readonly id: string,
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly nodeTtl: number,
    private readonly now: () => number,
  ) {}

  /** Kept here, and written to Redis when it can be (all of them again when Redis is back). */
  setCount(channel: string, count: number): void {
    if (count > 0) this.counts.set(channel, count);
    else if (!this.counts.delete(channel)) return;
    const { commands } = this.link;
    if (!commands.isReady) return;
    const key = this.keys.node(this.id);
    const write = count > 0 ? commands.hSet(key, channel, count) : commands.hDel(key, channel);
    Promise.all([write, commands.pExpire(key, this.nodeTtl)]).catch(() => {});
  }

  /** This node's own count of a channel. */
  localCount(channel: string): number {
    return this.counts.get(channel) ?? 0;
  }

  /** The channel's subscribers on every live node. */
  async count(channel: string): Promise<number> {
    return Number(await this.link.run(SUBSCRIBER_COUNT, [this.keys.nodes()], [String(this.now()), this.keys.nodePrefix(), channel]));
  }

  /** Writes this node's liveness and all its counts afresh. */
  async register(): Promise<void> {
    const key = this.keys.node(this.id);
    const multi = this.link.commands.multi().del(key);
    if (this.counts.size > 0) multi.hSet(key, Object.fromEntries(this.counts));
    multi.pExpire(key, this.nodeTtl).zAdd(this.keys.nodes(), { score: this.now() + this.nodeTtl, value: this.id });
    await this.link.deadline(multi.exec(), 'register');
  }

  /** Moves this node's liveness on, forgets nodes that stopped, and rewrites the counts if Redis lost them. */
  async beat(now: number): Promise<void> {
    const key = this.keys.node(this.id);
    const nodes = this.keys.nodes();
    const { commands } = this.link;
    const [, , alive] = await this.link.deadline(
      commands.multi().zAdd(nodes, { score: now + this.nodeTtl, value: this.id }).zRemRangeByScore(nodes, '-inf', now).pExpire(key, this.nodeTtl).exec(),
      'heartbeat',
    );
    if (Number(alive) === 0 && this.counts.size > 0) {
      // The counts hash expired (this process stalled) or Redis lost it: write it again.
      await this.link.deadline(commands.multi().hSet(key, Object.fromEntries(this.counts)).pExpire(key, this.nodeTtl).exec(), 'heartbeat');
    }
  }

  /** Takes this node out of Redis (a clean shutdown). */
  goodbyes(): Array<Promise<unknown>> {
    const { commands } = this.link;
    return [this.link.deadline(commands.zRem(this.keys.nodes(), this.id), 'close'), this.link.deadline(commands.del(this.keys.node(this.id)), 'close')];
  }

  clear(): void {
    this.counts.clear();
  }
}
