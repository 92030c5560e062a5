// A connection's session: strikes for sustained abuse, the rate limits of every op, the
// bound on requests in flight (reading pauses), and what a closed session still gets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelHubOptions } from './hub-options.js';
import { gate, settle, withRig, type Auth, type Rig } from '../../test/support/hub-rig.js';

/** A rig whose `hook` allows once the test opens `held`: the requests behind it stay in flight until then. */
function withHeld(
  hook: 'canSubscribe' | 'canPublish',
  options: ChannelHubOptions<Auth>,
  body: (rig: Rig, held: ReturnType<typeof gate>) => Promise<void>,
): Promise<void> {
  const held = gate();
  const allow = async (): Promise<boolean> => {
    await held.promise;
    return true;
  };
  return withRig({ ...options, [hook]: allow }, (rig) => body(rig, held));
}

describe('abuse', () => {
  test('abuseLimit bad requests close the connection with 1008; fewer do not', async () => {
    await withRig({ abuseLimit: 5, abuseWindow: 10_000 }, async (rig) => {
      const good = rig.client('good');
      const bad = rig.client('bad');
      for (let i = 0; i < 4; i++) rig.hub.handleText(bad, '{not json');
      await rig.ok(good, 'ping');
      assert.equal(bad.closedWith, null, 'four bad requests are four errs');
      assert.equal(bad.log.length, 4);
      assert.ok(
        bad.log.every((m) => m.op === 'err' && m.code === 'bad_request' && m.id === undefined),
        'errs without id',
      );
      await rig.ok(bad, 'ping');
      rig.send(bad, 'frobnicate');
      await settle();
      assert.equal(bad.closeCode(), 1008);
      assert.equal(bad.log.at(-1)!.code, 'bad_request', 'the last bad request was still answered');
      const count = bad.log.length;
      rig.send(bad, 'ping');
      await settle();
      assert.equal(bad.log.length, count, 'a closed connection gets nothing more');
      assert.equal(rig.hub.metrics.abuseCloses, 1);
      assert.equal(rig.hub.metrics.sessions, 1);
      await rig.ok(good, 'ping');
      assert.equal(good.closedWith, null);
    });
  });

  test('bad requests spread wider than the window do not add up', async () => {
    await withRig({ abuseLimit: 3, abuseWindow: 1_000 }, async (rig) => {
      const client = rig.client();
      for (let round = 0; round < 5; round++) {
        rig.hub.handleText(client, '[]');
        rig.hub.handleText(client, '42');
        rig.time += 1_000;
      }
      await settle();
      assert.equal(client.closedWith, null);
      assert.equal(client.log.length, 10);
    });
  });

  test('rate-limited requests count as abuse too', async () => {
    await withRig({ abuseLimit: 3, publishRate: { perSecond: 1, burst: 1 } }, async (rig) => {
      const client = rig.client();
      await rig.ok(client, 'pub', { ch: 'x', data: 1 });
      for (let i = 0; i < 3; i++) rig.send(client, 'pub', { ch: 'x', data: 1 });
      await settle();
      assert.equal(client.closedWith?.code, 1008);
      assert.equal(client.log.filter((m) => m.code === 'rate_limited').length, 3);
    });
  });

  test('errors that are not the peer misbehaving (forbidden, not_found, too_large) are not abuse', async () => {
    await withRig({ abuseLimit: 2, canPublish: () => false, maxSubscriptions: 1 }, async (rig) => {
      const client = rig.client();
      for (let i = 0; i < 3; i++) assert.equal((await rig.request(client, 'pub', { ch: 'x', data: 1 })).code, 'forbidden');
      for (let i = 0; i < 3; i++) assert.equal((await rig.request(client, 'rpc', { method: 'nope' })).code, 'not_found');
      await rig.ok(client, 'sub', { ch: 'a' });
      for (let i = 0; i < 3; i++) assert.equal((await rig.request(client, 'sub', { ch: `b${i}` })).code, 'too_large');
      assert.equal(client.closedWith, null);
    });
  });
});

