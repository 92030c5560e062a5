// A hotline echo server with permessage-deflate on (its defaults), run in a child process by
// deflate-limits.test.ts so that its memory can be measured apart from the test's clients.
// Run with `node --expose-gc --import tsx`. Prints {"port": N} once it listens, then answers
// each line read on stdin:
//   rss   → {"rss", "heapUsed", "external", "arrayBuffers", "connections"} after full GCs
//   exit  → closes the server and exits (so does the end of stdin)
import { createInterface } from 'node:readline';
import { serve } from '../../src/server/serve.js';
import { echoHandlers } from '../../src/server/echo.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  process.stderr.write('deflate-memory-server: run with --expose-gc\n');
  process.exit(2);
}

const server = await serve({
  port: 0,
  host: '127.0.0.1',
  websocket: { '/echo': echoHandlers },
  // Timers off, so that nothing but the connections themselves changes between readings.
  endpoint: { perMessageDeflate: true, heartbeatInterval: 0, idleTimeout: 0 },
  // Its 10,000 clients all come from 127.0.0.1: capacity is measured, not one client's share.
  maxConnectionsPerAddress: 0,
  connectionRatePerAddress: null,
  shutdownTimeout: 500,
});
const endpoint = server.endpoints.get('/echo')!;
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'rss') {
    // Several rounds: finalizers and weak callbacks of one collection free more in the next.
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ rss, heapUsed, external, arrayBuffers, connections: endpoint.connections.size })}\n`);
  } else if (line === 'exit') {
    break;
  }
}
await server.close();
process.exit(0);
