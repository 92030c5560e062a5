// The opening handshake of RFC 6455 §4, both sides: the client's request and the checks of
// the server's answer, the server's checks of a request and its 101. The HTTP head is read
// by http-head.ts, the extension header's grammar is extensions-header.ts's, and the answer
// to a refused upgrade is reject-response.ts's.
import * as crypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { HandshakeError } from './errors.js';
import { type ExtensionOffer, formatExtensions, parseExtensions, parseTokenList } from './extensions-header.js';
import { asciiLower, equalsAsciiLower, extraFieldLines, fieldLine, hasToken } from './header-fields.js';
import { type HttpRequestHead, type HttpResponseHead, isToken, isVisibleAscii, trimOws } from './http-head.js';

/** The fixed GUID of RFC 6455 §1.3 that the server appends to the key. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)). */
export function computeAccept(key: string): string {
  // One-shot hashing (Node 20.12 and later) makes no Hash object: it is a server's cost per handshake.
  if (oneShotHash !== undefined) return oneShotHash('sha1', key + WEBSOCKET_GUID, 'base64');
  return createHash('sha1').update(key + WEBSOCKET_GUID, 'latin1').digest('base64');
}

/** `crypto.hash` where this Node has it (read from the namespace: older versions lack the export). */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64') => string }).hash;

/** A fresh `Sec-WebSocket-Key`: base64 of 16 random bytes. */
export function generateKey(): string {
  return randomBytes(16).toString('base64');
}

// 16 bytes are 22 base64 digits and "=="; the last digit holds 2 bits, so its low 4 bits
// must be zero (A, Q, g or w) for the encoding to be canonical.
const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
// 20 bytes (SHA-1): 27 digits and "=".
const ACCEPT = /^[A-Za-z0-9+/]{27}=$/;

// Content-Length and Transfer-Encoding would make the peer expect a body where frames follow.
const CLIENT_RESERVED: ReadonlySet<string> = new Set([
  'host',
  'upgrade',
  'connection',
  'origin',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'content-length',
  'transfer-encoding',
]);

const SERVER_RESERVED: ReadonlySet<string> = new Set([
  'upgrade',
  'connection',
  'sec-websocket-accept',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'content-length',
  'transfer-encoding',
]);

/** What {@link buildClientRequest} puts in the client's opening handshake. */
export interface ClientRequestOptions {
  /** `host[:port]`, exactly as it goes in the Host header. */
  host: string;
  /** Path and query; defaults to `'/'`. */
  path?: string;
  /** Subprotocols to offer in `Sec-WebSocket-Protocol`, in preference order; each a token, none repeated. */
  protocols?: readonly string[];
  /** Extensions to offer in `Sec-WebSocket-Extensions` (for example `deflateClientOffer()`); none by default. */
  extensions?: readonly ExtensionOffer[];
  /** The `Origin` header, sent as given; omitted when undefined (as a non-browser client may). */
  origin?: string;
  /** Additional header fields; the ones the handshake sets itself are refused. */
  headers?: Readonly<Record<string, string>>;
  /** A fixed key (tests); otherwise a random one. */
  key?: string;
}

/**
 * Builds the client's opening handshake (RFC 6455 §4.1).
 * @throws TypeError for a subprotocol that is not a token or is repeated (the browser
 * API's SyntaxError), an invalid path, host, key, origin or header.
 */
export function buildClientRequest(o: ClientRequestOptions): {
  /** The `Sec-WebSocket-Key` sent: keep it for {@link validateServerResponse}. */
  key: string;
  /** The whole request head, ending in the blank line, ready to write to the socket. */
  request: string;
} {
  const path = o.path === undefined || o.path === '' ? '/' : o.path;
  if (!path.startsWith('/') || !isVisibleAscii(path)) {
    throw new TypeError(`path ${JSON.stringify(path)} must start with "/" and be visible ASCII (percent-encode the rest)`);
  }
  if (o.host === '' || !isVisibleAscii(o.host)) throw new TypeError(`host ${JSON.stringify(o.host)} is empty or not visible ASCII`);
  const key = o.key ?? generateKey();
  if (!KEY.test(key)) throw new TypeError('key must be the base64 encoding of 16 bytes');
  const protocols = o.protocols ?? [];
  const seen = new Set<string>();
  for (const p of protocols) {
    if (!isToken(p)) throw new TypeError(`subprotocol ${JSON.stringify(p)} is not a token`);
    if (seen.has(p)) throw new TypeError(`subprotocol ${JSON.stringify(p)} is listed twice`);
    seen.add(p);
  }

  let request =
    `GET ${path} HTTP/1.1\r\n` +
    `Host: ${o.host}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${key}\r\n`;
  // Same field order as the sample in RFC 6455 §1.2.
  if (o.origin !== undefined) request += fieldLine('Origin', o.origin);
  if (protocols.length > 0) request += `Sec-WebSocket-Protocol: ${protocols.join(', ')}\r\n`;
  request += 'Sec-WebSocket-Version: 13\r\n';
  if (o.extensions !== undefined && o.extensions.length > 0) {
    request += `Sec-WebSocket-Extensions: ${formatExtensions(o.extensions)}\r\n`;
  }
  request += extraFieldLines(o.headers, CLIENT_RESERVED);
  return { key, request: request + '\r\n' };
}

