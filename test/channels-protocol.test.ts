// hotline.v1 over real sockets: a `ws` client speaking raw JSON to serve() with the channel
// endpoint, checking every op and answer against docs/protocol.md, every error code a peer
// can cause, the WebSocket-level limits, scale, and presence after abrupt disconnects.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { ChannelError, MemoryEngine } from '../src/channels/index.js';
import type { ChannelsEndpointOptions } from '../src/server/channels.js';
import { encodeTextFrame } from '../src/protocol/frame-encoder.js';
import { Opcode } from '../src/protocol/opcode.js';
import { assertErr, ChannelsClient, ok, type WireMessage, withoutClient } from './support/channels-client.js';
import { withChannels, type ChannelsServer } from './support/channels-server.js';
import { upgradeSocket } from './support/raw-upgrade.js';
import { waitFor } from './support/wait.js';

interface Auth {
  user: string;
}

const NAMES: Record<string, string> = { u1: 'Ada', u2: 'Lin', u3: 'Sam' };

/** `?user=u1` connects as u1 (member {id, name}); no user connects without a member. */
function authFromUrl(req: { url?: string }): { auth: Auth; member?: { id: string; name: string } } {
  const user = new URL(req.url ?? '/', 'http://x').searchParams.get('user');
  if (user === null) return { auth: { user: 'anonymous' } };
  return { auth: { user }, member: { id: user, name: NAMES[user] ?? user } };
}

/** A server whose clients say who they are with `?user=` (see {@link authFromUrl}). */
function withServer(options: ChannelsEndpointOptions<Auth>, body: (s: ChannelsServer<Auth>) => Promise<void>): Promise<void> {
  return withChannels<Auth>({ authenticate: authFromUrl, onError: () => {}, ...options }, body);
}

/** The next err without an id, after sending `text` raw. */
async function errForRaw(client: ChannelsClient, text: string | Uint8Array): Promise<WireMessage> {
  const from = client.log.length;
  const next = client.waitFor((m) => m.op === 'err', `an err for ${String(text).slice(0, 40)}`, 2_000, from);
  if (typeof text === 'string') client.sendText(text);
  else client.sendBinary(text);
  return next;
}

const fast = { perSecond: 1_000_000, burst: 1_000_000 };

describe('handshake', () => {
  test('the server selects the subprotocol hotline.v1', async () => {
    await withServer({}, async (s) => {
      const client = await s.connect();
      assert.equal(client.ws.protocol, 'hotline.v1');
      const among = await ChannelsClient.connect(s.url(), { protocols: ['chat.v9', 'hotline.v1'] });
      assert.equal(among.ws.protocol, 'hotline.v1');
      await among.close();
      // A client that offers no subprotocol is served the same protocol.
      const none = await ChannelsClient.connect(s.url(), { protocols: [] });
      assert.equal(none.ws.protocol, '');
      await ok(none, 'ping');
      await none.close();
    });
  });

  test('authenticate refusing with 401 answers before the upgrade; nothing opens', async () => {
    let asked = 0;
    await withServer(
      {
        authenticate(req) {
          asked++;
          const token = req.headers['authorization'];
          if (token !== 'Bearer good') return { reject: { status: 401, message: 'a token is required' } };
          return { auth: { user: 'u1' }, member: { id: 'u1' } };
        },
      },
      async (s) => {
        const ws = new WebSocket(s.url(), 'hotline.v1');
        ws.on('error', () => {});
        const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number; resume(): void }];
        assert.equal(res.statusCode, 401);
        res.resume();
        ws.terminate();
        assert.equal(asked, 1);
        assert.equal(s.endpoint.hub.metrics.sessions, 0);
        assert.equal(s.endpoint.server.counters.rejected, 1);

        const allowed = await ChannelsClient.connect(s.url(), { headers: { authorization: 'Bearer good' } });
        await ok(allowed, 'sub', { ch: 'room' });
        assert.deepEqual(withoutClient((await ok(allowed, 'presence', { ch: 'room' })).members), [{ id: 'u1' }]);
        await allowed.close();
      },
    );
  });
});

