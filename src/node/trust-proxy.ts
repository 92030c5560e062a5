// Which address a connection comes from when it reaches the server through proxies:
// `X-Forwarded-For` and `Forwarded` (RFC 7239) are believed only as far as `trustProxy`
// says, since anyone can send them. Named and shaped as Express's and Fastify's option.
import { BlockList, isIP } from 'node:net';

/**
 * Which proxies' forwarding headers to believe, as Express and Fastify take it:
 * - `false` (the default): none; the address is the peer's.
 * - `true`: every hop; the client is the first address in the header. Only behind a proxy
 *   that replaces the header rather than appending to it.
 * - a number: that many proxies in front of the server; 1 is a single load balancer, and
 *   the client is the address it appended.
 * - addresses, CIDRs (`10.0.0.0/8`) and the names `loopback`, `linklocal`, `uniquelocal`,
 *   as a list or one comma-separated string: the proxies you run. Hops from them are
 *   believed; the first address that is not one of them is the client.
 */
export type TrustProxy = boolean | number | string | readonly string[];

/** The client's address, from the peer's and the request's headers (lower-case names). */
export type ClientAddress = (peer: string, headers: ReadonlyMap<string, string>) => string;

/** The address ranges behind the names Express gives them. */
const NAMED: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** An IPv4-mapped IPv6 address as the IPv4 address it is (how dual-stack sockets report IPv4 peers). */
function plain(address: string): string {
  return MAPPED_V4.exec(address)?.[1] ?? address;
}

function trustedList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const raw of entries) {
    const entry = raw.trim();
    const named = NAMED[entry.toLowerCase()];
    if (named !== undefined) {
      for (const range of named) addRange(list, range);
      continue;
    }
    addRange(list, entry);
  }
  return list;
}

function addRange(list: BlockList, entry: string): void {
  const slash = entry.indexOf('/');
  const address = plain(slash === -1 ? entry : entry.slice(0, slash));
  const family = isIP(address);
  if (family === 0) throw new RangeError(`trustProxy: '${entry}' is not an IP address, a CIDR range or loopback/linklocal/uniquelocal`);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (slash === -1) {
    list.addAddress(address, type);
    return;
  }
  const bits = entry.slice(slash + 1);
  const prefix = Number(bits);
  if (!/^\d+$/.test(bits) || prefix > (family === 4 ? 32 : 128)) throw new RangeError(`trustProxy: '${entry}' has an invalid prefix length`);
  list.addSubnet(address, prefix, type);
}

/** Whether the hop at `index` (0 is the peer) that has `address` is a proxy to believe. */
type Trust = (address: string, index: number) => boolean;

function trustOf(option: TrustProxy): Trust | null {
  if (option === false) return null;
  if (option === true) return () => true;
  if (typeof option === 'number') {
    if (!Number.isInteger(option) || option < 0) throw new RangeError(`trustProxy: a number of hops must be a whole number, not ${option}`);
    return option === 0 ? null : (_address, index) => index < option;
  }
  const entries = typeof option === 'string' ? option.split(',') : option;
  if (entries.length === 0 || entries.some((e) => e.trim() === '')) throw new RangeError('trustProxy: an empty address in the list');
  const list = trustedList(entries);
  return (address) => {
    const bare = plain(address);
    const family = isIP(bare);
    return family !== 0 && list.check(bare, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** An address as a forwarding header writes it: the port, brackets and quotes taken off. */
function bareAddress(value: string): string {
  let text = value.trim();
  if (text.startsWith('"') && text.endsWith('"') && text.length >= 2) text = text.slice(1, -1).replace(/\\(.)/g, '$1');
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    return end === -1 ? text : text.slice(1, end);
  }
  // a.b.c.d:port (one colon: IPv6 has more)
  const colon = text.indexOf(':');
  if (colon !== -1 && colon === text.lastIndexOf(':')) return text.slice(0, colon);
  return text;
}

/** The `for=` values of a `Forwarded` header, first hop first (RFC 7239 §4, §6). */
export function forwardedFor(header: string): string[] {
  const hops: string[] = [];
  // Elements are separated by commas and pairs by semicolons, outside quoted strings.
  for (const element of header.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
    let found = '';
    for (const pair of element.match(/(?:[^;"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
      const eq = pair.indexOf('=');
      if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === 'for') found = bareAddress(pair.slice(eq + 1));
    }
    hops.push(found);
  }
  return hops;
}

/** The addresses of an `X-Forwarded-For` header, first hop first. */
export function xForwardedFor(header: string): string[] {
  return header.split(',').map(bareAddress);
}

/**
 * The client by one header: walks from the peer back through the hops the header lists,
 * for as long as each is a proxy to believe; a hop that is not an IP address (`unknown`,
 * an obfuscated name, garbage) ends the walk at the proxy that reported it.
 */
function walk(peer: string, hops: readonly string[], trust: Trust): string {
  let client = peer;
  for (let i = 0; i < hops.length; i++) {
    if (!trust(client, i)) break;
    const next = plain(hops[hops.length - 1 - i]!);
    if (isIP(next) === 0) break;
    client = next;
  }
  return client;
}

/**
 * Compiles `trustProxy` into the function that finds a connection's client address, or
 * null when no proxy is trusted (the address is the peer's).
 * @throws RangeError for an option that is not one of the forms above.
 */
export function compileTrustProxy(option: TrustProxy | undefined): ClientAddress | null {
  const trust = option === undefined ? null : trustOf(option);
  if (trust === null) return null;
  return (peer, headers) => {
    const xff = headers.get('x-forwarded-for');
    const forwarded = headers.get('forwarded');
    const byXff = xff === undefined ? null : walk(peer, xForwardedFor(xff), trust);
    const byForwarded = forwarded === undefined ? null : walk(peer, forwardedFor(forwarded), trust);
    // A proxy sets one of them; the other may be the client's own invention. Where they
    // disagree neither is believed.
    if (byXff !== null && byForwarded !== null) return byXff === byForwarded ? byXff : peer;
    return byXff ?? byForwarded ?? peer;
  };
}

/** Request headers as a {@link ClientAddress} reads them: repeated fields joined with `', '`. */
export function headerMap(headers: Readonly<Record<string, string | string[] | undefined>>): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) map.set(name, Array.isArray(value) ? value.join(', ') : value);
  return map;
}

/** Gives a request seen by an application's hook its `clientAddress` (see `UpgradeRequest`). */
export function setClientAddress(request: object, address: string): void {
  Object.defineProperty(request, 'clientAddress', { value: address, enumerable: true, configurable: true });
}
