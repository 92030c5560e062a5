import type { RequestOp } from '../wire/index.js';
import { TokenBucket, type RateLimit } from './rate-limit.js';

/** The ops limited when they arrive, before they wait their turn (so a refused one is never queued). */
export type ArrivalOp = Extract<RequestOp, 'history' | 'presence' | 'unsub' | 'ping' | 'auth'>;

/** Each arrival-limited op: its default rate and what its refusal says. */
export const ARRIVAL_LIMITS: Readonly<Record<ArrivalOp, { limit: RateLimit; refusal: string }>> = {
  history: { limit: { perSecond: 20, burst: 100 }, refusal: 'reading history too fast' },
  presence: { limit: { perSecond: 20, burst: 100 }, refusal: 'asking for presence too fast' },
  unsub: { limit: { perSecond: 100, burst: 1000 }, refusal: 'unsubscribing too fast' },
  ping: { limit: { perSecond: 10, burst: 50 }, refusal: 'pinging too fast' },
  auth: { limit: { perSecond: 1, burst: 10 }, refusal: 'authenticating too fast' },
};

export const DEFAULT_MAX_PENDING_REQUESTS = 256;
export const DEFAULT_MAX_PENDING_BYTES = 1024 * 1024;

export interface IntakeOptions {
  /** Rates of the arrival-limited ops (defaults: {@link ARRIVAL_LIMITS}). */
  rates: Partial<Record<ArrivalOp, RateLimit>>;
  maxPendingRequests?: number;
  maxPendingBytes?: number;
}

/** What the intake needs of a connection to stop and restart reading it. */
export interface Pausable {
  pause?(): void;
  resume?(): void;
}

/**
 * One connection's request intake: the rate of the ops limited on arrival, and the requests
 * read but not yet answered. At the bound (a count, or their text's length) reading pauses
 * until half of them are answered; requests that were already read meanwhile still wait
 * their turn, so only what one socket read holds can pass the bound. A connection that
 * cannot pause is refused past the bound instead.
 */
export class RequestIntake {
  /** Requests admitted and not yet released, and their text's length. */
  pending = 0;
  pendingBytes = 0;
  paused = false;
  /**
   * Each op's bucket, made when the op first arrives: a bucket made then is as full as one
   * made at connect. Null until the first: a connection that only subscribes makes none.
   */
  private buckets: Partial<Record<ArrivalOp, TokenBucket>> | null = null;

  /** @param options Shared by every connection of a hub: read on use, not copied into each. */
  constructor(
    private readonly options: IntakeOptions,
    private readonly connection: Pausable,
  ) {}

  private get maxCount(): number {
    return this.options.maxPendingRequests ?? DEFAULT_MAX_PENDING_REQUESTS;
  }

  private get maxBytes(): number {
    return this.options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
  }

  /** Why this op may not be taken now (it came too fast), or null. Ops without an arrival limit pass. */
  refusal(op: RequestOp, now: number): string | null {
    if (!Object.hasOwn(ARRIVAL_LIMITS, op)) return null;
    const arrival = op as ArrivalOp;
    const buckets = (this.buckets ??= {});
    const bucket = (buckets[arrival] ??= new TokenBucket(this.options.rates[arrival] ?? ARRIVAL_LIMITS[arrival].limit, now));
    return bucket.take(now) ? null : ARRIVAL_LIMITS[arrival].refusal;
  }

  /**
   * Counts a request of `size` characters in flight: 'paused' when it made reading pause,
   * 'refused' when the connection cannot pause and the bound is reached (not counted).
   */
  admit(size: number): 'admitted' | 'paused' | 'refused' {
    const pausable = this.connection.pause !== undefined && this.connection.resume !== undefined;
    if (!pausable && this.full()) return 'refused';
    this.pending++;
    this.pendingBytes += size;
    if (!pausable || this.paused || !this.full()) return 'admitted';
    this.paused = true;
    this.connection.pause!();
    return 'paused';
  }

  /** A request admitted with `size` was answered; reading resumes once half the bound is free. */
  release(size: number, open: boolean): void {
    this.pending--;
    this.pendingBytes -= size;
    if (!this.paused || !open) return;
    if (this.pending <= this.maxCount / 2 && this.pendingBytes <= this.maxBytes / 2) {
      this.paused = false;
      this.connection.resume!();
    }
  }

  /** The message of a refusal by {@link admit}. */
  get boundMessage(): string {
    return `more than ${this.maxCount} requests waiting for an answer`;
  }

  private full(): boolean {
    return this.pending >= this.maxCount || this.pendingBytes >= this.maxBytes;
  }
}
