import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { MemoryEngine, type ChannelHubOptions, type Engine, type MemoryEngineOptions } from '../channels/index.js';
import type { WebSocketConnection } from '../node/connection.js';
import { WebSocketServer, type UpgradeRejection, type WebSocketServerOptions } from '../node/server.js';
import { sameOrigin } from '../protocol/origin.js';
import { AdminGate, adminAccess, isLoopbackAddress, type AdminAccess } from './admin.js';
import { channelsEndpoint } from './channels.js';
import { echoHandlers } from './echo.js';
import { Inspector } from './inspector.js';
import { Logger } from './log.js';
import { channelMetrics, endpointMetrics, PrometheusText } from './metrics.js';

/** The limits of /echo and /ws, as the endpoints name them. */
type EndpointLimits = Pick<
  WebSocketServerOptions<unknown>,
  | 'maxPayload'
  | 'perMessageDeflate'
  | 'heartbeatInterval'
  | 'idleTimeout'
  | 'messageTimeout'
  | 'inflateRate'
  | 'closeTimeout'
  | 'backpressureLimit'
  | 'slowConsumer'
>;
/** The limits of the channel hub behind /ws, as it names them. */
type HubLimits = Pick<
  ChannelHubOptions,
  | 'publishRate'
  | 'subscribeRate'
  | 'rpcRate'
  | 'historyRate'
  | 'presenceRate'
  | 'unsubscribeRate'
  | 'pingRate'
  | 'authRate'
  | 'maxPendingRequests'
  | 'maxPendingBytes'
  | 'maxHistoryAnswerBytes'
  | 'maxSubscriptions'
  | 'maxDataLength'
  | 'abuseLimit'
  | 'abuseWindow'
>;
/** What the memory engine keeps, when no other engine is given. */
type MemoryLimits = Pick<MemoryEngineOptions, 'historySize' | 'historyTtl' | 'maxHistoryBytes' | 'maxChannels' | 'idempotencyWindow'>;

