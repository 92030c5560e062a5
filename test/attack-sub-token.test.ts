// Attack: `sub` requests carrying subscription tokens, as fast as a connection can send them,
// against `hotline serve --config` with a token namespace. What a token costs the server is
// bounded by its length (maxTokenLength, 8192 characters: longer is bad_request from the
// parser, before any check) and by the subscribe rate; refusals count towards the abuse
// limit, so a connection that keeps sending them is closed 1008. A neighbour (in the `*`
// namespace) is served throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { assertServed, attackFixture, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';
import { ChannelsClient } from './support/channels-client.js';

const dir = mkdtempSync(join(tmpdir(), 'hotline-attack-token-'));
const config = join(dir, 'hotline.json');
writeFileSync(config, JSON.stringify({ namespaces: { '*': { subscribe: 'anyone', publish: 'anyone' }, 'secret:*': { subscribe: 'token' } } }));
after(() => rmSync(dir, { recursive: true, force: true }));

const fixture = attackFixture(() => startTarget(['--config', config]));
const ATTACKERS = 2;
const REQUESTS = 250;
/** How long the attackers keep at it, reconnecting after each close (ms). */
const DURATION = 2_500;

test(`${ATTACKERS} attackers for ${DURATION} ms, each connection sending ${REQUESTS} subs with oversized and unverifiable tokens: refused, closed 1008, RSS bounded, the neighbour served`, { timeout: 60_000 }, async () => {
  const peak = new RssSampler(fixture.target.pid);
  const oversized = 'x'.repeat(8193);
  const unverifiable = 'y'.repeat(8192);
  const end = Date.now() + DURATION;
  const attack = async (a: number): Promise<{ closed: { code: number }; codes: Set<string>; errs: number; oks: number }> => {
    const client = await ChannelsClient.connect(`${fixture.target.ws}/ws`);
    for (let i = 0; i < REQUESTS; i++) {
      client.sendJson({ op: 'sub', id: i + 1, ch: `secret:${a}:${i}`, token: i % 2 === 0 ? oversized : unverifiable });
    }
    const closed = await client.closed;
    const errs = client.log.filter((m) => m.op === 'err');
    return { closed, codes: new Set(errs.map((m) => String(m.code))), errs: errs.length, oks: client.log.filter((m) => m.op === 'ok').length };
  };
  const outcomes = (
    await Promise.all(
      Array.from({ length: ATTACKERS }, async (_, a) => {
        const mine = [];
        do mine.push(await attack(a));
        while (Date.now() < end);
        return mine;
      }),
    )
  ).flat();
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  const growth = rssPeak - fixture.target.baseline;
  process.stdout.write(`sub tokens: baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; ${outcomes.length} connections, ${outcomes.reduce((n, o) => n + o.errs, 0)} err answers; neighbour ${describeReport(report)}\n`);
  for (const outcome of outcomes) {
    assert.equal(outcome.closed.code, 1008, 'closed for abuse');
    assert.equal(outcome.oks, 0, 'no subscription made');
    assert.ok(outcome.codes.has('bad_request'), 'oversized tokens: bad_request');
    assert.ok([...outcome.codes].every((code) => ['bad_request', 'unauthorized', 'rate_limited'].includes(code)), [...outcome.codes].join());
  }
  assert.ok(fixture.target.alive(), 'the server is still running');
  assert.ok(growth < 48 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB (under 48 MiB)`);
  assertServed(report);
});
