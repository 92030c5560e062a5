// 2,000 concurrent `ws` clients on one hotline echo server: each sends five messages of its
// own and must get exactly those five back, in order; then every one closes cleanly with
// 1000, seen by both sides. Connections open in batches so the listen backlog is not
// overwhelmed. Bounded in time, and everything opened is closed again, pass or fail.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { serve, type RunningServer } from '../src/server/serve.js';
import { echoHandlers } from '../src/server/echo.js';
import { waitFor } from './support/wait.js';

const CONNECTIONS = 2_000;
const MESSAGES_EACH = 5;
const BATCH = 100;
const TIME_LIMIT_MS = 60_000;

interface Client {
  index: number;
  ws: WebSocket;
  received: Array<{ text: string; isBinary: boolean }>;
  closed: Promise<{ code: number; reason: string }>;
}

function expectedMessages(index: number): string[] {
  return Array.from({ length: MESSAGES_EACH }, (_, j) => `client ${index} message ${j} ✓`);
}

describe('many concurrent connections', () => {
  let server: RunningServer | undefined;
  const clients: Client[] = [];
  const serverCloses: Array<{ code: number; reason: string }> = [];
  let deadline = Date.now() + TIME_LIMIT_MS;

  /** Waits for `promise`, failing with `what` once the file's time limit has passed. */
  async function inTime<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), Math.max(0, deadline - Date.now()));
    });
    try {
      return await Promise.race([promise, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  function open(port: number, index: number): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`, { perMessageDeflate: false });
    const client: Client = {
      index,
      ws,
      received: [],
      closed: new Promise((resolve) => {
        ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
      }),
    };
    clients.push(client);
    ws.on('message', (data: Buffer, isBinary: boolean) => client.received.push({ text: data.toString(), isBinary }));
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', (error) => reject(new Error(`client ${index} failed: ${error.message}`)));
    });
  }

  function receivedAll(client: Client): Promise<void> {
    if (client.received.length >= MESSAGES_EACH) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (client.received.length >= MESSAGES_EACH) {
          client.ws.off('message', check);
          resolve();
        }
      };
      client.ws.on('message', check);
    });
  }

  after(async () => {
    // Whatever happened above, nothing stays open.
    for (const client of clients) {
      if (client.ws.readyState !== WebSocket.CLOSED) client.ws.terminate();
    }
    await server?.close();
  });

  test(
    `${CONNECTIONS} connections each get exactly their own ${MESSAGES_EACH} messages back, in order, then close with 1000`,
    { timeout: TIME_LIMIT_MS + 5_000 },
    async (t) => {
      deadline = Date.now() + TIME_LIMIT_MS;
      const started = Date.now();
      server = await serve({
        port: 0,
        host: '127.0.0.1',
        // Every client comes from 127.0.0.1: capacity is measured, not one client's share.
        maxConnectionsPerAddress: 0,
        connectionRatePerAddress: null,
        websocket: {
          '/echo': {
            ...echoHandlers,
            close(_conn, code, reason) {
              serverCloses.push({ code, reason });
            },
          },
        },
        endpoint: { closeTimeout: 5_000, heartbeatInterval: 0, idleTimeout: 0 },
        shutdownTimeout: 1_000,
      });
      const port = server.port;
      const endpoint = server.endpoints.get('/echo')!;

      for (let first = 0; first < CONNECTIONS; first += BATCH) {
        const batch: Array<Promise<Client>> = [];
        for (let i = first; i < Math.min(first + BATCH, CONNECTIONS); i++) batch.push(open(port, i));
        await inTime(Promise.all(batch), `opening connections ${first}–${first + BATCH - 1}`);
      }
      const opened = Date.now();
      assert.equal(clients.length, CONNECTIONS);
      assert.equal(endpoint.connections.size, CONNECTIONS, 'the server should hold every connection at once');

      // Everyone sends at once; messages of different connections interleave on the server.
      for (const client of clients) {
        for (const text of expectedMessages(client.index)) client.ws.send(text);
      }
      await inTime(Promise.all(clients.map(receivedAll)), 'the echoes');
      const echoed = Date.now();

      const wrong = clients.filter(
        (c) =>
          c.received.length !== MESSAGES_EACH ||
          c.received.some((m, j) => m.isBinary || m.text !== expectedMessages(c.index)[j]),
      );
      assert.equal(
        wrong.length,
        0,
        `${wrong.length} clients got the wrong messages; the first: client ${wrong[0]?.index} got ${JSON.stringify(wrong[0]?.received)}`,
      );

      for (const client of clients) client.ws.close(1000, 'done');
      const closes = await inTime(Promise.all(clients.map((c) => c.closed)), 'the closing handshakes');
      const closed = Date.now();

      const unclean = closes.filter((c) => c.code !== 1000);
      assert.equal(unclean.length, 0, `${unclean.length} clients did not close with 1000: ${JSON.stringify(unclean.slice(0, 5))}`);
      // Messages that came after the five would have arrived before the close.
      assert.ok(clients.every((c) => c.received.length === MESSAGES_EACH), 'a client got more than its own messages');

      await waitFor(() => serverCloses.length >= CONNECTIONS, "the server's close handler to run for every connection", { ms: 5_000, state: () => `${serverCloses.length} ran` });
      assert.equal(serverCloses.length, CONNECTIONS, "the server's close handler should run once per connection");
      assert.deepEqual(
        serverCloses.filter((c) => c.code !== 1000 || c.reason !== 'done').slice(0, 5),
        [],
        'the server should see every close as 1000 "done"',
      );
      assert.equal(endpoint.connections.size, 0, 'the server should hold no connections after the closes');

      t.diagnostic(
        `${CONNECTIONS} connections: opened in ${opened - started} ms, ` +
          `${CONNECTIONS * MESSAGES_EACH} echoes in ${echoed - opened} ms, closed in ${closed - echoed} ms`,
      );
    },
  );
});
