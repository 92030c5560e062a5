// The server API beyond echo: topics, the broker, the upgrade hook, limits, heartbeats,
// idle time-outs, backpressure and Blob sends, seen from real clients.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { connect, type Socket } from 'node:net';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import { attach, MessageBroker, serve, SendResult, type ConnectionHandlers, type RunningServer, type WebSocketConnection } from '../src/index.js';
import { buildClientRequest } from '../src/protocol/handshake.js';
import { clientFrame } from './support/attack.js';
import { upgradeSocket } from './support/raw-upgrade.js';
import { waitFor } from './support/wait.js';

const quiet: ConnectionHandlers<undefined> = { message() {} };

async function client(server: { port: number }, path = '/ws'): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`);
  await once(ws, 'open');
  return ws;
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString())));
}

/** A raw TCP client that completes the handshake and then does only what the test says. */
async function rawClient(port: number, path = '/ws'): Promise<Socket> {
  return (await upgradeSocket(port, path)).socket;
}

/** A masked text frame, as a client sends it. */
function clientTextFrame(text: string): Buffer {
  return clientFrame(0x1, Buffer.from(text));
}

describe('topics', () => {
  test('publish reaches every subscriber once, counts them, and skips the publishing connection', async () => {
    const server: RunningServer = await serve({
      websocket: {
        '/ws': {
          message(conn, message) {
            const text = String(message);
            if (text.startsWith('sub ')) {
              conn.subscribe(text.slice(4));
              conn.send('subscribed');
            } else if (text.startsWith('unsub ')) {
              conn.unsubscribe(text.slice(6));
              conn.send('unsubscribed');
            } else if (text.startsWith('relay ')) {
              conn.send(`relayed to ${conn.publish('news', text.slice(6))}`);
            }
          },
        },
      },
    });
    try {
      const clients = await Promise.all([client(server), client(server), client(server)]);
      for (const ws of clients) {
        const ack = nextMessage(ws);
        ws.send('sub news');
        assert.equal(await ack, 'subscribed');
      }
      const endpoint = server.endpoints.get('/ws')!;
      assert.equal(endpoint.subscriberCount('news'), 3);

      const got = clients.map((ws) => nextMessage(ws));
      assert.equal(server.publish('news', 'hello all'), 3);
      assert.deepEqual(await Promise.all(got), ['hello all', 'hello all', 'hello all']);

      // A connection's own publish goes to the others only.
      const others = [nextMessage(clients[1]!), nextMessage(clients[2]!)];
      const reply = nextMessage(clients[0]!);
      clients[0]!.send('relay from zero');
      assert.equal(await reply, 'relayed to 2');
      assert.deepEqual(await Promise.all(others), ['from zero', 'from zero']);

      const unsubscribed = nextMessage(clients[2]!);
      clients[2]!.send('unsub news');
      assert.equal(await unsubscribed, 'unsubscribed');
      assert.equal(server.publish('news', 'two left'), 2);
      assert.equal(server.publish('nobody-here', 'x'), 0);

      // Closing a connection drops its subscriptions.
      clients[0]!.close();
      await waitFor(() => endpoint.subscriberCount('news') === 1, 'the subscription to go');
      for (const ws of clients) ws.close();
    } finally {
      await server.close();
    }
  });

  test('a binary publish arrives as binary with the same bytes', async () => {
    const server = await serve({ websocket: { '/ws': { open: (conn) => conn.subscribe('t'), message() {} } } });
    try {
      const ws = await client(server);
      const got = new Promise<[Buffer, boolean]>((resolve) => ws.once('message', (d: Buffer, b: boolean) => resolve([d, b])));
      assert.equal(server.publish('t', new Uint8Array([1, 2, 3])), 1);
      const [data, binary] = await got;
      assert.equal(binary, true);
      assert.deepEqual([...data], [1, 2, 3]);
      ws.close();
    } finally {
      await server.close();
    }
  });
});

describe('MessageBroker', () => {
  test('delivers to each subscriber, counts them, survives a throwing callback', () => {
    const errors: unknown[] = [];
    const broker = new MessageBroker<string>({ onError: (error) => errors.push(error) });
    const seen: string[] = [];
    const a = (m: string): void => {
      seen.push(`a:${m}`);
    };
    const bad = (): void => {
      throw new Error('subscriber failure');
    };
    broker.subscribe('room', a);
    broker.subscribe('room', bad);
    broker.subscribe('room', (m) => seen.push(`c:${m}`));
    assert.equal(broker.publish('room', 'hi'), 3);
    assert.deepEqual(seen, ['a:hi', 'c:hi']);
    assert.equal(errors.length, 1);
    assert.equal(broker.unsubscribe('room', a), true);
    assert.equal(broker.unsubscribe('room', a), false);
    assert.equal(broker.publish('room', 'again'), 2);
    assert.equal(broker.publish('empty', 'x'), 0);
  });

  test("over a server's topics: one publish reaches callbacks and subscribed connections, counted together", async () => {
    const server = await serve({
      websocket: {
        '/ws': {
          message(conn, message) {
            conn.subscribe(String(message));
            conn.send('subscribed');
          },
        },
      },
    });
    try {
      const broker = new MessageBroker<string | Buffer>({ servers: [server] });
      const heard: string[] = [];
      broker.subscribe('news', (message, channel) => heard.push(`${channel}:${String(message)}`));
      const a = await client(server);
      const b = await client(server);
      const other = await client(server);
      for (const [ws, topic] of [[a, 'news'], [b, 'news'], [other, 'sport']] as const) {
        const ack = nextMessage(ws);
        ws.send(topic);
        assert.equal(await ack, 'subscribed');
      }
      assert.equal(broker.subscriberCount('news'), 3, 'one callback, two connections');
      let otherGot = 0;
      other.on('message', () => otherGot++);
      const atA = nextMessage(a);
      const atB = nextMessage(b);
      assert.equal(broker.publish('news', 'extra'), 3);
      assert.deepEqual(heard, ['news:extra'], 'the callback is told synchronously');
      assert.deepEqual(await Promise.all([atA, atB]), ['extra', 'extra']);
      // server.publish reaches connections only: callbacks hear what goes through the broker.
      assert.equal(server.publish('news', 'direct'), 2);
      assert.deepEqual(heard, ['news:extra']);
      // WebSocket subscribers need bytes: an object is refused before anyone is told.
      const objects = new MessageBroker<unknown>({ servers: [server] });
      objects.subscribe('news', () => heard.push('object'));
      assert.throws(() => objects.publish('news', { not: 'bytes' }), TypeError);
      assert.deepEqual(heard, ['news:extra']);
      assert.equal(otherGot, 0, "another topic's subscriber got nothing");
      for (const ws of [a, b, other]) ws.close();
    } finally {
      await server.close();
    }
  });
});

describe('the upgrade hook', () => {
  test('decides the connection data, or refuses with an HTTP status before the handshake', async () => {
    const opened: string[] = [];
    const server = await serve({
      websocket: {
        '/ws': {
          async upgrade(req) {
            await new Promise((resolve) => setImmediate(resolve)); // an asynchronous hook
            const token = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
            if (token === 'crash') throw new Error('hook failure');
            if (token !== 'secret') return { reject: { status: 401, message: 'bad token', headers: { 'WWW-Authenticate': 'Bearer' } } };
            return { data: undefined };
          },
          handlers: { open: (conn) => opened.push(conn.remoteAddress), message() {} },
        },
      },
    });
    try {
      const ok = await client(server, '/ws?token=secret');
      assert.equal(opened.length, 1);
      ok.close();
      for (const [token, status] of [['wrong', 401], ['crash', 500]] as const) {
        const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?token=${token}`);
        const [, response] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number; headers: Record<string, string> }];
        assert.equal(response.statusCode, status);
        if (status === 401) assert.equal(response.headers['www-authenticate'], 'Bearer');
        ws.on('error', () => {});
        ws.terminate();
      }
      assert.equal(server.endpoints.get('/ws')!.counters.rejected, 2);
    } finally {
      await server.close();
    }
  });

  test('a hook that decides at once (no promise) accepts, refuses with its status, or answers 500 when it throws', async () => {
    const server = await serve({
      websocket: {
        '/ws': {
          upgrade(req) {
            const token = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
            if (token === 'crash') throw new Error('hook failure');
            return token === 'secret' ? { data: undefined } : { reject: { status: 403, message: 'no' } };
          },
          handlers: { message: (conn, m) => conn.send(m) },
        },
      },
    });
    try {
      const ok = await client(server, '/ws?token=secret');
      ok.send('hi');
      const [echoed] = (await once(ok, 'message')) as [Buffer];
      assert.equal(echoed.toString(), 'hi');
      ok.close();
      for (const [token, status] of [['wrong', 403], ['crash', 500]] as const) {
        const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?token=${token}`);
        const [, response] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
        assert.equal(response.statusCode, status);
        ws.on('error', () => {});
        ws.terminate();
      }
    } finally {
      await server.close();
    }
  });

  test('sees the client address: the peer, or behind trusted proxies the one they forwarded, as the connection will have it', async () => {
    const seen: Array<string | undefined> = [];
    const opened: string[] = [];
    const endpoint = {
      upgrade(req: { clientAddress?: string }) {
        seen.push(req.clientAddress);
        return { data: undefined };
      },
      handlers: { open: (conn: WebSocketConnection) => opened.push(conn.remoteAddress), message() {} },
    };
    const trusting = await serve({ websocket: { '/ws': { ...endpoint, trustProxy: 'loopback' } } });
    const plain = await serve({ websocket: { '/ws': endpoint } });
    try {
      const forwarded = { 'X-Forwarded-For': '203.0.113.9' };
      for (const server of [trusting, plain]) {
        const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, { headers: forwarded });
        await once(ws, 'open');
        ws.close();
      }
      assert.deepEqual(seen, ['203.0.113.9', '127.0.0.1'], 'the forwarded address only from a trusted proxy');
      assert.deepEqual(opened, seen, 'what the hook saw is the connection’s remoteAddress');
    } finally {
      await Promise.all([trusting.close(), plain.close()]);
    }
  });

  test('maxConnections answers 503 past the limit and others keep working', async () => {
    const server = await serve({ websocket: { '/ws': { message: (conn, m) => conn.send(m) } }, endpoint: { maxConnections: 2 } });
    try {
      const a = await client(server);
      const b = await client(server);
      const c = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
      const [, response] = (await once(c, 'unexpected-response')) as [unknown, { statusCode: number }];
      assert.equal(response.statusCode, 503);
      c.on('error', () => {});
      c.terminate();
      const echo = nextMessage(a);
      a.send('still here');
      assert.equal(await echo, 'still here');
      a.close();
      b.close();
    } finally {
      await server.close();
    }
  });
});

describe('refused upgrades', () => {
  /** Connections the http server holds (server-side sockets not yet closed). */
  const held = (http: ReturnType<typeof createServer>): Promise<number> =>
    new Promise((resolve, reject) => http.getConnections((error, count) => (error ? reject(error) : resolve(count))));

  test('a refused peer that never reads nor closes loses its socket when closeTimeout runs out; one that closes, at once', async (t) => {
    // The refusal's timer is mocked: the test moves it, and waits (on real time) for the
    // sockets the server holds.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const CLOSE_TIMEOUT = 300;
    const http = createServer();
    const endpoints = attach(http, {
      websocket: { '/ws': { handlers: quiet, upgrade: () => ({ reject: { status: 401, message: 'who are you' } }) }, '/echo': quiet },
      endpoint: { closeTimeout: CLOSE_TIMEOUT },
    });
    // The 404 is refused in the 'upgrade' event itself. Counted around the event rather than
    // by a listener of its own: attach() leaves unknown paths to any other 'upgrade' listener.
    let upgrades = 0;
    const emit = http.emit.bind(http);
    http.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
      const heard = (emit as (name: string | symbol, ...rest: unknown[]) => boolean)(event, ...args);
      if (event === 'upgrade') upgrades++;
      return heard;
    }) as typeof http.emit;
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const port = (http.address() as { port: number }).port;
    const peers: Socket[] = [];
    try {
      // Refused by the upgrade hook (401), by the handshake checks (426), for want of an endpoint (404).
      const requests = [
        buildClientRequest({ host: `127.0.0.1:${port}`, path: '/ws' }).request,
        buildClientRequest({ host: `127.0.0.1:${port}`, path: '/echo' }).request.replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 8'),
        buildClientRequest({ host: `127.0.0.1:${port}`, path: '/nowhere' }).request,
      ];
      for (const request of requests) {
        const peer = connect(port, '127.0.0.1');
        peer.pause(); // never reads, never ends
        peer.write(request);
        peers.push(peer);
      }
      await waitFor(
        () => upgrades === 3 && endpoints.endpoints.get('/ws')!.counters.rejected === 1 && endpoints.endpoints.get('/echo')!.counters.rejected === 1,
        'the refusals',
      );
      t.mock.timers.tick(CLOSE_TIMEOUT - 1);
      assert.equal(await held(http), 3, 'the server holds the refused sockets until closeTimeout');
      t.mock.timers.tick(1);
      await waitFor(async () => (await held(http)) === 0, 'the refused sockets to be destroyed at closeTimeout');
      assert.ok(peers.every((peer) => !peer.destroyed), 'the peers never closed their side');

      // A peer that reads its answer and closes frees its socket with the timer still running.
      const polite = connect(port, '127.0.0.1');
      peers.push(polite);
      polite.write(requests[0]!);
      let answer = '';
      polite.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      await once(polite, 'end');
      assert.match(answer, /^HTTP\/1\.1 401 /);
      polite.end();
      await waitFor(async () => (await held(http)) === 0, 'the socket to be released as the peer closed, before its timer');
    } finally {
      t.mock.timers.reset();
      for (const peer of peers) peer.destroy();
      await endpoints.closeConnections();
      http.closeAllConnections();
      http.close();
    }
  });
});

describe('attach', () => {
  test('adds endpoints to an existing http server, leaving its requests alone', async () => {
    const http = createServer((_req, res) => res.end('plain http'));
    const endpoints = attach(http, { websocket: { '/echo': { message: (conn, m) => conn.send(m) } } });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const port = (http.address() as { port: number }).port;
    try {
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'plain http');
      const ws = await client({ port }, '/echo');
      const echo = nextMessage(ws);
      ws.send('attached');
      assert.equal(await echo, 'attached');
      const wrongPath = new WebSocket(`ws://127.0.0.1:${port}/elsewhere`);
      const [, response] = (await once(wrongPath, 'unexpected-response')) as [unknown, { statusCode: number }];
      assert.equal(response.statusCode, 404);
      wrongPath.on('error', () => {});
      wrongPath.terminate();
      ws.close();
      await once(ws, 'close');
    } finally {
      await endpoints.closeConnections();
      http.closeAllConnections();
      http.close();
    }
  });
});

