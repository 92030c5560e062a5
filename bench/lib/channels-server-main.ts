/**
 * The servers of bench/channels.ts, one per process (the parent pins it to its own CPU):
 *
 *   node --import tsx bench/lib/channels-server-main.ts hotline|ws|uws|socket.io
 *
 * - hotline: `hotline serve`'s app (createApp: /ws on the channel hub, memory engine) with
 *   its defaults but for what would refuse a benchmark: the per-address connection cap and
 *   the per-connection publish rate are lifted (every client is on 127.0.0.1 and a publisher
 *   publishes far past 20/s), no total connection cap, no compression, and presence off for
 *   every channel (`*` namespace: the equivalents keep no member lists, and 10,000 joins
 *   would each go to every subscriber of the channel).
 * - ws: a channel server as a user writes it with `ws` (bufferutil loaded when installed):
 *   a Map from channel to a Set of sockets; `{"type":"subscribe","channel"}` is answered
 *   `{"type":"subscribed","channel"}`; `{"type":"publish","channel","data"}` is
 *   JSON.stringify'd once as `{"type":"message","channel","data"}` and sent to every open
 *   socket of the set.
 * - uws: the same protocol as ws's, as a user writes it with uWebSockets.js: a subscribe
 *   calls `ws.subscribe(channel)`, a publish `app.publish(channel, json)`, so uWS keeps the
 *   channels and fans out in native code. It is the ceiling of a server that writes each
 *   delivery to its socket (bench/lib/native-servers.ts: which build, loaded by path).
 * - socket.io: rooms: `subscribe` (channel, ack) joins the room and acks; `publish`
 *   (channel, data) emits `message` (channel, data) to the room. WebSocket transport only.
 *
 * Prints `ready <port> <pid> <note>` once listening; exits on `exit` or when stdin ends.
 * `profile-start` and `profile-stop FILE` profile the counted window (V8's sampling profiler,
 * 100 µs); `profile-stop` answers `profiled` once the file is written.
 */
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type * as Uws from '@trufflesuite/uws-js-unofficial';
import { uwsAddonPath } from './native-servers.js';

const HOST = '127.0.0.1';
const kind = process.argv[2];
const MAX_LIFETIME_MS = 10 * 60_000;

/** Whether ws masks and unmasks with bufferutil's native code. */
function wsUsesBufferUtil(): boolean {
  const require = createRequire(import.meta.url);
  const wsDir = dirname(require.resolve('ws/package.json'));
  const util = require(join(wsDir, 'lib', 'buffer-util.js')) as { unmask: (...args: never[]) => unknown };
  return util.unmask.name !== '_unmask';
}

async function startHotline(): Promise<{ port: number; note: string; close(): Promise<void> }> {
  const { createApp } = await import('../../src/server/app.js');
  const { Logger } = await import('../../src/server/log.js');
  const { serve } = await import('../../src/server/serve.js');
  const unlimited = { perSecond: 1_000_000_000, burst: 1_000_000_000 };
  const app = createApp({
    logger: new Logger('silent'),
    perMessageDeflate: false,
    publishRate: unlimited,
    namespaces: { '*': { subscribe: 'anyone', publish: 'anyone', presence: false } },
  });
  await app.ready;
  const server = await serve({ port: 0, host: HOST, websocket: app.websocket, request: app.request, maxConnections: 0, maxConnectionsPerAddress: 0, connectionRatePerAddress: null });
  return { port: server.port, note: 'hotline', close: () => server.close().then(() => app.close()) };
}

