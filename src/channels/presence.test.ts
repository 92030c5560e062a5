// Presence for every subscriber (client ids, the grace period, count-only channels, the
// member bound), presence state, and ephemeral publishes, on the hub with fake connections.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { settle, withRig, type FakeClient, type Rig } from '../../test/support/hub-rig.js';
import type { StandardSchemaV1 } from '../wire/index.js';

const SENDER = '0123456789abcdef0123456789abcdef';

/** The client ids in a presence answer. */
async function clientIds(rig: Rig, asker: FakeClient, channel: string): Promise<unknown[]> {
  return ((await rig.ok(asker, 'presence', { ch: channel })).members ?? []).map((member) => member['client']);
}

function updates(client: FakeClient, channel: string): unknown[] {
  return client.log.filter((m) => m.op === 'update' && m.ch === channel).map((m) => m.member?.['state']);
}

describe('client ids', () => {
  test('a reconnect with the same sender within the grace period is neither a leave nor a join; the id shown is a digest, not the sender', async () => {
    await withRig({}, async (rig) => {
      const watcher = rig.client('w');
      await rig.ok(watcher, 'sub', { ch: 'room' });
      const first = rig.client(null);
      const answer = await rig.ok(first, 'sub', { ch: 'room', sender: SENDER });
      const id = answer['client'];
      assert.equal(typeof id, 'string');
      assert.notEqual(id, SENDER, 'the sender id is never shown');
      assert.ok(!String(id).includes(SENDER.slice(0, 8)));
      rig.hub.disconnect(first);
      const second = rig.client(null);
      assert.equal((await rig.ok(second, 'sub', { ch: 'room', sender: SENDER }))['client'], id, 'the same client id after the reconnect');
      await settle();
      assert.deepEqual(
        watcher.presenceEvents('room').map(([op]) => op),
        ['join', 'join'],
        'its own join, the client’s join; no leave and no second join',
      );
      assert.deepEqual(await clientIds(rig, watcher, 'room'), [watcher.id, id]);
    });
  });

  test('another identity sending the same sender lands on another key: it cannot take a member over', async () => {
    await withRig({}, async (rig) => {
      const victim = rig.client('victim');
      const attacker = rig.client('mallory');
      const victimId = (await rig.ok(victim, 'sub', { ch: 'room', sender: SENDER }))['client'];
      const attackerId = (await rig.ok(attacker, 'sub', { ch: 'room', sender: SENDER }))['client'];
      assert.notEqual(attackerId, victimId);
      await rig.ok(attacker, 'state', { ch: 'room', state: { x: 1 } });
      await rig.ok(attacker, 'unsub', { ch: 'room' });
      const members = (await rig.ok(victim, 'presence', { ch: 'room' })).members!;
      assert.deepEqual(members, [{ id: 'victim', client: victimId }], 'the victim is there, unchanged');
    });
  });

  test('a connection keeps the sender of its first sub: another one is refused', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client(null);
      await rig.ok(client, 'sub', { ch: 'a', sender: SENDER });
      const refused = await rig.request(client, 'sub', { ch: 'b', sender: 'f'.repeat(32) });
      assert.equal(refused.code, 'bad_request');
    });
  });

  test('a client that does not come back within the grace period leaves; one sent away by the hub leaves at once', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    await withRig({ presenceGrace: 3000 }, async (rig) => {
      const watcher = rig.client('w');
      await rig.ok(watcher, 'sub', { ch: 'room' });
      const gone = rig.client('gone');
      await rig.ok(gone, 'sub', { ch: 'room', sender: SENDER });
      rig.hub.disconnect(gone);
      await settle();
      assert.deepEqual(watcher.presenceEvents('room'), [['join', 'w'], ['join', 'gone']], 'still present during the grace period');
      t.mock.timers.tick(3000);
      await settle();
      assert.deepEqual(watcher.presenceEvents('room').at(-1), ['leave', 'gone']);
      const kicked = rig.client('kicked');
      await rig.ok(kicked, 'sub', { ch: 'room', sender: SENDER });
      assert.equal(await rig.hub.api.disconnect({ user: 'kicked' }), 1);
      await settle();
      assert.deepEqual(watcher.presenceEvents('room').at(-1), ['leave', 'kicked'], 'no grace for a connection the server closed');
    });
  });

  test('a client gone within the grace period is not kept meanwhile: only its presence waits', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await withRig({ presenceGrace: 60_000 }, async (rig) => {
      const watcher = rig.client('w');
      await rig.ok(watcher, 'sub', { ch: 'room' });
      const gone = await (async () => {
        const client = rig.client('gone');
        await rig.ok(client, 'sub', { ch: 'room', sender: SENDER });
        rig.hub.disconnect(client);
        return new WeakRef(client);
      })();
      await settle();
      gc();
      await settle();
      gc();
      // A client stands for its connection, socket and buffers: held through the grace,
      // every disconnect of a reconnect storm kept all of that alive for 5 s.
      assert.equal(gone.deref(), undefined, 'the gone client was collected during the grace');
      assert.deepEqual(watcher.presenceEvents('room'), [['join', 'w'], ['join', 'gone']], 'still present during the grace period');
      assert.equal((await clientIds(rig, watcher, 'room')).length, 2);
    });
  });
});

