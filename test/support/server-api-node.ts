// A hotline node whose application reaches its channels from HTTP routes, as an app's
// routes and jobs would: the server API (`channelsEndpoint(...).publish`, `.send`, `.call`…)
// behind `POST /api/METHOD`, in a process of its own, on the memory engine or on Redis.
//
//   node --import tsx test/support/server-api-node.ts OPTIONS_JSON
//
// OPTIONS_JSON (all optional): {"redis": URL, "engine": {RedisEngineOptions}, "hub":
// {ChannelHubOptions that are plain JSON: maxPendingCalls, callTimeout, nodeTimeout, …},
// "maxPayload": BYTES}.
//
// Serves on 127.0.0.1:
// - `/ws` (hotline.v1): `?user=NAME` authenticates the connection as user NAME, member
//   {"id": NAME}. Channels `typed:*` take only {"text": string} (a zod schema). The rpc
//   `whoami` answers the caller's client id (how an app learns the ids it may address).
// - `/echo`, and `/topics?topic=T`: a raw endpoint whose connections subscribe to topic T.
// - `POST /api/METHOD` with {"args": [...]}: `channels.METHOD(...args)` for publish,
//   presence, history, send, disconnect, unsubscribe, call; 200 {"result": …}, or 400
//   {"error": {"name", "code", "message", "remote"}} for a ChannelError or CallError.
// - `POST /api/raw-publish` {"topic", "data"}: serve()'s `server.publish(topic, data)`, and
//   the channel endpoint's own `publish`; answers {"reached", "direct": error or reached}.
// - `POST /api/call-many` {"client", "method", "count", "timeout"}: `count` calls at once;
//   answers how many settled with each outcome (for attack tests).
// - `GET /api/stats`: {"rss", "heapUsed", "sessions"}.
//
// Prints `server-api ready port=PORT node=NODE_ID` once listening. Exits on SIGTERM or when
// stdin ends. The parent's side is `ServerApiNode` below.
import { spawn, type ChildProcess } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { CallError, ChannelError, type ChannelHubOptions, type Engine } from '../../src/channels/index.js';
import { RedisEngine, type RedisEngineOptions } from '../../src/redis/index.js';
import { channelsEndpoint, type ChannelsEndpoint } from '../../src/server/channels.js';
import { echoHandlers } from '../../src/server/echo.js';
import { serve } from '../../src/server/serve.js';

export interface ServerApiNodeOptions {
  redis?: string;
  engine?: Omit<RedisEngineOptions, 'client' | 'now'>;
  hub?: Partial<ChannelHubOptions<string | undefined>>;
  maxPayload?: number;
}

const API_METHODS = ['publish', 'presence', 'history', 'send', 'disconnect', 'unsubscribe', 'call'] as const;
type ApiMethod = (typeof API_METHODS)[number];