describe('rate limits', () => {
  test('publishes over the rate are answered rate_limited, not carried out, and allowed again later', async () => {
    await withRig({ publishRate: { perSecond: 2, burst: 3 } }, async (rig) => {
      const client = rig.client();
      const watcher = rig.client('w');
      await rig.ok(watcher, 'sub', { ch: 'r' });
      for (let n = 1; n <= 3; n++) await rig.ok(client, 'pub', { ch: 'r', data: n });
      const limited = await rig.request(client, 'pub', { ch: 'r', data: 4 });
      assert.deepEqual({ ...limited, message: '' }, { op: 'err', id: limited.id, code: 'rate_limited', message: '' });
      rig.time += 499;
      assert.equal((await rig.request(client, 'pub', { ch: 'r', data: 5 })).code, 'rate_limited');
      rig.time += 1;
      const again = await rig.ok(client, 'pub', { ch: 'r', data: 6 });
      assert.equal(again.offset, 4, 'the limited publishes took no offset');
      await settle();
      assert.deepEqual(
        watcher.msgs('r').map((m) => m.data),
        [1, 2, 3, 6],
      );
      assert.equal(rig.hub.metrics.errors.rate_limited, 2);
    });
  });

  test('subscribes and rpc calls have limits of their own; ping has its own (pingRate, burst 50)', async () => {
    await withRig(
      {
        subscribeRate: { perSecond: 1, burst: 2 },
        rpcRate: { perSecond: 1, burst: 1 },
        abuseLimit: 1000,
        rpc: { hello: () => 'hi' },
      },
      async (rig) => {
        const client = rig.client();
        await rig.ok(client, 'sub', { ch: 'a' });
        await rig.ok(client, 'sub', { ch: 'b' });
        assert.equal((await rig.request(client, 'sub', { ch: 'c' })).code, 'rate_limited');
        assert.equal((await rig.ok(client, 'rpc', { method: 'hello' })).result, 'hi');
        assert.equal((await rig.request(client, 'rpc', { method: 'hello' })).code, 'rate_limited');
        for (let i = 0; i < 50; i++) await rig.ok(client, 'ping');
        await rig.ok(client, 'pub', { ch: 'a', data: 1 });
        rig.time += 1_000;
        await rig.ok(client, 'sub', { ch: 'c' });
        await rig.ok(client, 'rpc', { method: 'hello' });
      },
    );
  });

  test('limits are per connection', async () => {
    await withRig({ publishRate: { perSecond: 1, burst: 1 } }, async (rig) => {
      const a = rig.client('a');
      const b = rig.client('b');
      await rig.ok(a, 'pub', { ch: 'x', data: 1 });
      assert.equal((await rig.request(a, 'pub', { ch: 'x', data: 1 })).code, 'rate_limited');
      await rig.ok(b, 'pub', { ch: 'x', data: 1 });
    });
  });
});

describe('rate limits on every op that costs', () => {
  test('history, presence, unsub, ping and auth each have a bucket; over it: rate_limited, not carried out', async () => {
    const tokens: string[] = [];
    await withRig(
      {
        historyRate: { perSecond: 1, burst: 2 },
        presenceRate: { perSecond: 1, burst: 1 },
        unsubscribeRate: { perSecond: 1, burst: 1 },
        pingRate: { perSecond: 1, burst: 3 },
        authRate: { perSecond: 1, burst: 1 },
        abuseLimit: 1000,
        authenticateToken: (token) => {
          tokens.push(token);
          return { auth: { user: token } };
        },
      },
      async (rig) => {
        const client = rig.client('u');
        await rig.ok(client, 'history', { ch: 'a' });
        await rig.ok(client, 'history', { ch: 'a' });
        const limited = await rig.request(client, 'history', { ch: 'a' });
        assert.deepEqual([limited.code, limited.message], ['rate_limited', 'reading history too fast']);
        await rig.ok(client, 'presence', { ch: 'a' });
        assert.equal((await rig.request(client, 'presence', { ch: 'a' })).code, 'rate_limited');
        await rig.ok(client, 'unsub', { ch: 'a' });
        assert.equal((await rig.request(client, 'unsub', { ch: 'a' })).code, 'rate_limited');
        for (let i = 0; i < 3; i++) await rig.ok(client, 'ping');
        assert.equal((await rig.request(client, 'ping')).code, 'rate_limited');
        await rig.ok(client, 'auth', { token: 'one' });
        assert.equal((await rig.request(client, 'auth', { token: 'two' })).code, 'rate_limited');
        assert.deepEqual(tokens, ['one'], 'the limited auth never reached authenticateToken');
        // The buckets are separate: publishing and subscribing still work.
        await rig.ok(client, 'sub', { ch: 'a' });
        await rig.ok(client, 'pub', { ch: 'a', data: 1 });
        rig.time += 1_000;
        await rig.ok(client, 'history', { ch: 'a' });
        await rig.ok(client, 'presence', { ch: 'a' });
        await rig.ok(client, 'ping');
        assert.equal(rig.hub.metrics.errors.rate_limited, 5);
      },
    );
  });

  test('with the defaults, a flood of history requests is closed with 1008 after abuseLimit refusals', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client(null);
      const burst = Array.from({ length: 100 }, (_, i) => rig.send(client, 'history', { ch: `probe:${i}` }));
      await settle();
      assert.ok(burst.every((id) => client.answer(id)?.op === 'ok'), 'the burst is read');
      const flood = Array.from({ length: 300 }, (_, i) => rig.send(client, 'history', { ch: `probe:x${i}` }));
      const codes = flood.map((id) => client.answer(id)?.code ?? 'none');
      assert.equal(codes.filter((c) => c === 'rate_limited').length, 100, 'then refusals, up to abuseLimit');
      assert.equal(codes.filter((c) => c === 'none').length, 200, 'and nothing after the close');
      assert.equal(client.closeCode(), 1008);
      assert.equal(rig.memory.channelCount, 0, 'and the reads created no channel');
    });
  });
});

