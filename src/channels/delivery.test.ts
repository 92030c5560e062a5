// Subscriptions and delivery: recovery from history while messages keep coming, requests
// around a pending sub, an engine that fails, and replays paced by a slow reader. The
// engine is a memory engine that the tests can hold back at the moments that matter.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Member } from '../wire/index.js';
import { EngineUnavailableError, type ChannelMessage, type Engine, type EngineListener, type HistoryQuery, type HistoryResult, type PublishOptions, type PublishResult } from './engine.js';
import type { ChannelHubOptions } from './hub-options.js';
import { MemoryEngine } from './memory-engine.js';
import { fast, gate, range, settle, withRig, type Auth, type FakeClient, type Rig } from '../../test/support/hub-rig.js';

/**
 * A memory engine whose history and subscribe can be held back, and whose deliveries to
 * the hub can be delayed (as an engine with a network between storing and delivering would).
 */
class ControlledEngine implements Engine {
  readonly inner: MemoryEngine;
  /** When set, history() waits for it: `read` says whether it reads before or after waiting. */
  historyGate: { wait: Promise<void>; read: 'before' | 'after'; started: () => void } | null = null;
  subscribeGate: Promise<void> | null = null;
  /** When true, deliveries queue until flush(). */
  delayDelivery = false;
  /** The next call of each of these methods rejects with this error. */
  failNext: Partial<Record<'publish' | 'subscribe' | 'history' | 'join', Error>> = {};
  /** Messages the engine delivered to the hub. */
  delivered = 0;
  private queued: ChannelMessage[] = [];
  private listener: EngineListener | null = null;

  constructor(inner = new MemoryEngine({ historySize: 1000 })) {
    this.inner = inner;
  }

  get healthy(): boolean {
    return this.inner.healthy;
  }

  start(listener: EngineListener): Promise<void> {
    this.listener = listener;
    return this.inner.start({
      message: (message) => {
        this.delivered++;
        if (this.delayDelivery) this.queued.push(message);
        else listener.message(message);
      },
      presence: (event) => listener.presence(event),
    });
  }

  flush(): void {
    const queued = this.queued;
    this.queued = [];
    for (const message of queued) this.listener!.message(message);
  }

  private failure(method: keyof ControlledEngine['failNext']): Error | undefined {
    const error = this.failNext[method];
    delete this.failNext[method];
    return error;
  }

  publish(channel: string, data: string, options?: PublishOptions): Promise<PublishResult> {
    const error = this.failure('publish');
    if (error !== undefined) return Promise.reject(error);
    return this.inner.publish(channel, data, options);
  }

  async subscribe(channel: string): Promise<void> {
    const error = this.failure('subscribe');
    if (error !== undefined) throw error;
    if (this.subscribeGate !== null) await this.subscribeGate;
    return this.inner.subscribe(channel);
  }

  unsubscribe(channel: string): Promise<void> {
    return this.inner.unsubscribe(channel);
  }

  async history(channel: string, query?: HistoryQuery): Promise<HistoryResult> {
    const error = this.failure('history');
    if (error !== undefined) throw error;
    const held = this.historyGate;
    if (held === null) return this.inner.history(channel, query);
    this.historyGate = null;
    let result: HistoryResult | null = null;
    if (held.read === 'before') result = await this.inner.history(channel, query);
    held.started();
    await held.wait;
    return result ?? this.inner.history(channel, query);
  }

  setLocalSubscriberCount(channel: string, count: number): void {
    this.inner.setLocalSubscriberCount(channel, count);
  }

  join(channel: string, client: string, member: Member): Promise<void> {
    const error = this.failure('join');
    if (error !== undefined) return Promise.reject(error);
    return this.inner.join(channel, client, member);
  }

  leave(channel: string, client: string): Promise<void> {
    return this.inner.leave(channel, client);
  }