describe('every op, answered as docs/protocol.md shows', () => {
  test('"A session" from the documentation, over the wire', async () => {
    await withServer({}, async (s) => {
      for (let n = 1; n <= 41; n++) await s.endpoint.hub.engine.publish('room:1', JSON.stringify({ n }));
      const ada = await s.connect('user=u1');
      const sub = await ada.request('sub', { ch: 'room:1' });
      assert.deepEqual(sub, { op: 'ok', id: 1, epoch: sub.epoch, offset: 41, recovered: false, client: sub['client'] });
      assert.equal(typeof sub.epoch, 'string');
      const listed = await ada.request('presence', { ch: 'room:1' });
      assert.deepEqual({ ...listed, members: withoutClient(listed.members) }, { op: 'ok', id: 2, members: [{ id: 'u1', name: 'Ada' }], count: 1 });

      const lin = await s.connect('user=u2');
      await ok(lin, 'sub', { ch: 'room:1' });
      const joined = await ada.waitFor((m) => m.op === 'join' && m.member?.['id'] === 'u2', 'the join', 2_000, 0);
      assert.deepEqual({ ...joined, member: withoutClient([joined.member!])[0] }, {
        op: 'join',
        ch: 'room:1',
        member: { id: 'u2', name: 'Lin' },
      });

      const pub = await ada.request('pub', { ch: 'room:1', data: { text: 'hi' }, key: 'u1-1' });
      assert.deepEqual(pub, { op: 'ok', id: 3, offset: 42, delivered: 2 });
      const msg = { op: 'msg', ch: 'room:1', offset: 42, data: { text: 'hi' } };
      assert.deepEqual(await ada.waitFor((m) => m.op === 'msg', 'ada msg', 2_000, 0), msg);
      assert.deepEqual(await lin.waitFor((m) => m.op === 'msg', 'lin msg', 2_000, 0), msg);

      assert.deepEqual(await ada.request('pub', { ch: 'room 1', data: 1 }), {
        op: 'err',
        id: 4,
        code: 'bad_request',
        message: '"ch" must be a channel name: character U+0020 at index 4 is not allowed (use A-Z, a-z, 0-9 and _ - : . @ / = ,)',
      });
      assert.deepEqual(await ada.request('ping'), { op: 'pong', id: 5 });
      assert.deepEqual(ada.unparsed, []);
      assert.equal(ada.binaryFrames, 0);
    });
  });

  test('sub, pub and msg: exact shapes; offsets from 1; the publisher counts when subscribed', async () => {
    await withServer({}, async (s) => {
      const a = await s.connect('user=u1');
      const b = await s.connect('user=u2');
      const outsider = await s.connect();
      const sub = await ok(a, 'sub', { ch: 'room:2' });
      assert.deepEqual(Object.keys(sub).sort(), ['client', 'epoch', 'id', 'offset', 'op', 'recovered']);
      assert.deepEqual([sub.offset, sub.recovered], [0, false], 'a fresh channel: offset 0, nothing recovered');
      assert.ok(sub.epoch!.length >= 1 && sub.epoch!.length <= 64, `epoch ${sub.epoch} within 1 to 64 characters`);
      await ok(b, 'sub', { ch: 'room:2' });

      // Publishing does not need a subscription.
      assert.deepEqual(await outsider.request('pub', { ch: 'room:2', data: null }), { op: 'ok', id: 1, offset: 1, delivered: 2 });
      assert.deepEqual(await a.request('pub', { ch: 'room:2', data: [1, 'two', { three: 3 }] }), {
        op: 'ok',
        id: 2,
        offset: 2,
        delivered: 2,
      });
      await b.until(() => b.messages('room:2').length === 2, 'two messages');
      assert.deepEqual(b.messages('room:2'), [
        { op: 'msg', ch: 'room:2', offset: 1, data: null },
        { op: 'msg', ch: 'room:2', offset: 2, data: [1, 'two', { three: 3 }] },
      ]);
      await a.until(() => a.messages('room:2').length === 2, 'the publisher has its own message too');
      assert.deepEqual(outsider.messages('room:2'), []);
      assert.equal((await ok(outsider, 'pub', { ch: 'nobody:here', data: 1 })).delivered, 0);
    });
  });

  test('unsub: {op:"ok",id}; no msg after it; unknown channels and repeats are ok too', async () => {
    await withServer({ publishRate: fast }, async (s) => {
      const a = await s.connect();
      const p = await s.connect();
      await ok(a, 'sub', { ch: 'u' });
      // Messages in flight while the unsub goes out.
      const pubs = Array.from({ length: 50 }, (_, n) => p.request('pub', { ch: 'u', data: n }));
      const unsub = await a.request('unsub', { ch: 'u' });
      assert.deepEqual(unsub, { op: 'ok', id: 2 });
      await Promise.all(pubs);
      await ok(p, 'pub', { ch: 'u', data: 'after' });
      await ok(a, 'ping');
      const index = a.log.indexOf(unsub);
      assert.ok(a.log.slice(index).every((m) => m.op !== 'msg'), 'no msg after the ok of the unsub');
      const offsets = a.messages('u').map((m) => m.offset);
      assert.deepEqual(
        offsets,
        offsets.map((_, i) => i + 1),
        'what came before the unsub came in order, without gaps',
      );
      assert.deepEqual(await a.request('unsub', { ch: 'u' }), { op: 'ok', id: 4 });
      assert.deepEqual(await a.request('unsub', { ch: 'never:subscribed' }), { op: 'ok', id: 5 });
    });
  });

  test('presence and join/leave events', async () => {
    await withServer({}, async (s) => {
      const ada = await s.connect('user=u1');
      const lin = await s.connect('user=u2');
      const anon = await s.connect();
      await ok(ada, 'sub', { ch: 'room' });
      await ok(anon, 'sub', { ch: 'room' });
      await ok(lin, 'sub', { ch: 'room' });
      const presence = await anon.request('presence', { ch: 'room' });
      assert.deepEqual(Object.keys(presence).sort(), ['count', 'id', 'members', 'op']);
      assert.deepEqual(
        presence.members!.map((m) => m['id']).sort(),
        ['u1', 'u2', undefined],
        'every subscriber is present, the anonymous one too',
      );
      const joined = await ada.waitFor((m) => m.op === 'join' && m.member?.['id'] === 'u2', 'the join', 2_000, 0);
      assert.deepEqual({ ...joined, member: withoutClient([joined.member!])[0] }, { op: 'join', ch: 'room', member: { id: 'u2', name: 'Lin' } });
      await ok(lin, 'unsub', { ch: 'room' });
      const left = await ada.waitFor((m) => m.op === 'leave', 'the leave', 2_000, 0);
      assert.deepEqual({ ...left, member: withoutClient([left.member!])[0] }, { op: 'leave', ch: 'room', member: { id: 'u2', name: 'Lin' } });
      await anon.until(() => anon.ofOp('leave').length === 1, 'the leave at anon');
      assert.deepEqual(
        lin.ofOp('join').map((m) => m.member?.['id']),
        ['u2'],
        'its own join only: it subscribed last',
      );
      assert.deepEqual(withoutClient((await ok(anon, 'presence', { ch: 'room' })).members), [{ id: 'u1', name: 'Ada' }, {}]);
      assert.deepEqual(withoutClient((await ok(anon, 'presence', { ch: 'empty' })).members), []);
    });
  });

  test('history: the newest kept messages, oldest first, with the epoch', async () => {
    await withServer({ publishRate: fast }, async (s) => {
      const c = await s.connect();
      const empty = await c.request('history', { ch: 'h' });
      assert.deepEqual(empty, { op: 'ok', id: 1, epoch: empty.epoch, messages: [] });
      for (let n = 1; n <= 60; n++) await ok(c, 'pub', { ch: 'h', data: { text: `m${n}` } });
      const two = await c.request('history', { ch: 'h', limit: 2 });
      // Reading a channel that did not exist created nothing: its epoch is not the one that began with the first publish.
      assert.notEqual(two.epoch, empty.epoch);
      assert.equal((await ok(c, 'history', { ch: 'h', limit: 1 })).epoch, two.epoch, 'which stays');
      assert.deepEqual(two, {
        op: 'ok',
        id: two.id,
        epoch: two.epoch,
        messages: [
          { offset: 59, data: { text: 'm59' } },
          { offset: 60, data: { text: 'm60' } },
        ],
        more: true,
      });
      const before = await ok(c, 'history', { ch: 'h', limit: 2, before: 59 });
      assert.deepEqual(
        before.messages!.map((m) => m.offset),
        [57, 58],
        'before: the page older than what you have',
      );
      const decided = await ok(c, 'history', { ch: 'h' });
      assert.equal(decided.messages!.length, 50, 'without a limit the server decides (50 by default)');
      assert.equal(decided.messages!.at(-1)!.offset, 60);
      const many = await ok(c, 'history', { ch: 'h', limit: 1000 });
      assert.equal(many.messages!.length, 60);
      assert.equal((many as { more?: boolean }).more, undefined, 'nothing older is kept: no more');
      assert.deepEqual(
        many.messages!.map((m) => m.offset),
        Array.from({ length: 60 }, (_, i) => i + 1),
      );
    });
  });

  test('rpc: result, null for nothing, params as sent', async () => {
    const seen: unknown[] = [];
    await withServer(
      {
        rpc: {
          'rooms.list': (params) => {
            seen.push(params);
            return ['room:1', 'room:2'];
          },
          nothing: () => undefined,
          whoami: (_params, { client }) => client.auth.user,
        },
      },
      async (s) => {
        const c = await s.connect('user=u3');
        assert.deepEqual(await c.request('rpc', { method: 'rooms.list', params: { prefix: 'room:' } }), {
          op: 'ok',
          id: 1,
          result: ['room:1', 'room:2'],
        });
        await ok(c, 'rpc', { method: 'rooms.list', params: null });
        await ok(c, 'rpc', { method: 'rooms.list' });
        assert.deepEqual(seen, [{ prefix: 'room:' }, null, undefined]);
        assert.deepEqual(await c.request('rpc', { method: 'nothing' }), { op: 'ok', id: 4, result: null });
        assert.deepEqual(await c.request('rpc', { method: 'whoami' }), { op: 'ok', id: 5, result: 'u3' });
      },
    );
  });

  test('ids: 0 and 2^53 - 1 are echoed; unknown fields are ignored; null optional fields are absent ones', async () => {
    await withServer({}, async (s) => {
      const c = await s.connect();
      c.sendJson({ op: 'ping', id: 0 });
      assert.deepEqual(await c.answer(0), { op: 'pong', id: 0 });
      c.sendJson({ op: 'ping', id: Number.MAX_SAFE_INTEGER, extra: { nested: [1] } });
      assert.deepEqual(await c.answer(Number.MAX_SAFE_INTEGER), { op: 'pong', id: Number.MAX_SAFE_INTEGER });
      const sub = await c.request('sub', { ch: 'n', since: null, future: 'field' });
      assert.equal(sub.op, 'ok');
      assert.equal(sub.recovered, false);
      const pub = await c.request('pub', { ch: 'n', data: 1, key: null, priority: 'high' });
      assert.deepEqual(pub, { op: 'ok', id: pub.id, offset: 1, delivered: 1 });
      assert.equal((await ok(c, 'pub', { ch: 'n', data: 2, key: null })).offset, 2, 'a null key is no key');
      const history = await ok(c, 'history', { ch: 'n', limit: null });
      assert.equal(history.messages!.length, 2);
    });
  });

  test('every request is answered exactly once, even many at once', async () => {
    await withServer({ publishRate: fast, rpc: { echo: (p) => (typeof p === 'number' ? p : null) } }, async (s) => {
      const c = await s.connect();
      const ops: Array<[string, Record<string, unknown>]> = [];
      for (let i = 0; i < 40; i++) {
        ops.push(['sub', { ch: `many:${i}` }]);
        ops.push(['pub', { ch: `many:${i}`, data: i }]);
        ops.push(['history', { ch: `many:${i}`, limit: 1 }]);
        ops.push(['presence', { ch: `many:${i}` }]);
        ops.push(['rpc', { method: 'echo', params: i }]);
        ops.push(['ping', {}]);
        ops.push(['pub', { ch: 'bad name', data: i }]);
        ops.push(['unsub', { ch: `many:${i}` }]);
      }
      const answers = await Promise.all(ops.map(([op, fields]) => c.request(op, fields)));
      await ok(c, 'ping');
      const answerIds = c.log.filter((m) => m.op === 'ok' || m.op === 'err' || m.op === 'pong').map((m) => m.id);
      assert.equal(answerIds.length, ops.length + 1);
      assert.equal(new Set(answerIds).size, ops.length + 1, 'no id answered twice');
      assert.equal(answers.filter((a) => a.op === 'err').length, 40);
    });
  });
});

