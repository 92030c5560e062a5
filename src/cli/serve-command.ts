import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Engine } from '../channels/index.js';
import type * as RedisModule from '../redis/index.js';
import { createApp } from '../server/app.js';
import { Logger, type LogLevel } from '../server/log.js';
import { serve } from '../server/serve.js';

export const SERVE_USAGE = `usage: hotline serve [--port 8080] [--host 127.0.0.1] [--max-payload BYTES] [--no-deflate]
                     [--origin ORIGIN ...] [--tls-cert FILE --tls-key FILE] [--log-level info]
                     [--redis URL]

Serves:
  /            index of everything below
  /echo        WebSocket: echoes every message back as it came
  /ws          WebSocket: the hotline.v1 channel protocol (channels, history, recovery, presence)
  /demo/echo   the echo demo page          /demo/chat   the chat demo page
  /inspect     live connections, channels and messages
  /hotline.js  the client SDK as a browser ES module
  /healthz     200 ok while serving        /metrics     Prometheus text format
permessage-deflate is accepted when a client offers it, unless --no-deflate.
--tls-cert/--tls-key (PEM files) serve https and wss instead of http and ws.
--log-level: debug (every message), info (connections; the default), warn, error, silent.
--redis redis://[:password@]host[:port][/db] (or rediss:// for TLS): share channels, history
  and presence with every node that uses the same Redis (default: in memory, this process only).
  /healthz answers 503 while Redis cannot be reached.
`;

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

function fail(message: string): number {
  process.stderr.write(`hotline: ${message}\n`);
  return 2;
}

/** Runs `hotline serve`; resolves to an exit code, or -1 while serving (until a signal). */
export async function serveCommand(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        port: { type: 'string', default: '8080' },
        host: { type: 'string', default: '127.0.0.1' },
        'max-payload': { type: 'string' },
        'no-deflate': { type: 'boolean', default: false },
        origin: { type: 'string', multiple: true },
        'log-level': { type: 'string', default: 'info' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        redis: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    return fail(`${(error as Error).message}\n${SERVE_USAGE}`);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return fail(`--port must be a number from 0 to 65535, not '${values.port}'`);
  let maxPayload: number | undefined;
  if (values['max-payload'] !== undefined) {
    maxPayload = Number(values['max-payload']);
    if (!Number.isInteger(maxPayload) || maxPayload < 0) return fail('--max-payload must be a whole number of bytes');
  }
  const level = values['log-level'] as LogLevel;
  if (!LEVELS.includes(level)) return fail(`--log-level must be one of ${LEVELS.join(', ')}`);
  const logger = new Logger(level);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) {
    return fail('--tls-cert and --tls-key go together');
  }
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (values['tls-cert'] !== undefined && values['tls-key'] !== undefined) {
    const pem: Partial<Record<'cert' | 'key', Buffer>> = {};
    for (const which of ['cert', 'key'] as const) {
      const file = values[`tls-${which}`]!;
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
  if (values.redis !== undefined) {
    if (!/^rediss?:\/\//.test(values.redis)) return fail(`--redis must be a redis:// or rediss:// URL, not '${values.redis}'`);
    // Loaded only when asked for: the `redis` package is an optional peer dependency.
    let redis: typeof RedisModule;
    try {
      redis = await import('../redis/index.js');
    } catch (error) {
      process.stderr.write(`hotline: --redis needs the redis package: npm install redis (${(error as Error).message})\n`);
      return 1;
    }
    engine = new redis.RedisEngine(values.redis);
  }
  const app = createApp({ maxPayload, perMessageDeflate: !values['no-deflate'], origins: values.origin, logger, engine });
  await app.ready;
  let server;
  try {
    server = await serve({ port, host: values.host, websocket: app.websocket, request: app.request, tls });
  } catch (error) {
    await app.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      process.stderr.write(`hotline: port ${port} on ${values.host} is already in use; pick another with --port\n`);
      return 1;
    }
    if (tls !== undefined && !(error as NodeJS.ErrnoException).syscall) {
      process.stderr.write(`hotline: the TLS certificate or key is not usable: ${(error as Error).message}\n`);
      return 1;
    }
    if (code === 'EACCES') {
      process.stderr.write(`hotline: not allowed to listen on port ${port}; pick one above 1023 with --port\n`);
      return 1;
    }
    throw error;
  }
  const base = `${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.port}`;
  const [http, ws] = server.secure ? ['https', 'wss'] : ['http', 'ws'];
  process.stdout.write(
    `hotline listening on ${http}://${base}/\n` +
      `  echo       ${ws}://${base}/echo\n` +
      `  channels   ${ws}://${base}/ws\n` +
      `  demos      ${http}://${base}/demo/echo  ${http}://${base}/demo/chat\n` +
      `  inspect    ${http}://${base}/inspect\n`,
  );
  const running = server;
  const stop = (signal: string): void => {
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