async function runNode(options: ServerApiNodeOptions): Promise<void> {
  const engine: Engine | undefined = options.redis === undefined ? undefined : new RedisEngine(options.redis, options.engine);
  const channels: ChannelsEndpoint<string | undefined> = channelsEndpoint<string | undefined>({
    ...options.hub,
    engine,
    maxPayload: options.maxPayload,
    heartbeatInterval: 0,
    idleTimeout: 0,
    channels: { 'typed:*': { schema: z.object({ text: z.string() }) } },
    rpc: { whoami: (_params, { client }) => client.id },
    authenticate(req) {
      const user = new URL(req.url ?? '/', 'http://node').searchParams.get('user');
      return user === null ? { auth: undefined } : { auth: user, user, member: { id: user } };
    },
  });
  await channels.ready;

  const server = await serve({
    port: 0,
    websocket: {
      '/ws': channels.server,
      '/echo': echoHandlers,
      '/topics': {
        open(conn) {
          // The topic comes from the connection's URL, which the handlers do not see: one topic for all.
          conn.subscribe('room:1');
        },
        message() {},
      },
    },
    request(req, res) {
      route(req, res).catch((error: unknown) => answer(res, 500, { error: describe(error) }));
    },
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    if (req.method === 'GET' && path === '/api/stats') {
      const { rss, heapUsed } = process.memoryUsage();
      return answer(res, 200, { rss, heapUsed, sessions: channels.hub.metrics.sessions });
    }
    if (req.method !== 'POST' || !path.startsWith('/api/')) return answer(res, 404, { error: { message: 'not found' } });
    const body = JSON.parse((await readBody(req)) || '{}') as Record<string, unknown>;
    const name = path.slice('/api/'.length);
    if (name === 'raw-publish') {
      const { topic, data } = body as { topic: string; data: string };
      const reached = server.publish(topic, data);
      let direct: unknown;
      try {
        direct = channels.server.publish(topic, data);
      } catch (error) {
        direct = describe(error);
      }
      return answer(res, 200, { reached, direct });
    }
    if (name === 'call-many') {
      const { client, method, count, timeout } = body as { client: string; method: string; count: number; timeout: number };
      const outcomes: Record<string, number> = {};
      const calls = Array.from({ length: count }, () =>
        channels.call(client, method, { pad: 'x'.repeat(64) }, { timeout }).then(
          () => 'result',
          (error: unknown) => (error instanceof CallError ? error.code : 'other'),
        ),
      );
      for (const outcome of await Promise.all(calls)) outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      return answer(res, 200, { result: outcomes });
    }
    if (!(API_METHODS as readonly string[]).includes(name)) return answer(res, 404, { error: { message: `no method ${name}` } });
    const args = (body['args'] ?? []) as unknown[];
    try {
      const method = channels[name as ApiMethod] as (...args: unknown[]) => Promise<unknown>;
      return answer(res, 200, { result: (await method(...args)) ?? null });
    } catch (error) {
      if (error instanceof ChannelError || error instanceof CallError) return answer(res, 400, { error: describe(error) });
      throw error;
    }
  }

  process.stdout.write(`server-api ready port=${server.port} node=${channels.hub.nodeId}\n`);
  let stopping = false;
  function stop(): void {
    if (stopping) return;
    stopping = true;
    server
      .close()
      .then(() => channels.hub.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  }
  process.once('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

function describe(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const { name, message } = error;
  const { code, remote } = error as { code?: unknown; remote?: unknown };
  return { name, code, message, remote };
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

// ───────────────────────────── the parent's side ─────────────────────────────

const SCRIPT = fileURLToPath(import.meta.url);

/** What an /api call answered: its result, or the error the server API threw. */
export type ApiAnswer = { result: unknown; error?: undefined } | { result?: undefined; error: { name: string; code: string; message: string; remote?: { code: string; message: string } } };

export class ServerApiNode {
  readonly lines: string[] = [];
  readonly exited: Promise<void>;
  port = 0;
  nodeId = '';
  private waiters: Array<() => void> = [];

  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stdin!.on('error', () => {});
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async start(options: ServerApiNodeOptions = {}): Promise<ServerApiNode> {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const node = new ServerApiNode(child);
    try {
      const ready = await node.line(/^server-api ready port=(\d+) node=(\S+)$/, 30_000);
      node.port = Number(ready[1]);
      node.nodeId = ready[2]!;
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
    return node;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** ws://127.0.0.1:PORT/ws, as user `user` when given. */
  ws(user?: string): string {
    return `ws://127.0.0.1:${this.port}/ws${user === undefined ? '' : `?user=${encodeURIComponent(user)}`}`;
  }

  get origin(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** `channels.METHOD(...args)` in the node, through its HTTP route. */
  async api(method: string, ...args: unknown[]): Promise<ApiAnswer> {
    return (await this.post(method, { args })) as ApiAnswer;
  }

  /** The result of `channels.METHOD(...args)`; throws with the error's code when it failed. */
  async ok<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    const answer = await this.api(method, ...args);
    if (answer.error !== undefined) throw new Error(`${method} failed: ${answer.error.code} ${answer.error.message}`);
    return answer.result as T;
  }

  async post(route: string, body: unknown): Promise<unknown> {
    const response = await fetch(`http://127.0.0.1:${this.port}/api/${route}`, { method: 'POST', body: JSON.stringify(body) });
    return response.json();
  }

  async stats(): Promise<{ rss: number; heapUsed: number; sessions: number }> {
    const response = await fetch(`http://127.0.0.1:${this.port}/api/stats`);
    return (await response.json()) as { rss: number; heapUsed: number; sessions: number };
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) this.child.kill(signal);
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it takes longer than `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private async line(pattern: RegExp, ms: number): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (let seen = 0; ; ) {
      for (; seen < this.lines.length; seen++) {
        const match = pattern.exec(this.lines[seen]!);
        if (match !== null) return match;
      }
      if (!this.running) throw new Error(`server-api node exited (${this.child.exitCode ?? this.child.signalCode})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`server-api node printed no matching line within ${ms} ms: ${this.lines.join(' | ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runNode(JSON.parse(process.argv[2] ?? '{}') as ServerApiNodeOptions);
}
