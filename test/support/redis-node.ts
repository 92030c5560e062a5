// One hotline server node on the Redis engine, in a child process, for the multi-node
// tests and the Redis benchmark:
//
//   node --import tsx test/support/redis-node.ts OPTIONS_JSON
//
// OPTIONS_JSON: {"url": "redis://…", "port": 0, "engine": {RedisEngineOptions without client},
// "memory": true (use the memory engine instead, for the benchmark's baseline)}. Serves
// `/ws` (hotline.v1) and `/healthz`. A connection's presence member comes from the query
// string: `/ws?user=NAME` joins channels as {"id": NAME}. Publish and subscribe rates are
// lifted so tests and benchmarks can publish quickly.
//
// Once listening it prints `redis-node ready port=PORT node=NODE_ID`, and one line
// `redis-node health true|false` whenever the engine's health changes. SIGTERM closes
// everything and exits 0; SIGKILL is the crash the tests want; the node also exits when its
// stdin ends, so a parent that dies does not leave it behind.
//
// The parent's side is `RedisNodeProcess` below: it starts the script, waits for the ready
// line, and kills or stops the node.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { channelsEndpoint } from '../../src/server/channels.js';
import { serve } from '../../src/server/serve.js';
import { MemoryEngine, type Engine } from '../../src/channels/index.js';
import { RedisEngine, type RedisEngineOptions } from '../../src/redis/index.js';
import { ChildLines } from './child-lines.js';
import { stopWhenTold } from './stop-when-told.js';

export interface NodeOptions {
  url?: string;
  port?: number;
  engine?: Omit<RedisEngineOptions, 'client' | 'now'>;
  memory?: boolean;
}

async function runNode(options: NodeOptions): Promise<void> {
  const engine: Engine = options.memory === true ? new MemoryEngine() : new RedisEngine(options.url, options.engine);

  if (process.env.REDIS_NODE_TRACE === '1') traceEngine(engine);
  const endpoint = channelsEndpoint<string | undefined>({
    engine,
    publishRate: { perSecond: 1_000_000, burst: 1_000_000 },
    subscribeRate: { perSecond: 1_000_000, burst: 1_000_000 },
    backpressureLimit: 64 * 1024 * 1024,
    slowConsumer: 'close',
    authenticate(req) {
      const user = new URL(req.url ?? '/', 'http://node').searchParams.get('user');
      return user === null ? { auth: undefined } : { auth: user, member: { id: user } };
    },
  });
  await endpoint.ready;

  let healthy = engine.healthy;
  const watch = setInterval(() => {
    if (engine.healthy !== healthy) {
      healthy = engine.healthy;
      process.stdout.write(`redis-node health ${healthy}\n`);
    }
  }, 10);

  const server = await serve({
    port: options.port ?? 0,
    websocket: { '/ws': endpoint.server },
    request(req, res) {
      if (req.url === '/healthz') {
        const ok = engine.healthy;
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(ok ? 'ok\n' : 'channel engine unavailable\n');
        return;
      }
      res.writeHead(404);
      res.end();
    },
  });
  const nodeId = engine instanceof RedisEngine ? engine.nodeId : 'memory';
  process.stdout.write(`redis-node ready port=${server.port} node=${nodeId}\n`);

  stopWhenTold(async () => {
    clearInterval(watch);
    await server.close();
    await endpoint.hub.close();
  });
}

/** REDIS_NODE_TRACE=1: every call into and out of the engine, on stderr (for debugging tests). */
function traceEngine(engine: Engine): void {
  const t0 = Date.now();
  const log = (text: string): void => void process.stderr.write(`[node ${process.pid} +${Date.now() - t0}] ${text}\n`);
  const start = engine.start.bind(engine);
  engine.start = (listener) =>
    start({
      message: (m) => {
        log(`deliver ${m.channel} ${m.epoch}:${m.offset}`);
        listener.message(m);
      },
      presence: (e) => {
        log(`presence ${e.kind} ${e.channel} ${e.client}`);
        listener.presence(e);
      },
      health: (healthy) => {
        log(`health ${healthy}`);
        listener.health?.(healthy);
      },
    });
  for (const name of ['subscribe', 'unsubscribe', 'history'] as const) {
    const original = (engine[name] as (...args: unknown[]) => Promise<unknown>).bind(engine);
    (engine as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      log(`${name} ${JSON.stringify(args)}`);
      const result = await original(...args);
      if (name === 'history') {
        const r = result as { position: unknown; recovered: boolean; messages: unknown[] };
        log(`history -> ${JSON.stringify(r.position)} recovered=${r.recovered} n=${r.messages.length}`);
      }
      return result;
    };
  }
}

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = join(dirname(SCRIPT), '..', '..');

/** A node started by a test or benchmark: `node --import tsx test/support/redis-node.ts`. */
export class RedisNodeProcess {
  /** Every line the node printed, in order. */
  readonly lines: string[];
  readonly exited: Promise<void>;
  port = 0;
  nodeId = '';
  private readonly output: ChildLines;

  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stdin!.on('error', () => {});
    this.output = new ChildLines(child);
    this.lines = this.output.all;
  }

  /** Starts a node (pinned to `cpu` with taskset when given) and waits until it listens. */
  static async start(options: NodeOptions, cpu?: number): Promise<RedisNodeProcess> {
    const nodeArgs = ['--import', 'tsx', SCRIPT, JSON.stringify(options)];
    const child =
      cpu === undefined
        ? spawn(process.execPath, nodeArgs, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] })
        : spawn('taskset', ['-c', String(cpu), process.execPath, ...nodeArgs], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    const node = new RedisNodeProcess(child);
    try {
      const ready = await node.waitForLine((line) => line.startsWith('redis-node ready '), 30_000);
      node.port = Number(/port=(\d+)/.exec(ready)![1]);
      node.nodeId = /node=(\S+)/.exec(ready)![1]!;
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
    return node;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Whether the node's latest health line says healthy (it starts healthy). */
  get healthy(): boolean {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      if (this.lines[i]!.startsWith('redis-node health ')) return this.lines[i] === 'redis-node health true';
    }
    return true;
  }

  /** Resolves once the node's engine is healthy (now, or at its next `health true` line). */
  async whenHealthy(ms: number): Promise<void> {
    if (this.healthy) return;
    await this.waitForLine((line) => line === 'redis-node health true', ms, this.lines.length);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * The first line (already printed or still to come) that passes `test`, looking only at
   * lines from index `from` on (`lines.length` now: only lines still to come).
   */
  waitForLine(test: (line: string) => boolean, ms: number, from = 0): Promise<string> {
    return this.output.next(test, 'a matching line from the node', ms, from);
  }

  /** SIGKILL: a crash, nothing cleaned up. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM: closes its connections and engine; killed if it takes longer than `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runNode(JSON.parse(process.argv[2] ?? '{}') as NodeOptions);
}
