// A channel endpoint with SSE beside it, in a process of its own, for the tests of what the
// `hotline serve` CLI does not configure yet: an application's `authenticate` (a token from
// the `session` cookie, the `token` query parameter or `Authorization: Bearer`), its
// `canSubscribe` (channels under `private:` are alice's alone) and SSE limits.
//
//   node --import tsx test/support/sse-server.ts SSE_OPTIONS_JSON
//
// Tokens are user names (alice, bob); each user is a presence member `{"id": USER}`. The
// token `where` is refused 403 with the client address `authenticate` saw (loopback peers
// are trusted proxies, so an X-Forwarded-For from the test is believed). Serves
// `/ws`, `/echo` and `/sse` on 127.0.0.1 and prints `sse-server ready port=PORT`. Exits when
// stdin ends or on SIGTERM or SIGINT.
import { channelsEndpoint } from '../../src/server/channels.js';
import { echoHandlers } from '../../src/server/echo.js';
import { serve } from '../../src/server/serve.js';
import { sseEndpoint, type SseOptions } from '../../src/server/sse.js';
import type { UpgradeRequest } from '../../src/node/server.js';
import { stopWhenTold } from './stop-when-told.js';

const USERS = new Set(['alice', 'bob']);

function tokenOf(req: UpgradeRequest): string | undefined {
  const cookie = req.headers.cookie;
  const fromCookie = typeof cookie === 'string' ? /(?:^|;\s*)session=([^;]*)/.exec(cookie)?.[1] : undefined;
  const fromQuery = new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? undefined;
  const authorization = req.headers.authorization;
  const fromHeader = typeof authorization === 'string' && authorization.startsWith('Bearer ') ? authorization.slice(7) : undefined;
  return fromCookie ?? fromQuery ?? fromHeader;
}

const channels = channelsEndpoint<{ user: string }>({
  trustProxy: 'loopback',
  authenticate(req) {
    const token = tokenOf(req);
    if (token === undefined) return { reject: { status: 401, message: 'sign in first' } };
    if (token === 'where') return { reject: { status: 403, message: `from ${req.clientAddress}` } };
    if (!USERS.has(token)) return { reject: { status: 403, message: 'unknown token' } };
    return { auth: { user: token }, user: token, member: { id: token } };
  },
  canSubscribe: ({ auth }, channel) => !channel.startsWith('private:') || auth.user === 'alice',
});
await channels.ready;
const sse = sseEndpoint(channels, JSON.parse(process.argv[2] ?? '{}') as SseOptions);
const server = await serve({
  port: 0,
  host: '127.0.0.1',
  websocket: { '/ws': channels.server, '/echo': echoHandlers },
  request(req, res) {
    if ((req.url ?? '').startsWith('/sse')) return sse.handleRequest(req, res);
    res.writeHead(404).end();
  },
});
process.stdout.write(`sse-server ready port=${server.port}\n`);

stopWhenTold(async () => {
  sse.close();
  await server.close();
});
