// The parent's side of ./proxy-backend.py (an app's backend in Python, standard library
// only): starts it, waits on the lines it prints per request, and reads its peak of requests
// in flight. Tests skip loudly when python3 is not installed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ChildLines } from './child-lines.js';

const SCRIPT = fileURLToPath(new URL('./proxy-backend.py', import.meta.url));

/** Why the Python backend cannot run here, or null when python3 is installed. */
export function pythonMissing(): string | null {
  const probe = spawnSync('python3', ['--version']);
  return probe.error === undefined && probe.status === 0 ? null : 'python3 is not installed: the proxy hooks need it to simulate a backend';
}

/** One request the backend received: its hook, how many were in flight with it, its JSON body. */
export interface BackendRequest {
  hook: string;
  inFlight: number;
  body: Record<string, unknown>;
}

export class PythonBackend {
  private readonly lines: ChildLines;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    lines: ChildLines,
  ) {
    this.lines = lines;
  }

  /** Starts the backend; `hold` is how long its slow answers sleep (s). */
  static start(hold = 5): Promise<PythonBackend> {
    return PythonBackend.run(SCRIPT, [String(hold)]);
  }

  /** Starts another Python backend that prints `backend listening PORT` once it listens. */
  static async run(script: string, args: readonly string[]): Promise<PythonBackend> {
    const child = spawn('python3', [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = new ChildLines(child);
    const line = await lines.next((l) => l.startsWith('backend listening '), 'the backend to listen', 20_000);
    return new PythonBackend(child, Number(line.slice('backend listening '.length)), lines);
  }

  /** The URL of a hook: http://127.0.0.1:PORT/HOOK */
  url(hook: string): string {
    return `http://127.0.0.1:${this.port}/${hook}`;
  }

  /** Requests received so far. */
  get requests(): BackendRequest[] {
    return this.lines.all.filter((l) => /^backend (connect|subscribe|publish|rpc) /.test(l)).map(parse);
  }

  /** The next request (from the `from`-th line on) that passes `test`. */
  async next(test: (request: BackendRequest) => boolean, what: string, from = 0, ms = 10_000): Promise<BackendRequest> {
    const line = await this.lines.next((l) => /^backend (connect|subscribe|publish|rpc) /.test(l) && test(parse(l)), what, ms, from);
    return parse(line);
  }

  /** Where the next line will be: for {@link next}'s `from`. */
  get mark(): number {
    return this.lines.all.length;
  }

  /** The most requests it was answering at once. */
  async maxInFlight(): Promise<number> {
    const from = this.lines.all.length;
    this.child.stdin!.write('stats\n');
    const line = await this.lines.next((l) => l.startsWith('backend max-in-flight '), 'the backend stats', 10_000, from);
    return Number(line.slice('backend max-in-flight '.length));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

function parse(line: string): BackendRequest {
  const [, hook, inFlight, json] = /^backend (\S+) (\d+) (.*)$/.exec(line)!;
  return { hook: hook!, inFlight: Number(inFlight), body: JSON.parse(json!) as Record<string, unknown> };
}

/** An upgrade the server refused: its status, body and headers. */
export function refusal(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['hotline.v1'], { headers });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.once('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    ws.once('error', () => {});
  });
}

