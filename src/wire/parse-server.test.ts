import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseServerMessage, replyFor } from './parse-server.js';
import type { ServerMessage } from './messages.js';

const parses = (value: unknown, expected: ServerMessage = value as ServerMessage): void => {
  assert.deepEqual(parseServerMessage(JSON.stringify(value)), expected, JSON.stringify(value));
};
const rejects = (text: string): void => assert.equal(parseServerMessage(text), null, text);
const rejectsValue = (value: unknown): void => rejects(JSON.stringify(value));

describe('parseServerMessage', () => {
  test('the ok reply of every op', () => {
    parses({ op: 'ok', id: 1, epoch: 'e', offset: 42, recovered: true });
    parses({ op: 'ok', id: 2 });
    parses({ op: 'ok', id: 3, offset: 43, delivered: 5 });
    parses({ op: 'ok', id: 4, members: [{ id: 'u1' }, {}] });
    parses({ op: 'ok', id: 5, epoch: 'e', messages: [{ offset: 1, data: null }, { offset: 2, data: { a: [1] } }] });
    parses({ op: 'ok', id: 6, result: null });
    parses({ op: 'ok', id: 6, result: [1, 'x'] });
  });

  test('pong, msg, join, leave, err', () => {
    parses({ op: 'pong', id: 7 });
    parses({ op: 'msg', ch: 'room:1', offset: 43, data: { text: 'hi 😀' } });
    parses({ op: 'msg', ch: 'room:1', offset: 0, data: null });
    parses({ op: 'join', ch: 'room:1', member: { id: 'u1' } });
    parses({ op: 'leave', ch: 'room:1', member: { id: 'u1' } });
    parses({ op: 'err', id: 8, code: 'forbidden', message: 'no' });
    parses({ op: 'err', code: 'bad_request', message: 'the message is not valid JSON' });
  });

  test('unknown fields are dropped', () => {
    parses({ op: 'pong', id: 7, extra: 1 }, { op: 'pong', id: 7 });
    parses({ op: 'msg', ch: 'a', offset: 1, data: 2, x: 3 }, { op: 'msg', ch: 'a', offset: 1, data: 2 });
    parses({ op: 'ok', id: 1, offset: 1, delivered: 1, future: true }, { op: 'ok', id: 1, offset: 1, delivered: 1 });
  });

  test('an error code from a newer server reads as internal, its message kept', () => {
    parses({ op: 'err', id: 1, code: 'quota_exceeded', message: 'm' }, { op: 'err', id: 1, code: 'internal', message: 'm' });
  });

  test('garbage is null, never an exception', () => {
    for (const text of ['', 'x', '{', 'null', '1', '"ok"', '[]', '[{"op":"pong","id":1}]', '{}', '['.repeat(100_000)]) rejects(text);
  });

  test('unknown ops, including client ops, are null', () => {
    for (const op of ['sub', 'ping', 'reply', 'OK', 'broadcast', '', 1, null, 'constructor']) rejectsValue({ op, id: 1, ch: 'a', offset: 1, data: 1 });
  });

  test('ids and offsets must be non-negative safe integers', () => {
    for (const bad of [-1, 1.5, '1', null, 2 ** 53, true]) {
      rejectsValue({ op: 'ok', id: bad });
      rejectsValue({ op: 'pong', id: bad });
      rejectsValue({ op: 'err', id: bad, code: 'internal', message: '' });
      rejectsValue({ op: 'msg', ch: 'a', offset: bad, data: 1 });
      rejectsValue({ op: 'ok', id: 1, offset: bad });
      rejectsValue({ op: 'ok', id: 1, delivered: bad });
      rejectsValue({ op: 'ok', id: 1, epoch: 'e', messages: [{ offset: bad, data: 1 }] });
    }
    rejectsValue({ op: 'ok' });
    rejectsValue({ op: 'pong' });
    rejectsValue({ op: 'msg', ch: 'a', data: 1 });
  });

  test('the other fields must have their types', () => {
    rejectsValue({ op: 'msg', offset: 1, data: 1 });
    rejectsValue({ op: 'msg', ch: 1, offset: 1, data: 1 });
    rejectsValue({ op: 'msg', ch: 'a', offset: 1 });
    rejectsValue({ op: 'join', ch: 'a' });
    rejectsValue({ op: 'join', ch: 'a', member: 'u1' });
    rejectsValue({ op: 'leave', ch: 'a', member: [] });
    rejectsValue({ op: 'leave', ch: 'a', member: null });
    rejectsValue({ op: 'join', member: {} });
    rejectsValue({ op: 'err', id: 1, message: 'm' });
    rejectsValue({ op: 'err', id: 1, code: 'internal' });
    rejectsValue({ op: 'err', id: 1, code: 1, message: 'm' });
    rejectsValue({ op: 'ok', id: 1, epoch: 1 });
    rejectsValue({ op: 'ok', id: 1, recovered: 'yes' });
    rejectsValue({ op: 'ok', id: 1, members: {} });
    rejectsValue({ op: 'ok', id: 1, members: [1] });
    rejectsValue({ op: 'ok', id: 1, messages: [{ offset: 1 }] });
    rejectsValue({ op: 'ok', id: 1, messages: [null] });
  });
});