/** Picks a subprotocol from the client's offer; an answer the client did not offer is ignored. */
export type ProtocolChooser = (offered: readonly string[]) => string | undefined | null;

/** What a server accepts in {@link validateClientRequest}; without options any origin and no subprotocol. */
export interface ServerHandshakeOptions {
  /** Supported subprotocols in preference order, or a chooser (only called when the client offers some). */
  protocols?: readonly string[] | ProtocolChooser;
  /**
   * Allowed origins (serialized, compared ASCII case-insensitively; a request without
   * Origin is refused), or a predicate that also sees absent origins as undefined, and the
   * request's Host (for a same-origin check: see `sameOrigin` in ./origin.ts).
   */
  origins?: readonly string[] | ((origin: string | undefined, host: string) => boolean);
}

/** A valid opening handshake, as {@link validateClientRequest} read it: what the 101 answer needs. */
export interface AcceptedRequest {
  /** The client's `Sec-WebSocket-Key`. */
  key: string;
  /** The `Sec-WebSocket-Accept` value computed from `key`, for {@link buildServerResponse}. */
  accept: string;
  /** The selected subprotocol, if any. */
  protocol: string | undefined;
  /** Every subprotocol the client offered, in its order; empty when it sent none. */
  offeredProtocols: string[];
  /** The client's offers; negotiation is the extension layer's job. */
  extensions: ExtensionOffer[];
  /** The `Origin` header, undefined when absent (non-browser clients usually send none). */
  origin: string | undefined;
  /** The `Host` header as sent, `host[:port]`. */
  host: string;
}

const UPGRADE_REQUIRED = {
  Upgrade: 'websocket',
  Connection: 'Upgrade',
  'Sec-WebSocket-Version': '13',
} as const;

// Upgrade elements are protocol-name ["/" protocol-version] (RFC 7230 §6.7), so they are
// not plain tokens. Returns the names, or null if the list is malformed.
/** How many field lines are named `lowerCaseName` (in any case). */
function countFields(rawHeaders: ReadonlyArray<readonly [string, string]>, lowerCaseName: string): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i++) {
    const name = rawHeaders[i]![0];
    if (equalsAsciiLower(name, lowerCaseName)) count++;
  }
  return count;
}

function upgradeNames(value: string): string[] | null {
  const out: string[] = [];
  for (const element of value.split(',')) {
    const item = trimOws(element);
    if (item.length === 0) continue;
    const slash = item.indexOf('/');
    const name = slash === -1 ? item : item.slice(0, slash);
    if (!isToken(name) || (slash !== -1 && !isToken(item.slice(slash + 1)))) return null;
    out.push(name);
  }
  return out;
}


/**
 * Checks a client's opening handshake (RFC 6455 §4.2.1) and selects a subprotocol.
 * @throws HandshakeError whose `status` and `headers` say how to answer.
 */
