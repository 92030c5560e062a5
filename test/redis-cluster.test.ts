// The Redis engine on a real Redis Cluster (3 primaries, 3 replicas, started here; see
// test/support/redis-cluster.ts): the shared engine suite; channels spread over every shard
// with sharded pub/sub, each message once and in order; and a primary killed mid-stream
// (its replica promoted) with the loss accounting of test/redis-outage.test.ts: the
// subscriber either gets every acknowledged message, in order, once, or is closed with 1012
// and told `recovered: false` when it resubscribes, and then gets everything again.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelMessage } from '../src/channels/index.js';
import { RedisEngine } from '../src/redis/index.js';
import { ChannelsClient } from './support/channels-client.js';
import { engineSuite, Recorder } from './support/engine-suite.js';
import { Publisher } from './support/publisher.js';
import { RedisCluster, skipWithoutCluster } from './support/redis-cluster.js';
import { RedisNodeProcess } from './support/redis-node.js';
import { waitFor } from './support/wait.js';

const skip = skipWithoutCluster('the Redis Cluster tests');

let started: Promise<RedisCluster> | undefined;
/** One cluster for the file: forming one takes seconds. */
function cluster(): Promise<RedisCluster> {
  started ??= RedisCluster.start();
  return started;
}
after(async () => {
  if (started !== undefined) await (await started).close();
});

let prefixes = 0;
function freshPrefix(): string {
  return `c${process.pid}x${prefixes++}:`;
}

/** Two nodes on the cluster, with a fresh key prefix, and the clients a test connects to them. */
async function twoNodes(): Promise<{ c: RedisCluster; prefix: string; nodes: RedisNodeProcess[]; clients: ChannelsClient[]; connect(node: RedisNodeProcess): Promise<ChannelsClient> }> {
  const c = await cluster();
  const prefix = freshPrefix();
  const engine = { cluster: true, prefix, commandTimeout: 1_000, heartbeatInterval: 200 };
  const nodes = await Promise.all([0, 1].map(() => RedisNodeProcess.start({ url: c.url, engine })));
  const clients: ChannelsClient[] = [];
  const connect = async (node: RedisNodeProcess): Promise<ChannelsClient> => {
    const client = await ChannelsClient.connect(node.url, { timeout: 10_000 });
    clients.push(client);
    return client;
  };
  return { c, prefix, nodes, clients, connect };
}

if (!skip) {
  engineSuite('redis cluster', async (options) => {
    const { url } = await cluster();
    return { engine: new RedisEngine(url, { ...options, cluster: true, prefix: freshPrefix() }), cleanup: async () => {} };
  });
}

