// The channels from the application's side, on one node (the hub with fake connections):
// publish checked as a client's, with the server's own keys and the same offsets and
// recovery; presence and history; and a user's or a client's connections sent to,
// disconnected, unsubscribed and called. Across nodes: test/server-api-redis.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { fast, settle, withControlled, withRig } from '../../test/support/hub-rig.js';
import { CallError } from './call-error.js';
import { ChannelError } from './channel-error.js';

const refused = (code: string, message?: RegExp) => (error: unknown) =>
  error instanceof ChannelError && error.code === code && (message === undefined || message.test(error.message));

describe('publish', () => {
  test('reaches subscribers with the next offset; the answer counts them; canPublish is not asked', async () => {
    await withRig({ canPublish: () => false }, async (rig) => {
      const watchers = [rig.client('a'), rig.client('b')];
      for (const watcher of watchers) await rig.ok(watcher, 'sub', { ch: 'news' });
      const first = await rig.hub.api.publish('news', { text: 'one' });
      assert.deepEqual(first, { epoch: first.epoch, offset: 1, delivered: 2 });
      const second = await rig.hub.api.publish('news', 'two');
      assert.deepEqual([second.epoch, second.offset], [first.epoch, 2]);
      for (const watcher of watchers) {
        await watcher.until(() => watcher.msgs('news').length === 2, 'both messages');
        assert.deepEqual(watcher.msgs('news'), [
          { op: 'msg', ch: 'news', offset: 1, data: { text: 'one' } },
          { op: 'msg', ch: 'news', offset: 2, data: 'two' },
        ]);
      }
      assert.equal(rig.hub.metrics.publishes, 2);
    });
  });

  test("the channel's schema checks and transforms the data, as for a client; refused data is never published", async () => {
    const schema = z.object({ text: z.string().trim().min(1) });
    await withRig({ channels: { 'chat:*': { schema } } }, async (rig) => {
      const watcher = rig.client('w');
      await rig.ok(watcher, 'sub', { ch: 'chat:1' });
      await assert.rejects(rig.hub.api.publish('chat:1', { text: 5 }), refused('bad_request', /^invalid data for chat:1: text: /));
      await assert.rejects(rig.hub.api.publish('chat:1', { text: '  ' }), refused('bad_request'));
      const ok = await rig.hub.api.publish('chat:1', { text: '  hi  ', extra: 1 });
      // Through JSON first, as a client's data: the schema sees a Date as its ISO string.
      await rig.hub.api.publish('chat:1', { text: new Date(0) });
      await watcher.until(() => watcher.msgs('chat:1').length === 2, 'the messages');
      assert.deepEqual(watcher.data('chat:1'), [{ text: 'hi' }, { text: '1970-01-01T00:00:00.000Z' }]);
      assert.equal(ok.offset, 1, 'the refused ones took no offset');
    });
  });

  test('what JSON cannot carry, too much, too deep, or a bad channel or key: a ChannelError, and nothing published', async () => {
    await withRig({ maxDataLength: 1000 }, async (rig) => {
      const cycle: Record<string, unknown> = {};
      cycle['self'] = cycle;
      const api = rig.hub.api;
      await assert.rejects(api.publish('c', cycle), refused('bad_request', /not JSON/));
      await assert.rejects(api.publish('c', { n: Infinity }), refused('bad_request', /Infinity/));
      await assert.rejects(api.publish('c', [NaN]), refused('bad_request', /NaN/));
      await assert.rejects(api.publish('c', 10n), refused('bad_request', /not JSON/));
      await assert.rejects(api.publish('c', undefined), refused('bad_request', /not JSON/));
      await assert.rejects(api.publish('c', 'x'.repeat(2000)), refused('too_large', /2002 characters of JSON; the limit is 1000/));
      let deep: unknown = 1;
      for (let i = 0; i < 64; i++) deep = [deep];
      await assert.rejects(api.publish('c', deep), refused('bad_request', /nests deeper than 63/));
      await assert.rejects(api.publish('room 1', 1), refused('bad_request', /not a channel name/));
      await assert.rejects(api.publish('c', 1, { key: '' }), refused('bad_request', /key/));
      await assert.rejects(api.publish('c', 1, { key: 'k'.repeat(129) }), refused('bad_request', /key/));
      assert.equal(rig.hub.metrics.publishes, 0);
      assert.equal((await api.history('c')).messages.length, 0);
    });
  });

  test("a key makes it idempotent; the same key with other data is refused; the server's keys are apart from a client's", async () => {
    await withRig({ publishRate: fast }, async (rig) => {
      const watcher = rig.client('w');
      await rig.ok(watcher, 'sub', { ch: 'orders' });
      const first = await rig.hub.api.publish('orders', { sku: 'A-1' }, { key: 'order-1' });
      const again = await rig.hub.api.publish('orders', { sku: 'A-1' }, { key: 'order-1' });
      assert.deepEqual([first.offset, first.delivered, again.offset, again.delivered], [1, 1, 1, 0]);
      await assert.rejects(rig.hub.api.publish('orders', { sku: 'B-2' }, { key: 'order-1' }), refused('bad_request', /used for other data/));
      // A client with the same key and data is another publisher: its message goes out.
      const client = await rig.ok(rig.client('ada'), 'pub', { ch: 'orders', data: { sku: 'A-1' }, key: 'order-1' });
      assert.equal(client.offset, 2);
      await settle();
      assert.deepEqual(watcher.offsets('orders'), [1, 2]);
      assert.equal(rig.hub.metrics.duplicatePublishes, 1);
    });
  });

  test('recovered after a reconnect like any other message', async () => {
    await withRig({}, async (rig) => {
      const before = rig.client('ada');
      const sub = await rig.ok(before, 'sub', { ch: 'feed' });
      await rig.hub.api.publish('feed', 1);
      await before.until(() => before.msgs('feed').length === 1, 'the first');
      rig.hub.disconnect(before);
      await rig.hub.api.publish('feed', 2);
      await rig.hub.api.publish('feed', 3);
      const after = rig.client('ada');
      const resumed = await rig.ok(after, 'sub', { ch: 'feed', since: { epoch: sub.epoch, offset: 1 } });
      assert.deepEqual([resumed.recovered, resumed.offset], [true, 3]);
      await after.until(() => after.msgs('feed').length === 2, 'the replay');
      assert.deepEqual(after.data('feed'), [2, 3]);
    });
  });
});

