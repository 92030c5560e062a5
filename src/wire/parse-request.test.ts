import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequest, type ParseRequestResult } from './parse-request.js';
import { DEFAULT_WIRE_LIMITS, resolveWireLimits } from './limits.js';
import type { ClientRequest, Json } from './messages.js';

function accepts(text: string, expected: ClientRequest, limits = DEFAULT_WIRE_LIMITS): void {
  assert.deepEqual(parseRequest(text, limits), { ok: true, request: expected }, text);
}

/** The error a request gets; `id` undefined means the error must carry none. */
function refuses(text: string, id: number | undefined, message: string | RegExp, limits = DEFAULT_WIRE_LIMITS): void {
  const result = parseRequest(text, limits);
  assert.equal(result.ok, false, text);
  const error = result as Extract<ParseRequestResult, { ok: false }>;
  assert.equal(error.code, 'bad_request', text);
  if (id === undefined) assert.equal(Object.hasOwn(error, 'id'), false, `${text}: no id expected`);
  else assert.equal(error.id, id, text);
  if (typeof message === 'string') assert.equal(error.message, message, text);
  else assert.match(error.message, message, text);
}

const json = (value: unknown): string => JSON.stringify(value);

describe('parseRequest: every op', () => {
  test('sub, with and without since', () => {
    accepts('{"op":"sub","id":1,"ch":"room:1"}', { op: 'sub', id: 1, ch: 'room:1' });
    accepts('{"op":"sub","id":1,"ch":"room:1","since":{"epoch":"e1","offset":41}}', {
      op: 'sub',
      id: 1,
      ch: 'room:1',
      since: { epoch: 'e1', offset: 41 },
    });
    accepts('{"op":"sub","id":1,"ch":"a","since":{"epoch":"e","offset":0}}', {
      op: 'sub',
      id: 1,
      ch: 'a',
      since: { epoch: 'e', offset: 0 },
    });
  });

  test('sub with a subscription token: kept as sent; empty, non-string or past maxTokenLength is bad_request', () => {
    accepts('{"op":"sub","id":1,"ch":"private:1","token":"a.b.c"}', { op: 'sub', id: 1, ch: 'private:1', token: 'a.b.c' });
    accepts(json({ op: 'sub', id: 1, ch: 'p', token: 't'.repeat(8192) }), { op: 'sub', id: 1, ch: 'p', token: 't'.repeat(8192) });
    for (const token of ['', 42, 't'.repeat(8193)]) {
      const result = parseRequest(json({ op: 'sub', id: 5, ch: 'p', token }));
      assert.equal(result.ok, false, String(token).slice(0, 20));
      if (!result.ok) {
        assert.equal(result.id, 5);
        assert.equal(result.message, '"token" must be a non-empty string of at most 8192 characters');
      }
    }
  });

  test('unsub, presence, ping', () => {
    accepts('{"op":"unsub","id":2,"ch":"room:1"}', { op: 'unsub', id: 2, ch: 'room:1' });
    accepts('{"op":"presence","id":4,"ch":"room:1"}', { op: 'presence', id: 4, ch: 'room:1' });
    accepts('{"op":"ping","id":7}', { op: 'ping', id: 7 });
  });

  test('pub with any JSON data, null included, and an optional key', () => {
    const values: Json[] = [null, 0, -1.5, 'text', true, false, [], {}, [1, 'two', null], { nested: { deep: [1, { x: 'y' }] } }];
    for (const data of values) {
      accepts(json({ op: 'pub', id: 3, ch: 'room:1', data }), { op: 'pub', id: 3, ch: 'room:1', data });
    }
    accepts('{"op":"pub","id":3,"ch":"c","data":1,"key":"k-1"}', { op: 'pub', id: 3, ch: 'c', data: 1, key: 'k-1' });
  });

  test('history with and without a limit', () => {
    accepts('{"op":"history","id":5,"ch":"room:1","limit":50}', { op: 'history', id: 5, ch: 'room:1', limit: 50 });
    accepts('{"op":"history","id":5,"ch":"room:1"}', { op: 'history', id: 5, ch: 'room:1' });
    accepts('{"op":"history","id":5,"ch":"c","limit":1}', { op: 'history', id: 5, ch: 'c', limit: 1 });
    accepts('{"op":"history","id":5,"ch":"c","limit":1000}', { op: 'history', id: 5, ch: 'c', limit: 1000 });
  });

  test('rpc with params of any JSON, null kept, absent left out', () => {
    accepts('{"op":"rpc","id":6,"method":"name","params":{"a":[1]}}', { op: 'rpc', id: 6, method: 'name', params: { a: [1] } });
    accepts('{"op":"rpc","id":6,"method":"name","params":null}', { op: 'rpc', id: 6, method: 'name', params: null });
    accepts('{"op":"rpc","id":6,"method":"name"}', { op: 'rpc', id: 6, method: 'name' });
    accepts('{"op":"rpc","id":6,"method":"any thing: ünïcode ✓"}', { op: 'rpc', id: 6, method: 'any thing: ünïcode ✓' });
  });

  test('unknown fields are ignored and left out of the request', () => {
    accepts('{"op":"ping","id":7,"extra":[1,2],"op2":"x","v":2}', { op: 'ping', id: 7 });
    accepts('{"op":"sub","id":1,"ch":"a","since":{"epoch":"e","offset":1,"more":true},"other":1}', {
      op: 'sub',
      id: 1,
      ch: 'a',
      since: { epoch: 'e', offset: 1 },
    });
    // Fields of other ops are unknown fields too.
    accepts('{"op":"unsub","id":2,"ch":"a","data":1,"limit":"x","key":5}', { op: 'unsub', id: 2, ch: 'a' });
  });

  test('whitespace between tokens and any key order are fine', () => {
    accepts(' \n{ "ch" : "a" ,\t"id":\r\n9, "op":"unsub" }\n', { op: 'unsub', id: 9, ch: 'a' });
  });

  test('null for an optional field means absent', () => {
    accepts('{"op":"sub","id":1,"ch":"a","since":null}', { op: 'sub', id: 1, ch: 'a' });
    accepts('{"op":"pub","id":1,"ch":"a","data":2,"key":null}', { op: 'pub', id: 1, ch: 'a', data: 2 });
    accepts('{"op":"history","id":1,"ch":"a","limit":null}', { op: 'history', id: 1, ch: 'a' });
  });
});

