import type { PresenceManager } from '../channels/index.js';
import type { Member } from '../wire/index.js';
import type { RedisKeys } from './keys.js';
import type { RedisLink } from './link.js';
import type { ScriptSet } from './scripts.js';

/** Where a swept channel stands in Redis (epoch null: the channel does not exist). */
export interface SweptChannel {
  channel: string;
  epoch: string | null;
  offset: number;
}

/**
 * Presence in Redis: a hash per channel of client key -> `<owner>,<expiry>,<member JSON>`.
 * This node keeps its own members too and refreshes their expiry with each heartbeat, so
 * that a node that stops is forgotten: a live node's sweep finds its expired members and
 * announces their leaves. A client that reconnected to another node within the grace
 * period is taken over there (a new owner); this node's refresh and late leave leave it
 * alone. Joins, updates and leaves are announced on the channel's pub/sub.
 */
export class RedisPresence implements PresenceManager {
  /** This node's members: channel -> client key -> its member JSON and owning connection. */
  private readonly local = new Map<string, Map<string, { json: string; owner: string }>>();

  constructor(
    private readonly nodeId: string,
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly scripts: ScriptSet,
    private readonly nodeTtl: number,
    private readonly now: () => number,
  ) {}

  async join(channel: string, client: string, member: Member, owner = this.nodeId): Promise<void> {
    let members = this.local.get(channel);
    if (members === undefined) {
      members = new Map();
      this.local.set(channel, members);
    }
    // Kept here first: if Redis cannot be reached now, the heartbeat adds it when it is back.
    const json = JSON.stringify(member);
    members.set(client, { json, owner });
    await this.link.run(this.scripts.join, [this.keys.key(channel, 'presence')], [this.keys.pubsubName(channel), String(this.keyTtl()), '0', client, this.value(owner, json)]);
  }

  async leave(channel: string, client: string, owner?: string): Promise<void> {
    const members = this.local.get(channel);
    const entry = members?.get(client);
    if (members !== undefined && entry !== undefined && (owner === undefined || entry.owner === owner)) {
      members.delete(client);
      if (members.size === 0) this.local.delete(channel);
    }
    await this.announceLeave(channel, client, owner ?? '');
  }

  async members(channel: string, limit?: number): Promise<Member[]> {
    const reply = (await this.readMembers(channel, limit ?? -1)).slice(1) as string[];
    return reply.map((json) => JSON.parse(json) as Member);
  }

  async memberCount(channel: string): Promise<number> {
    return Number((await this.readMembers(channel, 0))[0]);
  }

  /** Refreshes the expiry of this node's members; ones Redis lost are added (and announced) again, ones taken over elsewhere are let go. */
  async refresh(): Promise<void> {
    await Promise.all(
      [...this.local].map(async ([channel, members]) => {
        const args = [this.keys.pubsubName(channel), String(this.keyTtl()), '1'];
        for (const [client, { json, owner }] of members) args.push(client, this.value(owner, json));
        const taken = (await this.link.run(this.scripts.join, [this.keys.key(channel, 'presence')], args)) as string[];
        for (const client of taken) members.delete(client);
        if (members.size === 0 && this.local.get(channel) === members) this.local.delete(channel);
      }),
    );
  }

  /**
   * Removes the expired members of `channels` (a stopped node's), announcing their leaves,
   * keeps the channels' meta alive for `channelExpiry` (the subscribed channels: their
   * epoch must outlive idle spells while anyone listens), and writes this node's subscriber
   * counts (`count(channel)`: the subs hash entry, kept `countTtl` ms). Answers where each
   * channel stands.
   */
  async sweep(channels: Iterable<string>, now: number, channelExpiry: number, count: (channel: string) => string, countTtl: number): Promise<SweptChannel[]> {
    return Promise.all(
      [...channels].map(async (channel) => {
        const keys = [this.keys.key(channel, 'meta'), this.keys.key(channel, 'presence'), this.keys.key(channel, 'subs')];
        const args = (): string[] => [String(now), this.keys.pubsubName(channel), String(channelExpiry), this.nodeId, count(channel), String(countTtl)];
        const [, epoch, offset] = (await this.link.run(this.scripts.sweep, keys, args)) as [number, string | null, number];
        return { channel, epoch: epoch ?? null, offset: Number(offset) };
      }),
    );
  }

  /** Leaves with every member of this node (a clean shutdown), and forgets them. */
  goodbyes(): Array<Promise<unknown>> {
    const leaves: Array<Promise<unknown>> = [];
    for (const [channel, members] of this.local) {
      for (const [client, { owner }] of members) leaves.push(this.announceLeave(channel, client, owner));
    }
    this.local.clear();
    return leaves;
  }

  clear(): void {
    this.local.clear();
  }

  private announceLeave(channel: string, client: string, owner: string): Promise<unknown> {
    return this.link.run(this.scripts.leave, [this.keys.key(channel, 'presence')], [this.keys.pubsubName(channel), client, owner]);
  }

  private readMembers(channel: string, limit: number): Promise<unknown[]> {
    return this.link.run(this.scripts.members, [this.keys.key(channel, 'presence')], [String(this.now()), String(limit)]) as Promise<unknown[]>;
  }

  /**
   * The presence hash outlives its members' expiry by a node TTL, so that a live node's
   * sweep finds the expired members and announces their leaves; it vanishes by itself
   * only when no node is left to refresh or sweep it.
   */
  private keyTtl(): number {
    return 2 * this.nodeTtl;
  }

  /** A presence hash value: `<owner>,<expiry>,<member JSON>` (a connection id holds no comma). */
  private value(owner: string, json: string): string {
    return `${owner},${this.now() + this.nodeTtl},${json}`;
  }
}
