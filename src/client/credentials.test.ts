import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Credentials } from './credentials.js';

test('where the token goes: an auth message, or the upgrade URL with tokenParam', () => {
  assert.deepEqual([new Credentials({}).inUrl, new Credentials({}).inMessage], [false, false]);
  assert.deepEqual([new Credentials({ token: 't' }).inUrl, new Credentials({ token: 't' }).inMessage], [false, true]);
  const inUrl = new Credentials({ token: 't', tokenParam: 'access_token' });
  assert.deepEqual([inUrl.inUrl, inUrl.inMessage], [true, false]);
  assert.equal(inUrl.urlWith('ws://h/ws?room=1', 'a b&c'), 'ws://h/ws?room=1&access_token=a+b%26c');
});

test('one refresh after a refusal, allowed again once a connection opened; only with a token function', async () => {
  assert.equal(new Credentials({ token: 'static' }).refreshAfterRefusal(), false);
  let n = 0;
  const credentials = new Credentials({ token: () => `t${++n}` });
  assert.equal(credentials.refreshAfterRefusal(), true);
  assert.equal(credentials.refreshAfterRefusal(), false);
  credentials.opened();
  assert.equal(credentials.refreshAfterRefusal(), true);
  // The refreshed token is used by the next attempt, once; then fresh ones again.
  credentials.keep(await credentials.fetch());
  assert.equal(await credentials.take(), 't1');
  assert.equal(await credentials.take(), 't2');
});
