// The additions for the server API: the server's `call` and `message`, and the client's
// `reply`, read and written as the protocol documents them.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCall, encodeDirectMessage } from './encode.js';
import { MAX_REPLY_CODE_LENGTH, MAX_REPLY_MESSAGE_LENGTH } from './limits.js';
import { parseRequest, type ParseRequestResult } from './parse-request.js';
import { parseServerMessage, replyFor } from './parse-server.js';
import type { Json } from './messages.js';

const json = (value: unknown): string => JSON.stringify(value);

function refused(text: string): Extract<ParseRequestResult, { ok: false }> {
  const result = parseRequest(text);
  assert.equal(result.ok, false, text);
  return result as Extract<ParseRequestResult, { ok: false }>;
}

describe('reply: the client answers a call', () => {
  test('with a result of any JSON, null included, or with an error', () => {
    for (const result of [null, 0, 'text', [1, { a: [] }], { nested: { deep: true } }] as Json[]) {
      assert.deepEqual(parseRequest(json({ op: 'reply', id: 4, call: 7, result })), { ok: true, request: { op: 'reply', id: 4, call: 7, result } });
    }
    assert.deepEqual(parseRequest('{"op":"reply","id":4,"call":0,"error":{"code":"not_found","message":"no handler for x"},"extra":1}'), {
      ok: true,
      request: { op: 'reply', id: 4, call: 0, error: { code: 'not_found', message: 'no handler for x' } },
    });
    // error: null is absent, as for every optional field; the result is then what counts.
    assert.deepEqual(parseRequest('{"op":"reply","id":1,"call":2,"result":5,"error":null}'), { ok: true, request: { op: 'reply', id: 1, call: 2, result: 5 } });
  });

  test('a bad call number, both or neither of result and error: bad_request with the id', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ op: 'reply', id: 3, result: 1 }, /"call" is required/],
      [{ op: 'reply', id: 3, call: -1, result: 1 }, /"call" must be a non-negative integer/],
      [{ op: 'reply', id: 3, call: 1.5, result: 1 }, /"call" must be a non-negative integer/],
      [{ op: 'reply', id: 3, call: '1', result: 1 }, /"call" must be a non-negative integer/],
      [{ op: 'reply', id: 3, call: 1 }, /exactly one of "result" and "error"/],
      [{ op: 'reply', id: 3, call: 1, result: 1, error: { code: 'x', message: '' } }, /exactly one of "result" and "error"/],
      [{ op: 'reply', id: 3, call: 1, error: 'nope' }, /"error" must be an object/],
      [{ op: 'reply', id: 3, call: 1, error: { message: 'm' } }, /"error.code"/],
      [{ op: 'reply', id: 3, call: 1, error: { code: '', message: 'm' } }, /"error.code"/],
      [{ op: 'reply', id: 3, call: 1, error: { code: 'c'.repeat(MAX_REPLY_CODE_LENGTH + 1), message: 'm' } }, /"error.code"/],
      [{ op: 'reply', id: 3, call: 1, error: { code: 'c', message: 'm'.repeat(MAX_REPLY_MESSAGE_LENGTH + 1) } }, /"error.message"/],
      [{ op: 'reply', id: 3, call: 1, error: { code: 'c' } }, /"error.message"/],
    ];
    for (const [value, message] of cases) {
      const error = refused(json(value));
      assert.equal(error.code, 'bad_request');
      assert.equal(error.id, 3, json(value));
      assert.match(error.message, message, json(value));
    }
  });

  test('a result JSON cannot write back (1e400) is refused, as publish data is', () => {
    assert.match(refused('{"op":"reply","id":1,"call":1,"result":[1e400]}').message, /"result" holds a number too large/);
  });

  test('its answer is an ok with no fields', () => {
    const ok = parseServerMessage('{"op":"ok","id":9}')!;
    assert.deepEqual(replyFor('reply', ok), { op: 'ok', id: 9 });
  });
});

describe('call and message: the server reaches one connection', () => {
  test('encodeCall is JSON.stringify of the call, params taken as serialized', () => {
    const params: Json[] = [null, 1, 'x"y', [1, { '😀': '\u0000' }]];
    for (const value of params) {
      const text = encodeCall(12, 'ask "me"', JSON.stringify(value), 5000);
      assert.equal(text, JSON.stringify({ op: 'call', call: 12, method: 'ask "me"', params: value, timeout: 5000 }));
      assert.deepEqual(parseServerMessage(text), { op: 'call', call: 12, method: 'ask "me"', params: value, timeout: 5000 });
    }
  });

  test('encodeDirectMessage is JSON.stringify of the message', () => {
    for (const data of [null, 0, 'text', { a: ['b'] }] as Json[]) {
      const text = encodeDirectMessage(JSON.stringify(data));
      assert.equal(text, JSON.stringify({ op: 'message', data }));
      assert.deepEqual(parseServerMessage(text), { op: 'message', data });
    }
  });

  test('a call without params reads as null; one without a number, method or timeout is ignored', () => {
    assert.deepEqual(parseServerMessage('{"op":"call","call":1,"method":"m","timeout":10}'), { op: 'call', call: 1, method: 'm', params: null, timeout: 10 });
    for (const bad of [
      { op: 'call', method: 'm', timeout: 1 },
      { op: 'call', call: -1, method: 'm', timeout: 1 },
      { op: 'call', call: 1, method: 2, timeout: 1 },
      { op: 'call', call: 1, method: 'm' },
      { op: 'call', call: 1, method: 'm', timeout: 1.5 },
      { op: 'message' },
    ]) {
      assert.equal(parseServerMessage(json(bad)), null, json(bad));
    }
  });
});
