/**
 * The measurement plumbing bench/server.ts and bench/deflate.ts share, so each keeps only
 * its scenarios and its tables: the common command line, the rounds (every scenario for
 * every server kind, in an order that rotates, each in a fresh server process), what each
 * measurement records (values, the server's CPU share and whether it was busy enough for a
 * throughput figure to be more than a lower bound, the load generator's and other
 * processes' use of the cores), the footers printed under each group, and the idle-memory
 * measure (warm-up, forced GC, RSS before and after opening connections).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { checkTaskset, killAllChildren } from './children.js';
import type { Job, JobAnswer, Timed } from './load-jobs.js';
import { processRssBytes } from './proc.js';
import {
  BenchFailure,
  LOAD_CPU,
  LoadGenerator,
  profileWindow,
  SERVER_CPU,
  serverGc,
  startServer,
  stopServer,
  type HeapFigures,
  type Kind,
  type Server,
  type ServerStart,
} from './processes.js';
import { median, medianRatio, rotate, Samples } from './stats.js';
import { formatRatio } from './table.js';

/** A throughput measurement whose server was less busy than this is a lower bound. */
export const BUSY_THRESHOLD = 0.9;

const COMMON_OPTIONS = {
  quick: { type: 'boolean', default: false },
  only: { type: 'string' },
  rounds: { type: 'string' },
  samples: { type: 'boolean', default: false },
  sleep: { type: 'boolean', default: false },
  profile: { type: 'string' },
  'profile-kinds': { type: 'string', default: 'hotline' },
} as const satisfies ParseArgsConfig['options'];

export interface BenchSettings {
  quick: boolean;
  rounds: number;
  only: string | undefined;
  samples: boolean;
  /** Keep the load generator polling rather than sleeping (see bench/server.ts). */
  spin: boolean;
  warmupMs: number;
  measureMs: number;
  profileDir: string | null;
  profileKinds: ReadonlySet<string>;
}

/** Parses the options every server benchmark takes, and `extra` ones of its own. */
export function benchArgs<E extends NonNullable<ParseArgsConfig['options']>>(
  extra: E,
  windows: { warmupMs: number; quickWarmupMs: number },
): { settings: BenchSettings; values: Record<string, string | boolean | undefined> } {
  const { values } = parseArgs({ options: { ...COMMON_OPTIONS, ...extra } });
  const all = values as Record<string, string | boolean | undefined>;
  const quick = all['quick'] === true;
  const rounds = all['rounds'] !== undefined ? Number(all['rounds']) : quick ? 1 : 3;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
  const profile = all['profile'] as string | undefined;
  return {
    values: all,
    settings: {
      quick,
      rounds,
      only: all['only'] as string | undefined,
      samples: all['samples'] === true,
      spin: all['sleep'] !== true,
      warmupMs: quick ? windows.quickWarmupMs : windows.warmupMs,
      measureMs: quick ? 400 : 1500,
      profileDir: profile !== undefined ? resolve(profile) : null,
      profileKinds: new Set(String(all['profile-kinds'] ?? '').split(',').map((k) => k.trim())),
    },
  };
}

/** What every timed job says about where the server is and how the load generator runs. */
export function timedTarget(server: Server, settings: BenchSettings): Timed & { port: number } {
  return {
    port: server.port,
    serverPid: server.pid,
    serverCore: SERVER_CPU,
    loadCore: LOAD_CPU,
    spin: settings.spin,
    warmupMs: settings.warmupMs,
    measureMs: settings.measureMs,
  };
}

/** A timed job's own fields: where the server is and how the window runs are {@link timedTarget}'s. */
type TimedJobFields<J> = J extends Timed ? Omit<J, keyof Timed | 'port'> : never;

/** Runs a timed job against `server`, the server profiled over the counted window when asked. */
export function runTimed<R extends JobAnswer['type']>(
  load: LoadGenerator,
  server: Server,
  settings: BenchSettings,
  job: TimedJobFields<Job>,
  expect: R,
): Promise<Extract<JobAnswer, { type: R }>> {
  return load.run({ ...job, ...timedTarget(server, settings) } as Job, expect, profileWindow(server));
}

export function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** The commit the servers' source is at, and whether src/ has changes on top of it. */
/** Which commit's src/ a checkout (this one by default) runs, and whether it has local changes. */
export function sourceState(root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')): string {
  try {
    const head = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const changed = execFileSync('git', ['-C', root, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.trim() !== '').length;
    return changed === 0 ? `src at ${head}` : `src at ${head} + ${changed} changed file${changed === 1 ? '' : 's'}`;
  } catch {
    return 'src (no git)';
  }
}

export function wsVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('ws/package.json') as { version: string }).version;
}

