// A channel server in a process of its own, for attack tests that need hub options the
// `hotline serve` CLI does not take (asynchronous hooks, token authentication, rate limits).
//
//   node --import tsx test/support/hub-server.ts OPTIONS_JSON
//
// OPTIONS_JSON (all optional):
//   "slowHook": true           canSubscribe waits one event-loop turn (setImmediate) and allows
//   "hub": {...}               ChannelHubOptions that are plain JSON (rates, maxPendingRequests, …)
//   "tokens": {TOKEN: {"user": U, "ttl": MS}}
//                              authenticateToken: TOKEN is user U, expiring MS after it is checked
//   "rooms": {CHANNEL: [U, …]} canSubscribe: only these users may read CHANNEL
//
// Serves `/ws` (hotline.v1) and `/echo` on 127.0.0.1, prints `hub-server ready port=PORT`,
// and answers each stdin line `stats` with `hub-server stats JSON` ({rss, heapUsed, pauses,
// sessions}). Exits when stdin ends or on SIGTERM or SIGINT.
import { createInterface } from 'node:readline';
import { ChannelError, type ChannelHubOptions, type ChannelIdentity } from '../../src/channels/index.js';
import { channelsEndpoint } from '../../src/server/channels.js';
import { echoHandlers } from '../../src/server/echo.js';
import { serve } from '../../src/server/serve.js';
import { stopWhenTold } from './stop-when-told.js';

interface Options {
  slowHook?: boolean;
  hub?: Partial<ChannelHubOptions<{ user: string } | undefined>>;
  tokens?: Record<string, { user: string; ttl: number }>;
  rooms?: Record<string, string[]>;
}

type Auth = { user: string } | undefined;

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const tokens = options.tokens;
const rooms = options.rooms ?? {};

const endpoint = channelsEndpoint<Auth>({
  ...options.hub,
  heartbeatInterval: 0,
  idleTimeout: 0,
  authenticateToken:
    tokens === undefined
      ? undefined
      : (token): ChannelIdentity<Auth> => {
          const entry = Object.hasOwn(tokens, token) ? tokens[token] : undefined;
          if (entry === undefined) throw new ChannelError('unauthorized', 'unknown token');
          return { auth: { user: entry.user }, user: entry.user, member: { id: entry.user }, expiresAt: Date.now() + entry.ttl };
        },
  async canSubscribe({ auth }, channel) {
    if (options.slowHook === true) await new Promise((resolve) => setImmediate(resolve));
    const allowed = Object.hasOwn(rooms, channel) ? rooms[channel] : undefined;
    return allowed === undefined || (auth !== undefined && allowed.includes(auth.user));
  },
});
await endpoint.ready;
const server = await serve({ port: 0, host: '127.0.0.1', websocket: { '/ws': endpoint.server, '/echo': echoHandlers } });
process.stdout.write(`hub-server ready port=${server.port}\n`);

stopWhenTold(async () => {
  await server.close();
  await endpoint.hub.close();
});
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'stats') return;
  const { rss, heapUsed } = process.memoryUsage();
  const metrics = endpoint.hub.metrics as unknown as Record<string, unknown>;
  process.stdout.write(`hub-server stats ${JSON.stringify({ rss, heapUsed, pauses: metrics['readPauses'] ?? null, sessions: metrics['sessions'] })}\n`);
});
