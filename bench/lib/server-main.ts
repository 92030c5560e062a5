/**
 * One server under test for bench/server.ts, in a process of its own:
 *
 *   node --import tsx bench/lib/server-main.ts <kind> <mode> [--profile FILE] [--deflate-threshold N]
 *
 * kind: hotline | ws | ws-bufferutil | uws   (ws reads WS_NO_BUFFER_UTIL from the environment;
 *       the parent sets it for 'ws' and removes it for 'ws-bufferutil', and this script
 *       checks that ws's masking is what the kind says; uws is uWebSockets.js, native code;
 *       Bun has a script of its own, bun-server-main.ts, run by the bun binary)
 * mode: echo    /echo sends every message back as it came (text as text, binary as binary)
 *       fanout  every connection to /fanout is subscribed to one topic, and every message
 *               a connection sends is published to all of them (the sender included)
 *
 * --deflate-threshold N  accept permessage-deflate (bench/deflate.ts), compressing messages
 *       of N bytes and more: hotline with `perMessageDeflate: { threshold: N }` (endpoint
 *       option), ws with `perMessageDeflate: { threshold: N }`; all else at their defaults
 *
 * Every implementation is written as its users would write it: hotline through `serve` (the
 * echo handlers are the ones `hotline serve` uses), ws through its WebSocketServer with a
 * 'message' listener, broadcasting by looping over `wss.clients`; uWebSockets.js through
 * App().ws() with its own topics (ws.subscribe, app.publish).
 *
 * Talks to the parent on stdio, one line at a time. Prints `ready <port> <pid> <masking>`
 * once listening; then answers
 *   gc     -> `gc <open connections> <heap JSON>` after two forced collections and a pause
 *             (needs --expose-gc); the JSON has V8's heap figures (see heapFigures)
 *   count  -> `count <open connections>`
 *   deflate-state -> `deflate-state <JSON>`: what the connections keep for permessage-deflate
 *             (ws: live zlib streams; hotline: bytes of sliding windows), read from internals
 *   snapshot FILE -> `snapshot` once a heap snapshot is written to FILE
 *   profile-start, profile-stop -> with --profile FILE, runs V8's sampling profiler in
 *             between and writes FILE at the stop (or at exit)
 *   exit   -> exits (writing the profile first, if one is running)
 * It also exits when its stdin closes (the parent went away) and after MAX_LIFETIME_MS.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { createInterface } from 'node:readline';
import type { Buffer } from 'node:buffer';
import type * as Uws from '@trufflesuite/uws-js-unofficial';
import { uwsAddonPath } from './native-servers.js';

const HOST = '127.0.0.1';
const MAX_PAYLOAD = 1024 * 1024;
const TOPIC = 'fanout';
/** A server is started fresh for every measurement; none should live this long. */
const MAX_LIFETIME_MS = 5 * 60_000;
/** uWebSockets.js's per-socket send buffer limit, raised from 64 KiB: ws and hotline buffer without one. */
const UWS_MAX_BACKPRESSURE = 64 * 1024 * 1024;
/** Profiler sampling interval (µs): finer than --cpu-prof's 1 ms, for short windows. */
const SAMPLING_INTERVAL_US = 250;

type Kind = 'hotline' | 'ws' | 'ws-bufferutil' | 'uws';
type Mode = 'echo' | 'fanout';

interface Running {
  port: number;
  connections(): number;
  /** What the open connections keep for permessage-deflate (see deflateState*). */
  deflateState(): Record<string, number>;
}

/** permessage-deflate settings, or null for none. */
interface Deflate {
  threshold: number;
}

function parseKind(value: string | undefined): Kind {
  if (value === 'hotline' || value === 'ws' || value === 'ws-bufferutil' || value === 'uws') return value;
  throw new Error(`unknown kind '${value}' (hotline | ws | ws-bufferutil | uws)`);
}

function parseMode(value: string | undefined): Mode {
  if (value === 'echo' || value === 'fanout') return value;
  throw new Error(`unknown mode '${value}' (echo | fanout)`);
}

