// Runs the built `hotline` CLI as a child process, as a user would: `hotline serve` on a
// port of 127.0.0.1, ready once its startup line is printed. The tests that use it need
// `npm run build` first (`npm test` builds before it runs them).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Throws a clear error when the CLI has not been built. */
export function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first`);
}

export interface CliServer {
  readonly child: ChildProcess;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly http: string;
  /** ws://127.0.0.1:PORT */
  readonly ws: string;
  /** Everything the server printed so far (stdout and stderr). */
  output(): string;
  /** Sends the signal and waits for the process to exit; resolves to its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `hotline serve --port PORT` (port 0: the system picks one) and resolves once its
 * startup line names the port. A port taken in the meantime is retried a few times.
 */
export async function startCli(port = 0, args: readonly string[] = [], options: StartOptions = {}): Promise<CliServer> {
  requireBuiltCli();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(port, args, options);
    } catch (error) {
      if (attempt >= 5 || port === 0 || !/already in use/.test((error as Error).message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

export interface StartOptions {
  /** Flags for node itself, before the script (`--max-old-space-size=512`). */
  nodeArgs?: readonly string[];
  /** Replaces `--log-level warn`. */
  logLevel?: string;
  env?: NodeJS.ProcessEnv;
  /** How long the startup line may take (ms, default 15000): more for several processes on a busy machine. */
  startTimeout?: number;
}

function startOnce(port: number, args: readonly string[], options: StartOptions): Promise<CliServer> {
  const argv = [...(options.nodeArgs ?? []), CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--log-level', options.logLevel ?? 'warn', ...args];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  let output = '';
  // Keep draining both pipes for the whole run: a full pipe would block the server.
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = once(child, 'exit');
  exited.catch(() => {});
  const startTimeout = options.startTimeout ?? 15_000;
  return new Promise<CliServer>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hotline serve printed no startup line within ${startTimeout / 1000} s:\n${output}`));
    }, startTimeout);
    const onData = (): void => {
      const match = /listening on https?:\/\/127\.0\.0\.1:(\d+)\//.exec(output);
      if (match === null) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      const bound = Number(match[1]);
      resolve({
        child,
        port: bound,
        http: `http://127.0.0.1:${bound}`,
        ws: `ws://127.0.0.1:${bound}`,
        output: () => output,
        async stop(signal: NodeJS.Signals = 'SIGTERM') {
          if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
          child.kill(signal);
          const [code] = (await exited) as [number | null];
          return code;
        },
      });
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hotline serve exited (${code}) before its startup line:\n${output}`));
    });
  });
}
