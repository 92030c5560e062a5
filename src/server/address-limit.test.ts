import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressKey, ConnectionRatePerAddress, ConnectionsPerAddress, MAX_RATE_TRACKED_ADDRESSES } from './address-limit.js';

test('addressKey: IPv4 as it is, IPv4-mapped as IPv4, IPv6 by its /64 however it is written', () => {
  assert.equal(addressKey('203.0.113.7'), '203.0.113.7');
  assert.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7');
  assert.equal(addressKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:0DB8:0001:0002::1'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('2001:db8::'), addressKey('2001:db8:0:0:ffff::'));
  assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
});

test('ConnectionsPerAddress: max places per address, given back once each, no entry for an address with none', () => {
  const limit = new ConnectionsPerAddress(2);
  const a1 = limit.take('198.51.100.1');
  const a2 = limit.take('::ffff:198.51.100.1');
  assert.ok(a1 !== null && a2 !== null);
  assert.equal(limit.take('198.51.100.1'), null, 'a third from the same address is refused');
  assert.ok(limit.take('198.51.100.2') !== null, 'another address has places of its own');
  // The same host's other IPv6 addresses share its /64.
  assert.ok(limit.take('2001:db8::1') !== null && limit.take('2001:db8::2') !== null);
  assert.equal(limit.take('2001:db8::3'), null);
  a1();
  a1(); // a second release of the same place gives nothing back
  assert.equal(limit.held('198.51.100.1'), 1);
  assert.ok(limit.take('198.51.100.1') !== null);
  assert.equal(limit.take('198.51.100.1'), null);
  assert.equal(limit.addresses, 3);
});

test('ConnectionsPerAddress: released to zero, an address leaves the map', () => {
  const limit = new ConnectionsPerAddress(5);
  const releases = Array.from({ length: 1000 }, (_, i) => limit.take(`10.0.${i >> 8}.${i & 255}`)!);
  assert.equal(limit.addresses, 1000);
  for (const release of releases) release();
  assert.equal(limit.addresses, 0);
});

test('ConnectionsPerAddress(0): no limit, nothing counted', () => {
  const limit = new ConnectionsPerAddress(0);
  for (let i = 0; i < 100; i++) assert.ok(limit.take('192.0.2.1') !== null);
  assert.equal(limit.addresses, 0);
});

/** A limiter whose clock only moves when the test says. */
function rateLimiter(perSecond: number, burst: number): { limit: ConnectionRatePerAddress; advance(ms: number): void } {
  let now = 0;
  return { limit: new ConnectionRatePerAddress({ perSecond, burst }, () => now), advance: (ms) => void (now += ms) };
}

function takes(limit: ConnectionRatePerAddress, address: string, times: number): number {
  let taken = 0;
  for (let i = 0; i < times; i++) if (limit.take(address)) taken++;
  return taken;
}

test('ConnectionRatePerAddress: the burst at once, then the rate; each address on its own, IPv6 by /64', () => {
  const { limit, advance } = rateLimiter(10, 30);
  assert.equal(takes(limit, '198.51.100.1', 50), 30, 'the burst');
  assert.equal(takes(limit, '::ffff:198.51.100.1', 5), 0, 'the same address, IPv4-mapped');
  assert.equal(takes(limit, '198.51.100.2', 50), 30, 'another address has a bucket of its own');
  advance(1000);
  assert.equal(takes(limit, '198.51.100.1', 50), 10, 'one second later: the rate');
  advance(250);
  assert.equal(takes(limit, '198.51.100.1', 50), 2, 'a quarter of a second: two and a half tokens, two whole');
  advance(50);
  assert.equal(takes(limit, '198.51.100.1', 50), 1, 'the half left and half a token more');
  assert.equal(takes(limit, '2001:db8::1', 20) + takes(limit, '2001:db8::2', 20), 30, 'one /64, one bucket');
  advance(60_000);
  assert.equal(takes(limit, '198.51.100.1', 50), 30, 'refilled to the burst, not past it');
});

test('ConnectionRatePerAddress: an address is forgotten once its bucket is full again', () => {
  const { limit, advance } = rateLimiter(10, 20);
  for (let i = 0; i < 1000; i++) limit.take(`10.0.${i >> 8}.${i & 255}`);
  assert.equal(limit.addresses, 1000, 'each used a token within the refill time');
  advance(50); // half a token back: not full yet
  limit.take('192.0.2.1');
  assert.equal(limit.addresses, 1001);
  advance(50);
  // Full again (20 - 1 + 1): each take forgets up to two of the oldest.
  for (let i = 0; i < 600; i++) limit.take('192.0.2.1');
  assert.equal(limit.addresses, 1, 'only the address that keeps connecting');
  assert.equal(takes(limit, '10.0.0.1', 25), 20, 'a forgotten address starts from a full bucket, as it would have');
});

test('ConnectionRatePerAddress: addresses tracked at once stay bounded, whatever their number', () => {
  const { limit } = rateLimiter(1, 1000);
  for (let i = 0; i < MAX_RATE_TRACKED_ADDRESSES + 5000; i++) limit.take(`2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`);
  assert.equal(limit.addresses, MAX_RATE_TRACKED_ADDRESSES);
});

test('ConnectionRatePerAddress(null): no limit, nothing tracked', () => {
  const limit = new ConnectionRatePerAddress(null);
  assert.equal(takes(limit, '192.0.2.1', 10_000), 10_000);
  assert.equal(limit.addresses, 0);
});
