// JWT connection tokens on `hotline serve`'s /ws, against the app in a process of its own:
// tokens from the Authorization header, a cookie and the query string connect as their
// `sub` (presence shows it, with `info`); every bad token is refused with 401 and its reason
// before the upgrade while a good client beside it is served; `auth` refreshes the same user
// and refuses another; an expired connection is closed with 4401 after the grace period; a
// token minted by Python's standard library is accepted (any backend can mint them).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTarget, type AttackTarget } from './support/attack.js';
import { ChannelsClient, ok, assertErr, withoutClient } from './support/channels-client.js';
import { startScriptTarget } from './support/limits-target.js';
import { upgradeRequest } from './support/raw-upgrade.js';
import { handMade, hs256, nowSeconds, RSA_PUBLIC_PEM, SECRET, signWith, tampered, rsa } from './support/tokens.js';

const APP_SERVER = fileURLToPath(new URL('./support/app-server.ts', import.meta.url));
const AUDIENCE = { aud: 'hotline', iss: 'backend' };
const GRACE = 1_000;

let server: AttackTarget;
before(async () => {
  server = await startScriptTarget(APP_SERVER, {
    token: { hmacSecret: SECRET, publicKey: RSA_PUBLIC_PEM, cookie: 'hl_token', audience: 'hotline', issuer: 'backend' },
    authGrace: GRACE,
  });
});
after(async () => {
  await server?.stop();
});

const open = (path = '/ws', headers?: Record<string, string>): Promise<ChannelsClient> => ChannelsClient.connect(`${server.ws}${path}`, { headers });
const token = (claims: Record<string, unknown>): Promise<string> => hs256({ ...AUDIENCE, exp: nowSeconds() + 600, ...claims });

