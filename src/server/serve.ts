import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Buffer } from 'node:buffer';
import { buildRejectResponse } from '../protocol/handshake.js';
import { WebSocketServer, type WebSocketServerOptions } from '../node/server.js';
import type { ConnectionHandlers } from '../node/connection.js';

export interface ServeOptions {
  port?: number;
  host?: string;
  /** WebSocket endpoints by path, each with its handlers. */
  websocket: Record<string, ConnectionHandlers<undefined>>;
  /** Options shared by every endpoint (limits, subprotocols, origins). */
  endpoint?: Omit<WebSocketServerOptions<undefined>, 'handlers'>;
  /** Plain HTTP requests; without it they get 404 (426 on a WebSocket path). */
  request?: (req: IncomingMessage, res: ServerResponse) => void;
  /** How long a graceful shutdown waits for closing handshakes before terminating (ms). */
  shutdownTimeout?: number;
}

export interface RunningServer {
  readonly http: Server;
  readonly port: number;
  readonly host: string;
  readonly endpoints: ReadonlyMap<string, WebSocketServer<undefined>>;
  /** Stops accepting, closes every connection with 1001, waits, then terminates the rest. */
  close(): Promise<void>;
}

/** Starts an HTTP server with WebSocket endpoints and resolves once it listens. */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const endpoints = new Map<string, WebSocketServer<undefined>>();
  for (const [path, handlers] of Object.entries(options.websocket)) {
    endpoints.set(path, new WebSocketServer<undefined>({ ...options.endpoint, handlers }));
  }
  const http = createServer((req, res) => {
    const path = pathOf(req.url);
    if (endpoints.has(path)) {
      res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13' });
      res.end('this path speaks WebSocket: connect with a WebSocket client\n');
    } else if (options.request) {
      options.request(req, res);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
    }
  });
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const endpoint = endpoints.get(pathOf(req.url));
    if (endpoint === undefined) {
      socket.on('error', () => {});
      socket.end(buildRejectResponse(404, 'no WebSocket endpoint at this path'));
      return;
    }
    endpoint.handleUpgrade(req, socket, head);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const address = http.address();
  const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 0);
  const shutdownTimeout = options.shutdownTimeout ?? 5_000;

  return {
    http,
    port,
    host,
    endpoints,
    async close() {
      const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
      for (const endpoint of endpoints.values()) endpoint.closeAll();
      const deadline = Date.now() + shutdownTimeout;
      while ([...endpoints.values()].some((e) => e.connections.size > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const endpoint of endpoints.values()) endpoint.terminateAll();
      http.closeAllConnections();
      await stopped;
    },
  };
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
