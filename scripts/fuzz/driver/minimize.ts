// Shrinks an input that produces a finding while it still produces the same one.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { FuzzInput, Target } from './input.js';
import { evaluate } from './evaluate.js';

function withData(input: FuzzInput, data: Buffer): FuzzInput {
  return { variant: input.variant, splits: input.splits.filter((s) => s > 0 && s < data.length), data };
}

/** Shrinks an input while it still produces the problem `key`: splits first, then chunks of bytes. */
export function minimize(target: Target, input: FuzzInput, key: string, ms: number, beat?: () => void): FuzzInput {
  const deadline = performance.now() + ms;
  const still = (candidate: FuzzInput): boolean => {
    beat?.();
    return evaluate(target, candidate)?.key === key;
  };
  let best = input;
  if (best.splits.length > 0 && still({ ...best, splits: [] })) best = { ...best, splits: [] };
  let chunk = Math.max(1, 2 ** Math.floor(Math.log2(Math.max(1, best.data.length / 2))));
  while (chunk >= 1 && performance.now() < deadline) {
    let progressed = false;
    for (let at = 0; at < best.data.length && performance.now() < deadline; ) {
      const candidate = withData(best, Buffer.concat([best.data.subarray(0, at), best.data.subarray(at + chunk)]));
      if (still(candidate)) {
        best = candidate;
        progressed = true;
      } else at += chunk;
    }
    if (!progressed) chunk = chunk === 1 ? 0 : chunk >> 1;
  }
  for (let i = best.splits.length - 1; i >= 0 && performance.now() < deadline; i--) {
    const candidate = { ...best, splits: best.splits.filter((_, j) => j !== i) };
    if (still(candidate)) best = candidate;
  }
  return best;
}
