import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_RECONNECT_WINDOW, reconnectWindowOf, withReconnectHint } from './reconnect-hint.js';

describe('reconnect hint', () => {
  test('a reason with a hint reads back its window', () => {
    const reason = withReconnectHint('server shutting down', 5000);
    assert.equal(reason, 'server shutting down; reconnect within 5000 ms');
    assert.equal(reconnectWindowOf(reason), 5000);
    assert.equal(reconnectWindowOf('reconnect within 0 ms'), 0);
  });

  test('a window of 0 sends no hint; a window out of range is a RangeError', () => {
    assert.equal(withReconnectHint('server shutting down', 0), 'server shutting down');
    for (const bad of [-1, 1.5, MAX_RECONNECT_WINDOW + 1, Number.NaN]) {
      assert.throws(() => withReconnectHint('x', bad), RangeError, String(bad));
    }
  });

  test('reasons without a well-formed hint ask nothing', () => {
    for (const reason of [
      '',
      'server shutting down',
      'idle timeout',
      'server shutting down; reconnect within 5000 ms, please',
      'server shutting down;reconnect within 5000 ms',
      'reconnect within -5 ms',
      'reconnect within 1e3 ms',
      `reconnect within ${MAX_RECONNECT_WINDOW + 1} ms`,
      'reconnect within 9999999 ms',
    ]) {
      assert.equal(reconnectWindowOf(reason), null, reason);
    }
  });

  test('the longest hint fits a close reason (123 bytes)', () => {
    assert.ok(Buffer.byteLength(withReconnectHint('server shutting down', MAX_RECONNECT_WINDOW)) <= 123);
  });
});
