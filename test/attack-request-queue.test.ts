// Attack: requests sent faster than the server can carry them out, on a server whose
// canSubscribe hook is asynchronous (each history request waits for it). Requests of a
// connection run in order, so without a bound every request read waits in memory: the
// queue (and the RSS) grows with what the attacker sends, and draining it takes as long as
// the attacker likes. With the bound, the server stops reading the connection while
// maxPendingRequests are in flight: the attacker's writes stall in TCP instead, every
// request is still answered once, and the neighbour is served throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertServed, attackFixture, describeReport, MiB, openChannels, RssSampler } from './support/attack.js';
import { HubServer } from './support/hub-process.js';

const ATTACKERS = 2;
const REQUESTS = 60_000;

const fixture = attackFixture(() =>
  HubServer.start(
    {
      slowHook: true,
      // An application that allows fast reads: only the pending bound stands in the way.
      hub: { historyRate: { perSecond: 1e9, burst: 1e9 }, abuseLimit: 1e9 },
    },
    ['--max-old-space-size=512'],
  ),
);

/** Sends `count` history requests (ids 1..count) at once and resolves with how often each id was answered. */
async function flood(count: number): Promise<{ answers: Uint8Array; closed: number | null }> {
  const ws = await openChannels(`${fixture.target.ws}/ws`);
  const answers = new Uint8Array(count + 1);
  let answered = 0;
  let closed: number | null = null;
  return new Promise((resolve) => {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { op: string; id?: number };
      if ((message.op === 'ok' || message.op === 'err') && message.id !== undefined) {
        answers[message.id]!++;
        if (++answered === count) {
          ws.close();
          resolve({ answers, closed });
        }
      }
    });
    ws.on('close', (code) => {
      closed = code;
      resolve({ answers, closed });
    });
    for (let id = 1; id <= count; id++) ws.send(`{"op":"history","id":${id},"ch":"flood","limit":1}`);
  });
}

test(`${ATTACKERS} connections flood ${REQUESTS} history requests behind an asynchronous hook: every one answered once, RSS bounded, the neighbour served`, { timeout: 180_000 }, async () => {
  const peak = new RssSampler(fixture.target.pid);
  const results = await Promise.all(Array.from({ length: ATTACKERS }, () => flood(REQUESTS)));
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  const stats = await fixture.target.stats();
  process.stdout.write(
    `request-queue: baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB, read pauses ${stats.pauses}; neighbour ${describeReport(report)}\n`,
  );
  assert.ok(fixture.target.alive(), 'the server is still running');
  for (const { answers, closed } of results) {
    assert.equal(closed, null, 'the attacker was not closed');
    const unanswered = answers.subarray(1).findIndex((n) => n !== 1);
    assert.equal(unanswered, -1, `request ${unanswered + 1} was answered ${answers[unanswered + 1]} times`);
  }
  assert.ok((stats.pauses ?? 0) > 0, 'the server paused reading the attackers');
  const growth = rssPeak - fixture.target.baseline;
  assert.ok(growth < 48 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB (under 48 MiB)`);
  assertServed(report);
});
