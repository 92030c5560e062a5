// The attack suites' witness on its own: the neighbour beside a real `hotline serve`. Its
// report waits for the round trips asked of it, so that "the neighbour served" does not
// depend on how fast the machine ran an attack; and a server that stops answering makes
// assertServed fail, so a starved neighbour cannot pass.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertServed, Neighbour, startTarget, type AttackTarget } from './support/attack.js';

let target: AttackTarget;
let neighbour: Neighbour;
before(async () => {
  target = await startTarget();
  // A short round-trip timeout, so that a stopped server shows within the test.
  neighbour = await Neighbour.start(target.ws, { timeout: 500 });
});
after(async () => {
  await neighbour.stop();
  await target.stop();
});

test('a report asked for at once waits for the round trips of each kind it is asked', async () => {
  await neighbour.forget();
  const report = await neighbour.report(12);
  assert.deepEqual(report.failures, []);
  assert.ok(report.echo.count >= 12, `${report.echo.count} echo round trips`);
  assert.ok(report.channel.count >= 12, `${report.channel.count} channel round trips`);
  assertServed(report);
});

test('a server that stops answering: the report comes with the time-outs, and assertServed fails', async () => {
  await neighbour.forget();
  process.kill(target.pid, 'SIGSTOP');
  let report;
  try {
    report = await neighbour.report();
  } finally {
    process.kill(target.pid, 'SIGCONT');
  }
  assert.match(report.failures.join('\n'), /no answer within 500 ms/);
  assert.throws(() => assertServed(report), /the neighbour saw no failure/);
  // Served again once the server runs: the neighbour's connections outlived the stop.
  await neighbour.forget();
  assertServed(await neighbour.report());
});
