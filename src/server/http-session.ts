/**
 * The HTTP fallback session: hotline.v1 for clients whose WebSocket cannot get through (a
 * proxy that refuses `Upgrade`). Downstream, `GET /sse/session` is a `text/event-stream`
 * whose first event (`session`) names an id and whose every other event is one hotline.v1
 * server text; upstream, `POST /sse/session` with `Hotline-Session: ID` carries requests as
 * newline-delimited JSON. The stream is one more connection of the endpoint's hub (an
 * {@link SessionStream}), so every op (auth, sub with recovery, pub, presence, history, rpc,
 * server calls) is the hub's own, with its rate limits and queue: nothing here re-decides them.
 *
 * The id is 192 random bits, lives as long as the stream (its end ends the session, as a
 * WebSocket's close does; the SDK opens another and recovers from its offsets) and is bound
 * to the request that opened it: a POST must bring the same `Cookie` and `Authorization`
 * (403 otherwise) and, from a browser, the same origin (403), so a page of another origin
 * cannot use it even if it learned it. The custom header makes any cross-origin POST
 * preflighted, and no answer here allows one.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { DEFAULT_BACKPRESSURE_LIMIT } from '../node/connection-context.js';
import { DEFAULT_CLOSE_TIMEOUT } from '../node/timeouts.js';
import type { UpgradeRejection } from '../node/server.js';
import { CloseCode, SHUTTING_DOWN } from '../protocol/close-code.js';
import { channelsMaxPayload, type ChannelsEndpoint } from './channels.js';
import type { PrometheusText } from './metrics.js';
import { SessionStream } from './http-session-stream.js';
import type { StreamResponse } from './event-stream.js';
import { SSE_DEFAULTS } from './sse.js';
import type { StreamAdmission } from './stream-admission.js';

/** The header a POST names its session in. */
export const SESSION_HEADER = 'hotline-session';
/** The content type of a POST's body: hotline.v1 requests, one JSON text a line. */
export const SESSION_CONTENT_TYPE = 'application/x-ndjson';

/** The limits and timing of an {@link httpSessionEndpoint}; each optional. */
export interface HttpSessionOptions {
  /** The count of streams shared with /sse (`sseEndpoint(…).admission`): sessions count in its totals and per address. */
  admission: StreamAdmission;
  /** Largest POST body in bytes (default: the channel endpoint's `maxPayload`, 256 KiB); past it, 413. */
  maxPayload?: number;
  /** Requests one POST may carry (default 100); past it, 413 and none of them runs. */
  maxRequestsPerPost?: number;
  /** POSTs of one session being read at once (default 4; the SDK sends one at a time); past it, 429. */
  maxPendingPosts?: number;
  /** Bytes waiting for a slow reader past which its session is closed with 1013 (default 1 MiB). */
  backpressureLimit?: number;
  /** How long a closed session's unread bytes may keep its connection (ms, default 5000). */
  closeTimeout?: number;
  /** A comment line this often (ms, default 15000). */
  heartbeatInterval?: number;
  /** A session whose reader has read nothing of what waits for this long is dropped (ms, default 120000, 0 = off). */
  idleTimeout?: number;
}

/** The defaults of {@link HttpSessionOptions} of its own. */
export const HTTP_SESSION_DEFAULTS = {
  /** Requests one POST may carry. */
  maxRequestsPerPost: 100,
  /** POSTs of one session read at once. */
  maxPendingPosts: 4,
};

/** What an HTTP session endpoint counts, for /metrics and tests. */
export interface HttpSessionCounters {
  /** Sessions opened. */
  opened: number;
  /** Requests (GET or POST) answered with an HTTP error. */
  refused: number;
  /** Sessions closed (1013) because their reader was too slow. */
  slowConsumerCloses: number;
  /** Sessions dropped because their reader read nothing for `idleTimeout`. */
  idleCloses: number;
}

