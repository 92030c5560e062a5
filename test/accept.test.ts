// A listener's connections made into sockets by src/node/accept.ts rather than by
// net.Server's own onconnection: everything a user of net.Server sees of an accepted
// connection is as before (the 'connection' event, the socket's server, the count that
// getConnections() and close() read, pauseOnConnect, allowHalfOpen, maxConnections' 'drop',
// the net.server.socket channel, a failed accept's 'error'), and what it is for holds in a
// real server process: a churn of connections leaves almost nothing to the old generation.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { connect, createServer, type Server, type ServerOpts, type Socket } from 'node:net';
import { acceptHandles, acceptWithStableShape, socketOf, type AcceptedHandle } from '../src/node/accept.js';
import { ChildLines } from './support/child-lines.js';
import { churn, scavenges } from './support/upgrade-churn.js';

async function listening(options: ServerOpts, onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(options, onSocket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  assert.equal(acceptWithStableShape(server), true, 'a listening net.Server takes it');
  return { server, port: (server.address() as { port: number }).port };
}

async function connected(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

function connectionCount(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

describe('accepting without net.Server onconnection', () => {
  test('a server without a listening handle is left alone', () => {
    assert.equal(acceptWithStableShape(createServer()), false);
  });

  test("connections are the server's: echoed, counted, and close() waits for them", async () => {
    const accepted: Socket[] = [];
    const { server, port } = await listening({}, (socket) => {
      accepted.push(socket);
      socket.pipe(socket);
    });
    const clients = await Promise.all([1, 2, 3].map(() => connected(port)));
    const replies = await Promise.all(
      clients.map(async (client, i) => {
        client.write(`hello ${i}`);
        const [data] = (await once(client, 'data')) as [Buffer];
        return data.toString();
      }),
    );
    assert.deepEqual(replies, ['hello 0', 'hello 1', 'hello 2']);
    assert.equal(accepted.length, 3);
    for (const socket of accepted) assert.equal((socket as Socket & { server: Server }).server, server);
    assert.equal(await connectionCount(server), 3);

    let closed = false;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve())).then(() => (closed = true));
    const [first, ...others] = clients;
    first!.end();
    await once(accepted[0]!, 'close');
    assert.equal(await connectionCount(server), 2);
    assert.equal(closed, false, 'close() waits while connections are open');
    for (const client of others) client.end();
    await stopped;
    assert.equal(await connectionCount(server), 0);
  });

  test('pauseOnConnect: nothing is read until the socket is resumed', async () => {
    const sockets: Socket[] = [];
    const { server, port } = await listening({ pauseOnConnect: true }, (socket) => sockets.push(socket));
    const client = await connected(port);
    client.write('early');
    while (sockets.length === 0) await once(server, 'connection');
    const socket = sockets[0]!;
    assert.equal(socket.readableFlowing, false);
    assert.equal(socket.bytesRead, 0);
    socket.resume();
    const [data] = (await once(socket, 'data')) as [Buffer];
    assert.equal(data.toString(), 'early');
    client.destroy();
    server.close();
  });

  test('allowHalfOpen: the server writes after the client has ended', async () => {
    const { server, port } = await listening({ allowHalfOpen: true }, (socket) => {
      socket.resume();
      socket.on('end', () => socket.end('after your end'));
    });
    const client = await connected(port);
    client.end();
    const [data] = (await once(client, 'data')) as [Buffer];
    assert.equal(data.toString(), 'after your end');
    await once(client, 'close');
    server.close();
  });

  test("maxConnections: a connection past it is dropped by Node's own accept, with its 'drop' event", async () => {
    const accepted: Socket[] = [];
    const { server, port } = await listening({}, (socket) => accepted.push(socket.resume()));
    server.maxConnections = 1;
    const first = await connected(port);
    while (accepted.length === 0) await once(server, 'connection');
    const dropped = once(server, 'drop') as Promise<[{ remotePort: number }]>;
    const second = connect(port, '127.0.0.1');
    await once(second, 'connect');
    const [data] = await dropped;
    assert.equal(data.remotePort, second.localPort);
    await once(second, 'close');
    assert.equal(accepted.length, 1);
    assert.equal(await connectionCount(server), 1);
    first.destroy();
    second.destroy();
    server.close();
  });

  test('the net.server.socket channel hears of each connection', async () => {
    const heard: Socket[] = [];
    const listener = (message: unknown): void => {
      heard.push((message as { socket: Socket }).socket);
    };
    subscribe('net.server.socket', listener);
    try {
      const accepted: Socket[] = [];
      const { server, port } = await listening({}, (socket) => accepted.push(socket));
      const client = await connected(port);
      while (accepted.length === 0) await once(server, 'connection');
      assert.equal(heard.length, 1);
      assert.equal(heard[0], accepted[0], 'the channel got the socket the server emitted');
      client.destroy();
      server.close();
    } finally {
      unsubscribe('net.server.socket', listener);
    }
  });

  test("a failed accept is the server's 'error', as net.Server reports it", async () => {
    const { server } = await listening({}, () => assert.fail('no connection'));
    const handle = (server as unknown as { _handle: { onconnection(status: number, client: unknown): void } })._handle;
    const failed = once(server, 'error') as Promise<[NodeJS.ErrnoException]>;
    handle.onconnection(-24, undefined);
    const [error] = await failed;
    assert.equal(error.code, 'EMFILE');
    assert.equal(error.syscall, 'accept');
    server.close();
  });
});

describe('accepting bare handles (a primary that hands connections on)', () => {
  async function handing(options: ServerOpts, onHandle: (handle: AcceptedHandle) => void, onSocket: (socket: Socket) => void = () => assert.fail('no socket')): Promise<{ server: Server; port: number }> {
    const server = createServer(options, onSocket);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    assert.equal(acceptHandles(server, onHandle), true, 'a listening net.Server takes it');
    return { server, port: (server.address() as { port: number }).port };
  }

  test('a server without a listening handle is left alone', () => {
    assert.equal(acceptHandles(createServer(), () => assert.fail('no handle')), false);
  });

  test('each connection comes as its handle, uncounted; a socket made of it reads and writes', async () => {
    let handed!: (handle: AcceptedHandle) => void;
    const first = new Promise<AcceptedHandle>((resolve) => (handed = resolve));
    const { server, port } = await handing({}, (handle) => handed(handle));
    const client = await connected(port);
    const handle = await first;
    assert.equal(await connectionCount(server), 0, 'the server counts none');
    const socket = socketOf(handle);
    socket.pipe(socket);
    client.write('through the handed socket');
    const [data] = (await once(client, 'data')) as [Buffer];
    assert.equal(data.toString(), 'through the handed socket');
    client.end();
    await once(socket, 'close');
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('a handle closed without a socket closes the connection', async () => {
    const { server, port } = await handing({}, (handle) => handle.close());
    const client = await connected(port);
    client.resume();
    await once(client, 'close');
    server.close();
  });

  test("with maxConnections set, connections go through Node's own accept and come as sockets", async () => {
    const sockets: Socket[] = [];
    const { server, port } = await handing({ pauseOnConnect: true }, () => assert.fail('no bare handle'), (socket) => sockets.push(socket));
    server.maxConnections = 10;
    const client = await connected(port);
    while (sockets.length === 0) await once(server, 'connection');
    assert.equal(sockets[0]!.readableFlowing, false, 'paused, as the server asked');
    client.destroy();
    sockets[0]!.destroy();
    server.close();
  });
});

/** Bytes that V8's young-generation collections promoted per connection while `churn` ran. */
async function promotedPerConnection(mode: 'serve' | 'node-net', connections: number): Promise<{ perConnection: number; scavenges: number }> {
  const child = spawn(process.execPath, ['--trace-gc-nvp', '--import', 'tsx', 'test/support/accept-churn-server.ts', mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = new ChildLines(child);
  try {
    const port = Number((await lines.next((line) => line.startsWith('ready '), 'ready', 30_000)).split(' ')[1]);
    // A first churn compiles what the measured one runs.
    await churn(port, 200);
    child.stdin.write('mark\n');
    const from = Number((await lines.next((line) => line.startsWith('mark '), 'the first mark', 10_000)).split(' ')[1]);
    await churn(port, connections);
    child.stdin.write('mark\n');
    const to = Number((await lines.next((line) => line.startsWith('mark '), 'the second mark', 10_000, lines.all.length)).split(' ')[1]);
    child.stdin.write('exit\n');
    await once(child, 'exit');
    const during = scavenges(lines.all).filter((s) => s.ms >= from && s.ms <= to);
    const promoted = during.reduce((sum, s) => sum + s.promoted, 0);
    return { perConnection: promoted / connections, scavenges: during.length };
  } finally {
    child.kill();
  }
}

test("a churn of connections to serve() leaves little to the old generation", async (t) => {
  const connections = 3_000;
  const ours = await promotedPerConnection('serve', connections);
  const nodes = await promotedPerConnection('node-net', connections);
  t.diagnostic(`promoted per connection: serve() ${ours.perConnection.toFixed(0)} B over ${ours.scavenges} scavenges; a plain net.Server ${nodes.perConnection.toFixed(0)} B over ${nodes.scavenges}`);
  assert.ok(ours.scavenges >= 2, `the churn ran through young collections (${ours.scavenges})`);
  // Node 20's own accept: 450-750 B per connection (a socket that outlives its first
  // collection); serve()'s: 100-150 B, the few connections open at each collection.
  assert.ok(ours.perConnection < 300, `serve() promoted ${ours.perConnection.toFixed(0)} B per connection`);
});
