// Attack: connection tokens as a lever on the server's work. Every upgrade with a token costs
// a signature check (tens of µs for RS256), and with a JWKS URL a token naming a key the
// server does not hold could make it fetch the key set again: a flood of tokens with random
// `kid`s would become a flood of requests to the identity provider, and a key-set endpoint
// that hangs would hold every upgrade waiting on it. Bounds: at most one JWKS fetch per
// `jwksCooldown` (failed fetches count too), no upgrade waits past `jwksTimeout`, a token
// longer than 8192 characters is refused before it is decoded (the request head is capped at
// 16 KiB by node:http). The neighbour beside is served throughout.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { exportJWK } from 'jose';
import { assertServed, attackFixture, describeReport, MiB, RssSampler } from './support/attack.js';
import { ChannelsClient } from './support/channels-client.js';
import { startScriptTarget } from './support/limits-target.js';
import { upgradeRequest } from './support/raw-upgrade.js';
import { nowSeconds, signWith } from './support/tokens.js';
import { waitFor } from './support/wait.js';

const APP_SERVER = fileURLToPath(new URL('./support/app-server.ts', import.meta.url));
const COOLDOWN = 1_500;
const TIMEOUT = 400;
const known = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** The identity provider's JWKS endpoint, in this process: it answers, fails or hangs as told, and counts requests. */
const jwks = {
  mode: 'answer' as 'answer' | 'hang',
  requests: 0,
  keys: [] as object[],
  hanging: [] as ServerResponse[],
};
const provider = createServer((_req, res) => {
  jwks.requests++;
  if (jwks.mode === 'hang') jwks.hanging.push(res);
  else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: jwks.keys }));
});

const fixture = attackFixture(async () => {
  jwks.keys = [{ ...(await exportJWK(known.publicKey)), kid: 'known', alg: 'ES256' }];
  provider.listen(0, '127.0.0.1');
  await once(provider, 'listening');
  const url = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/jwks`;
  // These attacks measure what each verification costs, at the attacker's own pace; the
  // limit on new connections per address (test/attack-connection-rate.test.ts) is off, or
  // it would refuse them before their tokens were read.
  return startScriptTarget(APP_SERVER, { token: { jwksUrl: url, jwksCooldown: COOLDOWN, jwksTimeout: TIMEOUT }, connectionRatePerAddress: null }, ['--max-old-space-size=256']);
});

const valid = (): Promise<string> => signWith({ sub: 'user', exp: nowSeconds() + 600 }, 'ES256', known.privateKey, 'known');
const randomKid = (): Promise<string> => signWith({ sub: 'mallory', exp: nowSeconds() + 600 }, 'ES256', stranger.privateKey, randomUUID());

/** Upgrade attempts with these tokens, `parallel` at a time: each answer's status, body and how long it took. */
async function attempts(tokens: readonly string[], parallel: number): Promise<Array<{ status: number; body: string; ms: number }>> {
  const answers: Array<{ status: number; body: string; ms: number }> = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < tokens.length) {
        const token = tokens[next++]!;
        const started = performance.now();
        const answer = await upgradeRequest(fixture.target.port, '/ws', { headers: [`Authorization: Bearer ${token}`] });
        answer.socket.destroy();
        answers.push({ status: answer.status, body: answer.body, ms: performance.now() - started });
      }
    }),
  );
  return answers;
}

test('tokens with random kids: every one refused 401 "unknown key", the JWKS fetched at most once per cooldown, the neighbour served', { timeout: 60_000 }, async () => {
  const { target, neighbour } = fixture;
  // The key set was fetched at startup (a valid token connects without waiting on it).
  const first = await ChannelsClient.connect(`${target.ws}/ws`, { headers: { authorization: `Bearer ${await valid()}` } });
  await first.close();
  const peak = new RssSampler(target.pid);
  const before = jwks.requests;
  const tokens = await Promise.all(Array.from({ length: 600 }, randomKid));
  const started = performance.now();
  const answers = await attempts(tokens, 20);
  const elapsed = performance.now() - started;
  const fetched = jwks.requests - before;
  const rssPeak = peak.stop();
  const report = await neighbour.report();
  for (const answer of answers) {
    assert.equal(answer.status, 401);
    assert.equal(answer.body, 'invalid token: unknown key');
  }
  const allowed = Math.ceil(elapsed / COOLDOWN) + 1;
  process.stdout.write(
    `random kids: ${answers.length} upgrades in ${elapsed.toFixed(0)} ms (${((answers.length / elapsed) * 1000).toFixed(0)}/s), ${fetched} JWKS fetches (at most ${allowed}); ` +
      `RSS ${(target.baseline / MiB).toFixed(1)} -> peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
  );
  assert.ok(fetched <= allowed, `${fetched} fetches in ${elapsed.toFixed(0)} ms (at most one per ${COOLDOWN} ms: ${allowed})`);
  assert.ok(target.alive());
  assert.ok(rssPeak - target.baseline < 64 * MiB, `RSS grew ${((rssPeak - target.baseline) / MiB).toFixed(1)} MiB`);
  assertServed(report);
});

