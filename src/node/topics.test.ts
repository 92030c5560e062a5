// Topics that are off (the channel endpoint's): subscribing and publishing throw a typed
// error, so a raw publish never reaches a hotline.v1 connection, and the server's own
// shared frames still work. serve()'s publish passing such an endpoint by, over real
// sockets: test/server-api.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WebSocketConnection } from './connection.js';
import { WebSocketServer } from './server.js';
import { TopicRegistry, TopicsDisabledError } from './topics.js';

const off = (error: unknown): boolean => error instanceof TopicsDisabledError && error.code === 'TOPICS_DISABLED' && /channels\.publish\(\)/.test(error.message);

test('a registry with topics off refuses subscribers and publishes, and still frames', () => {
  const registry = new TopicRegistry<unknown>(undefined, false);
  assert.equal(registry.enabled, false);
  assert.throws(() => registry.add('room:1', {} as WebSocketConnection<unknown>), off);
  assert.throws(() => registry.publish('room:1', 'raw'), off);
  assert.equal(registry.subscriberCount('room:1'), 0);
  assert.ok(registry.frame('{"op":"msg"}'));
  assert.equal(new TopicRegistry<unknown>().enabled, true);
});

test('an endpoint with topics off throws on publish', () => {
  const channels = new WebSocketServer<unknown>({ handlers: { message() {} }, topics: false });
  try {
    assert.throws(() => channels.publish('room:1', 'raw'), off);
    assert.equal(channels.subscriberCount('room:1'), 0);
  } finally {
    channels.stop();
  }
});
