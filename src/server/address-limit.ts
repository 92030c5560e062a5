// How many WebSocket connections one client address holds at once, so that one client
// cannot take every place under `maxConnections` and starve everyone else.
import { isIPv6 } from 'node:net';

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
