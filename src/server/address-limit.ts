// What one client address may take of the server's connections: how many at once, so that
// it cannot take every place under `maxConnections` and starve everyone else, and how many
// new ones per second, so that reconnecting in a loop cannot keep the server busy.
import { isIPv6 } from 'node:net';
import { TokenBucket, type RateLimit } from '../channels/rate-limit.js';

/**
 * The key a client address counts under: an IPv4 address (also when written IPv4-mapped,
 * `::ffff:a.b.c.d`) as it is; an IPv6 address by its /64 prefix, since one host is usually
 * given a whole /64 and could otherwise open each connection from an address of its own.
 */
export function addressKey(address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!isIPv6(address)) return address;
  const zone = address.indexOf('%');
  const plain = zone === -1 ? address : address.slice(0, zone);
  const gap = plain.indexOf('::');
  let groups: string[];
  if (gap === -1) {
    groups = plain.split(':');
  } else {
    const head = plain.slice(0, gap) === '' ? [] : plain.slice(0, gap).split(':');
    const tail = plain.slice(gap + 2) === '' ? [] : plain.slice(gap + 2).split(':');
    groups = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  }
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Places per client address: {@link take} counts a connection in, its release function
 * counts it out. An address with no connection has no entry, so the map holds at most one
 * entry per open connection, whatever addresses come and go.
 */
export class ConnectionsPerAddress {
  private readonly open = new Map<string, number>();

  /** `max` connections per address key at once (0: no limit, nothing is counted). */
  constructor(readonly max: number) {}

  /** Counts a connection from `address` in, or returns null when the address already holds `max`. */
  take(address: string): (() => void) | null {
    if (this.max <= 0) return NOTHING_TO_RELEASE;
    const key = addressKey(address);
    const held = this.open.get(key) ?? 0;
    if (held >= this.max) return null;
    this.open.set(key, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = (this.open.get(key) ?? 1) - 1;
      if (now <= 0) this.open.delete(key);
      else this.open.set(key, now);
    };
  }

  /** Connections counted for `address` now. */
  held(address: string): number {
    return this.open.get(addressKey(address)) ?? 0;
  }

  /** Addresses with at least one connection. */
  get addresses(): number {
    return this.open.size;
  }
}

const NOTHING_TO_RELEASE = (): void => {};

/** Addresses whose connection rate is tracked at once: past it the least recently seen is forgotten. */
export const MAX_RATE_TRACKED_ADDRESSES = 100_000;

/**
 * New connections per second from one client address (a token bucket per address key), so
 * that a client reconnecting as fast as it can costs the server at most the rate's worth
 * of handshakes, hooks and first messages. An address is tracked only until its bucket is
 * full again (a full bucket is what an untracked address gets): each {@link take} forgets
 * up to two of the least recently seen addresses that are, so the map holds the addresses
 * seen within one refill time (burst ÷ rate), and never more than
 * {@link MAX_RATE_TRACKED_ADDRESSES}.
 */
export class ConnectionRatePerAddress {
  // Least recently seen first: a take moves its address to the end.
  private readonly buckets = new Map<string, TokenBucket>();

  /**
   * @param limit The rate and burst per address key; null: no limit, nothing is tracked.
   * @param now A clock in ms (tests move their own).
   */
  constructor(
    readonly limit: RateLimit | null,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  /** Takes a connection's token for `address`: false when it connects too fast. */
  take(address: string): boolean {
    const limit = this.limit;
    if (limit === null) return true;
    const key = addressKey(address);
    const now = this.now();
    const bucket = this.buckets.get(key) ?? new TokenBucket(limit, now);
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    const taken = bucket.take(now);
    this.forgetFull(now);
    return taken;
  }

  /** Addresses tracked now. */
  get addresses(): number {
    return this.buckets.size;
  }

  private forgetFull(now: number): void {
    for (let i = 0; i < 2; i++) {
      const oldest = this.buckets.entries().next();
      if (oldest.done === true) return;
      const [key, bucket] = oldest.value;
      if (!bucket.isFull(now) && this.buckets.size <= MAX_RATE_TRACKED_ADDRESSES) return;
      this.buckets.delete(key);
    }
  }
}