describe('the Redis engine on a Redis Cluster', { skip: skip ? 'redis-server 7+ or redis-cli not installed' : false }, () => {
  test('channels on every shard: each message reaches the other node once and in order, over its own shard only', async () => {
    const c = await cluster();
    const prefix = freshPrefix();
    const a = new RedisEngine(c.url, { cluster: true, prefix });
    const b = new RedisEngine(c.url, { cluster: true, prefix });
    const recorder = new Recorder();
    await a.start(recorder);
    await b.start(new Recorder());
    try {
      const channels = Array.from({ length: 48 }, (_, i) => `spread:${i}`);
      const shardOf = new Map<string, number>();
      for (const ch of channels) shardOf.set(ch, await c.primaryOf(`${prefix}{${ch}}`));
      assert.equal(new Set(shardOf.values()).size, 3, 'the channels fall on all three primaries');
      for (const ch of channels) await a.subscribe(ch);
      // Sharded pub/sub: each channel is subscribed on its own shard's primary, and nowhere with classic SUBSCRIBE.
      for (const port of new Set(shardOf.values())) {
        const listed = new Set((await c.cli(port, 'pubsub', 'shardchannels', `${prefix}{spread:*`)).split('\n').filter((l) => l !== ''));
        assert.deepEqual(listed, new Set(channels.filter((ch) => shardOf.get(ch) === port).map((ch) => `${prefix}{${ch}}`)), `the shard channels of ${port}`);
        assert.equal(await c.cli(port, 'pubsub', 'channels', `${prefix}*`), '', `no classic pub/sub channel on ${port}`);
      }
      const rounds = 15;
      for (let n = 1; n <= rounds; n++) await Promise.all(channels.map((ch) => b.publish(ch, JSON.stringify(`${ch}#${n}`))));
      await waitFor(() => recorder.messages.length >= channels.length * rounds, 'every message delivered', 20_000);
      for (const ch of channels) {
        const got = recorder.on(ch);
        assert.deepEqual(
          got.map((m: ChannelMessage) => [m.offset, m.data]),
          Array.from({ length: rounds }, (_, i) => [i + 1, JSON.stringify(`${ch}#${i + 1}`)]),
          `${ch}: every message once, in order`,
        );
      }
      assert.equal(recorder.messages.length, channels.length * rounds, 'nothing more');
      // Counts: the subscriber node's count, summed in each channel's slot.
      a.setLocalSubscriberCount('spread:0', 4);
      await waitFor(async () => (await b.publish('spread:0', '"count"')).subscribers === 4, 'the count of the other node');
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a primary killed mid-stream and its replica promoted: every acknowledged message arrives once in order, or the subscriber is told', async () => {
    const { c, prefix, nodes, clients, connect } = await twoNodes();
    let publisher: Publisher | undefined;
    try {
      const ch = 'failover';
      const subscriber = await connect(nodes[0]!);
      const ok = await subscriber.request('sub', { ch });
      assert.equal(ok.op, 'ok');
      const oldEpoch = ok.epoch!;
      publisher = new Publisher(await connect(nodes[1]!), ch);
      await publisher.waitForAcks(50, 'acks before the failover');

      await c.killPrimary(await c.primaryOf(`${prefix}{${ch}}`));
      await publisher.waitForFailures(1, 'a publish answered with err while the shard had no primary', 20_000);
      const firstFailure = publisher.failed[0]!.at;
      await publisher.waitForAcks(publisher.acked.length + 50, 'acks after the promotion', 30_000);
      const marker = await publisher.stop();
      const oldAcks = publisher.acked.filter((a) => a.at < firstFailure);
      const newAcks = publisher.acked.filter((a) => a.at > firstFailure);

      const received = (): Array<{ offset: number; data: string }> => subscriber.messages(ch).map((m) => ({ offset: m.offset!, data: String(m.data) }));
      const outcome = await Promise.race([
        subscriber.closed.then((close) => ({ closed: close.code })),
        subscriber.until(() => subscriber.messages(ch).some((m) => m.data === marker.data), 'the marker', 20_000).then(() => ({ closed: 0 })),
      ]);
      const before = received();
      assert.deepEqual(
        before.map((m) => m.offset),
        Array.from({ length: before.length }, (_, i) => i + 1),
        'what arrived on the first subscription: 1..N, none twice, none missing',
      );
      if (outcome.closed === 0) {
        // It carried on: one epoch, every acknowledged message there.
        const byOffset = new Map(before.map((m) => [m.offset, m.data]));
        for (const { offset, data } of publisher.acked) assert.equal(byOffset.get(offset), data, `acknowledged offset ${offset}`);
        return;
      }
      assert.equal(outcome.closed, 1012, 'told to resubscribe');
      const got = new Map(before.map((m) => [m.offset, m.data]));
      for (const { offset, data } of oldAcks) {
        if (got.has(offset)) assert.equal(got.get(offset), data, `old epoch, acknowledged offset ${offset}`);
      }
      // Resubscribing from where it was is not recovered: what it may have missed is not passed off as complete.
      const again = await connect(nodes[0]!);
      const answer = await again.request('sub', { ch, since: { epoch: oldEpoch, offset: before.at(-1)?.offset ?? 0 } });
      assert.equal(answer.op, 'ok');
      assert.equal(answer.recovered, false);
      assert.notEqual(answer.epoch, oldEpoch, 'the failover began a new epoch');
      // The new epoch from history holds every message acknowledged after the failover, in order.
      const history = await again.request('history', { ch, limit: 1_000 });
      const all = (history.messages ?? []).map((m) => ({ offset: m.offset, data: String(m.data) }));
      assert.deepEqual(all.map((m) => m.offset), Array.from({ length: all.length }, (_, i) => i + 1));
      const newByOffset = new Map(all.map((m) => [m.offset, m.data]));
      for (const { offset, data } of newAcks) assert.equal(newByOffset.get(offset), data, `new epoch, acknowledged offset ${offset}`);
      assert.equal(newByOffset.get(marker.offset), marker.data);
    } finally {
      await publisher?.stop().catch(() => {});
      for (const client of clients) client.terminate();
      await Promise.all(nodes.map((node) => node.kill()));
    }
  });

  test('a channel\'s slot migrated to another primary mid-stream (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE): every acknowledged message arrives once in order, or the subscriber is told', async () => {
    const { c, prefix, nodes, clients, connect } = await twoNodes();
    let publisher: Publisher | undefined;
    try {
      const ch = 'migrating';
      const key = `${prefix}{${ch}}`;
      // Two subscribers, one on each node: the publisher's node and the other.
      const subscribers = [await connect(nodes[0]!), await connect(nodes[1]!)];
      const oks = await Promise.all(subscribers.map((s) => s.request('sub', { ch })));
      for (const ok of oks) assert.equal(ok.op, 'ok');
      const oldEpoch = oks[0]!.epoch!;
      publisher = new Publisher(await connect(nodes[1]!), ch);
      await publisher.waitForAcks(50, 'acks before the migration');

      const owner = await c.primaryOf(key);
      const slot = Number(await c.cli(owner, 'cluster', 'keyslot', key));
      const target = (await c.topology()).find((n) => n.primary && !n.failed && n.port !== owner)!.port;
      const movedAt = Date.now();
      await c.moveSlot(slot, target);
      assert.equal(await c.primaryOf(key), target, 'the slot moved');
      await publisher.waitForAcks(publisher.acked.length + 50, 'acks after the migration', 30_000);
      const marker = await publisher.stop();
      // Publishes refused while the slot moved are fine (the publisher was told); acknowledged ones must arrive.
      for (const f of publisher.failed) assert.ok(f.at >= movedAt, `a publish refused before the migration: ${f.message}`);

      for (const [i, subscriber] of subscribers.entries()) {
        const received = (): Array<{ offset: number; data: string }> => subscriber.messages(ch).map((m) => ({ offset: m.offset!, data: String(m.data) }));
        const outcome = await Promise.race([
          subscriber.closed.then((close) => ({ closed: close.code })),
          subscriber.until(() => subscriber.messages(ch).some((m) => m.data === marker.data), 'the marker', 20_000).then(() => ({ closed: 0 })),
        ]);
        const got = received();
        assert.deepEqual(
          got.map((m) => m.offset),
          Array.from({ length: got.length }, (_, n) => n + 1),
          `subscriber ${i}: 1..N, none twice, none missing`,
        );
        if (outcome.closed === 0) {
          const byOffset = new Map(got.map((m) => [m.offset, m.data]));
          for (const { offset, data } of publisher.acked) assert.equal(byOffset.get(offset), data, `subscriber ${i}: acknowledged offset ${offset}`);
          continue;
        }
        assert.equal(outcome.closed, 1012, `subscriber ${i}: told to resubscribe`);
        const again = await connect(nodes[i]!);
        const answer = await again.request('sub', { ch, since: { epoch: oldEpoch, offset: got.at(-1)?.offset ?? 0 } });
        assert.deepEqual([answer.op, answer.recovered], ['ok', false], `subscriber ${i}: what it may have missed is not passed off as complete`);
      }
    } finally {
      await publisher?.stop().catch(() => {});
      for (const client of clients) client.terminate();
      await Promise.all(nodes.map((node) => node.kill()));
    }
  });
});

