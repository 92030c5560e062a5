/**
 * The `hotline serve` application, composed: the /echo and /ws endpoints with their limits,
 * the channel engine, the inspector and its WebSocket, logging, and the metrics text. Its
 * plain HTTP paths are in routes.ts, the inspector's live view in inspector.ts, who may use
 * the operator surfaces in admin.ts, and every option's flag and default in options.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryEngine, type ChannelHubOptions, type Engine, type MemoryEngineOptions } from '../channels/index.js';
import type { WebSocketConnection } from '../node/connection.js';
import { WebSocketServer, type WebSocketServerOptions } from '../node/server.js';
import { sameOrigin } from '../protocol/origin.js';
import { AdminGate, adminAccess, isLoopbackAddress, type AdminAccess } from './admin.js';
import { channelsEndpoint } from './channels.js';
import { echoHandlers } from './echo.js';
import { Inspector } from './inspector.js';
import { Logger } from './log.js';
import { channelMetrics, endpointMetrics, PrometheusText } from './metrics.js';
import { routes } from './routes.js';
import { sseEndpoint, type SseOptions } from './sse.js';

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
  | 'trustProxy'
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
  /** /sse, the channels as Server-Sent Events: its limits (the endpoint's `trustProxy`, `backpressureLimit` and `closeTimeout` by default). */
  sse?: SseOptions;
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
    trustProxy: options.trustProxy,
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
  // /sse: the same hub, identity and permissions as /ws, over plain HTTP.
  const sse = sseEndpoint(channels, { trustProxy: options.trustProxy, backpressureLimit: options.backpressureLimit, closeTimeout: options.closeTimeout, ...options.sse });
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
      sse.metrics(text);
      text.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [[{}, process.memoryUsage.rss()]]);
      return text.toString();
    },
    request: withSse(sse.handleRequest, routes({ webRoot, sdkRoot, admin, gate, healthy: () => app.healthy(), metrics: () => app.metrics() })),
    async close() {
      sse.close();
      inspector.stop();
      await channels.hub.close();
    },
  };
  return app;
}

/** /sse to the SSE endpoint, everything else to the plain routes. */
function withSse(sse: (req: IncomingMessage, res: ServerResponse) => void, rest: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => ((req.url ?? '/').split('?')[0] === '/sse' ? sse(req, res) : rest(req, res));
}
