// Property tests: whatever the server encodes, the SDK parses back to the same message;
// whatever a client may send, parseRequest reads back; and nothing anyone sends throws.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CHANNEL_NAME_PUNCTUATION, validateChannelName } from './channel-name.js';
import { ErrorCode } from './codes.js';
import { encodeData, encodeErr, encodeHistoryOk, encodeJoin, encodeLeave, encodeMsg, encodeOk, encodePong } from './encode.js';
import { exceedsJsonDepth } from './json-depth.js';
import { DEFAULT_WIRE_LIMITS, MAX_EPOCH_LENGTH } from './limits.js';
import type { ClientRequest, Json, Member, ServerMessage } from './messages.js';
import { parseRequest } from './parse-request.js';
import { parseServerMessage } from './parse-server.js';

// ---------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------

/** Characters that stress JSON: its syntax, every escape, multibyte and lone surrogates. */
const awkwardChar = fc.oneof(
  fc.constantFrom('"', '\\', '/', '[', ']', '{', '}', ',', ':', '\u0000', '\b', '\n', '\u001f', '\u007f', '\u2028', 'é', '😀'),
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
  fc.string({ minLength: 1, maxLength: 1 }),
);
const anyString = (maxLength = 30): fc.Arbitrary<string> => fc.string({ unit: awkwardChar, maxLength });
const json = (maxDepth = 4): fc.Arbitrary<Json> => fc.jsonValue({ maxDepth, stringUnit: awkwardChar }) as fc.Arbitrary<Json>;
const member: fc.Arbitrary<Member> = fc.dictionary(anyString(8), json(2), { maxKeys: 4 });

const channelChars = [...'ABCXYZabcxyz0189', ...CHANNEL_NAME_PUNCTUATION];
const channelName = fc.oneof(
  fc.string({ unit: fc.constantFrom(...channelChars), minLength: 1, maxLength: 12 }),
  fc.string({ unit: fc.constantFrom(...channelChars), minLength: 190, maxLength: 200 }),
);
const id = fc.oneof(fc.nat(1000), fc.maxSafeNat());
const offset = fc.oneof(fc.nat(1000), fc.maxSafeNat());
const epoch = fc.string({ unit: awkwardChar, minLength: 1, maxLength: MAX_EPOCH_LENGTH }).filter((e) => e.length <= MAX_EPOCH_LENGTH);
const nonEmpty = (max: number): fc.Arbitrary<string> =>
  fc.string({ unit: awkwardChar, minLength: 1, maxLength: max }).filter((s) => s.length <= max);

const request: fc.Arbitrary<ClientRequest> = fc.oneof(
  fc.record(
    { op: fc.constant('sub' as const), id, ch: channelName, since: fc.record({ epoch, offset }) },
    { requiredKeys: ['op', 'id', 'ch'] },
  ),
  fc.record({ op: fc.constant('unsub' as const), id, ch: channelName }),
  fc.record(
    { op: fc.constant('pub' as const), id, ch: channelName, data: json(), key: nonEmpty(DEFAULT_WIRE_LIMITS.maxKeyLength) },
    { requiredKeys: ['op', 'id', 'ch', 'data'] },
  ),
  fc.record({ op: fc.constant('presence' as const), id, ch: channelName }),
  fc.record(
    { op: fc.constant('history' as const), id, ch: channelName, limit: fc.integer({ min: 1, max: DEFAULT_WIRE_LIMITS.maxHistoryLimit }) },
    { requiredKeys: ['op', 'id', 'ch'] },
  ),
  fc.record(
    { op: fc.constant('rpc' as const), id, method: nonEmpty(DEFAULT_WIRE_LIMITS.maxMethodLength), params: json() },
    { requiredKeys: ['op', 'id', 'method'] },
  ),
  fc.record({ op: fc.constant('ping' as const), id }),
);

const knownFields = new Set(['op', 'id', 'ch', 'since', 'data', 'key', 'limit', 'method', 'params']);
const extraFields = fc.dictionary(
  anyString(10).filter((k) => !knownFields.has(k)),
  json(2),
  { maxKeys: 5 },
);

/** What JSON makes of a value: -0 becomes 0, and so on. */
const canonical = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  const children = Array.isArray(value) ? (value as unknown[]) : Object.values(value);
  return 1 + children.reduce<number>((max, child) => Math.max(max, depthOf(child)), 0);
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

