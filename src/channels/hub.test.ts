// The hub's other requests and its counters: permissions, presence, history pages, limits
// and answers, reads that create nothing, and the metrics.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelError } from './channel-error.js';
import { range, settle, withRig } from '../../test/support/hub-rig.js';

describe('permissions', () => {
  test('canSubscribe false answers forbidden for sub, history and presence; true allows', async () => {
    const asked: string[] = [];
    await withRig(
      {
        canSubscribe: ({ client }, channel) => {
          asked.push(`${client.auth?.user}:${channel}`);
          return !channel.startsWith('admin:');
        },
      },
      async (rig) => {
        const client = rig.client('ada');
        for (const op of ['sub', 'history', 'presence']) {
          const answer = await rig.request(client, op, { ch: 'admin:log' });
          assert.equal(answer.op, 'err');
          assert.equal(answer.code, 'forbidden', op);
          assert.equal(typeof answer.message, 'string');
        }
        await rig.ok(client, 'sub', { ch: 'room:1' });
        assert.equal(rig.hub.localSubscribers('admin:log'), 0);
        assert.deepEqual(asked, ['ada:admin:log', 'ada:admin:log', 'ada:admin:log', 'ada:room:1']);
      },
    );
  });

  test('a hook throwing ChannelError answers its code; another error answers internal and is reported', async () => {
    const reported: unknown[] = [];
    await withRig(
      {
        canSubscribe: async (_context, channel) => {
          await Promise.resolve();
          if (channel === 'expired') throw new ChannelError('unauthorized', 'your session expired');
          if (channel === 'broken') throw new Error('hook bug');
          return true;
        },
        canPublish: (_context, channel, data) => {
          if (channel === 'locked') throw new ChannelError('unauthorized', 'log in to publish');
          return data !== 'forbidden word';
        },
        onError: (error) => reported.push(error),
      },
      async (rig) => {
        const client = rig.client();
        const expired = await rig.request(client, 'sub', { ch: 'expired' });
        assert.deepEqual(expired, { op: 'err', id: expired.id, code: 'unauthorized', message: 'your session expired' });
        const broken = await rig.request(client, 'sub', { ch: 'broken' });
        assert.equal(broken.code, 'internal');
        assert.equal(reported.length, 1);
        assert.equal((reported[0] as Error).message, 'hook bug');
        const locked = await rig.request(client, 'pub', { ch: 'locked', data: 1 });
        assert.deepEqual(locked, { op: 'err', id: locked.id, code: 'unauthorized', message: 'log in to publish' });
        assert.equal((await rig.request(client, 'pub', { ch: 'open', data: 'forbidden word' })).code, 'forbidden');
        await rig.ok(client, 'pub', { ch: 'open', data: 'fine' });
        assert.equal(rig.hub.metrics.subscriptions, 0);
        assert.equal(client.closedWith, null);
      },
    );
  });
});

describe('presence', () => {
  test('every subscriber is present (anonymous ones by client id); join and leave reach every answered subscriber, the member itself too', async () => {
    await withRig({}, async (rig) => {
      const ada = rig.client('ada', { member: { id: 'ada', name: 'Ada' } });
      const lin = rig.client('lin', { member: { id: 'lin', name: 'Lin' } });
      const anon = rig.client('anon', { member: null });
      await rig.ok(ada, 'sub', { ch: 'room' });
      await rig.ok(anon, 'sub', { ch: 'room' });
      await rig.ok(lin, 'sub', { ch: 'room' });
      await settle();
      assert.deepEqual(ada.presenceEvents('room'), [['join', 'ada'], ['join', undefined], ['join', 'lin']]);
      assert.deepEqual(anon.presenceEvents('room'), [['join', undefined], ['join', 'lin']]);
      assert.deepEqual(lin.presenceEvents('room'), [['join', 'lin']], 'its own join, once answered');
      const listed = await rig.ok(anon, 'presence', { ch: 'room' });
      assert.equal(listed['count'], 3);
      assert.deepEqual(
        listed.members!.map((m) => [m['id'], m['client']]).sort(),
        [[undefined, anon.id], ['ada', ada.id], ['lin', lin.id]],
        'keyed by connection id when the client sent no sender id',
      );
      await rig.ok(lin, 'unsub', { ch: 'room' });
      rig.hub.disconnect(ada);
      await settle();
      assert.deepEqual(anon.presenceEvents('room'), [['join', undefined], ['join', 'lin'], ['leave', 'lin']], 'an unsub leaves at once; a disconnect waits out the grace period');
      assert.deepEqual(lin.presenceEvents('room'), [['join', 'lin']], 'no events after unsub');
      assert.deepEqual((await rig.ok(anon, 'presence', { ch: 'room' })).members!.map((m) => m['id']), ['ada', undefined]);
    });
  });

  test('presence of a channel one is not subscribed to is allowed', async () => {
    await withRig({}, async (rig) => {
      const ada = rig.client('ada');
      const outsider = rig.client('out');
      await rig.ok(ada, 'sub', { ch: 'room' });
      assert.deepEqual((await rig.ok(outsider, 'presence', { ch: 'room' })).members, [{ id: 'ada', client: ada.id }]);
      assert.deepEqual((await rig.ok(outsider, 'presence', { ch: 'empty' })).members, []);
    });
  });
});


