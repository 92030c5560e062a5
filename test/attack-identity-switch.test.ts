// Attack: keeping another identity's access. A connection authenticated as alice (the
// `auth` op) subscribes to alice's private room, then authenticates as bob: it kept
// receiving alice's room, even after alice's token expired, and later subscriptions
// announced it as alice. Now an identity change asks canSubscribe again for every
// subscription (the refused ones end with an `unsub` push) and replaces the presence
// member; at expiry every subscription ends, and the grace period only delays the 4401.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelsClient, ok } from './support/channels-client.js';
import { HubServer } from './support/hub-process.js';

let server: HubServer;

before(async () => {
  server = await HubServer.start({
    tokens: {
      alice: { user: 'alice', ttl: 600_000 },
      'alice-too': { user: 'alice', ttl: 600_000 },
      bob: { user: 'bob', ttl: 600_000 },
      'alice-short': { user: 'alice', ttl: 1_000 },
    },
    rooms: { 'room:alice': ['alice'] },
    hub: { authGrace: 1_500 },
  });
});

after(async () => {
  await server?.stop();
});

const open = (): Promise<ChannelsClient> => ChannelsClient.connect(`${server.ws}/ws`);
const texts = (client: ChannelsClient, channel: string): unknown[] => client.messages(channel).map((m) => m.data);

describe('switching identity over a live connection', () => {
  test("an auth as bob ends alice's private subscription (unsub push), and presence shows bob, not alice", async () => {
    const [client, publisher, watcher] = await Promise.all([open(), open(), open()]);
    try {
      await ok(publisher, 'auth', { token: 'alice-too' });
      await ok(watcher, 'auth', { token: 'bob' });
      await ok(watcher, 'sub', { ch: 'lobby' });
      await ok(client, 'auth', { token: 'alice' });
      await ok(client, 'sub', { ch: 'room:alice' });
      await ok(client, 'sub', { ch: 'lobby' });
      await ok(publisher, 'pub', { ch: 'room:alice', data: 'for alice' });
      await client.until(() => texts(client, 'room:alice').length === 1, "alice's message");

      await ok(client, 'auth', { token: 'bob' });
      const push = client.log.find((m) => m.op === 'unsub');
      assert.deepEqual({ ...push, message: undefined }, { op: 'unsub', ch: 'room:alice', code: 'forbidden', message: undefined });
      // Published in this order to one connection: once the lobby message is there, a room
      // message would have come before it.
      await ok(publisher, 'pub', { ch: 'room:alice', data: 'after the switch' });
      await ok(publisher, 'pub', { ch: 'lobby', data: 'marker' });
      await client.until(() => texts(client, 'lobby').includes('marker'), 'the lobby marker');
      assert.deepEqual(texts(client, 'room:alice'), ['for alice'], 'nothing of alice after the switch');
      assert.equal((await client.request('history', { ch: 'room:alice' })).code, 'forbidden');

      const members = (await ok(watcher, 'presence', { ch: 'lobby' })).members!.map((m) => m['id']).sort();
      assert.deepEqual(members, ['bob', 'bob'], 'the watcher and the switched client, both bob');
      const events = watcher.log.filter((m) => m.op === 'join' || m.op === 'leave').map((m) => `${m.op} ${String(m.member!['id'])}`);
      // The first join is the watcher's own, received right after its sub was answered.
      assert.deepEqual(events, ['join bob', 'join alice', 'leave alice', 'join bob']);
      await ok(client, 'sub', { ch: 'hall' });
      await ok(watcher, 'sub', { ch: 'hall' });
      assert.deepEqual((await ok(watcher, 'presence', { ch: 'hall' })).members!.map((m) => m['id']), ['bob', 'bob']);
    } finally {
      for (const peer of [client, publisher, watcher]) peer.terminate();
    }
  });

  test('at expiry nothing of the identity survives: subscriptions end, no delivery, then 4401 after the grace', async () => {
    const [client, publisher] = await Promise.all([open(), open()]);
    try {
      await ok(publisher, 'auth', { token: 'alice-too' });
      await ok(publisher, 'sub', { ch: 'room:alice' });
      await ok(client, 'auth', { token: 'alice-short' });
      await ok(client, 'sub', { ch: 'room:alice' });
      const push = await client.waitFor((m) => m.op === 'unsub', 'the unsub push at expiry', undefined, 0);
      assert.deepEqual([push.ch, push.code], ['room:alice', 'unauthorized']);
      await publisher.waitFor((m) => m.op === 'leave', "alice's leave", undefined, 0);
      await ok(publisher, 'pub', { ch: 'room:alice', data: 'after expiry' });
      // A ping sent after the publish was delivered comes back after anything sent for it.
      assert.equal((await client.request('ping')).op, 'pong');
      assert.deepEqual(texts(client, 'room:alice'), []);
      assert.equal((await client.closed).code, 4401);
    } finally {
      client.terminate();
      publisher.terminate();
    }
  });
});
