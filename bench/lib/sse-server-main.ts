/**
 * The server under test for bench/sse.ts, in a process of its own: `hotline serve`'s app
 * (createApp: /ws and /sse on one hub) without compression, with the publish rate and the
 * per-address stream cap out of the way (every client of the benchmark is on 127.0.0.1).
 *
 *   node --import tsx bench/lib/sse-server-main.ts
 *
 * Prints `ready <port> <pid>` once listening; exits when stdin ends.
 */
import { createApp } from '../../src/server/app.js';
import { Logger } from '../../src/server/log.js';
import { serve } from '../../src/server/serve.js';

const unlimited = { perSecond: 1_000_000, burst: 1_000_000 };
const app = createApp({
  logger: new Logger('silent'),
  perMessageDeflate: false,
  publishRate: unlimited,
  historySize: 1000,
  // Every reader is on 127.0.0.1: no per-address stream count or rate (streams and sessions share them).
  sse: { maxStreamsPerAddress: 1_000_000, maxStreams: 1_000_000, streamRatePerAddress: null },
});
await app.ready;
const server = await serve({ port: 0, host: '127.0.0.1', websocket: app.websocket, request: app.request, maxConnections: 0, maxConnectionsPerAddress: 0, connectionRatePerAddress: null });
process.stdout.write(`ready ${server.port} ${process.pid}\n`);
process.stdin.on('end', () => {
  void server.close().then(() => app.close()).then(() => process.exit(0));
});
process.stdin.resume();