export function validateClientRequest(head: HttpRequestHead, options: ServerHandshakeOptions = {}): AcceptedRequest {
  const h = head.headers;
  if (head.method !== 'GET') {
    throw new HandshakeError('METHOD_NOT_ALLOWED', 405, `method ${head.method} is not allowed; use GET`, {
      Allow: 'GET',
    });
  }
  // RFC 6455 §4.1 asks for HTTP/1.1 or higher, and the upgrade is an HTTP/1.x exchange:
  // HTTP/1.1, or a later HTTP/1.x read as 1.1 (RFC 9112 §2.3). HTTP/1.0 has no Upgrade
  // (400); another major version is not what this server speaks at all (505, RFC 9110
  // §15.6.6): "HTTP/2.0" or "HTTP/9.9" on a request line is not HTTP/2 or anything else.
  const dot = head.version.indexOf('.');
  const major = Number(dot === -1 ? head.version : head.version.slice(0, dot));
  const minor = dot === -1 ? NaN : Number(head.version.slice(dot + 1));
  if (major !== 1) {
    throw new HandshakeError('HTTP_VERSION_NOT_SUPPORTED', 505, `HTTP/${head.version} is not supported; upgrade over HTTP/1.1`);
  }
  if (minor < 1) {
    throw new HandshakeError('HTTP_VERSION', 400, `HTTP/${head.version} cannot upgrade; HTTP/1.1 is required`);
  }

  const host = h.get('host');
  if (host === undefined || host === '') throw new HandshakeError('MISSING_HOST', 400, 'missing Host header');
  // RFC 7230 §5.4: more than one Host field must be answered with 400.
  if (countFields(head.rawHeaders, 'host') > 1) {
    throw new HandshakeError('MISSING_HOST', 400, 'more than one Host header');
  }

  const upgrade = h.get('upgrade');
  if (upgrade === undefined || !hasToken(upgradeNames(upgrade), 'websocket')) {
    throw new HandshakeError('NOT_UPGRADE', 426, 'expected Upgrade: websocket', UPGRADE_REQUIRED);
  }
  const connection = h.get('connection');
  if (connection === undefined || !hasToken(parseTokenList(connection), 'upgrade')) {
    throw new HandshakeError('CONNECTION_NOT_UPGRADE', 400, 'expected Connection: Upgrade');
  }

  const key = h.get('sec-websocket-key');
  if (key === undefined) throw new HandshakeError('BAD_KEY', 400, 'missing Sec-WebSocket-Key header');
  if (!KEY.test(key)) {
    throw new HandshakeError('BAD_KEY', 400, 'Sec-WebSocket-Key is not the base64 encoding of 16 bytes');
  }

  if (h.get('sec-websocket-version') !== '13') {
    throw new HandshakeError('UNSUPPORTED_VERSION', 426, 'unsupported or missing Sec-WebSocket-Version; 13 is required', {
      'Sec-WebSocket-Version': '13',
    });
  }

  let offeredProtocols: string[] = [];
  const protocolHeader = h.get('sec-websocket-protocol');
  if (protocolHeader !== undefined) {
    const list = parseTokenList(protocolHeader);
    if (list === null || list.length === 0) {
      throw new HandshakeError('BAD_PROTOCOL_HEADER', 400, 'Sec-WebSocket-Protocol is not a list of tokens');
    }
    if (new Set(list).size !== list.length) {
      throw new HandshakeError('BAD_PROTOCOL_HEADER', 400, 'Sec-WebSocket-Protocol lists a subprotocol twice');
    }
    offeredProtocols = list;
  }

  const extensionHeader = h.get('sec-websocket-extensions');
  const extensions = extensionHeader === undefined ? [] : parseExtensions(extensionHeader);

  const origin = h.get('origin');
  const allowed = options.origins;
  if (allowed !== undefined) {
    const ok =
      typeof allowed === 'function'
        ? allowed(origin, host)
        : origin !== undefined && allowed.some((o) => asciiLower(o) === asciiLower(origin));
    if (!ok) {
      throw new HandshakeError('ORIGIN_FORBIDDEN', 403, `origin ${origin === undefined ? '(none)' : origin} is not allowed`);
    }
  }

  return {
    key,
    accept: computeAccept(key),
    protocol: selectProtocol(offeredProtocols, options.protocols),
    offeredProtocols,
    extensions,
    origin,
    host,
  };
}

function selectProtocol(
  offered: readonly string[],
  supported: readonly string[] | ProtocolChooser | undefined,
): string | undefined {
  if (offered.length === 0 || supported === undefined) return undefined;
  if (typeof supported === 'function') {
    const choice = supported(offered);
    return typeof choice === 'string' && offered.includes(choice) ? choice : undefined;
  }
  return supported.find((p) => offered.includes(p));
}

/**
 * The server's `101 Switching Protocols` head (RFC 6455 §4.2.2).
 * @throws TypeError for an invalid accept value, subprotocol, extension or header.
 */