/**
 * Bytes held by hotline's connections for permessage-deflate: the sliding windows of
 * src/node/deflate.ts (private fields, read by name; zero if they are renamed).
 */
function deflateStateHotline(connections: Iterable<unknown>): Record<string, number> {
  const state = { codecs: 0, sendWindows: 0, sendWindowBytes: 0, receiveWindows: 0, receiveWindowBytes: 0, backingBytes: 0 };
  /** The ArrayBuffers behind the windows: pooled small Buffers keep a whole pool slab alive. */
  const backing = new Set<ArrayBufferLike>();
  const windowBytes = (window: unknown): number => {
    const buffer = window === null || window === undefined ? null : (Reflect.get(window as object, 'buffer') as Buffer | null);
    if (buffer !== null) backing.add(buffer.buffer);
    return buffer?.length ?? 0;
  };
  for (const conn of connections) {
    const codec = Reflect.get(conn as object, 'codec') as object | null | undefined;
    if (codec === null || codec === undefined) continue;
    state.codecs++;
    const send = Reflect.get(codec, 'sendWindow') as unknown;
    const receive = Reflect.get(codec, 'receiveWindow') as unknown;
    if (send !== null && send !== undefined) state.sendWindows++;
    if (receive !== null && receive !== undefined) state.receiveWindows++;
    state.sendWindowBytes += windowBytes(send);
    state.receiveWindowBytes += windowBytes(receive);
  }
  for (const arrayBuffer of backing) state.backingBytes += arrayBuffer.byteLength;
  return state;
}

/** ws's live zlib streams: each PerMessageDeflate keeps its inflater and deflater once used. */
function deflateStateWs(clients: Iterable<unknown>): Record<string, number> {
  const state = { extensions: 0, inflateStreams: 0, deflateStreams: 0 };
  for (const ws of clients) {
    const extensions = Reflect.get(ws as object, '_extensions') as Record<string, unknown> | undefined;
    const deflate = extensions?.['permessage-deflate'] as { _inflate?: unknown; _deflate?: unknown } | undefined;
    if (deflate === undefined) continue;
    state.extensions++;
    if (deflate._inflate !== null && deflate._inflate !== undefined) state.inflateStreams++;
    if (deflate._deflate !== null && deflate._deflate !== undefined) state.deflateStreams++;
  }
  return state;
}

/**
 * serve() refuses connections past 10,000 by default (503), and past 1,000 from one address
 * (429); the fan-out and memory scenarios open 10,001 and 10,000 from this machine, and ws
 * has no such limits: the benchmark measures capacity.
 */
const NO_CONNECTION_LIMIT = 0;

async function startHotline(mode: Mode, deflate: Deflate | null): Promise<Running> {
  const { serve } = await import('../../src/server/serve.js');
  const endpoint = {
    maxPayload: MAX_PAYLOAD,
    heartbeatInterval: 0,
    idleTimeout: 0,
    ...(deflate === null ? {} : { perMessageDeflate: { threshold: deflate.threshold } }),
  };
  if (mode === 'echo') {
    const { echoHandlers, echoOptions } = await import('../../src/server/echo.js');
    const websocket = { '/echo': { ...echoOptions, handlers: echoHandlers } };
    const server = await serve({ port: 0, host: HOST, maxConnections: NO_CONNECTION_LIMIT, maxConnectionsPerAddress: NO_CONNECTION_LIMIT, connectionRatePerAddress: null, websocket, endpoint });
    const echo = server.endpoints.get('/echo')!;
    return { port: server.port, connections: () => echo.connections.size, deflateState: () => deflateStateHotline(echo.connections) };
  }
  let publish: (data: string | Buffer) => void = () => {
    throw new Error('published before the server started');
  };
  const server = await serve({
    port: 0,
    host: HOST,
    maxConnections: NO_CONNECTION_LIMIT,
    maxConnectionsPerAddress: NO_CONNECTION_LIMIT,
    connectionRatePerAddress: null,
    websocket: {
      '/fanout': {
        open(conn) {
          conn.subscribe(TOPIC);
        },
        message(_conn, message) {
          publish(message);
        },
      },
    },
    endpoint,
  });
  publish = (data) => void server.publish(TOPIC, data);
  const fanout = server.endpoints.get('/fanout')!;
  return { port: server.port, connections: () => fanout.connections.size, deflateState: () => deflateStateHotline(fanout.connections) };
}

