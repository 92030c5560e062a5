/**
 * The `hotline serve` application, composed: the /echo and /ws endpoints with their limits,
 * the channel engine, the inspector and its WebSocket, logging, and the metrics text. Its
 * plain HTTP paths are in routes.ts, the inspector's live view in inspector.ts, who may use
 * the operator surfaces in admin.ts, and every option's flag and default in options.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';
import { MemoryEngine, type ChannelHubOptions, type Engine, type MemoryEngineOptions } from '../channels/index.js';
import { DEFAULT_MAX_HISTORY_ANSWER_BYTES } from '../wire/index.js';
import type { WebSocketConnection } from '../node/connection.js';
import { WebSocketServer, type WebSocketServerOptions } from '../node/server.js';
import { sameOrigin } from '../protocol/origin.js';
import type { ProxyConfig } from './config/sections.js';
import { PROXY_DEFAULTS } from './proxy/backend.js';
import { ProxyHooks } from './proxy/hooks.js';
import { AdminGate, adminAccess, isLoopbackAddress, type AdminAccess } from './admin.js';
import { apiHandler, DEFAULT_API_REQUEST_TIMEOUT, MIN_API_KEY_LENGTH } from './api/http.js';
import { tokenAuthentication } from './auth/index.js';
import { channelsEndpoint, channelsMaxPayload, type ChannelsEndpointOptions } from './channels.js';
import type { ApiConfig, NamespacesConfig, SubscriptionTokenVerifier, TokenConfig } from './config/sections.js';
import { echoHandlers, echoOptions } from './echo.js';
import { Inspector, type InspectedStream } from './inspector.js';
import { Logger } from './log.js';
import { compileNamespaces } from './namespaces.js';
import { apiMetrics, channelMetrics, endpointMetrics, PrometheusText } from './metrics.js';
import { routes } from './routes.js';
import { httpSessionEndpoint, type HttpSessionOptions } from './http-session.js';
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
  | 'authGrace'
  | 'maxPendingRequests'
  | 'maxPendingBytes'
  | 'maxHistoryAnswerBytes'
  | 'maxSubscriptions'
  | 'maxDataLength'
  | 'presenceGrace'
  | 'joinLeave'
  | 'maxPresenceMembers'
  | 'maxPresenceStateLength'
  | 'abuseLimit'
  | 'abuseWindow'
>;
/** What the memory engine keeps, when no other engine is given. */
type MemoryLimits = Pick<MemoryEngineOptions, 'historySize' | 'historyTtl' | 'maxHistoryBytes' | 'maxChannels' | 'idempotencyWindow'>;

/** What {@link createApp} composes the application from: endpoint and hub limits, the engine, the operator surfaces. All optional; `hotline serve` fills them from its flags. */
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
  /** The HTTP API for backends under /api/ (off without `api.key`). */
  api?: ApiConfig;
  /**
   * Channel options by name pattern: who may subscribe, publish, read history and presence,
   * the data's schema, presence on/off, history and publish rate (namespaces.ts). With any,
   * a channel in none is refused `forbidden`; without, every channel is open to everyone.
   * Give a non-memory `engine` the namespaces' retention yourself (namespaceRetention).
   */
  namespaces?: NamespacesConfig;
  /** Who connects to /ws, decided at the upgrade (default: everyone, anonymously). */
  authenticate?: ChannelsEndpointOptions<unknown>['authenticate'];
  /**
   * Calls to the app's backend on connect, subscribe, publish and rpc (docs/serve/proxy.md):
   * it decides after the server's own rules, may rewrite published data, and answers rpc
   * methods. Default: none.
   */
  proxy?: ProxyConfig;
  /** The channel engine (default: in memory, lost on restart). */
  engine?: Engine;
  /** Where connection events (and, at `debug`, every message) are logged (default: `info` to stdout). */
  logger?: Logger;
  /** Where the pages are (default: the package's web/ folder). */
  webRoot?: string;
  /** Where dist/hotline.js is (default: the package's dist/ folder). */
  sdkRoot?: string;
  /**
   * Connection tokens (JWT) on /ws: read from `Authorization: Bearer`, the cookie, the query
   * parameter; verified before the upgrade (401 with the reason otherwise) and again by the
   * `auth` request that refreshes them. Without it, /ws authenticates nobody.
   */
  token?: TokenConfig;
  /**
   * Checks the subscription tokens of namespaces whose `subscribe` is `token` (default: built
   * from `token`, with the same keys; none at all: such subs are refused `unauthorized`).
   */
  subscriptionTokens?: SubscriptionTokenVerifier;
  /** /sse, the channels as Server-Sent Events: its limits (the endpoint's `trustProxy`, `backpressureLimit` and `closeTimeout` by default). */
  sse?: SseOptions;
  /**
   * /sse/session, the HTTP fallback session of the SDK: its limits (its streams count with
   * /sse's; `maxPayload`, `backpressureLimit` and `closeTimeout` are the endpoint's by default).
   */
  httpSession?: Omit<HttpSessionOptions, 'admission'>;
}

