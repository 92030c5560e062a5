// The one-shot timer every part of the client owns its waits with: replaced when set again,
// cleared with its owner, and delays past setTimeout's range (24.8 days) waited for in steps
// instead of firing at once. Mocked timers and clock.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TIMEOUT, Timer } from './timer.js';

const DAY = 86_400_000;

/** Mocked timers and clock, and every delay handed to setTimeout. */
function mockTime(t: TestContext): number[] {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const delays: number[] = [];
  const mocked = globalThis.setTimeout;
  t.mock.method(globalThis, 'setTimeout', (callback: () => void, ms: number) => {
    delays.push(ms);
    return mocked(callback, ms);
  });
  return delays;
}

test('fires once after its delay; armed until then', (t) => {
  mockTime(t);
  const timer = new Timer();
  let fired = 0;
  timer.set(100, () => fired++);
  t.mock.timers.tick(99);
  assert.deepEqual([fired, timer.armed], [0, true]);
  t.mock.timers.tick(1);
  assert.deepEqual([fired, timer.armed], [1, false]);
  t.mock.timers.tick(1000);
  assert.equal(fired, 1);
});

test('set again replaces the callback; clear cancels it', (t) => {
  mockTime(t);
  const timer = new Timer();
  const fired: string[] = [];
  timer.set(100, () => fired.push('first'));
  timer.set(50, () => fired.push('second'));
  t.mock.timers.tick(200);
  timer.set(10, () => fired.push('third'));
  timer.clear();
  t.mock.timers.tick(200);
  assert.deepEqual(fired, ['second']);
  assert.equal(timer.armed, false);
});

test('40 days: no setTimeout gets more than 2^31 − 1 ms, and it fires at the deadline, not before', (t) => {
  const delays = mockTime(t);
  const timer = new Timer();
  let fired = 0;
  timer.set(40 * DAY, () => fired++);
  t.mock.timers.tick(MAX_TIMEOUT);
  assert.equal(fired, 0);
  t.mock.timers.tick(40 * DAY - MAX_TIMEOUT - 1);
  assert.equal(fired, 0, 'one ms early');
  t.mock.timers.tick(1);
  assert.equal(fired, 1);
  assert.ok(delays.every((ms) => ms <= MAX_TIMEOUT), `delays: ${delays.join(', ')}`);
  assert.equal(delays.length, 2);
});

test('a long wait keeps to its deadline when a step fires late (a suspended machine), and can be cleared between steps', (t) => {
  mockTime(t);
  const timer = new Timer();
  let fired = 0;
  timer.set(40 * DAY, () => fired++);
  // One tick past the first step: the next step is measured from the deadline.
  t.mock.timers.tick(35 * DAY);
  assert.equal(fired, 0);
  t.mock.timers.tick(5 * DAY);
  assert.equal(fired, 1);

  timer.set(60 * DAY, () => fired++);
  t.mock.timers.tick(MAX_TIMEOUT);
  assert.equal(timer.armed, true);
  timer.clear();
  t.mock.timers.tick(60 * DAY);
  assert.equal(fired, 1);
});
