// Three hotline server processes on one Redis (each `channelsEndpoint({ engine: new
// RedisEngine(url) })` behind serve() on its own port), with `ws` clients spread across
// them: exactly-once, in-order delivery to every subscriber on every node, `delivered`
// counting subscribers on all nodes, recovery on another node than the one a client left,
// and a node killed with SIGKILL whose presence members leave within the node TTL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelsClient, type WireMessage } from './support/channels-client.js';
import { quietWindow, waitFor } from './support/wait.js';
import { RedisNodeProcess } from './support/redis-node.js';
import { RedisServer, redisServerInstalled } from './support/redis-server.js';

/** Short, so that a killed node's members go within a second or two. */
const NODE_TTL = 1_200;
const HEARTBEAT = 300;

const skip = !redisServerInstalled() && process.env.CI !== 'true';
if (skip) process.stderr.write('\n*** SKIPPED: redis-server not installed — the multi-node Redis tests did not run ***\n\n');

describe('three hotline nodes on one Redis', { skip: skip ? 'redis-server not installed' : false }, () => {
  let redis: RedisServer;
  let nodes: RedisNodeProcess[] = [];
  const clients: ChannelsClient[] = [];

  async function connect(node: RedisNodeProcess, user?: string): Promise<ChannelsClient> {
    const client = await ChannelsClient.connect(user === undefined ? node.url : `${node.url}?user=${user}`, { timeout: 10_000 });
    clients.push(client);
    return client;
  }

  before(async () => {
    if (!redisServerInstalled()) throw new Error('redis-server not installed: CI must run the Redis engine tests');
    redis = await RedisServer.start();
    nodes = await Promise.all(
      [0, 1, 2].map(() => RedisNodeProcess.start({ url: redis.url, engine: { nodeTtl: NODE_TTL, heartbeatInterval: HEARTBEAT } })),
    );
  });

  after(async () => {
    for (const client of clients) client.terminate();
    await Promise.all(nodes.map((node) => node.kill()));
    await redis?.close();
  });

  test('every message reaches every subscriber on every node exactly once, in order; delivered counts all nodes', async () => {
    const ch = 'fanout';
    const subscribers: ChannelsClient[] = [];
    for (const node of nodes) for (let i = 0; i < 3; i++) subscribers.push(await connect(node));
    for (const sub of subscribers) assert.equal((await sub.request('sub', { ch })).op, 'ok');
    // One publisher per node, each with up to 8 publishes in flight, 100 messages each.
    const publishers = await Promise.all(nodes.map((node) => connect(node)));
    const perPublisher = 100;
    const acks = new Map<number, string>(); // offset -> data
    const delivered: number[] = [];
    await Promise.all(
      publishers.map(async (publisher, p) => {
        const offsets: number[] = [];
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < perPublisher) {
            const data = `p${p}-${next++}`;
            const answer = await publisher.request('pub', { ch, data });
            assert.equal(answer.op, 'ok', JSON.stringify(answer));
            assert.ok(!acks.has(answer.offset!), `offset ${answer.offset} given twice`);
            acks.set(answer.offset!, data);
            offsets.push(answer.offset!);
            delivered.push(answer.delivered!);
          }
        };
        await Promise.all(Array.from({ length: 8 }, worker));
        // A connection's publishes are carried out in the order sent: rising offsets.
        const mine = [...acks].filter(([, data]) => data.startsWith(`p${p}-`)).sort((a, b) => a[0] - b[0]);
        assert.deepEqual(
          mine.map(([, data]) => Number(data.split('-')[1])),
          Array.from({ length: perPublisher }, (_, i) => i),
          'each publisher’s messages in the order it sent them',
        );
      }),
    );
    const total = perPublisher * publishers.length;
    assert.deepEqual(
      [...acks.keys()].sort((a, b) => a - b),
      Array.from({ length: total }, (_, i) => i + 1),
      'offsets 1..N, each acknowledged once',
    );
    assert.ok(
      delivered.every((n) => n === subscribers.length),
      `delivered counts all ${subscribers.length} subscribers on 3 nodes (got ${[...new Set(delivered)].join(', ')})`,
    );
    for (const [i, sub] of subscribers.entries()) {
      await sub.until(() => sub.messages(ch).length >= total, `subscriber ${i} to get ${total} messages`, 20_000);
    }
    // A duplicate would come after the last message: in this window it would have.
    await quietWindow(100);
    for (const [i, sub] of subscribers.entries()) {
      const got = sub.messages(ch);
      assert.equal(got.length, total, `subscriber ${i} (node ${Math.floor(i / 3)}): no duplicates`);
      assert.deepEqual(
        got.map((m) => m.offset),
        Array.from({ length: total }, (_, n) => n + 1),
        `subscriber ${i}: contiguous offsets in order`,
      );
      assert.ok(
        got.every((m) => m.data === acks.get(m.offset!)),
        `subscriber ${i}: each offset carries the data that was acknowledged with it`,
      );
    }
  });

  test('a client that left node A recovers on node B: recovered:true, every missed message once, in order, then live', async () => {
    const ch = 'recover';
    const first = await connect(nodes[0]!);
    const ok = await first.request('sub', { ch });
    const publisher = await connect(nodes[2]!);
    for (let n = 1; n <= 5; n++) assert.equal((await publisher.request('pub', { ch, data: n })).op, 'ok');
    await first.until(() => first.messages(ch).length === 5, 'the first five');
    const epoch = ok.epoch!;
    const last = first.messages(ch).at(-1)!.offset!;
    await first.close();
    for (let n = 6; n <= 25; n++) assert.equal((await publisher.request('pub', { ch, data: n })).op, 'ok');
    const second = await connect(nodes[1]!);
    const answer = await second.request('sub', { ch, since: { epoch, offset: last } });
    assert.deepEqual([answer.op, answer.recovered, answer.epoch, answer.offset], ['ok', true, epoch, 25]);
    for (let n = 26; n <= 30; n++) assert.equal((await publisher.request('pub', { ch, data: n })).op, 'ok');
    await second.until(() => second.messages(ch).length >= 25, 'the missed and the live messages');
    // A duplicate would come after the last message: in this window it would have.
    await quietWindow(100);
    const got = second.messages(ch);
    assert.deepEqual(
      got.map((m) => [m.offset, m.data]),
      Array.from({ length: 25 }, (_, i) => [i + 6, i + 6]),
    );
    // The ok came before the replay.
    const okIndex = second.log.findIndex((m) => m.id === answer.id);
    assert.ok(second.log.findIndex((m) => m.op === 'msg') > okIndex);
  });

  test('a node killed with SIGKILL: its members leave everywhere within the node TTL, and it is no longer counted', async () => {
    const ch = 'presence';
    const watchers = [await connect(nodes[0]!, 'watcher0'), await connect(nodes[1]!, 'watcher1')];
    for (const w of watchers) assert.equal((await w.request('sub', { ch })).op, 'ok');
    const doomed = [await connect(nodes[2]!, 'doomed-a'), await connect(nodes[2]!, 'doomed-b')];
    for (const d of doomed) assert.equal((await d.request('sub', { ch })).op, 'ok');
    const ids = async (client: ChannelsClient): Promise<string[]> => {
      const answer = await client.request('presence', { ch });
      return (answer.members ?? []).map((m) => String(m['id'])).sort();
    };
    for (const w of watchers) {
      await waitFor(async () => (await ids(w)).length === 4, 'all four members on every node');
      assert.deepEqual(await ids(w), ['doomed-a', 'doomed-b', 'watcher0', 'watcher1']);
    }
    const before = await watchers[0]!.request('pub', { ch, data: 'before' });
    assert.equal(before.delivered, 4);

    const killed = Date.now();
    await nodes[2]!.kill();
    const leaves = (w: ChannelsClient): string[] =>
      w
        .ofOp('leave', ch)
        .map((m: WireMessage) => String(m.member?.['id']))
        .sort();
    for (const w of watchers) {
      await w.until(() => leaves(w).length >= 2, 'leave events for both members of the killed node', NODE_TTL + 5_000);
    }
    const elapsed = Date.now() - killed;
    for (const w of watchers) {
      assert.deepEqual(leaves(w), ['doomed-a', 'doomed-b'], 'exactly one leave per member');
      assert.deepEqual(await ids(w), ['watcher0', 'watcher1']);
    }
    // Within the TTL (plus one heartbeat, and slack for a loaded machine).
    assert.ok(elapsed <= NODE_TTL + HEARTBEAT + 1_500, `leaves after ${elapsed} ms`);
    const after = await watchers[0]!.request('pub', { ch, data: 'after' });
    assert.equal(after.delivered, 2, 'the dead node’s subscribers are no longer counted');
  });
});