describe('parseRequest: the id', () => {
  test('any non-negative safe integer, however written', () => {
    accepts('{"op":"ping","id":0}', { op: 'ping', id: 0 });
    accepts('{"op":"ping","id":-0}', { op: 'ping', id: 0 });
    accepts('{"op":"ping","id":9007199254740991}', { op: 'ping', id: Number.MAX_SAFE_INTEGER });
    accepts('{"op":"ping","id":1e3}', { op: 'ping', id: 1000 });
    accepts('{"op":"ping","id":5.0}', { op: 'ping', id: 5 });
    assert.ok(Object.is((parseRequest('{"op":"ping","id":-0}') as { request: ClientRequest }).request.id, 0));
  });

  test('missing or invalid: an error without an id', () => {
    refuses('{"op":"ping"}', undefined, '"id" is required');
    refuses('{"op":"ping","id":null}', undefined, '"id" is required');
    for (const id of ['-1', '1.5', '"1"', 'true', '[1]', '{}', '9007199254740992', '1e300']) {
      refuses(`{"op":"ping","id":${id}}`, undefined, '"id" must be a non-negative integer');
    }
  });

  test('the id is checked before the op, so a bad id wins over a bad op', () => {
    refuses('{"op":"nope","id":-1}', undefined, '"id" must be a non-negative integer');
  });

  test('a valid id is echoed whatever else is wrong', () => {
    refuses('{"id":12}', 12, '"op" is required');
    refuses('{"id":12,"op":null}', 12, '"op" is required');
    refuses('{"id":12,"op":5}', 12, '"op" must be a string');
    refuses('{"id":12,"op":"nope"}', 12, /^unknown op "nope"/);
    refuses('{"id":12,"op":"sub"}', 12, '"ch" is required');
    refuses('{"id":12,"op":"pub","ch":"a"}', 12, '"data" is required (null is allowed)');
    refuses('{"id":12,"op":"rpc"}', 12, '"method" is required');
    refuses('{"id":0,"op":"history","ch":"a","limit":0}', 0, '"limit" must be an integer from 1 to 1000');
  });
});

