// One target in a worker thread, watched from the main thread: a heartbeat in shared
// memory moves before every execution; a worker whose heartbeat stands still is terminated
// and the input it was running regenerated from (seed, iteration) and reported.
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { TARGETS } from '../targets/index.js';
import { describeInput, encodeInput, type FuzzInput } from './input.js';
import { Rng } from './rng.js';
import { runTarget, type Finding, type RunOptions, type TargetReport } from './run.js';

export interface WorkerRunOptions extends Omit<RunOptions, 'onExecute'> {
  /** How long one input may run before the worker is terminated (default 10000 ms). */
  hangMs?: number;
  /** Allowance for the worker to load before its first input (default 120000 ms). */
  startupMs?: number;
}

interface WorkerData {
  hotlineFuzz: true;
  target: string;
  options: Omit<RunOptions, 'onExecute' | 'onFinding'>;
  beats: SharedArrayBuffer;
}

type WorkerMessage = { type: 'finding'; finding: Finding } | { type: 'done'; report: TargetReport };

/**
 * Fuzzes one target in a worker thread, with a watchdog: a heartbeat in shared memory
 * moves before every execution, and a worker whose heartbeat stands still for `hangMs`
 * is terminated and its input (regenerated here from seed and iteration) reported.
 */
export function runInWorker(targetName: string, options: WorkerRunOptions): Promise<TargetReport> {
  const target = TARGETS.get(targetName);
  if (target === undefined) return Promise.reject(new Error(`no target ${targetName}`));
  const hangMs = options.hangMs ?? 10_000;
  const startupMs = options.startupMs ?? 120_000;
  const beats = new SharedArrayBuffer(12);
  const view = new Int32Array(beats);
  const self = pathToFileURL(fileURLToPath(import.meta.url)).href;
  const api = import.meta.resolve('tsx/esm/api');
  // The worker loads this file through tsx, whatever loader the main thread has.
  const code = `import(${JSON.stringify(api)}).then((api) => api.tsImport(${JSON.stringify(self)}, ${JSON.stringify(self)}))`;
  const { onFinding, ...runOptions } = options;
  const data: WorkerData = { hotlineFuzz: true, target: targetName, options: runOptions, beats };
  const worker = new Worker(code, { eval: true, workerData: data, resourceLimits: { maxOldGenerationSizeMb: 2048 }, stdout: false, stderr: false });
  const findings: Finding[] = [];
  const started = performance.now();
  const partial = (finding: Finding): TargetReport => ({
    target: targetName,
    seed: options.seed,
    executions: Atomics.load(view, 0),
    elapsedMs: performance.now() - started,
    execsPerSecond: NaN,
    heapBaselineBytes: NaN,
    heapFinalBytes: NaN,
    heapGrowthBytes: NaN,
    memoryBoundBytes: options.memoryBoundBytes ?? NaN,
    slowestMs: NaN,
    findings: [...findings, finding],
    outcomes: {},
  });
  return new Promise((resolveReport) => {
    let settled = false;
    let lastBeat = -1;
    let lastChange = performance.now();
    const settle = (report: TargetReport): void => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      resolveReport(report);
    };
    const watchdog = setInterval(() => {
      const beat = Atomics.load(view, 0);
      if (beat !== lastBeat) {
        lastBeat = beat;
        lastChange = performance.now();
        return;
      }
      if (performance.now() - lastChange < (beat === 0 ? startupMs : hangMs)) return;
      const iteration = Atomics.load(view, 1);
      const minimizing = Atomics.load(view, 2) === 1;
      let input: FuzzInput | null = null;
      if (beat > 0 && !minimizing) input = target.generate(new Rng(options.seed, iteration));
      const finding: Finding = {
        target: targetName,
        kind: 'hang',
        key: 'hang',
        message:
          beat === 0
            ? `the worker did not start within ${startupMs} ms`
            : `an input ran for over ${hangMs} ms${minimizing ? ' while minimizing the finding of this iteration' : ''}; the worker was terminated`,
        seed: options.seed,
        iteration: beat === 0 ? null : iteration,
        input: input === null ? null : encodeInput(input),
        minimized: null,
        description: input === null ? null : describeInput(target, input, 512),
      };
      onFinding?.(finding);
      void worker.terminate();
      settle(partial(finding));
    }, 50);
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'finding') {
        findings.push(message.finding);
        onFinding?.(message.finding);
      } else settle({ ...message.report, findings });
    });
    worker.on('error', (error: Error) => {
      const finding: Finding = {
        target: targetName,
        kind: /memory/i.test(error.message) ? 'memory' : 'exception',
        key: 'worker-error',
        message: `the worker died: ${error.name}: ${error.message}`,
        seed: options.seed,
        iteration: Atomics.load(view, 1),
        input: null,
        minimized: null,
        description: null,
      };
      onFinding?.(finding);
      settle(partial(finding));
    });
    worker.on('exit', (code) => {
      if (settled) return;
      const finding: Finding = {
        target: targetName,
        kind: 'exception',
        key: 'worker-exit',
        message: `the worker exited with code ${code} before reporting`,
        seed: options.seed,
        iteration: null,
        input: null,
        minimized: null,
        description: null,
      };
      onFinding?.(finding);
      settle(partial(finding));
    });
  });
}

async function workerMain(data: WorkerData): Promise<void> {
  const target = TARGETS.get(data.target);
  const port = parentPort;
  if (target === undefined || port === null) throw new Error(`no target ${data.target}`);
  const view = new Int32Array(data.beats);
  const report = await runTarget(target, {
    ...data.options,
    onExecute(iteration, minimizing) {
      Atomics.store(view, 1, iteration);
      Atomics.store(view, 2, minimizing ? 1 : 0);
      Atomics.add(view, 0, 1);
    },
    onFinding(finding) {
      port.postMessage({ type: 'finding', finding } satisfies WorkerMessage);
    },
  });
  // Findings were sent as they came.
  port.postMessage({ type: 'done', report: { ...report, findings: [] } } satisfies WorkerMessage);
}

if (!isMainThread && (workerData as Partial<WorkerData> | null)?.hotlineFuzz === true) {
  // A rejection here is unhandled, which ends the worker with an 'error' the main thread reports.
  void workerMain(workerData as WorkerData);
}
