// The SDK's test server (./sdk-server.ts) in a child process, for tests that crash it, restart
// it on the same port, or set it up to refuse some subscriptions: start it, wait for the
// lines it prints, stop it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const SERVER_SCRIPT = fileURLToPath(new URL('./sdk-server.ts', import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  /** Date.now() in the child right after its port listened. */
  readyAt: number;
}

/** Every server process still running, for an `after` hook to kill: see {@link killAll}. */
const children = new Set<ChildProcess>();

interface Spawned {
  child: ChildProcess;
  /** Settles once the process printed a line matching `pattern`, with the match. */
  line(pattern: RegExp, what: string): Promise<RegExpExecArray>;
}

function spawnServer(port: number, options: Record<string, unknown>): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER_SCRIPT, String(port), JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  // Keep draining both pipes for the whole run.
  child.stdout!.on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr!.on('data', (chunk: string) => {
    output += chunk;
  });
  return {
    child,
    line(pattern, what) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(output);
          if (match === null) return;
          done();
          resolve(match);
        };
        const onExit = (code: number | null, signal: string | null): void => {
          done();
          reject(new Error(`the server exited (${code ?? signal}) before ${what}: ${output}`));
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`the server did not get to ${what} within 30 s: ${output}`));
        }, 30_000);
        function done(): void {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.off('exit', onExit);
        }
        child.stdout!.on('data', check);
        child.once('exit', onExit);
        check();
      });
    },
  };
}

const READY = /sdk-server ready port=(\d+) at=(\d+)/;

export async function startServer(port = 0, options: Record<string, unknown> = {}): Promise<ServerProcess> {
  const spawned = spawnServer(port, options);
  const match = await spawned.line(READY, 'listening');
  return { child: spawned.child, port: Number(match[1]), readyAt: Number(match[2]) };
}

/**
 * Starts a server process that loads and waits: `listen()` makes it listen on `port` in a
 * few milliseconds, so a test controls how long the port stays closed after a crash.
 */
export async function standbyServer(port: number): Promise<{ listen(): Promise<ServerProcess> }> {
  const spawned = spawnServer(port, { standby: true });
  await spawned.line(/sdk-server loaded/, 'loading');
  return {
    async listen() {
      spawned.child.stdin!.write('listen\n');
      const match = await spawned.line(READY, 'listening');
      return { child: spawned.child, port: Number(match[1]), readyAt: Number(match[2]) };
    },
  };
}

export async function stopServer(server: ServerProcess, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = once(server.child, 'exit');
  server.child.kill(signal);
  await exited;
}

/** Kills whatever server a failed test left behind. */
export async function killAll(): Promise<void> {
  for (const child of children) {
    child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
}
