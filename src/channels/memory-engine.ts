import type { Member } from '../wire/index.js';
import { ChannelError } from './channel-error.js';
import {
  retentionFor,
  retentionOf,
  type ChannelMessage,
  type Engine,
  type EngineListener,
  type HistoryQuery,
  type HistoryResult,
  type PublishOptions,
  type PublishResult,
  type RetentionOptions,
  type StreamPosition,
} from './engine.js';
import { RetentionLedger, type Retained } from './retention.js';

/** A {@link MemoryEngine}'s retention and its bounds on memory. */
export interface MemoryEngineOptions extends RetentionOptions {
  /**
   * What history and publish keys may hold across all channels, in UTF-16 code units of
   * their data, keys and channel names plus {@link ENTRY_OVERHEAD} per entry (default 64 MiB).
   * Past it the oldest entries go first, whatever their channel: a recovery from before
   * them answers recovered:false.
   */
  maxHistoryBytes?: number;
  /**
   * Channels held at once (default 50000; an idle one costs about 1 KiB). Past it, the channel without subscribers or
   * members published to least recently is forgotten with its history (its epoch ends);
   * when every channel has subscribers, a publish to a new channel is refused `too_large`.
   */
  maxChannels?: number;
}

export const DEFAULT_MAX_HISTORY_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_CHANNELS = 50_000;
/** What a history entry or a key costs besides its strings (its objects), counted against maxHistoryBytes. */
export const ENTRY_OVERHEAD = 128;
/** Channels looked at, at most, for one to forget when a new one is needed past maxChannels. */
const EVICTION_SCAN = 64;

interface Stored extends Retained {
  message: ChannelMessage;
  at: number;
}

interface SeenKey extends Retained {
  /** Its key in the channel's map (scoped to the publisher). */
  key: string;
  offset: number;
  at: number;
  /** A digest of the data it published: the same key with other data is refused. */
  digest: string;
}

interface ChannelState {
  name: string;
  epoch: string;
  offset: number;
  /** Oldest first. */
  history: Stored[];
  /** Publish keys (scoped to their publisher) and the offset each got, oldest first (Map keeps insertion order). */
  keys: Map<string, SeenKey>;
  subscribed: boolean;
  localSubscribers: number;
  /** Presence: client key -> its member, its JSON (to tell an update from a repeat) and the connection holding it. */
  members: Map<string, { member: Member; json: string; owner: string | undefined }>;
  /** Its history size and age (the engine's, or its own through channelRetention). */
  historySize: number;
  historyTtl: number;
}

let epochCounter = 0;

/** A new epoch: unique within this process and, with the clock and randomness, across restarts. */
function newEpoch(now: number): string {
  epochCounter = (epochCounter + 1) % 1296;
  return now.toString(36) + epochCounter.toString(36).padStart(2, '0') + Math.floor(Math.random() * 36 ** 4).toString(36);
}

/**
 * The embedded engine: everything in this process, nothing to set up. Memory is bounded by
 * `historySize` and `historyTtl` per channel, and across channels by `maxHistoryBytes` and
 * `maxChannels`; a channel with no subscribers, members, history or keys is forgotten, and
 * comes back with a new epoch (its offsets restart, so a client resuming from before cannot
 * be confused). Reading a channel that does not exist creates nothing. A restart loses
 * everything: new epochs.
 */
export class MemoryEngine implements Engine {
  private readonly channels = new Map<string, ChannelState>();
  private listener: EngineListener | null = null;
  private readonly retention: Required<RetentionOptions>;
  private readonly historyTtl: number;
  private readonly idempotencyWindow: number;
  private readonly maxChannels: number;
  private readonly ledger: RetentionLedger<ChannelState>;
  private readonly now: () => number;
  private sweeper: ReturnType<typeof setInterval> | null = null;

  readonly healthy = true;

  constructor(options: MemoryEngineOptions = {}) {
    this.retention = retentionOf(options);
    ({ historyTtl: this.historyTtl, idempotencyWindow: this.idempotencyWindow, now: this.now } = this.retention);
    this.maxChannels = options.maxChannels ?? DEFAULT_MAX_CHANNELS;
    this.ledger = new RetentionLedger(options.maxHistoryBytes ?? DEFAULT_MAX_HISTORY_BYTES, (state, entry) => this.evictEntry(state, entry));
  }

  start(listener: EngineListener): Promise<void> {
    this.listener = listener;
    // Idle channels are trimmed and forgotten here; busy ones as they are used.
    const period = Math.max(1_000, Math.min(this.idempotencyWindow, this.historyTtl || this.idempotencyWindow) / 4);
    this.sweeper = setInterval(() => this.sweep(), period);
    this.sweeper.unref?.();
    return Promise.resolve();
  }