describe('parseRequest: the op', () => {
  test('an unknown op is named, with the list of ops', () => {
    refuses('{"op":"subscribe","id":3}', 3, 'unknown op "subscribe"; the ops are sub, unsub, pub, state, presence, history, rpc, ping, auth, reply');
    refuses('{"op":"SUB","id":3}', 3, /^unknown op "SUB";/);
    refuses('{"op":"","id":3}', 3, /^unknown op "";/);
    refuses('{"op":"ok","id":3}', 3, /^unknown op "ok";/);
    refuses('{"op":"pong","id":3}', 3, /^unknown op "pong";/);
  });

  test('names that exist on Object.prototype are unknown ops', () => {
    for (const op of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) refuses(json({ op, id: 1 }), 1, /^unknown op/);
  });

  test('a long or strange op is quoted and cut short in the message', () => {
    refuses(json({ op: 'x'.repeat(10_000), id: 1 }), 1, `unknown op "${'x'.repeat(40)}…"; the ops are sub, unsub, pub, state, presence, history, rpc, ping, auth, reply`);
    refuses(json({ op: 'a"b\n\u0000😀', id: 1 }), 1, /^unknown op "a\\"b\\n\\u0000😀";/);
  });

  test('an op that is not a string', () => {
    for (const op of ['1', 'true', '[]', '{}', '["sub"]']) refuses(`{"op":${op},"id":1}`, 1, '"op" must be a string');
  });
});

describe('parseRequest: the message as a whole', () => {
  test('malformed JSON: an error without an id', () => {
    for (const text of ['', ' ', '{', '{"op":"ping","id":1', "{'op':'ping'}", '{"op":"ping","id":1,}', 'ping', '{"op":"ping","id":1}x', '\u0000', '{"a":1}{"b":2}']) {
      refuses(text, undefined, 'the message is not valid JSON');
    }
  });

  test('JSON that is not an object: an error without an id', () => {
    for (const text of ['null', '1', '"x"', 'true', '[]', '[{"op":"ping","id":1}]']) {
      refuses(text, undefined, 'a request must be a JSON object');
    }
  });

  test('nesting up to the limit passes; one level more is refused before parsing, without an id', () => {
    // The request object is level 1, so data may add 63 levels.
    const data = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);
    const pub = (levels: number): string => `{"op":"pub","id":1,"ch":"a","data":${data(levels)}}`;
    assert.equal(parseRequest(pub(63)).ok, true);
    refuses(pub(64), undefined, 'the message nests objects and arrays deeper than 64 levels');
    const limits = resolveWireLimits({ maxJsonDepth: 3 });
    assert.equal(parseRequest(pub(2), limits).ok, true);
    refuses(pub(3), undefined, 'the message nests objects and arrays deeper than 3 levels', limits);
  });

  test('brackets inside strings do not count toward the depth', () => {
    const text = json({ op: 'pub', id: 1, ch: 'a', data: '['.repeat(1000) + '{'.repeat(1000) });
    assert.equal(parseRequest(text).ok, true);
  });

  test('100,000 levels are refused quickly and without throwing', () => {
    const cases = [
      '['.repeat(100_000),
      '['.repeat(100_000) + ']'.repeat(100_000),
      `{"op":"pub","id":1,"ch":"a","data":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000),
    ];
    const started = performance.now();
    for (const text of cases) refuses(text, undefined, 'the message nests objects and arrays deeper than 64 levels');
    assert.ok(performance.now() - started < 500, 'took too long');
  });

  test('__proto__ in data stays plain data and pollutes nothing', () => {
    const result = parseRequest('{"op":"pub","id":1,"ch":"a","data":{"__proto__":{"polluted":true}},"__proto__":{"op":"x"}}');
    assert.equal(result.ok, true);
    const request = (result as { request: ClientRequest }).request;
    assert.equal(request.op, 'pub');
    const data = (request as { data: Record<string, unknown> }).data;
    assert.equal(Object.hasOwn(data, '__proto__'), true);
    assert.equal(Object.getPrototypeOf(data), Object.prototype);
    assert.equal((({}) as Record<string, unknown>)['polluted'], undefined);
  });

  test('fields are read as own properties only, even with Object.prototype polluted', () => {
    const prototype = Object.prototype as Record<string, unknown>;
    try {
      Object.assign(prototype, { data: 1, id: 2, op: 'ping', ch: 'a', method: 'm' });
      refuses('{"op":"pub","id":1,"ch":"a"}', 1, '"data" is required (null is allowed)');
      refuses('{"op":"rpc","id":1}', 1, '"method" is required');
      refuses('{"op":"sub","id":1}', 1, '"ch" is required');
      refuses('{}', undefined, '"id" is required');
    } finally {
      for (const name of ['data', 'id', 'op', 'ch', 'method']) delete prototype[name];
    }
  });
});

describe('parseRequest: the channel', () => {
  const ops = ['sub', 'unsub', 'pub', 'presence', 'history'] as const;

  test('required and a string, for every op that has one', () => {
    for (const op of ops) {
      refuses(json({ op, id: 1, data: 1 }), 1, '"ch" is required');
      refuses(json({ op, id: 1, ch: null, data: 1 }), 1, '"ch" is required');
      for (const ch of [1, true, ['a'], { a: 1 }]) refuses(json({ op, id: 1, ch, data: 1 }), 1, '"ch" must be a string');
    }
  });

  test('the channel-name rules, for every op that has one', () => {
    for (const op of ops) {
      refuses(json({ op, id: 1, ch: '', data: 1 }), 1, '"ch" must be a channel name: it is empty');
      refuses(json({ op, id: 1, ch: ' a', data: 1 }), 1, /^"ch" must be a channel name: character U\+0020 at index 0 is not allowed/);
      refuses(json({ op, id: 1, ch: 'a ', data: 1 }), 1, /^"ch" must be a channel name: character U\+0020 at index 1/);
      refuses(json({ op, id: 1, ch: 'cafés', data: 1 }), 1, /^"ch" must be a channel name: character U\+00E9 at index 3/);
      refuses(json({ op, id: 1, ch: 'a'.repeat(201), data: 1 }), 1, '"ch" must be a channel name: it is 201 characters long; the limit is 200');
      accepts(json({ op, id: 1, ch: 'a'.repeat(200), data: 1 }), {
        ...(op === 'pub' ? { data: 1 } : {}),
        op,
        id: 1,
        ch: 'a'.repeat(200),
      } as ClientRequest);
    }
  });

  test('escaped characters are checked after decoding', () => {
    refuses('{"op":"sub","id":1,"ch":"a\\u0020b"}', 1, /character U\+0020 at index 1/);
    accepts('{"op":"sub","id":1,"ch":"a\\u003ab"}', { op: 'sub', id: 1, ch: 'a:b' });
    refuses('{"op":"sub","id":1,"ch":"\\ud83d\\ude00"}', 1, /character U\+1F600 at index 0/);
  });

  test('the length limit is configurable', () => {
    const limits = resolveWireLimits({ maxChannelNameLength: 5 });
    accepts('{"op":"sub","id":1,"ch":"abcde"}', { op: 'sub', id: 1, ch: 'abcde' }, limits);
    refuses('{"op":"sub","id":1,"ch":"abcdef"}', 1, /it is 6 characters long; the limit is 5$/, limits);
  });
});

describe('parseRequest: sub since', () => {
  test('must be an object', () => {
    for (const since of [1, 'e:1', true, [], ['e', 1]]) {
      refuses(json({ op: 'sub', id: 1, ch: 'a', since }), 1, '"since" must be an object with "epoch" and "offset"');
    }
  });

  test('epoch: required, a non-empty string of at most 64 characters', () => {
    refuses('{"op":"sub","id":1,"ch":"a","since":{"offset":1}}', 1, '"since.epoch" is required');
    refuses('{"op":"sub","id":1,"ch":"a","since":{"epoch":null,"offset":1}}', 1, '"since.epoch" is required');
    for (const epoch of ['', 'e'.repeat(65), 1, true, {}, []]) {
      refuses(json({ op: 'sub', id: 1, ch: 'a', since: { epoch, offset: 1 } }), 1, '"since.epoch" must be a non-empty string of at most 64 characters');
    }
    accepts(json({ op: 'sub', id: 1, ch: 'a', since: { epoch: 'é'.repeat(64), offset: 1 } }), {
      op: 'sub',
      id: 1,
      ch: 'a',
      since: { epoch: 'é'.repeat(64), offset: 1 },
    });
  });

  test('offset: required, a non-negative safe integer', () => {
    refuses('{"op":"sub","id":1,"ch":"a","since":{"epoch":"e"}}', 1, '"since.offset" is required');
    for (const offset of [-1, 0.5, '1', null, 2 ** 53, [1]]) {
      const expected = offset === null ? '"since.offset" is required' : '"since.offset" must be a non-negative integer';
      refuses(json({ op: 'sub', id: 1, ch: 'a', since: { epoch: 'e', offset } }), 1, expected);
    }
    accepts(json({ op: 'sub', id: 1, ch: 'a', since: { epoch: 'e', offset: 2 ** 53 - 1 } }), {
      op: 'sub',
      id: 1,
      ch: 'a',
      since: { epoch: 'e', offset: 2 ** 53 - 1 },
    });
  });
});

describe('parseRequest: pub data and key', () => {
  test('data must be present; null is a value', () => {
    refuses('{"op":"pub","id":3,"ch":"a"}', 3, '"data" is required (null is allowed)');
    accepts('{"op":"pub","id":3,"ch":"a","data":null}', { op: 'pub', id: 3, ch: 'a', data: null });
  });

  test('key: a non-empty string of at most 128 characters', () => {
    for (const key of ['', 'k'.repeat(129), 1, true, [], {}]) {
      refuses(json({ op: 'pub', id: 3, ch: 'a', data: 1, key }), 3, '"key" must be a non-empty string of at most 128 characters');
    }
    for (const key of ['k', 'k'.repeat(128), 'ünï cödé 😀', ' spaces are fine ']) {
      accepts(json({ op: 'pub', id: 3, ch: 'a', data: 1, key }), { op: 'pub', id: 3, ch: 'a', data: 1, key });
    }
    const limits = resolveWireLimits({ maxKeyLength: 4 });
    refuses(json({ op: 'pub', id: 3, ch: 'a', data: 1, key: 'abcde' }), 3, '"key" must be a non-empty string of at most 4 characters', limits);
  });

  test('the channel is checked before the data', () => {
    refuses('{"op":"pub","id":3}', 3, '"ch" is required');
  });
});

describe('parseRequest: history limit', () => {
  test('an integer from 1 to maxHistoryLimit', () => {
    for (const limit of [0, -1, 1001, 1.5, '10', true, [], {}]) {
      refuses(json({ op: 'history', id: 5, ch: 'a', limit }), 5, '"limit" must be an integer from 1 to 1000');
    }
    const limits = resolveWireLimits({ maxHistoryLimit: 20 });
    accepts(json({ op: 'history', id: 5, ch: 'a', limit: 20 }), { op: 'history', id: 5, ch: 'a', limit: 20 }, limits);
    refuses(json({ op: 'history', id: 5, ch: 'a', limit: 21 }), 5, '"limit" must be an integer from 1 to 20', limits);
  });
});

describe('parseRequest: history before', () => {
  test('a non-negative integer offset, with or without limit; null is leaving it out', () => {
    accepts(json({ op: 'history', id: 5, ch: 'a', before: 17 }), { op: 'history', id: 5, ch: 'a', before: 17 });
    accepts(json({ op: 'history', id: 5, ch: 'a', limit: 3, before: 0 }), { op: 'history', id: 5, ch: 'a', limit: 3, before: 0 });
    accepts(json({ op: 'history', id: 5, ch: 'a', before: null }), { op: 'history', id: 5, ch: 'a' });
    for (const before of [-1, 1.5, '10', true, [], {}, 2 ** 53]) {
      refuses(json({ op: 'history', id: 5, ch: 'a', before }), 5, '"before" must be a non-negative integer (an offset)');
    }
  });
});

describe('parseRequest: rpc method', () => {
  test('a non-empty string of at most 100 characters', () => {
    for (const method of ['', 'm'.repeat(101), 1, null, [], {}]) {
      const expected = method === null ? '"method" is required' : '"method" must be a non-empty string of at most 100 characters';
      refuses(json({ op: 'rpc', id: 6, method }), 6, expected);
    }
    accepts(json({ op: 'rpc', id: 6, method: 'm'.repeat(100) }), { op: 'rpc', id: 6, method: 'm'.repeat(100) });
    const limits = resolveWireLimits({ maxMethodLength: 3 });
    refuses(json({ op: 'rpc', id: 6, method: 'abcd' }), 6, '"method" must be a non-empty string of at most 3 characters', limits);
  });

  test('rpc needs no channel', () => {
    accepts('{"op":"rpc","id":6,"method":"m","ch":"not a channel!"}', { op: 'rpc', id: 6, method: 'm' });
  });
});

describe('parseRequest: unicode', () => {
  test('data, keys and methods carry any Unicode, escaped or not', () => {
    const data = { text: 'héllo wörld ✓ 😀 \u0000\u001f \u2028\u2029 "quoted" \\ /', lone: '\ud800' };
    accepts(json({ op: 'pub', id: 1, ch: 'a', data, key: '鍵' }), { op: 'pub', id: 1, ch: 'a', data, key: '鍵' });
    accepts('{"op":"pub","id":1,"ch":"a","data":"\\u00e9\\ud83d\\ude00"}', { op: 'pub', id: 1, ch: 'a', data: 'é😀' });
  });

  test('lengths count UTF-16 code units', () => {
    accepts(json({ op: 'pub', id: 1, ch: 'a', data: 1, key: '😀'.repeat(64) }), { op: 'pub', id: 1, ch: 'a', data: 1, key: '😀'.repeat(64) });
    refuses(json({ op: 'pub', id: 1, ch: 'a', data: 1, key: '😀'.repeat(64) + 'x' }), 1, /^"key" must be/);
  });
});

describe('parseRequest: auth', () => {
  test('a token is taken as it is', () => {
    assert.deepEqual(parseRequest('{"op":"auth","id":3,"token":"abc.def"}'), {
      ok: true,
      request: { op: 'auth', id: 3, token: 'abc.def' },
    });
  });

  test('a missing, empty, non-string or too long token is bad_request naming the field', () => {
    for (const token of [undefined, '', 42, 'x'.repeat(8193)]) {
      const result = parseRequest(JSON.stringify({ op: 'auth', id: 4, token }));
      assert.equal(result.ok, false);
      if (!result.ok) {
        assert.equal(result.id, 4);
        assert.equal(result.code, 'bad_request');
        assert.match(result.message, /"token"/);
      }
    }
  });
});

describe('parseRequest: numbers JSON cannot carry', () => {
  test('data or params with a number that parses to ±Infinity is refused with the id; large finite ones pass', () => {
    const tooLarge = '"data" holds a number too large for JSON (such as 1e400)';
    refuses('{"op":"pub","id":5,"ch":"a","data":1e400}', 5, tooLarge);
    refuses('{"op":"pub","id":5,"ch":"a","data":-1e400}', 5, tooLarge);
    refuses(`{"op":"pub","id":5,"ch":"a","data":${'9'.repeat(400)}}`, 5, tooLarge);
    refuses('{"op":"pub","id":5,"ch":"a","data":{"x":[1,{"y":[2,1E999]}]}}', 5, tooLarge);
    refuses('{"op":"rpc","id":6,"method":"m","params":[1e309]}', 6, '"params" holds a number too large for JSON (such as 1e400)');
    accepts('{"op":"pub","id":5,"ch":"a","data":[1e308,-1e308,1e-400]}', { op: 'pub', id: 5, ch: 'a', data: [1e308, -1e308, 0] });
    accepts('{"op":"pub","id":5,"ch":"a","data":{"n":"1e400"}}', { op: 'pub', id: 5, ch: 'a', data: { n: '1e400' } });
  });
});
