import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from '../channels/index.js';
import type { WebSocketConnection } from '../node/connection.js';
import { WebSocketServer, type ServerDeflateOptions } from '../node/server.js';
import { channelsEndpoint } from './channels.js';
import { echoHandlers } from './echo.js';
import { Logger } from './log.js';
import { channelMetrics, endpointMetrics, PrometheusText } from './metrics.js';

export interface AppOptions {
  maxPayload?: number;
  perMessageDeflate?: boolean | ServerDeflateOptions;
  /** Allowed Origins for the WebSocket endpoints (default: any). */
  origins?: readonly string[];
  /** The channel engine (default: in memory). */
  engine?: Engine;
  logger?: Logger;
  /** Where the pages are (default: the package's web/ folder). */
  webRoot?: string;
  /** Where dist/hotline.js is (default: the package's dist/ folder). */
  sdkRoot?: string;
}

/** The `hotline serve` application: its WebSocket endpoints and its HTTP paths. */
export interface App {
  websocket: Record<string, WebSocketServer<unknown>>;
  request(req: IncomingMessage, res: ServerResponse): void;
  /** Resolves once the channel engine has started. */
  ready: Promise<void>;
  metrics(): string;
  healthy(): boolean;
  close(): Promise<void>;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const PAGES: Record<string, string> = {
  '/': 'index.html',
  '/demo/echo': 'demo/echo.html',
  '/demo/chat': 'demo/chat.html',
  '/inspect': 'inspect.html',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** How many recent messages the inspector keeps to show. */
const INSPECT_FRAMES = 200;
const PREVIEW = 160;

interface InspectedFrame {
  time: number;
  connection: number;
  endpoint: string;
  direction: 'in' | 'out';
  type: 'text' | 'binary';
  size: number;
  preview: string;
}

export function createApp(options: AppOptions = {}): App {
  const logger = options.logger ?? new Logger('info');
  const webRoot = options.webRoot ?? join(packageRoot, 'web');
  const sdkRoot = options.sdkRoot ?? join(packageRoot, 'dist');
  const common = { maxPayload: options.maxPayload, perMessageDeflate: options.perMessageDeflate, origins: options.origins };
  const echo = new WebSocketServer<undefined>({ ...common, handlers: echoHandlers });
  const channels = channelsEndpoint({ ...common, engine: options.engine });
  const inspector = new Inspector();
  const inspect = new WebSocketServer<undefined>({
    origins: options.origins,
    handlers: {
      open: (conn) => inspector.add(conn as WebSocketConnection<unknown>),
      message() {},
      close: (conn) => inspector.remove(conn as WebSocketConnection<unknown>),
    },
  });
  const endpoints: Record<string, WebSocketServer<unknown>> = {
    '/echo': echo as WebSocketServer<unknown>,
    '/ws': channels.server as WebSocketServer<unknown>,
  };
  inspector.watch(endpoints, channels.hub);

  // Connection events at info level; every message at debug level.
  for (const [endpoint, server] of Object.entries(endpoints)) {
    server.observer = {
      open(conn) {
        inspector.opened(conn);
        logger.log('info', 'open', {
          endpoint,
          connection: inspector.idOf(conn),
          address: conn.remoteAddress,
          protocol: conn.protocol || undefined,
          extensions: conn.extensions || undefined,
        });
      },
      close(conn, code, reason) {
        logger.log('info', 'close', { endpoint, connection: inspector.idOf(conn), code, reason: reason || undefined });
      },
    };
  }
  const debug = logger.enabled('debug');
  inspector.onTapChange = (on) => {
    for (const [endpoint, server] of Object.entries(endpoints)) {
      server.tap =
        on || debug
          ? (conn, direction, data) => {
              if (on) inspector.frame(conn, endpoint, direction, data);
              if (debug) {
                logger.log('debug', 'message', {
                  endpoint,
                  connection: inspector.idOf(conn),
                  direction,
                  type: typeof data === 'string' ? 'text' : 'binary',
                  size: typeof data === 'string' ? Buffer.byteLength(data) : data.length,
                });
              }
            }
          : null;
    }
  };
  inspector.onTapChange(false);

  const app: App = {
    websocket: { ...endpoints, '/inspect/ws': inspect as WebSocketServer<unknown> },
    ready: channels.ready,
    healthy: () => channels.hub.engine.healthy,
    metrics() {
      const text = new PrometheusText();
      endpointMetrics(
        text,
        Object.entries(endpoints).map(([path, server]) => [path, server.connections.size, server.counters]),
      );
      channelMetrics(text, channels.hub.metrics, channels.hub.engine.healthy);
      text.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [[{}, process.memoryUsage.rss()]]);
      return text.toString();
    },
    request(req, res) {
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
        return;
      }
      if (path === '/healthz') {
        if (app.healthy()) send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
        else send(res, 503, 'text/plain; charset=utf-8', 'channel engine unavailable\n');
        return;
      }
      if (path === '/metrics') {
        send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', app.metrics());
        return;
      }
      if (path === '/hotline.js' || path === '/hotline.js.map') {
        sendFile(res, join(sdkRoot, path.slice(1)), 'the SDK bundle is missing: run npm run build');
        return;
      }
      const page = PAGES[path];
      if (page !== undefined) {
        sendFile(res, join(webRoot, page));
        return;
      }
      if (path.startsWith('/assets/')) {
        const file = normalize(join(webRoot, path));
        // No way out of web/ through ../ or encoded separators.
        if (!file.startsWith(join(webRoot, 'assets') + sep) || path.includes('%')) {
          send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
          return;
        }
        sendFile(res, file);
        return;
      }
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    },
    async close() {
      inspector.stop();
      await channels.hub.close();
    },
  };
  return app;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache', ...headers });
  res.end(body);
}

