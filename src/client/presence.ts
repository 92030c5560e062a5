import type { JsonObject, Member } from '../wire/index.js';

/** What the server answered to a `presence` request. */
export interface PresenceSnapshot {
  /** The members, up to the server's bound; empty on a channel whose member list is off. */
  members: Member[];
  /** Subscribers of the channel on every node. */
  count: number;
  /** True when the server listed only the first members (there are `count`). */
  truncated: boolean;
  /** False when the channel pushes no joins and leaves (its namespace's `joinLeave: false`). */
  joinLeave: boolean;
}

/** What a channel's presence needs from its channel and client. */
export interface PresenceHost {
  /** Asks the server for the channel's members. */
  fetch(): Promise<PresenceSnapshot>;
  /** Sends this client's state (null clears it); resolves once the server took it. */
  send(state: JsonObject | null): Promise<void>;
  /** Whether the channel is subscribed now (a state is sent at once only then). */
  subscribed(): boolean;
}

/**
 * A channel's presence as a live member map, kept by the SDK: filled from the server on
 * every (re)subscription and moved on by the `join`, `update` and `leave` pushes, so that
 * after a reconnect it holds exactly who is there (no ghost left behind by a leave missed
 * while disconnected, no one twice). Events that arrive while a snapshot is on its way are
 * kept and applied on top of it, in order: each event's member (or its absence) is the
 * latest for its client, so replaying them over any snapshot taken meanwhile ends right.
 *
 * Members are keyed by `client`, the public client id the server sets on each of them.
 * This client's own state, once entered, is sent again after every resubscription. The map
 * is kept only once it is used (`get`, `subscribe`, `enter`): a channel nobody asks about
 * costs no `presence` request per subscription.
 */
export class ChannelPresence {
  private readonly map = new Map<string, Member>();
  private listing: Member[] | null = [];
  private total = 0;
  private cut = false;
  private pushed = true;
  private self: string | undefined = undefined;
  private mine: JsonObject | null = null;
  /** Events kept while a snapshot is on its way; null when none is. */
  private pending: Array<[kind: 'join' | 'update' | 'leave', member: Member]> | null = null;
  /** The sync in flight: the answer to any other is stale. */
  private sync: object | null = null;
  private readonly listeners = new Set<(members: readonly Member[]) => void>();
  /** Whether the map is kept (it was used). */
  private kept = false;

  constructor(private readonly host: PresenceHost) {}

  /**
   * The members now, as an array that stays the same object until the next change (so it
   * can back React's useSyncExternalStore). Empty until the first subscription is answered
   * and the server's list arrived.
   */
  get(): readonly Member[] {
    this.keep();
    this.listing ??= [...this.map.values()];
    return this.listing;
  }

  /** Subscribers on every node (the server's count, moved on by joins and leaves). */
  get count(): number {
    return this.total;
  }

  /** True when the server listed only the first of `count` members (its bound): joins and leaves still arrive. */
  get truncated(): boolean {
    return this.cut;
  }

  /**
   * False when the server said this channel pushes no joins and leaves (a namespace with
   * `joinLeave: false`, for big audiences): the map then moves only with state updates
   * and resubscriptions, so it misses who came and went since. Call {@link fetch} for who
   * is there now. True until the server's list says otherwise.
   */
  get joinLeave(): boolean {
    return this.pushed;
  }

  /** This client's own `client` id in the member list, once subscribed. */
  get clientId(): string | undefined {
    return this.self;
  }

