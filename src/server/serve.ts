import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { Server as HttpsServer } from 'node:https';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import { Buffer } from 'node:buffer';
import { validateClientRequest } from '../protocol/handshake.js';
import { HandshakeError } from '../protocol/errors.js';
import { CloseCode, SHUTTING_DOWN } from '../protocol/close-code.js';
import { HttpHeadParser, type HttpRequestHead } from '../protocol/http-head.js';
import {
  refuse,
  requestHead,
  TOO_MANY_CONNECTIONS,
  WebSocketServer,
  type UpgradeRequest,
  type WebSocketServerOptions,
} from '../node/server.js';
import type { ConnectionHandlers, ConnectionSendOptions, SendData } from '../node/connection.js';
import { acceptWithStableShape } from '../node/accept.js';
import { inheritNoDelay, noDelayOnListener } from '../node/no-delay.js';
import { DEFAULT_HANDSHAKE_TIMEOUT } from '../node/timeouts.js';
import { withReconnectHint } from '../wire/reconnect-hint.js';
import { ConnectionRatePerAddress, ConnectionsPerAddress } from './address-limit.js';
import type { RateLimit } from '../channels/rate-limit.js';

/** Options shared by every endpoint (limits, subprotocols, origins, heartbeats). */
export type EndpointOptions = Omit<WebSocketServerOptions<undefined>, 'handlers'>;

export interface AttachOptions {
  /**
   * WebSocket endpoints by path, each with its handlers, full options of its own, or a
   * server made elsewhere (such as the channel endpoint; `endpoint` options do not apply to it).
   */
  websocket: Record<string, ConnectionHandlers<undefined> | WebSocketServerOptions<undefined> | WebSocketServer<unknown>>;
  /**
   * Options for the endpoints made here; its `closeTimeout` also bounds how long an upgrade
   * refused before it reaches an endpoint (no such path, a malformed request) keeps its socket.
   */
  endpoint?: EndpointOptions;
  /** How long a graceful shutdown waits for closing handshakes before terminating (ms, default 5000). */
  shutdownTimeout?: number;
  /**
   * On shutdown, the 1001 close reason asks clients to spread their reconnects over this
   * many ms (default 5000; 0: no hint). The SDK waits a random time within it, so a node's
   * clients do not all reconnect to the others at once in a rolling deploy.
   */
  reconnectWindow?: number;
  /**
   * Called as a shutdown closes the WebSocket connections, with the reason their 1001
   * carries (and its reconnect hint): end the streams that plain HTTP requests hold open
   * (SSE, HTTP sessions) with it too, before the connections still open are cut.
   */
  goingAway?: (reason: string) => void;
  /**
   * WebSocket connections at once across every endpoint, upgrades in progress included;
   * past it an upgrade is answered `503` with `Retry-After: 5` (default 10000, 0 = no
   * limit). An endpoint's own `maxConnections` still applies to it as well.
   */
  maxConnections?: number;
  /**
   * WebSocket connections at once from one client address (IPv6: one /64), upgrades in
   * progress included, across every endpoint; behind `trustProxy`, the address the endpoint
   * finds. Past it an upgrade is answered `429` with `Retry-After: 5`, so that one client
   * cannot take every place under `maxConnections` (default 1000, 0 = no limit).
   */
  maxConnectionsPerAddress?: number;
  /**
   * New WebSocket connections per second from one client address (IPv6: one /64; behind
   * `trustProxy`, the address the endpoint finds), with a burst above the rate; past it an
   * upgrade is answered `429` with `Retry-After: 1`. Default 100 per second with a burst of
   * 1000 (as many as `maxConnectionsPerAddress`: a whole office NAT reconnecting at once
   * after a deploy is served); `null`: no limit.
   */
  connectionRatePerAddress?: RateLimit | null;
}

export interface ServeOptions extends AttachOptions {
  /** TCP port (default 0: a free one, which the running server's `port` tells). */
  port?: number;
  /** Address to listen on (default '127.0.0.1': this machine only; '0.0.0.0' or '::' for every interface). */
  host?: string;
  /** Plain HTTP requests; without it they get 404 (426 on a WebSocket path). */
  request?: (req: IncomingMessage, res: ServerResponse) => void;
  /** Time from accepting a connection to a complete upgrade request (ms, default 10000). */
  handshakeTimeout?: number;
  /**
   * Serve https and wss: at least `cert` and `key` (PEM). The TLS handshake counts
   * against `handshakeTimeout` too.
   */
  tls?: TlsOptions;
  /**
   * `false`: no port of its own; connections come through the running server's `accept()`
   * (a worker process that a primary hands accepted connections to). Default `true`.
   */
  listen?: boolean;
}

