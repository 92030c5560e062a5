/**
 * Server-Sent Events beside a channel endpoint: `GET /sse?ch=a&ch=b` streams the channels'
 * messages as `text/event-stream`, readable by any EventSource, `curl -N` or server-side SSE
 * client. A stream is one more connection of the endpoint's hub: admitted by the endpoint's
 * own `identify` (origins, `authenticate`), subscribed by the hub's `sub` requests (its
 * `canSubscribe`, rate limits and recovery), so nothing here re-decides what the hub decides.
 * The event format is in docs/transports.md; the ids in sse-position.ts.
 *
 * Writes and backpressure go through the response object, never its socket, so the same
 * code serves an HTTP/2 stream (many streams on one connection) as an HTTP/1.1 response.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { DEFAULT_BACKPRESSURE_LIMIT } from '../node/connection-context.js';
import { DEFAULT_CLOSE_TIMEOUT } from '../node/timeouts.js';
import type { TrustProxy } from '../node/trust-proxy.js';
import type { UpgradeRejection } from '../node/server.js';
import { CloseCode, SHUTTING_DOWN } from '../protocol/close-code.js';
import { isErrorCode, validateChannelName, type ErrorCode } from '../wire/index.js';
import type { ChannelIdentity } from '../channels/index.js';
import type { RateLimit } from '../channels/rate-limit.js';
import type { ChannelsEndpoint } from './channels.js';
import type { PrometheusText } from './metrics.js';
import type { StreamResponse } from './event-stream.js';
import { SseStream, STREAM_HEADERS } from './sse-stream.js';
import { decodePosition, maxPositionLength } from './sse-position.js';
import { StreamAdmission } from './stream-admission.js';

/** The limits and timing of an {@link sseEndpoint}; each optional, with the defaults of {@link SSE_DEFAULTS}. */
export interface SseOptions {
  /** Channels one stream may name (default 32): every event's id carries a position for each. */
  maxChannels?: number;
  /** Streams at once, starting ones included (default 10000); past it, 503 with Retry-After. */
  maxStreams?: number;
  /** Streams at once from one client address (default 100); past it, 429 with Retry-After. */
  maxStreamsPerAddress?: number;
  /** New streams per second from one client address, with a burst (default 20 a second, 200 at once; null: no limit); past it, 429 with Retry-After. */
  streamRatePerAddress?: RateLimit | null;
  /** A comment line this often, so that proxies and the client see the stream alive (ms, default 15000). */
  heartbeatInterval?: number;
  /** A stream whose client has read nothing of what is waiting for this long is dropped (ms, default 120000, 0 = off). */
  idleTimeout?: number;
  /** The `retry:` hint: how long a client waits before reconnecting (ms, default 2000; each stream is told a value up to 50% above it, spreading reconnects after a restart). */
  retry?: number;
  /** Bytes waiting for a slow client past which its stream is closed (default 1 MiB); it reconnects and recovers. */
  backpressureLimit?: number;
  /** How long a closed stream's unread bytes may keep its connection (ms, default 5000). */
  closeTimeout?: number;
  /** Proxies whose `X-Forwarded-For`/`Forwarded` are believed for the per-address limit (as `trustProxy` of the WebSocket endpoints). */
  trustProxy?: TrustProxy;
  /** The count of streams to share (HTTP sessions beside /sse use the same); by default one of its own from the limits above. */
  admission?: StreamAdmission;
}

/** The defaults of {@link SseOptions}: counts, and durations in ms. */
export const SSE_DEFAULTS = {
  /** Channels one stream may name. */
  maxChannels: 32,
  /** Streams at once, every client together. */
  maxStreams: 10_000,
  /** Streams at once from one client address. */
  maxStreamsPerAddress: 100,
  /** Between two comment lines that keep a stream alive (ms). */
  heartbeatInterval: 15_000,
  /** A stream whose client reads nothing of what waits for this long is dropped (ms). */
  idleTimeout: 120_000,
  /** The `retry:` hint before jitter (ms). */
  retry: 2_000,
};

/** What an SSE endpoint counts, for /metrics and tests. */
export interface SseCounters {
  /** Streams started (every requested channel subscribed). */
  accepted: number;
  /** Requests refused: an HTTP error, or for an EventSource a refusal that passes, told in a stream of one close event. */
  refused: number;
  /** Streams closed (event `close`, 1013) because their client read too slowly; it reconnects and recovers. */
  slowConsumerCloses: number;
  /** Streams dropped because their client read nothing for `idleTimeout`. */
  idleCloses: number;
}

