// The lines a child process prints on one stream, kept in order, and a wait for the next
// one that matches: woken by each new line and by the process's exit, failing after its
// time. The parents of the test servers (hub-process, redis-node, the attack neighbour) wait
// on the lines their scripts print.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

export class ChildLines {
  readonly all: string[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly child: ChildProcess,
    stream: Readable = child.stdout!,
  ) {
    createInterface({ input: stream }).on('line', (line) => {
      this.all.push(line);
      this.wake();
    });
    child.once('exit', () => this.wake());
  }

  /**
   * The first line from index `from` on that passes `test` (0: any line so far or to come;
   * `all.length`: only lines still to come). Fails when the process exits first, or after `ms`.
   */
  next(test: (line: string) => boolean, what: string, ms: number, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      let seen = from;
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      const check = (): void => {
        for (; seen < this.all.length; seen++) {
          const line = this.all[seen]!;
          if (test(line)) return finish(() => resolve(line));
        }
        const { exitCode, signalCode } = this.child;
        if (exitCode !== null || signalCode !== null) finish(() => reject(new Error(`the process exited (${exitCode ?? signalCode}) before ${what}: ${this.all.join(' | ')}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no ${what} within ${ms} ms: ${this.all.join(' | ')}`))), ms);
      this.waiters.add(check);
      check();
    });
  }

  private wake(): void {
    for (const check of [...this.waiters]) check();
  }
}
