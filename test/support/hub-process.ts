// The parent's side of ./hub-server.ts: start it, read its stats, stop it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { rssOf } from './attack.js';

const SCRIPT = fileURLToPath(new URL('./hub-server.ts', import.meta.url));

export interface HubServerStats {
  rss: number;
  heapUsed: number;
  pauses: number | null;
  sessions: number;
}

export class HubServer {
  readonly pid: number;
  /** RSS once it listened (set again by a test before its attack). */
  baseline: number;
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    this.pid = child.pid!;
    this.baseline = rssOf(this.pid);
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  static async start(options: Record<string, unknown> = {}, nodeArgs: readonly string[] = []): Promise<HubServer> {
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', SCRIPT, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const lines = createInterface({ input: child.stdout! });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hub-server printed no ready line within 20 s: ${output}`)), 20_000);
      child.once('exit', (code) => reject(new Error(`hub-server exited (${code}): ${output}`)));
      const onLine = (line: string): void => {
        const match = /^hub-server ready port=(\d+)$/.exec(line);
        if (match === null) return;
        clearTimeout(timer);
        lines.off('line', onLine);
        resolve(Number(match[1]));
      };
      lines.on('line', onLine);
    });
    const server = new HubServer(child, port);
    lines.on('line', (line) => {
      server.lines.push(line);
      const waiting = server.waiters;
      server.waiters = [];
      for (const wake of waiting) wake();
    });
    child.stderr!.on('data', (chunk: string) => (server.output += chunk));
    return server;
  }

  rss(): number {
    return rssOf(this.pid);
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What the process wrote to stderr. */
  errors(): string {
    return this.output;
  }

  async stats(): Promise<HubServerStats> {
    const from = this.lines.length;
    this.child.stdin!.write('stats\n');
    const deadline = Date.now() + 20_000;
    for (let seen = from; ; ) {
      for (; seen < this.lines.length; seen++) {
        const line = this.lines[seen]!;
        if (line.startsWith('hub-server stats ')) return JSON.parse(line.slice('hub-server stats '.length)) as HubServerStats;
      }
      if (Date.now() > deadline || !this.alive()) throw new Error(`hub-server gave no stats: ${this.output}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<void> {
    if (!this.alive()) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
