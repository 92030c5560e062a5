import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globMatch } from './glob.js';

test('a star matches any run of characters, none included', () => {
  assert.equal(globMatch('chat:*', 'chat:'), true);
  assert.equal(globMatch('chat:*', 'chat:room'), true);
  assert.equal(globMatch('chat:*', 'chatroom'), false);
  assert.equal(globMatch('*:lobby', 'game:lobby'), true);
  assert.equal(globMatch('*:lobby', 'game:lobby2'), false);
  assert.equal(globMatch('user:*:inbox', 'user:42:inbox'), true);
  assert.equal(globMatch('user:*:inbox', 'user:42:outbox'), false);
  assert.equal(globMatch('*', ''), true);
  assert.equal(globMatch('**a', 'bba'), true);
});

test('without a star, only the same name matches', () => {
  assert.equal(globMatch('news', 'news'), true);
  assert.equal(globMatch('news', 'news2'), false);
  assert.equal(globMatch('news2', 'news'), false);
});

test('a pattern of many stars against a long name takes no exponential time', () => {
  const started = performance.now();
  assert.equal(globMatch(`${'*a'.repeat(100)}b`, 'a'.repeat(2000)), false);
  assert.ok(performance.now() - started < 1000);
});