/** What `attach()` returns, and `serve()` through its running server: the endpoints and what acts on all of them. */
export interface Endpoints {
  /** Each endpoint's WebSocket server by path, such as `'/ws'`: its connections, counters and topics. */
  readonly endpoints: ReadonlyMap<string, WebSocketServer<unknown>>;
  /**
   * Hands an upgrade to `endpoint` through `run` (which may return a promise while it
   * waits, as `handleUpgrade` does; a throw or a rejection destroys the socket), or answers 503 when `maxConnections`
   * are open or upgrading already, 429 when the client's address holds
   * `maxConnectionsPerAddress` (found from `headers` behind the endpoint's trusted proxies).
   */
  upgrade(endpoint: WebSocketServer<unknown>, socket: Duplex, run: () => unknown, headers?: ReadonlyMap<string, string>): void;
  /**
   * Publishes to a topic on every endpoint with topics (not the channel endpoint: publish to
   * its channels with `channels.publish()`); returns how many connections it reached.
   */
  publish(topic: string, data: Exclude<SendData, Blob>, options?: ConnectionSendOptions): number;
  /** Connections subscribed to a topic, on every endpoint. */
  subscriberCount(topic: string): number;
  /**
   * Closes every connection with 1001, waits for them up to the shutdown timeout, terminates
   * the rest, then closes what the endpoints own (a channel endpoint's engine).
   */
  closeConnections(): Promise<void>;
}

/** A server that `serve()` started: listening, until {@link RunningServer.close}. */
export interface RunningServer extends Endpoints {
  /**
   * The node:http server that plain HTTP requests are handed to (the `request` option). It
   * does not listen itself: `serve()` accepts connections and passes non-upgrades to it.
   */
  readonly http: Server;
  /** The port it listens on: the one the OS chose when `port` was 0 (the default). */
  readonly port: number;
  /** The address it listens on, as given in `host` (default `'127.0.0.1'`). */
  readonly host: string;
  /** Whether it serves https/wss. */
  readonly secure: boolean;
  /** Serves a connection accepted elsewhere (handed over by another process) as if it had accepted it. */
  accept(socket: Socket): void;
  /**
   * Stops accepting, closes every connection with 1001, waits, terminates the rest, and
   * closes what the endpoints own (a channel endpoint's engine): nothing of it keeps the
   * process alive afterwards.
   */
  close(): Promise<void>;
}

export const DEFAULT_SHUTDOWN_TIMEOUT = 5_000;
/** The reconnect spread a shutdown asks of clients (ms): see {@link AttachOptions.reconnectWindow}. */
export const DEFAULT_RECONNECT_WINDOW = 5_000;
/**
 * Each connection holds a file descriptor and ~10 KiB when idle (more with traffic and
 * compression): 10,000 stays well inside a 20,000-descriptor limit with room for handshakes
 * and HTTP, and within ~100 MiB idle.
 */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/**
 * A tenth of {@link DEFAULT_MAX_CONNECTIONS}: one address cannot fill the server, while an
 * office, campus or carrier NAT with hundreds of users behind one IPv4 address is still served.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 1000;

/** {@link AttachOptions.connectionRatePerAddress}'s default. */
export const DEFAULT_CONNECTION_RATE_PER_ADDRESS: RateLimit = { perSecond: 100, burst: 1000 };

/** The answer past `connectionRatePerAddress`: this address connects faster than the rate. */
export const CONNECTING_TOO_FAST = { status: 429, message: 'connecting too fast from this address', headers: { 'Retry-After': '1' } } as const;

/** The answer past `maxConnectionsPerAddress`: this address holds its share already. */
export const TOO_MANY_FROM_ADDRESS = { status: 429, message: 'too many connections from this address', headers: { 'Retry-After': '5' } } as const;

/**
 * A request to a WebSocket path that node:http did not treat as an upgrade (it lacks
 * `Connection: Upgrade` or `Upgrade`): answer it as the handshake checks would, and close.
 */
