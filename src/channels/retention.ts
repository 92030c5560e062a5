/** Something an engine keeps (a history entry, a publish key) and what it costs. */
export interface Retained {
  /** Counted against the ledger's limit while live. */
  cost: number;
  /** False once its owner dropped it (trimmed, expired, forgotten) or the ledger evicted it. */
  live: boolean;
}

/**
 * Everything a memory engine retains, across channels, in the order it was added: the
 * total of what is live is kept under `maxBytes` by evicting the oldest first, whatever its
 * channel. Owners drop entries themselves too (per-channel size and age limits); those stay
 * in the queue as dead entries until they reach its front, and the queue is compacted when
 * dead ones outnumber the live, so its length follows what is live.
 */
export class RetentionLedger<Owner> {
  /** What live entries cost now. */
  bytes = 0;
  /** Slots before `head` are emptied as they are passed, so nothing evicted stays reachable. */
  private queue: Array<{ owner: Owner; entry: Retained } | undefined> = [];
  private head = 0;
  private liveCount = 0;

  constructor(
    private readonly maxBytes: number,
    /** Takes an evicted entry out of its owner's storage. */
    private readonly evict: (owner: Owner, entry: Retained) => void,
  ) {}

  /** Entries in the queue, dead ones included (for tests). */
  get length(): number {
    return this.queue.length - this.head;
  }

  add(owner: Owner, entry: Retained): void {
    this.queue.push({ owner, entry });
    this.bytes += entry.cost;
    this.liveCount++;
    while (this.bytes > this.maxBytes && this.head < this.queue.length) {
      const oldest = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      if (!oldest.entry.live) continue;
      this.released(oldest.entry);
      this.evict(oldest.owner, oldest.entry);
    }
    this.compact();
  }

  /** Its owner dropped an entry: it no longer counts. */
  released(entry: Retained): void {
    if (!entry.live) return;
    entry.live = false;
    this.bytes -= entry.cost;
    this.liveCount--;
  }

  /** Drops the passed slots and the dead entries once they are the larger part of the queue. */
  private compact(): void {
    if (this.queue.length < 1024 || this.queue.length < 2 * this.liveCount) return;
    this.queue = this.queue.slice(this.head).filter((item) => item!.entry.live);
    this.head = 0;
  }
}