/** Throws unless this machine can run the benchmark (Linux, two CPUs, taskset); makes the profile folder. */
export function preflight(settings: BenchSettings): void {
  if (process.platform !== 'linux') throw new BenchFailure('this benchmark reads /proc: it runs on Linux only');
  if (cpus().length < 2) throw new BenchFailure('this benchmark needs two CPUs (server and load generator pinned apart)');
  checkTaskset([SERVER_CPU, LOAD_CPU]);
  if (settings.profileDir !== null) mkdirSync(settings.profileDir, { recursive: true });
}

/** Runs a benchmark's main, and on failure kills every child and exits non-zero. */
export async function runBench(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    killAllChildren();
    console.error(error instanceof Error ? `${error.name}: ${error.message}` : error);
    process.exitCode = 1;
  }
}

export function pct(share: number | null | undefined): string {
  return `${((share ?? 0) * 100).toFixed(0)}%`;
}

/** What one measurement found. */
export interface Measurement {
  values: Record<string, number>;
  /** The server's CPU share over the counted window; null where it means nothing. */
  serverCpu: number | null;
  /** The part of it spent in the kernel. */
  serverSystem: number | null;
  /** The load generator's CPU share less the time a spinning one found nothing to do. */
  loadBusy: number | null;
  /** CPU the server's core spent on anything but the server (other processes) over the window. */
  othersOnCore: number | null;
  /** The same for the load generator's core. */
  othersOnLoadCore: number | null;
  checked: string;
}

/** The figures every timed job answers with about the cores. */
interface CoreFigures {
  serverCpu: number;
  serverSystem: number;
  loadCpu: number;
  loadSpinIdle: number;
  serverCoreBusy: number;
  loadCoreBusy: number;
  checked: string;
}

/** A measurement from a timed job's answer and the values it yields. */
export function timedMeasurement(result: CoreFigures, values: Record<string, number>): Measurement {
  return {
    values,
    serverCpu: result.serverCpu,
    serverSystem: result.serverSystem,
    loadBusy: result.loadCpu - result.loadSpinIdle,
    othersOnCore: Math.max(0, result.serverCoreBusy - result.serverCpu),
    othersOnLoadCore: Math.max(0, result.loadCoreBusy - result.loadCpu),
    checked: result.checked,
  };
}

/** A measurement that is not timed against the cores (memory). */
export function untimedMeasurement(values: Record<string, number>, checked: string): Measurement {
  return { values, serverCpu: null, serverSystem: null, loadBusy: null, othersOnCore: null, othersOnLoadCore: null, checked };
}

export interface ScenarioBase<M extends Measurement> {
  group: string;
  name: string;
  /** `perCpu` metrics are per server CPU-second: never a lower bound, however idle the server was. */
  metrics: ReadonlyArray<{ key: string; label: string; format(value: number): string; perCpu?: boolean }>;
  /** Whether a server busy under BUSY_THRESHOLD makes its figure a lower bound. */
  throughput: boolean;
  /** How to start the server for this scenario. */
  server: Omit<ServerStart, 'profileFile'>;
  measure(load: LoadGenerator, server: Server): Promise<M>;
}

/** Every measurement's samples, by scenario, server kind and metric. */
export class Results {
  readonly samples = new Samples();
  readonly cpu = new Samples();
  readonly loadBusy = new Samples();
  readonly others = new Samples();
  readonly othersLoad = new Samples();
  readonly checks = new Map<string, string[]>();
  /** Per group, the measurements whose server was less busy than BUSY_THRESHOLD. */
  readonly underBusy = new Map<string, string[]>();
  measurements = 0;

  key(scenario: { name: string }, kind: Kind, metric: string): string {
    return `${scenario.name}|${kind}|${metric}`;
  }

  record(scenario: ScenarioBase<Measurement>, kind: Kind, round: number, m: Measurement): void {
    this.measurements++;
    for (const [metric, value] of Object.entries(m.values)) this.samples.add(this.key(scenario, kind, metric), value);
    if (m.serverCpu !== null) {
      this.cpu.add(this.key(scenario, kind, 'cpu'), m.serverCpu);
      if (scenario.throughput && m.serverCpu < BUSY_THRESHOLD) {
        const list = this.underBusy.get(scenario.group) ?? [];
        list.push(`${kind} r${round + 1} ${pct(m.serverCpu)}`);
        this.underBusy.set(scenario.group, list);
      }
    }
    if (m.loadBusy !== null) this.loadBusy.add(scenario.group, m.loadBusy);
    if (m.othersOnCore !== null) this.others.add(scenario.group, m.othersOnCore);
    if (m.othersOnLoadCore !== null) this.othersLoad.add(scenario.group, m.othersOnLoadCore);
    const list = this.checks.get(this.key(scenario, kind, 'checked')) ?? [];
    list.push(m.checked);
    this.checks.set(this.key(scenario, kind, 'checked'), list);
  }

