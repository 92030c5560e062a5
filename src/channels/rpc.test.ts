// Rpc: handlers, their params' schemas, unknown methods, failures, and calls that take time.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as v from 'valibot';
import { z } from 'zod';
import { ChannelError } from './channel-error.js';
import { gate, withRig } from '../../test/support/hub-rig.js';

describe('rpc', () => {
  test('results, null for nothing, params as sent, the caller in the context', async () => {
    const seen: unknown[] = [];
    await withRig(
      {
        rpc: {
          'rooms.list': (params) => {
            seen.push(params);
            return ['room:1', 'room:2'];
          },
          nothing: () => undefined,
          whoami: (_params, { client }) => client.auth?.user,
          later: async () => {
            await new Promise((resolve) => setImmediate(resolve)); // answers an event-loop turn later
            return { done: true };
          },
        },
      },
      async (rig) => {
        const client = rig.client('ada');
        const list = await rig.ok(client, 'rpc', { method: 'rooms.list', params: { prefix: 'room:' } });
        assert.deepEqual(list, { op: 'ok', id: list.id, result: ['room:1', 'room:2'] });
        await rig.ok(client, 'rpc', { method: 'rooms.list', params: null });
        await rig.ok(client, 'rpc', { method: 'rooms.list' });
        assert.deepEqual(seen, [{ prefix: 'room:' }, null, undefined]);
        const nothing = await rig.ok(client, 'rpc', { method: 'nothing' });
        assert.ok('result' in nothing && nothing.result === null, 'result: null');
        assert.equal((await rig.ok(client, 'rpc', { method: 'whoami' })).result, 'ada');
        assert.deepEqual((await rig.ok(client, 'rpc', { method: 'later' })).result, { done: true });
      },
    );
  });

  test('an unknown method is not_found, even one named like an Object.prototype property', async () => {
    await withRig({ rpc: { known: () => 1 } }, async (rig) => {
      const client = rig.client();
      for (const method of ['unknown', 'constructor', 'toString', '__proto__', 'hasOwnProperty']) {
        const answer = await rig.request(client, 'rpc', { method });
        assert.equal(answer.code, 'not_found', method);
        assert.match(answer.message!, /no rpc method/);
      }
      await withRig({}, async (bare) => {
        assert.equal((await bare.request(bare.client(), 'rpc', { method: 'known' })).code, 'not_found');
      });
    });
  });

  test('a throwing handler answers internal, calls onError with the error and the caller, and keeps the connection', async () => {
    const reported: Array<{ error: unknown; user: string | undefined }> = [];
    await withRig(
      {
        rpc: {
          boom: () => {
            throw new Error('kaboom');
          },
          rejects: () => Promise.reject(new Error('async kaboom')),
          denied: () => {
            throw new ChannelError('forbidden', 'admins only');
          },
        },
        onError: (error, { client }) => reported.push({ error, user: client.auth?.user }),
      },
      async (rig) => {
        const client = rig.client('lin');
        const boom = await rig.request(client, 'rpc', { method: 'boom' });
        assert.equal(boom.code, 'internal');
        assert.ok(!boom.message!.includes('kaboom'), 'the error itself stays on the server');
        assert.equal((await rig.request(client, 'rpc', { method: 'rejects' })).code, 'internal');
        assert.deepEqual(
          reported.map((r) => [(r.error as Error).message, r.user]),
          [
            ['kaboom', 'lin'],
            ['async kaboom', 'lin'],
          ],
        );
        const denied = await rig.request(client, 'rpc', { method: 'denied' });
        assert.deepEqual(denied, { op: 'err', id: denied.id, code: 'forbidden', message: 'admins only' });
        assert.equal(reported.length, 2, 'a ChannelError is an answer, not a failure');
        await rig.ok(client, 'ping');
        assert.equal(client.closedWith, null);
        assert.equal(rig.hub.metrics.errors.internal, 2);
      },
    );
  });

  test('a slow rpc does not hold up other requests', async () => {
    const slow = gate();
    await withRig({ rpc: {
        slow: async () => {
          await slow.promise;
          return 'late';
        },
      } }, async (rig) => {
      const client = rig.client();
      const rpcId = rig.send(client, 'rpc', { method: 'slow' });
      await rig.ok(client, 'sub', { ch: 'x' });
      await rig.ok(client, 'ping');
      assert.equal(client.answer(rpcId), undefined);
      slow.open();
      await client.until(() => client.answer(rpcId) !== undefined, 'the rpc answer');
      assert.equal(client.answer(rpcId)!.result, 'late');
    });
  });

  const schemas = { zod: z.object({ a: z.number(), b: z.number() }), valibot: v.object({ a: v.number(), b: v.number() }) };
  for (const [vendor, schema] of Object.entries(schemas)) {
    test(`${vendor}: rpc params are validated (and transformed) before the handler runs`, async () => {
      let calls = 0;
      await withRig(
        {
          rpc: {
            add: {
              schema,
              handler: (params) => {
                calls++;
                const { a, b } = params as { a: number; b: number };
                return a + b;
              },
            },
          },
        },
        async (rig) => {
          const client = rig.client();
          assert.equal((await rig.ok(client, 'rpc', { method: 'add', params: { a: 2, b: 3 } })).result, 5);
          const invalid = await rig.request(client, 'rpc', { method: 'add', params: { a: 2, b: 'x' } });
          assert.equal(invalid.code, 'bad_request');
          assert.match(invalid.message!, /^invalid params for add: b: /);
          const missing = await rig.request(client, 'rpc', { method: 'add' });
          assert.equal(missing.code, 'bad_request');
          assert.equal(calls, 1);
        },
      );
    });
  }
});
