// hotline.v1.msgpack over real sockets: `ws` peers speaking raw msgpack (and raw JSON beside
// them) to serve() with the channel endpoint. The subprotocol picks the encoding; bytes
// travel as msgpack bin to msgpack peers and as {"$bin": base64} to JSON peers; history and
// recovery replay in either encoding, on the memory engine and on Redis; malformed msgpack
// is answered as malformed JSON is.
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import { z } from 'zod';
import { MemoryEngine, type Broker } from '../src/channels/index.js';
import { RedisEngine } from '../src/redis/index.js';
import type { ChannelsClient} from './support/channels-client.js';
import { assertErr, MSGPACK_SUBPROTOCOL, ok, SUBPROTOCOL, type WireMessage } from './support/channels-client.js';
import { withChannels, type ChannelsServer } from './support/channels-server.js';
import { RedisServer, skipWithoutRedis } from './support/redis-server.js';

const MSGPACK = { protocols: [MSGPACK_SUBPROTOCOL] };
const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
/** What a `ws` peer decodes bin to: a Uint8Array (a Buffer, or a view of the frame); compared by content. */
const same = (actual: unknown, expected: Uint8Array): void => {
  assert.ok(actual instanceof Uint8Array, `bytes, not ${JSON.stringify(actual)}`);
  assert.deepEqual(Buffer.from(actual), Buffer.from(expected));
};
const fast = { perSecond: 1_000_000, burst: 1_000_000 };

describe('negotiation', () => {
  test('offering hotline.v1.msgpack selects it, also beside hotline.v1; JSON-only peers are served JSON', async () => {
    await withChannels({}, async (s) => {
      const only = await s.connect(undefined, MSGPACK);
      assert.equal(only.ws.protocol, MSGPACK_SUBPROTOCOL);
      const both = await s.connect(undefined, { protocols: [SUBPROTOCOL, MSGPACK_SUBPROTOCOL] });
      assert.equal(both.ws.protocol, MSGPACK_SUBPROTOCOL);
      const json = await s.connect();
      assert.equal(json.ws.protocol, SUBPROTOCOL);
      assert.deepEqual(await only.request('ping'), { op: 'pong', id: 1 });
      assert.equal(only.rawFrames.length, 1, 'the pong came as a msgpack binary frame');
      await ok(json, 'ping');
      assert.equal(json.binaryFrames, 0);
    });
  });

  test('every op answers in msgpack with the same fields as in JSON', async () => {
    await withChannels({ rpc: { add: ([a, b]: [number, number]) => a + b } as never }, async (s) => {
      const m = await s.connect(undefined, MSGPACK);
      const j = await s.connect();
      for (const client of [m, j]) {
        const sub = await ok(client, 'sub', { ch: `room:${client.msgpack ? 'm' : 'j'}` });
        assert.deepEqual(Object.keys(sub).sort(), ['client', 'epoch', 'id', 'offset', 'op', 'recovered']);
        assert.ok(typeof sub['client'] === 'string' && sub['client'] !== '', `a client id in ${JSON.stringify(sub)}`);
        const pub = await ok(client, 'pub', { ch: 'room:x', data: { text: 'hi' } });
        assert.equal(typeof pub.offset, 'number');
        assert.deepEqual((await ok(client, 'history', { ch: 'room:x', limit: 1 })).messages, [{ offset: pub.offset, data: { text: 'hi' } }]);
        assert.deepEqual((await ok(client, 'presence', { ch: 'room:x' })).members, []);
        assert.equal((await ok(client, 'rpc', { method: 'add', params: [2, 3] })).result, 5);
        assertErr(await client.request('rpc', { method: 'nope' }), 'not_found', client.peekId() - 1);
        await ok(client, 'unsub', { ch: 'room:x' });
      }
      assert.deepEqual(m.unparsed, []);
    });
  });
});