describe('history pages', () => {
  const entryOf = (offset: number, data: string): number => JSON.stringify({ offset, data }).length + 1;

  test('an answer holds the newest messages that fit in maxHistoryAnswerBytes and says more; before pages back to the oldest', () =>
    withRig({ maxHistoryAnswerBytes: 1000 }, async (rig) => {
      const client = rig.client('reader');
      for (let i = 1; i <= 12; i++) await rig.ok(client, 'pub', { ch: 'h', data: 'x'.repeat(200) });
      const read: number[] = [];
      let before: number | undefined;
      const pages: number[] = [];
      for (;;) {
        const answer = await rig.ok(client, 'history', { ch: 'h', limit: 100, ...(before === undefined ? {} : { before }) });
        const offsets = answer.messages!.map((m) => m.offset);
        const bytes = JSON.stringify(answer).length;
        assert.ok(bytes <= 1000, `a page of ${bytes} bytes`);
        pages.push(offsets.length);
        read.unshift(...offsets);
        if ((answer as { more?: boolean }).more !== true) break;
        before = offsets[0];
      }
      assert.deepEqual(read, range(1, 12));
      assert.deepEqual(pages, [3, 3, 3, 3]);
      assert.ok(3 * entryOf(1, 'x'.repeat(200)) < 1000);
    }));

  test('more is false when nothing older is kept, true when limit leaves older ones out; one message bigger than the bound still comes', () =>
    withRig({ maxHistoryAnswerBytes: 100 }, async (rig) => {
      const client = rig.client('reader');
      await rig.ok(client, 'pub', { ch: 'h', data: 'small' });
      await rig.ok(client, 'pub', { ch: 'h', data: 'y'.repeat(500) });
      const all = await rig.ok(client, 'history', { ch: 'h', limit: 1 });
      assert.deepEqual(
        all.messages!.map((m) => m.offset),
        [2],
        'the one message, though bigger than the bound',
      );
      assert.equal((all as { more?: boolean }).more, true);
      const oldest = await rig.ok(client, 'history', { ch: 'h', before: 2 });
      assert.deepEqual(
        oldest.messages!.map((m) => m.offset),
        [1],
      );
      assert.equal((oldest as { more?: boolean }).more, undefined, 'nothing older: no more');
      const bad = await rig.request(client, 'history', { ch: 'h', before: -1 });
      assert.equal(bad.code, 'bad_request');
    }));
});

describe('limits and answers', () => {
  test('too_large: data over maxDataLength and a sub beyond maxSubscriptions', async () => {
    await withRig({ maxDataLength: 20, maxSubscriptions: 2 }, async (rig) => {
      const client = rig.client();
      await rig.ok(client, 'pub', { ch: 'x', data: '123456789012345678' }); // 20 characters of JSON
      const big = await rig.request(client, 'pub', { ch: 'x', data: '1234567890123456789' });
      assert.equal(big.code, 'too_large');
      assert.match(big.message!, /21 characters of JSON; the limit is 20/);
      await rig.ok(client, 'sub', { ch: 'a' });
      await rig.ok(client, 'sub', { ch: 'b' });
      const third = await rig.request(client, 'sub', { ch: 'c' });
      assert.equal(third.code, 'too_large');
      await rig.ok(client, 'unsub', { ch: 'a' });
      await rig.ok(client, 'sub', { ch: 'c' });
    });
  });

  test('a second sub to the same channel is a bad_request; unsub of an unknown channel is ok', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client();
      await rig.ok(client, 'sub', { ch: 'x' });
      const again = await rig.request(client, 'sub', { ch: 'x' });
      assert.equal(again.code, 'bad_request');
      assert.equal(rig.hub.localSubscribers('x'), 1);
      await rig.ok(client, 'unsub', { ch: 'never' });
      await rig.ok(client, 'unsub', { ch: 'x' });
      await rig.ok(client, 'unsub', { ch: 'x' });
    });
  });

  test('ping answers pong; a binary message is a bad_request without an id', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client();
      const pong = await rig.ok(client, 'ping');
      assert.deepEqual(pong, { op: 'pong', id: pong.id });
      rig.hub.handleBinary(client);
      assert.deepEqual({ ...client.log.at(-1), message: '' }, { op: 'err', code: 'bad_request', message: '' });
    });
  });

  test('idempotent publishes answer the first offset with delivered 0 and deliver once', async () => {
    await withRig({}, async (rig) => {
      const publisher = rig.client('p');
      const watcher = rig.client('w');
      await rig.ok(watcher, 'sub', { ch: 'orders' });
      await rig.ok(publisher, 'sub', { ch: 'orders' });
      const first = await rig.ok(publisher, 'pub', { ch: 'orders', data: { sku: 'A-1' }, key: 'c7f3-0001' });
      const again = await rig.ok(publisher, 'pub', { ch: 'orders', data: { sku: 'A-1' }, key: 'c7f3-0001' });
      assert.deepEqual(first, { op: 'ok', id: first.id, offset: 1, delivered: 2 });
      assert.deepEqual(again, { op: 'ok', id: again.id, offset: 1, delivered: 0 });
      await settle();
      assert.equal(watcher.msgs('orders').length, 1);
      assert.equal(publisher.msgs('orders').length, 1);
    });
  });
});

