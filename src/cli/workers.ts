// `hotline serve --workers N`: N worker processes behind one listening port (Node's cluster
// module: the primary accepts and hands connections to the workers in turn, on every
// platform Node runs on, where SO_REUSEPORT would leave the balancing to the kernel and is
// missing on some). Workers share channels through the engine, so more than one needs
// --redis. The primary only supervises: it restarts a worker that dies, and on SIGTERM or
// SIGINT asks every worker to drain (1001 with the reconnect hint) and waits for them.
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';

/** The variable that tells a worker its number (1..N): the banner is printed by worker 1 only. */
export const WORKER_VARIABLE = 'HOTLINE_WORKER';
/** Set for a worker that replaces one that died: it prints no banner again. */
const RESTART_VARIABLE = 'HOTLINE_WORKER_RESTART';
/** A worker that dies sooner than this after starting is restarted after a growing delay. */
const HEALTHY_AFTER_MS = 5_000;
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;

/** Whether this worker replaces one that died (and so prints no banner). */
export function isRestartedWorker(): boolean {
  return cluster.isWorker && process.env[RESTART_VARIABLE] === '1';
}

/** `auto`: one per core. */
export function workerCount(value: number | 'auto'): number {
  return value === 'auto' ? availableParallelism() : value;
}

/** This process's worker number (1..N), or 0 in a process that is not a worker. */
export function workerNumber(): number {
  if (!cluster.isWorker) return 0;
  const n = Number(process.env[WORKER_VARIABLE]);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

interface Slot {
  worker: Worker;
  startedAt: number;
  /** The restart delay to use if this slot's worker dies young. */
  delay: number;
}

/**
 * Runs the primary: forks `count` workers (they run this same command line), keeps them
 * running, and drains them on a signal. Resolves to -1 (the process lives on its signals).
 */
export function superviseWorkers(count: number, log: (line: string) => void): number {
  const slots = new Map<number, Slot>();
  let stopping = false;
  const listeningWorkers = new WeakSet<Worker>();

  const fork = (n: number, delay: number, restart = false): void => {
    const worker = cluster.fork({ [WORKER_VARIABLE]: String(n), ...(restart ? { [RESTART_VARIABLE]: '1' } : {}) });
    slots.set(n, { worker, startedAt: Date.now(), delay });
    worker.once('listening', () => listeningWorkers.add(worker));
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      const slot = slots.get(n)!;
      const young = Date.now() - slot.startedAt < HEALTHY_AFTER_MS;
      const wait = young ? slot.delay : 0;
      log(`hotline: worker ${n} (pid ${worker.process.pid}) exited (${signal ?? `code ${code}`}); restarting it${wait > 0 ? ` in ${wait} ms` : ''}`);
      const next = young ? Math.min(slot.delay * 2, MAX_RESTART_DELAY_MS) : FIRST_RESTART_DELAY_MS;
      setTimeout(() => {
        if (!stopping) fork(n, next, true);
      }, wait);
    });
  };
  for (let n = 1; n <= count; n++) fork(n, FIRST_RESTART_DELAY_MS);

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    const running = [...slots.values()].map((s) => s.worker).filter((w) => !w.isDead());
    let failed = false;
    let left = running.length;
    if (left === 0) process.exit(0);
    for (const worker of running) {
      // A worker still starting (not yet listening) has no connections to drain: the signal ends it.
      const listening = listeningWorkers.has(worker);
      worker.once('exit', (code, exitSignal) => {
        if (code !== 0 && (listening || exitSignal !== signal)) {
          failed = true;
          log(`hotline: worker pid ${worker.process.pid} ended with ${exitSignal ?? `code ${code}`} while draining`);
        }
        if (--left === 0) process.exit(failed ? 1 : 0);
      });
      // Each worker drains its own connections (1001 with the reconnect hint) and exits.
      worker.process.kill(signal);
    }
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGTERM'));
  return -1;
}