/** Whether the loaded copy of ws masks through bufferutil (its plain fallbacks are named _mask/_unmask). */
function wsUsesBufferUtil(): boolean {
  const require = createRequire(import.meta.url);
  const wsDir = dirname(require.resolve('ws/package.json'));
  const util = require(join(wsDir, 'lib', 'buffer-util.js')) as { unmask: (...args: never[]) => unknown };
  return util.unmask.name !== '_unmask';
}

async function startWs(mode: Mode, deflate: Deflate | null): Promise<Running> {
  const { WebSocketServer, WebSocket } = await import('ws');
  const path = mode === 'echo' ? '/echo' : '/fanout';
  const wss = new WebSocketServer({
    host: HOST,
    port: 0,
    path,
    maxPayload: MAX_PAYLOAD,
    ...(deflate === null ? {} : { perMessageDeflate: { threshold: deflate.threshold } }),
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  if (mode === 'echo') {
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => {
        ws.send(data, { binary: isBinary });
      });
    });
  } else {
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => {
        for (const client of wss.clients) {
          if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
        }
      });
    });
  }
  const address = wss.address();
  if (typeof address !== 'object' || address === null) throw new Error('ws: no address');
  return { port: address.port, connections: () => wss.clients.size, deflateState: () => deflateStateWs(wss.clients) };
}

/**
 * uWebSockets.js (bench/lib/native-servers.ts checks it loads before any run). Its defaults
 * would skew the comparison: messages over 16 KiB close the connection (maxPayloadLength),
 * and a subscriber with over 64 KiB unsent is silently skipped by publish (maxBackpressure),
 * so both are raised to what the other servers allow; idle timeouts and pings are off, as
 * for the others.
 */
async function startUws(mode: Mode, deflate: Deflate | null): Promise<Running> {
  if (deflate !== null) throw new Error('uws: the deflate benchmark does not run uWebSockets.js');
  const addon = uwsAddonPath();
  if (addon === null) throw new Error('uws: @trufflesuite/uws-js-unofficial is not installed');
  const { App, us_socket_local_port } = createRequire(import.meta.url)(addon) as typeof Uws;
  let open = 0;
  const app = App();
  const behaviour = {
    maxPayloadLength: MAX_PAYLOAD,
    maxBackpressure: UWS_MAX_BACKPRESSURE,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    close: () => {
      open--;
    },
  };
  if (mode === 'echo') {
    app.ws('/echo', {
      ...behaviour,
      open: () => {
        open++;
      },
      message: (ws, message, isBinary) => {
        ws.send(message, isBinary);
      },
    });
  } else {
    app.ws('/fanout', {
      ...behaviour,
      open: (ws) => {
        open++;
        ws.subscribe(TOPIC);
      },
      message: (_ws, message, isBinary) => {
        app.publish(TOPIC, message, isBinary);
      },
    });
  }
  const port = await new Promise<number>((resolve, reject) => {
    app.listen(HOST, 0, (socket) => (socket === false ? reject(new Error('uws: listen failed')) : resolve(us_socket_local_port(socket))));
  });
  return { port, connections: () => open, deflateState: () => ({}) };
}

/** Where the memory is, by V8's account: bytes committed by the young and old generations, live JS objects, external memory. */
function heapFigures(): Record<string, number> {
  const spaces = getHeapSpaceStatistics();
  const committed = (name: string): number => spaces.find((s) => s.space_name === name)?.physical_space_size ?? 0;
  const memory = process.memoryUsage();
  return {
    newSpace: committed('new_space'),
    oldSpaces: spaces.filter((s) => s.space_name !== 'new_space').reduce((sum, s) => sum + s.physical_space_size, 0),
    heapUsed: getHeapStatistics().used_heap_size,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
  };
}