describe('requests in flight per connection', () => {
  test('past maxPendingRequests reading pauses; it resumes at half; every request is answered once, in order', async () => {
    await withHeld('canSubscribe', { maxPendingRequests: 4, abuseLimit: 1000, historyRate: { perSecond: 1e6, burst: 1e6 } }, async (rig, held) => {
      const client = rig.client('u');
      const ids = [rig.send(client, 'history', { ch: 'a' }), rig.send(client, 'history', { ch: 'a' }), rig.send(client, 'history', { ch: 'a' })];
      assert.equal(client.paused, false, 'three in flight: still reading');
      ids.push(rig.send(client, 'history', { ch: 'a' }));
      assert.equal(client.paused, true, 'the fourth pauses reading');
      // What was already read before the pause took effect still waits its turn.
      for (let i = 0; i < 6; i++) ids.push(rig.send(client, 'history', { ch: 'a' }));
      assert.equal(client.pauses, 1);
      // A ping is answered at once, whatever waits.
      const ping = rig.send(client, 'ping');
      assert.equal(client.answer(ping)?.op, 'pong');
      await settle();
      assert.equal(client.log.filter((m) => m.op === 'ok').length, 0, 'nothing answered while the hook holds');
      held.open();
      await settle(30);
      assert.equal(client.paused, false);
      assert.equal(client.resumes, 1);
      assert.deepEqual(
        ids.map((id) => client.answers(id)),
        ids.map(() => 1),
      );
      const answered = client.log.filter((m) => m.op === 'ok').map((m) => m.id);
      assert.deepEqual(answered, ids, 'in the order sent');
      assert.equal(rig.hub.metrics.readPauses, 1);
    });
  });

  test('the pending bound counts bytes too (maxPendingBytes)', async () => {
    await withHeld('canPublish', { maxPendingBytes: 10_000 }, async (rig, held) => {
      const client = rig.client('u');
      rig.send(client, 'pub', { ch: 'a', data: 'x'.repeat(6_000) });
      assert.equal(client.paused, false);
      rig.send(client, 'pub', { ch: 'a', data: 'x'.repeat(6_000) });
      assert.equal(client.paused, true);
      held.open();
      await settle(30);
      assert.equal(client.paused, false);
      assert.equal(client.log.filter((m) => m.op === 'ok').length, 2);
    });
  });

  test('a client that cannot pause is answered rate_limited past the bound, and the rest still run', async () => {
    await withHeld('canSubscribe', { maxPendingRequests: 3, abuseLimit: 1000 }, async (rig, held) => {
      const client = rig.client('u', { pausable: false });
      const ids = Array.from({ length: 5 }, () => rig.send(client, 'presence', { ch: 'a' }));
      const refused = ids.slice(3).map((id) => client.answer(id));
      assert.deepEqual(
        refused.map((a) => [a?.code, a?.message]),
        [
          ['rate_limited', 'more than 3 requests waiting for an answer'],
          ['rate_limited', 'more than 3 requests waiting for an answer'],
        ],
      );
      held.open();
      await settle(30);
      assert.deepEqual(
        ids.map((id) => client.answers(id)),
        [1, 1, 1, 1, 1],
      );
      await rig.ok(client, 'presence', { ch: 'a' });
    });
  });

  test('a connection that closes while paused answers nothing more and is not resumed', async () => {
    await withHeld('canSubscribe', { maxPendingRequests: 2 }, async (rig, held) => {
      const client = rig.client('u');
      rig.send(client, 'presence', { ch: 'a' });
      rig.send(client, 'presence', { ch: 'a' });
      assert.equal(client.paused, true);
      rig.hub.disconnect(client);
      held.open();
      await settle(20);
      assert.equal(client.resumes, 0);
      assert.deepEqual(client.log, []);
    });
  });
});