describe('attach beside other upgrade listeners on the same http server', { timeout: 10_000 }, () => {
  // A `ws` server with noServer, and a listener of its own that takes one path and leaves
  // the rest, as Vite's HMR does: each registered before attach() and after it.
  for (const order of ['before', 'after'] as const) {
    test(`a ws server whose listener is added ${order} attach() keeps its path; hotline keeps its own`, async () => {
      const http = createServer();
      const wss = new WsServer({ noServer: true });
      wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`ws: ${String(data)}`)));
      const other = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
        if (req.url === '/hmr') wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      };
      if (order === 'before') http.on('upgrade', other);
      const endpoints = attach(http, { websocket: { '/echo': { message: (conn, m) => conn.send(`hotline: ${String(m)}`) } } });
      if (order === 'after') http.on('upgrade', other);
      http.listen(0, '127.0.0.1');
      await once(http, 'listening');
      const port = (http.address() as { port: number }).port;
      try {
        for (const [path, answer] of [
          ['/hmr', 'ws: ping'],
          ['/echo', 'hotline: ping'],
        ] as const) {
          const ws = await client({ port }, path);
          const reply = nextMessage(ws);
          ws.send('ping');
          assert.equal(await reply, answer);
          ws.close();
          await once(ws, 'close');
        }
        assert.equal(endpoints.endpoints.get('/echo')!.counters.rejected, 0);
      } finally {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        await endpoints.closeConnections();
        http.closeAllConnections();
        http.close();
      }
    });
  }

  test('a path nobody serves: left to the other listener while there is one, 404 once hotline is alone', async () => {
    const http = createServer();
    const endpoints = attach(http, { websocket: { '/echo': { message() {} } } });
    let seenByOther = 0;
    const other = (_req: unknown, socket: Duplex): void => {
      seenByOther++;
      // This listener answers what it does not serve itself, as a server of its own would.
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    };
    http.on('upgrade', other);
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const port = (http.address() as { port: number }).port;
    try {
      const answer = async (): Promise<number> => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/elsewhere`);
        ws.on('error', () => {});
        const [, response] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
        ws.terminate();
        return response.statusCode;
      };
      assert.equal(await answer(), 400, "the other listener's answer, untouched");
      assert.equal(seenByOther, 1);
      http.off('upgrade', other);
      assert.equal(await answer(), 404);
    } finally {
      await endpoints.closeConnections();
      http.closeAllConnections();
      http.close();
    }
  });
});

describe('liveness', () => {
  test('heartbeat: a peer that never answers pings is terminated; a live one stays', async () => {
    const closes: number[] = [];
    const server = await serve({
      websocket: { '/ws': { message() {}, close: (_c, code) => closes.push(code) } },
      endpoint: { heartbeatInterval: 100, idleTimeout: 0 },
    });
    try {
      const live = await client(server);
      let livePings = 0;
      live.on('ping', () => livePings++);
      const dead = await rawClient(server.port);
      dead.pause(); // reads nothing, answers nothing
      const endpoint = server.endpoints.get('/ws')!;
      await waitFor(() => endpoint.counters.heartbeatTimeouts === 1, 'the silent peer to be terminated');
      await waitFor(() => closes.length === 1, 'its close handler');
      assert.deepEqual(closes, [1006]);
      // The live peer answers three more heartbeats and stays.
      const pingsThen = livePings;
      await waitFor(() => livePings >= pingsThen + 3, 'three more heartbeats to the live peer');
      assert.equal(live.readyState, WebSocket.OPEN);
      assert.equal(endpoint.connections.size, 1);
      live.close();
      dead.destroy();
    } finally {
      await server.close();
    }
  });

  test('idle timeout closes a connection that sent nothing with 1001', async () => {
    const server = await serve({ websocket: { '/ws': quiet }, endpoint: { heartbeatInterval: 0, idleTimeout: 150 } });
    try {
      const ws = await client(server);
      const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
      assert.equal(code, 1001);
      assert.equal(reason.toString(), 'idle timeout');
      assert.equal(server.endpoints.get('/ws')!.counters.idleCloses, 1);
    } finally {
      await server.close();
    }
  });
});

describe('pause', () => {
  test("pause() in open holds from the upgrade's own read on: a message sent meanwhile waits for resume(), a neighbour's is read", async () => {
    const opened: Array<WebSocketConnection<undefined>> = [];
    const received: string[] = [];
    const server = await serve({
      websocket: {
        '/ws': {
          open(conn) {
            // The first connection is paused in the read that brought its upgrade request.
            if (opened.push(conn) === 1) conn.pause();
          },
          message: (conn, message) => received.push(`${opened.indexOf(conn)}:${String(message)}`),
        },
      },
      endpoint: { heartbeatInterval: 0, idleTimeout: 0 },
    });
    try {
      const paused = await client(server);
      const neighbour = await client(server);
      paused.send('held');
      // Sent after it, over loopback: read in the same turn of the server's loop, or later.
      neighbour.send('read');
      await waitFor(() => received.includes('1:read'), "the neighbour's message");
      assert.deepEqual(received, ['1:read'], 'nothing of the paused connection was read');
      opened[0]!.resume();
      await waitFor(() => received.includes('0:held'), 'the held message, once resumed');
      assert.deepEqual(received, ['1:read', '0:held']);
      paused.close();
      neighbour.close();
    } finally {
      await server.close();
    }
  });
});

describe('backpressure', () => {
  test("'drop': a peer that does not read gets sends dropped past the limit, then drain fires once it reads", async () => {
    let conn!: WebSocketConnection<undefined>;
    let drained = 0;
    const server = await serve({
      websocket: { '/ws': { open: (c) => (conn = c), message() {}, drain: () => drained++ } },
      endpoint: { backpressureLimit: 256 * 1024 },
    });
    try {
      const socket = await rawClient(server.port);
      try {
        socket.pause();
        await waitFor(() => conn !== undefined, 'the connection');
        const chunk = Buffer.alloc(64 * 1024, 1);
        const results: number[] = [];
        for (let i = 0; i < 200; i++) {
          results.push(conn.send(chunk));
          await new Promise((resolve) => setImmediate(resolve));
        }
        assert.ok(results.includes(SendResult.Backpressure), 'some sends report backpressure');
        assert.ok(results.includes(SendResult.Dropped), 'sends past the limit are dropped');
        assert.ok(server.endpoints.get('/ws')!.counters.droppedMessages > 0);
        // Memory stays bounded: the limit plus what one send may add.
        assert.ok(conn.bufferedAmount <= 256 * 1024 + 64 * 1024 + 16, `buffered ${conn.bufferedAmount}`);
        const drainsBefore = drained;
        socket.resume();
        await waitFor(() => drained > drainsBefore && conn.bufferedAmount === 0, 'the drain handler');
        assert.ok(conn.send('after drain') > 0);
      } finally {
        socket.destroy();
      }
    } finally {
      await server.close();
    }
  });

  test("'close': a slow consumer is closed with 1008", async () => {
    let conn!: WebSocketConnection<undefined>;
    const server = await serve({
      websocket: { '/ws': { open: (c) => (conn = c), message() {} } },
      endpoint: { backpressureLimit: 128 * 1024, slowConsumer: 'close', closeTimeout: 100 },
    });
    try {
      const socket = await rawClient(server.port);
      socket.pause();
      await waitFor(() => conn !== undefined, 'the connection');
      const chunk = Buffer.alloc(64 * 1024, 2);
      for (let i = 0; i < 100 && conn.readyState === 1; i++) {
        conn.send(chunk);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const endpoint = server.endpoints.get('/ws')!;
      assert.equal(endpoint.counters.slowConsumerCloses, 1);
      await waitFor(() => endpoint.connections.size === 0, 'the slow consumer to be gone');
      socket.destroy();
    } finally {
      await server.close();
    }
  });

  test("'try-again-later': a slow consumer is closed with 1013; a send with force is queued past the limit, never dropped", async () => {
    let conn!: WebSocketConnection<undefined>;
    const server = await serve({
      websocket: { '/ws': { open: (c) => (conn = c), message() {} } },
      endpoint: { backpressureLimit: 128 * 1024, slowConsumer: 'try-again-later', closeTimeout: 5_000 },
    });
    try {
      const socket = await rawClient(server.port);
      socket.pause();
      await waitFor(() => conn !== undefined, 'the connection');
      const chunk = Buffer.alloc(64 * 1024, 3);
      // Forced sends go past the limit without meeting the policy.
      let forced = 0;
      while (conn.bufferedAmount <= 4 * 128 * 1024) {
        assert.notEqual(conn.send(chunk, { force: true }), SendResult.Dropped);
        forced++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const endpoint = server.endpoints.get('/ws')!;
      assert.equal(endpoint.counters.slowConsumerCloses, 0);
      assert.equal(conn.readyState, 1, 'still open');
      // A send that meets the policy closes it.
      assert.equal(conn.send(chunk), SendResult.Dropped);
      assert.equal(endpoint.counters.slowConsumerCloses, 1);
      assert.equal(endpoint.counters.droppedMessages, 0);
      // The peer reads: every forced message, then the close frame with 1013.
      const received: Buffer[] = [];
      let total = 0;
      socket.on('data', (data: Buffer) => {
        received.push(data);
        total += data.length;
      });
      socket.resume();
      const closeLength = 2 + 2 + Buffer.byteLength('slow consumer: reconnect and recover');
      await waitFor(() => total >= forced * (10 + 64 * 1024) + closeLength, 'everything and the close frame');
      socket.destroy();
      const bytes = Buffer.concat(received);
      const close = bytes.subarray(bytes.length - closeLength);
      assert.equal(close[0], 0x88, 'a close frame last');
      assert.equal(close.readUInt16BE(2), 1013);
      assert.equal(close.subarray(4).toString(), 'slow consumer: reconnect and recover');
      assert.equal(bytes.length - close.length, forced * (10 + 64 * 1024), 'every forced message arrived (a 10-byte header each)');
    } finally {
      await server.close();
    }
  });

  test('read backpressure with a limit under the socket high-water mark: reading resumes once the peer reads, though no drain fires', async () => {
    // 'drain' follows only a write that returned false (16 KiB pending): with a smaller
    // limit, a peer could be paused with less than that pending and never read from again.
    const LIMIT = 1024;
    const FILL = 8 * 1024;
    let conn!: WebSocketConnection<undefined>;
    let filled!: (frames: number) => void;
    const fillDone = new Promise<number>((resolve) => (filled = resolve));
    const server = await serve({
      websocket: {
        '/ws': {
          open: (c) => (conn = c),
          message(c, message) {
            if (message !== 'fill') {
              c.send(`echo ${String(message)}`, { force: true });
              return;
            }
            // Fills the kernel's buffers one write at a time (each well under 16 KiB), until
            // bytes stay in the socket: then more than LIMIT and less than 16 KiB are pending.
            const frame = Buffer.alloc(FILL, 7);
            let sent = 0;
            const step = (): void => {
              if (c.bufferedAmount > LIMIT) return filled(sent);
              if (sent === 10_000) throw new Error('the kernel took 80 MB without filling');
              c.send(frame, { force: true });
              sent++;
              setImmediate(step);
            };
            step();
          },
        },
      },
      endpoint: { backpressureLimit: LIMIT },
    });
    try {
      const socket = await rawClient(server.port);
      try {
        socket.pause();
        const received: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => received.push(chunk));
        const seen = (text: string): boolean => Buffer.concat(received).includes(text);
        socket.write(clientTextFrame('fill'));
        const frames = await fillDone;
        assert.ok(conn.bufferedAmount > LIMIT && conn.bufferedAmount < 16 * 1024, `pending ${conn.bufferedAmount} bytes`);
        // A message now is read and answered; then reading pauses for backpressure.
        socket.write(clientTextFrame('one'));
        await waitFor(() => conn.readingPaused, 'reading to pause for backpressure');
        // The peer reads everything: the server's buffered bytes fall to 0.
        socket.resume();
        await waitFor(() => seen('echo one'), 'the answer to the first message');
        assert.equal(Buffer.concat(received).length, frames * (4 + FILL) + 2 + 'echo one'.length, 'every frame arrived');
        await waitFor(() => !conn.readingPaused, 'reading to resume');
        socket.write(clientTextFrame('two'));
        await waitFor(() => seen('echo two'), 'the answer to a message sent after the peer caught up');
      } finally {
        socket.destroy();
      }
    } finally {
      await server.close();
    }
  });

  test('a Blob is sent in order with the sends that follow it', async () => {
    const server = await serve({
      websocket: {
        '/ws': {
          message(conn) {
            conn.send('first');
            assert.equal(conn.send(new Blob([new Uint8Array([9, 8, 7])])), SendResult.Backpressure);
            conn.send('third');
          },
        },
      },
    });
    try {
      const ws = await client(server);
      const got: Array<string | number[]> = [];
      const done = new Promise<void>((resolve) =>
        ws.on('message', (data: Buffer, binary: boolean) => {
          got.push(binary ? [...data] : data.toString());
          if (got.length === 3) resolve();
        }),
      );
      ws.send('go');
      await done;
      assert.deepEqual(got, ['first', [9, 8, 7], 'third']);
      ws.close();
    } finally {
      await server.close();
    }
  });
});

describe('shutdown', () => {
  test('close() ends kept-alive HTTP connections at once, while it still drains its WebSockets: no new request reaches a server going away', async () => {
    const server = await serve({ port: 0, shutdownTimeout: 3_000, websocket: { '/ws': quiet }, request: (_req, res) => res.end('ok') });
    // A peer that never answers the close keeps the drain going.
    const stubborn = await rawClient(server.port);
    const http = connect(server.port, '127.0.0.1');
    await once(http, 'connect');
    let answer = '';
    http.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    http.write('GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitFor(() => answer.endsWith('ok'), 'the first answer, on a connection kept alive');
    let drained = false;
    const closing = server.close().then(() => (drained = true));
    await once(http, 'close');
    assert.equal(drained, false, 'closed while the drain still waits for the WebSocket peer');
    stubborn.destroy();
    await closing;
  });
});
