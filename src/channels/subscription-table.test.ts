import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Subscription } from './subscription.js';
import { SubscriptionTable } from './subscription-table.js';

/** Only the channel is read by the table. */
function subscription(channel: string): Subscription<undefined> {
  return { channel } as Subscription<undefined>;
}

test('one subscription: found by its channel, and no other', () => {
  const table = new SubscriptionTable<undefined>();
  assert.equal(table.size, 0);
  assert.equal(table.get('a'), undefined);
  const a = subscription('a');
  table.add(a);
  assert.equal(table.size, 1);
  assert.equal(table.get('a'), a);
  assert.equal(table.has('a'), true);
  assert.equal(table.has('b'), false);
  assert.deepEqual(table.channels(), ['a']);
  assert.equal(table.delete('b'), false);
  assert.equal(table.delete('a'), true);
  assert.equal(table.delete('a'), false);
  assert.equal(table.size, 0);
  assert.deepEqual(table.channels(), []);
});

test('a second channel keeps both, in order; the same channel again replaces', () => {
  const table = new SubscriptionTable<undefined>();
  const a = subscription('a');
  const b = subscription('b');
  const c = subscription('c');
  table.add(a);
  table.add(b);
  table.add(c);
  assert.equal(table.size, 3);
  assert.deepEqual(table.channels(), ['a', 'b', 'c']);
  assert.deepEqual(table.subscriptions(), [a, b, c]);
  const b2 = subscription('b');
  table.add(b2);
  assert.equal(table.size, 3);
  assert.equal(table.get('b'), b2);
  const a2 = subscription('a');
  const single = new SubscriptionTable<undefined>();
  single.add(a);
  single.add(a2);
  assert.equal(single.size, 1);
  assert.equal(single.get('a'), a2);
});

test('deleting down to one and to none, then adding again', () => {
  const table = new SubscriptionTable<undefined>();
  const [a, b, c] = ['a', 'b', 'c'].map(subscription);
  table.add(a!);
  table.add(b!);
  table.add(c!);
  assert.equal(table.delete('a'), true);
  assert.equal(table.delete('c'), true);
  assert.equal(table.size, 1);
  assert.equal(table.get('b'), b);
  assert.equal(table.get('a'), undefined);
  table.add(a!);
  assert.deepEqual(table.channels(), ['b', 'a']);
  assert.equal(table.delete('b'), true);
  assert.equal(table.delete('a'), true);
  assert.equal(table.size, 0);
  assert.deepEqual(table.subscriptions(), []);
});

test('a snapshot may be walked while what it lists is deleted', () => {
  const table = new SubscriptionTable<undefined>();
  for (const channel of ['a', 'b', 'c', 'd']) table.add(subscription(channel));
  const visited: string[] = [];
  for (const channel of table.channels()) {
    visited.push(channel);
    table.delete(channel);
  }
  assert.deepEqual(visited, ['a', 'b', 'c', 'd']);
  assert.equal(table.size, 0);
});