  publish(channel: string, data: string, options: PublishOptions = {}): Promise<PublishResult> {
    const now = this.now();
    const state = this.channels.get(channel) ?? this.newChannel(channel, now, true);
    if (state === null) {
      return Promise.reject(new ChannelError('too_large', `the server holds its maximum of ${this.maxChannels} channels, all of them in use`));
    }
    // Most recently published last: the order in which idle channels are forgotten.
    this.channels.delete(channel);
    this.channels.set(channel, state);
    this.trim(state, now);
    const key = options.key === undefined ? undefined : scopedKey(options.key, options.publisher);
    const digest = key === undefined ? '' : dataDigest(data);
    if (key !== undefined) {
      const seen = state.keys.get(key);
      if (seen !== undefined) {
        const repeat: PublishResult = { epoch: state.epoch, offset: seen.offset, duplicate: true, subscribers: 0 };
        if (seen.digest !== digest) repeat.conflict = true;
        return Promise.resolve(repeat);
      }
    }
    const message: ChannelMessage = { channel, epoch: state.epoch, offset: ++state.offset, data };
    if (state.historySize > 0) {
      const stored: Stored = { message, at: now, cost: ENTRY_OVERHEAD + channel.length + data.length, live: true };
      state.history.push(stored);
      if (state.history.length > state.historySize) this.ledger.released(state.history.shift()!);
      this.ledger.add(state, stored);
    }
    if (key !== undefined) {
      const seen: SeenKey = { key, offset: message.offset, at: now, digest, cost: ENTRY_OVERHEAD + key.length, live: true };
      state.keys.set(key, seen);
      this.ledger.add(state, seen);
    }
    if (state.subscribed) this.listener?.message(message);
    return Promise.resolve({ epoch: state.epoch, offset: message.offset, duplicate: false, subscribers: state.localSubscribers });
  }

  subscribe(channel: string): Promise<void> {
    this.state(channel, this.now()).subscribed = true;
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    const state = this.channels.get(channel);
    if (state !== undefined) {
      state.subscribed = false;
      this.forgetIfIdle(channel, state);
    }
    return Promise.resolve();
  }

  history(channel: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    const now = this.now();
    const state = this.channels.get(channel);
    // Nothing to read, and nothing created: the epoch is new, so no `since` recovers.
    if (state === undefined) return Promise.resolve({ position: { epoch: newEpoch(now), offset: 0 }, messages: [], recovered: false });
    this.trim(state, now);
    const position: StreamPosition = { epoch: state.epoch, offset: state.offset };
    const since = query.since;
    let messages: ChannelMessage[];
    let recovered = false;
    if (since !== undefined && this.canRecover(state, since)) {
      recovered = true;
      // Offsets are contiguous in history, so the first one to send sits at a known index.
      const first = state.history.length === 0 ? state.offset + 1 : state.history[0]!.message.offset;
      messages = state.history.slice(since.offset + 1 - first).map((s) => s.message);
    } else if (since !== undefined) {
      messages = [];
    } else {
      const end = query.before === undefined ? state.history.length : this.indexOf(state, query.before);
      const limit = query.limit ?? end;
      messages = state.history.slice(Math.max(0, end - limit), end).map((s) => s.message);
    }
    if (since !== undefined && query.limit !== undefined && messages.length > query.limit) {
      // Recovery cannot be partial: more than the caller can take is not recovered.
      return Promise.resolve({ position, messages: [], recovered: false });
    }
    return Promise.resolve({ position, messages, recovered });
  }

  setLocalSubscriberCount(channel: string, count: number): void {
    const state = this.channels.get(channel);
    if (state !== undefined) state.localSubscribers = count;
    else if (count > 0) this.state(channel, this.now()).localSubscribers = count;
  }

  publishEphemeral(channel: string, data: string, client?: string): Promise<number> {
    // Nothing is created or kept: a channel nobody subscribed to has nobody to tell.
    const state = this.channels.get(channel);
    if (state === undefined) return Promise.resolve(0);
    if (state.subscribed) this.listener?.ephemeral?.(channel, data, client);
    return Promise.resolve(state.localSubscribers);
  }

  subscriberCount(channel: string): Promise<number> {
    return Promise.resolve(this.channels.get(channel)?.localSubscribers ?? 0);
  }

  join(channel: string, client: string, member: Member, owner?: string): Promise<void> {
    const state = this.state(channel, this.now());
    const known = state.members.get(client);
    const json = JSON.stringify(member);
    state.members.set(client, { member, json, owner });
    const kind = known === undefined ? 'join' : known.json !== json ? 'update' : null;
    if (kind !== null && state.subscribed) this.listener?.presence({ channel, kind, client, member });
    return Promise.resolve();
  }

  leave(channel: string, client: string, owner?: string): Promise<void> {
    const state = this.channels.get(channel);
    const entry = state?.members.get(client);
    if (state !== undefined && entry !== undefined && (owner === undefined || entry.owner === owner)) {
      state.members.delete(client);
      if (state.subscribed) this.listener?.presence({ channel, kind: 'leave', client, member: entry.member });
      this.forgetIfIdle(channel, state);
    }
    return Promise.resolve();
  }

