// Attack: one client takes every place. Under --max-connections alone, a single address could
// open them all and every other client would get 503: the server starved by one client that
// never authenticated. --max-connections-per-address bounds what one address (one IPv6 /64;
// behind --trust-proxy, the address the proxies forwarded) holds at once: past it 429, while
// other clients still get in and the neighbour already connected is served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { assertServed, attackFixture, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';
import { upgradeRequest, type UpgradeAnswer, type UpgradeOptions } from './support/raw-upgrade.js';

const MAX_CONNECTIONS = 120;
const PER_ADDRESS = 40;
/** More than the server holds at all: without a per-address bound this one client fills it. */
const FLOOD = 300;
const IN_FLIGHT = 50;
const ATTACKER = '127.0.0.2';
// Set HOTLINE_ATTACK_UNLIMITED=1 to measure the same flood with --max-connections-per-address 0.
const LIMIT = process.env.HOTLINE_ATTACK_UNLIMITED === '1' ? 0 : PER_ADDRESS;

const fixture = attackFixture(() =>
  startTarget(['--max-connections', String(MAX_CONNECTIONS), '--max-connections-per-address', String(LIMIT), '--trust-proxy', '127.0.0.5']),
);

async function connectionsOpen(): Promise<number> {
  const { text } = await fixture.target.get('/metrics');
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith('hotline_connections{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

function upgrade(path: string, options: UpgradeOptions): Promise<UpgradeAnswer> {
  return upgradeRequest(fixture.target.port, path, path === '/ws' ? { ...options, headers: [...(options.headers ?? []), 'Sec-WebSocket-Protocol: hotline.v1'] } : options);
}

/** `count` upgrades, `IN_FLIGHT` at a time, alternating /echo and /ws: the accepted sockets and the refusals. */
async function flood(count: number, options: UpgradeOptions): Promise<{ accepted: Socket[]; refused: UpgradeAnswer[] }> {
  const accepted: Socket[] = [];
  const refused: UpgradeAnswer[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = next++;
      const answer = await upgrade(n % 2 === 0 ? '/echo' : '/ws', options);
      if (answer.status === 101) accepted.push(answer.socket);
      else {
        refused.push(answer);
        answer.socket.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return { accepted, refused };
}

function assertTooManyFromAddress(refused: readonly UpgradeAnswer[]): void {
  for (const { response, body } of refused) {
    assert.match(response, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(response, /\r\nRetry-After: 5\r\n/);
    assert.equal(body, 'too many connections from this address');
  }
}

test(`one address opens ${FLOOD} connections against --max-connections ${MAX_CONNECTIONS}: it holds ${PER_ADDRESS}, others still get in`, { timeout: 60_000 }, async () => {
  const peak = new RssSampler(fixture.target.pid);
  const { accepted, refused } = await flood(FLOOD, { localAddress: ATTACKER });
  // Another client, from an address of its own, while the attacker holds all it can.
  const newcomer = await upgrade('/ws', { localAddress: '127.0.0.3' });
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  process.stdout.write(
    `per address (limit ${LIMIT}): attacker ${accepted.length} accepted, ${refused.length} refused; newcomer ${newcomer.status}; ` +
      `RSS +${((rssPeak - fixture.target.baseline) / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
  );
  assert.ok(fixture.target.alive(), 'the server is still running');
  assert.equal(accepted.length, PER_ADDRESS, 'the attacking address holds exactly its share');
  assert.equal(refused.length, FLOOD - PER_ADDRESS);
  assertTooManyFromAddress(refused);
  assert.equal(newcomer.status, 101, `another client gets in: ${newcomer.response.split('\r\n')[0]}`);
  assertServed(report);
  assert.ok(rssPeak - fixture.target.baseline < 32 * MiB, 'RSS stays small');

  // Its places come back once its connections close.
  newcomer.socket.destroy();
  for (const socket of accepted) socket.destroy();
  while ((await connectionsOpen()) > 2) await new Promise((resolve) => setImmediate(resolve));
  const again = await upgrade('/echo', { localAddress: ATTACKER });
  assert.equal(again.status, 101);
  again.socket.destroy();
});

test('behind a trusted proxy each forwarded client address counts on its own; the proxy itself is not one client', { timeout: 60_000 }, async () => {
  // 127.0.0.5 is the trusted proxy: everything arrives from it, for many clients.
  const viaProxy = (client: string): UpgradeOptions => ({ localAddress: '127.0.0.5', headers: [`X-Forwarded-For: ${client}`] });
  const first = await flood(PER_ADDRESS + 10, viaProxy('203.0.113.7'));
  assert.equal(first.accepted.length, PER_ADDRESS, 'one forwarded client holds its share');
  assertTooManyFromAddress(first.refused);
  const other = await flood(5, viaProxy('203.0.113.8'));
  assert.equal(other.accepted.length, 5, 'another client behind the same proxy gets places of its own');
  // An untrusted peer's X-Forwarded-For is not believed: it counts as its own address.
  const spoofer = await flood(PER_ADDRESS + 5, { localAddress: '127.0.0.6', headers: ['X-Forwarded-For: 198.51.100.1'] });
  assert.equal(spoofer.accepted.length, PER_ADDRESS, 'claiming other addresses does not buy more places');
  for (const socket of [...first.accepted, ...other.accepted, ...spoofer.accepted]) socket.destroy();
});