describe('presence and history', () => {
  test('the members of every subscriber, and history pages with their data as JSON', async () => {
    await withRig({}, async (rig) => {
      await rig.ok(rig.client('ada'), 'sub', { ch: 'room' });
      await rig.ok(rig.client('lin'), 'sub', { ch: 'room' });
      assert.deepEqual((await rig.hub.api.presence('room')).map((m) => m['id']).sort(), ['ada', 'lin']);
      for (let n = 1; n <= 5; n++) await rig.hub.api.publish('room', { n });
      const newest = await rig.hub.api.history('room', { limit: 2 });
      assert.deepEqual(newest.messages, [
        { offset: 4, data: { n: 4 } },
        { offset: 5, data: { n: 5 } },
      ]);
      assert.equal(newest.more, true);
      const older = await rig.hub.api.history('room', { limit: 10, before: 4 });
      assert.deepEqual([older.epoch, older.messages.map((m) => m.offset), older.more], [newest.epoch, [1, 2, 3], false]);
      await assert.rejects(rig.hub.api.history('room', { limit: 0 }), refused('bad_request', /limit/));
      await assert.rejects(rig.hub.api.history('room', { limit: 1001 }), refused('bad_request', /limit/));
      await assert.rejects(rig.hub.api.history('room', { before: -1 }), refused('bad_request', /before/));
      await assert.rejects(rig.hub.api.presence(''), refused('bad_request', /not a channel name/));
    });
  });
});

