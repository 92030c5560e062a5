// One execution: a target's check on one input, with anything it throws turned into a
// problem keyed by the error's name, code and the frame it was thrown from.
import type { FuzzInput, Problem, Target } from './input.js';

function exceptionProblem(error: unknown): Problem {
  const e = error instanceof Error ? error : new Error(String(error));
  const frames = (e.stack ?? '').split('\n').filter((l) => l.trim().startsWith('at '));
  const where = (frames[0] ?? '').trim().replace(/:\d+\)?$/, '');
  const code = (e as { code?: unknown }).code;
  return { key: `exception:${e.name}:${typeof code === 'string' ? code : ''}:${where}`, message: `${e.name}: ${e.message}\n${frames.slice(0, 8).join('\n')}` };
}

/** Runs one input and turns anything thrown into a problem. */
export function evaluate(target: Target, input: FuzzInput): Problem | null {
  try {
    return target.check(input);
  } catch (error) {
    return exceptionProblem(error);
  }
}
