// Recovery over real sockets: a subscriber that drops, misses hundreds of messages while a
// publisher keeps going, and resumes with `since` gets every message exactly once, in
// order; resumes that cannot be served say recovered:false; idempotent publishes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEngine } from '../src/channels/index.js';
import type { ChannelsEndpointOptions } from '../src/server/channels.js';
import { ok, type ChannelsClient, type WireMessage } from './support/channels-client.js';
import { withChannels, type ChannelsServer } from './support/channels-server.js';
import { quietWindow, waitFor } from './support/wait.js';

const fast = { perSecond: 1_000_000, burst: 1_000_000 };

/** A server with rates no test here reaches. */
function withServer(options: ChannelsEndpointOptions<undefined>, body: (s: ChannelsServer<undefined>) => Promise<void>): Promise<void> {
  return withChannels({ publishRate: fast, subscribeRate: fast, ...options }, body);
}

/**
 * Publishes `{n}` for n = 1, 2, … to a channel without pause, a few requests in flight at
 * a time, until stopped. `acked` is the highest offset the server confirmed.
 */
class Publisher {
  acked = 0;
  sent = 0;
  private stopping = false;
  readonly done: Promise<void>;
  readonly offsets: number[] = [];

  constructor(
    private readonly client: ChannelsClient,
    private readonly channel: string,
    inFlight = 4,
  ) {
    this.done = Promise.all(Array.from({ length: inFlight }, () => this.lane())).then(() => undefined);
  }