describe('presence state', () => {
  test('state reaches every subscriber as an update, under `state`: identity fields stay the server’s; it goes with the subscription', async () => {
    await withRig({}, async (rig) => {
      const ada = rig.client('ada', { member: { id: 'ada', info: { name: 'Ada' } } });
      const lin = rig.client('lin');
      await rig.ok(ada, 'sub', { ch: 'doc' });
      await rig.ok(lin, 'sub', { ch: 'doc' });
      await rig.ok(ada, 'state', { ch: 'doc', state: { id: 'admin', client: 'x', info: 'spoofed', cursor: [1, 2] } });
      await settle();
      const member = lin.log.find((m) => m.op === 'update')!.member!;
      assert.deepEqual(member, { id: 'ada', info: { name: 'Ada' }, client: ada.id, state: { id: 'admin', client: 'x', info: 'spoofed', cursor: [1, 2] } });
      await rig.ok(ada, 'state', { ch: 'doc' });
      await settle();
      assert.deepEqual(updates(lin, 'doc'), [{ id: 'admin', client: 'x', info: 'spoofed', cursor: [1, 2] }, undefined], 'cleared');
      await rig.ok(ada, 'state', { ch: 'doc', state: { typing: true } });
      await rig.ok(ada, 'unsub', { ch: 'doc' });
      await rig.ok(ada, 'sub', { ch: 'doc' });
      const again = (await rig.ok(lin, 'presence', { ch: 'doc' })).members!.find((m) => m['id'] === 'ada')!;
      assert.equal(again['state'], undefined, 'the state went with the subscription');
    });
  });

  test('state is bounded in size, shares the publish rate, needs a subscription, and is checked by stateSchema', async () => {
    const schema: StandardSchemaV1 = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (value) => (typeof (value as { x?: unknown }).x === 'number' ? { value } : { issues: [{ message: 'x must be a number' }] }),
      },
    };
    await withRig({ maxPresenceStateLength: 64, publishRate: { perSecond: 1, burst: 3 }, channels: { 'board:*': { stateSchema: schema } } }, async (rig) => {
      const client = rig.client('c');
      assert.equal((await rig.request(client, 'state', { ch: 'free', state: { x: 1 } })).code, 'bad_request', 'not subscribed');
      await rig.ok(client, 'sub', { ch: 'free' });
      await rig.ok(client, 'sub', { ch: 'board:1' });
      const big = await rig.request(client, 'state', { ch: 'free', state: { text: 'x'.repeat(100) } });
      assert.equal(big.code, 'too_large');
      assert.match(String(big.message), /the limit is 64/);
      assert.equal((await rig.request(client, 'state', { ch: 'board:1', state: { x: 'no' } })).code, 'bad_request');
      assert.equal((await rig.request(client, 'state', { ch: 'free', state: { x: 1 } })).code, 'rate_limited', 'three tokens spent: the fourth waits');
      assert.equal(rig.hub.metrics.stateUpdates, 0);
    });
  });
});

