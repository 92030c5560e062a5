// Delivery when things go wrong: an engine that fails, and a reader too slow for its replay
// (paced, kept within the backpressure limit, or closed with 1013 to recover).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineUnavailableError } from './engine.js';
import { range, settle, withControlled, withRig, type FakeClient, type Rig } from '../../test/support/hub-rig.js';

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
