// Attack: presence state as a flood. Attackers subscribed to a channel send `state` as fast
// as their sockets take it, or states far past maxPresenceStateLength (1 KiB). A state
// costs a publish token, so a flood is answered `rate_limited` past the publish burst and
// closed with 1008 after abuseLimit strikes; an oversize state is answered `too_large` and
// reaches no one. The watcher on the channel gets at most the updates the rate allows, the
// server's RSS stays bounded, and the neighbour beside it is served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { WebSocket } from 'ws';
import { asAttacker, assertServed, attackFixture, describeReport, MiB, openChannels, RssSampler, startTarget } from './support/attack.js';
import { waitFor } from './support/wait.js';

const ATTACKERS = 8;
/** Requests each attacker sends, at most: past the abuse limit the server has closed it long before. */
const FLOOD = 1500;
/** The server's publish rate (the default 50/s, burst 100): what an attacker may spend. */
const BURST = 100;
const RATE = 50;

const fixture = attackFixture(() => startTarget([], { nodeArgs: ['--max-old-space-size=256'] }));

interface Peer {
  ws: WebSocket;
  received: Array<Record<string, unknown>>;
  closeCode: Promise<number>;
}

async function peer(channel: string): Promise<Peer> {
  const ws = await openChannels(`${fixture.target.ws}/ws`);
  const received: Array<Record<string, unknown>> = [];
  ws.on('message', (data: Buffer) => received.push(JSON.parse(data.toString()) as Record<string, unknown>));
  const closeCode = once(ws, 'close').then(([code]) => code as number);
  ws.send(JSON.stringify({ op: 'sub', id: 1, ch: channel }));
  await waitFor(() => received.some((m) => m['id'] === 1), 'the sub answer');
  return { ws, received, closeCode };
}

/** Sends `count` frames made by `frame(i)`, waiting for the socket to drain now and then; stops once it closed. */
async function flood(ws: WebSocket, count: number, frame: (i: number) => string): Promise<number> {
  let sent = 0;
  for (; sent < count && ws.readyState === ws.OPEN; sent++) {
    ws.send(frame(sent));
    if (ws.bufferedAmount > 256 * 1024) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return sent;
}

test(`${ATTACKERS} attackers flood presence state: rate limited, closed 1008, the watcher gets at most the burst; the neighbour served`, { timeout: 60_000 }, async () => {
  const channel = 'attack:state-flood';
  const watcher = await peer(channel);
  const attackers = await Promise.all(Array.from({ length: ATTACKERS }, () => peer(channel)));
  const peak = new RssSampler(fixture.target.pid);
  const cursor = 'c'.repeat(900);
  const started = performance.now();
  const codes = await asAttacker(async () => {
    await Promise.all(attackers.map(({ ws }) => flood(ws, FLOOD, (i) => JSON.stringify({ op: 'state', id: 10 + i, ch: channel, state: { cursor, i } }))));
    return Promise.all(attackers.map((a) => a.closeCode));
  });
  // What the bucket may have refilled while the flood lasted (a busy machine stretches it).
  const allowed = BURST + Math.ceil((RATE * (performance.now() - started)) / 1000) + 1;
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  assert.deepEqual(codes, Array(ATTACKERS).fill(1008), 'each attacker closed for sustained abuse');
  for (const attacker of attackers) {
    const oks = attacker.received.filter((m) => m['op'] === 'ok' && Number(m['id']) >= 10).length;
    const limited = attacker.received.filter((m) => m['op'] === 'err' && m['code'] === 'rate_limited').length;
    assert.ok(oks <= allowed, `at most the burst and what the rate refilled meanwhile was taken (${oks}, at most ${allowed})`);
    assert.ok(limited >= 100 - 1, `the rest answered rate_limited until the abuse close (${limited})`);
  }
  // The watcher stays subscribed and sees only the states that were taken.
  const ping = JSON.stringify({ op: 'ping', id: 99 });
  watcher.ws.send(ping);
  await waitFor(() => watcher.received.some((m) => m['op'] === 'pong'), 'the watcher is still served');
  const updates = watcher.received.filter((m) => m['op'] === 'update').length;
  assert.ok(updates <= ATTACKERS * allowed, `updates at the watcher bounded by the attackers' rate (${updates})`);
  assert.ok(fixture.target.alive(), 'the server is still running');
  const growth = rssPeak - fixture.target.baseline;
  process.stdout.write(
    `state flood: ${updates} updates to the watcher; RSS baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
  );
  assert.ok(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB (under 64 MiB)`);
  assertServed(report);
  watcher.ws.close();
});

test('oversize states (20 KiB each, limit 1 KiB) within the publish burst: every one answered too_large, none reaches the watcher; the neighbour served', { timeout: 60_000 }, async () => {
  const channel = 'attack:state-size';
  const watcher = await peer(channel);
  const attackers = await Promise.all(Array.from({ length: ATTACKERS }, () => peer(channel)));
  const peak = new RssSampler(fixture.target.pid);
  const big = 'x'.repeat(20 * 1024);
  // Within each attacker's burst: each one is refused for its size (past it, the flood test's rate applies).
  const COUNT = 80;
  await asAttacker(async () => {
    await Promise.all(attackers.map(({ ws }) => flood(ws, COUNT, (i) => JSON.stringify({ op: 'state', id: 10 + i, ch: channel, state: { big, i } }))));
    for (const attacker of attackers) {
      await waitFor(() => attacker.received.filter((m) => m['code'] === 'too_large').length === COUNT, 'every oversize state answered too_large', 30_000);
    }
  });
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  const attacker = attackers[0]!;
  const refusal = attacker.received.find((m) => m['code'] === 'too_large')!;
  assert.match(String(refusal['message']), /the limit is 1024/);
  for (const { received } of attackers) assert.equal(received.filter((m) => m['op'] === 'ok' && Number(m['id']) >= 10).length, 0);
  assert.equal(watcher.received.filter((m) => m['op'] === 'update').length, 0, 'no oversize state reached anyone');
  // A small state still goes through for the same connection: it was refused, not closed.
  attacker.ws.send(JSON.stringify({ op: 'state', id: 5, ch: channel, state: { ok: true } }));
  await waitFor(() => watcher.received.some((m) => m['op'] === 'update'), 'a state within the limit reaches the watcher');
  assert.ok(fixture.target.alive(), 'the server is still running');
  const growth = rssPeak - fixture.target.baseline;
  process.stdout.write(`oversize states: ${ATTACKERS * COUNT} × 20 KiB refused; RSS peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`);
  assert.ok(growth < 96 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB (under 96 MiB)`);
  assertServed(report, { count: 3 });
  for (const { ws } of attackers) ws.close();
  watcher.ws.close();
});
