/**
 * Starts bench/lib/sse-server-main.ts (`hotline serve`'s app with the benchmark's limits out
 * of the way) in a process of its own, for the benchmarks that measure the channel hub
 * through its endpoints (sse, msgpack, presence). Ending the child's stdin stops it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SERVER = fileURLToPath(new URL('./sse-server-main.ts', import.meta.url));

/** A running app server: its process, port and pid (for its CPU time and RSS). */
export interface AppServer {
  child: ChildProcess;
  port: number;
  pid: number;
}

/** Where and how the app server runs. */
export interface AppServerPlace {
  /** Another checkout of hotline whose bench/lib/sse-server-main.ts (and src/) to run, to compare versions. */
  checkout?: string;
  /** A CPU to pin the server to with `taskset`. */
  cpu?: number;
  /** The server's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/** Spawns the app server and resolves once it printed `ready <port> <pid>`. */
export async function startAppServer(place: AppServerPlace = {}): Promise<AppServer> {
  const script = place.checkout === undefined ? SERVER : join(place.checkout, 'bench', 'lib', 'sse-server-main.ts');
  const node = [process.execPath, '--import', 'tsx', script];
  const [command, ...args] = place.cpu === undefined ? node : ['taskset', '-c', String(place.cpu), ...node];
  const child = spawn(command!, args, { stdio: ['pipe', 'pipe', 'inherit'], env: place.env ?? process.env });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
  });
  const [, port, pid] = line.split(' ');
  return { child, port: Number(port), pid: Number(pid) };
}

/** What a subscribers benchmark of the app server (msgpack, presence) was asked for. */
export interface SubscriberBenchArgs {
  quick: boolean;
  subscribers: number;
  /** The counted window: 3 s, 1 with --quick. */
  seconds: number;
  bytes: number;
}

/** Reads `[--quick] [--subscribers N] [--seconds S] [--bytes N]` from the command line, with these defaults. */
export function subscriberBenchArgs(defaults: { subscribers: number; quickSubscribers: number; bytes: number }): SubscriberBenchArgs {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      subscribers: { type: 'string' },
      seconds: { type: 'string' },
      bytes: { type: 'string' },
    },
    strict: true,
  });
  const quick = values.quick === true;
  return {
    quick,
    subscribers: Number(values.subscribers ?? (quick ? defaults.quickSubscribers : defaults.subscribers)),
    seconds: Number(values.seconds ?? (quick ? 1 : 3)),
    bytes: Number(values.bytes ?? defaults.bytes),
  };
}
