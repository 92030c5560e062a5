/**
 * The HTTP side of the server API: `POST /api/METHOD` with a JSON body, answered
 * `{ "result": … }` or `{ "error": { "code", "message" } }` with the status of the code,
 * and `GET /api/openapi.json`. What each method does is in methods.ts.
 *
 * What a caller costs before it is trusted: the header parse and a constant-time key
 * comparison. A request without the key is answered 401 and its connection closed, its body
 * never read. A trusted body is read up to `maxBodyBytes` (a larger Content-Length is
 * refused before reading; a body that grows past it is cut off at the cap) within
 * `requestTimeout`; past either the connection is closed after the answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { sameSecret } from '../admin.js';
import { ApiCallLog } from './calls.js';
import { ApiError, apiErrorOf } from './errors.js';
import { API_METHODS, type ApiContext } from './methods.js';
import { openApiDocument } from './openapi.js';

/** The shortest API key accepted: guessing one over the network must be hopeless. */
export const MIN_API_KEY_LENGTH = 16;
/** How long a request's body may take to arrive by default (ms). */
export const DEFAULT_API_REQUEST_TIMEOUT = 10_000;
/** How long a connection closed with its body unread stays half-open, unread, for its answer to be read. */
const LINGER_MS = 2_000;

export interface ApiHandlerOptions {
  /** Required as `Authorization: apikey KEY`; without one every /api/ path answers 404. */
  key: string | undefined;
  maxBodyBytes: number;
  requestTimeout: number;
  /** Whether the inspector's list of calls shows the start of each body. */
  previews: boolean;
  context: ApiContext;
}

