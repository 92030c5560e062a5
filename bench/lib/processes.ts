/**
 * The processes of the server benchmarks (bench/server.ts, bench/deflate.ts): a server under
 * test (bench/lib/server-main.ts) in a fresh process pinned to SERVER_CPU per measurement,
 * and one long-lived load generator (bench/lib/load-main.ts) pinned to LOAD_CPU that runs
 * jobs and answers in JSON lines.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineChild } from './children.js';
import { bunExecutable } from './native-servers.js';
import type { Job, JobAnswer, WindowEvent } from './load-jobs.js';

const here = dirname(fileURLToPath(import.meta.url));
const SERVER_MAIN = join(here, 'server-main.ts');
const BUN_SERVER_MAIN = join(here, 'bun-server-main.ts');
const LOAD_MAIN = join(here, 'load-main.ts');
export const SERVER_CPU = 0;
export const LOAD_CPU = 1;

/**
 * 'baseline' is hotline from another checkout (see setBaseline), to compare two versions in
 * one run; 'uws' (uWebSockets.js) and 'bun' are native servers, run only where they are
 * installed (bench/lib/native-servers.ts).
 */
export type Kind = 'hotline' | 'ws' | 'ws-bufferutil' | 'uws' | 'bun' | 'baseline';
export const ALL_KINDS: readonly Kind[] = ['hotline', 'ws', 'ws-bufferutil'];
export const NATIVE_KINDS: readonly Kind[] = ['uws', 'bun'];

let baselineMain: string | null = null;

/**
 * Points the 'baseline' kind at another checkout of hotline (e.g. a `git worktree` of an older
 * commit): its own bench/lib/server-main.ts runs its own src/, beside this one's, in the same run.
 */
export function setBaseline(checkout: string): void {
  baselineMain = join(checkout, 'bench', 'lib', 'server-main.ts');
}

export class BenchFailure extends Error {
  override name = 'BenchFailure';
}

/** The environment of a server of `kind`: Node's and glibc's defaults, ws told whether to use bufferutil. */
function serverEnv(kind: Kind, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.GLIBC_TUNABLES;
  delete env.WS_NO_BUFFER_UTIL;
  if (kind === 'ws') env.WS_NO_BUFFER_UTIL = '1';
  return env;
}

export interface ServerStart {
  /** server-main.ts's arguments after the kind (the mode, and options such as --deflate-threshold). */
  args: readonly string[];
  nodeFlags?: readonly string[];
  env?: Record<string, string>;
  /** Where to write a CPU profile of the counted windows, or null not to profile. */
  profileFile: string | null;
}

export interface Server {
  child: LineChild;
  kind: Kind;
  port: number;
  pid: number;
  profiling: boolean;
}

/** Starts a server and checks its first line: its port, its pid (taskset exec'd it) and how it masks. */
export async function startServer(kind: Kind, start: ServerStart): Promise<Server> {
  const profile = start.profileFile === null ? [] : ['--profile', start.profileFile];
  if (kind === 'baseline' && baselineMain === null) throw new BenchFailure('the baseline kind needs setBaseline(checkout) first');
  const [main, asKind] = kind === 'baseline' ? [baselineMain!, 'hotline'] : [SERVER_MAIN, kind];
  let child: LineChild;
  if (kind === 'bun') {
    // Node's flags mean nothing to Bun; its environment (e.g. MALLOC_ARENA_MAX) is passed on.
    const bun = bunExecutable();
    if (bun === null) throw new BenchFailure('bun server: no bun binary');
    child = new LineChild(`${kind} server`, SERVER_CPU, [BUN_SERVER_MAIN, ...start.args], serverEnv(kind, start.env ?? {}), bun);
  } else {
    child = new LineChild(
      `${kind} server`,
      SERVER_CPU,
      [...(start.nodeFlags ?? []), '--import', 'tsx', main, asKind, ...start.args, ...profile],
      serverEnv(kind, start.env ?? {}),
    );
  }
  try {
    const line = await child.nextLine(30_000, 'start');
    const [word, port, pid, masking] = line.split(' ');
    if (word !== 'ready') throw new BenchFailure(`${kind} server: unexpected first line '${line}'`);
    const expectedMasking = kind === 'hotline' || kind === 'baseline' ? 'none' : kind === 'ws' ? 'js' : kind === 'ws-bufferutil' ? 'bufferutil' : 'native';
    if (masking !== expectedMasking) throw new BenchFailure(`${kind} server masks with '${masking}'`);
    if (Number(pid) !== child.pid) throw new BenchFailure(`${kind} server: pid ${pid}, expected ${child.pid} (taskset did not exec?)`);
    return { child, kind, port: Number(port), pid: child.pid, profiling: profile.length > 0 && kind !== 'bun' };
  } catch (error) {
    await child.stop(null, 1_000);
    throw error;
  }
}

