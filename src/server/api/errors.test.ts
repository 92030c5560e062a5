import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallError, ChannelError, EngineUnavailableError } from '../../channels/index.js';
import { ApiCallLog } from './calls.js';
import { ApiError, apiErrorOf } from './errors.js';

test("the server API's errors get the HTTP status of their meaning", () => {
  const cases: Array<[unknown, string, number]> = [
    [new ChannelError('bad_request', 'x'), 'bad_request', 400],
    // Data over maxDataLength is a bad field, not the body cap's 413.
    [new ChannelError('too_large', 'x'), 'too_large', 400],
    [new ChannelError('forbidden', 'x'), 'forbidden', 403],
    [new ChannelError('rate_limited', 'x'), 'rate_limited', 429],
    [new CallError('timeout', 'x'), 'timeout', 504],
    [new CallError('unavailable', 'x'), 'unavailable', 503],
    [new CallError('too_many_pending', 'x'), 'too_many_pending', 503],
    [new CallError('client_gone', 'x'), 'internal', 500],
    [new EngineUnavailableError('redis down'), 'unavailable', 503],
    [new ApiError('request_timeout', 'x'), 'request_timeout', 408],
  ];
  for (const [error, code, status] of cases) {
    const mapped = apiErrorOf(error);
    assert.deepEqual([mapped.code, mapped.status], [code, status], String(error));
  }
});

test('anything else is internal, and its message is not shown to the caller', () => {
  const mapped = apiErrorOf(new Error('ECONNREFUSED 10.0.0.5:5432 password=hunter2'));
  assert.equal(mapped.status, 500);
  assert.doesNotMatch(mapped.message, /hunter2/);
});

test('the call log counts by method and status and keeps the last 100 calls, bodies only with previews', () => {
  const log = new ApiCallLog(false);
  for (let i = 0; i < 150; i++) log.record({ time: i, method: i % 2 === 0 ? 'publish' : 'unknown', status: i % 3 === 0 ? 200 : 401, duration: 1 }, Buffer.from('{"data":"secret"}'));
  const { calls, total } = log.latest();
  assert.equal(total, 150);
  assert.equal(calls.length, 100);
  assert.equal(calls[0]!.time, 50, 'the oldest kept');
  assert.ok(calls.every((c) => c.preview === undefined));
  const counted = log.counters().reduce((sum, c) => sum + c.count, 0);
  assert.equal(counted, 150);
  assert.deepEqual(new Set(log.counters().map((c) => c.method)), new Set(['publish', 'unknown']));
  const previewing = new ApiCallLog(true);
  previewing.record({ time: 0, method: 'publish', status: 200, duration: 1 }, Buffer.from('x'.repeat(500)));
  assert.equal(previewing.latest().calls[0]!.preview, 'x'.repeat(160));
});
