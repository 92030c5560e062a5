/**
 * A server that is going away (a deploy, a scale-in) says in its close reason how long
 * clients should spread their reconnects over, so that the connections of a node that
 * stops do not all land on the others in the same instant. The hint is plain text that a
 * person reading a close event understands, in a form the SDK reads:
 *
 *   "server shutting down; reconnect within 5000 ms"
 *
 * A client picks a uniformly random delay in [0, window) (full jitter). Clients that do
 * not know the hint still see 1001 and reconnect with their own backoff.
 */

/** The longest window a hint may ask for (ms): past it a client would look dead to its user. */
export const MAX_RECONNECT_WINDOW = 5 * 60_000;

const HINT = /(?:^|; )reconnect within (\d{1,6}) ms$/;

/** A close reason carrying `window` (ms): `what`, then the hint. */
export function withReconnectHint(what: string, window: number): string {
  if (!Number.isInteger(window) || window < 0 || window > MAX_RECONNECT_WINDOW) {
    throw new RangeError(`reconnect window must be a whole number of ms from 0 to ${MAX_RECONNECT_WINDOW}, not ${window}`);
  }
  return window === 0 ? what : `${what}; reconnect within ${window} ms`;
}

/** The window (ms) a close reason asks reconnects to be spread over, or null when it asks nothing. */
export function reconnectWindowOf(reason: string): number | null {
  const match = HINT.exec(reason);
  if (match === null) return null;
  const window = Number(match[1]);
  return window <= MAX_RECONNECT_WINDOW ? window : null;
}
