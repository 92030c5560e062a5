// Reconnection delays: the bounds of each attempt's window, and full jitter (a delay uniform
// over the whole window). Distribution checks use a seeded generator, so they cannot flake.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from './backoff.js';

/** mulberry32: a small seeded generator of numbers in [0, 1). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const JUST_BELOW_ONE = 1 - Number.EPSILON;

describe('backoffDelay bounds', () => {
  test('attempt k waits from 0 to just under min(max, initial × factor^k)', () => {
    const options = { initial: 500, factor: 2, max: 4000 };
    const ceilings = [500, 1000, 2000, 4000, 4000, 4000];
    ceilings.forEach((ceiling, attempt) => {
      assert.equal(backoffDelay(attempt, options, () => 0), 0, `attempt ${attempt}, random 0`);
      assert.equal(backoffDelay(attempt, options, () => JUST_BELOW_ONE), ceiling - 1, `attempt ${attempt}, random → 1`);
      assert.equal(backoffDelay(attempt, options, () => 0.5), ceiling / 2, `attempt ${attempt}, random 0.5`);
    });
  });

  test('the defaults: 1 s, doubling, at most 30 s', () => {
    const top = (attempt: number): number => backoffDelay(attempt, {}, () => JUST_BELOW_ONE) + 1;
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 20].map(top), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  test('a huge attempt number stays at max (no Infinity, no NaN)', () => {
    for (const attempt of [100, 1100, 1e6]) {
      const delay = backoffDelay(attempt, { initial: 1000, max: 30_000 }, () => JUST_BELOW_ONE);
      assert.equal(delay, 29_999);
    }
  });

  test('delays are whole milliseconds, never negative, always inside the window', () => {
    const random = seeded(1);
    const options = { initial: 300, factor: 3, max: 10_000 };
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(10_000, 300 * 3 ** attempt);
      for (let i = 0; i < 500; i++) {
        const delay = backoffDelay(attempt, options, random);
        assert.ok(Number.isInteger(delay) && delay >= 0 && delay < ceiling, `attempt ${attempt}: ${delay}`);
      }
    }
  });

  test('the default random source stays inside the window too', () => {
    for (let i = 0; i < 2000; i++) {
      const delay = backoffDelay(2, { initial: 100 });
      assert.ok(Number.isInteger(delay) && delay >= 0 && delay < 400);
    }
  });
});

describe('full jitter', () => {
  test('delays are uniform over the whole window: every tenth of it gets about a tenth', () => {
    const random = seeded(20240601);
    const ceiling = 8000;
    const samples = 20_000;
    const deciles = new Array<number>(10).fill(0);
    let sum = 0;
    for (let i = 0; i < samples; i++) {
      const delay = backoffDelay(3, { initial: 1000, factor: 2, max: 30_000 }, random);
      deciles[Math.floor((delay / ceiling) * 10)]!++;
      sum += delay;
    }
    // Expected 2000 per decile (sd ≈ 42); the generator is seeded, so this is not a gamble.
    for (const [i, n] of deciles.entries()) assert.ok(n > 1800 && n < 2200, `decile ${i}: ${n} of ${samples}`);
    const mean = sum / samples;
    assert.ok(Math.abs(mean - ceiling / 2) < ceiling * 0.02, `mean ${mean.toFixed(0)}, expected about ${ceiling / 2}`);
  });

  test('many clients at the same attempt do not come back together', () => {
    // 200 clients drop at once; each draws its first delay. Without jitter they would all
    // retry at the same instant; with full jitter the first and last are most of the window apart.
    const random = seeded(7);
    const delays = Array.from({ length: 200 }, () => backoffDelay(0, { initial: 500 }, random)).sort((a, b) => a - b);
    assert.ok(delays.at(-1)! - delays[0]! > 450, `spread ${delays.at(-1)! - delays[0]!} ms of 500`);
    const sameMillisecond = new Map<number, number>();
    for (const d of delays) sameMillisecond.set(d, (sameMillisecond.get(d) ?? 0) + 1);
    assert.ok(Math.max(...sameMillisecond.values()) <= 5, 'no millisecond is shared by many clients');
  });
});
