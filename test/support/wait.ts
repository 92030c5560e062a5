// Waiting in tests, in one place. A test waits on the event that matters where there is one
// (a message, a close, a line a process prints) and on mocked timers for timer logic; these
// are for the rest: `waitFor` polls state that announces nothing (a server's counters, a
// page's DOM), `within` bounds a promise, and `sleep` is a deliberate real wait, which its
// caller names for what it proves (that nothing arrives within a window) or paces a load with.
//
// They keep the real clock: timers are taken when this module loads, so a test that mocks
// timers (t.mock.timers) can still wait here for a real socket.

const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const now = (): number => performance.now();

/** How long a wait may take by default before it fails: generous, the suite shares the machine. */
export const WAIT_MS = 15_000;

export interface WaitOptions {
  /** Fails after this many ms (default {@link WAIT_MS}). */
  ms?: number;
  /** Looks again every this many ms (default 5). */
  every?: number;
  /** Describes the state when the wait fails, for the error. */
  state?: () => string;
  /** Errors from `check` count as "not yet" (a page between two loads); the last one is named on failure. */
  tolerate?: boolean;
}

/** A real wait of `ms`: only for what has no event (see the header). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, Math.max(0, ms)));
}

/**
 * Waits until `check` gives something other than false, null or undefined, and resolves with
 * it; fails naming `what` after `options.ms` (or `options` itself, a number of ms).
 */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, options: number | WaitOptions = {}): Promise<Exclude<T, false | null | undefined>> {
  const { ms = WAIT_MS, every = 5, state, tolerate = false } = typeof options === 'number' ? { ms: options } : options;
  const deadline = now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== false && value !== null && value !== undefined) return value as Exclude<T, false | null | undefined>;
    } catch (error) {
      if (!tolerate) throw error;
      last = error;
    }
    if (now() > deadline) {
      const lastError = last instanceof Error ? ` (last error: ${last.message})` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${state === undefined ? '' : `: ${state()}`}${lastError}`);
    }
    await sleep(every);
  }
}

/** Settles as `promise` does, or fails naming `what` when it takes longer than `ms`. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = realSetTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => realClearTimeout(timer));
}

/**
 * A real wait in which whatever must not come (a delivery, a retry, a second answer) would
 * have come, before the test asserts that it did not. No event marks "nothing": keep these
 * short, after the last thing that must come.
 */
export function quietWindow(ms: number): Promise<void> {
  return sleep(ms);
}
