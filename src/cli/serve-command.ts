import { readFileSync } from 'node:fs';
import type { Engine } from '../channels/index.js';
import type * as RedisModule from '../redis/index.js';
import { isLoopbackAddress } from '../server/admin.js';
import { createApp } from '../server/app.js';
import { Logger } from '../server/log.js';
import { namespaceRetention } from '../server/namespaces.js';
import { ConfigError, CONFIG_ENV, loadServeConfig, sectionHelpEntries, type LoadedConfig } from '../server/config/load.js';
import { describeEntries, describeServeOptions, OptionError } from '../server/options.js';
import { serve } from '../server/serve.js';
import { usageError as fail } from './args.js';
import { banner, MEMORY_ENGINE } from './banner.js';
import { isRestartedWorker, primaryPort, superviseWorkers, takeConnections, workerCount, workerNumber } from './workers.js';

export const SERVE_USAGE = `usage: hotline serve [options]

Serves:
  /            index of everything below
  /echo        WebSocket: echoes every message back as it came
  /ws          WebSocket: the hotline.v1 channel protocol (channels, history, recovery, presence)
  /demo/echo   the echo demo page          /demo/chat   the chat demo page
  /inspect     live connections, channels and messages (see --inspector)
  /hotline.js  the client SDK as a browser ES module
  /healthz     200 ok while serving (open to all)      /metrics     Prometheus text format (see --metrics)

Browsers may connect from the server's own origin (and --origin); clients without an Origin
header always. Durations are in milliseconds, sizes in bytes.

Every option is also a key of the config file (camelCase: --idle-timeout is idleTimeout) and
a variable (HOTLINE_IDLE_TIMEOUT); a flag wins over a variable, a variable over the file.
  --config FILE               a config file: JSON with comments (hotline config init writes
                              one; hotline config check FILE checks it). Also ${CONFIG_ENV}
${describeServeOptions()}${describeEntries(sectionHelpEntries())}`;

/** The soft limit on open files (Linux), or null where it cannot be read. */
function openFileLimit(): number | null {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

/** Descriptors kept for what is not a WebSocket: handshakes in progress, HTTP, files, Redis. */
const DESCRIPTOR_HEADROOM = 256;

/** The exit code for a port that cannot be listened on, having said why; null for another error. */
function listenFailure(error: unknown, host: string, port: number): number | null {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    process.stderr.write(`hotline: port ${port} on ${host} is already in use; pick another with --port\n`);
    return 1;
  }
  if (code === 'EACCES') {
    process.stderr.write(`hotline: not allowed to listen on port ${port}; pick one above 1023 with --port\n`);
    return 1;
  }
  return null;
}