describe('every error code, from the wire', () => {
  test('bad_request: malformed, non-object, missing or invalid id, unknown op, bad fields, binary', async () => {
    await withServer({ abuseLimit: 1000 }, async (s) => {
      const c = await s.connect();
      const noId: Array<string | Uint8Array> = [
        '{"op":"ping","id":1',
        'hello',
        '',
        '[1,2,3]',
        '42',
        '"a string"',
        'null',
        'true',
        '{"op":"ping"}',
        '{"op":"ping","id":null}',
        '{"op":"ping","id":-1}',
        '{"op":"ping","id":1.5}',
        '{"op":"ping","id":"7"}',
        `{"op":"ping","id":${2 ** 53}}`,
        `{"op":"pub","id":9,"ch":"deep","data":${'['.repeat(70)}${']'.repeat(70)}}`,
        new Uint8Array([1, 2, 3]),
      ];
      for (const text of noId) assertErr(await errForRaw(c, text), 'bad_request', undefined);
      assert.equal(assertErr(await errForRaw(c, 'nope'), 'bad_request', undefined), 'the message is not valid JSON');

      const withId: Array<[Record<string, unknown>, RegExp]> = [
        [{ op: 'subscribe', ch: 'x' }, /unknown op "subscribe"/],
        [{ ch: 'x' }, /"op" is required/],
        [{ op: 7 }, /"op" must be a string/],
        [{ op: 'sub' }, /"ch" is required/],
        [{ op: 'sub', ch: '' }, /"ch" must be a channel name/],
        [{ op: 'sub', ch: 'a'.repeat(201) }, /"ch" must be a channel name/],
        [{ op: 'sub', ch: 'room#1' }, /"#" at index 4 is not allowed/],
        [{ op: 'sub', ch: 'café' }, /"ch" must be a channel name/],
        [{ op: 'sub', ch: 5 }, /"ch" must be a string/],
        [{ op: 'sub', ch: 'x', since: 5 }, /"since"/],
        [{ op: 'sub', ch: 'x', since: { offset: 1 } }, /"since.epoch"/],
        [{ op: 'sub', ch: 'x', since: { epoch: 'e'.repeat(65), offset: 1 } }, /"since.epoch"/],
        [{ op: 'sub', ch: 'x', since: { epoch: 'e', offset: -1 } }, /"since.offset"/],
        [{ op: 'pub', ch: 'x' }, /"data" is required/],
        [{ op: 'pub', ch: 'x', data: 1, key: '' }, /"key"/],
        [{ op: 'pub', ch: 'x', data: 1, key: 'k'.repeat(129) }, /"key"/],
        [{ op: 'pub', ch: 'x', data: 1, key: 7 }, /"key"/],
        [{ op: 'history', ch: 'x', limit: 0 }, /"limit"/],
        [{ op: 'history', ch: 'x', limit: 1001 }, /"limit"/],
        [{ op: 'rpc' }, /"method" is required/],
        [{ op: 'rpc', method: 'm'.repeat(101) }, /"method"/],
        [{ op: 'unsub' }, /"ch" is required/],
        [{ op: 'presence', ch: 'a b' }, /"ch" must be a channel name/],
      ];
      let id = 1_000;
      for (const [fields, pattern] of withId) {
        id++;
        const answer = c.answer(id);
        c.sendJson({ id, ...fields });
        assert.match(assertErr(await answer, 'bad_request', id), pattern, JSON.stringify(fields));
      }

      await ok(c, 'sub', { ch: 'twice' });
      const again = await c.request('sub', { ch: 'twice' });
      assertErr(again, 'bad_request', again.id);
      assert.equal(s.endpoint.hub.localSubscribers('twice'), 1);

      await ok(c, 'ping');
      assert.equal(c.ws.readyState, WebSocket.OPEN, 'errors leave the connection open');
    });
  });

  test('unauthorized and forbidden from the hooks', async () => {
    await withServer(
      {
        canSubscribe: (_context, channel) => !channel.startsWith('admin:'),
        canPublish: ({ client }, channel) => {
          if (client.auth.user === 'anonymous') throw new ChannelError('unauthorized', 'log in to publish');
          return channel !== 'readonly';
        },
      },
      async (s) => {
        const anon = await s.connect();
        const ada = await s.connect('user=u1');
        assert.equal(assertErr(await anon.request('pub', { ch: 'room', data: 1 }), 'unauthorized', 1), 'log in to publish');
        assertErr(await ada.request('pub', { ch: 'readonly', data: 1 }), 'forbidden', 1);
        assertErr(await ada.request('sub', { ch: 'admin:log' }), 'forbidden', 2);
        assertErr(await ada.request('history', { ch: 'admin:log' }), 'forbidden', 3);
        assertErr(await ada.request('presence', { ch: 'admin:log' }), 'forbidden', 4);
        await ok(ada, 'pub', { ch: 'room', data: 1 });
        await ok(anon, 'sub', { ch: 'room' });
      },
    );
  });

  test('not_found for an unknown rpc method; internal for a throwing one (reported to onError)', async () => {
    const reported: unknown[] = [];
    await withServer(
      {
        rpc: {
          fail: () => {
            throw new Error('handler bug');
          },
        },
        onError: (error) => reported.push(error),
      },
      async (s) => {
        const c = await s.connect();
        assertErr(await c.request('rpc', { method: 'rooms.create' }), 'not_found', 1);
        const internal = assertErr(await c.request('rpc', { method: 'fail' }), 'internal', 2);
        assert.ok(!internal.includes('handler bug'), 'the error itself stays on the server');
        assert.equal(reported.length, 1);
        await ok(c, 'ping');
      },
    );
  });

  test('rate_limited: publishes over the rate', async () => {
    await withServer({ publishRate: { perSecond: 1, burst: 3 } }, async (s) => {
      const c = await s.connect();
      const answers = await Promise.all(Array.from({ length: 6 }, (_, n) => c.request('pub', { ch: 'r', data: n })));
      assert.deepEqual(
        answers.map((a) => a.op === 'ok' || a.code),
        [true, true, true, 'rate_limited', 'rate_limited', 'rate_limited'],
      );
      for (const answer of answers.slice(3)) assertErr(answer, 'rate_limited', answer.id);
      assert.equal((await ok(c, 'history', { ch: 'r' })).messages!.length, 3, 'limited publishes were not carried out');
    });
  });

  test('too_large: data over maxDataLength; a sub beyond maxSubscriptions', async () => {
    await withServer({ maxDataLength: 100, maxSubscriptions: 3 }, async (s) => {
      const c = await s.connect();
      await ok(c, 'pub', { ch: 'big', data: 'x'.repeat(98) });
      assertErr(await c.request('pub', { ch: 'big', data: 'x'.repeat(99) }), 'too_large', 2);
      for (let i = 0; i < 3; i++) await ok(c, 'sub', { ch: `s${i}` });
      assertErr(await c.request('sub', { ch: 's3' }), 'too_large', 6);
      await ok(c, 'ping');
    });
  });
});