function refuseAsPlainRequest(req: IncomingMessage, res: ServerResponse): void {
  let status = 426;
  let message = 'this path speaks WebSocket: connect with a WebSocket client';
  let headers: Record<string, string> = { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13' };
  try {
    validateClientRequest(requestHead(req));
  } catch (error) {
    if (!(error instanceof HandshakeError)) throw error;
    status = error.status;
    message = error.message;
    headers = { ...error.headers };
  }
  const connection = headers.Connection;
  delete headers.Connection;
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    Connection: connection === undefined ? 'close' : `${connection}, close`,
  });
  res.end(`${message}\n`);
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * Adds WebSocket endpoints to an existing `http` or `https` server: upgrades to their
 * paths are handled. An upgrade to another path is left to the server's other 'upgrade'
 * listeners (a `ws` server with `noServer`, Vite's HMR) when it has any, counted as the
 * upgrade arrives, so listeners added after this call count too; with none, it gets 404.
 */
export function attach(server: Server | HttpsServer, options: AttachOptions): Endpoints {
  const endpoints = new Map<string, WebSocketServer<unknown>>();
  for (const [path, value] of Object.entries(options.websocket)) {
    if (value instanceof WebSocketServer) {
      endpoints.set(path, value);
      continue;
    }
    const own = 'handlers' in value ? value : { handlers: value };
    endpoints.set(path, new WebSocketServer<undefined>({ ...options.endpoint, ...own }) as WebSocketServer<unknown>);
  }
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const closeTimeout = options.endpoint?.closeTimeout;
  // Upgrades handed to an endpoint and not yet settled (an `upgrade` hook may be awaiting).
  let upgrading = 0;
  const perAddress = new ConnectionsPerAddress(options.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
  const ratePerAddress = new ConnectionRatePerAddress(options.connectionRatePerAddress === undefined ? DEFAULT_CONNECTION_RATE_PER_ADDRESS : options.connectionRatePerAddress);
  const upgrade = (endpoint: WebSocketServer<unknown>, socket: Duplex, run: () => unknown, headers: ReadonlyMap<string, string> = NO_HEADERS): void => {
    if (maxConnections > 0) {
      let open = upgrading;
      for (const each of endpoints.values()) open += each.connections.size;
      if (open >= maxConnections) {
        endpoint.refuse(socket, TOO_MANY_CONNECTIONS);
        return;
      }
    }
    const address = perAddress.max > 0 || ratePerAddress.limit !== null ? endpoint.clientAddressOf(socket, headers) : '';
    const release = perAddress.take(address);
    if (release === null) {
      endpoint.refuse(socket, { ...TOO_MANY_FROM_ADDRESS, headers: { ...TOO_MANY_FROM_ADDRESS.headers } });
      return;
    }
    // After the bounds on what is open: an upgrade they refuse takes no token.
    if (!ratePerAddress.take(address)) {
      release();
      endpoint.refuse(socket, { ...CONNECTING_TOO_FAST, headers: { ...CONNECTING_TOO_FAST.headers } });
      return;
    }
    if (perAddress.max > 0) {
      // The place is the socket's until it closes: refused, failed or after its closing handshake.
      if (socket.destroyed) release();
      else socket.once('close', release);
    }
    let outcome: unknown;
    try {
      outcome = run();
    } catch (error) {
      upgradeFailed(error, socket);
      return;
    }
    // Only an upgrade that waits (for an `upgrade` hook) is counted as in progress: one
    // that completed here is already among the endpoint's connections, with no promise made.
    if (!(outcome instanceof Promise)) return;
    upgrading++;
    outcome.then(
      () => upgrading--,
      (error: unknown) => {
        upgrading--;
        upgradeFailed(error, socket);
      },
    );
  };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const endpoint = endpoints.get(pathOf(req.url));
    if (endpoint === undefined) {
      // Answering here would write over whatever another listener makes of it. Alone, the
      // answer is due: node:http leaves an upgrade that nobody answers open.
      if (server.listenerCount('upgrade') > 1) return;
      refuse(socket, { status: 404, message: 'no WebSocket endpoint at this path' }, closeTimeout);
      return;
    }
    upgrade(endpoint, socket, () => endpoint.handleUpgrade(req, socket, head), forwardingHeaders(req));
  });
  const shutdownTimeout = options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT;
  const goingAway = withReconnectHint(SHUTTING_DOWN, options.reconnectWindow ?? DEFAULT_RECONNECT_WINDOW);
  return {
    upgrade,
    endpoints,
    publish(topic, data, sendOptions) {
      let reached = 0;
      for (const endpoint of endpoints.values()) if (endpoint.topics.enabled) reached += endpoint.publish(topic, data, sendOptions);
      return reached;
    },
    subscriberCount(topic) {
      let count = 0;
      for (const endpoint of endpoints.values()) if (endpoint.topics.enabled) count += endpoint.subscriberCount(topic);
      return count;
    },
    async closeConnections() {
      for (const endpoint of endpoints.values()) {
        endpoint.stop();
        endpoint.closeAll(CloseCode.GoingAway, goingAway);
      }
      options.goingAway?.(goingAway);
      const deadline = Date.now() + shutdownTimeout;
      while ([...endpoints.values()].some((e) => e.connections.size > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const endpoint of endpoints.values()) endpoint.terminateAll();
      await Promise.all([...endpoints.values()].map((endpoint) => endpoint.closeOwned()));
    },
  };
}

/**
 * Starts a server with WebSocket endpoints and resolves once it listens. It reads each new
 * connection's first request itself: an upgrade to one of its paths is handled without
 * node:http; anything else, with the bytes read so far, goes to an internal node:http server.
 */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const paths = new Set(Object.keys(options.websocket));
  const handshakeTimeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
  // How often node:http checks its request timeouts (30 s by default, too coarse for a short handshake timeout).
  const http = createServer({ connectionsCheckingInterval: Math.min(handshakeTimeout, 30_000) }, (req, res) => {
    if (paths.has(pathOf(req.url))) {
      refuseAsPlainRequest(req, res);
    } else if (options.request) {
      options.request(req, res);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
    }
  });
  http.headersTimeout = handshakeTimeout;
  http.requestTimeout = handshakeTimeout;
  const attached = attach(http, options);
  // node:http enforces headersTimeout and requestTimeout from a timer it starts when it
  // starts listening; this internal server never listens (connections are handed to it), so
  // it is told it does, or a kept-alive connection could dribble a request forever.
  http.emit('listening');

  const reader: FirstRequestReader = {
    handshakeTimeout,
    closeTimeout: options.endpoint?.closeTimeout,
    headRead(socket, head, parser, seen) {
      const endpoint = attached.endpoints.get(pathOf(head.target));
      if (endpoint !== undefined && head.headers.has('upgrade')) {
        const rest = parser.rest.length === 0 ? NO_BYTES : Buffer.from(parser.rest);
        attached.upgrade(endpoint, socket, () => endpoint.upgradeHead(head, socket, rest, new ParsedUpgradeRequest(head, socket)), head.headers);
        return;
      }
      // Plain HTTP (or an upgrade to a path of no endpoint): node:http takes it from here,
      // with Nagle off as net.Server's noDelay would have it (upgrades turn it off themselves).
      socket.pause();
      socket.setNoDelay(true);
      socket.unshift(seen.length === 1 ? seen[0]! : Buffer.concat(seen));
      http.emit('connection', socket);
      socket.resume();
    },
  };
  // Set once the listener has Nagle off itself: its sockets come with it off.
  let nagleOffOnAccept = false;
  const readFirstRequest = (socket: Socket): void => {
    if (nagleOffOnAccept) inheritNoDelay(socket);
    FirstRequest.read(socket, reader);
  };

  const listener =
    options.tls === undefined
      ? // No noDelay option: it would set it on each socket's handle without telling the
        // socket, which would then set it again. The listener has it instead (below).
        createNetServer(readFirstRequest)
      : createTlsServer({ handshakeTimeout, ...options.tls }, (socket) => {
          socket.setNoDelay(true);
          readFirstRequest(socket);
        });
  // A failed TLS handshake concerns that connection only.
  listener.on('tlsClientError', (_error: Error, socket: Socket) => socket.destroy());
  const host = options.host ?? '127.0.0.1';
  if (options.listen !== false) await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port ?? 0, host, () => {
      listener.off('error', reject);
      if (options.tls === undefined) nagleOffOnAccept = noDelayOnListener(listener);
      acceptWithStableShape(listener);
      resolve();
    });
  });
  const address = listener.address();
  const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 0);

  return {
    ...attached,
    http,
    port,
    host,
    secure: options.tls !== undefined,
    accept(socket) {
      socket.setNoDelay(true);
      listener.emit('connection', socket);
    },
    async close() {
      const stopped = new Promise<void>((resolve) => listener.close(() => resolve()));
      // Nor on a kept-alive connection: a browser's EventSource reconnecting over one would
      // open a stream on this server while it drains, to lose it moments later.
      http.closeIdleConnections();
      await attached.closeConnections();
      http.closeAllConnections();
      http.close();
      await stopped;
    },
  };
}

