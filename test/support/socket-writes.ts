// What a server connection writes, watched from its socket: for tests of the direct writer
// (src/node/direct-writes.ts), which should leave socket.write unused.
import type { Socket } from 'node:net';
import type { WebSocketConnection } from '../../src/index.js';

/** The server side's socket of a connection: private, read here to watch its writes. */
export function socketOf(conn: WebSocketConnection<unknown>): Socket {
  return Reflect.get(conn, 'socket') as Socket;
}

/** Counts the calls of `socket.write` from now on. */
export function countWrites(socket: Socket): { calls: number } {
  const counter = { calls: 0 };
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((...args: unknown[]) => {
    counter.calls++;
    return write(...args);
  }) as Socket['write'];
  return counter;
}