describe('the limits table of docs/protocol.md', () => {
  test('field limits at their edges: nesting, key, channel name, method, epoch, in UTF-16 code units', async () => {
    await withServer({ rpc: { ['m'.repeat(100)]: () => 'long' } }, async (s) => {
      const c = await s.connect();
      const nested = (levels: number): unknown => {
        let value: unknown = 0;
        for (let i = 0; i < levels; i++) value = [value];
        return value;
      };
      // The request is level 1: data may nest 63 levels, not 64.
      await ok(c, 'pub', { ch: 'deep', data: nested(63) });
      const tooDeep = await errForRaw(c, JSON.stringify({ op: 'pub', id: 77, ch: 'deep', data: nested(64) }));
      assertErr(tooDeep, 'bad_request', undefined);
      assert.match(tooDeep.message!, /64 levels/);

      // 64 emoji are 128 UTF-16 code units: the longest key.
      await ok(c, 'pub', { ch: 'k', data: 1, key: '😀'.repeat(64) });
      assertErr(await c.request('pub', { ch: 'k', data: 1, key: `${'😀'.repeat(64)}x` }), 'bad_request', c.peekId() - 1);

      const longest = `${'a'.repeat(190)}_-:.@/=,09`;
      assert.equal(longest.length, 200);
      await ok(c, 'sub', { ch: longest });
      assertErr(await c.request('sub', { ch: `${longest}x` }), 'bad_request', c.peekId() - 1);

      assert.equal((await ok(c, 'rpc', { method: 'm'.repeat(100) })).result, 'long');
      const epoch = 'e'.repeat(64);
      assert.equal((await ok(c, 'sub', { ch: 'epochs', since: { epoch, offset: Number.MAX_SAFE_INTEGER } })).recovered, false);
    });
  });

  test(
    'with the default settings a client can subscribe to as many channels as maxSubscriptions allows, at once',
    async () => {
      await withServer({}, async (s) => {
        const c = await s.connect(undefined, { timeout: 30_000 });
        const all = Promise.all(Array.from({ length: 1000 }, (_, i) => c.request('sub', { ch: `many:${i}` })));
        all.catch(() => {});
        const closed = c.closed.then((info) => {
          const limited = c.log.filter((m) => m.code === 'rate_limited').length;
          throw new Error(`closed with ${info.code} after ${c.log.length} answers, ${limited} of them rate_limited`);
        });
        const answers = await Promise.race([all, closed]);
        assert.equal(answers.filter((a) => a.op === 'ok').length, 1000, 'every sub within maxSubscriptions succeeds');
      });
    },
  );
});

