import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeMsg, msgpackOfJson, parseServerMsgpack, type WireEncoding } from '../wire/index.js';
import { broadcastEncoded, type BroadcastRoute } from './encoded-broadcast.js';

interface Sub {
  encoding: WireEncoding | null;
  got: Array<string | Uint8Array>;
  open: boolean;
}

/** A route that counts the frames it makes, by encoding, and records what each subscriber got. */
function countingRoute(): { route: BroadcastRoute<Sub, string | Uint8Array>; made: Record<WireEncoding, number> } {
  const made: Record<WireEncoding, number> = { json: 0, msgpack: 0 };
  return {
    made,
    route: {
      encodingOf: (sub) => sub.encoding,
      frame(encoding, text) {
        made[encoding]++;
        return encoding === 'msgpack' ? msgpackOfJson(text) : text;
      },
      sendFrame(frame, sub) {
        if (!sub.open) return false;
        sub.got.push(frame);
        return true;
      },
      deliver(sub, text) {
        sub.got.push(text);
        return sub.open;
      },
    },
  };
}

const subs = (encoding: WireEncoding | null, n: number): Sub[] => Array.from({ length: n }, () => ({ encoding, got: [], open: true }));

describe('a publish is encoded once per encoding', () => {
  const text = encodeMsg('doc', 5, '{"u":{"$bin":"AAEC"}}');

  test('JSON and msgpack subscribers mixed: one frame of each, the same object written to all of its encoding', () => {
    const { route, made } = countingRoute();
    const json = subs('json', 50);
    const msgpack = subs('msgpack', 50);
    const sse = subs(null, 3);
    const all = [...json, ...msgpack, ...sse].sort(() => 0.5 - Math.random());
    assert.equal(broadcastEncoded(text, all, route), 103);
    assert.deepEqual(made, { json: 1, msgpack: 1 });
    for (const sub of json) assert.equal(sub.got[0], text);
    const shared = msgpack[0]!.got[0];
    for (const sub of msgpack) assert.equal(sub.got[0], shared, 'the same frame, not an equal copy');
    assert.deepEqual(parseServerMsgpack(shared as Uint8Array), { op: 'msg', ch: 'doc', offset: 5, data: { u: new Uint8Array([0, 1, 2]) } });
    for (const sub of sse) assert.equal(sub.got[0], text);
  });

  test('lazily: no msgpack frame without a msgpack subscriber, no JSON frame without a JSON one', () => {
    const onlyJson = countingRoute();
    broadcastEncoded(text, subs('json', 10), onlyJson.route);
    assert.deepEqual(onlyJson.made, { json: 1, msgpack: 0 });
    const onlyMsgpack = countingRoute();
    broadcastEncoded(text, subs('msgpack', 10), onlyMsgpack.route);
    assert.deepEqual(onlyMsgpack.made, { json: 0, msgpack: 1 });
    const onlySse = countingRoute();
    assert.equal(broadcastEncoded(text, subs(null, 2), onlySse.route), 2);
    assert.deepEqual(onlySse.made, { json: 0, msgpack: 0 });
    const none = countingRoute();
    assert.equal(broadcastEncoded(text, [], none.route), 0);
    assert.deepEqual(none.made, { json: 0, msgpack: 0 });
  });

  test('subscribers that did not take it are not counted as reached', () => {
    const { route } = countingRoute();
    const all = [...subs('json', 2), ...subs('msgpack', 2), ...subs(null, 1)];
    all[0]!.open = false;
    all[3]!.open = false;
    all[4]!.open = false;
    assert.equal(broadcastEncoded(text, all, route), 2);
  });
});
