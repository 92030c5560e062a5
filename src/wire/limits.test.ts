import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_WIRE_LIMITS, MAX_EPOCH_LENGTH, resolveWireLimits } from './limits.js';
import { ErrorCode, isErrorCode, SUBPROTOCOL } from './codes.js';

describe('limits', () => {
  test('the defaults of the design, frozen', () => {
    const design = { maxChannelNameLength: 200, maxKeyLength: 128, maxMethodLength: 100, maxTokenLength: 8192, maxHistoryLimit: 1000, maxJsonDepth: 64 };
    assert.deepEqual(DEFAULT_WIRE_LIMITS, design);
    assert.equal(Object.isFrozen(DEFAULT_WIRE_LIMITS), true);
    assert.equal(MAX_EPOCH_LENGTH, 64);
  });

  test('resolveWireLimits applies overrides to a fresh copy', () => {
    const limits = resolveWireLimits({ maxHistoryLimit: 50, maxJsonDepth: undefined });
    assert.deepEqual(limits, { ...DEFAULT_WIRE_LIMITS, maxHistoryLimit: 50 });
    assert.notEqual(resolveWireLimits(), DEFAULT_WIRE_LIMITS);
    assert.deepEqual(resolveWireLimits(), DEFAULT_WIRE_LIMITS);
  });

  test('resolveWireLimits refuses limits that are not positive integers', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
      assert.throws(() => resolveWireLimits({ maxKeyLength: bad }), RangeError, String(bad));
    }
    assert.throws(() => resolveWireLimits({ maxJsonDepth: '3' as unknown as number }), /maxJsonDepth must be a positive integer/);
  });
});

describe('codes', () => {
  test('the subprotocol and the seven error codes', () => {
    assert.equal(SUBPROTOCOL, 'hotline.v1');
    assert.deepEqual(Object.values(ErrorCode).sort(), [
      'bad_request',
      'forbidden',
      'internal',
      'not_found',
      'rate_limited',
      'too_large',
      'unauthorized',
    ]);
    for (const code of Object.values(ErrorCode)) assert.equal(isErrorCode(code), true);
    for (const other of ['BadRequest', 'ok', '', null, 1, undefined]) assert.equal(isErrorCode(other), false);
  });
});
