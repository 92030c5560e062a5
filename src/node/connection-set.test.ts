import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionSet, kSlot, type SetMember } from './connection-set.js';

class Member implements SetMember {
  [kSlot] = -1;
  constructor(readonly name: string) {}
}

function members(count: number): Member[] {
  return Array.from({ length: count }, (_, i) => new Member(`m${i}`));
}

const names = (set: Iterable<Member>): string[] => [...set].map((m) => m.name);

test('keeps the order of addition, as a Set does, through deletes and the compactions they cause', () => {
  const set = new ConnectionSet<Member>();
  const all = members(200);
  for (const m of all) set.add(m);
  const kept = all.filter((_, i) => i % 3 === 0);
  // 133 deletes: several compactions (holes as many as members, 32 at least).
  for (const [i, m] of all.entries()) if (i % 3 !== 0) assert.equal(set.delete(m), true);
  assert.equal(set.size, kept.length);
  assert.deepEqual(names(set), kept.map((m) => m.name));
  for (const m of all) assert.equal(set.has(m), kept.includes(m), m.name);
  const late = new Member('late');
  set.add(late);
  assert.equal([...set].at(-1), late, 'the newest is last');
});

test('add twice and delete twice change nothing; a member deleted can be added again, at the end', () => {
  const set = new ConnectionSet<Member>();
  const [a, b] = members(2) as [Member, Member];
  set.add(a).add(a).add(b);
  assert.equal(set.size, 2);
  assert.equal(set.delete(a), true);
  assert.equal(set.delete(a), false);
  assert.equal(set.size, 1);
  set.add(a);
  assert.deepEqual(names(set), ['m1', 'm0']);
});

test('a member of one set is not seen as a member of another', () => {
  const one = new ConnectionSet<Member>();
  const other = new ConnectionSet<Member>();
  const [a, b] = members(2) as [Member, Member];
  one.add(a);
  other.add(b);
  assert.equal(other.has(a), false);
  assert.equal(other.delete(a), false);
  assert.equal(one.has(a), true);
});

test('iterating visits the members present when it began, skipping those deleted before they are reached', () => {
  const set = new ConnectionSet<Member>();
  const all = members(100);
  for (const m of all) set.add(m);
  const seen: string[] = [];
  for (const m of set) {
    seen.push(m.name);
    // Deleting the one visited and the next (enough holes to compact meanwhile), adding one.
    if (m.name === 'm10') {
      for (const gone of all.slice(10, 60)) set.delete(gone);
      set.add(new Member('added'));
    }
  }
  const expected = all.filter((_, i) => i <= 10 || i >= 60).map((m) => m.name);
  assert.deepEqual(seen, expected);
  assert.deepEqual(names(set), [...expected.filter((n) => n !== 'm10'), 'added']);
});

test('forEach, keys, values and entries see what iteration sees', () => {
  const set = new ConnectionSet<Member>();
  const all = members(3);
  for (const m of all) set.add(m);
  set.delete(all[1]!);
  const visited: Array<[string, string, boolean]> = [];
  set.forEach((value, key, owner) => visited.push([value.name, key.name, owner === set]));
  assert.deepEqual(visited, [
    ['m0', 'm0', true],
    ['m2', 'm2', true],
  ]);
  assert.deepEqual(names(set.keys()), ['m0', 'm2']);
  assert.deepEqual(names(set.values()), ['m0', 'm2']);
  assert.deepEqual([...set.entries()].map(([k, v]) => `${k.name}=${v.name}`), ['m0=m0', 'm2=m2']);
});