describe('count-only channels and the member bound', () => {
  test('a channel with presence off answers a count alone, tells of no joins, and takes no state', async () => {
    await withRig({ channels: { 'big:*': { presence: false } } }, async (rig) => {
      const a = rig.client('a');
      const b = rig.client('b');
      await rig.ok(a, 'sub', { ch: 'big:1' });
      await rig.ok(b, 'sub', { ch: 'big:1' });
      const answer = await rig.ok(a, 'presence', { ch: 'big:1' });
      assert.deepEqual({ ...answer, id: 0 }, { op: 'ok', id: 0, count: 2 });
      assert.deepEqual(a.presenceEvents('big:1'), []);
      assert.equal((await rig.request(a, 'state', { ch: 'big:1', state: { x: 1 } })).code, 'not_found');
    });
  });

  test('past maxPresenceMembers the answer lists the first ones, counts all, and says truncated', async () => {
    await withRig({ maxPresenceMembers: 2 }, async (rig) => {
      const clients = ['a', 'b', 'c'].map((name) => rig.client(name));
      for (const client of clients) await rig.ok(client, 'sub', { ch: 'room' });
      const answer = await rig.ok(clients[0]!, 'presence', { ch: 'room' });
      assert.equal(answer.members!.length, 2);
      assert.equal(answer['count'], 3);
      assert.equal(answer['truncated'], true);
    });
  });
});

describe('ephemeral publishes', () => {
  test('to the answered subscribers only (an idle channel too), with no offset; not in history; the next message’s offset follows on', async () => {
    await withRig({}, async (rig) => {
      const sender = rig.client('s');
      const reader = rig.client('r');
      await rig.ok(reader, 'sub', { ch: 'cur' });
      await rig.ok(sender, 'pub', { ch: 'cur', data: 'before anything', ephemeral: true });
      await rig.ok(sender, 'pub', { ch: 'cur', data: 'kept' });
      const answer = await rig.ok(sender, 'pub', { ch: 'cur', data: { x: 1 }, ephemeral: true });
      assert.deepEqual({ ...answer, id: 0 }, { op: 'ok', id: 0, delivered: 1 });
      await rig.ok(sender, 'pub', { ch: 'cur', data: 'kept too' });
      await settle();
      assert.deepEqual(
        reader.log.filter((m) => m.ch === 'cur' && (m.op === 'msg' || m.op === 'ephemeral')).map((m) => [m.op, m.offset, m.data]),
        [
          ['ephemeral', undefined, 'before anything'],
          ['msg', 1, 'kept'],
          ['ephemeral', undefined, { x: 1 }],
          ['msg', 2, 'kept too'],
        ],
      );
      const history = await rig.ok(reader, 'history', { ch: 'cur' });
      assert.deepEqual((history['messages'] as Array<{ data: unknown }>).map((m) => m.data), ['kept', 'kept too']);
      assert.equal((await rig.request(sender, 'pub', { ch: 'cur', data: 1, ephemeral: true, key: 'k' })).code, 'bad_request', 'nothing stored, nothing to deduplicate');
      assert.equal(rig.hub.metrics.ephemeralPublishes, 2);
    });
  });

  test('a subscriber holding half its backpressure limit does not get ephemeral messages (counted), and still gets channel messages', async () => {
    await withRig({}, async (rig) => {
      const sender = rig.client('s');
      const slow = rig.client('slow');
      const fine = rig.client('fine');
      await rig.ok(slow, 'sub', { ch: 'cur' });
      await rig.ok(fine, 'sub', { ch: 'cur' });
      slow.bufferedAmount = slow.backpressureLimit / 2;
      await rig.ok(sender, 'pub', { ch: 'cur', data: 'tick', ephemeral: true });
      await rig.ok(sender, 'pub', { ch: 'cur', data: 'real' });
      await settle();
      assert.deepEqual(slow.log.filter((m) => m.op === 'ephemeral'), []);
      assert.deepEqual(slow.data('cur'), ['real']);
      assert.equal(fine.log.filter((m) => m.op === 'ephemeral').length, 1);
      assert.equal(rig.hub.metrics.ephemeralDrops, 1);
      assert.equal(rig.hub.metrics.ephemeralDeliveries, 1);
    });
  });
});