/**
 * What the `upgrade` hook sees of a request the standalone server parsed itself. Its
 * headers object is made when first read: most endpoints have no hook, and never do.
 */
class ParsedUpgradeRequest implements UpgradeRequest {
  #headers: Record<string, string> | null = null;

  constructor(
    private readonly head: HttpRequestHead,
    /** The TCP connection (see {@link UpgradeRequest.socket}). */
    readonly socket: Socket,
  ) {}

  /** `GET`. */
  get method(): string {
    return this.head.method;
  }

  /** Path and query. */
  get url(): string {
    return this.head.target;
  }

  /** Lower-case names, repeated fields joined with `', '`. */
  get headers(): Readonly<Record<string, string>> {
    return (this.#headers ??= Object.fromEntries(this.head.headers));
  }
}

function upgradeFailed(error: unknown, socket: Duplex): void {
  console.error('hotline: an upgrade failed:', error);
  socket.destroy();
}

/** What {@link FirstRequest} hands the head it read to, and its limits. */
interface FirstRequestReader {
  readonly handshakeTimeout: number;
  /** How long a refused request's socket may linger (see `refuse`). */
  readonly closeTimeout: number | undefined;
  /** A whole head arrived: `seen` is every chunk read so far, `parser.rest` what followed the head. */
  headRead(socket: Socket, head: HttpRequestHead, parser: HttpHeadParser<'request'>, seen: Buffer[]): void;
}

/**
 * The request being read on each socket, so that one set of listener functions serves all;
 * a map rather than a property, which would stay on the socket for its whole life.
 */
const reading = new WeakMap<Socket, FirstRequest>();

/**
 * Reads a new connection's first request head, within the handshake timeout, with one
 * object per connection and listener functions shared by all (a closure each would be
 * made, and collected, on every handshake).
 */
class FirstRequest {
  private readonly parser = new HttpHeadParser('request');
  private readonly seen: Buffer[] = [];
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly socket: Socket,
    private readonly reader: FirstRequestReader,
  ) {
    this.timer = setTimeout(destroySocket, reader.handshakeTimeout, socket);
  }

