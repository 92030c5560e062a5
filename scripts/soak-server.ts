// The server side of `npm run soak`: the `hotline serve` application in a process of its
// own, run with --expose-gc, answering "stats" on stdin with its memory, descriptors and
// counters after a forced garbage collection, so the soak can compare them with a baseline,
// and how late its event loop ran since the previous "stats".
//
// Beside the app's /ws and /echo it serves /hooks, for the soak's attackers that need what
// `hotline serve` has no flag for: a hotline.v1 hub (with a memory engine of its own) whose
// canSubscribe hook is asynchronous (a request waits one event-loop turn for it, as one
// asking a database would), whose `auth` op takes the tokens "alice" and "bob", and where
// `private:USER` may only be read by USER. History reads are not rate limited there and
// abuse does not close a connection, so only maxPendingRequests stands between a request
// flood and the server's memory. The well-behaved clients use the app's /ws only.
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { ChannelError, MemoryEngine, type ChannelIdentity } from '../src/channels/index.js';
import { createApp } from '../src/server/app.js';
import { channelsEndpoint } from '../src/server/channels.js';
import { Logger } from '../src/server/log.js';
import { serve } from '../src/server/serve.js';

const app = createApp({
  logger: new Logger('warn'),
  perMessageDeflate: true,
  // History and publish keys expire 20 s after the last use, so that the state the run
  // leaves behind is gone when the soak compares memory with its baseline.
  engine: new MemoryEngine({ historySize: 1000, historyTtl: 20_000, idempotencyWindow: 20_000 }),
});
await app.ready;

type Auth = { user: string } | undefined;
const TOKENS = new Set(['alice', 'bob']);
const hooks = channelsEndpoint<Auth>({
  engine: new MemoryEngine({ historySize: 100, historyTtl: 20_000, idempotencyWindow: 20_000 }),
  historyRate: { perSecond: 1e9, burst: 1e9 },
  abuseLimit: 1e9,
  authenticateToken(token): ChannelIdentity<Auth> {
    if (!TOKENS.has(token)) throw new ChannelError('unauthorized', 'unknown token');
    return { auth: { user: token }, user: token, member: { id: token } };
  },
  async canSubscribe({ auth }, channel) {
    await new Promise((resolve) => setImmediate(resolve));
    return !channel.startsWith('private:') || channel === `private:${auth?.user ?? ''}`;
  },
});
await hooks.ready;

// Every soak client, and every attacker, connects from 127.0.0.1: a per-address bound would
// count them as one client, so only the overall limit applies here.
const server = await serve({ port: 0, websocket: { ...app.websocket, '/hooks': hooks.server }, request: app.request, maxConnectionsPerAddress: 0, connectionRatePerAddress: null });
process.stdout.write(`ready ${server.port}\n`);

/** The app's counters the soak reports (summed over their labels), and the /hooks hub's. */
const COUNTERS = [
  'hotline_inflate_pauses_total',
  'hotline_message_timeouts_total',
  'hotline_slow_consumer_closes_total',
  'hotline_channel_abuse_closes_total',
  'hotline_channel_read_pauses_total',
];
function counters(): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(COUNTERS.map((name) => [name, 0]));
  for (const line of app.metrics().split('\n')) {
    const match = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+]+)$/.exec(line);
    if (match !== null && match[1]! in out) out[match[1]!]! += Number(match[2]);
  }
  out['hooks_read_pauses'] = hooks.hub.metrics.readPauses;
  return out;
}

/** How late the event loop ran, since the previous `stats`: a server starved by one peer shows it here. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

const gc = (globalThis as { gc?: () => void }).gc;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'stats') return;
  const loop = { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
  loopDelay.reset();
  gc?.();
  gc?.();
  const memory = process.memoryUsage();
  let connections = 0;
  for (const endpoint of server.endpoints.values()) connections += endpoint.connections.size;
  process.stdout.write(
    `stats ${JSON.stringify({ rss: memory.rss, heapUsed: memory.heapUsed, fds: readdirSync('/proc/self/fd').length, connections, loop, counters: counters() })}\n`,
  );
});
process.stdin.on('end', () => {
  void server
    .close()
    .then(() => Promise.all([app.close(), hooks.hub.close()]))
    .then(() => process.exit(0));
});