/** Channels as Server-Sent Events beside a channel endpoint: what {@link sseEndpoint} returns. */
export interface SseEndpoint {
  /** The request handler: mount it at a path (`/sse`) of any Node HTTP server or framework. */
  handleRequest(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void;
  /** Open streams (started ones). */
  readonly streams: ReadonlySet<SseStream<unknown>>;
  /** What it counted since it started. */
  readonly counters: SseCounters;
  /** Adds the endpoint's families to a /metrics text. */
  metrics(text: PrometheusText): void;
  /** Ends every stream with an `event: close`, 1001 and this reason (default `server shutting down`), and stops the heartbeat. */
  close(reason?: string): void;
  /** The count of streams it admits by (share it with an HTTP session endpoint). */
  readonly admission: StreamAdmission;
}

/** A request's query may not be longer than the longest one the limits allow. */
const MAX_CHANNEL_NAME = 200;

/**
 * The SSE endpoint of a channel endpoint: same hub, same identity, same permissions.
 * `const sse = sseEndpoint(channels); app.get('/sse', sse.handleRequest)`.
 */
export function sseEndpoint<A>(channels: ChannelsEndpoint<A>, options: SseOptions = {}): SseEndpoint {
  const maxChannels = options.maxChannels ?? SSE_DEFAULTS.maxChannels;
  const maxStreams = options.maxStreams ?? SSE_DEFAULTS.maxStreams;
  const perAddress = options.maxStreamsPerAddress ?? SSE_DEFAULTS.maxStreamsPerAddress;
  const heartbeatInterval = options.heartbeatInterval ?? SSE_DEFAULTS.heartbeatInterval;
  const idleTimeout = options.idleTimeout ?? SSE_DEFAULTS.idleTimeout;
  const retry = options.retry ?? SSE_DEFAULTS.retry;
  const limits = {
    backpressureLimit: options.backpressureLimit ?? DEFAULT_BACKPRESSURE_LIMIT,
    closeTimeout: options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
  };
  const admission =
    options.admission ?? new StreamAdmission({ maxStreams, maxStreamsPerAddress: perAddress, trustProxy: options.trustProxy, ratePerAddress: options.streamRatePerAddress });
  // The longest query the limits allow: every channel named with the longest name, and a since.
  const maxUrl = 64 + maxChannels * (4 + 3 * MAX_CHANNEL_NAME) + 6 + 3 * maxPositionLength(maxChannels);
  const { hub } = channels;
  const streams = new Set<SseStream<A>>();
  let next = 0;
  const counters: SseCounters = { accepted: 0, refused: 0, slowConsumerCloses: 0, idleCloses: 0 };

  const refuse = (res: StreamResponse, rejection: UpgradeRejection, eventSource = false): void => {
    counters.refused++;
    if (eventSource && passes(rejection)) {
      // An EventSource stops for good on any status but 200, and this refusal passes with
      // time (a full server, an address over its share, the engine away): it is told in a
      // stream of one event instead, and tries again after the wait the status would give.
      const wait = 1000 * Number(rejection.headers?.['Retry-After'] ?? 0) || retry;
      res.writeHead(200, STREAM_HEADERS);
      const close = { code: CloseCode.TryAgainLater, reason: `${rejection.status} ${rejection.message ?? ''}`.trim() };
      res.end(`retry: ${Math.round(wait * (1 + Math.random() / 2))}\n\nevent: close\ndata: ${JSON.stringify(close)}\n\n`);
      return;
    }
    res.writeHead(rejection.status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache', ...rejection.headers });
    res.end(`${rejection.message ?? ''}\n`);
  };

  const heartbeat = setInterval(() => {
    const now = Date.now();
    for (const stream of streams) {
      if (idleTimeout > 0 && stream.stalledFor(now) >= idleTimeout) {
        counters.idleCloses++;
        stream.destroy();
      } else stream.heartbeat();
    }
  }, heartbeatInterval);
  heartbeat.unref();

  async function open(req: IncomingMessage | Http2ServerRequest, res: StreamResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const names = url.searchParams.getAll('ch');
    const invalid = checkChannels(names, maxChannels);
    if (invalid !== null) return refuse(res, { status: 400, message: invalid });
    const lastEventId = req.headers['last-event-id'];
    const resumeText = typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : url.searchParams.get('since');
    const resume = resumeText === null ? null : decodePosition(resumeText, names);
    if (resume !== null && !resume.ok) return refuse(res, { status: 400, message: resume.message });

    const id = `${hub.nodeId}.s${(next++).toString(36)}`;
    const identity: ChannelIdentity<A> | { reject: UpgradeRejection } = await channels.identify(req, id);
    if ('reject' in identity) return refuse(res, identity.reject, fromEventSource(req));
    if (res.writableEnded || res.destroyed) return;

    const stream = new SseStream<A>(id, identity, names, res, limits, () => counters.slowConsumerCloses++);
    stream.address = admission.addressOf(req);
    hub.connect(stream, identity.expiresAt);
    res.once('close', () => {
      stream.gone();
      hub.disconnect(stream);
      streams.delete(stream);
    });
    const answers = stream.subscribe(resume !== null, resume === null ? [] : resume.positions, (text) => hub.handleText(stream, text));
    const refusal = refusalOf(await answers);
    if (refusal !== null) {
      hub.disconnect(stream);
      stream.gone();
      if (!res.destroyed) refuse(res, refusal, fromEventSource(req));
      return;
    }
    if (res.destroyed || stream.closed) return;
    counters.accepted++;
    streams.add(stream);
    stream.start(Math.round(retry * (1 + Math.random() / 2)));
  }

  return {
    admission,
    streams: streams as ReadonlySet<SseStream<unknown>>,
    counters,
    handleRequest(req, res) {
      const response = res as StreamResponse;
      if (req.method !== 'GET') return refuse(response, { status: 405, message: 'GET /sse?ch=CHANNEL streams channel messages', headers: { Allow: 'GET' } });
      if ((req.url ?? '').length > maxUrl) return refuse(response, { status: 414, message: `the request is longer than ${maxChannels} channels need` });
      // Counted from here (streams still being authenticated and subscribed too) until the response closes.
      const refusal = admission.admit(req, response, 'streams');
      if (refusal !== null) return refuse(response, refusal, fromEventSource(req));
      open(req, response)
        .catch((error: unknown) => {
          console.error('hotline: an SSE stream failed to open:', error);
          if (!response.headersSent) refuse(response, { status: 500, message: 'internal error' });
          else response.destroy();
        });
    },
    metrics(text) {
      text
        .family('hotline_sse_streams', 'gauge', 'Open SSE streams.', [[{}, streams.size]])
        .family('hotline_sse_streams_accepted_total', 'counter', 'SSE streams started.', [[{}, counters.accepted]])
        .family('hotline_sse_refused_total', 'counter', 'SSE requests refused: answered with an HTTP error, or (an EventSource refused for a while) with a stream of one close event.', [[{}, counters.refused]])
        .family('hotline_sse_slow_consumer_closes_total', 'counter', 'SSE streams closed for not reading fast enough.', [[{}, counters.slowConsumerCloses]])
        .family('hotline_sse_idle_closes_total', 'counter', 'SSE streams dropped for reading nothing within the idle timeout.', [[{}, counters.idleCloses]]);
    },
    close(reason = SHUTTING_DOWN) {
      clearInterval(heartbeat);
      for (const stream of streams) stream.close(CloseCode.GoingAway, reason);
    },
  };
}

/** A refusal that passes with time: the server or the address is full, or the engine is away. */
function passes(rejection: UpgradeRejection): boolean {
  return rejection.status === 429 || rejection.status === 503;
}

/** Whether the request asks for an event stream, as every EventSource does (`curl` does not unless told). */
function fromEventSource(req: IncomingMessage | Http2ServerRequest): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && accept.toLowerCase().includes('text/event-stream');
}

/** Why the channel list cannot be streamed, or null. */
function checkChannels(names: readonly string[], max: number): string | null {
  if (names.length === 0) return 'name at least one channel: /sse?ch=CHANNEL';
  if (names.length > max) return `at most ${max} channels per stream (${names.length} named)`;
  const seen = new Set<string>();
  for (const name of names) {
    const problem = validateChannelName(name, MAX_CHANNEL_NAME);
    if (problem !== null) return `ch ${JSON.stringify(name.slice(0, 64))}: ${problem}`;
    if (seen.has(name)) return `ch ${name} is named twice`;
    seen.add(name);
  }
  return null;
}

/** The HTTP answer to a stream whose subscriptions were not all accepted, as the hub answered them. */
function refusalOf(answers: ReadonlyArray<{ code: ErrorCode; message: string } | null>): UpgradeRejection | null {
  for (const answer of answers) {
    if (answer === null) continue;
    const status = isErrorCode(answer.code) ? STATUS[answer.code] : 500;
    const unavailable = answer.code === 'internal' && answer.message.startsWith('unavailable');
    return { status: unavailable ? 503 : status, message: answer.message, headers: status === 429 || unavailable ? { 'Retry-After': '5' } : undefined };
  }
  return null;
}

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  rate_limited: 429,
  too_large: 400,
  internal: 500,
};