describe('limits of the connection', () => {
  test('a frame over maxPayload closes with 1009; others are not affected', async () => {
    await withServer({ maxPayload: 1024 }, async (s) => {
      const big = await s.connect();
      const other = await s.connect();
      await ok(big, 'pub', { ch: 'p', data: 'x'.repeat(900) });
      big.sendJson({ op: 'pub', id: 99, ch: 'p', data: 'x'.repeat(2_000) });
      const closed = await big.closed;
      assert.equal(closed.code, 1009);
      await ok(other, 'pub', { ch: 'p', data: 'still fine' });
    });
  });

  test('sustained abuse closes with 1008 while a well-behaved client keeps working', async () => {
    await withServer({ abuseLimit: 20, abuseWindow: 10_000 }, async (s) => {
      const abuser = await s.connect();
      const good = await s.connect();
      await ok(good, 'sub', { ch: 'calm' });
      let closedAt = -1;
      void abuser.closed.then(() => (closedAt = abuser.log.length));
      for (let i = 0; i < 19; i++) abuser.sendText(`garbage ${i}`);
      await abuser.until(() => abuser.log.length === 19, '19 errs');
      await ok(abuser, 'ping');
      assert.equal(abuser.ws.readyState, WebSocket.OPEN, '19 bad requests are tolerated');
      for (let i = 0; i < 30 && abuser.ws.readyState === WebSocket.OPEN; i++) {
        abuser.sendText('{');
        await ok(good, 'pub', { ch: 'calm', data: i });
      }
      const closed = await abuser.closed;
      assert.equal(closed.code, 1008);
      assert.ok(closedAt >= 20, `closed after ${closedAt} answers`);
      assert.equal(s.endpoint.hub.metrics.abuseCloses, 1);
      const last = await ok(good, 'pub', { ch: 'calm', data: 'after' });
      await good.until(() => good.messages('calm').length === last.offset, 'every message at the good client');
      assert.equal(good.ws.readyState, WebSocket.OPEN);
    });
  });
});

