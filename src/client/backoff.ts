/** The largest reconnect delay unless told (ms). */
export const DEFAULT_BACKOFF_MAX = 30_000;

/** Reconnection delays: exponential backoff with full jitter. */
export interface BackoffOptions {
  /** First delay's upper bound (ms, default 1000). */
  initial?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Largest delay (ms, default 30000). */
  max?: number;
  /** Attempts before giving up (default Infinity). */
  retries?: number;
}

/**
 * The delay before reconnect attempt `attempt` (0-based): a uniformly random time up to
 * min(max, initial × factor^attempt). Full jitter spreads clients that lost the same
 * server across the whole window instead of bringing them back in synchronized waves.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initial ?? 1000;
  const factor = options.factor ?? 2;
  const max = options.max ?? DEFAULT_BACKOFF_MAX;
  const ceiling = Math.min(max, initial * Math.pow(factor, attempt));
  return Math.floor(random() * ceiling);
}
