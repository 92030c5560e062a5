import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { encodeErr, encodeHistoryOk, encodeMsg, encodeOk } from './encode.js';
import { DEFAULT_WIRE_LIMITS } from './limits.js';
import { encodeMsgpack, encodingOf, msgpackOfJson, parseMsgpackRequest, parseServerMsgpack, scanMsgpack } from './msgpack.js';
import { parseRequest } from './parse-request.js';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
/** A fixmap of one entry "id": 1 and then `rest` entries given as raw bytes. */
const request = (entries: number, ...rest: number[]): Uint8Array => bytes(0x80 | (entries + 1), 0xa2, 0x69, 0x64, 0x01, ...rest);

function refused(frame: Uint8Array, message: RegExp): void {
  const parsed = parseMsgpackRequest(frame);
  assert.equal(parsed.ok, false);
  if (parsed.ok) return;
  assert.equal(parsed.code, 'bad_request');
  assert.match(parsed.message, message);
}

/** Arrays nested `levels` deep around nil. */
function nested(levels: number): number[] {
  return [...new Uint8Array(levels).fill(0x91), 0xc0];
}

describe('hotline.v1.msgpack requests', () => {
  test('a request reads as the same request in JSON, field for field', () => {
    const requests = [
      { op: 'sub', id: 1, ch: 'room:1', since: { epoch: 'e1', offset: 41 }, token: 't' },
      { op: 'pub', id: 2, ch: 'room:1', data: { text: 'hi', n: [1, 2.5, -3, null, true] }, key: 'k', sender: 's' },
      { op: 'history', id: 3, ch: 'room:1', limit: 10, before: 5 },
      { op: 'rpc', id: 4, method: 'add', params: [1, 2] },
      { op: 'reply', id: 5, call: 1, result: null },
      { op: 'ping', id: 6 },
      { op: 'pub', id: 7, ch: 'x', data: { text: 'big', extra: 'x'.repeat(70_000) } },
    ];
    for (const r of requests) assert.deepEqual(parseMsgpackRequest(encode(r)), parseRequest(JSON.stringify(r)), r.op);
  });

  test('bytes (msgpack bin) come out in their JSON form, as a JSON client would send them', () => {
    const parsed = parseMsgpackRequest(encode({ op: 'pub', id: 1, ch: 'doc', data: { update: bytes(0, 1, 2), list: [bytes()] } }));
    assert.deepEqual(parsed, { ok: true, request: { op: 'pub', id: 1, ch: 'doc', data: { update: { $bin: 'AAEC' }, list: [{ $bin: '' }] } } });
    const top = parseMsgpackRequest(encode({ op: 'pub', id: 1, ch: 'doc', data: bytes(255) }));
    assert.deepEqual(top.ok && top.request, { op: 'pub', id: 1, ch: 'doc', data: { $bin: '/w==' } });
  });

  test('field errors are the JSON path\'s, with the id when it was readable', () => {
    assert.deepEqual(parseMsgpackRequest(encode({ op: 'pub', id: 9, ch: 'room 1', data: 1 })), parseRequest('{"op":"pub","id":9,"ch":"room 1","data":1}'));
    assert.deepEqual(parseMsgpackRequest(encode({ op: 'nope', id: 9 })), parseRequest('{"op":"nope","id":9}'));
    const nan = parseMsgpackRequest(encode({ op: 'pub', id: 3, ch: 'a', data: Number.NaN }));
    assert.deepEqual(nan, { ok: false, id: 3, code: 'bad_request', message: '"data" holds a number too large for JSON (such as 1e400)' });
  });

  test('nesting is bounded as for JSON: 64 levels with the request, one more is refused before decoding', () => {
    // {"id":1,"d":[…]}: the map is level 1, so 63 arrays fit.
    const within = request(1, 0xa1, 0x64, ...nested(63));
    assert.equal(scanMsgpack(within, 64).problem, null);
    refused(request(1, 0xa1, 0x64, ...nested(64)), /nests maps and arrays deeper than 64 levels/);
    // A million levels costs one pass and nothing more.
    const deep = new Uint8Array(1_000_010).fill(0x91);
    deep.set(request(1, 0xa1, 0x64));
    const started = performance.now();
    refused(deep, /deeper than 64 levels/);
    assert.ok(performance.now() - started < 500);
  });

  test('extension types are refused, timestamps included', () => {
    refused(request(1, 0xa1, 0x64, 0xd6, 0xff, 0, 0, 0, 0), /extension types are not part of hotline.v1/);
    refused(request(1, 0xa1, 0x64, 0xc7, 0x01, 0x05, 0x00), /extension types/);
    refused(encode({ op: 'pub', id: 1, ch: 'a', data: new Date(0) }), /extension types/);
  });

  test('map keys must be strings, each once', () => {
    refused(bytes(0x81, 0x01, 0x01), /a map key must be a string/);
    refused(request(1, 0xc0, 0x01), /a map key must be a string/);
    refused(request(1, 0xc4, 0x01, 0x61, 0x01), /a map key must be a string/);
    refused(request(1, 0x91, 0xa1, 0x61, 0x01), /a map key must be a string/);
    refused(request(1, 0xa2, 0x69, 0x64, 0x02), /a map repeats a key/);
    const repeatedInData = parseMsgpackRequest(request(1, 0xa1, 0x64, 0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02));
    assert.deepEqual(repeatedInData, { ok: false, id: 1, code: 'bad_request', message: 'a map repeats a key' });
    refused(request(1, 0xa1, 0x64, 0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02), /a map repeats a key/);
    refused(encode({ op: 'pub', id: 1, ch: 'a', data: JSON.parse('{"__proto__":{"polluted":1}}') as unknown }), /__proto__/);
    assert.equal(({} as { polluted?: number }).polluted, undefined);
  });

  test('lengths and counts past the frame are refused without allocating them', () => {
    refused(request(1, 0xa1, 0x64, 0xdd, 0xff, 0xff, 0xff, 0xff), /a count is larger than the message/);
    refused(request(1, 0xa1, 0x64, 0xdf, 0xff, 0xff, 0xff, 0xff), /a count is larger than the message/);
    refused(request(1, 0xa1, 0x64, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61), /ends inside a value/);
    refused(request(1, 0xa1, 0x64, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x61), /ends inside a value/);
    refused(request(1, 0xa1, 0x64, 0xcb, 0x00), /ends inside a value/);
  });

  test('a request holds at most maxValues values, keys included, counted before decoding', () => {
    // {"id":1,"d":[nil × n]}: 4 values around the array, then the array and its n elements.
    const frame = (n: number): Uint8Array => bytes(0x82, 0xa2, 0x69, 0x64, 0x01, 0xa1, 0x64, 0xdc, n >> 8, n & 255, ...new Uint8Array(n).fill(0xc0));
    assert.equal(scanMsgpack(frame(100), 64, 105).problem, null);
    assert.match(scanMsgpack(frame(101), 64, 105).problem ?? '', /more than 105 values/);
    const parsed = parseMsgpackRequest(frame(60_000), DEFAULT_WIRE_LIMITS, 1000);
    assert.ok(!parsed.ok && /more than 1000 values/.test(parsed.message));
  });

  test('malformed msgpack: not a map, a byte that is no type, bad UTF-8, bytes after the request', () => {
    refused(bytes(), /a request must be a msgpack map/);
    refused(encode([1, 2]), /a request must be a msgpack map/);
    refused(encode('{"op":"ping","id":1}'), /a request must be a msgpack map/);
    refused(request(1, 0xa1, 0x64, 0xc1), /0xc1 is not a type/);
    refused(request(1, 0xa1, 0x64, 0xa2, 0xc3, 0x28), /not valid UTF-8/);
    refused(bytes(...encode({ op: 'ping', id: 1 }), 0xc0), /bytes follow the request/);
    refused(bytes(0x81, 0xa2, 0x69, 0x64), /ends inside a value/);
  });

  test('any bytes at all: an answer, never a throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (frame) => {
        const parsed = parseMsgpackRequest(frame, DEFAULT_WIRE_LIMITS);
        assert.ok(parsed.ok || parsed.code === 'bad_request');
      }),
      { numRuns: 3000 },
    );
  });
});