  private async lane(): Promise<void> {
    while (!this.stopping) {
      const n = ++this.sent;
      const answer = await this.client.request('pub', { ch: this.channel, data: { n } });
      assert.equal(answer.op, 'ok', JSON.stringify(answer));
      this.offsets.push(answer.offset!);
      this.acked = Math.max(this.acked, answer.offset!);
      // Yield to the event loop so the other clients' traffic interleaves with ours.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async stop(): Promise<number> {
    this.stopping = true;
    await this.done;
    return this.acked;
  }
}

/** Checks a subscriber's messages of a channel: offsets from..to, each once, in order, data {n: offset}. */
function assertContiguous(messages: WireMessage[], from: number, to: number, what: string): void {
  const offsets = messages.map((m) => m.offset!);
  const expected = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  if (offsets.length !== expected.length || offsets.some((o, i) => o !== expected[i])) {
    const seen = new Set<number>();
    const duplicates = offsets.filter((o) => (seen.has(o) ? true : (seen.add(o), false)));
    const missing = expected.filter((o) => !seen.has(o));
    const outOfOrder = offsets.findIndex((o, i) => i > 0 && o <= offsets[i - 1]!);
    assert.fail(
      `${what}: expected offsets ${from}..${to} once each in order; got ${offsets.length} messages, ` +
        `duplicates ${JSON.stringify(duplicates.slice(0, 10))}, missing ${JSON.stringify(missing.slice(0, 10))}, ` +
        `first out of order at index ${outOfOrder}`,
    );
  }
  // The publisher publishes {n} and is alone on the channel, so offset n carries {n}.
  for (const m of messages) assert.deepEqual(m.data, { n: m.offset }, `${what}: the data of offset ${m.offset}`);
}

describe('recovery after missing messages', () => {
  test('a subscriber misses 500 messages, three times, while a publisher keeps publishing: every message exactly once, in order', async () => {
    await withServer({ engine: new MemoryEngine({ historySize: 5_000 }) }, async (s) => {
      const channel = 'feed';
      const pubClient = await s.connect();
      let subscriber = await s.connect();
      const first = await ok(subscriber, 'sub', { ch: channel });
      assert.deepEqual([first.offset, first.recovered], [0, false]);
      const epoch = first.epoch!;
      const publisher = new Publisher(pubClient, channel);

      /** Every message the subscriber handled, across its connections, in order. */
      const handled: WireMessage[] = [];
      let last = 0;
      let resumedAt = 0;
      for (let round = 1; round <= 3; round++) {
        // Take some live messages (past the replay), then drop the connection without a word.
        const liveFrom = resumedAt;
        await subscriber.until(
          () => (subscriber.messages(channel).at(-1)?.offset ?? 0) >= liveFrom + 50,
          `round ${round}: 50 live messages`,
          10_000,
        );
        subscriber.terminate();
        const got = subscriber.messages(channel);
        handled.push(...got);
        last = got.at(-1)!.offset!;
        assertContiguous(handled, 1, last, `before drop ${round}`);

        // Miss at least 500 while the publisher goes on.
        await waitFor(() => publisher.acked >= last + 500, `500 messages published after ${last}`, 10_000);

        // Come back and resume, the publisher still publishing.
        subscriber = await s.connect();
        const ackedAtResume = publisher.acked;
        const resumed = await ok(subscriber, 'sub', { ch: channel, since: { epoch, offset: last } });
        assert.equal(resumed.recovered, true, `round ${round}: recovered`);
        assert.equal(resumed.epoch, epoch);
        assert.ok(resumed.offset! >= ackedAtResume, 'the ok stands at or past what was published before it');
        assert.ok(resumed.offset! - last >= 500, `round ${round}: ${resumed.offset! - last} missed`);
        const okIndex = subscriber.log.indexOf(resumed);
        assert.ok(subscriber.log.slice(0, okIndex).every((m) => m.op !== 'msg'), 'the ok comes first');
        resumedAt = resumed.offset!;
      }
      // Let live traffic flow after the last resume, then stop and drain.
      await waitFor(() => publisher.acked >= resumedAt + 300, '300 live messages after the last resume', 10_000);
      const final = await publisher.stop();
      await subscriber.until(() => subscriber.messages(channel).at(-1)?.offset === final, `the last offset ${final}`, 10_000);
      await ok(subscriber, 'ping');
      handled.push(...subscriber.messages(channel));
      assertContiguous(handled, 1, final, 'over three drops and resumes');
      assert.ok(final >= resumedAt + 300, `the publisher went on after the last resume (final ${final}, resumed at ${resumedAt})`);

      // The publisher's offsets: each once, nothing skipped.
      assert.deepEqual(
        [...publisher.offsets].sort((a, b) => a - b),
        Array.from({ length: final }, (_, i) => i + 1),
      );
      assert.deepEqual(s.endpoint.hub.metrics.recoveries, { recovered: 3, notRecovered: 0 });
    });
  });

  test('two subscribers resume at once from different points while messages keep coming', async () => {
    await withServer({ engine: new MemoryEngine({ historySize: 5_000 }) }, async (s) => {
      const channel = 'pair';
      const publisher = new Publisher(await s.connect(), channel, 2);
      const watcher = await s.connect();
      const { epoch } = await ok(watcher, 'sub', { ch: channel, since: { epoch: 'none', offset: 0 } });
      await waitFor(() => publisher.acked >= 600, '600 published', 10_000);
      const a = await s.connect();
      const b = await s.connect();
      const [ra, rb] = await Promise.all([
        ok(a, 'sub', { ch: channel, since: { epoch, offset: 10 } }),
        ok(b, 'sub', { ch: channel, since: { epoch, offset: 300 } }),
      ]);
      assert.equal(ra.recovered, true);
      assert.equal(rb.recovered, true);
      await waitFor(() => publisher.acked >= Math.max(ra.offset!, rb.offset!) + 200, 'more live traffic', 10_000);
      const final = await publisher.stop();
      for (const c of [a, b, watcher]) await c.until(() => c.messages(channel).at(-1)?.offset === final, 'the end', 10_000);
      assertContiguous(a.messages(channel), 11, final, 'a');
      assertContiguous(b.messages(channel), 301, final, 'b');
    });
  });

  test('history first, then sub with since from its epoch and last offset: no gap', async () => {
    await withServer({}, async (s) => {
      const p = await s.connect();
      for (let n = 1; n <= 30; n++) await ok(p, 'pub', { ch: 'h', data: { n } });
      const c = await s.connect();
      const history = await ok(c, 'history', { ch: 'h', limit: 20 });
      assert.equal(history.messages!.length, 20);
      const lastSeen = history.messages!.at(-1)!.offset;
      for (let n = 31; n <= 35; n++) await ok(p, 'pub', { ch: 'h', data: { n } });
      const sub = await ok(c, 'sub', { ch: 'h', since: { epoch: history.epoch, offset: lastSeen } });
      assert.deepEqual([sub.recovered, sub.offset], [true, 35]);
      await ok(p, 'pub', { ch: 'h', data: { n: 36 } });
      await c.until(() => c.messages('h').length === 6, 'replay and live');
      assertContiguous(c.messages('h'), 31, 36, 'after history');
    });
  });

  test('resuming from the current offset: recovered, nothing replayed, live from offset + 1', async () => {
    await withServer({}, async (s) => {
      const p = await s.connect();
      for (let n = 1; n <= 5; n++) await ok(p, 'pub', { ch: 'now', data: { n } });
      const c = await s.connect();
      const { epoch } = await ok(c, 'history', { ch: 'now' });
      const sub = await ok(c, 'sub', { ch: 'now', since: { epoch, offset: 5 } });
      assert.ok(typeof sub['client'] === 'string' && sub['client'] !== '', `a client id in ${JSON.stringify(sub)}`);
      assert.deepEqual(sub, { op: 'ok', id: sub.id, epoch, offset: 5, recovered: true, client: sub['client'] });
      await ok(p, 'pub', { ch: 'now', data: { n: 6 } });
      await c.until(() => c.messages('now').length === 1, 'the live message');
      assertContiguous(c.messages('now'), 6, 6, 'live');
    });
  });
});

describe('resumes that cannot be served', () => {
  test('an unknown epoch: recovered false, no replay, then live messages', async () => {
    await withServer({}, async (s) => {
      const p = await s.connect();
      for (let n = 1; n <= 10; n++) await ok(p, 'pub', { ch: 'e', data: { n } });
      const c = await s.connect();
      const sub = await ok(c, 'sub', { ch: 'e', since: { epoch: 'not-this-one', offset: 3 } });
      assert.equal(sub.recovered, false);
      assert.equal(sub.offset, 10);
      assert.notEqual(sub.epoch, 'not-this-one');
      for (let n = 11; n <= 13; n++) await ok(p, 'pub', { ch: 'e', data: { n } });
      await c.until(() => c.messages('e').length === 3, 'the live messages');
      await ok(c, 'ping');
      assertContiguous(c.messages('e'), 11, 13, 'live after a failed resume');
    });
  });

  test('a server restart (a new memory engine) changes the epoch: recovered false', async () => {
    let oldEpoch = '';
    await withServer({}, async (s) => {
      const c = await s.connect();
      oldEpoch = (await ok(c, 'sub', { ch: 'r' })).epoch!;
      await ok(c, 'pub', { ch: 'r', data: { n: 1 } });
    });
    await withServer({}, async (s) => {
      const c = await s.connect();
      const sub = await ok(c, 'sub', { ch: 'r', since: { epoch: oldEpoch, offset: 1 } });
      assert.equal(sub.recovered, false);
      assert.notEqual(sub.epoch, oldEpoch);
      assert.equal(sub.offset, 0);
      await ok(c, 'pub', { ch: 'r', data: { n: 1 } });
      await c.until(() => c.messages('r').length === 1, 'the live message');
      assertContiguous(c.messages('r'), 1, 1, 'new epoch');
    });
  });

  test('history trimmed past the resume point (historySize 10): recovered false, no replay, then live', async () => {
    await withServer({ engine: new MemoryEngine({ historySize: 10 }) }, async (s) => {
      const p = await s.connect();
      const c = await s.connect();
      const { epoch } = await ok(c, 'sub', { ch: 't' });
      for (let n = 1; n <= 5; n++) await ok(p, 'pub', { ch: 't', data: { n } });
      await c.until(() => c.messages('t').length === 5, 'five messages');
      c.terminate();
      for (let n = 6; n <= 55; n++) await ok(p, 'pub', { ch: 't', data: { n } });
      const back = await s.connect();
      const sub = await ok(back, 'sub', { ch: 't', since: { epoch, offset: 5 } });
      assert.deepEqual([sub.recovered, sub.epoch, sub.offset], [false, epoch, 55]);
      await ok(p, 'pub', { ch: 't', data: { n: 56 } });
      await back.until(() => back.messages('t').length === 1, 'the live message');
      await ok(back, 'ping');
      assertContiguous(back.messages('t'), 56, 56, 'only live after an unrecoverable resume');
      // Had it resumed within what is kept, it would have recovered.
      const within = await s.connect();
      const kept = await ok(within, 'sub', { ch: 't', since: { epoch, offset: 46 } });
      assert.equal(kept.recovered, true);
      await within.until(() => within.messages('t').length === 10, 'the replay of 47..56');
      assertContiguous(within.messages('t'), 47, 56, 'within history');
    });
  });

  test('an offset ahead of the channel: recovered false', async () => {
    await withServer({}, async (s) => {
      const c = await s.connect();
      const { epoch } = await ok(c, 'history', { ch: 'ahead' });
      await ok(c, 'pub', { ch: 'ahead', data: { n: 1 } });
      const other = await s.connect();
      const sub = await ok(other, 'sub', { ch: 'ahead', since: { epoch, offset: 7 } });
      assert.deepEqual([sub.recovered, sub.offset], [false, 1]);
      await quietWindow(20);
      assert.deepEqual(other.messages('ahead'), []);
    });
  });
});

describe('idempotent publishes over the wire', () => {
  test('the same key twice: the same offset, delivered 0 the second time, subscribers see it once', async () => {
    await withServer({}, async (s) => {
      const sub1 = await s.connect();
      const sub2 = await s.connect();
      await ok(sub1, 'sub', { ch: 'orders' });
      await ok(sub2, 'sub', { ch: 'orders' });
      const publisher = await s.connect();
      // The sender id is the client's own (the SDK makes one at random): keys are scoped to it.
      const sender = 'c7f3-client';
      const first = await publisher.request('pub', { ch: 'orders', data: { sku: 'A-1' }, key: 'c7f3-0001', sender });
      const again = await publisher.request('pub', { ch: 'orders', data: { sku: 'A-1' }, key: 'c7f3-0001', sender });
      assert.deepEqual(first, { op: 'ok', id: 1, offset: 1, delivered: 2 });
      assert.deepEqual(again, { op: 'ok', id: 2, offset: 1, delivered: 0 });

      // Resent after a reconnect, as a client does after losing its connection mid-publish.
      publisher.terminate();
      const reconnected = await s.connect();
      const resent = await reconnected.request('pub', { ch: 'orders', data: { sku: 'A-1' }, key: 'c7f3-0001', sender });
      assert.deepEqual(resent, { op: 'ok', id: 1, offset: 1, delivered: 0 });

      const next = await ok(reconnected, 'pub', { ch: 'orders', data: { sku: 'B-2' }, key: 'c7f3-0002', sender });
      assert.equal(next.offset, 2);
      // The same key on another channel is another publish.
      const elsewhere = await ok(reconnected, 'pub', { ch: 'invoices', data: { sku: 'A-1' }, key: 'c7f3-0001', sender });
      assert.deepEqual([elsewhere.offset, elsewhere.delivered], [1, 0]);

      for (const c of [sub1, sub2]) {
        await c.until(() => c.messages('orders').length === 2, 'two messages');
        await ok(c, 'ping');
        assert.deepEqual(c.messages('orders'), [
          { op: 'msg', ch: 'orders', offset: 1, data: { sku: 'A-1' } },
          { op: 'msg', ch: 'orders', offset: 2, data: { sku: 'B-2' } },
        ]);
      }
      const history = await ok(sub1, 'history', { ch: 'orders' });
      assert.deepEqual(
        history.messages!.map((m) => m.offset),
        [1, 2],
      );
      assert.equal(s.endpoint.hub.metrics.duplicatePublishes, 2);
    });
  });

  test('the same key sent many times at once is published once', async () => {
    await withServer({}, async (s) => {
      const watcher = await s.connect();
      await ok(watcher, 'sub', { ch: 'burst' });
      const clients = await Promise.all(Array.from({ length: 5 }, () => s.connect()));
      const answers = await Promise.all(
        // One sender's retries over several connections (keys are scoped to the sender).
        clients.flatMap((c) => Array.from({ length: 4 }, () => c.request('pub', { ch: 'burst', data: 'x', key: 'one', sender: 'one-client' }))),
      );
      assert.ok(
        answers.every((a) => a.op === 'ok' && a.offset === 1),
        'every repeat is answered with the first offset',
      );
      assert.equal(answers.filter((a) => a.delivered === 1).length, 1);
      await quietWindow(30);
      await ok(watcher, 'ping');
      assert.equal(watcher.messages('burst').length, 1);
    });
  });
});