  static read(socket: Socket, reader: FirstRequestReader): void {
    reading.set(socket, new FirstRequest(socket, reader));
    socket.on('error', FirstRequest.onError);
    // Through the stream, not the shared read buffer: a request for node:http stays with
    // it, and the stream's pause() and resume() then mean what node:http expects (with the
    // shared buffer, resume() starts the handle reading at once, past node:http's own
    // pause: a 401 to a large upload read megabytes more of its body before the close).
    socket.on('data', FirstRequest.onData);
  }

  private static onError(this: Socket): void {
    reading.get(this)?.done();
  }

  private static onData(this: Socket, chunk: Buffer): void {
    reading.get(this)?.received(chunk);
  }

  private received(chunk: Buffer): void {
    this.seen.push(chunk);
    let head;
    try {
      head = this.parser.push(chunk);
    } catch (error) {
      this.done();
      if (error instanceof HandshakeError) refuse(this.socket, { status: error.status, message: error.message }, this.reader.closeTimeout);
      else this.socket.destroy();
      return;
    }
    if (head === null) return;
    this.done();
    this.reader.headRead(this.socket, head, this.parser, this.seen);
  }

  /**
   * Reading the head is over. The socket is not paused here: an upgrade completed at once
   * reads on, and whoever waits before reading (an `upgrade` hook, node:http) pauses it.
   */
  private done(): void {
    const socket = this.socket;
    clearTimeout(this.timer);
    socket.off('data', FirstRequest.onData);
    socket.off('error', FirstRequest.onError);
    reading.delete(socket);
  }
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

const NO_HEADERS: ReadonlyMap<string, string> = new Map();
const NO_BYTES = Buffer.alloc(0);

/** The request's headers that name the client behind proxies (all a per-address count reads). */
function forwardingHeaders(req: IncomingMessage): ReadonlyMap<string, string> {
  const xff = req.headers['x-forwarded-for'];
  const forwarded = req.headers['forwarded'];
  if (xff === undefined && forwarded === undefined) return NO_HEADERS;
  const headers = new Map<string, string>();
  // node:http joins repeated X-Forwarded-For lines itself; other headers may come as arrays.
  for (const [name, value] of [['x-forwarded-for', xff], ['forwarded', forwarded]] as const) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return headers;
}