export function buildServerResponse(o: {
  /** `Sec-WebSocket-Accept`: {@link AcceptedRequest.accept}. */
  accept: string;
  /** The selected subprotocol; none when undefined or empty. */
  protocol?: string;
  /** The extension responses accepted (for example `negotiateDeflateServer()`'s `response`). */
  extensions?: readonly ExtensionOffer[];
  /** Additional header fields; the ones the handshake sets itself are refused. */
  headers?: Readonly<Record<string, string>>;
}): string {
  if (!ACCEPT.test(o.accept)) throw new TypeError('accept must be the base64 encoding of a SHA-1 digest');
  let response =
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${o.accept}\r\n`;
  if (o.protocol !== undefined && o.protocol !== '') {
    if (!isToken(o.protocol)) throw new TypeError(`subprotocol ${JSON.stringify(o.protocol)} is not a token`);
    response += `Sec-WebSocket-Protocol: ${o.protocol}\r\n`;
  }
  if (o.extensions !== undefined && o.extensions.length > 0) {
    response += `Sec-WebSocket-Extensions: ${formatExtensions(o.extensions)}\r\n`;
  }
  return response + extraFieldLines(o.headers, SERVER_RESERVED) + '\r\n';
}

/**
 * Checks the server's answer to our opening handshake (RFC 6455 §4.1, client side).
 * `protocol` is `''` when the server chose none; whether that is acceptable is the
 * caller's decision. `extensions` are what the server accepted, for the extension layer.
 * @throws HandshakeError whose `status` is the response's status.
 */
export function validateServerResponse(
  head: HttpResponseHead,
  expected: {
    /** The key the request was sent with ({@link buildClientRequest}'s `key`). */
    key: string;
    /** The subprotocols offered; the server may select only one of them. */
    protocols?: readonly string[];
    /** The extensions offered; the server may accept only those. */
    extensions?: readonly ExtensionOffer[];
  },
): {
  /** The subprotocol the server selected, `''` for none. */
  protocol: string;
  /** The extensions the server accepted, with its parameters. */
  extensions: ExtensionOffer[];
} {
  const status = head.status;
  const h = head.headers;
  if (status !== 101) {
    throw new HandshakeError('UNEXPECTED_STATUS', status, `expected status 101, got ${status} ${head.statusText}`.trimEnd());
  }
  // §4.1 requires the whole value to be "websocket", not a list containing it.
  const upgrade = h.get('upgrade');
  if (upgrade === undefined || asciiLower(upgrade) !== 'websocket') {
    throw new HandshakeError('NOT_UPGRADE', status, 'response lacks Upgrade: websocket');
  }
  const connection = h.get('connection');
  if (connection === undefined || !hasToken(parseTokenList(connection), 'upgrade')) {
    throw new HandshakeError('CONNECTION_NOT_UPGRADE', status, 'response lacks Connection: Upgrade');
  }
  const accept = h.get('sec-websocket-accept');
  if (accept === undefined) throw new HandshakeError('BAD_ACCEPT', status, 'response lacks Sec-WebSocket-Accept');
  if (accept !== computeAccept(expected.key)) {
    throw new HandshakeError('BAD_ACCEPT', status, 'Sec-WebSocket-Accept does not match the key');
  }

  let protocol = '';
  const protocolHeader = h.get('sec-websocket-protocol');
  if (protocolHeader !== undefined) {
    if (!(expected.protocols ?? []).includes(protocolHeader)) {
      throw new HandshakeError(
        'UNEXPECTED_PROTOCOL',
        status,
        `server selected subprotocol ${JSON.stringify(protocolHeader)}, which was not offered`,
      );
    }
    protocol = protocolHeader;
  }

  let extensions: ExtensionOffer[] = [];
  const extensionHeader = h.get('sec-websocket-extensions');
  if (extensionHeader !== undefined) {
    try {
      extensions = parseExtensions(extensionHeader);
    } catch (err) {
      if (err instanceof HandshakeError) throw new HandshakeError(err.code, status, err.message);
      throw err;
    }
    const offered = new Set((expected.extensions ?? []).map((e) => e.name));
    for (const e of extensions) {
      if (!offered.has(e.name)) {
        throw new HandshakeError('UNEXPECTED_EXTENSION', status, `server accepted extension ${e.name}, which was not offered`);
      }
    }
  }
  return { protocol, extensions };
}
