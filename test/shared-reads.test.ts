// Server connections read into one buffer shared by all sockets (src/node/shared-reads.ts)
// and copy each read out before anything sees it. Seen from real sockets: what a handler
// keeps stays intact while other connections read, pause() stops the reads and resume()
// delivers what waited, and a socket with bytes already queued keeps reading through 'data'.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import { serve, WebSocket as HotlineWebSocket, type WebSocketConnection } from '../src/index.js';
import { ReadSlab, readIntoShared } from '../src/node/shared-reads.js';
import { waitFor } from './support/wait.js';

/** A TCP server whose accepted sockets are handed to the test; and a client connected to it. */
async function socketPair(): Promise<{ server: Socket; client: Socket; close(): void }> {
  const accepted: Socket[] = [];
  const listener = createServer((socket) => accepted.push(socket));
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const port = (listener.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const server = await waitFor(() => accepted[0], 'the accepted socket');
  return {
    server,
    client,
    close() {
      client.destroy();
      server.destroy();
      listener.close();
    },
  };
}

/**
 * A server whose `/keep` handler keeps every binary message a connection sends (in `kept`)
 * and, on a text message, sends them all back: only then, after the other connections' reads.
 */
async function keepingServer() {
  const kept = new Map<WebSocketConnection<undefined>, Buffer[]>();
  const server = await serve({
    websocket: {
      '/keep': {
        message(conn, message) {
          if (typeof message === 'string') {
            for (const data of kept.get(conn) ?? []) conn.send(data, { binary: true });
            return;
          }
          const list = kept.get(conn) ?? [];
          list.push(message);
          kept.set(conn, list);
        },
      },
    },
  });
  return { server, kept };
}

/** `count` ws clients of the keeping server, once open. */
function openClients(port: number, count: number): Promise<WebSocket[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/keep`, { perMessageDeflate: false });
      await once(ws, 'open');
      return ws;
    }),
  );
}

/** Resolves to the first `count` messages `ws` receives from now on. */
function messagesBack(ws: WebSocket, count: number, label: string): Promise<Buffer[]> {
  const got: Buffer[] = [];
  ws.on('message', (data: Buffer) => got.push(data));
  return waitFor(() => got.length === count && got, label, 30_000);
}

describe('reads into one shared buffer', () => {
  test('a plain TCP socket reads this way: each read a buffer of its own, pause() holds reads back, resume() delivers them', async () => {
    const pair = await socketPair();
    try {
      const chunks: Buffer[] = [];
      assert.equal(
        readIntoShared(pair.server, (chunk) => chunks.push(chunk)),
        true,
        'this Node has the slots that shared reads need',
      );
      pair.server.resume();
      pair.client.write('first');
      await waitFor(() => chunks.length === 1, 'the first read');
      pair.client.write('second');
      await waitFor(() => chunks.length === 2, 'the second read');
      assert.deepEqual(chunks.map(String), ['first', 'second'], 'the first read is not overwritten by the second');
      // Each read has a store of exactly its size: one the protocol keeps (a partial message)
      // holds its own bytes, not a slab of the buffer pool with other connections' reads.
      assert.deepEqual(
        chunks.map((chunk) => chunk.buffer.byteLength),
        chunks.map((chunk) => chunk.length),
      );

      pair.server.pause();
      pair.client.write('held');
      // Paused, the socket does not read at all: the bytes wait in the kernel. Had it read
      // them, it would have by the time a connection made after them is accepted.
      const probe = await socketPair();
      probe.close();
      assert.equal(chunks.length, 2, 'nothing read while paused');
      pair.server.resume();
      await waitFor(() => chunks.length === 3, 'the held read after resume()');
      assert.equal(String(chunks[2]), 'held');

      const ended = once(pair.server, 'end');
      pair.client.end();
      await ended;
    } finally {
      pair.close();
    }
  });

  test("with a slab, a socket's small reads are slices of that slab and a larger one has a store of its own; another socket's slab is its own", async () => {
    const pairs = [await socketPair(), await socketPair()];
    try {
      const slabs = new Map<Socket, ReadSlab>(pairs.map((pair) => [pair.server, new ReadSlab()]));
      const chunks = new Map<Socket, Buffer[]>(pairs.map((pair) => [pair.server, []]));
      const onChunk = function (this: Socket, chunk: Buffer): void {
        chunks.get(this)!.push(chunk);
      };
      for (const pair of pairs) {
        assert.equal(readIntoShared(pair.server, onChunk, (socket) => slabs.get(socket)!), true);
        pair.server.resume();
      }
      const large = Buffer.alloc(2000, 'x');
      for (const [i, pair] of pairs.entries()) {
        const got = chunks.get(pair.server)!;
        for (const [n, text] of [`a${i}`, `b${i}`, `c${i}`].entries()) {
          pair.client.write(text);
          await waitFor(() => got.length === n + 1, `read ${n + 1} of socket ${i}`);
        }
        pair.client.write(large);
        await waitFor(() => got.reduce((sum, chunk) => sum + chunk.length, 0) === 6 + large.length, `the large read of socket ${i}`);
        assert.deepEqual(got.slice(0, 3).map(String), [`a${i}`, `b${i}`, `c${i}`], 'no read is overwritten by a later one');
        assert.ok(Buffer.concat(got.slice(3)).equals(large));
        // The first small read has a store of its own: a connection that reads once (a close
        // frame) and ends would pay for a whole slab.
        assert.equal(got[0]!.buffer.byteLength, 2);
        assert.equal(got[1]!.buffer, got[2]!.buffer, 'the later small reads share the slab');
        assert.equal(got[1]!.buffer.byteLength, 2048);
        for (const chunk of got.slice(3)) if (chunk.length > 512) assert.equal(chunk.buffer.byteLength, chunk.length, 'a large read has its own store');
      }
      const [first, second] = pairs.map((pair) => chunks.get(pair.server)![1]!);
      assert.notEqual(first!.buffer, second!.buffer, 'two sockets never share a slab');
    } finally {
      for (const pair of pairs) pair.close();
    }
  });

  test('a server hands each connection\'s handler Buffers whose ArrayBuffer holds only that connection\'s bytes', async () => {
    const { server, kept } = await keepingServer();
    try {
      const clients = await openClients(server.port, 4);
      const back = clients.map((ws, c) => messagesBack(ws, 20, `connection ${c}'s messages back`));
      // Interleaved: connection c's message i goes out after every connection's message i - 1.
      for (let i = 0; i < 20; i++) {
        for (const [c, ws] of clients.entries()) ws.send(Buffer.from(`connection ${c} message ${i}`));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      for (const ws of clients) ws.send('done');
      await Promise.all(back);
      const stores = [...kept.values()].map((messages) => new Set(messages.map((message) => message.buffer)));
      assert.equal(stores.length, 4);
      for (const [c, own] of stores.entries()) {
        assert.ok(own.size < 20, `connection ${c}'s small messages share slabs (${own.size} stores for 20)`);
        for (const [d, other] of stores.entries()) {
          if (d !== c) for (const store of own) assert.ok(!other.has(store), `connections ${c} and ${d} share no store`);
        }
      }
      for (const ws of clients) ws.close();
    } finally {
      await server.close();
    }
  });

  test('a socket with bytes already queued in its stream keeps reading through data, so that they come first', async () => {
    const pair = await socketPair();
    try {
      pair.server.pause();
      pair.client.write('early');
      await waitFor(() => pair.server.readableLength > 0, 'the early bytes queued in the stream');
      assert.equal(readIntoShared(pair.server, () => {}), false);
      pair.server.resume();
      const [data] = (await once(pair.server, 'data')) as [Buffer];
      assert.equal(String(data), 'early');
    } finally {
      pair.close();
    }
  });

  test('40 connections at once, binary messages up to 200 KiB in fragments: every message a handler keeps comes back byte for byte', async () => {
    const { server } = await keepingServer();
    try {
      const clients = await openClients(server.port, 40);
      const sent = clients.map(() => Array.from({ length: 12 }, (_, i) => randomBytes(1 + ((i * 17_389) % (200 * 1024)))));
      const received = clients.map((ws, c) => messagesBack(ws, sent[c]!.length, `connection ${c}'s messages back`));
      await Promise.all(
        clients.map(async (ws, c) => {
          for (const data of sent[c]!) {
            // Three fragments: a message's parts come in different reads.
            const third = Math.ceil(data.length / 3);
            ws.send(data.subarray(0, third), { binary: true, fin: false });
            ws.send(data.subarray(third, 2 * third), { binary: true, fin: false });
            ws.send(data.subarray(2 * third), { binary: true, fin: true });
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
          ws.send('done');
        }),
      );
      const got = await Promise.all(received);
      for (const [c, messages] of got.entries()) {
        assert.equal(messages.length, sent[c]!.length);
        for (const [i, data] of messages.entries()) assert.ok(data.equals(sent[c]![i]!), `connection ${c}, message ${i} (${sent[c]![i]!.length} B) intact`);
      }
      for (const ws of clients) ws.close();
    } finally {
      await server.close();
    }
  });

  test("hotline's Node client reads this way too: 20 clients at once, binary messages up to 200 KiB, every one kept intact", async () => {
    const wss = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
    await once(wss, 'listening');
    const sent = new Map<string, Buffer[]>();
    wss.on('connection', (ws, req) => {
      const messages = Array.from({ length: 12 }, (_, i) => randomBytes(1 + ((i * 17_389) % (200 * 1024))));
      sent.set(req.url!, messages);
      for (const data of messages) ws.send(data);
    });
    try {
      const port = (wss.address() as { port: number }).port;
      const results = await Promise.all(
        Array.from({ length: 20 }, async (_, c) => {
          const client = new HotlineWebSocket(`ws://127.0.0.1:${port}/c${c}`);
          client.binaryType = 'nodebuffer';
          const got: Buffer[] = [];
          client.addEventListener('message', (event) => got.push(event.data as Buffer));
          await waitFor(() => got.length === 12, `client ${c}'s messages`, 30_000);
          client.close();
          return { path: `/c${c}`, got };
        }),
      );
      for (const { path, got } of results) {
        for (const [i, data] of got.entries()) assert.ok(data.equals(sent.get(path)![i]!), `${path}, message ${i} intact`);
      }
    } finally {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    }
  });

  // What is not an upgrade to one of serve()'s own paths goes on to node:http with the bytes
  // read so far, and node:http reads the rest: none may be lost on the way.
  test('a request serve() hands on to node:http gets every byte after its head: a body written in pieces, and frames after an upgrade another listener takes', async () => {
    const bodies: string[] = [];
    let requests = 0;
    const server = await serve({
      websocket: { '/echo': { message() {} } },
      request(req, res) {
        requests++;
        const parts: Buffer[] = [];
        req.on('data', (part: Buffer) => parts.push(part));
        req.on('end', () => {
          bodies.push(Buffer.concat(parts).toString());
          res.end('ok');
        });
      },
    });
    const wss = new WsServer({ noServer: true });
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`other: ${String(data)}`)));
    server.http.on('upgrade', (req: { url?: string }, socket, head: Buffer) => {
      if (req.url === '/other') wss.handleUpgrade(req as never, socket as Socket, head, (ws) => wss.emit('connection', ws, req));
    });
    try {
      const socket = connect(server.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nConnection: close\r\n\r\nfirst');
      // The rest of the body only once node:http has the request: it comes in a read of its own.
      await waitFor(() => requests === 1, 'the request at node:http');
      socket.end(' second');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      await once(socket, 'close');
      assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nok$/);
      assert.deepEqual(bodies, ['first second']);

      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/other`);
      await once(ws, 'open');
      const replies: string[] = [];
      ws.on('message', (data) => replies.push(String(data)));
      ws.send('one');
      ws.send('two');
      await waitFor(() => replies.length === 2, 'both replies');
      assert.deepEqual(replies, ['other: one', 'other: two']);
      ws.close();
    } finally {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await server.close();
    }
  });
});