describe("users' and clients' connections", () => {
  test('send reaches every connection of a user, or one client id, as a message; the answer counts them', async () => {
    await withRig({}, async (rig) => {
      const ada = [rig.client('ada'), rig.client('ada')];
      const lin = rig.client('lin');
      assert.equal(await rig.hub.api.send({ user: 'ada' }, { notice: 'hi' }), 2);
      for (const conn of ada) assert.deepEqual(conn.log, [{ op: 'message', data: { notice: 'hi' } }]);
      assert.deepEqual(lin.log, []);
      assert.equal(await rig.hub.api.send({ client: lin.id }, null), 1);
      assert.deepEqual(lin.log, [{ op: 'message', data: null }]);
      assert.equal(await rig.hub.api.send({ user: 'nobody' }, 1), 0);
      assert.equal(await rig.hub.api.send({ client: 'x.1' }, 1), 0);
      await assert.rejects(rig.hub.api.send({ user: '' }, 1), refused('bad_request', /target/));
      await assert.rejects(rig.hub.api.send({ user: 'a', client: 'b' } as never, 1), refused('bad_request', /target/));
      await assert.rejects(rig.hub.api.send({ user: 'ada' }, 'x'.repeat(70_000)), refused('too_large'));
    });
  });

  test('a user found by the identity an auth request gave it', async () => {
    await withRig(
      { authenticateToken: (token) => ({ auth: { user: token }, user: token, member: { id: token } }) },
      async (rig) => {
        const conn = rig.client(null);
        await rig.ok(conn, 'auth', { token: 'sam' });
        assert.equal(await rig.hub.api.send({ user: 'sam' }, 1), 1);
      },
    );
  });

  test("disconnect closes a user's connections (4403 unless told), and they leave presence", async () => {
    await withRig({}, async (rig) => {
      const ada = [rig.client('ada'), rig.client('ada')];
      const lin = rig.client('lin');
      for (const conn of [...ada, lin]) await rig.ok(conn, 'sub', { ch: 'room' });
      assert.equal(await rig.hub.api.disconnect({ user: 'ada' }), 2);
      for (const conn of ada) assert.deepEqual(conn.closedWith, { code: 4403, reason: 'disconnected by the server' });
      assert.equal(lin.closedWith, null);
      assert.deepEqual((await rig.hub.api.presence('room')).map((m) => m['id']), ['lin']);
      assert.equal(await rig.hub.api.disconnect({ client: lin.id }, { code: 1012, reason: 'move along' }), 1);
      assert.deepEqual(lin.closedWith, { code: 1012, reason: 'move along' });
      assert.equal(await rig.hub.api.disconnect({ user: 'ada' }), 0, 'gone already');
      for (const code of [1005, 1006, 1015, 2999, 5000, 4000.5]) {
        await assert.rejects(rig.hub.api.disconnect({ user: 'x' }, { code }), refused('bad_request', /close code/));
      }
      await assert.rejects(rig.hub.api.disconnect({ user: 'x' }, { reason: 'é'.repeat(62) }), refused('bad_request', /123 bytes/));
    });
  });

  test('unsubscribe ends the subscription with an unsub push (forbidden); nothing more arrives, and the others see it leave', async () => {
    await withRig({}, async (rig) => {
      const ada = rig.client('ada');
      const lin = rig.client('lin');
      await rig.ok(ada, 'sub', { ch: 'room' });
      await rig.ok(ada, 'sub', { ch: 'other' });
      await rig.ok(lin, 'sub', { ch: 'room' });
      assert.equal(await rig.hub.api.unsubscribe({ user: 'ada' }, 'room', { reason: 'muted' }), 1);
      assert.deepEqual(ada.log.at(-1), { op: 'unsub', ch: 'room', code: 'forbidden', message: 'muted' });
      await lin.until(() => lin.presenceEvents('room').some(([op]) => op === 'leave'), 'the leave');
      await rig.hub.api.publish('room', 'after');
      await rig.hub.api.publish('other', 'still');
      await ada.until(() => ada.msgs('other').length === 1, 'the other channel');
      assert.deepEqual(ada.msgs('room'), []);
      assert.equal(await rig.hub.api.unsubscribe({ user: 'ada' }, 'room'), 0, 'not subscribed any more');
      // It may subscribe again: canSubscribe decides, as ever.
      await rig.ok(ada, 'sub', { ch: 'room' });
    });
  });

  test('a subscription still being answered is answered first, then ended', async () => {
    await withControlled({}, async (rig, engine) => {
      const ada = rig.client('ada');
      const held = engine.holdHistory('after');
      const id = rig.send(ada, 'sub', { ch: 'room' });
      await held.reading;
      assert.equal(await rig.hub.api.unsubscribe({ client: ada.id }, 'room'), 1);
      held.open();
      await ada.until(() => ada.log.some((m) => m.op === 'unsub'), 'the unsub push');
      const ok = ada.log.findIndex((m) => m.id === id && m.op === 'ok');
      const push = ada.log.findIndex((m) => m.op === 'unsub');
      assert.ok(ok >= 0 && push > ok, `ok, then the push: ${JSON.stringify(ada.log)}`);
      assert.equal(rig.hub.localSubscribers('room'), 0);
      assert.deepEqual(await rig.hub.api.presence('room'), [], 'it never joined');
    });
  });

  test('call: the client replies with a result, or an error; a reply to no waiting call is bad_request', async () => {
    await withRig({}, async (rig) => {
      const ada = rig.client('ada');
      const answer = rig.hub.api.call(ada.id, 'confirm', { question: 'sure?' });
      await ada.until(() => ada.log.some((m) => m.op === 'call'), 'the call');
      const call = ada.log.find((m) => m.op === 'call')!;
      assert.deepEqual(call, { op: 'call', call: 1, method: 'confirm', params: { question: 'sure?' }, timeout: 10_000 });
      assert.equal((await rig.request(ada, 'reply', { call: 1, result: { yes: true } })).op, 'ok');
      assert.deepEqual(await answer, { yes: true });
      const twice = await rig.request(ada, 'reply', { call: 1, result: 'again' });
      assert.deepEqual([twice.op, twice.code], ['err', 'bad_request']);
      assert.match(twice.message!, /no call 1 is waiting/);
      const never = await rig.request(ada, 'reply', { call: 99, result: 1 });
      assert.equal(never.code, 'bad_request');

      const failing = rig.hub.api.call(ada.id, 'confirm');
      await ada.until(() => ada.log.filter((m) => m.op === 'call').length === 2, 'the second call');
      await rig.ok(ada, 'reply', { call: 2, error: { code: 'not_found', message: 'no handler for confirm' } });
      await assert.rejects(failing, (e: CallError) => e instanceof CallError && e.code === 'no_handler');
    });
  });

  test('call: timeout, a connection that closes (client_gone), and the cap of calls per connection', async () => {
    await withRig({ maxPendingCalls: 2 }, async (rig) => {
      const ada = rig.client('ada');
      await assert.rejects(rig.hub.api.call(ada.id, 'slow', null, { timeout: 20 }), (e: CallError) => e.code === 'timeout');
      const waiting = [rig.hub.api.call(ada.id, 'a'), rig.hub.api.call(ada.id, 'b')];
      await assert.rejects(rig.hub.api.call(ada.id, 'c'), (e: CallError) => e.code === 'too_many_pending');
      assert.equal(ada.log.filter((m) => m.op === 'call').length, 3, 'the refused one was not sent');
      rig.hub.disconnect(ada);
      for (const call of waiting) await assert.rejects(call, (e: CallError) => e.code === 'client_gone');
      await assert.rejects(rig.hub.api.call(ada.id, 'after'), (e: CallError) => e.code === 'client_gone');
      await assert.rejects(rig.hub.api.call(ada.id, 'm', null, { timeout: 0 }), refused('bad_request', /timeout/));
      await assert.rejects(rig.hub.api.call(ada.id, ''), refused('bad_request', /method/));
      await assert.rejects(rig.hub.api.call(ada.id, 'm', { n: NaN }), refused('bad_request', /NaN/));
    });
  });
});
