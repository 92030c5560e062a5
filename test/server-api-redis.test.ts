// The server API across nodes: two hotline processes on one real redis-server (each its
// own RedisEngine, test/support/server-api-node.ts), the API called on node A for
// connections on node B. Publish (delivered counts both nodes; recovered on B), send,
// disconnect, unsubscribe and call reach B's connections through the node bus; a node that
// is gone or stopped answering gives the caller client_gone or timeout, never a hang.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type HotlineClient } from '../src/client/index.js';
import { WebSocket as HotlineWebSocket } from '../src/node/client.js';
import { ChannelsClient } from './support/channels-client.js';
import { RedisServer, redisServerInstalled } from './support/redis-server.js';
import { ServerApiNode } from './support/server-api-node.js';

const skip = !redisServerInstalled() && process.env.CI !== 'true';
if (skip) process.stderr.write('\n*** SKIPPED: redis-server not installed — the cross-node server API tests did not run ***\n\n');

describe('the server API across two nodes on one Redis', { skip: skip ? 'redis-server not installed' : false }, () => {
  let redis: RedisServer;
  let a: ServerApiNode;
  let b: ServerApiNode;
  const raws: ChannelsClient[] = [];
  const sdks: HotlineClient[] = [];

  before(async () => {
    if (!redisServerInstalled()) throw new Error('redis-server not installed: CI must run the Redis engine tests');
    redis = await RedisServer.start();
    const options = { redis: redis.url, engine: { nodeTtl: 3_000, heartbeatInterval: 500 }, hub: { nodeTimeout: 1_000 } };
    [a, b] = await Promise.all([ServerApiNode.start(options), ServerApiNode.start(options)]);
  });

  after(async () => {
    for (const client of raws) client.terminate();
    for (const client of sdks) client.close();
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  async function raw(node: ServerApiNode, user?: string): Promise<ChannelsClient> {
    const client = await ChannelsClient.connect(node.ws(user));
    raws.push(client);
    return client;
  }

  function sdk(node: ServerApiNode, user: string): HotlineClient {
    const client = connect(node.ws(user), { WebSocket: HotlineWebSocket, reconnect: { initial: 20, max: 20 }, pingInterval: 0 });
    sdks.push(client);
    return client;
  }

  async function idOf(client: ChannelsClient): Promise<string> {
    return (await client.request('rpc', { method: 'whoami' })).result as string;
  }

  test("client ids name their node: a's and b's differ in their node part", async () => {
    const [onA, onB] = [await idOf(await raw(a)), await idOf(await raw(b))];
    assert.ok(onA.startsWith(`${a.nodeId}.`), onA);
    assert.ok(onB.startsWith(`${b.nodeId}.`), onB);
    assert.notEqual(a.nodeId, b.nodeId);
  });

  test('a publish on A reaches subscribers on both nodes and counts them; B recovers it after a reconnect', async () => {
    const onA = await raw(a);
    const onB = await raw(b);
    const sub = await onB.request('sub', { ch: 'x:feed' });
    await onA.request('sub', { ch: 'x:feed' });
    const first = await a.ok<{ offset: number; delivered: number }>('publish', 'x:feed', { n: 1 });
    assert.deepEqual([first.offset, first.delivered], [1, 2]);
    await onB.until(() => onB.messages('x:feed').length === 1, 'the message on B');
    await onB.close();
    await a.ok('publish', 'x:feed', { n: 2 });
    const again = await raw(b);
    const resumed = await again.request('sub', { ch: 'x:feed', since: { epoch: sub.epoch, offset: 1 } });
    assert.deepEqual([resumed.recovered, resumed.offset], [true, 2]);
    await again.until(() => again.messages('x:feed').length === 1, 'the replay');
    assert.deepEqual(again.messages('x:feed')[0]!.data, { n: 2 });
  });

  test('send from A reaches a user on both nodes and a client id on B; the count adds up the nodes', async () => {
    const onA = await raw(a, 'ada');
    const onB = [await raw(b, 'ada'), await raw(b, 'ada')];
    const lin = await raw(b, 'lin');
    assert.equal(await a.ok('send', { user: 'ada' }, 'to all of ada'), 3);
    for (const conn of [onA, ...onB]) {
      assert.deepEqual(await conn.waitFor((m) => m.op === 'message', 'the message', undefined, 0), { op: 'message', data: 'to all of ada' });
    }
    assert.equal(await a.ok('send', { client: await idOf(lin) }, 'to lin'), 1);
    assert.deepEqual(await lin.waitFor((m) => m.op === 'message', 'the message', undefined, 0), { op: 'message', data: 'to lin' });
    assert.equal(await a.ok('send', { user: 'nobody' }, 1), 0, 'both nodes answered 0');
  });

  test('disconnect and unsubscribe from A act on B', async () => {
    const kim = await raw(b, 'kim');
    const sam = await raw(b, 'sam');
    await sam.request('sub', { ch: 'x:room' });
    const watcher = await raw(a, 'watcher');
    await watcher.request('sub', { ch: 'x:room' });
    assert.equal(await a.ok('unsubscribe', { user: 'sam' }, 'x:room'), 1);
    assert.equal((await sam.waitFor((m) => m.op === 'unsub', 'the push', undefined, 0)).code, 'forbidden');
    await watcher.waitFor((m) => m.op === 'leave' && m.member?.['id'] === 'sam', 'sam leaving, seen on A', undefined, 0);
    assert.equal(await a.ok('disconnect', { client: await idOf(kim) }, { code: 4000, reason: 'bye' }), 1);
    assert.deepEqual(await kim.closed, { code: 4000, reason: 'bye' });
  });

  test("a call from A reaches the SDK's handler on B; a client that left B is client_gone", async () => {
    const client = sdk(b, 'ada-c');
    client.handle<number[]>('sum', (numbers) => numbers.reduce((x, y) => x + y, 0));
    const id = await client.rpc<string>('whoami');
    assert.ok(id.startsWith(`${b.nodeId}.`));
    assert.equal(await a.ok('call', id, 'sum', [1, 2, 3]), 6);
    assert.equal((await a.api('call', id, 'missing')).error?.code, 'no_handler');
    client.close();
    const deadline = Date.now() + 10_000;
    while ((await a.api('call', id, 'sum', [1])).error?.code !== 'client_gone') {
      if (Date.now() > deadline) throw new Error('the call never failed client_gone');
    }
  });

  test('a node that stops answering (SIGSTOP): a user command times out at nodeTimeout, a call at its timeout; then it serves again', async () => {
    const onB = await raw(b, 'stopped');
    const id = await idOf(onB);
    b.child.kill('SIGSTOP');
    try {
      const started = Date.now();
      const send = await a.api('send', { user: 'stopped' }, 1);
      assert.equal(send.error?.code, 'timeout', JSON.stringify(send));
      assert.ok(Date.now() - started >= 900, 'after nodeTimeout (1 s)');
      assert.equal((await a.api('call', id, 'anything', null, { timeout: 300 })).error?.code, 'timeout');
    } finally {
      b.child.kill('SIGCONT');
    }
    assert.equal(await a.ok('send', { user: 'stopped' }, 2), 1);
  });

  test('a node that is gone: its client ids are client_gone at once, and its users are not waited for', async () => {
    const onB = await raw(b, 'doomed');
    const id = await idOf(onB);
    await b.kill();
    const started = Date.now();
    const call = await a.api('call', id, 'anything');
    assert.equal(call.error?.code, 'client_gone');
    assert.match(call.error!.message, /node is gone/);
    assert.equal(await a.ok('send', { user: 'doomed' }, 1), 0);
    assert.ok(Date.now() - started < 900, `no timeout waited (${Date.now() - started} ms)`);
  });
});
