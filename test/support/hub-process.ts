// The parent's side of ./hub-server.ts: start it, read its stats, stop it.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { rssOf } from './attack.js';
import { ChildLines } from './child-lines.js';

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

  private constructor(
    private readonly child: ChildProcess,
    private readonly lines: ChildLines,
    private readonly stderr: () => string,
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
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const lines = new ChildLines(child);
    const ready = await lines.next((line) => /^hub-server ready port=\d+$/.test(line), 'hub-server to listen', 20_000).catch((error: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${error.message}; stderr: ${stderr}`);
    });
    return new HubServer(child, lines, () => stderr, Number(/port=(\d+)/.exec(ready)![1]));
  }

  rss(): number {
    return rssOf(this.pid);
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What the process wrote to stderr. */
  errors(): string {
    return this.stderr();
  }

  async stats(): Promise<HubServerStats> {
    const from = this.lines.all.length;
    this.child.stdin!.write('stats\n');
    const line = await this.lines.next((l) => l.startsWith('hub-server stats '), `stats from hub-server (stderr: ${this.stderr()})`, 20_000, from);
    return JSON.parse(line.slice('hub-server stats '.length)) as HubServerStats;
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