describe('bytes on a channel shared by msgpack and JSON subscribers', () => {
  test('a msgpack publish of bytes: bin to msgpack subscribers, {"$bin": base64} to JSON ones, offsets alike', async () => {
    await withChannels({ publishRate: fast }, async (s) => {
      const [pub, m1, m2] = await Promise.all([s.connect(undefined, MSGPACK), s.connect(undefined, MSGPACK), s.connect(undefined, MSGPACK)]);
      const j = await s.connect();
      for (const client of [m1, m2, j]) await ok(client, 'sub', { ch: 'doc:1' });
      const update = new Uint8Array(300).map((_, i) => (i * 31) & 255);
      const answer = await ok(pub, 'pub', { ch: 'doc:1', data: { update, seq: 1 } });
      assert.equal(answer.delivered, 3);
      await ok(pub, 'pub', { ch: 'doc:1', data: update });
      for (const client of [m1, m2, j]) await client.until(() => client.messages('doc:1').length === 2, 'two messages');
      for (const client of [m1, m2]) {
        const [first, second] = client.messages('doc:1');
        same((first!.data as { update: unknown }).update, update);
        assert.equal((first!.data as { seq: number }).seq, 1);
        same(second!.data, update);
      }
      const base64 = Buffer.from(update).toString('base64');
      assert.deepEqual(j.messages('doc:1').map((m) => m.data), [{ update: { $bin: base64 }, seq: 1 }, { $bin: base64 }]);
      // One frame for every msgpack subscriber: the same bytes on the wire.
      const frames = (client: ChannelsClient): Buffer[] => client.rawFrames.filter((f) => f.includes(Buffer.from('doc:1')) && f.includes(Buffer.from('msg')));
      assert.deepEqual(frames(m1).slice(-2), frames(m2).slice(-2));
    });
  });

  test('a JSON publish of {"$bin": base64} reaches msgpack subscribers as bytes; other objects stay objects', async () => {
    await withChannels({}, async (s) => {
      const j = await s.connect();
      const m = await s.connect(undefined, MSGPACK);
      await ok(m, 'sub', { ch: 'doc:2' });
      await ok(j, 'pub', { ch: 'doc:2', data: { $bin: 'AAEC' } });
      await ok(j, 'pub', { ch: 'doc:2', data: { $bin: 'not base64' } });
      await ok(j, 'pub', { ch: 'doc:2', data: { $bin: 'AAEC', more: 1 } });
      await m.until(() => m.messages('doc:2').length === 3, 'three messages');
      const [a, b, c] = m.messages('doc:2');
      same(a!.data, bytes(0, 1, 2));
      assert.deepEqual(b!.data, { $bin: 'not base64' });
      assert.deepEqual(c!.data, { $bin: 'AAEC', more: 1 });
    });
  });

  test('schemas and hooks see bytes as Uint8Array from either encoding; the server API publishes Buffers', async () => {
    const seen: unknown[] = [];
    await withChannels(
      {
        channels: { 'blob:*': { schema: z.instanceof(Uint8Array) } },
        canPublish: (_context, _channel, data) => (seen.push(data), true),
      },
      async (s) => {
        const m = await s.connect(undefined, MSGPACK);
        const j = await s.connect();
        await ok(m, 'sub', { ch: 'blob:1' });
        await ok(j, 'sub', { ch: 'blob:1' });
        await ok(m, 'pub', { ch: 'blob:1', data: bytes(1) });
        await ok(j, 'pub', { ch: 'blob:1', data: { $bin: 'Ag==' } });
        assertErr(await m.request('pub', { ch: 'blob:1', data: 'text' }), 'bad_request', m.peekId() - 1);
        const result = await s.endpoint.publish('blob:1', Buffer.from([3]));
        assert.equal(result.delivered, 2);
        assert.deepEqual(seen.map((d) => d instanceof Uint8Array && [...d]), [[1], [2]]);
        await m.until(() => m.messages('blob:1').length === 3, 'three messages');
        assert.deepEqual(m.messages('blob:1').map((msg) => [...(msg.data as Uint8Array)]), [[1], [2], [3]]);
        await j.until(() => j.messages('blob:1').length === 3, 'three messages');
        assert.deepEqual(j.messages('blob:1').map((msg) => msg.data), [{ $bin: 'AQ==' }, { $bin: 'Ag==' }, { $bin: 'Aw==' }]);
      },
    );
  });
});