  /** Calls `listener` with the members after every change; returns the function that removes it. */
  subscribe(listener: (members: readonly Member[]) => void): () => void {
    this.keep();
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Asks the server for the members (what the live map is filled from). */
  fetch(): Promise<PresenceSnapshot> {
    return this.host.fetch();
  }

  /**
   * Sets this client's presence state on the channel (a cursor, "typing"): the others get
   * an `update`. Kept and sent again after every resubscription, so a connection that drops
   * before the server answered does not fail it; a refusal (`too_large`, `rate_limited`,
   * `bad_request` from the channel's state schema) does.
   */
  enter(state: JsonObject = {}): Promise<void> {
    this.keep();
    this.mine = state;
    return this.host.subscribed() ? this.sendKept(state) : Promise.resolve();
  }

  /** Changes this client's state (the same as {@link enter}). */
  update(state: JsonObject): Promise<void> {
    return this.enter(state);
  }

  /** Clears this client's state; it stays a member while subscribed (every subscriber is present). */
  leave(): Promise<void> {
    const had = this.mine !== null;
    this.mine = null;
    return had && this.host.subscribed() ? this.sendKept(null) : Promise.resolve();
  }

  /** Sends a state; a drop is no failure: the resubscription sends what is kept then. */
  private sendKept(state: JsonObject | null): Promise<void> {
    return this.host.send(state).catch((error: unknown) => {
      if ((error as { code?: unknown }).code !== 'disconnected') throw error;
    });
  }

  // ─────────────── called by the channel ───────────────

  /** @internal The channel was (re)subscribed as `client`: the map is filled afresh, and this client's state sent again. */
  resync(client: string | undefined): void {
    this.self = client;
    if (this.kept) this.fill();
  }

  /** Starts keeping the map: at once if subscribed, else from the next subscription. */
  private keep(): void {
    if (this.kept) return;
    this.kept = true;
    if (this.host.subscribed()) this.fill();
  }

  /** Fills the map from the server, sending this client's state first. */
  private fill(): void {
    const sync = {};
    this.sync = sync;
    this.pending = [];
    if (this.mine !== null) this.host.send(this.mine).catch(() => {});
    this.host.fetch().then(
      (snapshot) => {
        if (this.sync !== sync) return;
        this.map.clear();
        for (const member of snapshot.members) this.map.set(keyOf(member), member);
        this.total = snapshot.count;
        this.cut = snapshot.truncated;
        this.pushed = snapshot.joinLeave;
        const pending = this.pending ?? [];
        this.pending = null;
        this.sync = null;
        for (const [kind, member] of pending) this.apply(kind, member);
        this.changed();
      },
      () => {
        // No snapshot (the connection dropped, or presence is not readable): the next
        // subscription tries again; events go on moving the map meanwhile.
        if (this.sync !== sync) return;
        const pending = this.pending ?? [];
        this.pending = null;
        this.sync = null;
        for (const [kind, member] of pending) this.apply(kind, member);
        this.changed();
      },
    );
  }

  /** @internal A `join`, `update` or `leave` push. */
  event(kind: 'join' | 'update' | 'leave', member: Member): void {
    if (!this.kept) return;
    if (this.pending !== null) return void this.pending.push([kind, member]);
    this.apply(kind, member);
    this.changed();
  }

  /** @internal The subscription ended for good (unsubscribed, refused): nobody is known to be there. */
  clear(): void {
    this.sync = null;
    this.pending = null;
    this.self = undefined;
    if (this.map.size === 0 && this.total === 0) return;
    this.map.clear();
    this.total = 0;
    this.cut = false;
    this.changed();
  }

  private apply(kind: 'join' | 'update' | 'leave', member: Member): void {
    const key = keyOf(member);
    const known = this.map.has(key);
    if (kind === 'leave') {
      if (known) this.map.delete(key);
      // A member past a truncated list still counts.
      if (known || this.cut) this.total = Math.max(0, this.total - 1);
      return;
    }
    if (kind === 'join' && !known) this.total++;
    // Past the server's bound the list stays its first members; the count moves on.
    if (known || !this.cut) this.map.set(key, member);
  }

  private changed(): void {
    this.listing = null;
    const members = this.get();
    for (const listener of [...this.listeners]) {
      try {
        listener(members);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/** A member's key: the `client` id the server sets (a member without one is keyed by its JSON). */
function keyOf(member: Member): string {
  const client = member['client'];
  return typeof client === 'string' ? client : JSON.stringify(member);
}
