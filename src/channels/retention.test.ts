import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetentionLedger, type Retained } from './retention.js';

const entry = (cost: number): Retained => ({ cost, live: true });

test('evicts the oldest live entries past the limit, skipping the ones their owners let go', () => {
  const evicted: string[] = [];
  const ledger = new RetentionLedger<string>(30, (owner) => evicted.push(owner));
  const a = entry(10);
  ledger.add('a', a);
  ledger.add('b', entry(10));
  ledger.add('c', entry(10));
  ledger.released(a);
  assert.equal(ledger.bytes, 20);
  ledger.add('d', entry(10));
  assert.deepEqual(evicted, [], 'a no longer counts: 30 fit');
  ledger.add('e', entry(15));
  assert.deepEqual(evicted, ['b', 'c'], 'b alone is not enough');
  assert.equal(ledger.bytes, 25);
  ledger.released(a);
  assert.equal(ledger.bytes, 25, 'releasing twice counts once');
});

test('entries released by their owners do not pile up in the queue', () => {
  const ledger = new RetentionLedger<null>(Infinity, () => assert.fail('nothing to evict'));
  let previous = entry(1);
  ledger.add(null, previous);
  for (let i = 0; i < 100_000; i++) {
    const next = entry(1);
    ledger.add(null, next);
    ledger.released(previous);
    previous = next;
  }
  assert.equal(ledger.bytes, 1);
  assert.ok(ledger.length <= 2_048, `the queue holds ${ledger.length} entries for 1 live one`);
});
