import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressKey, ConnectionsPerAddress } from './address-limit.js';

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