  members(channel: string): Promise<Member[]> {
    return this.inner.members(channel);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Holds the next history() until the returned open() is called; `reading` settles once it is held. */
  holdHistory(read: 'before' | 'after'): { open(): void; reading: Promise<void> } {
    const wait = gate();
    const reading = gate();
    this.historyGate = { wait: wait.promise, read, started: reading.open };
    return { open: wait.open, reading: reading.promise };
  }
}

/** A rig on a {@link ControlledEngine}, where publishing is never rate limited. */
async function withControlled(options: ChannelHubOptions<Auth>, body: (rig: Rig, engine: ControlledEngine) => Promise<void>): Promise<void> {
  const engine = new ControlledEngine();
  await withRig({ engine, publishRate: fast, ...options }, (rig) => body(rig, engine));
}

describe('recovery while messages keep coming', () => {
  for (const read of ['before', 'after'] as const) {
    test(`messages published during the replay (history read ${read} they arrive) come once, in order`, async () => {
      await withControlled({}, async (rig, engine) => {
        const publisher = rig.client('pub');
        const watcher = rig.client('watch');
        const sub = await rig.ok(watcher, 'sub', { ch: 'race' });
        const epoch = sub.epoch!;
        for (let n = 1; n <= 10; n++) await rig.ok(publisher, 'pub', { ch: 'race', data: n });

        // A subscriber resumes from offset 5; its history read is held while 10 more arrive.
        const resumer = rig.client('resume');
        const held = engine.holdHistory(read);
        const subId = rig.send(resumer, 'sub', { ch: 'race', since: { epoch, offset: 5 } });
        await held.reading;
        for (let n = 11; n <= 20; n++) await rig.ok(publisher, 'pub', { ch: 'race', data: n });
        assert.equal(resumer.answer(subId), undefined, 'still recovering');
        assert.deepEqual(resumer.msgs('race'), [], 'nothing before the ok');
        held.open();
        await resumer.until(() => resumer.offsets('race').length === 15, 'the replay');
        for (let n = 21; n <= 25; n++) await rig.ok(publisher, 'pub', { ch: 'race', data: n });
        await resumer.until(() => resumer.offsets('race').length === 20, 'the live messages');
        await settle();

        const ok = resumer.answer(subId)!;
        assert.equal(ok.op, 'ok');
        assert.equal(ok.recovered, true);
        assert.equal(ok.epoch, epoch);
        assert.equal(ok.offset, read === 'before' ? 10 : 20);
        const okIndex = resumer.log.indexOf(ok);
        assert.ok(resumer.log.findIndex((m) => m.op === 'msg') > okIndex, 'the ok comes before every msg');
        assert.deepEqual(resumer.offsets('race'), range(6, 25), 'every message after 5, once, in order');
        assert.deepEqual(
          resumer.msgs('race').map((m) => m.data),
          range(6, 25),
        );
        assert.deepEqual(watcher.offsets('race'), range(1, 25), 'the live subscriber was not disturbed');
      });
    });
  }

  test('a first subscriber while the engine subscription is pending misses nothing and gets nothing twice', async () => {
    await withControlled({}, async (rig, engine) => {
      const publisher = rig.client('pub');
      await rig.ok(publisher, 'pub', { ch: 'pending', data: 1 });
      const first = await rig.ok(publisher, 'pub', { ch: 'pending', data: 2 });
      const epoch = (await rig.ok(publisher, 'history', { ch: 'pending' })).epoch!;
      assert.equal(first.offset, 2);

      const subscribed = gate();
      engine.subscribeGate = subscribed.promise;
      const resumer = rig.client('resume');
      const subId = rig.send(resumer, 'sub', { ch: 'pending', since: { epoch, offset: 1 } });
      await settle();
      // Published while the engine has not subscribed the channel yet: never delivered live.
      for (let n = 3; n <= 6; n++) await rig.ok(publisher, 'pub', { ch: 'pending', data: n });
      subscribed.open();
      engine.subscribeGate = null;
      await resumer.until(() => resumer.answer(subId) !== undefined, 'the ok');
      for (let n = 7; n <= 9; n++) await rig.ok(publisher, 'pub', { ch: 'pending', data: n });
      await resumer.until(() => resumer.offsets('pending').length >= 8, 'the messages');
      await settle();
      assert.equal(resumer.answer(subId)!.recovered, true);
      assert.deepEqual(resumer.offsets('pending'), range(2, 9));
    });
  });

  test('without since: the ok gives the offset, and only later messages follow, once', async () => {
    await withControlled({}, async (rig, engine) => {
      const publisher = rig.client('pub');
      const watcher = rig.client('watch');
      await rig.ok(watcher, 'sub', { ch: 'fresh' });
      for (let n = 1; n <= 3; n++) await rig.ok(publisher, 'pub', { ch: 'fresh', data: n });
      const joiner = rig.client('join');
      const held = engine.holdHistory('before');
      const subId = rig.send(joiner, 'sub', { ch: 'fresh' });
      await held.reading;
      for (let n = 4; n <= 6; n++) await rig.ok(publisher, 'pub', { ch: 'fresh', data: n });
      held.open();
      await joiner.until(() => joiner.answer(subId) !== undefined, 'the ok');
      await rig.ok(publisher, 'pub', { ch: 'fresh', data: 7 });
      await joiner.until(() => joiner.offsets('fresh').length === 4, 'the messages');
      await settle();
      const ok = joiner.answer(subId)!;
      assert.deepEqual({ ...ok, epoch: undefined }, { op: 'ok', id: subId, epoch: undefined, offset: 3, recovered: false });
      assert.deepEqual(joiner.offsets('fresh'), [4, 5, 6, 7]);
    });
  });

  // An engine whose deliveries lag behind what history() already shows (the Redis engine:
  // XADD then PUBLISH, read by another node) must not make the hub send a message twice,
  // nor send a message at or below the offset of the sub's ok as a live one.
  const lateDelivery = async (body: (rig: Rig, engine: ControlledEngine, epoch: string) => Promise<void>): Promise<void> => {
    await withControlled({}, async (rig, engine) => {
      const publisher = rig.client('pub');
      const watcher = rig.client('watch');
      const { epoch } = await rig.ok(watcher, 'sub', { ch: 'late' });
      engine.delayDelivery = true;
      for (let n = 1; n <= 3; n++) await rig.ok(publisher, 'pub', { ch: 'late', data: n });
      await body(rig, engine, epoch!);
      engine.delayDelivery = false;
      engine.flush();
      await rig.ok(publisher, 'pub', { ch: 'late', data: 4 });
      await settle();
      assert.deepEqual(watcher.offsets('late'), [1, 2, 3, 4], 'the live subscriber gets the late deliveries once');
    });
  };

  test('an engine that delivers after history shows a message: a resumer still gets it once', () =>
    lateDelivery(async (rig, engine, epoch) => {
      const resumer = rig.client('resume');
      await rig.ok(resumer, 'sub', { ch: 'late', since: { epoch, offset: 0 } });
      engine.delayDelivery = false;
      engine.flush();
      await settle();
      assert.deepEqual(resumer.offsets('late'), [1, 2, 3], 'replayed, and the late deliveries not sent again');
    }),
  );

  test('an engine that delivers after history shows a message: a new subscriber gets only offsets after its ok', () =>
    lateDelivery(async (rig, engine) => {
      const fresh = rig.client('fresh');
      const ok = await rig.ok(fresh, 'sub', { ch: 'late' });
      assert.equal(ok.offset, 3);
      engine.delayDelivery = false;
      engine.flush();
      await settle();
      assert.deepEqual(fresh.offsets('late'), [], 'messages 1-3 are before the ok offset');
    }),
  );
});

describe('requests around a pending sub', () => {
  test('an unsub sent during a pending sub is answered after it, and nothing arrives after its ok', async () => {
    await withControlled({}, async (rig, engine) => {
      const publisher = rig.client('pub');
      const client = rig.client('c');
      const held = engine.holdHistory('after');
      const subId = rig.send(client, 'sub', { ch: 'u' });
      await held.reading;
      const unsubId = rig.send(client, 'unsub', { ch: 'u' });
      await rig.ok(publisher, 'pub', { ch: 'u', data: 1 });
      held.open();
      await client.until(() => client.answer(unsubId) !== undefined, 'the unsub ok');
      await rig.ok(publisher, 'pub', { ch: 'u', data: 2 });
      await settle();
      const ids = client.log.filter((m) => m.op === 'ok').map((m) => m.id);
      assert.deepEqual(ids, [subId, unsubId], 'answered in order');
      const unsubIndex = client.log.findIndex((m) => m.id === unsubId);
      assert.ok(client.log.slice(unsubIndex).every((m) => m.op !== 'msg'), 'no msg after the unsub ok');
      assert.equal(rig.hub.localSubscribers('u'), 0);
      assert.equal(rig.live('u'), 0);
      assert.equal(rig.hub.metrics.subscriptions, 0);
    });
  });

  test('a disconnect during a pending sub leaves no subscription, member or topic behind', async () => {
    await withControlled({}, async (rig, engine) => {
      const publisher = rig.client('pub');
      const watcher = rig.client('watch');
      await rig.ok(watcher, 'sub', { ch: 'd' });
      const client = rig.client('gone');
      const held = engine.holdHistory('before');
      rig.send(client, 'sub', { ch: 'd' });
      await held.reading;
      assert.equal(rig.hub.localSubscribers('d'), 2);
      rig.hub.disconnect(client);
      held.open();
      await settle();
      const published = await rig.ok(publisher, 'pub', { ch: 'd', data: 1 });
      await settle();
      assert.deepEqual(client.log, [], 'nothing sent to a closed connection');
      assert.equal(rig.live('d'), 1, 'only the watcher is live');
      assert.equal(rig.hub.localSubscribers('d'), 1);
      assert.equal(published.delivered, 1, 'the engine counts only the watcher');
      assert.deepEqual(await engine.members('d'), [{ id: 'watch' }]);
      assert.deepEqual(watcher.presenceEvents('d'), [], 'the one that never finished subscribing never joined nor left');
      assert.equal(rig.hub.metrics.subscriptions, 1);
      assert.equal(rig.hub.metrics.sessions, 2);
    });
  });

  test('a disconnect of the only subscriber during a pending sub unsubscribes the channel from the engine', async () => {
    await withControlled({}, async (rig, engine) => {
      const client = rig.client('gone');
      const held = engine.holdHistory('before');
      rig.send(client, 'sub', { ch: 'solo' });
      await held.reading;
      rig.hub.disconnect(client);
      held.open();
      await settle();
      assert.equal(rig.hub.localSubscribers('solo'), 0);
      assert.deepEqual(await engine.members('solo'), []);
      const before = engine.delivered;
      const published = await engine.publish('solo', '1');
      assert.equal(published.subscribers, 0, 'the engine counts no subscriber');
      await settle();
      assert.equal(engine.delivered, before, 'the node no longer receives the channel');
    });
  });

  test('a disconnect while canSubscribe is deciding subscribes nothing', async () => {
    const decision = gate();
    let asked = 0;
    await withRig(
      {
        canSubscribe: async () => {
          asked++;
          await decision.promise;
          return true;
        },
      },
      async (rig) => {
        const client = rig.client('slow');
        rig.send(client, 'sub', { ch: 'hook' });
        await settle();
        assert.equal(asked, 1);
        rig.hub.disconnect(client);
        decision.open();
        await settle();
        assert.deepEqual(client.log, []);
        assert.equal(rig.hub.localSubscribers('hook'), 0);
        assert.equal(rig.hub.metrics.subscriptions, 0);
        assert.deepEqual(await rig.engine.members('hook'), []);
      },
    );
  });

  test('requests after a disconnect are ignored', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client();
      rig.hub.disconnect(client);
      rig.hub.handleText(client, '{"op":"ping","id":1}');
      rig.hub.handleText(client, 'not json');
      rig.hub.handleBinary(client);
      await settle();
      assert.deepEqual(client.log, []);
      rig.hub.disconnect(client); // twice is harmless
      assert.equal(rig.hub.metrics.sessions, 0);
    });
  });
});

