// A server's open connections, as a read-only set that changes in place.
//
// Not a Set: connections come and go thousands of times a second, and a Set's hash table,
// once in V8's old generation, is rebuilt there every few dozen such changes. Each table it
// leaves behind is garbage only a full collection finds, and until then it still points at
// the connections that were open when it was left: young-generation collections treat those
// as live, so nearly every short connection, its socket and all it holds, was copied and
// then promoted (docs/benchmarks.md, "Handshakes: the connection set"). Here a deleted
// connection's slot is cleared where it is, and the live ones are moved up in place when
// holes are as many as they are: no table is ever left behind holding connections.
/** Where a connection sits in its server's {@link ConnectionSet}: -1 while in none. */
export const kSlot: unique symbol = Symbol('hotline.connectionSlot');

/** Something a {@link ConnectionSet} holds: it keeps its own slot number. */
export interface SetMember {
  [kSlot]: number;
}

/** Holes tolerated before compacting, however few the members (so that a small set compacts rarely). */
const MIN_HOLES = 32;

/**
 * Members in the order they were added, as a Set keeps them. Iterating visits the members
 * present when the iteration began that are still present when reached (a Set would also
 * visit those added meanwhile). A member belongs to one set at a time.
 */
export class ConnectionSet<C extends SetMember> implements ReadonlySet<C> {
  /** Members and holes (undefined), in order of addition; never shortened, so never reallocated to shrink. */
  private readonly slots: Array<C | undefined> = [];
  /** Slots in use, members and holes. */
  private end = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(value: C): boolean {
    const slot = value[kSlot];
    return slot >= 0 && slot < this.end && this.slots[slot] === value;
  }

  add(value: C): this {
    if (this.has(value)) return this;
    if (this.end === this.slots.length) this.slots.push(value);
    else this.slots[this.end] = value;
    value[kSlot] = this.end++;
    this.count++;
    return this;
  }

  delete(value: C): boolean {
    if (!this.has(value)) return false;
    this.slots[value[kSlot]] = undefined;
    value[kSlot] = -1;
    this.count--;
    if (this.end - this.count >= Math.max(MIN_HOLES, this.count)) this.compact();
    return true;
  }

  forEach(callback: (value: C, key: C, set: ReadonlySet<C>) => void, thisArg?: unknown): void {
    for (const member of this) callback.call(thisArg, member, member, this);
  }

  *values(): Generator<C, undefined, undefined> {
    const snapshot = this.slots.slice(0, this.end);
    for (const member of snapshot) {
      if (member !== undefined && this.has(member)) yield member;
    }
    return undefined;
  }

  keys(): Generator<C, undefined, undefined> {
    return this.values();
  }

  *entries(): Generator<[C, C], undefined, undefined> {
    for (const member of this.values()) yield [member, member];
    return undefined;
  }

  [Symbol.iterator](): Generator<C, undefined, undefined> {
    return this.values();
  }

  /** Moves the members up over the holes, keeping their order, in the same array. */
  private compact(): void {
    const slots = this.slots;
    let to = 0;
    for (let from = 0; from < this.end; from++) {
      const member = slots[from];
      if (member === undefined) continue;
      if (from !== to) {
        slots[to] = member;
        member[kSlot] = to;
      }
      to++;
    }
    slots.fill(undefined, to, this.end);
    this.end = to;
  }
}
