// Recovery: a sub that resumes from history while messages keep coming gets each once, in
// order, and requests around a pending sub (an unsub, a disconnect, a slow hook) leave
// nothing half done. The engine is held back at the moments that matter.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gate, range, settle, withControlled, withRig, type ControlledEngine, type Rig, type Sent } from '../../test/support/hub-rig.js';

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
      assert.deepEqual({ ...ok, epoch: undefined }, { op: 'ok', id: subId, epoch: undefined, offset: 3, recovered: false, client: joiner.id });
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

  test('a connection closed by a message it catches up on is not made live', () =>
    withControlled({}, async (rig, engine) => {
      const publisher = rig.client('pub');
      const watcher = rig.client('watch');
      await rig.ok(watcher, 'sub', { ch: 'lost' });
      await rig.ok(publisher, 'pub', { ch: 'lost', data: 1 });
      await watcher.until(() => rig.live('lost') === 1, 'the watcher to go live with its first message');
      engine.delayDelivery = true;
      for (let n = 2; n <= 4; n++) await rig.ok(publisher, 'pub', { ch: 'lost', data: n });
      const closing = rig.client('closing');
      assert.equal((await rig.ok(closing, 'sub', { ch: 'lost' })).offset, 4);
      await settle();
      assert.equal(rig.live('lost'), 1, 'answered at offset 4, which this node has not delivered: still catching up');
      // Its next live message passes its backpressure limit: closed there and then, as on /ws.
      closing.send = (text) => {
        closing.log.push(JSON.parse(text) as Sent);
        closing.close(1013, 'slow consumer: reconnect and recover');
        rig.hub.disconnect(closing);
      };
      engine.drop();
      engine.delayDelivery = false;
      await rig.ok(publisher, 'pub', { ch: 'lost', data: 5 });
      await rig.ok(publisher, 'pub', { ch: 'lost', data: 6 });
      await settle();
      assert.deepEqual(closing.offsets('lost'), [5], 'caught up on 5, then nothing');
      assert.equal(rig.live('lost'), 1, 'only the watcher is live');
      assert.equal(rig.hub.localSubscribers('lost'), 1);
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
      assert.deepEqual((await engine.members('d')).map((member) => member['id']), ['watch']);
      assert.deepEqual(watcher.presenceEvents('d'), [['join', 'watch']], 'the one that never finished subscribing never joined nor left (the watcher saw its own join only)');
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
