// Attack: one client reconnects in a loop, and on each connection sends what costs the most
// before the server closes it: a compressed ping that inflates past /ws's 256 KiB limit
// (1009). Each connection's own bounds hold (inflating stops at the limit), and
// --max-connections-per-address bounds how many it holds at once, but not how fast it makes
// new ones. --connection-rate-per-address bounds that: past the burst, its upgrades are
// answered 429 (Retry-After: 1) at the rate's pace, while other addresses connect as before
// and the neighbour already connected is served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { constants as zlib, deflateRawSync } from 'node:zlib';
import { assertServed, asAttacker, attackFixture, clientFrame, closeCodeIn, cpuMs, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';
import { upgradeRequest, type UpgradeAnswer } from './support/raw-upgrade.js';

const RATE = 20;
const BURST = 40;
/** Upgrades the attacker tries at most, and for how long: the loop stops at whichever comes first. */
const ATTEMPTS = 4000;
const ATTACK_MS = 3000;
const IN_FLIGHT = 16;
const ATTACKER = '127.0.0.2';
// Set HOTLINE_ATTACK_UNLIMITED=1 to measure the same loop with --connection-rate-per-address 0.
const UNLIMITED = process.env.HOTLINE_ATTACK_UNLIMITED === '1';

const fixture = attackFixture(() => startTarget(['--connection-rate-per-address', UNLIMITED ? '0' : `${RATE}:${BURST}`]));

/** A hotline.v1 ping, padded to 1 MiB, compressed to ~1 KiB as permessage-deflate sends it. */
const BOMB = ((): Buffer => {
  const head = '{"op":"ping","id":1,"pad":"';
  const text = head + 'a'.repeat(MiB - head.length - 2) + '"}';
  const deflated = deflateRawSync(Buffer.from(text), { finishFlush: zlib.Z_SYNC_FLUSH });
  return clientFrame(0x1, deflated.subarray(0, deflated.length - 4), true, true);
})();

function upgrade(localAddress: string): Promise<UpgradeAnswer> {
  return upgradeRequest(fixture.target.port, '/ws', { localAddress, headers: ['Sec-WebSocket-Protocol: hotline.v1'] });
}

/** Upgrades with permessage-deflate, sends {@link BOMB}, and resolves once the server closed: its close code. */
function bombard(localAddress: string): Promise<UpgradeAnswer & { code: number | null }> {
  let sent = false;
  return upgradeRequest(fixture.target.port, '/ws', {
    localAddress,
    headers: ['Sec-WebSocket-Protocol: hotline.v1', 'Sec-WebSocket-Extensions: permessage-deflate'],
    afterUpgrade: (socket) => {
      if (!sent) socket.write(BOMB);
      sent = true;
      return false; // done when the server closes
    },
  }).then((answer) => ({ ...answer, code: answer.status === 101 ? closeCodeIn(Buffer.from(answer.response.slice(answer.response.indexOf('\r\n\r\n') + 4), 'latin1')) : null }));
}

/**
 * Reconnects from `ATTACKER` in a loop, `IN_FLIGHT` at a time, sending {@link BOMB} on each
 * accepted connection. `refusedOnce` is called at its first refusal.
 */
async function reconnectLoop(refusedOnce: () => void): Promise<{ accepted: number; refused: UpgradeAnswer[]; codes: Set<number | null>; elapsedMs: number }> {
  let accepted = 0;
  const codes = new Set<number | null>();
  const refused: UpgradeAnswer[] = [];
  let attempts = 0;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (attempts < ATTEMPTS && performance.now() - start < ATTACK_MS) {
      attempts++;
      const answer = await bombard(ATTACKER);
      answer.socket.destroy();
      if (answer.status === 101) {
        accepted++;
        codes.add(answer.code);
      } else if (refused.push(answer) === 1) refusedOnce();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return { accepted, refused, codes, elapsedMs: performance.now() - start };
}

test(`one address reconnecting in a loop gets ${BURST} connections, then ${RATE} a second; others connect as before`, { timeout: 60_000 }, async () => {
  const { pid } = fixture.target;
  const peak = new RssSampler(pid);
  const cpuBefore = cpuMs(pid);
  // Another client, from an address of its own, once the attacker is being refused (or
  // the loop is over, with no limit).
  let refusing!: () => void;
  const attackerRefused = new Promise<void>((resolve) => (refusing = resolve));
  const [{ accepted, refused, codes, elapsedMs }, newcomer] = await asAttacker(() =>
    Promise.all([
      reconnectLoop(refusing).finally(refusing),
      attackerRefused.then(() => upgrade('127.0.0.3')),
    ]),
  );
  const cpu = (cpuMs(pid) - cpuBefore) / elapsedMs;
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  process.stdout.write(
    `connection rate (${UNLIMITED ? 'no limit' : `${RATE}:${BURST}`}): attacker ${accepted} accepted, ${refused.length} refused in ${elapsedMs.toFixed(0)} ms ` +
      `(${((accepted / elapsedMs) * 1000).toFixed(0)} accepted/s); server CPU ${(cpu * 100).toFixed(0)}%; newcomer ${newcomer.status}; ` +
      `RSS +${((rssPeak - fixture.target.baseline) / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
  );
  newcomer.socket.destroy();
  assert.ok(fixture.target.alive(), 'the server is still running');
  assert.equal(newcomer.status, 101, `another address connects: ${newcomer.response.split('\r\n')[0]}`);
  assertServed(report);
  assert.deepEqual([...codes], [1009], 'every accepted connection closed with 1009, its ping never parsed');
  if (UNLIMITED) return;
  // The server's clock starts no earlier than the first attempt: never more than the burst plus the rate over the loop.
  assert.ok(accepted >= BURST, `the burst is served at once (${accepted} accepted)`);
  assert.ok(accepted <= BURST + Math.ceil((RATE * elapsedMs) / 1000), `${accepted} accepted in ${elapsedMs.toFixed(0)} ms: at most ${BURST} + ${RATE}/s`);
  assert.ok(refused.length > 0);
  for (const { response, body } of refused) {
    assert.match(response, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(response, /\r\nRetry-After: 1\r\n/);
    assert.equal(body, 'connecting too fast from this address');
  }
  const { text } = await fixture.target.get('/metrics');
  let rejected = 0;
  for (const line of text.split('\n')) if (line.startsWith('hotline_upgrades_rejected_total{')) rejected += Number(line.slice(line.lastIndexOf(' ') + 1));
  assert.equal(rejected, refused.length, 'every refusal is counted in hotline_upgrades_rejected_total');

  // A token comes back every 1/RATE s: the address connects again once one has.
  let again = await upgrade(ATTACKER);
  for (let tries = 0; again.status === 429 && tries < 1000; tries++) {
    again.socket.destroy();
    again = await upgrade(ATTACKER);
  }
  again.socket.destroy();
  assert.equal(again.status, 101, 'the address is served again at the rate');
});

test('an upgrade refused for the places its address holds takes none of its rate', { timeout: 60_000 }, async () => {
  // Two places and three tokens, refilled one a second: the refusals below must not spend the third.
  const target = await startTarget(['--max-connections-per-address', '2', '--connection-rate-per-address', '1:3']);
  const connect = (): Promise<UpgradeAnswer> => upgradeRequest(target.port, '/echo', { localAddress: ATTACKER });
  try {
    const held = [await connect(), await connect()];
    assert.deepEqual(held.map((answer) => answer.status), [101, 101]);
    for (let i = 0; i < 10; i++) {
      const refused = await connect();
      refused.socket.destroy();
      assert.equal(refused.status, 429);
      assert.equal(refused.body, 'too many connections from this address');
    }
    // One place free again: the third token is still there.
    held[0]!.socket.destroy();
    let again = await connect();
    for (let tries = 0; again.status === 429 && again.body === 'too many connections from this address' && tries < 1000; tries++) {
      again.socket.destroy();
      again = await connect();
    }
    assert.equal(again.status, 101, `${again.status} ${again.body}`);
    again.socket.destroy();
    held[1]!.socket.destroy();
  } finally {
    await target.stop();
  }
});
