import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { banner, MEMORY_ENGINE, type BannerInput } from './banner.js';

const LO: NetworkInterfaceInfo[] = [
  { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
  { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
];
const ETH: NetworkInterfaceInfo[] = [
  { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
  { address: '192.168.1.20', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '192.168.1.20/24' },
];
const V6_ONLY: NetworkInterfaceInfo[] = [
  { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
  { address: '2001:db8::5', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: '2001:db8::5/64', scopeid: 0 },
];

function input(host: string, engine = MEMORY_ENGINE): BannerInput {
  return {
    host,
    port: 8080,
    secure: false,
    engine,
    inspector: { access: 'open', turnedOff: false },
    metrics: { access: 'secret', turnedOff: false },
  };
}

test('on loopback: the URLs as bound, and the engine', () => {
  assert.equal(
    banner(input('127.0.0.1'), { lo: LO, eth0: ETH }),
    'hotline listening on http://127.0.0.1:8080/\n' +
      '  echo       ws://127.0.0.1:8080/echo\n' +
      '  channels   ws://127.0.0.1:8080/ws\n' +
      '  engine     memory: channels, history and presence live in this process and are lost on restart (--redis shares them)\n' +
      '  demos      http://127.0.0.1:8080/demo/echo  http://127.0.0.1:8080/demo/chat\n' +
      '  inspect    http://127.0.0.1:8080/inspect\n' +
      '  metrics    http://127.0.0.1:8080/metrics (admin secret required)\n',
  );
});

test('on 0.0.0.0: the address other machines reach, and 127.0.0.1 for this one; never 0.0.0.0 to open', () => {
  const text = banner({ ...input('0.0.0.0', 'redis redis://:***@10.0.0.9:6379'), secure: true }, { lo: LO, eth0: ETH });
  const lines = text.split('\n');
  assert.equal(lines[0], 'hotline listening on https://0.0.0.0:8080/ (every interface)');
  assert.equal(lines[1], '  open       https://192.168.1.20:8080/ from other machines, https://127.0.0.1:8080/ from this one');
  assert.equal(lines[2], '  echo       wss://192.168.1.20:8080/echo');
  assert.equal(lines[4], '  engine     redis redis://:***@10.0.0.9:6379');
  assert.equal(text.split('0.0.0.0').length, 2, 'only the first line names 0.0.0.0');
});

test('on 0.0.0.0 with no other interface: 127.0.0.1, saying so', () => {
  const lines = banner(input('0.0.0.0'), { lo: LO }).split('\n');
  assert.equal(lines[1], '  open       http://127.0.0.1:8080/ (no address beyond this machine was found)');
  assert.equal(lines[2], '  echo       ws://127.0.0.1:8080/echo');
});

test('on :: : IPv4 first (dual stack), else a global IPv6 address, never a link-local one', () => {
  assert.match(banner(input('::'), { lo: LO, eth0: ETH }), /^hotline listening on http:\/\/\[::\]:8080\/ \(every interface\)\n {2}open {7}http:\/\/192\.168\.1\.20:8080\/ /);
  assert.match(banner(input('::'), { lo: LO, eth0: V6_ONLY }), /\n {2}open {7}http:\/\/\[2001:db8::5\]:8080\/ from other machines, http:\/\/\[::1\]:8080\/ from this one\n/);
  assert.match(banner(input('0.0.0.0'), { lo: LO, eth0: V6_ONLY }), /\n {2}open {7}http:\/\/127\.0\.0\.1:8080\/ \(no address/);
});
