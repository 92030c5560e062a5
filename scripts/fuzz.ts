// Fuzzes hotline's parsers with random and mutated input: the frame decoder (through
// WebSocketProtocol in both roles, with and without permessage-deflate, input split at
// random points), the HTTP head parser with the handshake checks of both sides, the
// Sec-WebSocket-Extensions parser with permessage-deflate negotiation, and the hotline.v1
// request parsers (JSON text and msgpack).
//
//   npm run fuzz [-- --seconds 60 --seed N --target NAME[,NAME] --jobs 2]
//   npm run fuzz -- --target NAME --replay HEX      (re-runs one reproducer)
//   npm run fuzz -- --list
//   npm run fuzz -- --stats                         (also prints what the inputs led to)
//
// Each target runs for --seconds in a worker thread, and a watchdog in the main thread
// terminates a worker whose current input has run for --hang-ms. An input is a finding
// when it makes a target throw anything but the documented typed errors, breaks an
// invariant (the close frame a ProtocolError queues carries the close code RFC 6455/7692
// give for its error; the same bytes split differently give the same events; a head
// parsed whole or in pieces is the same head; …), takes longer than --budget-ms, or hangs.
// A run whose heap (after GC) grew by more than --memory-mib between warm-up and the end
// is a finding too. Findings are minimized and printed with the seed, the iteration and a
// reproducer in hex; the exit status is 1 when there was one.
//
// Inputs are a function of (seed, iteration) alone, so `--seed S` reproduces a run.
// test/fuzz.test.ts runs every target for ~2 s with fixed seeds inside `npm test`.
//
// The driver (seeding, mutation, splitting, running, minimizing, the worker and its
// watchdog, reporting) is in scripts/fuzz/driver/, one file per target in
// scripts/fuzz/targets/ (listed in targets/index.ts), and what several targets share
// (frame encoding and oracle, HTTP head checks) in scripts/fuzz/shared/.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { decodeInput, describeInput } from './fuzz/driver/input.js';
import { formatFinding } from './fuzz/driver/report.js';
import { evaluate } from './fuzz/driver/evaluate.js';
import { mib, type TargetReport } from './fuzz/driver/run.js';
import { runInWorker } from './fuzz/driver/worker.js';
import { PUBLIC_TARGETS, TARGETS } from './fuzz/targets/index.js';

interface Args {
  seconds: number;
  seed: number;
  targets: string[];
  jobs: number;
  budgetMs: number;
  hangMs: number;
  memoryMib: number;
  replay: string | null;
  list: boolean;
  stats: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    seconds: 30,
    seed: Date.now() % 0x7fffffff,
    targets: [],
    jobs: 0,
    budgetMs: 2000,
    hangMs: 10_000,
    memoryMib: 32,
    replay: null,
    list: false,
    stats: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const number = (): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) throw new Error(`${flag} needs a non-negative number`);
      return v;
    };
    if (flag === '--seconds') args.seconds = number();
    else if (flag === '--seed') args.seed = Math.floor(number());
    else if (flag === '--target') args.targets.push(...value().split(',').filter((t) => t !== ''));
    else if (flag === '--jobs') args.jobs = Math.floor(number());
    else if (flag === '--budget-ms') args.budgetMs = number();
    else if (flag === '--hang-ms') args.hangMs = number();
    else if (flag === '--memory-mib') args.memoryMib = number();
    else if (flag === '--replay') args.replay = value();
    else if (flag === '--list') args.list = true;
    else if (flag === '--stats') args.stats = true;
    else throw new Error(`unknown option ${flag}`);
  }
  for (const t of args.targets) if (!TARGETS.has(t)) throw new Error(`unknown target ${t}; --list shows them`);
  return args;
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`fuzz: ${(error as Error).message}`);
    console.error('usage: npm run fuzz -- [--seconds 30] [--seed N] [--target NAME[,NAME]] [--jobs N] [--budget-ms 2000] [--hang-ms 10000] [--memory-mib 32] [--replay HEX] [--list] [--stats]');
    return 2;
  }
  if (args.list) {
    for (const t of TARGETS.values()) console.log(`${t.name.padEnd(22)} ${t.hidden === true ? '(self-test) ' : ''}${t.description}; ${t.variants} variants`);
    return 0;
  }
  if (args.replay !== null) {
    const name = args.targets[0];
    const target = name === undefined ? undefined : TARGETS.get(name);
    if (target === undefined) {
      console.error('fuzz: --replay needs --target NAME');
      return 2;
    }
    const input = decodeInput(args.replay);
    console.log(`replaying on ${target.name}: ${describeInput(target, input, 4096)}`);
    const t0 = performance.now();
    const problem = evaluate(target, input);
    console.log(problem === null ? `no problem (${(performance.now() - t0).toFixed(1)} ms)` : `${problem.key}\n${problem.message}`);
    return problem === null ? 0 : 1;
  }
  const names = args.targets.length > 0 ? args.targets : [...PUBLIC_TARGETS];
  const jobs = Math.max(1, Math.min(names.length, args.jobs > 0 ? args.jobs : availableParallelism()));
  console.log(`fuzzing ${names.length} targets for ${args.seconds} s each, seed ${args.seed}, ${jobs} at a time`);
  const reports: TargetReport[] = [];
  const queue = [...names];
  const runNext = async (): Promise<void> => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const report = await runInWorker(name, {
        seed: args.seed,
        ms: args.seconds * 1000,
        budgetMs: args.budgetMs,
        hangMs: args.hangMs,
        memoryBoundBytes: args.memoryMib * 1024 * 1024,
        onFinding: (f) => console.log(`\n${formatFinding(f)}\n`),
      });
      reports.push(report);
      console.log(
        `  ${report.target.padEnd(22)} ${String(report.executions).padStart(9)} execs ${report.execsPerSecond.toFixed(0).padStart(7)}/s  ` +
          `heap ${report.heapGrowthBytes >= 0 ? '+' : ''}${mib(report.heapGrowthBytes)}  slowest ${report.slowestMs.toFixed(0)} ms  ${report.findings.length} findings`,
      );
      if (args.stats) {
        for (const [label, n] of Object.entries(report.outcomes)) console.log(`      ${String(n).padStart(9)}  ${label}`);
      }
    }
  };
  await Promise.all(Array.from({ length: jobs }, () => runNext()));
  reports.sort((a, b) => names.indexOf(a.target) - names.indexOf(b.target));
  console.log(`\n${'target'.padEnd(22)} ${'execs'.padStart(9)} ${'execs/s'.padStart(9)} ${'heap growth'.padStart(12)} ${'slowest'.padStart(9)}  findings`);
  for (const r of reports) {
    console.log(
      `${r.target.padEnd(22)} ${String(r.executions).padStart(9)} ${r.execsPerSecond.toFixed(0).padStart(9)} ${mib(r.heapGrowthBytes).padStart(12)} ${`${r.slowestMs.toFixed(0)} ms`.padStart(9)}  ${r.findings.length}`,
    );
  }
  const total = reports.reduce((n, r) => n + r.findings.length, 0);
  console.log(total === 0 ? `\nno findings (seed ${args.seed})` : `\n${total} findings (seed ${args.seed}); each is printed above with its reproducer`);
  return total === 0 ? 0 : 1;
}

if (isMainThread && process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(2);
    },
  );
}
