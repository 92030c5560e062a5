/**
 * Bytes a connection may inflate per second, by default. Inflating a highly compressible
 * message costs the server far more than it cost the peer to send it (about 1 KiB on the
 * wire inflates to 1 MiB, some 7 ms of inflating, UTF-8 checking and parsing): 4 MiB/s
 * keeps one connection to a few percent of a core, and is more than any chat or RPC
 * client sends.
 */
export const DEFAULT_INFLATE_RATE = 4 * 1024 * 1024;

/**
 * A token bucket of inflated bytes for one connection. A message is always inflated whole
 * (the message size limit bounds it); what overdraws the budget is paid back by pausing
 * reading from the connection until the budget refills, so nothing is lost: the peer's
 * next messages wait in its socket, and it is slowed to the rate.
 */
export class InflateBudget {
  private tokens: number;
  private updatedAt: number;
  /** How long reading should pause (ms), set when a message overdrew the budget. */
  private owed = 0;

  /**
   * @param rate bytes per second
   * @param burst bytes that may be inflated at once before the rate applies
   */
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now = Date.now(),
  ) {
    this.tokens = burst;
    this.updatedAt = now;
  }

  /** Takes `bytes` just inflated from the budget. */
  spend(bytes: number, now = Date.now()): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) * this.rate) / 1000);
    this.updatedAt = now;
    this.tokens -= bytes;
    if (this.tokens < 0) this.owed = Math.ceil((-this.tokens * 1000) / this.rate);
  }

  /** How long (ms) reading should pause to pay back an overdraft since the last call; 0 for none. */
  takePause(): number {
    const ms = this.owed;
    this.owed = 0;
    return ms;
  }
}

/**
 * The budget of a connection that negotiated permessage-deflate: null when `rate` is 0
 * (no limit). The burst is one second of the rate, or one largest message when that is
 * more: a full budget always covers the next message.
 */
export function inflateBudget(rate: number, maxPayload: number): InflateBudget | null {
  return rate > 0 ? new InflateBudget(rate, Math.max(rate, maxPayload)) : null;
}