describe('connecting with a token', () => {
  test('from the Authorization header, the cookie and the query string: each connection is its sub, presence shows sub and info; no token is anonymous', async () => {
    const [byHeader, byCookie, byQuery, anonymous] = await Promise.all([
      token({ sub: 'alice', info: { name: 'Alice' } }).then((t) => open('/ws', { authorization: `Bearer ${t}` })),
      token({ sub: 'bob', info: { name: 'Bob' } }).then((t) => open('/ws', { cookie: `other=1; hl_token=${t}` })),
      signWith({ ...AUDIENCE, sub: 'carol' }, 'RS256', rsa.privateKey).then((t) => open(`/ws?token=${t}`)),
      open('/ws'),
    ]);
    try {
      for (const client of [byHeader, byCookie, byQuery, anonymous]) await ok(client, 'sub', { ch: 'lobby:1' });
      const members = withoutClient((await ok(anonymous, 'presence', { ch: 'lobby:1' })).members);
      assert.deepEqual(
        members.sort((a, b) => String(a['id']).localeCompare(String(b['id']))),
        [{ id: 'alice', info: { name: 'Alice' } }, { id: 'bob', info: { name: 'Bob' } }, { id: 'carol' }, {}],
        'the anonymous connection is a member too, with no identity',
      );
    } finally {
      await Promise.all([byHeader, byCookie, byQuery, anonymous].map((c) => c.close()));
    }
  });

  test('the Python program of docs/serve/auth.md (standard library only: hmac, hashlib, base64, json) mints a token the server accepts', async (t) => {
    if (spawnSync('python3', ['--version']).error !== undefined) {
      process.stderr.write('serve-auth: SKIPPED the Python test: python3 is not installed\n');
      t.skip('python3 is not installed');
      return;
    }
    const doc = readFileSync(fileURLToPath(new URL('../docs/serve/auth.md', import.meta.url)), 'utf8');
    const program = /```python\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(program !== undefined, 'docs/serve/auth.md has a python block');
    const minted = spawnSync('python3', ['-c', program], { encoding: 'utf8', env: { ...process.env, HOTLINE_TOKEN_HMAC_SECRET: SECRET } });
    assert.equal(minted.status, 0, minted.stderr);
    // The documented program sets no aud/iss: a server configured with the secret alone.
    const plain = await startScriptTarget(APP_SERVER, { token: { hmacSecret: SECRET } });
    const client = await ChannelsClient.connect(`${plain.ws}/ws`, { headers: { authorization: `Bearer ${minted.stdout.trim()}` } });
    try {
      await ok(client, 'sub', { ch: 'lobby:py' });
      assert.deepEqual(withoutClient((await ok(client, 'presence', { ch: 'lobby:py' })).members), [{ id: 'alice', info: { name: 'Alice' } }]);
    } finally {
      await client.close();
      await plain.stop();
    }
  });
});

describe('refused before the upgrade', () => {
  const publicKeyAsSecret = (): Promise<string> => hs256({ ...AUDIENCE, sub: 'mallory' }, RSA_PUBLIC_PEM);
  const cases: Array<[string, () => Promise<string>, string]> = [
    ['expired', () => token({ sub: 'a', exp: nowSeconds() - 60 }), 'expired'],
    ['not yet valid', () => token({ sub: 'a', nbf: nowSeconds() + 600 }), 'not yet valid'],
    ['a tampered payload', async () => tampered(await token({ sub: 'a' }), { ...AUDIENCE, sub: 'admin', exp: nowSeconds() + 600 }), 'bad signature'],
    ['alg none', async () => handMade({ alg: 'none', typ: 'JWT' }, { ...AUDIENCE, sub: 'admin' }, ''), 'algorithm not accepted'],
    // Both key kinds are configured, so HS256 is accepted: the public key's text is still not the secret.
    ['HS256 signed with the public key text', publicKeyAsSecret, 'bad signature'],
    ['a wrong audience', () => token({ sub: 'a', aud: 'another-app' }), 'wrong audience'],
    ['a wrong issuer', () => token({ sub: 'a', iss: 'someone' }), 'wrong issuer'],
    ['a subscription token', () => token({ sub: 'a', channel: 'private:1' }), 'invalid claims'],
    ['garbage', async () => 'not-a-jwt', 'malformed'],
  ];

  test('each bad token gets 401 with WWW-Authenticate naming the reason, from the query or the header, while a good client is served', async () => {
    const good = await open('/ws', { authorization: `Bearer ${await token({ sub: 'good' })}` });
    try {
      for (const [name, make, reason] of cases) {
        const bad = await make();
        for (const where of [{ path: `/ws?token=${encodeURIComponent(bad)}`, headers: [] }, { path: '/ws', headers: [`Authorization: Bearer ${bad}`] }]) {
          const answer = await upgradeRequest(server.port, where.path, { headers: where.headers });
          assert.equal(answer.status, 401, `${name}: ${answer.response}`);
          assert.ok(answer.response.includes(`\r\nWWW-Authenticate: Bearer error="invalid_token", error_description="${reason}"\r\n`), `${name}: ${answer.response}`);
          assert.match(answer.body, new RegExp(`^invalid token: ${reason}`), name);
        }
        assert.equal((await good.request('ping')).op, 'pong', `the good client is served after ${name}`);
      }
    } finally {
      await good.close();
    }
  });

  test('a bad token in the header is refused even with a good one in the cookie: never downgraded or passed over', async () => {
    const answer = await upgradeRequest(server.port, '/ws', { headers: ['Authorization: Bearer nope', `Cookie: hl_token=${await token({ sub: 'a' })}`] });
    assert.equal(answer.status, 401);
    assert.match(answer.body, /^invalid token: malformed/);
  });
});

describe('the auth request', () => {
  test('refreshes the same sub (expiresAt moves), refuses another sub with forbidden; an unrefreshed connection is closed 4401 after the grace', async () => {
    const soon = nowSeconds() + 2;
    const [refreshed, left] = await Promise.all([
      token({ sub: 'dana', exp: soon }).then((t) => open('/ws', { authorization: `Bearer ${t}` })),
      token({ sub: 'erin', exp: soon }).then((t) => open(`/ws?token=${t}`)),
    ]);
    try {
      const later = nowSeconds() + 600;
      const answer = await ok(refreshed, 'auth', { token: await token({ sub: 'dana', exp: later }) });
      assert.equal(answer['expiresAt'], later * 1000);
      const other = await refreshed.request('auth', { token: await token({ sub: 'mallory' }) });
      assert.match(assertErr(other, 'forbidden', other.id), /this connection is dana/);
      const expired = await refreshed.request('auth', { token: await token({ sub: 'dana', exp: nowSeconds() - 60 }) });
      assert.equal(assertErr(expired, 'unauthorized', expired.id), 'invalid token: expired');

      const closed = await left.closed;
      assert.equal(closed.code, 4401);
      assert.ok(Date.now() >= soon * 1000 + GRACE, 'not before expiry plus the grace');
      assert.equal((await refreshed.request('ping')).op, 'pong', 'the refreshed connection is still open');
      await ok(refreshed, 'sub', { ch: 'lobby:refresh' });
    } finally {
      await refreshed.close();
    }
  });

  test('an anonymous connection authenticates with auth and becomes the token\'s sub in presence', async () => {
    const client = await open('/ws');
    try {
      await ok(client, 'auth', { token: await token({ sub: 'frank', info: { via: 'auth' } }) });
      await ok(client, 'sub', { ch: 'lobby:anon' });
      assert.deepEqual(withoutClient((await ok(client, 'presence', { ch: 'lobby:anon' })).members), [{ id: 'frank', info: { via: 'auth' } }]);
    } finally {
      await client.close();
    }
  });
});

describe('configuration', () => {
  test('required: no token is 401 with a bare Bearer challenge; a token connects', async () => {
    const strict = await startScriptTarget(APP_SERVER, { token: { hmacSecret: SECRET, required: true } });
    try {
      const answer = await upgradeRequest(strict.port, '/ws');
      assert.equal(answer.status, 401);
      assert.ok(answer.response.includes('\r\nWWW-Authenticate: Bearer\r\n'), answer.response);
      assert.equal(answer.body, 'a token is required');
      const client = await ChannelsClient.connect(`${strict.ws}/ws?token=${await hs256({ sub: 'g' })}`);
      await client.close();
    } finally {
      await strict.stop();
    }
  });

  test('hotline serve --config FILE with the secret in HOTLINE_TOKEN_HMAC_SECRET: a token connects as its sub, a bad one gets 401 with its reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotline-auth-'));
    const file = join(dir, 'hotline.json');
    writeFileSync(file, JSON.stringify({ token: { cookie: 'hl_token', audience: 'hotline', issuer: 'backend', required: true } }));
    const cli = await startTarget(['--config', file], { env: { ...process.env, HOTLINE_TOKEN_HMAC_SECRET: SECRET } });
    try {
      const client = await ChannelsClient.connect(`${cli.ws}/ws`, { headers: { cookie: `hl_token=${await token({ sub: 'cli-user' })}` } });
      await ok(client, 'sub', { ch: 'lobby:cli' });
      assert.deepEqual(withoutClient((await ok(client, 'presence', { ch: 'lobby:cli' })).members), [{ id: 'cli-user' }]);
      await client.close();
      const expired = await upgradeRequest(cli.port, `/ws?token=${await token({ sub: 'a', exp: nowSeconds() - 60 })}`);
      assert.equal(expired.status, 401);
      assert.ok(expired.response.includes('error_description="expired"'), expired.response);
      const none = await upgradeRequest(cli.port, '/ws');
      assert.equal(none.status, 401);
      assert.equal(none.body, 'a token is required');
    } finally {
      await cli.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a secret under 32 bytes stops the server before it listens, saying why', async () => {
    await assert.rejects(startScriptTarget(APP_SERVER, { token: { hmacSecret: 'short' } }), /app-server failed: token\.hmacSecret is 5 bytes; at least 32/);
  });
});