describe('replyFor', () => {
  const read = (value: unknown): ServerMessage => parseServerMessage(JSON.stringify(value))!;

  test('accepts the reply that has the fields of its op', () => {
    const sub = read({ op: 'ok', id: 1, epoch: 'e', offset: 0, recovered: false });
    assert.deepEqual(replyFor('sub', sub), sub);
    assert.equal(replyFor('pub', read({ op: 'ok', id: 1, offset: 4, delivered: 0 }))?.delivered, 0);
    assert.deepEqual(replyFor('presence', read({ op: 'ok', id: 1, members: [], count: 0 }))?.members, []);
    assert.equal(replyFor('presence', read({ op: 'ok', id: 1, count: 7 }))?.count, 7, 'a channel whose member list is off: a count alone');
    assert.equal(replyFor('presence', read({ op: 'ok', id: 1, members: [] })), null, 'count is required');
    assert.equal(replyFor('pub', read({ op: 'ok', id: 1, delivered: 3 }))?.delivered, 3, 'an ephemeral publish: no offset');
    assert.equal(replyFor('history', read({ op: 'ok', id: 1, epoch: 'e', messages: [] }))?.epoch, 'e');
    assert.equal(replyFor('history', read({ op: 'ok', id: 1, epoch: 'e', messages: [], more: true }))?.more, true);
    assert.equal(parseServerMessage(JSON.stringify({ op: 'ok', id: 1, epoch: 'e', messages: [], more: 'yes' })), null, 'more is a boolean');
    assert.equal(replyFor('rpc', read({ op: 'ok', id: 1, result: null }))?.result, null);
    assert.equal(replyFor('unsub', read({ op: 'ok', id: 1 }))?.id, 1);
    assert.equal(replyFor('ping', read({ op: 'pong', id: 1 }))?.op, 'pong');
  });

  test('refuses a reply that lacks a field its op needs, or is not an answer', () => {
    assert.equal(replyFor('sub', read({ op: 'ok', id: 1, epoch: 'e', offset: 0 })), null);
    assert.equal(replyFor('pub', read({ op: 'ok', id: 1, offset: 4 })), null);
    assert.equal(replyFor('presence', read({ op: 'ok', id: 1 })), null);
    assert.equal(replyFor('history', read({ op: 'ok', id: 1, messages: [] })), null);
    assert.equal(replyFor('rpc', read({ op: 'ok', id: 1 })), null);
    assert.equal(replyFor('ping', read({ op: 'ok', id: 1 })), null);
    assert.equal(replyFor('unsub', read({ op: 'pong', id: 1 })), null);
    assert.equal(replyFor('unsub', read({ op: 'err', id: 1, code: 'internal', message: '' })), null);
    assert.equal(replyFor('rpc', read({ op: 'msg', ch: 'a', offset: 1, data: 1 })), null);
  });
});
