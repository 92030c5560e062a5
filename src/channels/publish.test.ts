// Publishing: schemas (any Standard Schema library) and the channel rules that pick them,
// idempotency keys scoped to their publisher, and what a publish is answered.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as v from 'valibot';
import { z } from 'zod';
import { settle, withRig } from '../../test/support/hub-rig.js';

describe('schemas', () => {
  const schemas = {
    zod: z.object({ text: z.string().trim().min(1), tags: z.array(z.string()).default([]) }),
    valibot: v.object({ text: v.pipe(v.string(), v.trim(), v.minLength(1)), tags: v.optional(v.array(v.string()), []) }),
  };

  for (const [vendor, schema] of Object.entries(schemas)) {
    test(`${vendor}: invalid data is a bad_request naming the issue and is never delivered`, async () => {
      await withRig({ channels: { 'chat:*': { schema } } }, async (rig) => {
        const publisher = rig.client('p');
        const watcher = rig.client('w');
        await rig.ok(watcher, 'sub', { ch: 'chat:1' });
        const wrongType = await rig.request(publisher, 'pub', { ch: 'chat:1', data: { text: 5 } });
        assert.equal(wrongType.op, 'err');
        assert.equal(wrongType.code, 'bad_request');
        assert.match(wrongType.message!, /^invalid data for chat:1: text: /);
        assert.match(wrongType.message!, /string/i);
        const blank = await rig.request(publisher, 'pub', { ch: 'chat:1', data: { text: '   ' } });
        assert.equal(blank.code, 'bad_request');
        assert.match(blank.message!, /text: /);
        const nested = await rig.request(publisher, 'pub', { ch: 'chat:1', data: { text: 'ok', tags: ['a', 7] } });
        assert.equal(nested.code, 'bad_request');
        assert.match(nested.message!, /tags\.1: /, 'the path names the array index');
        const notObject = await rig.request(publisher, 'pub', { ch: 'chat:1', data: null });
        assert.equal(notObject.code, 'bad_request');
        await settle();
        assert.deepEqual(watcher.msgs('chat:1'), []);
        const history = await rig.ok(watcher, 'history', { ch: 'chat:1' });
        assert.deepEqual(history.messages, []);
        assert.equal(rig.hub.metrics.publishes, 0);
      });
    });

    test(`${vendor}: subscribers get the data as the schema transformed it`, async () => {
      await withRig({ channels: { 'chat:*': { schema } } }, async (rig) => {
        const publisher = rig.client('p');
        const watcher = rig.client('w');
        await rig.ok(watcher, 'sub', { ch: 'chat:2' });
        const ok = await rig.ok(publisher, 'pub', { ch: 'chat:2', data: { text: '  hello  ', extra: true } });
        assert.equal(ok.offset, 1);
        await watcher.until(() => watcher.msgs('chat:2').length === 1, 'the message');
        assert.deepEqual(watcher.msgs('chat:2')[0], { op: 'msg', ch: 'chat:2', offset: 1, data: { text: 'hello', tags: [] } });
        const history = await rig.ok(watcher, 'history', { ch: 'chat:2' });
        assert.deepEqual(history.messages, [{ offset: 1, data: { text: 'hello', tags: [] } }]);
        // Other channels have no schema.
        await rig.ok(publisher, 'pub', { ch: 'other', data: 42 });
      });
    });
  }

  test('the longest matching rule wins; an exact name beats a prefix', async () => {
    await withRig(
      {
        channels: {
          'chat:*': { schema: z.string() },
          'chat:numbers:*': { schema: z.number() },
          'chat:numbers:free': {},
        },
      },
      async (rig) => {
        const client = rig.client();
        await rig.ok(client, 'pub', { ch: 'chat:1', data: 'text' });
        assert.equal((await rig.request(client, 'pub', { ch: 'chat:1', data: 1 })).code, 'bad_request');
        await rig.ok(client, 'pub', { ch: 'chat:numbers:1', data: 1 });
        assert.equal((await rig.request(client, 'pub', { ch: 'chat:numbers:1', data: 'text' })).code, 'bad_request');
        await rig.ok(client, 'pub', { ch: 'chat:numbers:free', data: { anything: true } });
        await rig.ok(client, 'pub', { ch: 'chatter', data: { anything: true } });
      },
    );
  });

  test('an asynchronous schema is awaited', async () => {
    const slow = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: async (value: unknown) => {
          await new Promise((resolve) => setImmediate(resolve)); // decides an event-loop turn later
          return typeof value === 'number' ? { value: value * 2 } : { issues: [{ message: 'not a number' }] };
        },
      },
    };
    await withRig({ channels: { n: { schema: slow } } }, async (rig) => {
      const client = rig.client();
      await rig.ok(client, 'sub', { ch: 'n' });
      await rig.ok(client, 'pub', { ch: 'n', data: 21 });
      const bad = await rig.request(client, 'pub', { ch: 'n', data: 'x' });
      assert.equal(bad.message, 'invalid data for n: not a number');
      await client.until(() => client.msgs('n').length === 1, 'the message');
      assert.equal(client.msgs('n')[0]!.data, 42);
    });
  });
});

