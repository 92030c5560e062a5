// The HTTP API across two nodes on one real redis-server: the whole app (createApp, in
// processes of their own, test/support/app-server.ts) on the Redis engine, the API called
// on node A for SDK and raw hotline.v1 clients on node B. A publish through A reaches
// subscribers on B; presence, channels and info through either node see both; disconnect
// and unsubscribe through A reach the user's connections on B.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type HotlineClient } from '../src/client/index.js';
import { WebSocket as HotlineWebSocket } from '../src/node/client.js';
import type { AttackTarget } from './support/attack.js';
import { apiResult } from './support/api-client.js';
import { startAppTarget } from './support/app-server.js';
import { ChannelsClient, ok } from './support/channels-client.js';
import { RedisServer, redisServerInstalled } from './support/redis-server.js';
import { within } from './support/wait.js';

const KEY = 'two-node-api-key-0123456789';
const skip = !redisServerInstalled() && process.env.CI !== 'true';
if (skip) process.stderr.write('\n*** SKIPPED: redis-server not installed — the HTTP API across Redis nodes did not run ***\n\n');

describe('the HTTP API across two nodes on one Redis', { skip: skip ? 'redis-server not installed' : false }, () => {
  let redis: RedisServer;
  let a: AttackTarget;
  let b: AttackTarget;
  const raws: ChannelsClient[] = [];
  const sdks: HotlineClient[] = [];

  before(async () => {
    if (!redisServerInstalled()) throw new Error('redis-server not installed: CI must run the Redis engine tests');
    redis = await RedisServer.start();
    [a, b] = await Promise.all([startAppTarget({ redis: redis.url, users: true, api: { key: KEY } }), startAppTarget({ redis: redis.url, users: true, api: { key: KEY } })]);
  });
  after(async () => {
    for (const client of raws) client.terminate();
    for (const client of sdks) client.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.close();
  });

  async function raw(node: AttackTarget, user: string): Promise<ChannelsClient> {
    const client = await ChannelsClient.connect(`${node.ws}/ws?user=${user}`);
    raws.push(client);
    return client;
  }

  function sdk(node: AttackTarget, user: string): HotlineClient {
    const client = connect(`${node.ws}/ws?user=${user}`, { WebSocket: HotlineWebSocket, reconnect: { initial: 20, max: 20 }, pingInterval: 0 });
    sdks.push(client);
    return client;
  }

  test('a publish through A reaches SDK subscribers on B, counted in delivered', async () => {
    const client = sdk(b, 'reader');
    const channel = client.channel<{ text: string }>('feed');
    const received = new Promise<{ text: string; offset: number }>((resolve) => channel.on('message', (data, meta) => resolve({ ...data, offset: meta.offset })));
    await within(channel.subscribe(), 'the SDK subscription on B');
    const result = await apiResult<{ offset: number; delivered: number }>(a.http, 'publish', { channel: 'feed', data: { text: 'from A' } }, KEY);
    assert.equal(result.delivered, 1, 'the subscriber on B counted');
    assert.deepEqual(await within(received, 'the message on B'), { text: 'from A', offset: result.offset });
  });

  test('presence and channels through either node list the subscribers of both', async () => {
    const onA = await raw(a, 'ada');
    const onB = await raw(b, 'lin');
    await ok(onA, 'sub', { ch: 'room:both' });
    await ok(onB, 'sub', { ch: 'room:both' });
    // A member joins once its sub is answered; a connection's next request runs after the
    // join is written, so each one's own presence request says its join has landed.
    await ok(onA, 'presence', { ch: 'room:both' });
    await ok(onB, 'presence', { ch: 'room:both' });
    for (const node of [a, b]) {
      const { members } = await apiResult<{ members: Array<{ id: string }> }>(node.http, 'presence', { channel: 'room:both' }, KEY);
      assert.deepEqual(members.map((m) => m.id).sort(), ['ada', 'lin']);
      const listed = await apiResult(node.http, 'channels', { pattern: 'room:*' }, KEY);
      assert.deepEqual(listed, { channels: [{ name: 'room:both', subscribers: 2 }], more: false });
    }
  });

  test('info through A lists both nodes with their connections', async () => {
    await raw(b, 'counted');
    const { nodes } = await apiResult<{ nodes: Array<{ node: string; connections: number }> }>(a.http, 'info', {}, KEY);
    assert.equal(nodes.length, 2);
    assert.notEqual(nodes[0]!.node, nodes[1]!.node);
    for (const node of nodes) assert.ok(node.connections >= 1, JSON.stringify(nodes));
  });

  test("disconnect through A closes the user's connections on both nodes; unsubscribe through A ends B's subscription", async () => {
    const onA = await raw(a, 'gone');
    const onB = await raw(b, 'gone');
    const stays = await raw(b, 'stays');
    await ok(stays, 'sub', { ch: 'u:room' });
    assert.deepEqual(await apiResult(a.http, 'unsubscribe', { user: 'stays', channel: 'u:room' }, KEY), { unsubscribed: 1 });
    assert.equal((await stays.waitFor((m) => m.op === 'unsub', 'the unsub push', undefined, 0)).code, 'forbidden');
    assert.deepEqual(await apiResult(a.http, 'disconnect', { user: 'gone', reason: 'account closed' }, KEY), { disconnected: 2 });
    assert.deepEqual(await onA.closed, { code: 4403, reason: 'account closed' });
    assert.deepEqual(await onB.closed, { code: 4403, reason: 'account closed' });
    await ok(stays, 'ping');
  });
});