/** The HTTP fallback session: what {@link httpSessionEndpoint} returns. */
export interface HttpSessionEndpoint {
  /** The request handler of `GET` and `POST` at its path (`/sse/session` in `hotline serve`). */
  handleRequest(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void;
  /** Open sessions by their hub client id. */
  readonly sessions: ReadonlyMap<string, SessionStream<unknown>>;
  /** What it counted since it started. */
  readonly counters: HttpSessionCounters;
  /** Adds the endpoint's families to a /metrics text. */
  metrics(text: PrometheusText): void;
  /** Ends every session with an `event: close`, 1001 and this reason (default `server shutting down`), and stops the heartbeat. */
  close(reason?: string): void;
}

/** What a POST must match of the GET that opened its session. */
interface Binding<A> {
  stream: SessionStream<A>;
  /** SHA-256 of the opening request's Cookie and Authorization. */
  credentials: Buffer;
  /** Its Origin, if it sent one. */
  origin: string | undefined;
  /** Its Host: a browser's same-origin GET sends no Origin, its POST does. */
  host: string;
}

/** The HTTP fallback session of a channel endpoint: same hub, identity and permissions as its WebSocket. */
export function httpSessionEndpoint<A>(channels: ChannelsEndpoint<A>, options: HttpSessionOptions): HttpSessionEndpoint {
  const { admission } = options;
  const maxPayload = options.maxPayload ?? channelsMaxPayload(undefined);
  const maxRequests = options.maxRequestsPerPost ?? HTTP_SESSION_DEFAULTS.maxRequestsPerPost;
  const maxPosting = options.maxPendingPosts ?? HTTP_SESSION_DEFAULTS.maxPendingPosts;
  const idleTimeout = options.idleTimeout ?? SSE_DEFAULTS.idleTimeout;
  const limits = { backpressureLimit: options.backpressureLimit ?? DEFAULT_BACKPRESSURE_LIMIT, closeTimeout: options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT };
  const { hub } = channels;
  const bySession = new Map<string, Binding<A>>();
  const byClient = new Map<string, SessionStream<A>>();
  const counters: HttpSessionCounters = { opened: 0, refused: 0, slowConsumerCloses: 0, idleCloses: 0 };
  let next = 0;

  const refuse = (res: StreamResponse, rejection: UpgradeRejection): void => {
    counters.refused++;
    if (res.headersSent) return void res.destroy();
    res.writeHead(rejection.status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache', ...rejection.headers });
    res.end(`${rejection.message ?? ''}\n`);
  };

  const heartbeat = setInterval(() => {
    const now = Date.now();
    for (const stream of byClient.values()) {
      if (idleTimeout > 0 && stream.stalledFor(now) >= idleTimeout) {
        counters.idleCloses++;
        stream.destroy();
      } else stream.heartbeat();
    }
  }, options.heartbeatInterval ?? SSE_DEFAULTS.heartbeatInterval);
  heartbeat.unref();

  async function open(req: IncomingMessage | Http2ServerRequest, res: StreamResponse): Promise<void> {
    const refusal = admission.admit(req, res, 'streams');
    if (refusal !== null) return refuse(res, refusal);
    const id = `${hub.nodeId}.h${(next++).toString(36)}`;
    const identity = await channels.identify(req, id);
    if ('reject' in identity) return refuse(res, identity.reject);
    if (res.writableEnded || res.destroyed) return;
    const session = randomBytes(24).toString('base64url');
    const stream = new SessionStream<A>(id, identity, res, limits, () => counters.slowConsumerCloses++);
    stream.address = admission.addressOf(req);
    bySession.set(session, { stream, credentials: credentialsOf(req), origin: header(req, 'origin'), host: header(req, 'host') ?? '' });
    byClient.set(id, stream);
    res.once('close', () => {
      stream.gone();
      bySession.delete(session);
      byClient.delete(id);
      hub.disconnect(stream);
    });
    counters.opened++;
    stream.start(session);
    hub.connect(stream, identity.expiresAt);
  }

  async function post(req: IncomingMessage | Http2ServerRequest, res: StreamResponse): Promise<void> {
    const binding = bySession.get(header(req, SESSION_HEADER) ?? '');
    if (binding === undefined) return refuse(res, { status: 404, message: 'no such session (it ended, or never was): open a new one with GET' });
    const mismatch = bindingMismatch(binding, req);
    if (mismatch !== null) return refuse(res, { status: 403, message: mismatch });
    if (!(header(req, 'content-type') ?? '').toLowerCase().startsWith(SESSION_CONTENT_TYPE)) {
      return refuse(res, { status: 415, message: `the body is hotline.v1 requests, one a line, as ${SESSION_CONTENT_TYPE}` });
    }
    const { stream } = binding;
    if (Number(header(req, 'content-length') ?? 0) > maxPayload) return refuse(res, { status: 413, message: `a POST carries at most ${maxPayload} bytes` });
    if (stream.posting >= maxPosting) return refuse(res, { status: 429, message: `at most ${maxPosting} POSTs of a session at once`, headers: { 'Retry-After': '1' } });
    stream.posting++;
    let body: string | null;
    try {
      body = await readBody(req, maxPayload);
    } finally {
      stream.posting--;
    }
    if (body === null) {
      // The rest of the body is not worth reading: the connection goes once the answer is out.
      res.once('finish', () => req.destroy());
      return refuse(res, { status: 413, message: `a POST carries at most ${maxPayload} bytes` });
    }
    const lines = body.split('\n').filter((line) => line.trim() !== '');
    if (lines.length > maxRequests) return refuse(res, { status: 413, message: `a POST carries at most ${maxRequests} requests (${lines.length} sent)` });
    if (stream.closed) return refuse(res, { status: 404, message: 'the session ended: open a new one with GET' });
    // In the order they came: the hub runs a connection's requests in order.
    for (const line of lines) hub.handleText(stream, line.endsWith('\r') ? line.slice(0, -1) : line);
    res.writeHead(204, { 'cache-control': 'no-store' });
    res.end();
  }

  return {
    sessions: byClient as ReadonlyMap<string, SessionStream<unknown>>,
    counters,
    handleRequest(req, res) {
      const response = res as StreamResponse;
      const work = req.method === 'GET' ? open(req, response) : req.method === 'POST' ? post(req, response) : null;
      if (work === null) return refuse(response, { status: 405, message: 'GET opens a session, POST sends its requests', headers: { Allow: 'GET, POST' } });
      work.catch((error: unknown) => {
        console.error('hotline: an HTTP session request failed:', error);
        refuse(response, { status: 500, message: 'internal error' });
      });
    },
    metrics(text) {
      text
        .family('hotline_http_sessions', 'gauge', 'Open HTTP fallback sessions.', [[{}, byClient.size]])
        .family('hotline_http_sessions_opened_total', 'counter', 'HTTP fallback sessions opened.', [[{}, counters.opened]])
        .family('hotline_http_session_refused_total', 'counter', 'HTTP session requests (GET or POST) answered with an HTTP error.', [[{}, counters.refused]])
        .family('hotline_http_session_slow_consumer_closes_total', 'counter', 'HTTP sessions closed for not reading fast enough.', [[{}, counters.slowConsumerCloses]])
        .family('hotline_http_session_idle_closes_total', 'counter', 'HTTP sessions dropped for reading nothing within the idle timeout.', [[{}, counters.idleCloses]]);
    },
    close(reason = SHUTTING_DOWN) {
      clearInterval(heartbeat);
      for (const stream of byClient.values()) stream.close(CloseCode.GoingAway, reason);
    },
  };
}

function header(req: IncomingMessage | Http2ServerRequest, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function credentialsOf(req: IncomingMessage | Http2ServerRequest): Buffer {
  return createHash('sha256')
    .update(`${header(req, 'cookie') ?? ''}\n${header(req, 'authorization') ?? ''}`)
    .digest();
}

/** Why a POST may not use the session it names, or null. */
function bindingMismatch<A>(binding: Binding<A>, req: IncomingMessage | Http2ServerRequest): string | null {
  if (!timingSafeEqual(binding.credentials, credentialsOf(req))) return 'the session belongs to other credentials (Cookie, Authorization)';
  const origin = header(req, 'origin');
  if (origin === undefined) return null;
  if (binding.origin !== undefined) return origin === binding.origin ? null : `origin ${origin} may not use this session`;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return `origin ${origin} may not use this session`;
  }
  return host === binding.host ? null : `origin ${origin} may not use this session`;
}

/** The body as text; null once it passes `limit` bytes (the rest is not read). */
function readBody(req: IncomingMessage | Http2ServerRequest, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      req.resume();
      resolve(null);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (size <= limit) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.once('error', reject);
    req.once('close', () => resolve(null));
  });
}