export interface AppOptions extends EndpointLimits, HubLimits, MemoryLimits {
  /** How deeply a /ws request may nest objects and arrays (default 64). */
  maxJsonDepth?: number;
  /**
   * Page origins allowed to open /echo and /ws besides the server's own (`'*'`: any, unsafe
   * once anything authenticates by cookie). Browsers from other origins are refused with
   * 403; clients that send no Origin (not browsers) are accepted. The inspector's
   * WebSocket takes its own origin and these, never `'*'`.
   */
  origins?: readonly string[];
  /**
   * The address the server listens on (default 127.0.0.1). Beyond loopback, the inspector
   * and /metrics are off unless `adminSecret` is set or they are turned on explicitly.
   */
  host?: string;
  /** Required by the inspector and /metrics when set: `Authorization: Bearer SECRET`, or the inspector's login. */
  adminSecret?: string;
  /** The inspector (/inspect, /inspect/ws): see `host` for the default. */
  inspector?: boolean;
  /** /metrics: see `host` for the default. */
  metrics?: boolean;
  /** Whether the inspector shows the start of each message (default false: they may hold secrets). */
  inspectorPreviews?: boolean;
  /** The channel engine (default: in memory, lost on restart). */
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
  /** Who may use the operator surfaces, as decided from the options. */
  admin: { inspector: AdminAccess; metrics: AdminAccess };
  metrics(): string;
  healthy(): boolean;
  close(): Promise<void>;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const PAGES: Record<string, string> = {
  '/': 'index.html',
  '/demo/echo': 'demo/echo.html',
  '/demo/chat': 'demo/chat.html',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

const TEXT = 'text/plain; charset=utf-8';
/** The inspector's login form is a few dozen bytes. */
const MAX_LOGIN_BODY = 4096;

export function createApp(options: AppOptions = {}): App {
  const logger = options.logger ?? new Logger('info');
  const webRoot = options.webRoot ?? join(packageRoot, 'web');
  const sdkRoot = options.sdkRoot ?? join(packageRoot, 'dist');
  const origins = options.origins ?? [];
  const common = {
    maxPayload: options.maxPayload,
    perMessageDeflate: options.perMessageDeflate,
    heartbeatInterval: options.heartbeatInterval,
    idleTimeout: options.idleTimeout,
    messageTimeout: options.messageTimeout,
    inflateRate: options.inflateRate,
    closeTimeout: options.closeTimeout,
    backpressureLimit: options.backpressureLimit,
    slowConsumer: options.slowConsumer,
    origins: sameOrigin(origins),
  };
  const echo = new WebSocketServer<undefined>({ ...common, handlers: echoHandlers });
  const channels = channelsEndpoint({
    ...common,
    engine:
      options.engine ??
      new MemoryEngine({
        historySize: options.historySize,
        historyTtl: options.historyTtl,
        maxHistoryBytes: options.maxHistoryBytes,
        maxChannels: options.maxChannels,
        idempotencyWindow: options.idempotencyWindow,
      }),
    publishRate: options.publishRate,
    subscribeRate: options.subscribeRate,
    rpcRate: options.rpcRate,
    historyRate: options.historyRate,
    presenceRate: options.presenceRate,
    unsubscribeRate: options.unsubscribeRate,
    pingRate: options.pingRate,
    authRate: options.authRate,
    maxPendingRequests: options.maxPendingRequests,
    maxPendingBytes: options.maxPendingBytes,
    maxHistoryAnswerBytes: options.maxHistoryAnswerBytes,
    maxSubscriptions: options.maxSubscriptions,
    maxDataLength: options.maxDataLength,
    abuseLimit: options.abuseLimit,
    abuseWindow: options.abuseWindow,
    limits: { maxJsonDepth: options.maxJsonDepth },
  });

  const loopback = isLoopbackAddress(options.host ?? '127.0.0.1');
  const admin = {
    inspector: adminAccess(options.inspector, options.adminSecret, loopback),
    metrics: adminAccess(options.metrics, options.adminSecret, loopback),
  };
  const gate = new AdminGate(options.adminSecret, loopback);
  const inspector = new Inspector(options.inspectorPreviews ?? false);
  const inspect = new WebSocketServer<undefined>({
    // Only the inspector's own page needs it: '*' does not apply.
    origins: sameOrigin(origins.filter((o) => o !== '*')),
    upgrade: (req) => {
      const refusal = gate.check(req.headers, true);
      return refusal === null ? { data: undefined } : { reject: refusal };
    },
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

  const refuse = (res: ServerResponse, refusal: UpgradeRejection): void =>
    send(res, refusal.status, TEXT, `${refusal.message ?? ''}\n`, refusal.headers);
  const loginPage = (res: ServerResponse, message: string | null): void => {
    readFile(join(webRoot, 'inspect-login.html'), 'utf8').then(
      (page) => {
        const shown = message === null ? page : page.replace('<p id="login-message" role="alert" hidden></p>', `<p id="login-message" role="alert">${message}</p>`);
        send(res, 401, TYPES['.html']!, shown, { 'WWW-Authenticate': 'Bearer realm="hotline"' });
      },
      () => send(res, 401, TEXT, 'the admin secret is required\n'),
    );
  };
  const inspectPage = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method === 'POST') {
      readForm(req, MAX_LOGIN_BODY).then(
        (form) => {
          if (form === null) send(res, 413, TEXT, 'request body too large\n', { Connection: 'close' });
          else if (admin.inspector === 'open') send(res, 303, TEXT, 'see /inspect\n', { Location: '/inspect' });
          else if (!gate.isSecret(form.get('token') ?? '')) loginPage(res, 'That is not the admin secret.');
          else {
            const secure = (req.socket as TLSSocket).encrypted === true;
            send(res, 303, TEXT, 'see /inspect\n', { Location: '/inspect', 'Set-Cookie': gate.sessionCookie(secure) });
          }
        },
        () => res.destroy(),
      );
      return;
    }
    const refusal = gate.check(req.headers, true);
    if (refusal === null) sendFile(res, join(webRoot, 'inspect.html'));
    else if (refusal.status === 401) loginPage(res, null);
    else refuse(res, refusal);
  };

  const app: App = {
    websocket: admin.inspector === 'off' ? { ...endpoints } : { ...endpoints, '/inspect/ws': inspect as WebSocketServer<unknown> },
    ready: channels.ready,
    admin,
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
      if (path === '/inspect') {
        if (admin.inspector === 'off') send(res, 404, TEXT, 'the inspector is turned off\n');
        else if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') {
          send(res, 405, TEXT, 'method not allowed\n', { Allow: 'GET, HEAD, POST' });
        } else inspectPage(req, res);
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, TEXT, 'method not allowed\n', { Allow: 'GET, HEAD' });
        return;
      }
      if (path === '/healthz') {
        if (app.healthy()) send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
        else send(res, 503, 'text/plain; charset=utf-8', 'channel engine unavailable\n');
        return;
      }
      if (path === '/metrics') {
        const refusal = admin.metrics === 'off' ? { status: 404, message: 'metrics are turned off' } : gate.check(req.headers, false);
        if (refusal === null) send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', app.metrics());
        else refuse(res, refusal);
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

/** The fields of a small urlencoded body; null when it is larger than `limit` bytes. */
function readForm(req: IncomingMessage, limit: number): Promise<URLSearchParams | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        resolve(null);
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (size <= limit) resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('error', reject);
  });
}