/** Runs `hotline serve`; resolves to an exit code, or -1 while serving (until a signal). */
export async function serveCommand(args: string[]): Promise<number> {
  let loaded: LoadedConfig;
  try {
    loaded = loadServeConfig(args, process.env);
  } catch (error) {
    if (error instanceof OptionError) return fail(error.message);
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  const { config, sections } = loaded;
  const workers = workerCount(config.workers!);
  if (config.redis !== undefined && config.redisCluster !== undefined) return fail('--redis and --redis-cluster: give one (--redis-cluster for a Redis Cluster)');
  if (workers > 1 && config.redis === undefined && config.redisCluster === undefined) {
    return fail(`--workers ${config.workers} needs --redis: each worker is a process of its own, and only a shared engine lets a message published on one reach subscribers on the others`);
  }
  if (workers > 1 && workerNumber() === 0) {
    try {
      return await superviseWorkers({ count: workers, host: config.host!, port: config.port!, log: (line) => process.stderr.write(`${line}\n`), logger: new Logger(config.logLevel!), maxWait: config.handshakeTimeout! });
    } catch (error) {
      return listenFailure(error, config.host!, config.port!) ?? Promise.reject(error);
    }
  }
  // A worker holds its share of the connection limit: the primary hands connections out in turn.
  if (workers > 1 && config.maxConnections! > 0) config.maxConnections = Math.ceil(config.maxConnections! / workers);
  if (workers > 1 && config.maxConnectionsPerAddress! > 0) config.maxConnectionsPerAddress = Math.ceil(config.maxConnectionsPerAddress! / workers);
  const rate = config.connectionRatePerAddress;
  if (workers > 1 && rate != null) {
    config.connectionRatePerAddress = { perSecond: rate.perSecond / workers, burst: Math.ceil((rate.burst ?? rate.perSecond) / workers) };
  }
  const logger = new Logger(config.logLevel!);
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (config.tlsCert !== undefined && config.tlsKey !== undefined) {
    const pem: Partial<Record<'cert' | 'key', Buffer>> = {};
    for (const which of ['cert', 'key'] as const) {
      const file = which === 'cert' ? config.tlsCert : config.tlsKey;
      try {
        pem[which] = readFileSync(file);
      } catch (error) {
        process.stderr.write(`hotline: cannot read --tls-${which} ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}\n`);
        return 1;
      }
    }
    tls = { cert: pem.cert!, key: pem.key! };
  }

  let engine: Engine | undefined;
  let engineShown = MEMORY_ENGINE;
  const redisUrl = config.redis ?? config.redisCluster;
  if (redisUrl !== undefined) {
    // Loaded only when asked for: the `redis` package is an optional peer dependency.
    let redis: typeof RedisModule;
    try {
      redis = await import('../redis/index.js');
    } catch (error) {
      process.stderr.write(`hotline: --redis needs the redis package: npm install redis (${(error as Error).message})\n`);
      return 1;
    }
    const cluster = config.redisCluster !== undefined;
    // The retention options hold for every engine; the memory engine's byte and channel bounds do not apply to Redis.
    const { historySize, historyTtl, idempotencyWindow } = config;
    engine = new redis.RedisEngine(redisUrl, { cluster, durable: config.redisDurable, nodeTtl: config.redisNodeTtl, historySize, historyTtl, idempotencyWindow, channelRetention: sections.namespaces === undefined ? undefined : namespaceRetention(sections.namespaces) });
    engineShown = `${cluster ? 'redis cluster' : 'redis'} ${(await import('../redis/link.js')).redactUrl(redisUrl)}`;
  }
  const host = config.host!;
  // A worker does not listen: its primary holds the port and hands it connections.
  const handed = workers > 1;
  const port = handed ? primaryPort() : config.port!;
  // The table's keys are AppOptions' names; the few that are not the app's are ignored there.
  const app = createApp({ ...config, ...sections, perMessageDeflate: config.deflate, logger, engine });
  await app.ready;
  let server;
  try {
    server = await serve({
      port,
      host,
      websocket: app.websocket,
      request: app.request,
      tls,
      // The app's endpoints have their own options; this one is for upgrades refused before reaching one.
      endpoint: { closeTimeout: config.closeTimeout },
      maxConnections: config.maxConnections,
      maxConnectionsPerAddress: config.maxConnectionsPerAddress,
      connectionRatePerAddress: config.connectionRatePerAddress,
      handshakeTimeout: config.handshakeTimeout,
      shutdownTimeout: config.shutdownTimeout,
      reconnectWindow: config.reconnectWindow,
      goingAway: (reason) => app.closeStreams(reason),
      listen: !handed,
    });
  } catch (error) {
    await app.close();
    if (tls !== undefined && !(error as NodeJS.ErrnoException).syscall) {
      process.stderr.write(`hotline: the TLS certificate or key is not usable: ${(error as Error).message}\n`);
      return 1;
    }
    return listenFailure(error, host, port) ?? Promise.reject(error);
  }
  if (handed) takeConnections((socket) => server.accept(socket));
  const base = `${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`;
  // One banner for the whole server: worker 1 prints it, naming how many share the port.
  if (workerNumber() <= 1 && !isRestartedWorker()) process.stdout.write(
    banner({
      host: server.host,
      port: server.port,
      secure: server.secure,
      engine: engineShown,
      inspector: { access: app.admin.inspector, turnedOff: config.inspector === false },
      metrics: { access: app.admin.metrics, turnedOff: config.metrics === false },
      workers,
    }),
  );
  const exposed = [app.admin.inspector === 'open' && 'the inspector', app.admin.metrics === 'open' && '/metrics'].filter(Boolean);
  if (exposed.length > 0 && !isLoopbackAddress(host)) {
    process.stderr.write(`hotline: warning: ${exposed.join(' and ')} ${exposed.length > 1 ? 'are' : 'is'} open to anyone who can reach ${base}: set HOTLINE_ADMIN_SECRET\n`);
  }
  const files = openFileLimit();
  const maxConnections = config.maxConnections!;
  if (files !== null && maxConnections > 0 && maxConnections + DESCRIPTOR_HEADROOM > files) {
    process.stderr.write(
      `hotline: warning: the open-file limit (${files}) is below --max-connections ${maxConnections} plus ${DESCRIPTOR_HEADROOM}: ` +
        `past ~${Math.max(0, files - DESCRIPTOR_HEADROOM)} connections new ones fail without an answer; raise ulimit -n or lower --max-connections\n`,
    );
  }
  if (config.origins!.includes('*')) {
    process.stderr.write("hotline: warning: --origin '*' lets every web site open /echo and /ws with its visitors' cookies\n");
  }
  const running = server;
  let stopping = false;
  const stop = (signal: string): void => {
    // Once: a worker may hear SIGINT from the terminal and SIGTERM from its primary.
    if (stopping) return;
    stopping = true;
    logger.log('info', 'shutdown', { signal, connections: [...running.endpoints.values()].reduce((n, e) => n + e.connections.size, 0) });
    running
      .close()
      .then(() => app.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return -1;
}
