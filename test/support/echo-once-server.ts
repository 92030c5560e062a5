// A process that serves `/echo`, has a `ws` client send one message and get it back, and
// prints how many times the server's socket.write was called on the way:
//
//   node [--pending-deprecation] --import tsx test/support/echo-once-server.ts
//
// Prints `echo <reply> writes <count>` and exits 0. Run with --pending-deprecation it shows
// that the frames then go through socket.write, with no deprecation warning on stderr.
import { once } from 'node:events';
import WebSocket from 'ws';
import { serve } from '../../src/server/serve.js';
import { countWrites, socketOf } from './socket-writes.js';

let writes = { calls: 0 };
const server = await serve({
  port: 0,
  websocket: {
    '/echo': {
      open(conn) {
        writes = countWrites(socketOf(conn));
      },
      message(conn, message) {
        conn.send(message);
      },
    },
  },
});
const ws = new WebSocket(`ws://127.0.0.1:${server.port}/echo`, { perMessageDeflate: false });
await once(ws, 'open');
ws.send('hello');
const [reply] = (await once(ws, 'message')) as [Buffer];
process.stdout.write(`echo ${reply.toString()} writes ${writes.calls}\n`);
ws.close();
await once(ws, 'close');
await server.close();
