import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeData,
  encodeErr,
  encodeHistoryOk,
  encodeJoin,
  utf8Length,
  encodeLeave,
  encodeMsg,
  encodeOk,
  encodePong,
} from './encode.js';
import type { Json } from './messages.js';

/** Strings that need every kind of escaping JSON has, and some that need none. */
const awkward = [
  'room:1',
  '',
  'say "hi"',
  'back\\slash',
  'line\nbreak\ttab\r',
  '\u0000\u0001\u001f\u007f',
  'ünïcödé ✓',
  '😀 emoji',
  '\u2028\u2029',
  'lone \ud800 high and \udfff low',
  '</script>',
];

const data: Json[] = [null, 0, -1, 1.5e300, true, 'text', ...awkward, [], {}, [1, ['two', { three: [null] }]], { 'k"ey': 'v\\al', '😀': ['\u0000'] }];

describe('encode', () => {
  test('encodeMsg is JSON.stringify of the msg object, for awkward channels and data', () => {
    for (const ch of awkward) {
      for (const value of data) {
        for (const offset of [0, 1, 43, Number.MAX_SAFE_INTEGER]) {
          const text = encodeMsg(ch, offset, encodeData(value));
          assert.equal(text, JSON.stringify({ op: 'msg', ch, offset, data: value }));
          assert.deepEqual(JSON.parse(text), { op: 'msg', ch, offset, data: value });
        }
      }
    }
  });

  test('encodeMsg takes the data as serialized, so one serialization serves every frame', () => {
    const dataJson = encodeData({ big: 'x'.repeat(1000) });
    assert.equal(encodeMsg('a', 1, dataJson), `{"op":"msg","ch":"a","offset":1,"data":${dataJson}}`);
  });

  test('encodeHistoryOk is JSON.stringify of the reply, oldest first, empty included', () => {
    for (const epoch of awkward) {
      const entries = data.map((value, i) => ({ offset: i + 10, value }));
      const text = encodeHistoryOk(5, epoch, entries.map(({ offset, value }) => ({ offset, dataJson: encodeData(value) })));
      const expected = { op: 'ok', id: 5, epoch, messages: entries.map(({ offset, value }) => ({ offset, data: value })) };
      assert.equal(text, JSON.stringify(expected));
      assert.deepEqual(JSON.parse(text), expected);
    }
    assert.equal(encodeHistoryOk(0, 'e', []), '{"op":"ok","id":0,"epoch":"e","messages":[]}');
    assert.equal(
      encodeHistoryOk(1, 'e', [{ offset: 1, dataJson: 'null' }]),
      '{"op":"ok","id":1,"epoch":"e","messages":[{"offset":1,"data":null}]}',
    );
  });

  test('encodeHistoryOk says more only when there is more', () => {
    assert.equal(encodeHistoryOk(2, 'e', [{ offset: 3, dataJson: '1' }], true), '{"op":"ok","id":2,"epoch":"e","messages":[{"offset":3,"data":1}],"more":true}');
    assert.equal(encodeHistoryOk(2, 'e', [], false), '{"op":"ok","id":2,"epoch":"e","messages":[]}');
  });

  test('utf8Length counts the bytes UTF-8 takes, as Buffer.byteLength does', () => {
    for (const text of [...awkward, 'é', '€', '👋', 'a\u0000b', '\ud800 lone', 'x\udc00', 'ß'.repeat(100)]) {
      assert.equal(utf8Length(text), Buffer.byteLength(text), JSON.stringify(text));
    }
  });

  test('encodeOk for the reply of every op', () => {
    assert.equal(encodeOk(2), '{"op":"ok","id":2}');
    assert.equal(encodeOk(2, {}), '{"op":"ok","id":2}');
    assert.equal(
      encodeOk(1, { epoch: 'e"1', offset: 42, recovered: true }),
      '{"op":"ok","id":1,"epoch":"e\\"1","offset":42,"recovered":true}',
    );
    assert.equal(encodeOk(3, { offset: 43, delivered: 0 }), '{"op":"ok","id":3,"offset":43,"delivered":0}');
    assert.equal(encodeOk(4, { members: [{ id: 'u1', name: 'Ada ✓' }], count: 1 }), '{"op":"ok","id":4,"members":[{"id":"u1","name":"Ada ✓"}],"count":1}');
    assert.equal(encodeOk(5, { epoch: 'e', messages: [{ offset: 1, data: 'x' }] }), '{"op":"ok","id":5,"epoch":"e","messages":[{"offset":1,"data":"x"}]}');
    for (const result of data) {
      assert.deepEqual(JSON.parse(encodeOk(6, { result })), { op: 'ok', id: 6, result });
    }
  });

  test('encodeErr with and without an id', () => {
    assert.equal(encodeErr(7, 'not_found', 'no method "x"'), '{"op":"err","id":7,"code":"not_found","message":"no method \\"x\\""}');
    assert.equal(encodeErr(undefined, 'bad_request', 'bad'), '{"op":"err","code":"bad_request","message":"bad"}');
    assert.equal(encodeErr(0, 'internal', ''), '{"op":"err","id":0,"code":"internal","message":""}');
    for (const message of awkward) {
      assert.deepEqual(JSON.parse(encodeErr(1, 'forbidden', message)), { op: 'err', id: 1, code: 'forbidden', message });
    }
  });

  test('encodePong', () => {
    assert.equal(encodePong(7), '{"op":"pong","id":7}');
    assert.equal(encodePong(0), '{"op":"pong","id":0}');
    assert.equal(encodePong(Number.MAX_SAFE_INTEGER), `{"op":"pong","id":${Number.MAX_SAFE_INTEGER}}`);
  });

  test('encodeJoin and encodeLeave', () => {
    for (const ch of awkward) {
      const member = { id: ch, meta: { tags: ['a', ch] } };
      assert.equal(encodeJoin(ch, member), JSON.stringify({ op: 'join', ch, member }));
      assert.equal(encodeLeave(ch, member), JSON.stringify({ op: 'leave', ch, member }));
      assert.deepEqual(JSON.parse(encodeLeave(ch, member)), { op: 'leave', ch, member });
    }
  });

  test('numbers are written as JSON writes them', () => {
    assert.equal(encodeMsg('a', -0, '1'), '{"op":"msg","ch":"a","offset":0,"data":1}');
    assert.equal(encodeHistoryOk(-0, 'e', [{ offset: -0, dataJson: '1' }]), '{"op":"ok","id":0,"epoch":"e","messages":[{"offset":0,"data":1}]}');
  });
});