  members(channel: string, limit = Infinity): Promise<Member[]> {
    const out: Member[] = [];
    for (const entry of this.channels.get(channel)?.members.values() ?? []) {
      if (out.length >= limit) break;
      out.push(entry.member);
    }
    return Promise.resolve(out);
  }

  memberCount(channel: string): Promise<number> {
    return Promise.resolve(this.channels.get(channel)?.members.size ?? 0);
  }

  close(): Promise<void> {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    this.listener = null;
    return Promise.resolve();
  }

  /** Channels held now (for tests and metrics). */
  get channelCount(): number {
    return this.channels.size;
  }

  /** What history and keys hold now, as counted against maxHistoryBytes. */
  get retainedBytes(): number {
    return this.ledger.bytes;
  }

  private state(channel: string, now: number): ChannelState {
    return this.channels.get(channel) ?? this.newChannel(channel, now, false)!;
  }

  /**
   * A new channel; past maxChannels another one is forgotten first. Only a publish
   * (`required`) is refused (null) when none can be: subscriptions are bounded per connection.
   */
  private newChannel(channel: string, now: number, required: boolean): ChannelState | null {
    if (this.channels.size >= this.maxChannels && !this.forgetOldest() && required) return null;
    const state: ChannelState = {
      name: channel,
      epoch: newEpoch(now),
      offset: 0,
      history: [],
      keys: new Map(),
      subscribed: false,
      localSubscribers: 0,
      members: new Map(),
      ...retentionFor(this.retention, channel),
    };
    this.channels.set(channel, state);
    return state;
  }

  /**
   * Forgets the least recently published channel that nobody uses (no subscriber, no
   * member), with its history and keys. Channels in use that it passes move to the back,
   * so the next search starts past them.
   */
  private forgetOldest(): boolean {
    let looked = 0;
    for (const [channel, state] of this.channels) {
      if (looked++ >= EVICTION_SCAN) break;
      if (state.subscribed || state.localSubscribers > 0 || state.members.size > 0) {
        this.channels.delete(channel);
        this.channels.set(channel, state);
        continue;
      }
      for (const stored of state.history) this.ledger.released(stored);
      for (const seen of state.keys.values()) this.ledger.released(seen);
      this.channels.delete(channel);
      return true;
    }
    return false;
  }

  /** The ledger's oldest entry goes past maxHistoryBytes: it is the oldest of its channel too. */
  private evictEntry(state: ChannelState, entry: Retained): void {
    if ('message' in entry) {
      const at = state.history[0] === entry ? 0 : state.history.indexOf(entry as Stored);
      if (at >= 0) state.history.splice(at, 1);
    } else {
      state.keys.delete((entry as SeenKey).key);
    }
    this.forgetIfIdle(state.name, state);
  }

  /** Where `offset` is, or would be, in history: offsets are contiguous there. */
  private indexOf(state: ChannelState, offset: number): number {
    const first = state.history[0]?.message.offset ?? state.offset + 1;
    return Math.min(state.history.length, Math.max(0, offset - first));
  }

  private canRecover(state: ChannelState, since: StreamPosition): boolean {
    if (since.epoch !== state.epoch || since.offset > state.offset) return false;
    if (since.offset === state.offset) return true;
    const oldest = state.history[0]?.message.offset;
    // Everything after since.offset must still be here.
    return oldest !== undefined && oldest <= since.offset + 1;
  }

  private trim(state: ChannelState, now: number): void {
    if (state.historyTtl > 0) {
      const cutoff = now - state.historyTtl;
      let drop = 0;
      while (drop < state.history.length && state.history[drop]!.at <= cutoff) drop++;
      if (drop > 0) for (const stored of state.history.splice(0, drop)) this.ledger.released(stored);
    }
    const keyCutoff = now - this.idempotencyWindow;
    for (const [key, seen] of state.keys) {
      if (seen.at > keyCutoff) break;
      state.keys.delete(key);
      this.ledger.released(seen);
    }
  }

  private forgetIfIdle(channel: string, state: ChannelState): void {
    if (
      !state.subscribed &&
      state.localSubscribers === 0 &&
      state.members.size === 0 &&
      state.history.length === 0 &&
      state.keys.size === 0
    ) {
      this.channels.delete(channel);
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const [channel, state] of this.channels) {
      this.trim(state, now);
      this.forgetIfIdle(channel, state);
    }
  }
}

/** A key in the space of its publisher: the same key from another publisher is another key. */
function scopedKey(key: string, publisher: string | undefined): string {
  return publisher === undefined ? `:${key}` : `${publisher.length}:${publisher}:${key}`;
}

/**
 * A 64-bit digest of published data (two FNV-1a hashes with different seeds), to tell a
 * repeat of a keyed publish from a reuse of its key with other data. Not cryptographic: a
 * key's scope holds only its own publisher's data, so nobody else can aim at a collision.
 */
function dataDigest(data: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ data.length;
  for (let i = 0; i < data.length; i++) {
    const c = data.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  return (a >>> 0).toString(36) + '.' + (b >>> 0).toString(36);
}