/** The `hotline serve` application: its WebSocket endpoints and its HTTP paths. */
export interface App {
  /** The WebSocket endpoints by path, for `serve({ websocket })`: /echo, /ws, and /inspect/ws unless the inspector is off. */
  websocket: Record<string, WebSocketServer<unknown>>;
  /** Answers the plain HTTP paths (pages, the SDK, /healthz, /metrics, …), for `serve({ request })`. */
  request(req: IncomingMessage, res: ServerResponse): void;
  /** Resolves once the channel engine has started. */
  ready: Promise<void>;
  /** Who may use the operator surfaces, as decided from the options. */
  admin: {
    /** Whether /inspect is open, behind the admin secret, or off. */
    inspector: AdminAccess;
    /** Whether /metrics is open, behind the admin secret, or off. */
    metrics: AdminAccess;
  };
  /** The metrics now, in the Prometheus text format (what /metrics serves). */
  metrics(): string;
  /** Whether the channel engine can serve now (false while Redis is unreachable). */
  healthy(): boolean;
  /**
   * Ends every SSE stream and HTTP session with an `event: close`, 1001 and this reason
   * (default `server shutting down`): for `serve({ goingAway })`, so that they hear it with
   * the WebSocket connections, reconnect hint and all, before `serve()` cuts the connections.
   */
  closeStreams(reason?: string): void;
  /** Ends the streams as `closeStreams()` does if they are still open, stops the inspector, and closes the channel hub and its engine; the connections are `serve()`'s to close. */
  close(): Promise<void>;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Builds the application `hotline serve` runs, without listening: hand it to `serve()`. */
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
  const echo = new WebSocketServer<undefined>({ ...common, ...echoOptions, handlers: echoHandlers });
  // Built first: a bad key or short secret stops the server before it listens.
  const tokens = options.token === undefined ? undefined : tokenAuthentication(options.token);
  const subscriptionTokens = options.subscriptionTokens ?? tokens?.subscriptions;
  // The token's check (or the application's) first; a connect hook decides after it.
  const upgradeCheck = tokens?.connections.authenticate ?? options.authenticate;
  // The backend's answers may carry a publish's data: room for the largest one a client may send.
  const proxy = options.proxy === undefined ? undefined : new ProxyHooks(options.proxy, logger, { maxAnswerBytes: proxyAnswerBytes(options.maxDataLength) });
  const apiKey = options.api?.key;
  if (apiKey !== undefined && apiKey.length < MIN_API_KEY_LENGTH) throw new TypeError(`api.key must be at least ${MIN_API_KEY_LENGTH} characters`);
  const namespaces = options.namespaces === undefined ? undefined : compileNamespaces<unknown>(options.namespaces, subscriptionTokens);
  const { retention, ...namespaceRules } = namespaces ?? {};
  const channels = channelsEndpoint<unknown>({
    ...common,
    ...namespaceRules,
    authenticateToken: tokens?.connections.authenticateToken,
    engine:
      options.engine ??
      new MemoryEngine({
        historySize: options.historySize,
        historyTtl: options.historyTtl,
        maxHistoryBytes: options.maxHistoryBytes,
        maxChannels: options.maxChannels,
        idempotencyWindow: options.idempotencyWindow,
        channelRetention: retention,
      }),
    publishRate: options.publishRate,
    subscribeRate: options.subscribeRate,
    rpcRate: options.rpcRate,
    historyRate: options.historyRate,
    presenceRate: options.presenceRate,
    unsubscribeRate: options.unsubscribeRate,
    pingRate: options.pingRate,
    authRate: options.authRate,
    authGrace: options.authGrace,
    maxPendingRequests: options.maxPendingRequests,
    maxPendingBytes: options.maxPendingBytes,
    maxHistoryAnswerBytes: options.maxHistoryAnswerBytes,
    maxSubscriptions: options.maxSubscriptions,
    maxDataLength: options.maxDataLength,
    presenceGrace: options.presenceGrace,
    joinLeave: options.joinLeave,
    maxPresenceMembers: options.maxPresenceMembers,
    maxPresenceStateLength: options.maxPresenceStateLength,
    abuseLimit: options.abuseLimit,
    abuseWindow: options.abuseWindow,
    limits: { maxJsonDepth: options.maxJsonDepth },
    proxy: proxy?.channelProxy(),
    authenticate: proxy === undefined ? upgradeCheck : proxy.authenticate(upgradeCheck === undefined ? undefined : async (req, client) => upgradeCheck(req, client)),
    keepHeaders: proxy?.keepHeaders,
  });

