import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import { TokenError } from './errors.js';
import { RemoteKeySet } from './jwks.js';
import { TokenVerifier } from './verify.js';

const first = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const second = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = async (kid: string, pair: typeof first): Promise<object> => ({ ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' });
const sign = (kid: string, pair: typeof first): Promise<string> => new SignJWT({ sub: kid }).setProtectedHeader({ alg: 'ES256', kid }).sign(pair.privateKey);

/** A JWKS endpoint whose answer the test sets, counting requests. */
async function keyServer(answer: (res: ServerResponse) => void): Promise<{ server: Server; url: URL; requests: () => number }> {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    answer(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`), requests: () => requests };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof TokenError, String(error));
    return error.refusal;
  }
  return 'accepted';
}

test('tokens with unknown kids fetch the key set again at most once per cooldown; a rotated-in key is found after it', async (t) => {
  let keys = [await jwk('one', first)];
  const endpoint = await keyServer((res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys })));
  t.after(() => endpoint.server.close());
  let clock = 1_000_000;
  const verifier = new TokenVerifier({ jwksUrl: endpoint.url.href, jwksCooldown: 30_000 }, () => clock);

  assert.equal((await verifier.verify(await sign('one', first))).sub, 'one');
  assert.equal(endpoint.requests(), 1);
  const random = await Promise.all(Array.from({ length: 200 }, (_, i) => sign(`random-${i}`, second)));
  for (const token of random) assert.equal(await refusal(verifier.verify(token)), 'unknown_key');
  assert.equal(endpoint.requests(), 1, 'within the cooldown, no fetch at all');
  keys = [await jwk('one', first), await jwk('two', second)];
  clock += 30_000;
  const rotated = await sign('two', second);
  const [a, b] = await Promise.all([verifier.verify(rotated), verifier.verify(rotated)]);
  assert.equal(a.sub, 'two');
  assert.equal(b.sub, 'two');
  assert.equal(endpoint.requests(), 2, 'one fetch for both tokens once the cooldown passed');
  for (const token of random.slice(0, 50)) assert.equal(await refusal(verifier.verify(token)), 'unknown_key');
  assert.equal(endpoint.requests(), 2);
});

test('a failing endpoint is asked at most once per cooldown too, and the key set it gave before stays in use', async (t) => {
  let failing = false;
  const keys = [await jwk('one', first)];
  const endpoint = await keyServer((res) => (failing ? res.writeHead(500).end() : res.writeHead(200).end(JSON.stringify({ keys }))));
  t.after(() => endpoint.server.close());
  let clock = 0;
  const set = new RemoteKeySet(endpoint.url, { cooldown: 10_000, now: () => clock });
  const header = { alg: 'ES256', kid: 'one' };
  await set.key(header, undefined as never);
  failing = true;
  clock += 10 * 60_000; // past the key set's age: fetched again, fails, the old set answers
  for (let i = 0; i < 100; i++) await set.key(header, undefined as never);
  assert.equal(endpoint.requests(), 2);
  const empty = new RemoteKeySet(endpoint.url, { cooldown: 10_000, now: () => clock });
  for (let i = 0; i < 100; i++) assert.equal(await refusal(empty.key(header, undefined as never)), 'keys_unavailable');
  assert.equal(endpoint.requests(), 3, 'no key set at all: still one fetch per cooldown');
});

test('an endpoint that never answers holds tokens no longer than the timeout; a huge key set is refused', async (t) => {
  const hanging = await keyServer(() => {});
  t.after(() => {
    hanging.server.closeAllConnections();
    hanging.server.close();
  });
  const set = new RemoteKeySet(hanging.url, { timeout: 300 });
  const started = performance.now();
  const answers = await Promise.all(Array.from({ length: 20 }, () => refusal(set.key({ alg: 'ES256', kid: 'x' }, undefined as never))));
  const took = performance.now() - started;
  assert.deepEqual(new Set(answers), new Set(['keys_unavailable']));
  assert.equal(hanging.requests(), 1, 'the twenty waited on one fetch');
  assert.ok(took >= 290 && took < 2_000, `answered after ${took.toFixed(0)} ms`);

  const huge = await keyServer((res) => res.writeHead(200).end(JSON.stringify({ keys: [], pad: 'x'.repeat(600 * 1024) })));
  t.after(() => huge.server.close());
  const big = new RemoteKeySet(huge.url);
  assert.equal(await refusal(big.key({ alg: 'ES256', kid: 'x' }, undefined as never)), 'keys_unavailable');
});
