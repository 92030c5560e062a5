// Attack: publishing within every rate limit to ever-new channels. Each channel keeps its
// history (100 messages, 5 minutes) on its own, so across channels the memory engine held
// everything published in the last 5 minutes: 8 connections publishing 60 KiB at 45/s grew
// a server by ~26 MiB a second until it died. The engine's total (maxHistoryBytes, 64 MiB)
// and its channel count (maxChannels) bound it: the oldest history goes first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertServed, attackFixture, describeReport, MiB, openChannels, RssSampler, startTarget } from './support/attack.js';

const ATTACKERS = 8;
const PER_SECOND = 45;
const SECONDS = 12;
const DATA = 'x'.repeat(60 * 1024 - 2);

const fixture = attackFixture(() => startTarget([], { nodeArgs: ['--max-old-space-size=512'] }));

/** Publishes PER_SECOND times a second for SECONDS, each to a new channel; resolves with the answers' codes. */
async function publishToNewChannels(attacker: number): Promise<Map<string, number>> {
  const ws = await openChannels(`${fixture.target.ws}/ws`);
  const total = PER_SECOND * SECONDS;
  const codes = new Map<string, number>();
  let answered = 0;
  const done = new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { op: string; code?: string };
      const code = message.op === 'ok' ? 'ok' : (message.code ?? message.op);
      codes.set(code, (codes.get(code) ?? 0) + 1);
      if (++answered === total) resolve();
    });
    ws.on('close', (code) => reject(new Error(`attacker ${attacker} closed with ${code} after ${answered} answers`)));
  });
  const started = Date.now();
  for (let n = 1; n <= total; n++) {
    // Paced from the start, so a slow send does not make the next ones faster than the rate.
    const due = started + (n * 1000) / PER_SECOND;
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    ws.send(`{"op":"pub","id":${n},"ch":"flood:${attacker}:${n}","data":"${DATA}"}`);
  }
  await done;
  ws.close();
  return codes;
}

test(`${ATTACKERS} connections publish 60 KiB at ${PER_SECOND}/s to new channels for ${SECONDS} s: RSS bounded, the neighbour served`, { timeout: 120_000 }, async () => {
  const peak = new RssSampler(fixture.target.pid);
  const results = await Promise.all(Array.from({ length: ATTACKERS }, (_, i) => publishToNewChannels(i)));
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  process.stdout.write(
    `history-retention: baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; answers ${JSON.stringify(results.map((r) => Object.fromEntries(r)))}; neighbour ${describeReport(report)}\n`,
  );
  assert.ok(fixture.target.alive(), 'the server is still running');
  for (const codes of results) {
    // A server that falls behind (a loaded machine) reads a backlog later than it was sent,
    // and its buckets take tokens when they process: a few may be answered rate_limited.
    assert.deepEqual([...codes.keys()].filter((code) => code !== 'ok' && code !== 'rate_limited'), [], 'no other answer');
    assert.ok((codes.get('ok') ?? 0) >= 0.9 * PER_SECOND * SECONDS, `${codes.get('ok')} publishes carried out`);
  }
  // 8 × 45/s × 12 s × 60 KiB = 253 MiB published (it grew the server by ~26 MiB/s); the
  // engine keeps 64 MiB of it, and V8 lets ~20 MB/s of parsed requests pile up a while
  // before it collects them: the RSS levels off near +140 MiB (the same after 16 s).
  const growth = rssPeak - fixture.target.baseline;
  assert.ok(growth < 176 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB (under 176 MiB)`);
  assertServed(report);
});
