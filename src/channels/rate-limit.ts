/** A rate and the burst allowed above it. */
export interface RateLimit {
  /** Sustained operations per second. */
  perSecond: number;
  /** Operations allowed at once before the rate applies (default: perSecond). */
  burst?: number;
}

/** A token bucket: `take()` is true while the rate (with its burst) is respected. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private readonly rate: number;
  private readonly capacity: number;

  constructor(limit: RateLimit, now: number) {
    this.rate = limit.perSecond / 1000;
    this.capacity = limit.burst ?? limit.perSecond;
    this.tokens = this.capacity;
    this.updatedAt = now;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updatedAt) * this.rate);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