describe('bytes through rpc', () => {
  test('params arrive at the handler as Uint8Array from either encoding; a result holding bytes goes back in the caller\'s encoding', async () => {
    const got: unknown[] = [];
    const rpc = {
      reverse: (params: unknown) => {
        got.push(params);
        return { reversed: Buffer.from(params as Uint8Array).reverse() };
      },
    };
    await withChannels({ rpc: rpc as never }, async (s) => {
      const m = await s.connect(undefined, MSGPACK);
      const j = await s.connect();
      const fromM = await ok(m, 'rpc', { method: 'reverse', params: bytes(1, 2, 3) });
      same((fromM.result as { reversed: unknown }).reversed, bytes(3, 2, 1));
      const fromJ = await ok(j, 'rpc', { method: 'reverse', params: { $bin: 'BAUG' } });
      assert.deepEqual(fromJ.result, { reversed: { $bin: 'BgUE' } });
      assert.deepEqual(got.map((p) => p instanceof Uint8Array && [...p]), [[1, 2, 3], [4, 5, 6]]);
    });
  });
});

let redis: RedisServer | null = null;
after(async () => {
  await redis?.close();
});

/** Each engine the recovery tests run on: a fresh one per test. */
const engines: Array<[string, (t: TestContext) => Promise<Broker | null>]> = [
  ['memory', async () => new MemoryEngine()],
  [
    'redis',
    async (t) => {
      if (skipWithoutRedis(t)) return null;
      redis ??= await RedisServer.start();
      return new RedisEngine(redis.url, { prefix: `msgpack${process.pid}x${Math.random().toString(36).slice(2)}:` });
    },
  ],
];

for (const [name, makeEngine] of engines) {
  describe(`history and recovery in both encodings (${name} engine)`, () => {
    test('bytes and JSON published in either encoding read back exactly from history, in either encoding', async (t) => {
      const engine = await makeEngine(t);
      if (engine === null) return;
      await withChannels({ engine, publishRate: fast }, async (s) => {
        const m = await s.connect(undefined, MSGPACK);
        const j = await s.connect();
        const odd = bytes(0, 0xff, 0xc1, 0x80, 0x0a, 0x0d, 0x22, 0x5c); // NUL, invalid UTF-8, newline, quote, backslash
        await ok(m, 'pub', { ch: 'doc:h', data: odd });
        await ok(j, 'pub', { ch: 'doc:h', data: { text: 'ü ✓', $bin: 1 } });
        await ok(m, 'pub', { ch: 'doc:h', data: { nested: [{ b: bytes() }] } });
        const fromM = (await ok(m, 'history', { ch: 'doc:h' })).messages!;
        same(fromM[0]!.data, odd);
        assert.deepEqual(fromM[1]!.data, { text: 'ü ✓', $bin: 1 });
        same((fromM[2]!.data as { nested: Array<{ b: unknown }> }).nested[0]!.b, bytes());
        const fromJ = (await ok(j, 'history', { ch: 'doc:h' })).messages!;
        assert.deepEqual(
          fromJ.map((e) => e.data),
          [{ $bin: Buffer.from(odd).toString('base64') }, { text: 'ü ✓', $bin: 1 }, { nested: [{ b: { $bin: '' } }] }],
        );
      });
    });

    test('a subscriber cut off recovers the bytes it missed with `since`, in msgpack and in JSON', async (t) => {
      const engine = await makeEngine(t);
      if (engine === null) return;
      await withChannels({ engine, publishRate: fast }, async (s: ChannelsServer<undefined>) => {
        const publisher = await s.connect(undefined, MSGPACK);
        // A channel with history: an empty one nobody holds has no epoch to continue.
        await ok(publisher, 'pub', { ch: 'doc:r', data: 'start' });
        const positions: Record<string, { epoch: string; offset: number }> = {};
        for (const options of [MSGPACK, {}]) {
          const before = await s.connect(undefined, options);
          const answer = await ok(before, 'sub', { ch: 'doc:r' });
          positions[before.msgpack ? 'm' : 'j'] = { epoch: answer.epoch!, offset: answer.offset! };
          before.terminate();
          await before.closed;
        }
        const missed = [bytes(1, 2, 3), bytes(), bytes(0xc1)];
        for (const data of missed) await ok(publisher, 'pub', { ch: 'doc:r', data: { part: data } });
        const m = await s.connect(undefined, MSGPACK);
        const j = await s.connect();
        const mAnswer = await ok(m, 'sub', { ch: 'doc:r', since: positions['m'] });
        const jAnswer = await ok(j, 'sub', { ch: 'doc:r', since: positions['j'] });
        assert.equal(mAnswer.recovered, true);
        assert.equal(jAnswer.recovered, true);
        await m.until(() => m.messages('doc:r').length === 3, 'the replay in msgpack');
        await j.until(() => j.messages('doc:r').length === 3, 'the replay in JSON');
        m.messages('doc:r').forEach((msg: WireMessage, i) => same((msg.data as { part: unknown }).part, missed[i]!));
        assert.deepEqual(
          j.messages('doc:r').map((msg) => msg.data),
          missed.map((part) => ({ part: { $bin: Buffer.from(part).toString('base64') } })),
        );
        assert.deepEqual(m.messages('doc:r').map((msg) => msg.offset), j.messages('doc:r').map((msg) => msg.offset));
      });
    });
  });
}