describe('an engine that fails', () => {
  const unavailable = (): EngineUnavailableError => new EngineUnavailableError('the backend is unreachable');

  test('publish, history and subscribe failures answer internal once; nothing is left half-done; a retry works', async () => {
    const reported: unknown[] = [];
    await withControlled({ onError: (error) => reported.push(error) }, async (rig, engine) => {
      const client = rig.client();
      engine.failNext.publish = unavailable();
      const pub = await rig.request(client, 'pub', { ch: 'f', data: 1, key: 'k1' });
      assert.equal(pub.code, 'internal');
      const retried = await rig.ok(client, 'pub', { ch: 'f', data: 1, key: 'k1' });
      assert.deepEqual([retried.offset, retried.delivered], [1, 0]);

      // An unexpected engine error is reported; an outage (EngineUnavailableError) is only answered.
      engine.failNext.history = new Error('engine bug');
      const sub = await rig.request(client, 'sub', { ch: 'f' });
      assert.equal(sub.code, 'internal');
      assert.equal(rig.hub.localSubscribers('f'), 0);
      assert.equal(rig.hub.metrics.subscriptions, 0);
      assert.equal(rig.live('f'), 0);
      await rig.ok(client, 'sub', { ch: 'f' });

      engine.failNext.subscribe = unavailable();
      assert.equal((await rig.request(client, 'sub', { ch: 'g' })).code, 'internal');
      assert.equal(rig.hub.localSubscribers('g'), 0);
      await rig.ok(client, 'sub', { ch: 'g' });
      await settle();
      const answers = client.log.filter((m) => m.op === 'ok' || m.op === 'err').map((m) => m.id);
      assert.equal(new Set(answers).size, answers.length, 'no request answered twice');
      assert.deepEqual(
        reported.map((e) => (e as Error).message),
        ['engine bug'],
      );
      assert.match(pub.message!, /unavailable/);
    });
  });

  test(
    'a presence join that fails after the sub was answered does not answer the sub a second time',
    async () => {
      await withControlled({}, async (rig, engine) => {
        const client = rig.client('ada');
        engine.failNext.join = unavailable();
        const id = rig.send(client, 'sub', { ch: 'p' });
        await client.until(() => client.answer(id) !== undefined, 'the answer');
        await rig.ok(client, 'ping');
        const answers = client.log.filter((m) => m.id === id);
        assert.deepEqual(
          answers.map((m) => m.op),
          ['ok'],
          `answered ${JSON.stringify(answers)}`,
        );
      });
    },
  );
});

