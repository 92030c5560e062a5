/**
 * Child processes for bench/server.ts: pinned to a CPU with `taskset`, talked to one line
 * at a time over stdin/stdout, and never outliving the benchmark: every child is killed
 * when this process exits, on error and on SIGINT/SIGTERM/SIGHUP as well. (The children
 * also exit by themselves when their stdin closes, and after a maximum lifetime.)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const live = new Set<ChildProcess>();
let cleanupInstalled = false;

export function killAllChildren(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  live.clear();
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killAllChildren);
  const signals: Array<[NodeJS.Signals, number]> = [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ];
  for (const [signal, code] of signals) {
    process.on(signal, () => {
      killAllChildren();
      process.exit(code);
    });
  }
}

/** Throws unless `taskset` can pin a process here. */
export function checkTaskset(cpus: readonly number[]): void {
  for (const cpu of cpus) {
    const result = spawnSync('taskset', ['-c', String(cpu), 'true']);
    if (result.error !== undefined || result.status !== 0) {
      throw new Error(`cannot pin to CPU ${cpu} with taskset (${result.error?.message ?? `exit ${result.status}`})`);
    }
  }
}

interface Waiter {
  resolve(line: string): void;
  reject(error: Error): void;
}

/** A child process that answers in lines. */
export class LineChild {
  readonly process: ChildProcess;
  readonly name: string;
  private readonly lines: string[] = [];
  private waiter: Waiter | null = null;
  private exitError: Error | null = null;
  readonly exited: Promise<void>;

  /**
   * Runs `node <nodeArgs>` (or another `executable`, e.g. bun) pinned to `cpu` (taskset execs
   * it, so the pid is its own), with `env` as its whole environment. stderr goes to ours.
   */
  constructor(name: string, cpu: number, nodeArgs: readonly string[], env: NodeJS.ProcessEnv, executable = process.execPath) {
    installCleanup();
    this.name = name;
    this.process = spawn('taskset', ['-c', String(cpu), executable, ...nodeArgs], {
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    live.add(this.process);
    this.exited = new Promise((resolve) => {
      this.process.once('exit', (code, signal) => {
        live.delete(this.process);
        this.exitError = new Error(`${name} exited (${signal ?? `code ${code}`})`);
        this.waiter?.reject(this.exitError);
        this.waiter = null;
        resolve();
      });
    });
    this.process.once('error', (error) => {
      this.exitError = error;
      this.waiter?.reject(error);
      this.waiter = null;
    });
    // A write to a child that just died must not crash the benchmark; the exit reports it.
    this.process.stdin?.on('error', () => {});
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      if (this.waiter !== null) {
        const waiter = this.waiter;
        this.waiter = null;
        waiter.resolve(line);
      } else {
        this.lines.push(line);
      }
    });
  }

  get pid(): number {
    const pid = this.process.pid;
    if (pid === undefined) throw new Error(`${this.name} has no pid`);
    return pid;
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  send(line: string): void {
    if (this.exitError !== null) throw this.exitError;
    this.process.stdin!.write(`${line}\n`);
  }

  /** The next line the child prints, within `timeoutMs`. */
  nextLine(timeoutMs: number, what: string): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.exitError !== null) return Promise.reject(this.exitError);
    if (this.waiter !== null) return Promise.reject(new Error(`${this.name}: two readers at once`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`${this.name}: no answer to ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  /** Asks the child to exit (`line`, then closing its stdin); kills it after `graceMs`. */
  async stop(line: string | null, graceMs: number): Promise<void> {
    if (!this.running) return;
    try {
      if (line !== null) this.process.stdin!.write(`${line}\n`);
      this.process.stdin!.end();
    } catch {
      // it is going anyway
    }
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