  /** The server's median CPU share in a scenario, or null when it was not timed. */
  busy(scenario: { name: string }, kind: Kind): number | null {
    const list = this.cpu.get(this.key(scenario, kind, 'cpu'));
    return list.length === 0 ? null : median(list);
  }

  /** Whether a scenario's figure for `kind` is only a lower bound (its server was not busy enough). */
  bound(scenario: ScenarioBase<Measurement>, kind: Kind): boolean {
    const share = this.busy(scenario, kind);
    return scenario.throughput && share !== null && share < BUSY_THRESHOLD;
  }

  /** A figure of `kind` in a cell, marked ≥ when it is only a lower bound (with `marks`). */
  valueCell(scenario: ScenarioBase<Measurement>, kind: Kind, metric: { key: string; format: (value: number) => string }, marks = true): string {
    return `${marks && this.bound(scenario, kind) ? '≥ ' : ''}${metric.format(this.samples.median(this.key(scenario, kind, metric.key)))}`;
  }

  /**
   * `of`'s figure (hotline's by default) over `other`'s in a cell: the median of the per-round
   * ratios, marked ≥ or ≤ when one side is only a lower bound and "?" when both are (with `marks`).
   */
  ratioCell(scenario: ScenarioBase<Measurement>, other: Kind, metricKey: string, marks = true, of: Kind = 'hotline'): string {
    const ratio = formatRatio(medianRatio(this.samples.get(this.key(scenario, of, metricKey)), this.samples.get(this.key(scenario, other, metricKey))));
    if (!marks) return ratio;
    const ours = this.bound(scenario, of);
    const theirs = this.bound(scenario, other);
    return `${ours && !theirs ? '≥ ' : !ours && theirs ? '≤ ' : ''}${ratio}${ours && theirs ? ' ?' : ''}`;
  }

  /** The lines under a group's table: spread between rounds, lower bounds, the cores' other use. */
  printFooter(group: string, inGroup: ReadonlyArray<ScenarioBase<Measurement>>, kinds: readonly Kind[], settings: BenchSettings): void {
    let worst = { spread: 0, where: '' };
    for (const scenario of inGroup) {
      for (const kind of kinds) {
        const spread = this.samples.spread(this.key(scenario, kind, scenario.metrics[0]!.key));
        if (spread > worst.spread) worst = { spread, where: `${kind}, ${scenario.name}` };
      }
    }
    if (settings.rounds > 1) console.log(`  largest spread between rounds: ${(worst.spread * 100).toFixed(0)}% (${worst.where})`);
    const idle = this.underBusy.get(group);
    if (idle !== undefined) {
      console.log(`  measurements with the server under ${BUSY_THRESHOLD * 100}% busy (values are lower bounds): ${idle.join(', ')}`);
    }
    const gen = this.loadBusy.get(group);
    const share = (list: readonly number[]): string => `median ${pct(median(list))}, max ${pct(Math.max(...list))}`;
    if (gen.length > 0) {
      console.log(
        `  over the windows: load generator busy ${settings.spin ? '(CPU minus idle spinning) ' : ''}${share(gen)}; other processes on the ` +
          `server's core ${share(this.others.get(group))}, on the load generator's ${share(this.othersLoad.get(group))}`,
      );
    }
  }
}

/** The groups that have scenarios to report, in their order, each with its scenarios. */
export function groupsToShow<G extends { group: string }, S extends { group: string }>(groups: readonly G[], scenarios: readonly S[]): Array<G & { scenarios: S[] }> {
  return groups.map((g) => ({ ...g, scenarios: scenarios.filter((s) => s.group === g.group) })).filter((g) => g.scenarios.length > 0);
}

/** The line that says where each process runs and how long each measurement is. */
export function describeWindows(settings: BenchSettings): string {
  return (
    `each server alone on CPU ${SERVER_CPU} in a fresh process per measurement, load generator on CPU ${LOAD_CPU}; ` +
    `${settings.rounds} round${settings.rounds === 1 ? '' : 's'}, ${settings.warmupMs} ms warm-up + ${settings.measureMs} ms counted per measurement` +
    (settings.quick ? ' [quick]' : '')
  );
}

/** The note printed when any figure is a lower bound. */
export const LOWER_BOUND_NOTE =
  `  ≥ : the server was busy less than ${BUSY_THRESHOLD * 100}% of the window, so something else (the load generator,\n` +
  '      round trips between the processes) limited it: the true capacity is at least this. A ratio is marked ≥ or ≤\n' +
  '      when only one side is such a bound, and "?" when both are.';

/**
 * Runs the rounds: every scenario for every kind (their order rotating per round and
 * scenario), each in a fresh server; `recorded` hears each measurement once recorded.
 */