  const loopback = isLoopbackAddress(options.host ?? '127.0.0.1');
  const admin = {
    inspector: adminAccess(options.inspector, options.adminSecret, loopback),
    metrics: adminAccess(options.metrics, options.adminSecret, loopback),
  };
  const gate = new AdminGate(options.adminSecret, loopback);
  const api = apiHandler({
    key: apiKey,
    maxBodyBytes: options.api?.maxBodyBytes ?? channelsMaxPayload(options.maxDataLength),
    requestTimeout: options.api?.requestTimeout ?? DEFAULT_API_REQUEST_TIMEOUT,
    previews: options.inspectorPreviews ?? false,
    context: { channels: channels.hub.api, maxHistoryBytes: options.maxHistoryAnswerBytes ?? DEFAULT_MAX_HISTORY_ANSWER_BYTES },
  });
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
  // /sse/session: the SDK's fallback, another transport of the same hub sessions, counted with /sse.
  const session = httpSessionEndpoint(channels, {
    admission: sse.admission,
    maxPayload: options.maxPayload ?? channelsMaxPayload(options.maxDataLength),
    backpressureLimit: options.backpressureLimit,
    closeTimeout: options.closeTimeout,
    heartbeatInterval: options.sse?.heartbeatInterval,
    idleTimeout: options.sse?.idleTimeout,
    ...options.httpSession,
  });
  const endpoints: Record<string, WebSocketServer<unknown>> = {
    '/echo': echo as WebSocketServer<unknown>,
    '/ws': channels.server as WebSocketServer<unknown>,
  };
  const streams = function* (): Iterable<InspectedStream> {
    const { hub } = channels;
    for (const stream of sse.streams) yield { endpoint: '/sse', id: stream.id, address: stream.address, since: stream.openedAt, user: hub.userOf(stream) };
    for (const stream of session.sessions.values()) yield { endpoint: '/sse/session', id: stream.id, address: stream.address, since: stream.openedAt, user: hub.userOf(stream) };
  };
  inspector.watch(endpoints, channels.hub, { calls: api.calls, namespaces: options.namespaces, streams });

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
      apiMetrics(text, api.calls.counters());
      proxy?.metrics(text);
      sse.metrics(text);
      session.metrics(text);
      text.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [[{}, process.memoryUsage.rss()]]);
      // The young generation ("new") is what a burst of connections grows and V8 keeps (docs/benchmarks.md, idle memory).
      const spaces = getHeapSpaceStatistics().map((space): [Record<string, string>, number] => [{ space: space.space_name.replace(/_space$/, '') }, space.space_size]);
      text.family('nodejs_heap_space_size_total_bytes', 'gauge', 'Size of each V8 heap space in bytes.', spaces);
      return text.toString();
    },
    request: withApi(api.handle, withSse(sse.handleRequest, session.handleRequest, routes({ webRoot, sdkRoot, admin, gate, healthy: () => app.healthy(), metrics: () => app.metrics() }))),
    closeStreams(reason) {
      sse.close(reason);
      session.close(reason);
    },
    async close() {
      app.closeStreams();
      inspector.stop();
      proxy?.close();
      await channels.hub.close();
    },
  };
  return app;
}

/** The HTTP API's paths first, then the app's others. */
function withApi(
  api: (req: IncomingMessage, res: ServerResponse) => boolean,
  rest: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (!api(req, res)) rest(req, res);
  };
}

/** The largest backend answer by default: 256 KiB, or what a publish of `maxDataLength` needs once that is raised. */
function proxyAnswerBytes(maxDataLength: number | undefined): number | undefined {
  return maxDataLength === undefined ? undefined : Math.max(PROXY_DEFAULTS.maxAnswerBytes, 3 * maxDataLength + 64 * 1024);
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** /sse to the SSE endpoint, /sse/session to the HTTP session, everything else to the plain routes. */
function withSse(sse: Handler, session: Handler, rest: Handler): Handler {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/sse') sse(req, res);
    else if (path === '/sse/session') session(req, res);
    else rest(req, res);
  };
}
