/**
 * The command line of the benchmarks that churn connections in timed windows, in rounds
 * alternating with a baseline checkout (bench/reconnect.ts, bench/workers.ts):
 * [--quick] [--seconds S] [--rounds R] [--concurrency N] [--baseline DIR].
 */
import { parseArgs } from 'node:util';

export interface ChurnArgs {
  /** The counted window of each round (default 5; --quick: 2). */
  seconds: number;
  /** Rounds per build (default 3; --quick: 1). */
  rounds: number;
  /** Connections in progress at once (default 16). */
  concurrency: number;
  /** Another checkout to run in the same rounds. */
  baseline: string | undefined;
}

export function churnArgs(): ChurnArgs {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      concurrency: { type: 'string', default: '16' },
      baseline: { type: 'string' },
    },
    strict: true,
  });
  const quick = values.quick === true;
  return {
    seconds: Number(values.seconds ?? (quick ? 2 : 5)),
    rounds: Number(values.rounds ?? (quick ? 1 : 3)),
    concurrency: Number(values.concurrency),
    baseline: values.baseline,
  };
}