test('a JWKS endpoint that hangs: unknown kids are answered within the timeout, known ones at once, one hanging fetch per cooldown', { timeout: 60_000 }, async () => {
  const { target, neighbour } = fixture;
  jwks.mode = 'hang';
  try {
    // Once the cooldown has passed the next unknown kid fetches: wait for that request to arrive.
    const before = jwks.requests;
    const probes: Array<Promise<unknown>> = [];
    await waitFor(
      async () => {
        probes.push(attempts([await randomKid()], 1));
        return jwks.requests > before;
      },
      'a JWKS fetch once the cooldown passed',
      { ms: COOLDOWN * 4, every: 50 },
    );
    const started = performance.now();
    const during = await attempts(await Promise.all(Array.from({ length: 100 }, randomKid)), 20);
    const goodOnes = await attempts(await Promise.all(Array.from({ length: 20 }, valid)), 5);
    const elapsed = performance.now() - started;
    await Promise.all(probes);
    const slowest = Math.max(...during.map((a) => a.ms));
    const report = await neighbour.report();
    process.stdout.write(
      `hanging JWKS: ${during.length} unknown kids answered, slowest ${slowest.toFixed(0)} ms (timeout ${TIMEOUT}); ` +
        `${jwks.hanging.length} fetches hung; neighbour ${describeReport(report)}\n`,
    );
    for (const answer of during) assert.equal(answer.body, 'invalid token: unknown key', 'the old key set still answers');
    assert.ok(slowest < TIMEOUT + 1_000, `an upgrade waited ${slowest.toFixed(0)} ms on the hanging endpoint (timeout ${TIMEOUT})`);
    for (const answer of goodOnes) assert.equal(answer.status, 101, 'a known key is verified from the cache, the hang does not matter');
    assert.ok(jwks.hanging.length <= Math.ceil((elapsed + COOLDOWN * 4) / COOLDOWN) + 1, `${jwks.hanging.length} hanging fetches`);
    assert.ok(target.alive());
    assertServed(report);
  } finally {
    jwks.mode = 'answer';
    for (const res of jwks.hanging.splice(0)) res.destroy();
  }
});

test('a key set that never arrived: a token is answered 503 within the timeout, not held; an over-long token is refused unread', { timeout: 60_000 }, async () => {
  const hangingProvider = createServer(() => {});
  hangingProvider.listen(0, '127.0.0.1');
  await once(hangingProvider, 'listening');
  const url = `http://127.0.0.1:${(hangingProvider.address() as AddressInfo).port}/jwks`;
  const target = await startScriptTarget(APP_SERVER, { token: { jwksUrl: url, jwksCooldown: COOLDOWN, jwksTimeout: TIMEOUT } });
  try {
    const started = performance.now();
    const answer = await upgradeRequest(target.port, '/ws', { headers: [`Authorization: Bearer ${await valid()}`] });
    const took = performance.now() - started;
    assert.equal(answer.status, 503);
    assert.equal(answer.body, 'the token cannot be checked now: signing keys unavailable');
    assert.ok(answer.response.includes('\r\nRetry-After: 5\r\n'));
    assert.ok(took < TIMEOUT + 1_000, `answered after ${took.toFixed(0)} ms`);
    const anonymous = await ChannelsClient.connect(`${target.ws}/ws`);
    assert.equal((await anonymous.request('ping')).op, 'pong', 'connections without a token are not held by the key set');
    await anonymous.close();

    const long = await upgradeRequest(target.port, `/ws?token=${'a'.repeat(9_000)}`);
    assert.equal(long.status, 401);
    assert.equal(long.body, 'invalid token: malformed: longer than 8192 characters');
    const huge = await upgradeRequest(target.port, `/ws?token=${'a'.repeat(20_000)}`);
    assert.equal(huge.status, 431, 'past the 16 KiB request head, node:http refuses it');
  } finally {
    hangingProvider.closeAllConnections();
    hangingProvider.close();
    await target.stop();
  }
});

test('cost per attempt: ES256 tokens with bad signatures (a verify each, ~3x an RS256 one) refused as fast as they come, the neighbour served', { timeout: 60_000 }, async () => {
  const { neighbour } = fixture;
  const forged = await Promise.all(Array.from({ length: 600 }, () => signWith({ sub: 'mallory', exp: nowSeconds() + 600 }, 'ES256', stranger.privateKey, 'known')));
  const started = performance.now();
  const answers = await attempts(forged, 20);
  const elapsed = performance.now() - started;
  const report = await neighbour.report();
  process.stdout.write(`bad signatures: ${answers.length} upgrades refused in ${elapsed.toFixed(0)} ms (${((answers.length / elapsed) * 1000).toFixed(0)}/s); neighbour ${describeReport(report)}\n`);
  for (const answer of answers) assert.equal(answer.body, 'invalid token: bad signature');
  assertServed(report);
});

after(() => {
  provider.closeAllConnections();
  provider.close();
});