async function startWs(): Promise<{ port: number; note: string; close(): Promise<void> }> {
  const { WebSocketServer, WebSocket } = await import('ws');
  const wss = new WebSocketServer({ host: HOST, port: 0, perMessageDeflate: false });
  // What a user writes: who is in each channel, and each socket's channels to leave on close.
  const channels = new Map<string, Set<InstanceType<typeof WebSocket>>>();
  wss.on('connection', (socket) => {
    const mine = new Set<string>();
    socket.on('message', (raw) => {
      let message: { type?: string; channel?: string; data?: unknown };
      try {
        message = JSON.parse(raw.toString()) as typeof message;
      } catch {
        return;
      }
      if (typeof message.channel !== 'string') return;
      if (message.type === 'subscribe') {
        let set = channels.get(message.channel);
        if (set === undefined) channels.set(message.channel, (set = new Set()));
        set.add(socket);
        mine.add(message.channel);
        socket.send(JSON.stringify({ type: 'subscribed', channel: message.channel }));
      } else if (message.type === 'publish') {
        const out = JSON.stringify({ type: 'message', channel: message.channel, data: message.data });
        for (const peer of channels.get(message.channel) ?? []) if (peer.readyState === WebSocket.OPEN) peer.send(out);
      }
    });
    socket.on('close', () => {
      for (const channel of mine) {
        const set = channels.get(channel);
        set?.delete(socket);
        if (set?.size === 0) channels.delete(channel);
      }
    });
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  const address = wss.address();
  if (address === null || typeof address === 'string') throw new Error('ws listens on no port');
  return {
    port: address.port,
    note: wsUsesBufferUtil() ? 'ws+bufferutil' : 'ws(js-masking)',
    close: () => new Promise((resolve) => wss.close(() => resolve())),
  };
}

/**
 * uWebSockets.js's defaults would skew the comparison (as in bench/lib/server-main.ts): a
 * subscriber with 64 KiB unsent is silently skipped by publish, which the client reports as
 * a gap; the limit is raised to what the other servers allow, and idle timeouts are off.
 */
async function startUws(): Promise<{ port: number; note: string; close(): Promise<void> }> {
  const addon = uwsAddonPath();
  if (addon === null) throw new Error('uws: @trufflesuite/uws-js-unofficial is not installed');
  const { App, us_listen_socket_close, us_socket_local_port } = createRequire(import.meta.url)(addon) as typeof Uws;
  const app = App();
  app.ws('/*', {
    maxPayloadLength: 1024 * 1024,
    maxBackpressure: 64 * 1024 * 1024,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    message: (socket, raw) => {
      let message: { type?: string; channel?: string; data?: unknown };
      try {
        message = JSON.parse(Buffer.from(raw).toString()) as typeof message;
      } catch {
        return;
      }
      if (typeof message.channel !== 'string') return;
      if (message.type === 'subscribe') {
        socket.subscribe(message.channel);
        socket.send(JSON.stringify({ type: 'subscribed', channel: message.channel }));
      } else if (message.type === 'publish') {
        app.publish(message.channel, JSON.stringify({ type: 'message', channel: message.channel, data: message.data }));
      }
    },
  });
  const listening = await new Promise<Uws.us_listen_socket>((resolve, reject) => {
    app.listen(HOST, 0, (socket) => (socket === false ? reject(new Error('uws: listen failed')) : resolve(socket)));
  });
  return {
    port: us_socket_local_port(listening),
    note: 'uws',
    close: async () => us_listen_socket_close(listening),
  };
}

async function startSocketIo(): Promise<{ port: number; note: string; close(): Promise<void> }> {
  const { Server } = await import('socket.io');
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  io.on('connection', (socket) => {
    socket.on('subscribe', (channel: string, ack: () => void) => {
      void socket.join(channel);
      ack();
    });
    socket.on('publish', (channel: string, data: unknown) => {
      io.to(channel).emit('message', channel, data);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, HOST, resolve));
  const address = http.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, note: 'socket.io', close: () => new Promise((resolve) => io.close(() => resolve())) };
}

const lifetime = setTimeout(() => {
  process.stderr.write(`channels-server-main: still running after ${MAX_LIFETIME_MS} ms; exiting\n`);
  process.exit(3);
}, MAX_LIFETIME_MS);
lifetime.unref();

const starts: Record<string, () => Promise<{ port: number; note: string; close(): Promise<void> }>> = { hotline: startHotline, ws: startWs, uws: startUws, 'socket.io': startSocketIo };
const start = kind === undefined ? undefined : starts[kind];
if (start === undefined) throw new Error(`unknown kind '${kind}' (${Object.keys(starts).join(' | ')})`);
const running = await start();
process.stdout.write(`ready ${running.port} ${process.pid} ${running.note}\n`);
const profiler = new Session();
const lines = createInterface({ input: process.stdin });
let commands = Promise.resolve();
lines.on('line', (line) => {
  const [command, file] = line.trim().split(' ');
  if (command === 'exit') process.exit(0);
  commands = commands.then(async () => {
    if (command === 'profile-start') {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
      await profiler.post('Profiler.start');
    } else if (command === 'profile-stop' && file !== undefined) {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      process.stdout.write('profiled\n');
    }
  });
});
lines.on('close', () => process.exit(0));