export async function runRounds<S extends ScenarioBase<Measurement>>(
  scenarios: readonly S[],
  kinds: readonly Kind[],
  settings: BenchSettings,
  results: Results,
  recorded?: (scenario: S, kind: Kind, round: number, m: Awaited<ReturnType<S['measure']>>) => void,
): Promise<void> {
  const load = await LoadGenerator.start();
  try {
    for (let round = 0; round < settings.rounds; round++) {
      for (const [index, scenario] of scenarios.entries()) {
        for (const kind of rotate(kinds, round + index)) {
          const label = `${slug(scenario.name)}-r${round + 1}`;
          const profileFile = settings.profileDir !== null && settings.profileKinds.has(kind) ? join(settings.profileDir, `${kind}-${label}.cpuprofile`) : null;
          const server = await startServer(kind, { ...scenario.server, profileFile });
          let m: Awaited<ReturnType<S['measure']>>;
          try {
            if (!server.child.running) throw new BenchFailure(`${kind} server died`);
            m = (await scenario.measure(load, server)) as Awaited<ReturnType<S['measure']>>;
            if (!server.child.running) throw new BenchFailure(`${kind} server died during the measurement`);
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            throw new BenchFailure(`[${kind}] ${scenario.name}, round ${round + 1}: ${message}`);
          } finally {
            await stopServer(server);
          }
          results.record(scenario, kind, round, m);
          recorded?.(scenario, kind, round, m);
          if (settings.samples) {
            const values = scenario.metrics.map((metric) => `${metric.label} ${metric.format(m.values[metric.key]!)}`).join(', ');
            const busy = m.serverCpu === null ? '' : `, server CPU ${pct(m.serverCpu)} (kernel ${pct(m.serverSystem)})`;
            const gen = m.loadBusy === null ? '' : `, load generator busy ${pct(m.loadBusy)}`;
            const v = m.values;
            const io = v['reads'] === undefined ? '' : `, per unit ${v['reads']!.toFixed(2)} reads of ${v['readSize']!.toFixed(0)} B, ${v['writes']!.toFixed(2)} writes, ${v['sleeps']!.toFixed(3)} sleeps`;
            const rest = m.othersOnCore === null ? '' : `, others on the cores ${pct(m.othersOnCore)} / ${pct(m.othersOnLoadCore)}`;
            console.log(`  r${round + 1} ${kind.padEnd(13)} ${scenario.name}: ${values}${busy}${io}${gen}${rest}; ${m.checked}`);
          }
        }
      }
    }
  } finally {
    await load.stop();
  }
}

/** What opening idle connections cost a server: RSS before and after (forced GC), and the heap's share per connection. */
export interface IdleMemory<O> {
  before: number;
  after: number;
  opened: O;
  /** Connections the server held once they were open. */
  held: number;
  values: Record<string, number>;
}

/**
 * Measures RSS per connection: `warmUp` (connections that come and go, so one-time costs are
 * not counted), GC until the server holds none, RSS; then `open` `count` connections that
 * stay, GC, RSS again. `between` runs at the two readings (heap snapshots).
 */
export async function measureIdleConnections<O extends { connections: number }>(
  server: Server,
  count: number,
  steps: { warmUp(): Promise<unknown>; open(): Promise<O>; between?(stage: 'before' | 'after'): Promise<void> },
): Promise<IdleMemory<O>> {
  await steps.warmUp();
  let idle = await serverGc(server);
  for (let i = 0; i < 20 && idle.connections !== 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    idle = await serverGc(server);
  }
  if (idle.connections !== 0) throw new BenchFailure(`${server.kind} server still holds ${idle.connections} connections after the warm-up`);
  const before = processRssBytes(server.pid);
  await steps.between?.('before');
  const opened = await steps.open();
  const loaded = await serverGc(server);
  const after = processRssBytes(server.pid);
  await steps.between?.('after');
  if (opened.connections !== count || loaded.connections !== count) {
    throw new BenchFailure(`opened ${opened.connections} connections, the server holds ${loaded.connections}, expected ${count}`);
  }
  const perConnection = (field: keyof HeapFigures): number => (loaded.heap[field] - idle.heap[field]) / count;
  return {
    before,
    after,
    opened,
    held: loaded.connections,
    values: {
      perConnection: (after - before) / count,
      before,
      after,
      heapUsed: perConnection('heapUsed'),
      newSpace: perConnection('newSpace'),
      oldSpaces: perConnection('oldSpaces'),
      external: perConnection('external'),
    },
  };
}

/** The RSS line of a memory group: each kind's RSS before and after opening the connections. */
export function describeRss(results: Results, scenario: { name: string }, kinds: readonly Kind[]): string {
  return kinds
    .map((kind) => {
      const before = results.samples.median(results.key(scenario, kind, 'before'));
      const after = results.samples.median(results.key(scenario, kind, 'after'));
      return `${kind} ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB`;
    })
    .join(', ');
}
