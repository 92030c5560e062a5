/** How many recent API calls the inspector is shown. */
const RECENT_CALLS = 100;
/** How much of a request body the inspector shows, with previews on. */
const PREVIEW = 160;

/** One API call, as the inspector shows it: never the key; the body's start only with previews on. */
export interface ApiCallRecord {
  time: number;
  /** The method called, or `unknown` for a path that names none (so labels stay bounded). */
  method: string;
  status: number;
  /** The error's code, when it failed. */
  code?: string;
  /** ms from the request's headers to its answer. */
  duration: number;
  /** The start of the body, with previews on. */
  preview?: string;
}

/**
 * Counts the HTTP API's calls by method and status (for /metrics) and keeps the last ones
 * (for the inspector). Methods are the API's names or `unknown`, statuses a few dozen:
 * the counters stay small whatever paths callers invent.
 */
export class ApiCallLog {
  private readonly counts = new Map<string, number>();
  private readonly recent: ApiCallRecord[] = [];
  private total = 0;

  constructor(private readonly previews: boolean) {}

  record(call: Omit<ApiCallRecord, 'preview'>, body?: Buffer): void {
    const label = `${call.method} ${call.status}`;
    this.counts.set(label, (this.counts.get(label) ?? 0) + 1);
    this.total++;
    const kept: ApiCallRecord = { ...call };
    if (this.previews && body !== undefined && body.length > 0) kept.preview = body.subarray(0, PREVIEW).toString('utf8');
    this.recent.push(kept);
    if (this.recent.length > RECENT_CALLS) this.recent.shift();
  }

  /** Calls so far, by method and status. */
  counters(): Array<{ method: string; status: string; count: number }> {
    return [...this.counts].map(([label, count]) => {
      const [method, status] = label.split(' ') as [string, string];
      return { method, status, count };
    });
  }

  /** The last calls, oldest first, and how many there were in all. */
  latest(): { calls: ApiCallRecord[]; total: number } {
    return { calls: [...this.recent], total: this.total };
  }
}
