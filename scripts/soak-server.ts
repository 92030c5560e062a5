// The server side of `npm run soak`: the `hotline serve` application in a process of its
// own, run with --expose-gc, answering "stats" on stdin with its memory and descriptors
// after a forced garbage collection, so the soak can compare them with a baseline.
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { MemoryEngine } from '../src/channels/index.js';
import { createApp } from '../src/server/app.js';
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
const server = await serve({ port: 0, websocket: app.websocket, request: app.request });
process.stdout.write(`ready ${server.port}\n`);

const gc = (globalThis as { gc?: () => void }).gc;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'stats') return;
  gc?.();
  gc?.();
  const memory = process.memoryUsage();
  let connections = 0;
  for (const endpoint of server.endpoints.values()) connections += endpoint.connections.size;
  process.stdout.write(
    `stats ${JSON.stringify({ rss: memory.rss, heapUsed: memory.heapUsed, fds: readdirSync('/proc/self/fd').length, connections })}\n`,
  );
});
process.stdin.on('end', () => {
  void server.close().then(() => app.close()).then(() => process.exit(0));
});
