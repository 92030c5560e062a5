// The whole `hotline serve` application (createApp: /ws, /echo, the HTTP API, the
// inspector, /metrics) in a process of its own, with AppOptions the CLI cannot set yet
// (the API key, proxy hooks, tokens), on the memory engine or on Redis:
//
//   node --import tsx test/support/app-server.ts OPTIONS_JSON
//
// OPTIONS_JSON: AppOptions that are plain JSON, plus "redis": URL for the Redis engine and
// "users": true to authenticate /ws connections from the query string (`/ws?user=NAME`
// connects as user NAME, presence member {"id": NAME}), or "jwtSecret": SECRET to take
// them from an HS256 connection token in `?token=` (its `sub` the user and member id, its
// `info` the member's info; a bad token refused with 401): a stand-in for the server's own
// token verification until that lands.
// Logs at warn level to stderr. Prints `listening on http://127.0.0.1:PORT/ node=NODE_ID` once it listens,
// or `app-server failed: …` and exits 1 when createApp refuses the options; exits on SIGTERM
// or when its stdin ends. The parent's side is startAppTarget below (or startScriptTarget).
import { fileURLToPath } from 'node:url';
import type { ChannelIdentity, Engine } from '../../src/channels/index.js';
import type { UpgradeRejection } from '../../src/node/server.js';
import type { RateLimit } from '../../src/channels/rate-limit.js';
import type { Json, Member } from '../../src/wire/index.js';
import { createApp, type AppOptions } from '../../src/server/app.js';
import { Logger } from '../../src/server/log.js';
import { serve } from '../../src/server/serve.js';
import type { AttackTarget } from './attack.js';
import { startScriptTarget } from './limits-target.js';
import { stopWhenTold } from './stop-when-told.js';

export interface AppServerOptions extends Omit<AppOptions, 'engine' | 'logger' | 'authenticate'> {
  redis?: string;
  /** serve()'s limit on new connections per client address (its default when absent). */
  connectionRatePerAddress?: RateLimit | null;
  users?: boolean;
  jwtSecret?: string;
}

type Authenticate = NonNullable<AppOptions['authenticate']>;

function fromQuery(): Authenticate {
  return (req) => {
    const user = new URL(req.url ?? '/', 'http://app').searchParams.get('user');
    return user === null ? { auth: undefined } : { auth: user, user, member: { id: user } };
  };
}

async function fromToken(secret: string): Promise<Authenticate> {
  const { jwtVerify } = await import('jose');
  const key = new TextEncoder().encode(secret);
  return async (req): Promise<ChannelIdentity<unknown> | { reject: UpgradeRejection }> => {
    const token = new URL(req.url ?? '/', 'http://app').searchParams.get('token');
    if (token === null) return { reject: { status: 401, message: 'a token is required' } };
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] });
      const user = String(payload.sub);
      const member: Member = { id: user };
      if (payload.info !== undefined) member.info = payload.info as Json;
      return { auth: payload, user, member, expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000 };
    } catch (error) {
      return { reject: { status: 401, message: `bad token: ${(error as Error).message}` } };
    }
  };
}

const SCRIPT = fileURLToPath(import.meta.url);

/** Starts this script with `options` as an AttackTarget. */
export function startAppTarget(options: AppServerOptions, nodeArgs: readonly string[] = []): Promise<AttackTarget> {
  return startScriptTarget(SCRIPT, options as Record<string, unknown>, nodeArgs);
}

async function run(options: AppServerOptions): Promise<void> {
  const { redis, users, jwtSecret, connectionRatePerAddress, ...appOptions } = options;
  let engine: Engine | undefined;
  if (redis !== undefined) engine = new (await import('../../src/redis/index.js')).RedisEngine(redis);
  let app;
  try {
    app = createApp({
      ...appOptions,
      engine,
      logger: new Logger('warn', (line) => process.stderr.write(line)),
      authenticate: jwtSecret !== undefined ? await fromToken(jwtSecret) : users === true ? fromQuery() : undefined,
    });
  } catch (error) {
    // A refusal of the options (a short secret, a bad key) is what some tests look for.
    process.stdout.write(`app-server failed: ${(error as Error).message}\n`);
    process.exit(1);
  }
  await app.ready;
  const server = await serve({ port: 0, host: '127.0.0.1', websocket: app.websocket, request: app.request, shutdownTimeout: 500, connectionRatePerAddress });
  const node = engine !== undefined && 'nodeId' in engine ? String(engine.nodeId) : 'memory';
  process.stdout.write(`listening on http://127.0.0.1:${server.port}/ node=${node}\n`);
  stopWhenTold(async () => {
    await server.close();
    await app.close();
  });
}

if (process.argv[1] === SCRIPT) await run(JSON.parse(process.argv[2] ?? '{}') as AppServerOptions);
