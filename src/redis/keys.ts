import { createHash } from 'node:crypto';

/**
 * Where things live in Redis. Everything of a channel sits under one hash tag, `{channel}`,
 * so that it falls in one cluster slot and one script may touch it all: its meta hash
 * (epoch, offset), its stream of messages, its idempotency keys, its presence hash and its
 * nodes' subscriber counts; its pub/sub channel is the tag itself. The node bus's pub/sub
 * channels carry tags of their own (`bus:{NODE}`, `bus:{all}`): on a cluster each node's
 * commands go through the shard of its id, and only broadcasts through one shard.
 */
export class RedisKeys {
  constructor(private readonly prefix: string) {
    if (/[{}]/.test(prefix)) throw new RangeError('RedisEngine: the key prefix may not contain braces');
  }

  /** A key of the channel: `meta`, `log`, `presence`, `subs`, or an idempotency key's {@link idempotencyKey}. */
  key(channel: string, suffix: string): string {
    return `${this.prefix}{${tagged(channel)}}:${suffix}`;
  }

  pubsubName(channel: string): string {
    return `${this.prefix}{${tagged(channel)}}`;
  }

  /** The channel a pub/sub name stands for, or null for a name that is not one of ours. */
  channelOfPubsubName(name: string): string | null {
    const open = this.prefix.length;
    if (!name.startsWith(this.prefix) || name.charCodeAt(open) !== 123 /* { */ || !name.endsWith('}')) return null;
    const inner = name.slice(open + 1, -1);
    return inner.includes('%') ? inner.replace(/%([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))) : inner;
  }

  /** The pub/sub channel of one node's commands (the node bus). */
  nodeBus(nodeId: string): string {
    return `${this.prefix}bus:{${nodeId}}`;
  }

  /** The pub/sub channel of commands to every node. */
  allNodesBus(): string {
    return `${this.prefix}bus:{all}`;
  }
}

/** The key (under the channel) of an idempotency key: scoped to its publisher, hashed to a bounded length. */
export function idempotencyKey(key: string, publisher: string | undefined): string {
  return publisher === undefined ? `key:${key}` : `pkey:${sha1(`${publisher.length}:${publisher}:${key}`)}`;
}

export function sha1(text: string): string {
  return createHash('sha1').update(text).digest('base64url');
}

/** A channel name as it appears inside a key's hash tag: without braces (escaped, reversibly). */
function tagged(channel: string): string {
  return /[{}%]/.test(channel) ? channel.replace(/[{}%]/g, (c) => `%${c.charCodeAt(0).toString(16)}`) : channel;
}
