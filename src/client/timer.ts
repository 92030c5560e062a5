/** The longest delay setTimeout keeps (2^31 − 1 ms, 24.8 days); a longer one fires at once. */
export const MAX_TIMEOUT = 0x7fffffff;

/**
 * One pending callback, owned by whatever it belongs to (a request, a connection, a channel)
 * and cleared with it. Setting it again replaces what was set. A delay past setTimeout's
 * range is waited for in steps towards its deadline, so that credentials valid for months
 * are not refreshed at once.
 */
export class Timer {
  private handle: ReturnType<typeof setTimeout> | undefined;

  /** Runs `callback` once, `ms` from now. */
  set(ms: number, callback: () => void): void {
    this.clear();
    const due = Date.now() + ms;
    const wait = (left: number): void => {
      this.handle =
        left > MAX_TIMEOUT
          ? setTimeout(() => wait(due - Date.now()), MAX_TIMEOUT)
          : setTimeout(() => {
              this.handle = undefined;
              callback();
            }, left);
    };
    wait(ms);
  }

  clear(): void {
    clearTimeout(this.handle);
    this.handle = undefined;
  }

  /** Whether a callback is waiting. */
  get armed(): boolean {
    return this.handle !== undefined;
  }
}
