// `hotline serve --workers N`: N worker processes behind one listening port. The primary
// owns the port and hands each accepted connection to a worker that said it is ready, in
// turn. Node's cluster module could share the port itself, and it is not used for that: its
// primary keeps a connection it handed to a worker until the worker acknowledges it, so a
// worker killed in that moment leaves the client with no answer until its connect timeout;
// and it closes the shared port whenever no worker listens (one killed while another is
// still starting), so connections are refused meanwhile, and with port 0 the next worker
// listens on a different port for good. Here the port lives as long as the primary, a
// connection waits (bounded) while no worker is ready, and one sent to a worker that dies
// goes down with it, so its client reconnects at once. Workers share channels through the
// engine, so more than one needs --redis. On SIGTERM or SIGINT the primary stops accepting
// and asks every worker to drain (1001 with the reconnect hint) and waits for them.
import cluster, { type Worker } from 'node:cluster';
import { createServer, Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { acceptHandles, socketOf, type AcceptedHandle } from '../node/accept.js';
import type { Logger } from '../server/log.js';

/** The variable that tells a worker its number (1..N): the banner is printed by worker 1 only. */
export const WORKER_VARIABLE = 'HOTLINE_WORKER';
/** Set for a worker that replaces one that died: it prints no banner again. */
const RESTART_VARIABLE = 'HOTLINE_WORKER_RESTART';
/** The port the primary listens on (the one the OS chose for port 0), for the banner. */
const PORT_VARIABLE = 'HOTLINE_WORKER_PORT';
/** A worker that dies sooner than this after starting is restarted after a growing delay. */
const HEALTHY_AFTER_MS = 5_000;
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/** Connections held while no worker is ready (all restarting): more are closed at once. */
const MAX_WAITING_CONNECTIONS = 1_024;

/** What a worker and its primary say to each other on the IPC channel. */
const READY_MESSAGE = 'hotline:ready';
const CONNECTION_MESSAGE = 'hotline:connection';

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

/** In a worker: the port its primary listens on. */
export function primaryPort(): number {
  return Number(process.env[PORT_VARIABLE] ?? 0);
}

/**
 * In a worker: passes every connection the primary hands over to `accept`, and tells the
 * primary this worker is ready for them (call it once the server can serve).
 */
export function takeConnections(accept: (socket: Socket) => void): void {
  process.on('message', (message: unknown, handle: unknown) => {
    if (message !== CONNECTION_MESSAGE) return;
    if (handle instanceof Socket) accept(handle);
    else if (isTcpHandle(handle)) accept(socketOf(handle));
  });
  process.send?.(READY_MESSAGE);
}

/** A bare TCP handle, as the primary sends a connection it accepted with {@link acceptHandles}. */
function isTcpHandle(handle: unknown): handle is AcceptedHandle {
  return typeof handle === 'object' && handle !== null && typeof (handle as { readStart?: unknown }).readStart === 'function';
}

/**
 * A connection the primary holds: its bare TCP handle, or a socket where Node's internals
 * did not let it take the handle (acceptHandles returned false). Either goes to a worker as it is.
 */
type Connection = AcceptedHandle | Socket;

function closeConnection(connection: Connection): void {
  if (connection instanceof Socket) connection.destroy();
  else connection.close();
}

/**
 * Hands connections to ready workers in turn; holds them, bounded, while none is ready.
 *
 * Each connection goes as its bare TCP handle (a socket made here would be made again in
 * the worker: src/node/accept.ts), and the primary closes its own copy once the message
 * with it is written: from then on the worker's copy (or the copy in flight to it) is the
 * only one, so a worker that dies takes the connection down and its client sees the close.
 * Node's own way with a socket (without keepOpen) holds the primary's copy until the worker
 * acknowledges it, queues the next ones behind that, and never lets go of them if the worker
 * dies: their clients wait for an answer that never comes. Connections still queued for a
 * worker when it dies are closed here for the same reason.
 */
class Dispatcher {
  private ready: Worker[] = [];
  private turn = 0;
  private readonly waiting = new Map<Connection, NodeJS.Timeout>();
  /** Connections sent to each worker whose message is not written yet. */
  private readonly sending = new Map<Worker, Set<Connection>>();

  /** @param maxWait how long a connection waits for a ready worker before it is closed (the client retries). */
  constructor(private readonly maxWait: number) {}

  add(worker: Worker): void {
    this.ready.push(worker);
    for (const [connection, timer] of this.waiting) {
      clearTimeout(timer);
      this.waiting.delete(connection);
      this.hand(connection);
    }
  }

  /** The worker is gone or going: nothing more goes its way, and what it did not get is closed. */
  remove(worker: Worker): void {
    this.ready = this.ready.filter((w) => w !== worker);
    for (const connection of this.sending.get(worker) ?? []) closeConnection(connection);
    this.sending.delete(worker);
  }

  isReady(worker: Worker): boolean {
    return this.ready.includes(worker);
  }

  hand(connection: Connection): void {
    if (this.ready.length === 0) {
      if (this.waiting.size >= MAX_WAITING_CONNECTIONS) {
        closeConnection(connection);
        return;
      }
      this.waiting.set(
        connection,
        setTimeout(() => {
          this.waiting.delete(connection);
          closeConnection(connection);
        }, this.maxWait),
      );
      return;
    }
    const worker = this.ready[this.turn++ % this.ready.length]!;
    let sending = this.sending.get(worker);
    if (sending === undefined) this.sending.set(worker, (sending = new Set()));
    sending.add(connection);
    // A bare handle is sent as it is (Node's 'net.Native'); keepOpen matters to a socket only.
    worker.send(CONNECTION_MESSAGE, connection as Socket, { keepOpen: true }, () => {
      // Written (the worker's copy is in flight) or failed (its channel closed): either way
      // the primary's copy goes; a failed one closes, and its client reconnects.
      sending.delete(connection);
      closeConnection(connection);
    });
  }

  /** Closes the connections still waiting (the server stops). */
  drop(): void {
    for (const [connection, timer] of this.waiting) {
      clearTimeout(timer);
      closeConnection(connection);
    }
    this.waiting.clear();
    this.ready = [];
  }
}

interface Slot {
  worker: Worker;
  startedAt: number;
  /** The restart delay to use if this slot's worker dies young. */
  delay: number;
}

export interface SuperviseOptions {
  count: number;
  host: string;
  port: number;
  /** For what an operator must see (a worker died), at any log level. */
  log: (line: string) => void;
  /** `worker_ready` lines (info). */
  logger: Logger;
  /** How long a connection waits in the primary for a ready worker: the handshake timeout, which it is part of. */
  maxWait: number;
}

/**
 * Runs the primary: listens, forks `count` workers (they run this same command line), hands
 * them connections, keeps them running, and drains them on a signal. Resolves to -1 (the
 * process lives on its signals), or throws the listen error (EADDRINUSE, EACCES).
 */
export async function superviseWorkers({ count, host, port, log, logger, maxWait }: SuperviseOptions): Promise<number> {
  const dispatcher = new Dispatcher(maxWait);
  // Paused: the worker reads the first bytes, not the primary. Sockets come only where
  // acceptHandles cannot take the listener's handles.
  const listener = createServer({ pauseOnConnect: true }, (socket) => dispatcher.hand(socket));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, host, () => {
      listener.off('error', reject);
      acceptHandles(listener, (handle) => dispatcher.hand(handle));
      resolve();
    });
  });
  const address = listener.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  const slots = new Map<number, Slot>();
  let stopping = false;

  const fork = (n: number, delay: number, restart = false): void => {
    const worker = cluster.fork({ [WORKER_VARIABLE]: String(n), [PORT_VARIABLE]: String(bound), ...(restart ? { [RESTART_VARIABLE]: '1' } : {}) });
    slots.set(n, { worker, startedAt: Date.now(), delay });
    worker.on('message', (message: unknown) => {
      if (message !== READY_MESSAGE || stopping) return;
      dispatcher.add(worker);
      logger.log('info', 'worker_ready', { worker: n, pid: worker.process.pid });
    });
    // The channel closes as the process dies: no connection goes its way from then on.
    worker.once('disconnect', () => dispatcher.remove(worker));
    worker.on('exit', (code, signal) => {
      dispatcher.remove(worker);
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
    listener.close();
    const running = [...slots.values()].map((s) => s.worker).filter((w) => !w.isDead());
    // A worker still starting (not yet ready) has no connections to drain: the signal ends it.
    const serving = new Set(running.filter((w) => dispatcher.isReady(w)));
    dispatcher.drop();
    let failed = false;
    let left = running.length;
    if (left === 0) process.exit(0);
    for (const worker of running) {
      worker.once('exit', (code, exitSignal) => {
        if (code !== 0 && (serving.has(worker) || exitSignal !== signal)) {
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
