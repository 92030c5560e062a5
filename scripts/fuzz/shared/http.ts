// What the two HTTP head targets share: the status each HandshakeError must carry, the
// head parser run whole and split, line-level mutation of heads, and the checks of a
// refusal and of the client's reading of a permessage-deflate answer.
import { Buffer } from 'node:buffer';
import {
  acceptDeflateResponse,
  HandshakeError,
  type DeflateClientOptions,
  type DeflateParams,
  type HandshakeErrorCode,
} from '../../../src/protocol/index.js';
import type { ExtensionOffer } from '../../../src/protocol/extensions-header.js';
import { buildRejectResponse } from '../../../src/protocol/reject-response.js';
import { HttpHeadParser, type HttpRequestHead, type HttpResponseHead } from '../../../src/protocol/http-head.js';
import { chunksOf, latin1, type FuzzInput, type Problem } from '../driver/input.js';
import { outcome } from '../driver/outcomes.js';
import type { Rng } from '../driver/rng.js';

/**
 * The status (and headers) each HandshakeError of the server side must answer with.
 * On the client side (validateServerResponse, acceptDeflateResponse) every error carries
 * the status of the server's response instead: `response` marks the codes only it raises.
 */
export const HANDSHAKE_STATUS: Readonly<Record<HandshakeErrorCode, { status: number | 'response'; headers?: Record<string, string> }>> = {
  HEAD_TOO_LARGE: { status: 431 },
  MALFORMED_HTTP: { status: 400 },
  METHOD_NOT_ALLOWED: { status: 405, headers: { Allow: 'GET' } },
  HTTP_VERSION: { status: 400 },
  HTTP_VERSION_NOT_SUPPORTED: { status: 505 },
  MISSING_HOST: { status: 400 },
  NOT_UPGRADE: { status: 426, headers: { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' } },
  CONNECTION_NOT_UPGRADE: { status: 400 },
  BAD_KEY: { status: 400 },
  UNSUPPORTED_VERSION: { status: 426, headers: { 'Sec-WebSocket-Version': '13' } },
  BAD_PROTOCOL_HEADER: { status: 400 },
  BAD_EXTENSION_HEADER: { status: 400 },
  ORIGIN_FORBIDDEN: { status: 403 },
  UNEXPECTED_STATUS: { status: 'response' },
  BAD_ACCEPT: { status: 'response' },
  UNEXPECTED_PROTOCOL: { status: 'response' },
  UNEXPECTED_EXTENSION: { status: 'response' },
  BAD_EXTENSION_RESPONSE: { status: 'response' },
};

export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

export const HTTP_DICT: readonly Buffer[] = [
  '\r\n', '\n', '\r', '\r\n\r\n', ' ', '\t', ':', ',', ';', '=', '"', '\\', '\0', '\x7f', '\xff', '\xa0', '/',
  'websocket', 'WebSocket', 'Upgrade', 'upgrade', 'keep-alive, Upgrade', 'Connection', 'Sec-WebSocket-Key', '13', '8',
  'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Extensions: ', 'Sec-WebSocket-Protocol: ', 'permessage-deflate',
  'server_max_window_bits', 'client_max_window_bits', 'server_no_context_takeover', 'client_no_context_takeover',
  '=15', '=8', '=7', '=16', '="10"', '=010', 'Host: a', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'GET ', 'POST ', SAMPLE_KEY,
  SAMPLE_ACCEPT, 'hotline.v1', 'Origin: http://example.com', '101', '400', ' Switching Protocols', 'x'.repeat(300),
].map(latin1);

export function mutateHttpLines(rng: Rng, text: string, pool: readonly string[]): string {
  const lines = text.split('\r\n');
  const fieldEnd = Math.max(1, lines.indexOf(''));
  const field = (): number => 1 + rng.int(Math.max(1, fieldEnd - 1));
  const values = ['', ' ', 'websocket', 'Upgrade', '13', SAMPLE_KEY, 'permessage-deflate; client_max_window_bits', 'a, b, , c', '"quoted"', 'x'.repeat(rng.size(2000)), '\x00', 'ü'];
  switch (rng.int(9)) {
    case 0:
      lines.splice(field(), 0, lines[field()] ?? '');
      break;
    case 1:
      if (fieldEnd > 1) lines.splice(field(), 1);
      break;
    case 2: {
      const i = field();
      const j = field();
      const t = lines[i] ?? '';
      lines[i] = lines[j] ?? '';
      lines[j] = t;
      break;
    }
    case 3: {
      const i = field();
      const line = lines[i] ?? '';
      const colon = line.indexOf(':');
      lines[i] = `${colon === -1 ? line : line.slice(0, colon)}: ${rng.pick(values)}`;
      break;
    }
    case 4: {
      const i = field();
      const line = lines[i] ?? '';
      lines[i] = rng.pick([line.toLowerCase(), line.toUpperCase(), line.replace(':', ' :'), line.replace(':', ''), ` ${line}`, `${line} `]);
      break;
    }
    case 5: {
      const other = rng.pick(pool).split('\r\n');
      lines.splice(field(), 0, other[1 + rng.int(Math.max(1, other.length - 3))] ?? '');
      break;
    }
    case 6:
      lines[0] = `${rng.pick(['GET', 'POST', 'get', 'G ET', ''])} ${rng.pick(['/', '/echo', '/ws?x=1', 'ws://h/echo', '*', '/\x7f', ''])} ${rng.pick(['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.2', 'HTTP/1.1 x', 'http/1.1'])}`;
      break;
    case 7:
      lines.splice(field(), 0, `X-Filler: ${'y'.repeat(rng.size(20_000))}`);
      break;
    case 8:
      lines.splice(field(), 0, `${rng.pick(['Host', 'Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Origin'])}: ${rng.pick(values)}`);
      break;
  }
  return lines.join('\r\n');
}

export interface HeadOutcome<H> {
  head: H | null;
  error: HandshakeError | null;
  rest: Buffer | null;
  problem: Problem | null;
}

export function parseHead<K extends 'request' | 'response'>(kind: K, input: FuzzInput, maxHead: number, split: boolean): HeadOutcome<K extends 'request' ? HttpRequestHead : HttpResponseHead> {
  type H = K extends 'request' ? HttpRequestHead : HttpResponseHead;
  const parser = new HttpHeadParser(kind, maxHead);
  let head: H | null = null;
  let error: HandshakeError | null = null;
  let problem: Problem | null = null;
  for (const chunk of chunksOf(input.data, split ? input.splits : [])) {
    try {
      const got = parser.push(chunk) as H | null;
      if (got !== null) {
        if (head !== null) problem ??= { key: 'head-twice', message: 'the parser returned a head twice' };
        head = got;
      }
    } catch (e) {
      if (!(e instanceof HandshakeError)) throw e;
      if (error !== null && e !== error) problem ??= { key: 'error-changed', message: 'a failed parser threw a different error on a later push' };
      error ??= e;
    }
  }
  if (error !== null) {
    const expected = error.code === 'HEAD_TOO_LARGE' ? 431 : error.code === 'MALFORMED_HTTP' ? 400 : null;
    if (expected === null || error.status !== expected) problem ??= { key: `head-error:${error.code}`, message: `the head parser threw ${error.code} with status ${error.status}` };
  }
  let rest: Buffer | null = null;
  if (head !== null) {
    rest = Buffer.from(parser.rest);
    const headLength = input.data.length - rest.length;
    if (headLength > maxHead) problem ??= { key: 'head-too-large', message: `a head of ${headLength} bytes passed the ${maxHead}-byte limit` };
    if (!input.data.subarray(headLength).equals(rest) || !input.data.subarray(0, headLength).toString('latin1').endsWith('\r\n\r\n')) {
      problem ??= { key: 'head-rest', message: 'the bytes after the head are not what followed CRLF CRLF' };
    }
    if ((head as HttpRequestHead | HttpResponseHead).headers.size > (head as HttpRequestHead | HttpResponseHead).rawHeaders.length) {
      problem ??= { key: 'head-fields', message: 'more header names than header lines' };
    }
  }
  return { head, error, rest, problem };
}

/**
 * The head read whole and, when the input has splits, read again in those pieces: the
 * outcome must be the same (else its `problem` says how they differ). Counts what came of it.
 */
export function parseHeadWholeAndSplit<K extends 'request' | 'response'>(kind: K, input: FuzzInput, maxHead: number): HeadOutcome<K extends 'request' ? HttpRequestHead : HttpResponseHead> {
  const whole = parseHead(kind, input, maxHead, false);
  if (whole.problem !== null) return whole;
  if (input.splits.length > 0) {
    const split = parseHead(kind, input, maxHead, true);
    const problem = split.problem ?? sameHeadOutcome(whole, split);
    if (problem !== null) return { ...whole, problem };
  }
  outcome(whole.error !== null ? `head ${whole.error.code}` : whole.head === null ? 'incomplete head' : 'head parsed');
  return whole;
}

export function sameHeadOutcome(a: HeadOutcome<unknown>, b: HeadOutcome<unknown>): Problem | null {
  const summary = (o: HeadOutcome<unknown>): string =>
    JSON.stringify({
      error: o.error === null ? null : [o.error.code, o.error.status, o.error.message],
      head: o.head === null ? null : { ...(o.head as object), headers: [...(o.head as HttpRequestHead).headers] },
      rest: o.rest?.toString('hex') ?? null,
    });
  const x = summary(a);
  const y = summary(b);
  return x === y ? null : { key: 'split-dependent', message: `the head parsed whole and split differ:\n  whole ${x.slice(0, 400)}\n  split ${y.slice(0, 400)}` };
}

/** A HandshakeError must carry the status (and headers) of its code. */
export function checkHandshakeError(error: unknown, allowed: ReadonlySet<HandshakeErrorCode>, responseStatus: number | null, where: string): Problem | null {
  if (!(error instanceof HandshakeError)) throw error;
  if (!allowed.has(error.code)) return { key: `handshake-code:${where}:${error.code}`, message: `${where} threw ${error.code}, which it never should` };
  const rule = HANDSHAKE_STATUS[error.code];
  // On the client side every error carries the status of the server's response.
  const status = responseStatus ?? rule.status;
  if (error.status !== status) return { key: `handshake-status:${error.code}`, message: `${where}: ${error.code} answered ${error.status}, expected ${String(status)}` };
  if (responseStatus !== null) return null;
  for (const [name, value] of Object.entries(rule.headers ?? {})) {
    if (error.headers[name] !== value) return { key: `handshake-headers:${error.code}`, message: `${where}: ${error.code} lacks ${name}: ${value}` };
  }
  return null;
}

export const SERVER_CODES: ReadonlySet<HandshakeErrorCode> = new Set([
  'METHOD_NOT_ALLOWED', 'HTTP_VERSION', 'HTTP_VERSION_NOT_SUPPORTED', 'MISSING_HOST', 'NOT_UPGRADE', 'CONNECTION_NOT_UPGRADE', 'BAD_KEY',
  'UNSUPPORTED_VERSION', 'BAD_PROTOCOL_HEADER', 'BAD_EXTENSION_HEADER', 'ORIGIN_FORBIDDEN',
]);
export const CLIENT_CODES: ReadonlySet<HandshakeErrorCode> = new Set([
  'UNEXPECTED_STATUS', 'NOT_UPGRADE', 'CONNECTION_NOT_UPGRADE', 'BAD_ACCEPT', 'UNEXPECTED_PROTOCOL',
  'UNEXPECTED_EXTENSION', 'BAD_EXTENSION_HEADER', 'BAD_EXTENSION_RESPONSE',
]);

/** The refusal a server writes must be a well-formed response with the error's status. */
export function checkRefusal(status: number, message: string, headers: Readonly<Record<string, string>>): Problem | null {
  let text: string;
  try {
    text = buildRejectResponse(status, message, headers);
  } catch (e) {
    return { key: 'refusal-throws', message: `buildRejectResponse(${status}) threw ${String(e)} for message ${JSON.stringify(message.slice(0, 200))}` };
  }
  const bytes = Buffer.from(text, 'utf8');
  const parser = new HttpHeadParser('response');
  let head: HttpResponseHead | null;
  try {
    head = parser.push(bytes);
  } catch (e) {
    return { key: 'refusal-malformed', message: `the refusal does not parse: ${String(e)}` };
  }
  if (head === null || head.status !== status) return { key: 'refusal-status', message: `the refusal does not carry status ${status}` };
  if (!/\bclose\b/i.test(head.headers.get('connection') ?? '')) return { key: 'refusal-connection', message: 'the refusal lacks Connection: close' };
  if (Number(head.headers.get('content-length')) !== parser.rest.length) return { key: 'refusal-length', message: 'the refusal Content-Length is not its body length' };
  return null;
}

/** acceptDeflateResponse may only refuse with BAD_EXTENSION_RESPONSE, and what it accepts keeps our requests. */
export function checkClientDeflate(responses: ExtensionOffer[], offered: DeflateClientOptions | undefined, status: number): Problem | null {
  let params: DeflateParams | null;
  try {
    params = acceptDeflateResponse(responses, offered, status);
    outcome(params === null ? 'client: no permessage-deflate' : 'client accepts permessage-deflate');
  } catch (e) {
    outcome('client fails the response');
    return checkHandshakeError(e, new Set<HandshakeErrorCode>(['BAD_EXTENSION_RESPONSE']), status, 'acceptDeflateResponse');
  }
  if (params === null) return null;
  const o = offered ?? {};
  const inRange = (n: number): boolean => Number.isInteger(n) && n >= 8 && n <= 15;
  if (!inRange(params.serverMaxWindowBits) || !inRange(params.clientMaxWindowBits)) return { key: 'window-range', message: `window bits out of range: ${JSON.stringify(params)}` };
  if (o.serverMaxWindowBits !== undefined && params.serverMaxWindowBits > o.serverMaxWindowBits) return { key: 'server-window', message: 'accepted a server window above the one requested' };
  if (typeof o.clientMaxWindowBits === 'number' && params.clientMaxWindowBits > o.clientMaxWindowBits) return { key: 'client-window', message: 'uses a client window above the one promised' };
  if (o.serverNoContextTakeover === true && !params.serverNoContextTakeover) return { key: 'server-takeover', message: 'accepted without the requested server_no_context_takeover' };
  if (o.clientNoContextTakeover === true && !params.clientNoContextTakeover) return { key: 'client-takeover', message: 'dropped the announced client_no_context_takeover' };
  return null;
}
