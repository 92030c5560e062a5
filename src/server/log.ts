/** How much a {@link Logger} writes: its level and those above it; `silent` writes nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, string | number | boolean | undefined>;

/** Structured logs: one JSON object per line, with the time, level and event first. */
export class Logger {
  constructor(
    /** The least severe level written (default `info`: connections open and close; `debug` adds every message). */
    readonly level: LogLevel = 'info',
    private readonly write: (line: string) => void = (line) => process.stdout.write(line),
  ) {}

  /** Whether a line at `level` would be written: check before building costly fields. */
  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.level];
  }

  /** Writes one line `{time, level, event, ...fields}` if `level` is enabled; undefined fields are left out. */
  log(level: Exclude<LogLevel, 'silent'>, event: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    this.write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`);
  }
}
