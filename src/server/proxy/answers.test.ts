// The checks of the backend's answers: each hook's shape accepted as documented, and every
// way out of it named (the name reaches the server's log).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectAnswer, publishAnswer, rpcAnswer, subscribeAnswer } from './answers.js';
import { BackendFailure } from './backend.js';

function malformed(check: () => unknown, detail: RegExp): void {
  assert.throws(check, (error: unknown) => error instanceof BackendFailure && error.kind === 'malformed' && detail.test(error.message));
}

test('connect: an identity, anonymous, or a refusal; fields outside their types refused', () => {
  assert.deepEqual(connectAnswer({ allow: true, user: '42', info: { name: 'Ada' }, expiresAt: 1_767_225_600_000 }), {
    allow: true,
    user: '42',
    info: { name: 'Ada' },
    expiresAt: 1_767_225_600_000,
  });
  assert.deepEqual(connectAnswer({ allow: true, user: null, extra: 'ignored' }), { allow: true, user: undefined, info: undefined, expiresAt: undefined });
  assert.deepEqual(connectAnswer({ allow: false, status: 401, reason: 'log in' }), { allow: false, status: 401, reason: 'log in' });
  assert.deepEqual(connectAnswer({ allow: false }), { allow: false, status: undefined, reason: undefined });
  malformed(() => connectAnswer('yes'), /the answer must be a JSON object/);
  malformed(() => connectAnswer([]), /the answer must be a JSON object/);
  malformed(() => connectAnswer({ allow: 'true' }), /`allow` must be true or false/);
  malformed(() => connectAnswer({ allow: true, user: '' }), /`user` must be a string of 1 to 256/);
  malformed(() => connectAnswer({ allow: true, user: 'u'.repeat(257) }), /`user`/);
  malformed(() => connectAnswer({ allow: true, user: 42 }), /`user`/);
  malformed(() => connectAnswer({ allow: true, info: ['a'] }), /`info` must be an object/);
  malformed(() => connectAnswer({ allow: true, expiresAt: '2026' }), /`expiresAt`/);
  malformed(() => connectAnswer({ allow: false, status: 500 }), /`status` must be 401 or 403/);
  malformed(() => connectAnswer({ allow: false, reason: 'r'.repeat(1025) }), /`reason` must be a string of at most 1024/);
});

test('subscribe and publish: allow, deny with a hotline code, and a rewrite of any JSON (null too)', () => {
  assert.deepEqual(subscribeAnswer({ allow: true }), { allow: true });
  assert.deepEqual(subscribeAnswer({ allow: false, code: 'unauthorized', reason: 'expired' }), { allow: false, code: 'unauthorized', reason: 'expired' });
  malformed(() => subscribeAnswer({ allow: false, code: 'nope' }), /`code` must be a hotline error code/);
  malformed(() => subscribeAnswer({}), /`allow`/);
  assert.deepEqual(publishAnswer({ allow: true }), { allow: true });
  assert.deepEqual(publishAnswer({ allow: true, data: null }), { allow: true, data: null });
  assert.deepEqual(publishAnswer({ allow: true, data: { text: 'HI' } }), { allow: true, data: { text: 'HI' } });
  assert.deepEqual(publishAnswer({ allow: false }), { allow: false, code: undefined, reason: undefined });
});

test('rpc: a result (null included) or an error with a hotline code', () => {
  assert.deepEqual(rpcAnswer({ result: null }), { result: null });
  assert.deepEqual(rpcAnswer({ result: [1, 2] }), { result: [1, 2] });
  assert.deepEqual(rpcAnswer({ error: { code: 'not_found', message: 'no such method' } }), { error: { code: 'not_found', message: 'no such method' } });
  assert.deepEqual(rpcAnswer({ error: { code: 'internal' } }), { error: { code: 'internal', message: undefined } });
  malformed(() => rpcAnswer({}), /neither `result` nor `error`/);
  malformed(() => rpcAnswer({ error: 'bad' }), /`error` must be a JSON object/);
  malformed(() => rpcAnswer({ error: { code: 'teapot' } }), /`error.code` must be a hotline error code/);
  malformed(() => rpcAnswer({ error: { code: 'forbidden', message: 7 } }), /`message`/);
});