describe('delivery under backpressure', () => {
  /** 60 KiB of JSON data: nine of them reach half the fake connection's 1 MiB limit. */
  const big = (n: number): string => `${n}:${'x'.repeat(60 * 1024)}`;

  /**
   * A channel of `count` big messages after its `head`, and a slow client (one that reads
   * nothing until it drains) that resumes from the head: its replay is under way.
   */
  async function slowResumer(rig: Rig, ch: string, count: number): Promise<{ slow: FakeClient; head: number }> {
    const publisher = rig.client('publisher');
    const head = (await rig.ok(publisher, 'pub', { ch, data: 'head' })).offset!;
    for (let i = 1; i <= count; i++) await rig.ok(publisher, 'pub', { ch, data: big(i) });
    const { epoch } = await rig.ok(publisher, 'history', { ch, limit: 1 });
    const slow = rig.client('slow');
    slow.slow = true;
    await rig.ok(slow, 'sub', { ch, since: { epoch, offset: head } });
    await settle();
    return { slow, head };
  }

  test('a replay is paced: it stops at half the limit, goes on as the client drains, and what arrived meanwhile follows, once, in order', () =>
    withRig({ publishRate: { perSecond: 1000, burst: 1000 } }, async (rig) => {
      const { slow, head } = await slowResumer(rig, 'paced', 30);
      const first = slow.offsets('paced').length;
      assert.ok(first >= 8 && first < 30, `${first} messages before the replay waits`);
      assert.ok(slow.bufferedAmount < slow.backpressureLimit, 'within the limit');
      // Live messages during the replay are kept for it, not broadcast to it.
      const publisher = rig.client('late');
      for (let i = 31; i <= 33; i++) await rig.ok(publisher, 'pub', { ch: 'paced', data: big(i) });
      assert.equal(rig.live('paced'), 0);
      // Other requests are not held up by the replay.
      await rig.ok(slow, 'ping');
      while (slow.offsets('paced').length < 33) {
        const before = slow.offsets('paced').length;
        slow.drain();
        await settle();
        assert.ok(slow.offsets('paced').length > before, 'each drain moves the replay on');
      }
      assert.deepEqual(slow.offsets('paced'), range(head + 1, head + 33));
      assert.equal(rig.live('paced'), 1, 'live once the replay is through');
      assert.equal(slow.overLimit, 0, 'nothing went past the limit as live traffic');
      await rig.ok(publisher, 'pub', { ch: 'paced', data: 'live' });
      assert.deepEqual(slow.offsets('paced').slice(-2), [head + 33, head + 34]);
    }));

  test('live messages kept during a stalled replay past the backpressure limit: closed with 1013, nothing more sent', () =>
    withRig({ publishRate: { perSecond: 1000, burst: 1000 } }, async (rig) => {
      const { slow, head } = await slowResumer(rig, 'stalled', 20);
      const sent = slow.offsets('stalled');
      const publisher = rig.client('late');
      for (let i = 21; i <= 40 && slow.closedWith === null; i++) await rig.ok(publisher, 'pub', { ch: 'stalled', data: big(i) });
      assert.deepEqual(slow.closedWith, { code: 1013, reason: 'slow consumer: reconnect and recover' });
      assert.equal(rig.hub.metrics.slowConsumerCloses, 1);
      slow.drain();
      await settle();
      assert.deepEqual(slow.offsets('stalled'), sent, 'no more messages after the close');
      assert.deepEqual(sent, range(head + 1, head + sent.length), 'what it got is contiguous');
      assert.equal(rig.hub.localSubscribers('stalled'), 0);
    }));

  test('thousands of small live messages kept during a stalled replay follow it once, in order', () =>
    // Sent in one go by a client that cannot pause: the in-flight bound is raised to hold them.
    withRig({ publishRate: { perSecond: 1e6, burst: 1e6 }, maxPendingRequests: 5000 }, async (rig) => {
      const { slow, head } = await slowResumer(rig, 'small', 12);
      const publisher = rig.client('late');
      for (let i = 0; i < 3000; i++) rig.send(publisher, 'pub', { ch: 'small', data: i });
      await publisher.until(() => publisher.log.length === 3000, 'the publishes');
      assert.equal(slow.closedWith, null, 'about 190 KiB kept: under the limit');
      while (slow.offsets('small').length < 12 + 3000) {
        slow.drain();
        await settle();
      }
      assert.deepEqual(slow.offsets('small'), range(head + 1, head + 3012));
      assert.equal(rig.live('small'), 1);
    }));

  test('an unsub during a paced replay stops it: nothing of the channel follows the unsub’s answer', () =>
    withRig({ publishRate: { perSecond: 1000, burst: 1000 } }, async (rig) => {
      const { slow } = await slowResumer(rig, 'left', 20);
      const unsub = await rig.ok(slow, 'unsub', { ch: 'left' });
      const at = slow.log.indexOf(unsub);
      slow.drain();
      await settle();
      assert.deepEqual(
        slow.log.slice(at + 1).filter((m) => m.ch === 'left'),
        [],
      );
    }));

  test('answers are sent reliably: over the limit, a client still gets every answer', () =>
    withRig({}, async (rig) => {
      const client = rig.client('full');
      client.slow = true;
      client.bufferedAmount = 2 * client.backpressureLimit;
      await rig.ok(client, 'ping');
      await rig.ok(client, 'pub', { ch: 'x', data: 1 });
      await rig.ok(client, 'presence', { ch: 'x' });
      assert.equal(client.overLimit, 0);
    }));
});
