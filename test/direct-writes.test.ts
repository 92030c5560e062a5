// A connection's frames go straight to its socket's libuv stream (src/node/direct-writes.ts),
// not through the socket's Writable. Seen from real sockets: nothing passes socket.write,
// every byte arrives and is counted, a peer that stops reading leaves the bytes libuv still
// holds in bufferedAmount until it reads, `drain` follows, and a write that fails closes the
// connection.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { Socket as NetSocket, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { serve, type ConnectionHandlers, type WebSocketConnection } from '../src/index.js';
import { countWrites, socketOf } from './support/socket-writes.js';
import { waitFor } from './support/wait.js';

const ECHO_ONCE = fileURLToPath(new URL('./support/echo-once-server.ts', import.meta.url));

/**
 * A server whose /feed may hold 64 MiB for a peer that does not read (far above what the
 * kernel's buffers take, so that libuv's stream holds bytes itself), and a client of it
 * whose socket is paused: it reads nothing until resumed.
 */
async function stalledFeed(handlers: Omit<ConnectionHandlers<undefined>, 'open'>) {
  let opened: WebSocketConnection<undefined> | null = null;
  const app = await serve({
    websocket: {
      '/feed': {
        backpressureLimit: 64 * 1024 * 1024,
        handlers: {
          ...handlers,
          open(conn) {
            opened = conn;
          },
        },
      },
    },
  });
  const ws = new WebSocket(`ws://127.0.0.1:${app.port}/feed`, { perMessageDeflate: false });
  ws.on('error', () => {});
  await once(ws, 'open');
  const conn = await waitFor(() => opened, 'the server connection');
  const clientSocket = Reflect.get(ws, '_socket') as Socket;
  clientSocket.pause();
  return { app, ws, conn, clientSocket };
}

