/**
 * The Bun server under test for bench/server.ts, run by the bun binary (not Node):
 *
 *   bun bench/lib/bun-server-main.ts <mode>
 *
 * Written as a Bun user would write it: Bun.serve with `websocket` handlers, upgrading in
 * `fetch`; echo sends every message back as it came (a string as text, bytes as binary);
 * fan-out subscribes every connection in `open` and publishes with server.publish (which,
 * unlike ws.publish, includes the sender, as the other servers' fan-out does). Bun's
 * defaults are kept except those that would skew the comparison: idle timeouts and pings
 * off, as for the other servers; payload and backpressure limits as the others allow.
 *
 * Speaks server-main.ts's line protocol on stdio (`ready <port> <pid> native`, then count,
 * gc, deflate-state, profile-start/stop (no-ops: V8's profiler is not Bun's), exit), and
 * exits when its stdin closes or after MAX_LIFETIME_MS.
 */
import { createInterface } from 'node:readline';

const HOST = '127.0.0.1';
const MAX_PAYLOAD = 1024 * 1024;
const BACKPRESSURE_LIMIT = 64 * 1024 * 1024;
const TOPIC = 'fanout';
const MAX_LIFETIME_MS = 5 * 60_000;

/** The part of Bun's API this script uses (bench/ is typechecked against Node's types only). */
interface BunSocket {
  send(data: string | Uint8Array): number;
  subscribe(topic: string): void;
}
interface BunServer {
  port: number;
  upgrade(request: Request): boolean;
  publish(topic: string, data: string | Uint8Array): number;
}
interface BunGlobal {
  serve(options: {
    hostname: string;
    port: number;
    fetch(request: Request, server: BunServer): Response | undefined;
    websocket: {
      maxPayloadLength: number;
      backpressureLimit: number;
      idleTimeout: number;
      sendPings: boolean;
      open(ws: BunSocket): void;
      message(ws: BunSocket, message: string | Uint8Array): void;
      close(): void;
    };
  }): BunServer;
  gc(force: boolean): void;
}

const bun = (globalThis as { Bun?: BunGlobal }).Bun;
if (bun === undefined) {
  process.stderr.write('bun-server-main: run me with bun\n');
  process.exit(2);
}

const mode = process.argv[2];
if (mode !== 'echo' && mode !== 'fanout') {
  process.stderr.write(`bun-server-main: unknown mode '${mode}' (echo | fanout)\n`);
  process.exit(2);
}
const path = mode === 'echo' ? '/echo' : '/fanout';

let open = 0;
let server: BunServer | null = null;
server = bun.serve({
  hostname: HOST,
  port: 0,
  fetch(request, srv) {
    if (new URL(request.url).pathname === path && srv.upgrade(request)) return undefined;
    return new Response('not found', { status: 404 });
  },
  websocket: {
    maxPayloadLength: MAX_PAYLOAD,
    backpressureLimit: BACKPRESSURE_LIMIT,
    idleTimeout: 0,
    sendPings: false,
    open(ws) {
      open++;
      if (mode === 'fanout') ws.subscribe(TOPIC);
    },
    message(ws, message) {
      if (mode === 'echo') ws.send(message);
      else server!.publish(TOPIC, message);
    },
    close() {
      open--;
    },
  },
});

const lifetime = setTimeout(() => {
  process.stderr.write(`bun-server-main: still running after ${MAX_LIFETIME_MS} ms; exiting\n`);
  process.exit(3);
}, MAX_LIFETIME_MS);
lifetime.unref?.();

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Bun's JavaScriptCore heap is not V8's: only the figures process.memoryUsage has. */
function heapFigures(): Record<string, number> {
  const memory = process.memoryUsage();
  return { newSpace: 0, oldSpaces: memory.heapTotal, heapUsed: memory.heapUsed, external: memory.external, arrayBuffers: memory.arrayBuffers };
}

let queue = Promise.resolve();
const then = (step: () => Promise<void> | void): void => {
  queue = queue.then(step).catch((error: unknown) => {
    process.stderr.write(`bun-server-main: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
};
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const command = line.trim();
  if (command === 'exit') {
    then(() => process.exit(0));
  } else if (command === 'count') {
    then(() => void process.stdout.write(`count ${open}\n`));
  } else if (command === 'deflate-state') {
    then(() => void process.stdout.write('deflate-state {}\n'));
  } else if (command === 'gc') {
    then(async () => {
      bun.gc(true);
      await pause(100);
      bun.gc(true);
      await pause(200);
      process.stdout.write(`gc ${open} ${JSON.stringify(heapFigures())}\n`);
    });
  } else if (command === 'profile-start' || command === 'profile-stop') {
    // no profiler here; the parent profiles only the kinds it is asked to
  } else if (command !== '') {
    process.stderr.write(`bun-server-main: unknown command '${command}'\n`);
  }
});
lines.on('close', () => process.exit(0));
process.stdout.write(`ready ${server.port} ${process.pid} native\n`);
