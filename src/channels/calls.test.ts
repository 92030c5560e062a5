// The server's calls to one connection: numbered, capped, each ended once by its reply, its
// timeout or the connection's end, and a reply that finds no waiting call counts for
// nothing. Mocked timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Json, ReplyRequest } from '../wire/index.js';
import { CallError } from './call-error.js';
import { ClientCalls } from './calls.js';

function calls(max = 4): { calls: ClientCalls; sent: Array<Record<string, Json>> } {
  const sent: Array<Record<string, Json>> = [];
  return { calls: new ClientCalls(max), sent };
}

const reply = (call: number, fields: Omit<ReplyRequest, 'op' | 'id' | 'call'>): ReplyRequest => ({ op: 'reply', id: 1, call, ...fields });

/** How a promise settled, without waiting for it. */
function outcome(promise: Promise<Json>): { value?: Json; error?: CallError; settled: boolean } {
  const seen: { value?: Json; error?: CallError; settled: boolean } = { settled: false };
  promise.then(
    (value) => Object.assign(seen, { value, settled: true }),
    (error: CallError) => Object.assign(seen, { error, settled: true }),
  );
  return seen;
}

test('each call is sent with the next number and its timeout; its reply settles it, once', async () => {
  const { calls: c, sent } = calls();
  const send = (text: string): void => void sent.push(JSON.parse(text) as Record<string, Json>);
  const first = c.start(send, 'confirm', '{"x":1}', 5000);
  const second = c.start(send, 'other', 'null', 100);
  assert.deepEqual(sent, [
    { op: 'call', call: 1, method: 'confirm', params: { x: 1 }, timeout: 5000 },
    { op: 'call', call: 2, method: 'other', params: null, timeout: 100 },
  ]);
  assert.equal(c.reply(reply(2, { result: [true] })), true);
  assert.equal(c.reply(reply(2, { result: 'again' })), false, 'a second reply finds nothing');
  assert.equal(c.reply(reply(3, { result: 1 })), false, 'a call never made finds nothing');
  assert.equal(c.reply(reply(1, { result: null })), true);
  assert.deepEqual(await Promise.all([first, second]), [null, [true]]);
  assert.equal(c.size, 0);
});

test('an error reply: not_found is no_handler, anything else handler_error with what the client said', async () => {
  const { calls: c } = calls();
  const a = c.start(() => {}, 'm', 'null', 1000);
  const b = c.start(() => {}, 'm', 'null', 1000);
  c.reply(reply(1, { error: { code: 'not_found', message: 'no handler for m' } }));
  c.reply(reply(2, { error: { code: 'forbidden', message: 'not you' } }));
  await assert.rejects(a, (e: CallError) => e instanceof CallError && e.code === 'no_handler' && e.remote?.code === 'not_found');
  await assert.rejects(b, (e: CallError) => e.code === 'handler_error' && e.remote?.code === 'forbidden' && /not you/.test(e.message));
});

test('past the cap a call fails too_many_pending and is not sent; a settled call frees its place', async () => {
  const { calls: c } = calls(2);
  let sends = 0;
  const send = (): void => void sends++;
  const held = [c.start(send, 'm', '1', 1000), c.start(send, 'm', '2', 1000)];
  await assert.rejects(c.start(send, 'm', '3', 1000), (e: CallError) => e.code === 'too_many_pending');
  assert.equal(sends, 2);
  c.reply(reply(1, { result: 1 }));
  await held[0];
  const third = c.start(send, 'm', '4', 1000);
  assert.equal(sends, 3);
  c.end();
  await Promise.allSettled([held[1], third]);
});

test('no reply within the timeout: timeout, and the late reply finds nothing', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { calls: c } = calls();
  const seen = outcome(c.start(() => {}, 'slow', 'null', 1000));
  t.mock.timers.tick(999);
  await Promise.resolve();
  assert.equal(seen.settled, false);
  t.mock.timers.tick(1);
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(seen.error?.code, 'timeout');
  assert.equal(c.size, 0, 'the place is free again');
  assert.equal(c.reply(reply(1, { result: 'late' })), false);
});

test('the connection ends: every waiting call fails client_gone, and no timer is left', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { calls: c } = calls();
  const all = [c.start(() => {}, 'a', 'null', 1000), c.start(() => {}, 'b', 'null', 2000)];
  c.end();
  for (const call of all) await assert.rejects(call, (e: CallError) => e.code === 'client_gone');
  t.mock.timers.tick(5000);
  assert.equal(c.size, 0);
});