describe('hotline.v1.msgpack from the server', () => {
  test('a message written as JSON reads back the same in msgpack, with the JSON form of bytes as bytes', () => {
    const msg = encodeMsg('doc', 7, '{"update":{"$bin":"AAEC"},"n":1.5,"s":"ü"}');
    assert.deepEqual(parseServerMsgpack(msgpackOfJson(msg)), { op: 'msg', ch: 'doc', offset: 7, data: { update: bytes(0, 1, 2), n: 1.5, s: 'ü' } });
    const history = encodeHistoryOk(3, 'e', [{ offset: 1, dataJson: '{"$bin":"/w=="}' }], true);
    assert.deepEqual(parseServerMsgpack(msgpackOfJson(history)), { op: 'ok', id: 3, epoch: 'e', messages: [{ offset: 1, data: bytes(255) }], more: true });
    assert.deepEqual(parseServerMsgpack(msgpackOfJson(encodeErr(undefined, 'bad_request', 'x'))), { op: 'err', code: 'bad_request', message: 'x' });
    assert.deepEqual(parseServerMsgpack(msgpackOfJson(encodeOk(1, { offset: 2, delivered: 3 }))), { op: 'ok', id: 1, offset: 2, delivered: 3 });
  });

  test('what the SDK sends decodes to the same request on the server', () => {
    const frame = encodeMsgpack({ op: 'pub', id: 1, ch: 'doc', data: bytes(1, 2, 3), key: undefined });
    assert.deepEqual(parseMsgpackRequest(frame), { ok: true, request: { op: 'pub', id: 1, ch: 'doc', data: { $bin: 'AQID' } } });
  });

  test('garbage from a server is ignored, not thrown', () => {
    assert.equal(parseServerMsgpack(bytes(0xc1)), null);
    assert.equal(parseServerMsgpack(encode({ op: 'msg', ch: 'a' })), null);
  });

  test('the subprotocol names the encoding', () => {
    assert.equal(encodingOf('hotline.v1.msgpack'), 'msgpack');
    assert.equal(encodingOf('hotline.v1'), 'json');
    assert.equal(encodingOf(''), 'json');
    assert.equal(encodingOf(undefined), 'json');
  });
});
