import { Buffer } from 'node:buffer';
import { CloseCode, isApplicationCloseCode, MAX_CLOSE_REASON_BYTES } from '../protocol/index.js';
import { isToken } from '../protocol/http-head.js';
import { toUsvString } from './events.js';

// The WHATWG WebSocket's argument checks (WebSockets §3.1 and Web IDL conversions), with
// the exceptions a browser throws, and the checks of the Node-only options.

function syntaxError(message: string): DOMException {
  return new DOMException(message, 'SyntaxError');
}

/** Parses and checks the URL as the WebSocket constructor does. */
export function parseWebSocketUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw syntaxError(`invalid URL ${JSON.stringify(String(input))}`);
  }
  // The current spec maps http(s) to ws(s). Both are special schemes, so only the prefix changes.
  if (url.protocol === 'http:') url = new URL('ws' + url.href.slice('http'.length));
  else if (url.protocol === 'https:') url = new URL('wss' + url.href.slice('https'.length));
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw syntaxError(`URL scheme must be ws: or wss:, got ${url.protocol}`);
  }
  // `hash` is '' both without a fragment and with an empty one; the href tells them apart.
  if (url.href.includes('#')) throw syntaxError('a WebSocket URL may not have a fragment');
  return url;
}

export function parseProtocols(protocols: string | readonly string[] | undefined): string[] {
  if (protocols === undefined) return [];
  // Web IDL `(DOMString or sequence<DOMString>)`: an iterable is a list, anything else a string.
  const iterable = typeof protocols === 'object' && protocols !== null && Symbol.iterator in protocols;
  const list = iterable ? Array.from(protocols, String) : [String(protocols)];
  const seen = new Set<string>();
  for (const p of list) {
    if (!isToken(p)) throw syntaxError(`subprotocol ${JSON.stringify(p)} is not a token`);
    if (seen.has(p)) throw syntaxError(`subprotocol ${JSON.stringify(p)} is listed twice`);
    seen.add(p);
  }
  return list;
}

export function checkMilliseconds(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number of milliseconds`);
  }
  return value;
}

export function checkMaxPayload(value: number | undefined, fallback: number): number {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
    throw new RangeError('maxPayload must be a non-negative integer (0 for no limit)');
  }
  return value ?? fallback;
}

/** Web IDL `[Clamp] unsigned short`: clamped to 0–65535, rounded half to even. */
function clampUnsignedShort(value: unknown): number {
  const n = Number(value);
  if (Number.isNaN(n)) return 0;
  const x = Math.min(Math.max(n, 0), 65535);
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5 || (fraction === 0.5 && floor % 2 === 1)) return floor + 1;
  return floor;
}

/**
 * `close()`'s arguments, converted and checked. A reason without a code implies 1000 (a
 * close frame cannot carry one without the other).
 * @throws DOMException `InvalidAccessError` for a code other than 1000 or 3000–4999;
 * `SyntaxError` for a reason over 123 bytes of UTF-8.
 */
export function closeArguments(code: number | undefined, reason: string | undefined): { code: number | undefined; reason: string } {
  let closeCode: number | undefined;
  if (code !== undefined) {
    closeCode = clampUnsignedShort(code);
    if (closeCode !== CloseCode.NormalClosure && !isApplicationCloseCode(closeCode)) {
      throw new DOMException(`close code must be 1000 or in 3000–4999, got ${String(code)}`, 'InvalidAccessError');
    }
  }
  let closeReason = '';
  if (reason !== undefined) {
    closeReason = toUsvString(reason);
    const length = Buffer.byteLength(closeReason);
    if (length > MAX_CLOSE_REASON_BYTES) {
      throw syntaxError(`close reason is ${length} bytes of UTF-8; the limit is ${MAX_CLOSE_REASON_BYTES}`);
    }
  }
  if (closeCode === undefined && closeReason !== '') closeCode = CloseCode.NormalClosure;
  return { code: closeCode, reason: closeReason };
}

/** Web IDL `BufferSource` as bytes, without a copy. */
export function bytesOf(data: ArrayBufferLike | ArrayBufferView): Buffer {
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}