describe('reads create nothing', () => {
  test('history and presence of channels that do not exist leave no channel in the engine or the hub', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client('u');
      for (let i = 0; i < 50; i++) {
        const history = await rig.ok(client, 'history', { ch: `nothing:${i}` });
        assert.deepEqual((history as { messages?: unknown[] }).messages, []);
        assert.deepEqual((await rig.ok(client, 'presence', { ch: `nothing:${i}` })).members, []);
      }
      assert.equal(rig.memory.channelCount, 0);
      assert.deepEqual(rig.hub.channelStats(), []);
    });
  });

  test('a refused sub and an unsub of a channel never subscribed leave nothing either', async () => {
    await withRig({ canSubscribe: (_c, channel) => !channel.startsWith('secret:') }, async (rig) => {
      const client = rig.client('u');
      assert.equal((await rig.request(client, 'sub', { ch: 'secret:1' })).code, 'forbidden');
      await rig.ok(client, 'unsub', { ch: 'other' });
      assert.equal(rig.memory.channelCount, 0);
      assert.deepEqual(rig.hub.channelStats(), []);
    });
  });
});

describe('metrics', () => {
  test('the counters follow what happened', async () => {
    await withRig({ abuseLimit: 3, rpc: { boom: () => Promise.reject(new Error('x')) } }, async (rig) => {
      const m = rig.hub.metrics;
      const a = rig.client('a');
      const b = rig.client('b');
      assert.equal(m.sessions, 2);
      const { epoch } = await rig.ok(a, 'sub', { ch: 'm' });
      await rig.ok(b, 'sub', { ch: 'm' });
      await rig.ok(b, 'sub', { ch: 'n' });
      assert.equal(m.subscriptions, 3);
      await rig.ok(a, 'pub', { ch: 'm', data: 1 }); // reaches a and b
      await rig.ok(a, 'pub', { ch: 'm', data: 2, key: 'k' }); // a and b
      await rig.ok(a, 'pub', { ch: 'm', data: 2, key: 'k' }); // a repeat
      await rig.ok(a, 'pub', { ch: 'nobody', data: 3 }); // reaches no one
      assert.equal(m.publishes, 3);
      assert.equal(m.duplicatePublishes, 1);
      assert.equal(m.deliveries, 4);
      const c = rig.client('c');
      await rig.ok(c, 'sub', { ch: 'm', since: { epoch, offset: 0 } }); // replays 2
      await rig.ok(c, 'sub', { ch: 'n', since: { epoch: 'gone', offset: 0 } });
      assert.deepEqual(m.recoveries, { recovered: 1, notRecovered: 1 });
      assert.equal(m.deliveries, 6);
      await rig.ok(a, 'history', { ch: 'm' });
      await rig.ok(a, 'presence', { ch: 'm' });
      await rig.ok(a, 'ping');
      await rig.ok(a, 'unsub', { ch: 'm' });
      await rig.request(a, 'rpc', { method: 'boom' });
      await rig.request(a, 'rpc', { method: 'none' });
      const expected = { sub: 5, unsub: 1, pub: 4, presence: 1, history: 1, rpc: 2, ping: 1 };
      for (const [op, count] of Object.entries(expected)) assert.equal(m.requests[op as keyof typeof expected], count, op);
      assert.equal(m.subscriptions, 4);
      assert.equal(m.errors.internal, 1);
      assert.equal(m.errors.not_found, 1);
      rig.hub.handleText(b, 'nope');
      rig.hub.handleText(b, 'nope');
      rig.hub.handleText(b, 'nope');
      assert.equal(m.errors.bad_request, 3);
      assert.equal(m.abuseCloses, 1);
      assert.equal(m.sessions, 2);
      assert.equal(m.subscriptions, 2, "b's two subscriptions went with it");
      rig.hub.disconnect(c);
      rig.hub.disconnect(a);
      assert.equal(m.sessions, 0);
      assert.equal(m.subscriptions, 0);
    });
  });
});
