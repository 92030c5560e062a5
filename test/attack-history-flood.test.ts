// Attack: `history` requests for ever-new channel names. Reading a channel made the memory
// engine create it (an epoch, a history, maps), and nothing limited the rate of history
// requests: two connections grew a server by gigabytes. Now a read creates nothing, and
// history has a rate limit of its own (`historyRate`), so a flood is answered rate_limited
// and, after `abuseLimit` strikes, closed with 1008.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertServed, attackFixture, describeReport, MiB, openChannels, RssSampler, startTarget } from './support/attack.js';

const ATTACKERS = 2;
const ROUNDS = 4;
const REQUESTS = 50_000;

const fixture = attackFixture(() => startTarget([], { nodeArgs: ['--max-old-space-size=512'] }));

interface Outcome {
  /** From the first request sent to the close. */
  ms: number;
  ok: number;
  limited: number;
  closed: number | null;
}

/** One connection sends REQUESTS history requests, each for a new name; resolves once all are answered or it is closed. */
async function flood(attacker: number, round: number): Promise<Outcome> {
  const ws = await openChannels(`${fixture.target.ws}/ws`);
  const outcome: Outcome = { ms: 0, ok: 0, limited: 0, closed: null };
  const started = Date.now();
  return new Promise((resolve) => {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { op: string; code?: string };
      if (message.op === 'ok') outcome.ok++;
      else if (message.code === 'rate_limited') outcome.limited++;
      if (outcome.ok + outcome.limited === REQUESTS) ws.close();
    });
    ws.on('close', (code) => {
      outcome.closed = outcome.ok + outcome.limited === REQUESTS ? null : code;
      outcome.ms = Date.now() - started;
      resolve(outcome);
    });
    for (let id = 1; id <= REQUESTS; id++) ws.send(`{"op":"history","id":${id},"ch":"probe:${attacker}:${round}:${id}"}`);
  });
}

test(`${ATTACKERS} connections × ${ROUNDS} rounds of ${REQUESTS} history requests for new names: rate limited, closed with 1008, RSS bounded, the neighbour served`, { timeout: 180_000 }, async () => {
  const peak = new RssSampler(fixture.target.pid);
  const outcomes: Outcome[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    outcomes.push(...(await Promise.all(Array.from({ length: ATTACKERS }, (_, i) => flood(i, round)))));
  }
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  process.stdout.write(
    `history-flood: baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; outcomes ${JSON.stringify(outcomes)}; neighbour ${describeReport(report)}\n`,
  );
  assert.ok(fixture.target.alive(), 'the server is still running');
  for (const outcome of outcomes) {
    assert.equal(outcome.closed, 1008, 'the flood was closed for abuse');
    // The burst, and what 20/s refills while the flood is read (a loaded machine reads slowly).
    assert.ok(outcome.ok <= 100 + 20 * (outcome.ms / 1000 + 1), `${outcome.ok} history requests were carried out in ${outcome.ms} ms`);
    assert.ok(outcome.limited >= 99, 'the rest were answered rate_limited until the close');
  }
  const growth = rssPeak - fixture.target.baseline;
  assert.ok(growth < 48 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB (under 48 MiB)`);
  assertServed(report);
});