describe('idempotency keys are scoped to their publisher', () => {
  test("another client's guess of a key neither swallows the victim's publish nor is swallowed", async () => {
    await withRig({}, async (rig) => {
      const victim = rig.client(null);
      const attacker = rig.client(null);
      const watcher = rig.client(null);
      await rig.ok(watcher, 'sub', { ch: 'orders' });
      const stolen = await rig.ok(attacker, 'pub', { ch: 'orders', data: 'fake', key: 'order-17', sender: 'guess' });
      const real = await rig.ok(victim, 'pub', { ch: 'orders', data: 'real', key: 'order-17', sender: 'victim-random-id' });
      assert.equal(stolen.delivered, 1);
      assert.equal(real.delivered, 1, 'the victim publish was delivered');
      assert.deepEqual(watcher.data('orders'), ['fake', 'real']);
    });
  });

  test('the same sender on a new connection (the SDK after a reconnect) is deduplicated', async () => {
    await withRig({}, async (rig) => {
      const watcher = rig.client(null);
      await rig.ok(watcher, 'sub', { ch: 'orders' });
      const first = rig.client(null);
      const sent = await rig.ok(first, 'pub', { ch: 'orders', data: 'x', key: 'k', sender: 's-1' });
      rig.hub.disconnect(first);
      const second = rig.client(null);
      const retried = await rig.ok(second, 'pub', { ch: 'orders', data: 'x', key: 'k', sender: 's-1' });
      assert.deepEqual([retried.offset, retried.delivered], [sent.offset, 0]);
      assert.deepEqual(watcher.data('orders'), ['x']);
    });
  });

  test('an authenticated user is its own scope, whatever sender it sends; without any, the connection is', async () => {
    await withRig({}, async (rig) => {
      const watcher = rig.client(null);
      await rig.ok(watcher, 'sub', { ch: 'c' });
      const tab1 = rig.client('ada');
      const tab2 = rig.client('ada');
      await rig.ok(tab1, 'pub', { ch: 'c', data: 1, key: 'k', sender: 'a' });
      assert.equal((await rig.ok(tab2, 'pub', { ch: 'c', data: 1, key: 'k', sender: 'b' })).delivered, 0, "ada's own retry");
      const lin = rig.client('lin');
      assert.equal((await rig.ok(lin, 'pub', { ch: 'c', data: 1, key: 'k', sender: 'a' })).delivered, 1, "lin is not ada, even with ada's sender");
      const anon1 = rig.client(null);
      const anon2 = rig.client(null);
      await rig.ok(anon1, 'pub', { ch: 'c', data: 2, key: 'k2' });
      assert.equal((await rig.ok(anon2, 'pub', { ch: 'c', data: 2, key: 'k2' })).delivered, 1);
      assert.equal((await rig.ok(anon1, 'pub', { ch: 'c', data: 2, key: 'k2' })).delivered, 0);
      assert.deepEqual(watcher.data('c'), [1, 1, 2, 2]);
    });
  });

  test('a key reused with other data is a bad_request, and nothing is delivered', async () => {
    await withRig({}, async (rig) => {
      const watcher = rig.client(null);
      await rig.ok(watcher, 'sub', { ch: 'c' });
      const client = rig.client('ada');
      await rig.ok(client, 'pub', { ch: 'c', data: { n: 1 }, key: 'k' });
      const reused = await rig.request(client, 'pub', { ch: 'c', data: { n: 2 }, key: 'k' });
      assert.deepEqual([reused.op, reused.code], ['err', 'bad_request']);
      assert.match(reused.message!, /key "k" was used for other data in c/);
      assert.deepEqual(watcher.data('c'), [{ n: 1 }]);
    });
  });
});