describe('malformed msgpack gets the err malformed JSON gets', () => {
  test('bad frames are answered bad_request without an id; the connection stays and answers the next request', async () => {
    await withChannels({}, async (s) => {
      const m = await s.connect(undefined, MSGPACK);
      const deep = new Uint8Array(100_000).fill(0x91);
      deep.set([0x82, 0xa2, 0x69, 0x64, 0x01, 0xa1, 0x64]);
      const frames: Array<[Uint8Array, RegExp]> = [
        [bytes(0xc1), /a request must be a msgpack map/],
        [bytes(0x81, 0xa2, 0x69), /ends inside a value/],
        [deep, /deeper than 64 levels/],
        [bytes(0x82, 0xa2, 0x69, 0x64, 0x01, 0xa1, 0x64, 0xd6, 0xff, 0, 0, 0, 0), /extension types/],
        [bytes(0x82, 0xa2, 0x69, 0x64, 0x01, 0x01, 0x01), /a map key must be a string/],
        [bytes(0x82, 0xa2, 0x69, 0x64, 0x01, 0xa1, 0x64, 0xdd, 0xff, 0xff, 0xff, 0xff), /a count is larger than the message/],
      ];
      for (const [frame, message] of frames) {
        const from = m.log.length;
        m.sendBinary(frame);
        const err = await m.waitFor((msg) => msg.op === 'err', 'an err', 2_000, from);
        assert.match(assertErr(err, 'bad_request', undefined), message);
      }
      // Errors found once the request was decoded carry its id, as field errors in JSON do.
      const repeated = m.answer(77);
      m.sendBinary(bytes(0x84, 0xa2, 0x69, 0x64, 0x4d, 0xa2, 0x6f, 0x70, 0xa3, 0x70, 0x75, 0x62, 0xa2, 0x63, 0x68, 0xa1, 0x61, 0xa4, 0x64, 0x61, 0x74, 0x61, 0x82, 0xa1, 0x78, 0x01, 0xa1, 0x78, 0x02));
      assert.match(assertErr(await repeated, 'bad_request', 77), /a map repeats a key/);
      assertErr(await m.request('pub', { ch: 'room 1', data: 1 }), 'bad_request', m.peekId() - 1);
      // A text frame on a msgpack connection is refused as a binary one is on a JSON connection.
      const from = m.log.length;
      m.sendText('{"op":"ping","id":99}');
      assert.match(assertErr(await m.waitFor((msg) => msg.op === 'err', 'an err', 2_000, from), 'bad_request', undefined), /msgpack binary frames/);
      assert.deepEqual(await m.request('ping'), { op: 'pong', id: m.peekId() - 1 });
      const j = await s.connect();
      const fromJ = j.log.length;
      j.sendBinary(encode({ op: 'ping', id: 1 }));
      assert.match(assertErr(await j.waitFor((msg) => msg.op === 'err', 'an err', 2_000, fromJ), 'bad_request', undefined), /JSON text frames/);
    });
  });
});
