/**
 * Timing and statistics for micro-benchmarks: time-boxed sampling with an untimed setup
 * step, medians, and a forced garbage collection between samples.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Monotonic time in nanoseconds, as a number (exact well past a day of uptime). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/** One measurement: how many iterations ran, and the time spent inside the timed part. */
export interface Sample {
  iterations: number;
  /** Wall-clock time inside the timed part. */
  seconds: number;
  /**
   * CPU time (user + system, all of the process's threads) inside the timed part. Unlike
   * wall time it does not grow while other processes hold the CPU, so on a shared or busy
   * machine it is the steadier measure of the work done.
   */
  cpuSeconds: number;
  /**
   * Minor page faults during the sample (timed and untimed parts). Fresh memory that the
   * allocator maps in costs a fault per page, which on some virtual machines is slow
   * enough to dominate allocation-heavy work; this tells such samples apart.
   */
  pageFaults: number;
}

export interface SampleOptions {
  /** Keep iterating until the timed part has used this much time. */
  budgetMs: number;
  /** Run at least this many iterations even past the budget (default 1). */
  minIterations?: number;
  /** Untimed work before each iteration (restore inputs, reset state). */
  prepare?: () => void;
}

/**
 * Calls `run` repeatedly until its accumulated wall-clock run time reaches the budget. Only `run` is
 * timed; `prepare` (for example copying a fresh input that `run` consumes) is not.
 */
export function sample(run: () => void, options: SampleOptions): Sample {
  const budgetNs = options.budgetMs * 1e6;
  const minIterations = options.minIterations ?? 1;
  const prepare = options.prepare;
  const faultsBefore = process.resourceUsage().minorPageFault;
  let elapsed = 0;
  let cpuMicros = 0;
  let iterations = 0;
  while (elapsed < budgetNs || iterations < minIterations) {
    if (prepare !== undefined) prepare();
    const cpuStart = process.cpuUsage();
    const start = nowNs();
    run();
    elapsed += nowNs() - start;
    const cpu = process.cpuUsage(cpuStart);
    cpuMicros += cpu.user + cpu.system;
    iterations++;
  }
  const pageFaults = process.resourceUsage().minorPageFault - faultsBefore;
  return { iterations, seconds: elapsed / 1e9, cpuSeconds: cpuMicros / 1e6, pageFaults };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The median of the per-round ratios `a[i] / b[i]`. When the machine's speed drifts between
 * rounds (shared hosts, thermal limits), contenders measured back to back in the same round
 * see the same conditions, so their ratio is steadier than the ratio of their medians.
 */
export function medianRatio(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError('medianRatio: lists of different lengths');
  return median(a.map((value, i) => value / b[i]!));
}

/** (max - min) / median: how far apart the rounds were, as a fraction of the median. */
export function relativeSpread(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = median(values);
  return m === 0 ? 0 : (Math.max(...values) - Math.min(...values)) / m;
}

let cachedGc: (() => void) | null | undefined;

/**
 * A function that forces a full garbage collection: `global.gc` when Node runs with
 * --expose-gc, otherwise one obtained by enabling the flag at run time.
 */
export function getGc(): () => void {
  if (cachedGc != null) return cachedGc;
  const exposed: unknown = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') {
    cachedGc = () => void (exposed as () => void)();
    return cachedGc;
  }
  setFlagsFromString('--expose-gc');
  const fromContext: unknown = runInNewContext('gc');
  cachedGc = typeof fromContext === 'function' ? () => void (fromContext as () => void)() : () => {};
  return cachedGc;
}

/**
 * Lets pending callbacks (nextTick, immediates) run between samples and, with `collect`,
 * forces a full garbage collection. A forced collection keeps one contender's garbage out
 * of the next one's sample, but it also resets V8's heap sizing, which can slow down
 * allocation-heavy code for a while afterwards; so it is opt-in.
 */
export async function settle(collect = false): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (collect) getGc()();
}

/** A set of named values, one list per name, gathered over rounds. */
export class Samples {
  private readonly values = new Map<string, number[]>();

  add(key: string, value: number): void {
    let list = this.values.get(key);
    if (list === undefined) {
      list = [];
      this.values.set(key, list);
    }
    list.push(value);
  }

  get(key: string): readonly number[] {
    return this.values.get(key) ?? [];
  }

  median(key: string): number {
    return median(this.get(key));
  }

  spread(key: string): number {
    return relativeSpread(this.get(key));
  }
}

/** `items` rotated left by `by` places: used to vary the order contenders run in per round. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  if (items.length === 0) return [];
  const k = ((by % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
