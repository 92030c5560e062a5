// The hub's side of the proxy hooks (ChannelProxy): asked after the hub's own rules, only for
// `sub`, `pub` and unknown rpc methods; a rewritten publish checked again; refusals answered
// with their code.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as v from 'valibot';
import { ChannelError } from './channel-error.js';
import type { ChannelProxy } from './hub-options.js';
import { withRig, type Auth } from '../../test/support/hub-rig.js';

/** A proxy that records what it was asked, as `hook channel-or-method`. */
function recording(overrides: ChannelProxy<Auth> = {}): { proxy: ChannelProxy<Auth>; asked: string[] } {
  const asked: string[] = [];
  const proxy: ChannelProxy<Auth> = {
    subscribe: async (context, channel) => {
      asked.push(`subscribe ${channel} ${context.user}`);
      await overrides.subscribe?.(context, channel);
    },
    publish: async (context, channel, data) => {
      asked.push(`publish ${channel}`);
      return overrides.publish?.(context, channel, data);
    },
    rpc: async (context, method, params) => {
      asked.push(`rpc ${method}`);
      return overrides.rpc === undefined ? { echoed: params ?? null } : overrides.rpc(context, method, params);
    },
  };
  return { proxy, asked };
}

describe('proxy hooks in the hub', () => {
  test('subscribe: asked after canSubscribe allowed it, never for what it refused, nor for history or presence', async () => {
    const { proxy, asked } = recording({
      subscribe: async (_context, channel) => {
        if (channel === 'room:secret') throw new ChannelError('forbidden', 'members only');
      },
    });
    await withRig({ proxy, canSubscribe: (_context, channel) => !channel.startsWith('closed:') }, async (rig) => {
      const ada = rig.client('ada');
      await rig.ok(ada, 'sub', { ch: 'room:1' });
      const refused = await rig.request(ada, 'sub', { ch: 'closed:1' });
      assert.equal(refused.code, 'forbidden');
      const secret = await rig.request(ada, 'sub', { ch: 'room:secret' });
      assert.deepEqual([secret.code, secret.message], ['forbidden', 'members only']);
      await rig.ok(ada, 'history', { ch: 'room:1' });
      await rig.ok(ada, 'presence', { ch: 'room:1' });
      assert.deepEqual(asked, ['subscribe room:1 ada', 'subscribe room:secret ada']);
      assert.equal(rig.live('room:secret'), 0, 'refused: not subscribed');
    });
  });

  test('publish: asked after the schema and canPublish; a rewrite is published, checked by the schema again', async () => {
    const reported: unknown[] = [];
    const { proxy, asked } = recording({
      publish: async (_context, channel, data) => {
        if (channel === 'chat:upper') return { data: { text: (data as { text: string }).text.toUpperCase() } };
        if (channel === 'chat:broken') return { data: 12 };
        return undefined;
      },
    });
    const schema = v.object({ text: v.string() });
    await withRig(
      { proxy, channels: { 'chat:*': { schema } }, canPublish: (_context, channel) => channel !== 'chat:closed', onError: (error) => reported.push(error) },
      async (rig) => {
        const ada = rig.client('ada');
        await rig.ok(ada, 'sub', { ch: 'chat:upper' });
        await rig.ok(ada, 'pub', { ch: 'chat:upper', data: { text: 'hi' } });
        await ada.until(() => ada.data('chat:upper').length === 1, 'the message');
        assert.deepEqual(ada.data('chat:upper'), [{ text: 'HI' }]);
        assert.equal((await rig.request(ada, 'pub', { ch: 'chat:upper', data: { text: 1 } })).code, 'bad_request', 'the schema before the backend');
        assert.equal((await rig.request(ada, 'pub', { ch: 'chat:closed', data: { text: 'x' } })).code, 'forbidden');
        const broken = await rig.request(ada, 'pub', { ch: 'chat:broken', data: { text: 'x' } });
        assert.deepEqual([broken.code, broken.message], ['internal', 'the backend rewrote the data into something chat:broken does not accept']);
        assert.match(String(reported[0]), /rewrote a publish to chat:broken into data the channel refuses/);
        assert.deepEqual(asked, ['subscribe chat:upper ada', 'publish chat:upper', 'publish chat:broken']);
      },
    );
  });

  test('rpc: the hub’s own methods first, unknown ones to the backend, its errors answered with their code', async () => {
    const { proxy, asked } = recording({
      rpc: async (_context, method, params) => {
        if (method === 'deny') throw new ChannelError('forbidden', 'not today');
        return { method, params: params ?? null };
      },
    });
    await withRig({ proxy, rpc: { local: () => 'here' } }, async (rig) => {
      const ada = rig.client('ada');
      assert.equal((await rig.ok(ada, 'rpc', { method: 'local' })).result, 'here');
      assert.deepEqual((await rig.ok(ada, 'rpc', { method: 'remote', params: [1] })).result, { method: 'remote', params: [1] });
      const denied = await rig.request(ada, 'rpc', { method: 'deny' });
      assert.deepEqual([denied.code, denied.message], ['forbidden', 'not today']);
      assert.deepEqual(asked, ['rpc remote', 'rpc deny']);
    });
  });
});
