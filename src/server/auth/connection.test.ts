import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { SignJWT, type JWTPayload } from 'jose';
import { ChannelError, type RequestContext } from '../../channels/index.js';
import type { UpgradeRequest } from '../../node/server.js';
import { ConnectionTokens, tokenOf, type TokenAuth } from './connection.js';
import { SubscriptionTokens } from './subscription.js';
import { TokenVerifier } from './verify.js';

const SECRET = 'a-secret-of-at-least-thirty-two-bytes!';
const key = new Uint8Array(Buffer.from(SECRET));
const now = (): number => Math.floor(Date.now() / 1000);
const sign = (claims: JWTPayload): Promise<string> => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
const request = (url: string, headers: Record<string, string> = {}): UpgradeRequest => ({ url, headers, socket: {} });
const context = (auth: TokenAuth): RequestContext<TokenAuth> => ({ auth, client: undefined as never });

async function channelError(promise: Promise<unknown>): Promise<[string, string]> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ChannelError, String(error));
    return [error.code, error.message];
  }
  assert.fail('accepted');
}

test('tokenOf reads Authorization: Bearer, then the configured cookie, then the query parameter', () => {
  const config = { hmacSecret: SECRET, cookie: 'session' };
  const all = { authorization: 'Bearer from-header', cookie: 'a=1; session=from-cookie' };
  assert.equal(tokenOf(request('/ws?token=from-query', all), config), 'from-header');
  assert.equal(tokenOf(request('/ws?token=from-query', { cookie: all.cookie }), config), 'from-cookie');
  assert.equal(tokenOf(request('/ws?x=1&token=from-query'), config), 'from-query');
  assert.equal(tokenOf(request('/ws?jwt=q'), { ...config, queryParam: 'jwt' }), 'q');
  assert.equal(tokenOf(request('/ws?token=q', { cookie: 'session=c' }), { hmacSecret: SECRET }), 'q', 'no cookie configured: not read');
  assert.equal(tokenOf(request('/ws?token=q', { authorization: 'Basic dTpw' }), config), 'q', 'another scheme is not ours');
  assert.equal(tokenOf(request('/ws', { authorization: 'bearer   lower' }), config), 'lower');
  assert.equal(tokenOf(request('/ws'), config), undefined);
  assert.equal(tokenOf(request('/ws', { authorization: 'Bearer' }), config), '', 'an empty Bearer is a token, and it will not verify');
});

test('authenticate: the identity of a good token, anonymous without one, 401 with the reason for a bad one, 401 when required', async () => {
  const tokens = new ConnectionTokens(new TokenVerifier({ hmacSecret: SECRET }), { hmacSecret: SECRET });
  const exp = now() + 60;
  const identity = await tokens.authenticate(request('/ws', { authorization: `Bearer ${await sign({ sub: 'alice', exp, info: { name: 'Alice' }, channels: ['room:1'] })}` }));
  assert.deepEqual(identity, {
    auth: { sub: 'alice', exp, info: { name: 'Alice' }, channels: ['room:1'] },
    user: 'alice',
    member: { id: 'alice', info: { name: 'Alice' } },
    expiresAt: exp * 1000,
  });
  assert.deepEqual(await tokens.authenticate(request('/ws')), { auth: null });
  assert.deepEqual(await tokens.authenticate(request(`/ws?token=${await sign({ sub: 'a', exp: now() - 60 })}`)), {
    reject: { status: 401, message: 'invalid token: expired', headers: { 'WWW-Authenticate': 'Bearer error="invalid_token", error_description="expired"' } },
  });
  for (const [claims, why] of [
    [{ exp }, '"sub" must be a non-empty string'],
    [{ sub: 'a', info: 'x' }, '"info" must be an object'],
    [{ sub: 'a', channels: [1] }, '"channels" must be an array of strings'],
    [{ sub: 'a', channel: 'room:1', exp }, 'a subscription token (with "channel") cannot open a connection'],
  ] as const) {
    const decided = await tokens.authenticate(request(`/ws?token=${await sign(claims)}`));
    assert.ok('reject' in decided);
    assert.equal(decided.reject.message, `invalid token: invalid claims: ${why}`);
  }
  const required = new ConnectionTokens(new TokenVerifier({ hmacSecret: SECRET }), { hmacSecret: SECRET, required: true });
  assert.deepEqual(await required.authenticate(request('/ws')), { reject: { status: 401, message: 'a token is required', headers: { 'WWW-Authenticate': 'Bearer' } } });
});

test('authenticateToken: the same sub refreshes, another is forbidden, an anonymous connection becomes the token\'s user, a bad token is unauthorized', async () => {
  const tokens = new ConnectionTokens(new TokenVerifier({ hmacSecret: SECRET }), { hmacSecret: SECRET });
  const alice = { sub: 'alice' };
  assert.equal((await tokens.authenticateToken(await sign({ sub: 'alice', exp: now() + 60 }), context(alice))).user, 'alice');
  assert.deepEqual(await channelError(tokens.authenticateToken(await sign({ sub: 'bob' }), context(alice))), [
    'forbidden',
    'this connection is alice: a refreshed token must carry the same "sub"',
  ]);
  assert.equal((await tokens.authenticateToken(await sign({ sub: 'bob' }), context(null))).user, 'bob');
  assert.deepEqual(await channelError(tokens.authenticateToken(await sign({ sub: 'alice', exp: now() - 60 }), context(alice))), ['unauthorized', 'invalid token: expired']);
});

test('subscription tokens: channel and exp required, sub equal to the user, no sub only for anonymous connections', async () => {
  const subs = new SubscriptionTokens(new TokenVerifier({ hmacSecret: SECRET }));
  const exp = now() + 60;
  await subs.verify(await sign({ sub: 'alice', channel: 'private:1', exp }), 'private:1', 'alice');
  await subs.verify(await sign({ channel: 'private:1', exp }), 'private:1', undefined);
  const cases: Array<[JWTPayload, string | undefined, string, RegExp]> = [
    [{ sub: 'alice', channel: 'private:2', exp }, 'alice', 'forbidden', /not for private:1/],
    [{ sub: 'alice', channel: 'private:1', exp }, 'bob', 'forbidden', /not for bob/],
    [{ sub: 'alice', channel: 'private:1', exp }, undefined, 'forbidden', /for a signed-in user/],
    [{ channel: 'private:1', exp }, 'bob', 'forbidden', /no "sub".*this one is bob/],
    [{ sub: 'alice', channel: 'private:1' }, 'alice', 'unauthorized', /"exp" is missing/],
    [{ sub: 'alice', exp }, 'alice', 'unauthorized', /"channel" is missing/],
    [{ sub: 'alice', channel: 'private:1', exp: now() - 60 }, 'alice', 'unauthorized', /invalid subscription token: expired/],
  ];
  for (const [claims, user, code, message] of cases) {
    const [got, text] = await channelError(subs.verify(await sign(claims), 'private:1', user));
    assert.equal(got, code, JSON.stringify(claims));
    assert.match(text, message);
  }
});