export async function stopServer(server: Server): Promise<void> {
  // 'exit' lets a profiling server write its profile; a server that hangs is killed.
  await server.child.stop('exit', 10_000);
}

/** Profiles a profiling server over the counted window only. */
export function profileWindow(server: Server): (phase: WindowEvent['phase']) => void {
  return (phase) => {
    if (server.profiling) server.child.send(phase === 'start' ? 'profile-start' : 'profile-stop');
  };
}

/** Asks a server a one-line question answered `COMMAND[ N] JSON`; returns the head and the JSON. */
export async function ask<T>(server: Server, command: string, timeoutMs = 30_000): Promise<{ head: string; json: T }> {
  server.child.send(command);
  const line = await server.child.nextLine(timeoutMs, command);
  const match = /^(\S+(?: \d+)?) (\{.*\})$/.exec(line);
  if (match === null || !match[1]!.startsWith(command)) throw new BenchFailure(`${server.kind} server: unexpected answer '${line}' to ${command}`);
  return { head: match[1]!, json: JSON.parse(match[2]!) as T };
}

/** V8's view of the server's memory (see heapFigures in server-main.ts). */
export interface HeapFigures {
  newSpace: number;
  oldSpaces: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** Forces garbage collection in the server; returns how many connections it holds, and its heap figures. */
export async function serverGc(server: Server): Promise<{ connections: number; heap: HeapFigures }> {
  const { head, json } = await ask<HeapFigures>(server, 'gc');
  return { connections: Number(head.split(' ')[1]), heap: json };
}

export class LoadGenerator {
  private readonly child: LineChild;
  private nextId = 1;

  private constructor(child: LineChild) {
    this.child = child;
  }

  static async start(): Promise<LoadGenerator> {
    const child = new LineChild('load generator', LOAD_CPU, ['--import', 'tsx', LOAD_MAIN], process.env);
    const line = await child.nextLine(30_000, 'start');
    if (line !== 'ready') throw new BenchFailure(`load generator: unexpected first line '${line}'`);
    return new LoadGenerator(child);
  }

  /** Runs a job; `onWindow` hears when its counted window starts and ends. */
  async run<R extends JobAnswer['type']>(
    job: Job,
    expect: R,
    onWindow?: (phase: WindowEvent['phase']) => void,
  ): Promise<Extract<JobAnswer, { type: R }>> {
    const id = this.nextId++;
    this.child.send(JSON.stringify({ ...job, id }));
    let answer: JobAnswer | WindowEvent;
    for (;;) {
      const line = await this.child.nextLine(180_000, `job ${job.type}`);
      answer = JSON.parse(line) as JobAnswer | WindowEvent;
      if (answer.type !== 'window') break;
      if (answer.id !== id) throw new BenchFailure(`load generator: window of job ${answer.id} during job ${id}`);
      onWindow?.(answer.phase);
    }
    if (answer.id !== id) throw new BenchFailure(`load generator answered job ${answer.id}, expected ${id}`);
    if (answer.type === 'error') throw new BenchFailure(`load generator, ${job.type}: ${answer.message}`);
    if (answer.type !== expect) throw new BenchFailure(`load generator answered ${answer.type} to ${job.type}`);
    return answer as Extract<JobAnswer, { type: R }>;
  }

  stop(): Promise<void> {
    return this.child.stop(null, 5_000);
  }
}
