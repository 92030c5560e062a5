// A server for test/accept.test.ts's collector figures, run with V8's GC trace on stdout:
//
//   node --trace-gc-nvp --import tsx test/support/accept-churn-server.ts serve|node-net
//
// serve:    serve() with an /echo endpoint (its listener accepts with src/node/accept.ts)
// node-net: a plain net.Server, accepted by Node's own onconnection, that ends each
//           connection the client ends (a comparison, not a product path)
//
// Prints `ready PORT`; then on stdin `mark` prints `mark MS` (ms since the process started,
// the clock of the GC trace's lines), and on `exit` closes and exits.
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { serve } from '../../src/server/serve.js';

const mode = process.argv[2];
let port: number;
let close: () => Promise<void>;
if (mode === 'serve') {
  const server = await serve({ port: 0, websocket: { '/echo': { message: (conn, message) => conn.send(message) } } });
  port = server.port;
  close = () => server.close();
} else if (mode === 'node-net') {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.resume();
    socket.on('end', () => socket.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  close = () => new Promise((resolve) => server.close(() => resolve()));
} else {
  throw new Error(`usage: accept-churn-server.ts serve|node-net (got ${mode})`);
}
process.stdout.write(`ready ${port}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'mark') process.stdout.write(`mark ${performance.now()}\n`);
  if (line === 'exit') break;
}
await close();
process.exit(0);