function sendFile(res: ServerResponse, file: string, missing = 'not found'): void {
  readFile(file).then(
    (body) => send(res, 200, TYPES[extname(file)] ?? 'application/octet-stream', body),
    () => send(res, 404, 'text/plain; charset=utf-8', `${missing}\n`),
  );
}

/**
 * The live view behind /inspect: while an inspector page is connected, it keeps the last
 * messages of every endpoint and sends a snapshot each second (connections, channels,
 * message rates, new messages) over the inspector's WebSocket.
 */
class Inspector {
  onTapChange: (on: boolean) => void = () => {};
  private readonly viewers = new Set<WebSocketConnection<unknown>>();
  private readonly ids = new WeakMap<WebSocketConnection<unknown>, { id: number; since: number }>();
  private nextId = 1;
  private frames: InspectedFrame[] = [];
  private sentUpTo = 0;
  private frameCount = 0;
  private timer: NodeJS.Timeout | null = null;
  private endpoints: Record<string, WebSocketServer<unknown>> = {};
  private hub: { channelStats(): Array<{ name: string; subscribers: number; messages: number }> } | null = null;
  private last = { time: 0, in: 0, out: 0, channels: new Map<string, number>() };

  watch(endpoints: Record<string, WebSocketServer<unknown>>, hub: NonNullable<Inspector['hub']>): void {
    this.endpoints = endpoints;
    this.hub = hub;
  }

  idOf(conn: WebSocketConnection<unknown>): number {
    return this.entry(conn).id;
  }

  opened(conn: WebSocketConnection<unknown>): void {
    this.entry(conn);
  }

  add(viewer: WebSocketConnection<unknown>): void {
    this.viewers.add(viewer);
    if (this.viewers.size === 1) {
      this.onTapChange(true);
      this.last = { time: Date.now(), ...this.totals(), channels: new Map() };
      this.timer = setInterval(() => this.broadcast(), 1000);
    }
    // The frames already broadcast; the next broadcast brings the newer ones to every viewer.
    const unsent = Math.min(this.frames.length, this.frameCount - this.sentUpTo);
    viewer.send(JSON.stringify(this.snapshot(this.frames.slice(0, this.frames.length - unsent))));
  }

  remove(viewer: WebSocketConnection<unknown>): void {
    this.viewers.delete(viewer);
    if (this.viewers.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.onTapChange(false);
  }

  frame(conn: WebSocketConnection<unknown>, endpoint: string, direction: 'in' | 'out', data: string | Buffer): void {
    const text = typeof data === 'string';
    this.frames.push({
      time: Date.now(),
      connection: this.idOf(conn),
      endpoint,
      direction,
      type: text ? 'text' : 'binary',
      size: text ? Buffer.byteLength(data) : data.length,
      preview: text ? data.slice(0, PREVIEW) : data.subarray(0, PREVIEW / 2).toString('hex'),
    });
    this.frameCount++;
    if (this.frames.length > INSPECT_FRAMES) this.frames.splice(0, this.frames.length - INSPECT_FRAMES);
  }

  private entry(conn: WebSocketConnection<unknown>): { id: number; since: number } {
    let entry = this.ids.get(conn);
    if (entry === undefined) {
      entry = { id: this.nextId++, since: Date.now() };
      this.ids.set(conn, entry);
    }
    return entry;
  }

  private totals(): { in: number; out: number } {
    let messagesIn = 0;
    let messagesOut = 0;
    for (const server of Object.values(this.endpoints)) {
      messagesIn += server.counters.messagesIn;
      messagesOut += server.counters.messagesOut;
    }
    return { in: messagesIn, out: messagesOut };
  }

  private broadcast(): void {
    const fresh = this.frames.slice(Math.max(0, this.frames.length - (this.frameCount - this.sentUpTo)));
    this.sentUpTo = this.frameCount;
    const text = JSON.stringify(this.snapshot(fresh));
    for (const viewer of this.viewers) viewer.send(text);
  }

  private snapshot(frames: InspectedFrame[]): object {
    const now = Date.now();
    const seconds = Math.max(0.001, (now - this.last.time) / 1000);
    const totals = this.totals();
    const rates = { in: (totals.in - this.last.in) / seconds, out: (totals.out - this.last.out) / seconds };
    const channelCounts = new Map<string, number>();
    const channels = (this.hub?.channelStats() ?? []).slice(0, 500).map((c) => {
      channelCounts.set(c.name, c.messages);
      const before = this.last.channels.get(c.name) ?? c.messages;
      return { name: c.name, subscribers: c.subscribers, rate: (c.messages - before) / seconds };
    });
    this.last = { time: now, ...totals, channels: channelCounts };
    const connections: object[] = [];
    for (const [endpoint, server] of Object.entries(this.endpoints)) {
      for (const conn of server.connections) {
        if (connections.length >= 500) break;
        const entry = this.entry(conn);
        connections.push({
          id: entry.id,
          endpoint,
          address: conn.remoteAddress,
          protocol: conn.protocol,
          extensions: conn.extensions,
          age: now - entry.since,
          bytesIn: conn.bytesReceived,
          bytesOut: conn.bytesSent,
        });
      }
    }
    return { type: 'snapshot', time: now, connections, channels, rates, frames };
  }
}