describe('scale', () => {
  test('1,000 channels x 10 subscribers: one publish per channel reaches exactly its 10', async () => {
    const CLIENTS = 100;
    const CHANNELS = 1_000;
    await withServer({ publishRate: fast, subscribeRate: fast, abuseLimit: 1_000_000 }, async (s) => {
      // Generous time-outs: this must pass on a loaded machine too.
      const clients = await Promise.all(Array.from({ length: CLIENTS }, () => s.connect(undefined, { timeout: 30_000 })));
      // Client i subscribes to the channels c with c % 10 === i % 10: 100 channels each, 10 clients per channel.
      const channelsOf = (i: number): number[] => Array.from({ length: CHANNELS / 10 }, (_, k) => k * 10 + (i % 10));
      await Promise.all(
        clients.map(async (client, i) => {
          const answers = await Promise.all(channelsOf(i).map((c) => client.request('sub', { ch: `scale:${c}` })));
          assert.ok(
            answers.every((a) => a.op === 'ok' && a.offset === 0),
            'every sub ok',
          );
        }),
      );
      assert.equal(s.endpoint.hub.metrics.subscriptions, CLIENTS * (CHANNELS / 10));
      for (let c = 0; c < CHANNELS; c += 97) assert.equal(s.endpoint.hub.localSubscribers(`scale:${c}`), 10);

      const publisher = await s.connect(undefined, { timeout: 30_000 });
      const answers = await Promise.all(
        Array.from({ length: CHANNELS }, (_, c) => publisher.request('pub', { ch: `scale:${c}`, data: { c } })),
      );
      assert.ok(
        answers.every((a) => a.op === 'ok' && a.offset === 1 && a.delivered === 10),
        'every publish reached 10',
      );
      await Promise.all(clients.map((client) => client.until(() => client.ofOp('msg').length >= 100, '100 messages', 30_000)));
      await ok(publisher, 'ping');
      for (let i = 0; i < CLIENTS; i++) {
        const got = clients[i]!.ofOp('msg');
        assert.equal(got.length, 100, `client ${i} got each of its channels once`);
        const expected = channelsOf(i).map((c) => ({ op: 'msg', ch: `scale:${c}`, offset: 1, data: { c } }));
        const byChannel = (a: WireMessage, b: WireMessage): number => a.ch!.localeCompare(b.ch!);
        assert.deepEqual([...got].sort(byChannel), [...expected].sort(byChannel));
      }
      assert.equal(publisher.ofOp('msg').length, 0);
    });
  });
});

