// Running one target in this thread: the loop (generate, evaluate, minimize what it finds,
// time each input, measure the heap after warm-up and at the end) and its report.
import { performance } from 'node:perf_hooks';
import { evaluate } from './evaluate.js';
import { gc, heapNow } from './heap.js';
import { describeInput, encodeInput, type Target } from './input.js';
import { minimize } from './minimize.js';
import { collectOutcomes } from './outcomes.js';
import { Rng } from './rng.js';

export type FindingKind = 'exception' | 'close-code' | 'invariant' | 'slow' | 'hang' | 'memory';

export interface Finding {
  target: string;
  kind: FindingKind;
  key: string;
  message: string;
  seed: number;
  /** The iteration whose input it is (inputs are a function of seed and iteration); null for memory. */
  iteration: number | null;
  /** encodeInput of the input as generated, and minimized. */
  input: string | null;
  minimized: string | null;
  description: string | null;
}

export interface TargetReport {
  target: string;
  seed: number;
  executions: number;
  elapsedMs: number;
  execsPerSecond: number;
  /** Heap (used + array buffers) after GC at the end of warm-up and at the end of the run. */
  heapBaselineBytes: number;
  heapFinalBytes: number;
  heapGrowthBytes: number;
  memoryBoundBytes: number;
  slowestMs: number;
  findings: Finding[];
  /** How many inputs led to each outcome (error codes, accepted heads, ok ops, …). */
  outcomes: Record<string, number>;
}

export interface RunOptions {
  seed: number;
  /** How long to generate new inputs. */
  ms: number;
  /** An input that takes longer is a `slow` finding (default 2000 ms). */
  budgetMs?: number;
  /** Heap growth across the run that is a `memory` finding (default 32 MiB). */
  memoryBoundBytes?: number;
  /** Time for minimizing each finding (default 5000 ms). */
  minimizeMs?: number;
  /** Distinct findings after which the target stops (default 5). */
  maxFindings?: number;
  /** Called before every execution (the worker's heartbeat). */
  onExecute?(iteration: number, minimizing: boolean): void;
  onFinding?(finding: Finding): void;
}

function kindOf(key: string): FindingKind {
  if (key.startsWith('exception:')) return 'exception';
  if (key.startsWith('close-code:') || key.startsWith('close-frame:') || key.startsWith('no-close-frame:')) return 'close-code';
  return 'invariant';
}



/**
 * Lets the event loop turn. Node releases some resources on a later tick (a zlib
 * handle whose sync call threw is destroyed with process.nextTick), as it would between
 * two reads of a real socket; a loop that never yields would count them as a leak.
 */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Fuzzes one target in this thread for `options.ms`, yielding to the event loop every ~20 ms. */
export async function runTarget(target: Target, options: RunOptions): Promise<TargetReport> {
  const budgetMs = options.budgetMs ?? 2000;
  const memoryBoundBytes = options.memoryBoundBytes ?? 32 * 1024 * 1024;
  const minimizeMs = options.minimizeMs ?? 5000;
  const maxFindings = options.maxFindings ?? 5;
  const findings: Finding[] = [];
  const seen = new Set<string>();
  target.prepare?.();
  const counted = new Map<string, number>();
  const start = performance.now();
  const warmup = Math.min(options.ms * 0.2, 3000);
  let baseline: number | null = null;
  let executions = 0;
  let slowest = 0;
  let fuzzing = 0;
  let lastTurn = performance.now();

  const record = (finding: Finding): void => {
    findings.push(finding);
    options.onFinding?.(finding);
  };

  for (let iteration = 0; findings.length < maxFindings; iteration++) {
    const now = performance.now();
    if (fuzzing >= options.ms || now - start >= options.ms + 60_000) break;
    if (now - lastTurn > 20) {
      await turn();
      lastTurn = performance.now();
    }
    if (baseline === null && fuzzing >= warmup) {
      await turn();
      gc();
      baseline = heapNow();
    }
    const before = performance.now();
    const input = target.generate(new Rng(options.seed, iteration));
    options.onExecute?.(iteration, false);
    const t0 = performance.now();
    collectOutcomes(counted);
    const problem = evaluate(target, input);
    collectOutcomes(null);
    const took = performance.now() - t0;
    executions++;
    if (took > slowest) slowest = took;
    if (problem !== null && !seen.has(problem.key)) {
      seen.add(problem.key);
      const small = minimize(target, input, problem.key, minimizeMs, () => options.onExecute?.(iteration, true));
      record({
        target: target.name,
        kind: kindOf(problem.key),
        key: problem.key,
        message: evaluate(target, small)?.message ?? problem.message,
        seed: options.seed,
        iteration,
        input: encodeInput(input),
        minimized: encodeInput(small),
        description: describeInput(target, small, 512),
      });
    } else if (problem === null && took > budgetMs && !seen.has('slow')) {
      // Wall time on a busy machine includes other processes and GC: slow only if it is slow three times.
      let fastest = took;
      for (let i = 0; i < 2 && fastest > budgetMs; i++) {
        options.onExecute?.(iteration, true);
        const r0 = performance.now();
        evaluate(target, input);
        fastest = Math.min(fastest, performance.now() - r0);
      }
      if (fastest > budgetMs) {
        seen.add('slow');
        record({
          target: target.name,
          kind: 'slow',
          key: 'slow',
          message: `one input took ${fastest.toFixed(0)} ms at best of 3 runs (budget ${budgetMs} ms)`,
          seed: options.seed,
          iteration,
          input: encodeInput(input),
          minimized: null,
          description: describeInput(target, input, 512),
        });
      }
    }
    // Time spent minimizing and re-running does not count against fuzzing.
    fuzzing += problem === null ? t0 - before + took : took;
  }
  await turn();
  await turn();
  gc();
  const final = heapNow();
  const base = baseline ?? final;
  if (final - base > memoryBoundBytes) {
    record({
      target: target.name,
      kind: 'memory',
      key: 'memory',
      message: `the heap after GC grew by ${mib(final - base)} during the run (bound ${mib(memoryBoundBytes)})`,
      seed: options.seed,
      iteration: null,
      input: null,
      minimized: null,
      description: null,
    });
  }
  const elapsedMs = performance.now() - start;
  return {
    target: target.name,
    seed: options.seed,
    executions,
    elapsedMs,
    execsPerSecond: executions / (Math.max(1, fuzzing) / 1000),
    heapBaselineBytes: base,
    heapFinalBytes: final,
    heapGrowthBytes: final - base,
    memoryBoundBytes,
    slowestMs: slowest,
    findings,
    outcomes: Object.fromEntries([...counted].sort((a, b) => b[1] - a[1])),
  };
}

export function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