export interface ApiHandler {
  /** Answers a request under /api/; false for other paths (left to the app's routes). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  readonly calls: ApiCallLog;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Closes a connection whose request body was not read, once its answer is written: its
 * side is shut (FIN after the answer) and nothing more is read, and it is destroyed after
 * LINGER_MS or when the client closes. Closing at once, with the client's unread bytes in
 * the kernel, would send a reset that can wipe the answer out of the client's buffer
 * before it reads it; reading on would cost what the caller chose to send.
 */
function lingerThenClose(req: IncomingMessage): void {
  const socket: Socket = req.socket;
  // Pausing the stream does not stop a socket whose reads node:http's parser took over (as
  // it does after serve() hands it one), so the handle is told too.
  const stopReading = (): void => {
    req.pause();
    socket.pause();
    (socket as unknown as { _handle?: { readStop?(): unknown } | null })._handle?.readStop?.();
  };
  // From now: not while the answer is written either.
  stopReading();
  socket.destroySoon = function lingering(this: Socket): void {
    this.end();
    // Node resumed the request to drain its body: undone.
    stopReading();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/** `path.to.field: message`, naming the field as the caller wrote it. */
function describe(error: ErrorObject): string {
  const at = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
  const field = (name: string): string => (at === '' ? name : `${at}.${name}`);
  if (error.keyword === 'required') return `${field(String(error.params.missingProperty))}: is required`;
  if (error.keyword === 'additionalProperties') return `${field(String(error.params.additionalProperty))}: is not a field of this method`;
  return `${at === '' ? 'body' : at}: ${error.message ?? 'is not valid'}`;
}

export function apiHandler(options: ApiHandlerOptions): ApiHandler {
  const { key, maxBodyBytes, requestTimeout, context } = options;
  const calls = new ApiCallLog(options.previews);
  const expected = key === undefined ? undefined : `apikey ${key}`;
  const ajv = new Ajv2020({ allErrors: false, strict: true });
  const validators = new Map<string, ValidateFunction>();
  if (key !== undefined) for (const [name, method] of Object.entries(API_METHODS)) validators.set(name, ajv.compile(method.request));
  const openapi = key === undefined ? '' : JSON.stringify(openApiDocument(), null, 2);

  const answer = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': JSON_TYPE, 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  };

  const authorized = (req: IncomingMessage): boolean => {
    const given = req.headers.authorization;
    return expected !== undefined && typeof given === 'string' && sameSecret(given.replace(/^apikey\b/i, 'apikey'), expected);
  };

  /** The body, up to the cap and within the timeout; rejects with the ApiError to answer. */
  const readBody = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = (error: ApiError | null): void => {
        clearTimeout(timer);
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        if (error === null) resolve(Buffer.concat(chunks, size));
        else {
          // Nothing more is read: the answer closes the connection.
          req.pause();
          reject(error);
        }
      };
      const onData = (chunk: Buffer): void => {
        size += chunk.length;
        if (size > maxBodyBytes) done(new ApiError('too_large', `the body is larger than ${maxBodyBytes} bytes`));
        else chunks.push(chunk);
      };
      const onEnd = (): void => done(null);
      const onError = (): void => done(new ApiError('bad_request', 'the body ended early'));
      const timer = setTimeout(() => done(new ApiError('request_timeout', `the body did not arrive within ${requestTimeout} ms`)), requestTimeout);
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
    });

  const handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path !== '/api' && !path.startsWith('/api/')) return false;
    const started = performance.now();
    const name = path.slice('/api/'.length);
    const method = Object.hasOwn(API_METHODS, name) ? API_METHODS[name]! : undefined;
    const label = method !== undefined ? name : name === 'openapi.json' ? 'openapi' : 'unknown';
    let body: Buffer | undefined;
    const fail = (error: ApiError): void => {
      const headers: Record<string, string> = {};
      // A body not read (refused early, or cut off) is not left for keep-alive to drain.
      if (!req.complete) {
        headers.connection = 'close';
        lingerThenClose(req);
      }
      if (error.status === 401) headers['www-authenticate'] = 'apikey';
      if (error.status === 405) headers.allow = label === 'openapi' ? 'GET, HEAD' : 'POST';
      answer(res, error.status, { error: { code: error.code, message: error.message } }, headers);
      calls.record({ time: Date.now(), method: label, status: error.status, code: error.code, duration: performance.now() - started }, body);
    };
    if (expected === undefined) {
      fail(new ApiError('not_found', 'the HTTP API is off: set api.key to turn it on'));
      return true;
    }
    if (label === 'openapi') {
      if (req.method !== 'GET' && req.method !== 'HEAD') fail(new ApiError('method_not_allowed', 'GET the OpenAPI document'));
      else {
        res.writeHead(200, { 'content-type': JSON_TYPE, 'cache-control': 'no-cache' });
        res.end(req.method === 'HEAD' ? undefined : openapi);
      }
      return true;
    }
    if (!authorized(req)) {
      fail(new ApiError('unauthorized', 'the API key is required: Authorization: apikey KEY'));
      return true;
    }
    if (method === undefined) {
      fail(new ApiError('not_found', `there is no API method ${JSON.stringify(name.slice(0, 64))}; the methods are ${Object.keys(API_METHODS).join(', ')}`));
      return true;
    }
    if (req.method !== 'POST') {
      fail(new ApiError('method_not_allowed', `POST to /api/${name}`));
      return true;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    const hasBody = declared > 0 || req.headers['transfer-encoding'] !== undefined;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (hasBody && type !== 'application/json') {
      fail(new ApiError('unsupported_media_type', 'the body must be JSON: Content-Type: application/json'));
      return true;
    }
    if (declared > maxBodyBytes) {
      fail(new ApiError('too_large', `the body is larger than ${maxBodyBytes} bytes`));
      return true;
    }
    readBody(req)
      .then((read) => {
        body = read;
        let parsed: unknown;
        if (read.length === 0) parsed = {};
        else {
          try {
            parsed = JSON.parse(read.toString('utf8'));
          } catch (error) {
            throw new ApiError('bad_request', `the body is not JSON: ${(error as Error).message}`);
          }
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ApiError('bad_request', 'body: must be a JSON object');
        const validate = validators.get(name)!;
        if (!validate(parsed)) throw new ApiError('bad_request', describe(validate.errors![0]!));
        return method.run(context, parsed as Record<string, unknown>);
      })
      .then(
        (result) => {
          answer(res, 200, { result });
          calls.record({ time: Date.now(), method: label, status: 200, duration: performance.now() - started }, body);
        },
        (error: unknown) => {
          const failed = apiErrorOf(error);
          if (failed.code === 'internal' && !(error instanceof ApiError)) console.error(`hotline: the API method ${name} failed:`, error);
          fail(failed);
        },
      );
    return true;
  };

  return { handle, calls };
}
