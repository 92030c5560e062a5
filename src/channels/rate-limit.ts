/** A rate and the burst allowed above it. */
export interface RateLimit {
  /** Sustained operations per second. */
  perSecond: number;
  /** Operations allowed at once before the rate applies (default: perSecond). */
  burst?: number;
}

/** A token bucket: `take()` is true while the rate (with its burst) is respected. */
export class TokenBucket {
  // Tokens and time only: the limit is shared, so a connection's bucket keeps no copy of
  // its rate (a boxed double each, on every connection).
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly limit: RateLimit,
    now: number,
  ) {
    this.tokens = limit.burst ?? limit.perSecond;
    this.updatedAt = now;
  }

  take(now: number): boolean {
    this.tokens = this.level(now);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether it has refilled to its burst by `now`: then it is as a new bucket would be. */
  isFull(now: number): boolean {
    const { perSecond, burst = perSecond } = this.limit;
    return this.level(now) >= burst;
  }

  /** The tokens it holds at `now`, refilled since the last take up to the burst. */
  private level(now: number): number {
    const { perSecond, burst = perSecond } = this.limit;
    return Math.min(burst, this.tokens + ((now - this.updatedAt) * perSecond) / 1000);
  }
}
