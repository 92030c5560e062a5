import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileTrustProxy, forwardedFor, xForwardedFor, type TrustProxy } from './trust-proxy.js';

function clientOf(option: TrustProxy | undefined, peer: string, headers: Record<string, string>): string {
  const find = compileTrustProxy(option);
  return find === null ? peer : find(peer, new Map(Object.entries(headers)));
}

const PROXY = '10.0.0.2';

describe('trustProxy', () => {
  test('off (undefined, false, 0): a forged header changes nothing', () => {
    for (const option of [undefined, false, 0] as const) {
      assert.equal(compileTrustProxy(option), null);
      assert.equal(clientOf(option, '203.0.113.9', { 'x-forwarded-for': '1.2.3.4', forwarded: 'for=1.2.3.4' }), '203.0.113.9');
    }
  });

  test('true: the first address of the header', () => {
    assert.equal(clientOf(true, PROXY, { 'x-forwarded-for': '198.51.100.7, 10.0.0.1' }), '198.51.100.7');
    assert.equal(clientOf(true, PROXY, {}), PROXY);
  });

  test('a hop count: the address that many proxies back; a client-sent prefix is not believed', () => {
    // The client sent "X-Forwarded-For: 6.6.6.6"; the one proxy appended the real address.
    const headers = { 'x-forwarded-for': '6.6.6.6, 198.51.100.7' };
    assert.equal(clientOf(1, PROXY, headers), '198.51.100.7');
    assert.equal(clientOf(2, PROXY, headers), '6.6.6.6');
    // More hops than the header has: the first one.
    assert.equal(clientOf(5, PROXY, headers), '6.6.6.6');
  });

  test('a list: only a listed peer is believed, and the walk stops at the first unlisted hop', () => {
    const option = ['10.0.0.0/8', '192.0.2.1'];
    const headers = { 'x-forwarded-for': '6.6.6.6, 198.51.100.7, 10.1.2.3' };
    assert.equal(clientOf(option, PROXY, headers), '198.51.100.7');
    // From a peer that is not a proxy of ours, the header is the peer's own claim.
    assert.equal(clientOf(option, '203.0.113.9', headers), '203.0.113.9');
    assert.equal(clientOf('192.0.2.1', '192.0.2.1', { 'x-forwarded-for': '198.51.100.7' }), '198.51.100.7');
    assert.equal(clientOf('10.0.0.0/8, loopback', '127.0.0.1', { 'x-forwarded-for': '198.51.100.7, 10.9.9.9' }), '198.51.100.7');
  });

  test('names, IPv6, and IPv4-mapped peers of dual-stack sockets', () => {
    assert.equal(clientOf('loopback', '::ffff:127.0.0.1', { 'x-forwarded-for': '198.51.100.7' }), '198.51.100.7');
    assert.equal(clientOf('loopback', '::1', { 'x-forwarded-for': '2001:db8::7' }), '2001:db8::7');
    assert.equal(clientOf('uniquelocal', '172.20.0.5', { 'x-forwarded-for': '::ffff:198.51.100.7' }), '198.51.100.7');
    assert.equal(clientOf('linklocal', 'fe80::1', { 'x-forwarded-for': '198.51.100.7' }), '198.51.100.7');
    assert.equal(clientOf('fd00::/8', 'fd12::1', { 'x-forwarded-for': '198.51.100.7' }), '198.51.100.7');
    assert.equal(clientOf('loopback', '192.168.1.1', { 'x-forwarded-for': '198.51.100.7' }), '192.168.1.1');
  });

  test('ports are dropped; a hop that is not an address ends the walk at the proxy that reported it', () => {
    assert.equal(clientOf(1, PROXY, { 'x-forwarded-for': '198.51.100.7:4711' }), '198.51.100.7');
    assert.equal(clientOf(1, PROXY, { 'x-forwarded-for': '[2001:db8::7]:4711' }), '2001:db8::7');
    assert.equal(clientOf(true, PROXY, { 'x-forwarded-for': 'garbage, 198.51.100.7' }), '198.51.100.7');
    assert.equal(clientOf(1, PROXY, { 'x-forwarded-for': '' }), PROXY);
    assert.equal(clientOf(1, PROXY, { forwarded: 'for=unknown' }), PROXY);
  });

  test('Forwarded (RFC 7239): for= of each element, quoted, bracketed, with ports', () => {
    assert.deepEqual(forwardedFor('for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"'), ['192.0.2.60', '2001:db8:cafe::17']);
    assert.deepEqual(forwardedFor('For="198.51.100.7:80", proto=https;for=unknown'), ['198.51.100.7', 'unknown']);
    assert.deepEqual(forwardedFor('proto=https;host="a,b;c"'), ['']);
    assert.deepEqual(xForwardedFor(' 1.2.3.4 ,5.6.7.8:9'), ['1.2.3.4', '5.6.7.8']);
    assert.equal(clientOf(1, PROXY, { forwarded: 'for=6.6.6.6, for="198.51.100.7:1234"' }), '198.51.100.7');
  });

  test('both headers: believed when they agree, neither when they do not', () => {
    assert.equal(clientOf(1, PROXY, { 'x-forwarded-for': '198.51.100.7', forwarded: 'for=198.51.100.7' }), '198.51.100.7');
    // The proxy set X-Forwarded-For; the client made up a Forwarded to claim another address.
    assert.equal(clientOf(1, PROXY, { 'x-forwarded-for': '198.51.100.7', forwarded: 'for=6.6.6.6' }), PROXY);
  });

  test('bad options throw RangeError naming the option', () => {
    for (const option of ['not-an-address', '10.0.0.0/33', '10.0.0.0/x', '', ['1.2.3.4', ' '], -1, 1.5] as TrustProxy[]) {
      assert.throws(() => compileTrustProxy(option), (e: unknown) => e instanceof RangeError && e.message.startsWith('trustProxy: '), String(option));
    }
  });
});