/** A raw TCP client: handshake for hotline.v1, then it sends what it is told and never reads or answers. */
async function rawClient(port: number, path: string): Promise<Socket> {
  const { socket } = await upgradeSocket(port, path, ['Sec-WebSocket-Protocol: hotline.v1']);
  socket.pause();
  return socket;
}

function sendRaw(socket: Socket, value: unknown): void {
  for (const chunk of encodeTextFrame(Opcode.Text, JSON.stringify(value), { mask: true })) socket.write(chunk);
}

describe('presence after abrupt disconnects', () => {
  const heartbeatInterval = 200;

  test('a client whose socket is destroyed without a close frame leaves presence', async () => {
    await withServer({ heartbeatInterval, idleTimeout: 0, presenceGrace: 0 }, async (s) => {
      const ada = await s.connect('user=u1');
      const lin = await s.connect('user=u2');
      await ok(ada, 'sub', { ch: 'room' });
      await ok(lin, 'sub', { ch: 'room' });
      assert.equal((await ok(ada, 'presence', { ch: 'room' })).members!.length, 2);
      lin.terminate();
      // The server sees the TCP connection go at once: the leave comes from the close, not from a heartbeat.
      const leave = await ada.waitFor((m) => m.op === 'leave', 'the leave', 5_000);
      assert.deepEqual({ ...leave, member: withoutClient([leave.member!])[0] }, { op: 'leave', ch: 'room', member: { id: 'u2', name: 'Lin' } });
      assert.equal(s.endpoint.server.counters.heartbeatTimeouts, 0);
      assert.deepEqual(withoutClient((await ok(ada, 'presence', { ch: 'room' })).members), [{ id: 'u1', name: 'Ada' }]);
      assert.equal(s.endpoint.hub.localSubscribers('room'), 1);
    });
  });

  test('a client that stops answering pings leaves presence within the heartbeat timeout', async () => {
    await withServer({ heartbeatInterval, idleTimeout: 0, presenceGrace: 0 }, async (s) => {
      const ada = await s.connect('user=u1');
      await ok(ada, 'sub', { ch: 'room' });
      const ghost = await rawClient(s.server.port, '/ws?user=u3');
      ghost.on('error', () => {});
      try {
        sendRaw(ghost, { op: 'sub', id: 1, ch: 'room' });
        await ada.waitFor((m) => m.op === 'join', 'the ghost joining', 2_000, 0);
        let adaPings = 0;
        ada.ws.on('ping', () => adaPings++);
        assert.deepEqual(
          (await ok(ada, 'presence', { ch: 'room' })).members!.map((m) => m['id']).sort(),
          ['u1', 'u3'],
        );
        // From here the raw client neither reads nor sends: no pong ever comes.
        const leave = await ada.waitFor((m) => m.op === 'leave', 'the ghost leaving', 5_000);
        assert.deepEqual({ ...leave, member: withoutClient([leave.member!])[0] }, { op: 'leave', ch: 'room', member: { id: 'u3', name: 'Sam' } });
        // The heartbeat let it go (the idle timeout is off): one unanswered ping.
        assert.equal(s.endpoint.server.counters.heartbeatTimeouts, 1);
        assert.deepEqual(withoutClient((await ok(ada, 'presence', { ch: 'room' })).members), [{ id: 'u1', name: 'Ada' }]);
        // Ada answers pings (ws does by itself) and stays, three heartbeats more.
        const pingsThen = adaPings;
        await waitFor(() => adaPings >= pingsThen + 3, 'three more heartbeats to Ada');
        await ok(ada, 'ping');
        assert.equal(ada.ws.readyState, WebSocket.OPEN);
      } finally {
        ghost.destroy();
      }
    });
  });

  test('many abrupt disconnects at once: every one leaves, the survivors stay', async () => {
    await withServer({ heartbeatInterval, idleTimeout: 0, presenceGrace: 0 }, async (s) => {
      const watcher = await s.connect('user=watcher');
      await ok(watcher, 'sub', { ch: 'crowd' });
      const crowd = await Promise.all(Array.from({ length: 20 }, (_, i) => s.connect(`user=p${i}`)));
      for (const c of crowd) await ok(c, 'sub', { ch: 'crowd' });
      await watcher.until(() => watcher.ofOp('join').length === 20, '20 joins');
      crowd.slice(0, 15).forEach((c) => c.terminate());
      await watcher.until(() => watcher.ofOp('leave').length === 15, '15 leaves', 2_000);
      await waitFor(() => s.endpoint.hub.localSubscribers('crowd') === 6, 'the hub to drop them');
      const members = (await ok(watcher, 'presence', { ch: 'crowd' })).members!.map((m) => m['id']).sort();
      assert.deepEqual(members, ['p15', 'p16', 'p17', 'p18', 'p19', 'watcher']);
      assert.deepEqual(
        watcher
          .ofOp('leave')
          .map((m) => m.member!['id'])
          .sort(),
        Array.from({ length: 15 }, (_, i) => `p${i}`).sort(),
      );
    });
  });
});

test('the memory engine behind the endpoint can be configured (historySize)', async () => {
  await withServer({ engine: new MemoryEngine({ historySize: 5 }), publishRate: fast }, async (s) => {
    const c = await s.connect();
    for (let n = 1; n <= 8; n++) await ok(c, 'pub', { ch: 'small', data: n });
    const history = await ok(c, 'history', { ch: 'small', limit: 100 });
    assert.deepEqual(
      history.messages!.map((m) => m.offset),
      [4, 5, 6, 7, 8],
    );
  });
});