describe('writes straight to the stream', () => {
  test('echoed frames never pass socket.write, and bytesSent counts every byte the peer read', async () => {
    let writes: { calls: number } | null = null;
    let server: WebSocketConnection<undefined> | null = null;
    const app = await serve({
      websocket: {
        '/echo': {
          open(conn) {
            server = conn;
            writes = countWrites(socketOf(conn as WebSocketConnection<unknown>));
          },
          message(conn, message) {
            conn.send(message);
          },
        },
      },
    });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${app.port}/echo`, { perMessageDeflate: false });
      await once(ws, 'open');
      const got: string[] = [];
      ws.on('message', (data: Buffer) => got.push(data.toString()));
      const sent = Array.from({ length: 200 }, (_, i) => `message ${i} `.repeat(1 + (i % 50)));
      for (const text of sent) ws.send(text);
      await waitFor(() => got.length === sent.length, 'every echo', { state: () => `${got.length} of ${sent.length}` });
      assert.deepEqual(got, sent);
      assert.equal(writes!.calls, 0, 'no frame went through socket.write');
      // The client's socket has read the 101 and every frame: bytesSent counts all of them.
      const clientSocket = Reflect.get(ws, '_socket') as Socket;
      assert.equal(server!.bytesSent, clientSocket.bytesRead);
      ws.close();
      await once(ws, 'close');
    } finally {
      await app.close();
    }
  });

  test("the 101 goes straight to the stream too: no server socket's write is called from accept to close", async () => {
    const app = await serve({ websocket: { '/echo': { message: (conn, message) => conn.send(message) } } });
    // Patched on the prototype, before the connection exists: the 101 is written before any handler runs.
    const write = NetSocket.prototype.write as (this: Socket, ...args: unknown[]) => boolean;
    let serverWrites = 0;
    // An own property of net.Socket's prototype, shadowing the Writable's method until deleted.
    NetSocket.prototype.write = function (this: Socket, ...args: unknown[]) {
      if (this.localPort === app.port) serverWrites++;
      return write.apply(this, args);
    } as Socket['write'];
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${app.port}/echo`, { perMessageDeflate: false });
      let status = 0;
      ws.once('upgrade', (response: IncomingMessage) => (status = response.statusCode ?? 0));
      await once(ws, 'open');
      assert.equal(status, 101);
      ws.send('hello');
      const [reply] = (await once(ws, 'message')) as [Buffer];
      assert.equal(reply.toString(), 'hello');
      ws.close(1000);
      const [code] = (await once(ws, 'close')) as [number];
      assert.equal(code, 1000);
      assert.equal(serverWrites, 0, "the 101, the echo and the close frame went past socket.write");
    } finally {
      assert.ok(Reflect.deleteProperty(NetSocket.prototype, 'write'));
      assert.equal(NetSocket.prototype.write, write);
      await app.close();
    }
  });

  test('a peer that stops reading: the bytes libuv holds count as buffered, send says backpressure, and drain follows once it reads', async () => {
    let drains = 0;
    const { app, ws, conn, clientSocket } = await stalledFeed({
      message() {},
      drain() {
        drains++;
      },
    });
    try {
      const got: number[] = [];
      ws.on('message', (data: Buffer) => got.push(data.readUInt32BE(0)));

      // Sends of 16 KiB, each written on its own tick, until the kernel's buffers are full
      // and what is left waits in libuv's queue: send then reports backpressure.
      const payload = Buffer.alloc(16 * 1024);
      let sent = 0;
      let result = 0;
      while (sent < 4000) {
        payload.writeUInt32BE(sent, 0);
        result = conn.send(Buffer.from(payload));
        sent++;
        await new Promise((resolve) => setImmediate(resolve));
        if (result === -1 && conn.bufferedAmount > 1024 * 1024) break;
      }
      assert.equal(result, -1, `send reported backpressure within ${sent} messages`);
      const socket = socketOf(conn as WebSocketConnection<unknown>);
      assert.equal(socket.writableLength, 0, "the socket's Writable holds nothing: the bytes are in the stream");
      assert.ok(conn.bufferedAmount > 1024 * 1024, `bufferedAmount ${conn.bufferedAmount} counts what the stream holds`);
      // Sends that went out at once had their drain already; this one waits for the peer.
      const drainsBefore = drains;

      clientSocket.resume();
      await waitFor(() => drains > drainsBefore, 'the drain handler');
      assert.equal(conn.bufferedAmount, 0);
      await waitFor(() => got.length === sent, 'every message', { state: () => `${got.length} of ${sent}` });
      assert.deepEqual(got, Array.from({ length: sent }, (_, i) => i), 'each once, in order');
      ws.close();
      await once(ws, 'close');
    } finally {
      await app.close();
    }
  });

  test('a peer that resets while the stream holds bytes: the connection closes with 1006, the server serves the next', async () => {
    const closes: number[] = [];
    const { app, conn, clientSocket } = await stalledFeed({
      message(conn, message) {
        conn.send(message);
      },
      close(_conn, code) {
        closes.push(code);
      },
    });
    try {
      const payload = Buffer.alloc(64 * 1024);
      for (let i = 0; i < 200 && conn.bufferedAmount < 1024 * 1024; i++) {
        conn.send(payload);
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.ok(conn.bufferedAmount >= 1024 * 1024, 'the stream holds bytes');
      clientSocket.resetAndDestroy();
      await waitFor(() => closes.length === 1, 'the close handler');
      assert.deepEqual(closes, [1006]);
      assert.equal(conn.readyState, 3);

      const next = new WebSocket(`ws://127.0.0.1:${app.port}/feed`, { perMessageDeflate: false });
      await once(next, 'open');
      next.send('still here');
      const [reply] = (await once(next, 'message')) as [Buffer];
      assert.equal(reply.toString(), 'still here');
      next.close();
      await once(next, 'close');
    } finally {
      await app.close();
    }
  });

  test('with --pending-deprecation (process.binding would warn) frames go through socket.write, and nothing is printed', async () => {
    const run = (flags: string[]) => promisify(execFile)(process.execPath, [...flags, '--import', 'tsx', ECHO_ONCE], { timeout: 60_000 });
    const plain = await run([]);
    assert.equal(plain.stdout.trim(), 'echo hello writes 0');
    const warned = await run(['--pending-deprecation']);
    assert.match(warned.stdout.trim(), /^echo hello writes [1-9]\d*$/);
    assert.equal(warned.stderr, '', 'no deprecation warning');
  });
});
