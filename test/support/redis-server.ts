// A real `redis-server` for one test: started on a free port in a temporary directory
// (`--port P --save '' --appendonly no`), ready once it answers PING, and stopped, killed or
// restarted on the same port and directory when a test says so. Talks to Redis over a raw
// socket (inline commands), so it needs neither redis-cli nor a client library.
//
// Where `redis-server` is not installed the suites skip loudly (`skipWithoutRedis`), except
// under CI (CI=true), where a missing server fails the test: CI must test the Redis engine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { freePort } from './ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

let installed: boolean | undefined;

/** Whether `redis-server` can be run here. */
export function redisServerInstalled(): boolean {
  if (installed === undefined) {
    const result = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    installed = result.error === undefined && result.status === 0;
  }
  return installed;
}

/**
 * True when the test can go on. Without `redis-server` it marks the test skipped and says
 * so on stderr, or, under CI, throws so that the test fails.
 */
export function skipWithoutRedis(t: TestContext): boolean {
  if (redisServerInstalled()) return true;
  const message = 'redis-server not installed';
  if (process.env.CI === 'true') throw new Error(`${message}: CI must run the Redis engine tests (.ci/run installs it)`);
  process.stderr.write(`\n*** SKIPPED: ${message} — the Redis engine tests did not run (apt-get install redis-server) ***\n\n`);
  t.skip(message);
  return false;
}

export interface RedisServerOptions {
  /** Sets `requirepass`: clients must authenticate. */
  password?: string;
  /** More arguments for redis-server. */
  args?: string[];
  /** Pins the server to this CPU with taskset (benchmarks). */
  cpu?: number;
}

/**
 * Sends inline commands and resolves with everything Redis answered once it closes the
 * connection or `expectReplies` reply lines arrived (the raw RESP text).
 */
function rawCommand(port: number, lines: string[], expectReplies: number, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis on port ${port} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(lines.map((line) => `${line}\r\n`).join('')));
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.split('\r\n').length - 1 >= expectReplies) finish();
    });
    socket.on('close', finish);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

export class RedisServer {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private stderr = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: RedisServerOptions,
  ) {}

  /** Starts a server on a free port in a new temporary directory. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = mkdtempSync(join(tmpdir(), 'hotline-redis-'));
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RedisServer(await freePort(), dir, options);
      try {
        await server.launch();
        return server;
      } catch (error) {
        lastError = error;
        await server.kill();
      }
    }
    rmSync(dir, { recursive: true, force: true });
    throw lastError;
  }

  /** `redis://` URL of the server, with the password when there is one. */
  get url(): string {
    const auth = this.options.password === undefined ? '' : `:${encodeURIComponent(this.options.password)}@`;
    return `redis://${auth}127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Runs redis-server on this port and directory and waits until it answers PING. */
  async launch(): Promise<void> {
    if (this.running) throw new Error('redis-server is already running');
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', this.dir,
      '--daemonize', 'no',
      '--loglevel', 'warning',
      ...(this.options.password === undefined ? [] : ['--requirepass', this.options.password]),
      ...(this.options.args ?? []),
    ];
    this.stderr = '';
    const cpu = this.options.cpu;
    const child =
      cpu === undefined
        ? spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('taskset', ['-c', String(cpu), 'redis-server', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const collect = (chunk: Buffer): void => {
      if (this.stderr.length < 20_000) this.stderr += chunk.toString();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (!this.running) throw new Error(`redis-server exited at start:\n${this.stderr}`);
      try {
        const answer = await rawCommand(this.port, ['PING'], 1, 500);
        // Up: PONG, or NOAUTH when a password is required.
        if (answer.startsWith('+PONG') || answer.includes('NOAUTH')) return;
        if (answer.startsWith('-LOADING')) {
          // still loading its dump
        } else {
          throw new Error(`unexpected answer to PING: ${JSON.stringify(answer)}`);
        }
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING: ${String(error)}\n${this.stderr}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Sends one command (inline syntax, authenticating first when needed) and returns the raw reply. */
  async command(line: string): Promise<string> {
    const lines = this.options.password === undefined ? [line] : [`AUTH ${this.options.password}`, line];
    const raw = await rawCommand(this.port, lines, lines.length);
    return raw.split('\r\n').slice(lines.length - 1).join('\r\n');
  }

  /**
   * Stops the server with SHUTDOWN: `save` writes its data to dump.rdb first, so that a
   * restart loads it again (without it everything is lost, as after a crash).
   */
  async stop(options: { save?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    try {
      await this.command(options.save === true ? 'SHUTDOWN SAVE' : 'SHUTDOWN NOSAVE');
    } catch {
      // the connection closes as the server goes
    }
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
    if (options.save !== true) rmSync(join(this.dir, 'dump.rdb'), { force: true });
  }

  /** SIGKILL: a crash; nothing is saved. */
  async kill(): Promise<void> {
    if (this.running) this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** Starts it again on the same port and directory (loading dump.rdb if a stop saved one). */
  async restart(): Promise<void> {
    await this.launch();
  }

  /** Kills the server and removes its directory. */
  async close(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
