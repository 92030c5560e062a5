import type { Member } from '../wire/index.js';
import type {
  ChannelMessage,
  Engine,
  EngineListener,
  HistoryQuery,
  HistoryResult,
  PublishResult,
  StreamPosition,
} from './engine.js';

export interface MemoryEngineOptions {
  /** Messages kept per channel for history and recovery (default 100; 0 keeps none). */
  historySize?: number;
  /** How long a message stays in history (ms, default 300000: 5 minutes; 0 for no limit). */
  historyTtl?: number;
  /** How long a publish key is remembered for idempotent publishes (ms, default 120000). */
  idempotencyWindow?: number;
  /** Clock (ms); tests pass their own. */
  now?: () => number;
}

export const DEFAULT_HISTORY_SIZE = 100;
export const DEFAULT_HISTORY_TTL = 5 * 60_000;
export const DEFAULT_IDEMPOTENCY_WINDOW = 2 * 60_000;

interface Stored {
  message: ChannelMessage;
  at: number;
}

interface ChannelState {
  epoch: string;
  offset: number;
  /** Oldest first. */
  history: Stored[];
  /** Publish keys and the offset each got, oldest first (Map keeps insertion order). */
  keys: Map<string, { offset: number; at: number }>;
  subscribed: boolean;
  localSubscribers: number;
  members: Map<string, Member>;
}

let epochCounter = 0;

/** A new epoch: unique within this process and, with the clock and randomness, across restarts. */
function newEpoch(now: number): string {
  epochCounter = (epochCounter + 1) % 1296;
  return now.toString(36) + epochCounter.toString(36).padStart(2, '0') + Math.floor(Math.random() * 36 ** 4).toString(36);
}

/**
 * The embedded engine: everything in this process, nothing to set up. Memory is bounded by
 * `historySize` and `historyTtl` per channel; a channel with no subscribers, members,
 * history or keys is forgotten, and comes back with a new epoch (its offsets restart, so a
 * client resuming from before cannot be confused). A restart loses everything: new epochs.
 */
export class MemoryEngine implements Engine {
  private readonly channels = new Map<string, ChannelState>();
  private listener: EngineListener | null = null;
  private readonly historySize: number;
  private readonly historyTtl: number;
  private readonly idempotencyWindow: number;
  private readonly now: () => number;
  private sweeper: ReturnType<typeof setInterval> | null = null;

  readonly healthy = true;

  constructor(options: MemoryEngineOptions = {}) {
    this.historySize = options.historySize ?? DEFAULT_HISTORY_SIZE;
    this.historyTtl = options.historyTtl ?? DEFAULT_HISTORY_TTL;
    this.idempotencyWindow = options.idempotencyWindow ?? DEFAULT_IDEMPOTENCY_WINDOW;
    this.now = options.now ?? Date.now;
  }

  start(listener: EngineListener): Promise<void> {
    this.listener = listener;
    // Idle channels are trimmed and forgotten here; busy ones as they are used.
    const period = Math.max(1_000, Math.min(this.idempotencyWindow, this.historyTtl || this.idempotencyWindow) / 4);
    this.sweeper = setInterval(() => this.sweep(), period);
    this.sweeper.unref?.();
    return Promise.resolve();
  }

  publish(channel: string, data: string, options: { key?: string } = {}): Promise<PublishResult> {
    const now = this.now();
    const state = this.state(channel, now);
    this.trim(state, now);
    if (options.key !== undefined) {
      const seen = state.keys.get(options.key);
      if (seen !== undefined) return Promise.resolve({ epoch: state.epoch, offset: seen.offset, duplicate: true });
    }
    const message: ChannelMessage = { channel, epoch: state.epoch, offset: ++state.offset, data };
    if (this.historySize > 0) {
      state.history.push({ message, at: now });
      if (state.history.length > this.historySize) state.history.shift();
    }
    if (options.key !== undefined) state.keys.set(options.key, { offset: message.offset, at: now });
    if (state.subscribed) this.listener?.message(message);
    return Promise.resolve({ epoch: state.epoch, offset: message.offset, duplicate: false });
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
    const state = this.state(channel, now);
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

  subscriberCount(channel: string): Promise<number> {
    return Promise.resolve(this.channels.get(channel)?.localSubscribers ?? 0);
  }

  setLocalSubscriberCount(channel: string, count: number): void {
    const state = this.channels.get(channel);
    if (state !== undefined) state.localSubscribers = count;
    else if (count > 0) this.state(channel, this.now()).localSubscribers = count;
  }

  join(channel: string, client: string, member: Member): Promise<void> {
    const state = this.state(channel, this.now());
    const known = state.members.has(client);
    state.members.set(client, member);
    if (!known && state.subscribed) this.listener?.presence({ channel, kind: 'join', client, member });
    return Promise.resolve();
  }

  leave(channel: string, client: string): Promise<void> {
    const state = this.channels.get(channel);
    const member = state?.members.get(client);
    if (state !== undefined && member !== undefined) {
      state.members.delete(client);
      if (state.subscribed) this.listener?.presence({ channel, kind: 'leave', client, member });
      this.forgetIfIdle(channel, state);
    }
    return Promise.resolve();
  }

  members(channel: string): Promise<Member[]> {
    return Promise.resolve([...(this.channels.get(channel)?.members.values() ?? [])]);
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

  private state(channel: string, now: number): ChannelState {
    let state = this.channels.get(channel);
    if (state === undefined) {
      state = {
        epoch: newEpoch(now),
        offset: 0,
        history: [],
        keys: new Map(),
        subscribed: false,
        localSubscribers: 0,
        members: new Map(),
      };
      this.channels.set(channel, state);
    }
    return state;
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
    if (this.historyTtl > 0) {
      const cutoff = now - this.historyTtl;
      let drop = 0;
      while (drop < state.history.length && state.history[drop]!.at <= cutoff) drop++;
      if (drop > 0) state.history.splice(0, drop);
    }
    const keyCutoff = now - this.idempotencyWindow;
    for (const [key, seen] of state.keys) {
      if (seen.at > keyCutoff) break;
      state.keys.delete(key);
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