describe('properties: client requests', () => {
  test('every valid request survives JSON and parseRequest unchanged', () => {
    fc.assert(
      fc.property(request, (value) => {
        assert.deepEqual(parseRequest(JSON.stringify(value)), { ok: true, request: canonical(value) });
      }),
      { numRuns: 2000 },
    );
  });

  test('unknown fields change nothing', () => {
    fc.assert(
      fc.property(request, extraFields, (value, extras) => {
        const text = JSON.stringify({ ...extras, ...value });
        assert.deepEqual(parseRequest(text), { ok: true, request: canonical(value) });
      }),
    );
  });

  test('any text gets an answer, never an exception; errors are bad_request', () => {
    fc.assert(
      fc.property(fc.oneof(anyString(200), fc.string({ maxLength: 200 })), (text) => {
        const result = parseRequest(text);
        if (!result.ok) assert.equal(result.code, ErrorCode.BadRequest);
      }),
      { numRuns: 2000 },
    );
  });

  test('any object with a valid id: accepted, or refused with that id', () => {
    const op = fc.oneof(fc.constantFrom('sub', 'unsub', 'pub', 'presence', 'history', 'rpc', 'ping'), anyString(6));
    const field = fc.oneof(json(2), channelName, fc.integer(), fc.constant(undefined));
    const candidate = fc.record({
      op,
      id,
      ch: field,
      data: field,
      key: field,
      limit: field,
      method: field,
      params: field,
      since: fc.oneof(field, fc.record({ epoch: fc.oneof(epoch, field), offset: fc.oneof(offset, field) }, { requiredKeys: [] })),
    }, { requiredKeys: ['op', 'id'] });
    fc.assert(
      fc.property(candidate, (value) => {
        const result = parseRequest(JSON.stringify(value));
        if (result.ok) assert.equal(result.request.id, value.id);
        else assert.equal(result.id, value.id, result.message);
      }),
      { numRuns: 3000 },
    );
  });

  test('any JSON value gets an answer; only objects with a valid id get it echoed', () => {
    fc.assert(
      fc.property(json(5), (value) => {
        const result = parseRequest(JSON.stringify(value));
        if (!result.ok && result.id !== undefined) {
          assert.equal((value as { id: unknown }).id, result.id);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('properties: server messages', () => {
  /** A message and the frame text the server's encoder makes of it. */
  const encoded: fc.Arbitrary<[ServerMessage, string]> = fc.oneof(
    fc.tuple(anyString(), offset, json()).map(([ch, at, data]): [ServerMessage, string] => [
      { op: 'msg', ch, offset: at, data },
      encodeMsg(ch, at, encodeData(data)),
    ]),
    fc.tuple(id, anyString(), fc.array(fc.tuple(offset, json()), { maxLength: 5 })).map(([n, e, entries]): [ServerMessage, string] => [
      { op: 'ok', id: n, epoch: e, messages: entries.map(([at, data]) => ({ offset: at, data })) },
      encodeHistoryOk(n, e, entries.map(([at, data]) => ({ offset: at, dataJson: encodeData(data) }))),
    ]),
    fc.tuple(id, anyString(), offset, fc.boolean()).map(([n, e, at, recovered]): [ServerMessage, string] => [
      { op: 'ok', id: n, epoch: e, offset: at, recovered },
      encodeOk(n, { epoch: e, offset: at, recovered }),
    ]),
    fc.tuple(id, offset, fc.nat()).map(([n, at, delivered]): [ServerMessage, string] => [
      { op: 'ok', id: n, offset: at, delivered },
      encodeOk(n, { offset: at, delivered }),
    ]),
    fc.tuple(id, fc.array(member, { maxLength: 4 })).map(([n, members]): [ServerMessage, string] => [
      { op: 'ok', id: n, members, count: members.length },
      encodeOk(n, { members, count: members.length }),
    ]),
    fc.tuple(id, json()).map(([n, result]): [ServerMessage, string] => [{ op: 'ok', id: n, result }, encodeOk(n, { result })]),
    id.map((n): [ServerMessage, string] => [{ op: 'ok', id: n }, encodeOk(n)]),
    id.map((n): [ServerMessage, string] => [{ op: 'pong', id: n }, encodePong(n)]),
    fc.tuple(anyString(), member, fc.boolean()).map(([ch, who, joined]): [ServerMessage, string] =>
      joined ? [{ op: 'join', ch, member: who }, encodeJoin(ch, who)] : [{ op: 'leave', ch, member: who }, encodeLeave(ch, who)],
    ),
    fc.tuple(fc.option(id, { nil: undefined }), fc.constantFrom(...Object.values(ErrorCode)), anyString(60)).map(
      ([n, code, message]): [ServerMessage, string] => [
        n === undefined ? { op: 'err', code, message } : { op: 'err', id: n, code, message },
        encodeErr(n, code, message),
      ],
    ),
  );

  test('each encoder writes exactly JSON.stringify of its message', () => {
    fc.assert(
      fc.property(encoded, ([message, text]) => {
        assert.equal(text, JSON.stringify(message));
      }),
      { numRuns: 3000 },
    );
  });

  test('encode then parseServerMessage gives the message back', () => {
    fc.assert(
      fc.property(encoded, ([message, text]) => {
        assert.deepEqual(parseServerMessage(text), canonical(message));
      }),
      { numRuns: 3000 },
    );
  });

  test('any text gives a message or null, never an exception', () => {
    fc.assert(
      fc.property(fc.oneof(anyString(200), json(4).map((v) => JSON.stringify(v))), (text) => {
        const message = parseServerMessage(text);
        if (message !== null) assert.ok(['ok', 'pong', 'msg', 'join', 'leave', 'err'].includes(message.op));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('properties: depth and channel names', () => {
  test('the depth scan agrees with the depth of the parsed value, compact or indented', () => {
    fc.assert(
      fc.property(json(8), fc.nat(10), fc.boolean(), (value, limit, indent) => {
        const text = indent ? JSON.stringify(value, null, 2) : JSON.stringify(value);
        assert.equal(exceedsJsonDepth(text, limit), depthOf(value) > limit);
      }),
      { numRuns: 3000 },
    );
  });

  test('validateChannelName agrees with the documented rule', () => {
    const rule = /^[A-Za-z0-9_\-:.@/=,]{1,200}$/;
    const candidate = fc.oneof(
      channelName,
      fc.string({ unit: fc.oneof(fc.constantFrom(...channelChars), awkwardChar), maxLength: 12 }),
      fc.string({ unit: fc.constantFrom(...channelChars), minLength: 195, maxLength: 210 }),
    );
    fc.assert(
      fc.property(candidate, (name) => {
        assert.equal(validateChannelName(name) === null, rule.test(name), JSON.stringify(name));
      }),
      { numRuns: 3000 },
    );
  });
});
