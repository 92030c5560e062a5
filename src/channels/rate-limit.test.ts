import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from './rate-limit.js';

/** How many of `count` takes, one every `every` ms from `start`, the bucket allows. */
function allowed(bucket: TokenBucket, count: number, every: number, start = 0): number {
  let yes = 0;
  for (let i = 0; i < count; i++) if (bucket.take(start + i * every)) yes++;
  return yes;
}

describe('TokenBucket', () => {
  test('allows the burst at once, then refuses', () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 5 }, 0);
    assert.equal(allowed(bucket, 20, 0), 5);
  });

  test('the burst defaults to the rate', () => {
    const bucket = new TokenBucket({ perSecond: 7 }, 0);
    assert.equal(allowed(bucket, 20, 0), 7);
  });

  test('refills at the rate: one token per 1000/perSecond ms', () => {
    const bucket = new TokenBucket({ perSecond: 4, burst: 1 }, 0);
    assert.equal(bucket.take(0), true);
    assert.equal(bucket.take(249), false);
    assert.equal(bucket.take(250), true);
    assert.equal(bucket.take(250), false);
    assert.equal(bucket.take(500), true);
  });

  test('refused takes cost nothing', () => {
    const bucket = new TokenBucket({ perSecond: 1, burst: 1 }, 0);
    assert.equal(bucket.take(0), true);
    for (let t = 1; t < 1000; t += 7) assert.equal(bucket.take(t), false);
    assert.equal(bucket.take(1000), true, 'a token a second, however often it was asked for');
  });

  test('a long pause refills no more than the burst', () => {
    const bucket = new TokenBucket({ perSecond: 100, burst: 3 }, 0);
    assert.equal(allowed(bucket, 3, 0), 3);
    assert.equal(allowed(bucket, 10, 0, 3_600_000), 3);
  });

  test('sustained traffic gets the burst plus the rate, over ten seconds', () => {
    const bucket = new TokenBucket({ perSecond: 50, burst: 100 }, 0);
    // One attempt a millisecond for 10 s: 100 at once, then 50 a second.
    const yes = allowed(bucket, 10_000, 1);
    assert.ok(yes >= 100 + 499 && yes <= 100 + 500, `${yes} allowed`);
  });

  test('fractional rates: half a token a second is one every two seconds', () => {
    const bucket = new TokenBucket({ perSecond: 0.5, burst: 1 }, 0);
    assert.equal(bucket.take(0), true);
    assert.equal(bucket.take(1_999), false);
    assert.equal(bucket.take(2_000), true);
  });

  test('a clock that goes back grants nothing', () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 2 }, 10_000);
    assert.equal(allowed(bucket, 2, 0, 10_000), 2);
    assert.equal(bucket.take(5_000), false, 'earlier than the last take');
    assert.equal(bucket.take(10_050), false);
    assert.equal(bucket.take(10_100), true, 'and time forward from the latest reading refills as usual');
  });

  test('a rate of zero with no burst refuses everything', () => {
    const bucket = new TokenBucket({ perSecond: 0 }, 0);
    assert.equal(allowed(bucket, 10, 1_000), 0);
  });
});

test('TokenBucket.isFull: once refilled to its burst, and not before', () => {
  const bucket = new TokenBucket({ perSecond: 10, burst: 2 }, 0);
  assert.equal(bucket.isFull(0), true, 'a new bucket');
  bucket.take(0);
  bucket.take(0);
  assert.equal(bucket.isFull(199), false);
  assert.equal(bucket.isFull(200), true, 'two tokens back after 200 ms');
  // Asking changed nothing: at 100 ms the bucket holds the one token it refilled.
  assert.equal(bucket.take(100), true);
  assert.equal(bucket.take(100), false);
});
