// The SDK's side of the server's calls: the registered handler's result or error becomes
// the reply, a method without a handler is answered not_found, and nothing is sent after
// the server stopped waiting. Mocked clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerCall } from '../wire/index.js';
import { HotlineError } from './errors.js';
import { CallHandlers, type ReplyFields } from './handlers.js';

const call = (method: string, params: ServerCall['params'] = null, timeout = 10_000, n = 1): ServerCall => ({ op: 'call', call: n, method, params, timeout });

/** Runs one call and resolves with what was replied (or null when nothing was, by the next turns). */
async function run(handlers: CallHandlers, message: ServerCall): Promise<ReplyFields | null> {
  let replied: ReplyFields | null = null;
  handlers.run(message, (fields) => (replied = fields));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return replied;
}

test("the handler gets the params; what it returns or resolves to is the reply's result (undefined as null)", async () => {
  const handlers = new CallHandlers();
  handlers.handle('add', (params) => (params as number[]).reduce((a, b) => a + b, 0));
  handlers.handle('later', async () => ({ ok: [1] }));
  handlers.handle('nothing', () => undefined);
  assert.deepEqual(await run(handlers, call('add', [1, 2, 3])), { call: 1, result: 6 });
  assert.deepEqual(await run(handlers, call('later', null, 10_000, 7)), { call: 7, result: { ok: [1] } });
  assert.deepEqual(await run(handlers, call('nothing')), { call: 1, result: null });
});

test('no handler: not_found; a handler removed is gone; registering again replaces', async () => {
  const handlers = new CallHandlers();
  assert.deepEqual(await run(handlers, call('ask')), { call: 1, error: { code: 'not_found', message: 'no handler for ask' } });
  const remove = handlers.handle('ask', () => 'first');
  handlers.handle('ask', () => 'second');
  remove();
  assert.deepEqual(await run(handlers, call('ask')), { call: 1, result: 'second' }, 'removing a replaced handler leaves the new one');
  handlers.handle('gone', () => 1)();
  assert.equal(((await run(handlers, call('gone'))) as { error: { code: string } }).error.code, 'not_found');
});

test("what a handler throws is the reply's error: its string code, else internal, and its message cut to 1024", async () => {
  const handlers = new CallHandlers();
  handlers.handle('forbidden', () => {
    throw new HotlineError('forbidden', 'not you');
  });
  handlers.handle('custom', () => Promise.reject(Object.assign(new Error('over quota'), { code: 'quota' })));
  handlers.handle('plain', () => {
    throw new Error('m'.repeat(5000));
  });
  handlers.handle('string', () => Promise.reject('just a string'));
  handlers.handle('cycle', () => {
    const value: Record<string, unknown> = {};
    value['self'] = value;
    return value;
  });
  assert.deepEqual(await run(handlers, call('forbidden')), { call: 1, error: { code: 'forbidden', message: 'not you' } });
  assert.deepEqual(await run(handlers, call('custom')), { call: 1, error: { code: 'quota', message: 'over quota' } });
  assert.deepEqual(await run(handlers, call('plain')), { call: 1, error: { code: 'internal', message: 'm'.repeat(1024) } });
  assert.deepEqual(await run(handlers, call('string')), { call: 1, error: { code: 'internal', message: 'just a string' } });
  assert.deepEqual(await run(handlers, call('cycle')), { call: 1, error: { code: 'internal', message: 'the handler returned something JSON cannot carry' } });
});

test('a handler that finishes after the call timed out sends nothing: the server no longer waits', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000 });
  const handlers = new CallHandlers();
  const finish: Array<(value: string) => void> = [];
  handlers.handle('slow', () => new Promise<string>((resolve) => finish.push(resolve)));
  const replies: ReplyFields[] = [];
  handlers.run(call('slow', null, 500, 1), (fields) => replies.push(fields));
  handlers.run(call('slow', null, 500, 2), (fields) => replies.push(fields));
  t.mock.timers.tick(499);
  finish[0]!('in time');
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  t.mock.timers.tick(1);
  finish[1]!('too late');
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(replies, [{ call: 1, result: 'in time' }], 'the one done at 500 ms is not sent');
});