async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('gc requested, but the server runs without --expose-gc');
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  gc();
  await pause(100);
  gc();
  await pause(200);
}

/**
 * V8's sampling profiler on this (main) thread, through the inspector: started and stopped
 * on the parent's word, so that a profile covers the counted window and nothing else.
 */
class WindowProfiler {
  private readonly session = new Session();
  private running = false;
  private written = false;

  constructor(private readonly file: string) {
    this.session.connect();
  }

  async start(): Promise<void> {
    if (this.running || this.written) return;
    this.running = true;
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
    await this.session.post('Profiler.start');
  }

  /** Stops the profiler and writes the profile (once). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    const { profile } = await this.session.post('Profiler.stop');
    writeFileSync(this.file, JSON.stringify(profile));
    this.written = true;
  }
}

async function main(): Promise<void> {
  const kind = parseKind(process.argv[2]);
  const mode = parseMode(process.argv[3]);
  let profileFile: string | undefined;
  let deflate: Deflate | null = null;
  for (let i = 4; i < process.argv.length; i += 2) {
    const [option, value] = [process.argv[i], process.argv[i + 1]];
    if (option === '--profile' && value !== undefined) {
      profileFile = value;
    } else if (option === '--deflate-threshold' && value !== undefined && /^\d+$/.test(value)) {
      deflate = { threshold: Number(value) };
    } else {
      throw new Error('usage: <kind> <mode> [--profile FILE] [--deflate-threshold N]');
    }
  }
  const lifetime = setTimeout(() => {
    process.stderr.write(`server-main: still running after ${MAX_LIFETIME_MS} ms; exiting\n`);
    process.exit(3);
  }, MAX_LIFETIME_MS);
  lifetime.unref();

  let masking = 'none';
  let running: Running;
  if (kind === 'hotline') {
    running = await startHotline(mode, deflate);
  } else if (kind === 'uws') {
    running = await startUws(mode, deflate);
    masking = 'native';
  } else {
    running = await startWs(mode, deflate);
    const native = wsUsesBufferUtil();
    if (native !== (kind === 'ws-bufferutil')) {
      throw new Error(`kind ${kind}, but ws ${native ? 'uses' : 'does not use'} bufferutil`);
    }
    masking = native ? 'bufferutil' : 'js';
  }

  const profiler = profileFile === undefined ? null : new WindowProfiler(profileFile);
  // Commands run one after another, in the order they came.
  let queue = Promise.resolve();
  const then = (step: () => Promise<void> | void): void => {
    queue = queue.then(step).catch((error: unknown) => {
      process.stderr.write(`server-main: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    });
  };
  const exit = (): void =>
    then(async () => {
      await profiler?.stop();
      process.exit(0);
    });

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = line.trim();
    if (command === 'exit') {
      exit();
    } else if (command === 'count') {
      then(() => void process.stdout.write(`count ${running.connections()}\n`));
    } else if (command === 'deflate-state') {
      then(() => void process.stdout.write(`deflate-state ${JSON.stringify(running.deflateState())}\n`));
    } else if (command === 'gc') {
      then(async () => {
        await collectGarbage();
        process.stdout.write(`gc ${running.connections()} ${JSON.stringify(heapFigures())}\n`);
      });
    } else if (command.startsWith('snapshot ')) {
      const file = command.slice('snapshot '.length);
      then(() => {
        writeHeapSnapshot(file);
        process.stdout.write('snapshot\n');
      });
    } else if (command === 'profile-start') {
      then(() => profiler?.start());
    } else if (command === 'profile-stop') {
      then(() => profiler?.stop());
    } else if (command !== '') {
      process.stderr.write(`server-main: unknown command '${command}'\n`);
    }
  });
  lines.on('close', exit);
  process.stdout.write(`ready ${running.port} ${process.pid} ${masking}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`server-main: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
