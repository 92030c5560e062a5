import { Buffer } from 'node:buffer';
import { HandshakeError } from './errors.js';

/** The header block of a request or a response, and the HTTP version of its first line. */
export interface HttpHeadFields {
  /** For example `'1.1'`. */
  version: string;
  /** Lower-case names; repeated fields joined with `', '`. */
  headers: Map<string, string>;
  /** Every field line in arrival order, names as sent. */
  rawHeaders: Array<[string, string]>;
}

/** A parsed HTTP/1.1 request line and header block. */
export interface HttpRequestHead extends HttpHeadFields {
  /** The method as sent (case-sensitive: the handshake requires `GET`). */
  method: string;
  /** The request target as sent: normally origin-form, path and query (`/ws?room=1`). */
  target: string;
}

/** A parsed HTTP/1.1 status line and header block. */
export interface HttpResponseHead extends HttpHeadFields {
  /** The three-digit status code, for example 101. */
  status: number;
  /** The reason phrase after the code, possibly empty. */
  statusText: string;
}

/** Which head a parser reads: a server reads requests, a client reads the response. */
export type HttpHeadKind = 'request' | 'response';
/** The parsed head of kind `K`: {@link HttpRequestHead} or {@link HttpResponseHead}. */
export type HttpHead<K extends HttpHeadKind> = K extends 'request' ? HttpRequestHead : HttpResponseHead;

const CR = 0x0d;
const LF = 0x0a;
const EMPTY = new Uint8Array(0);

// tchar of RFC 7230 §3.2.6, indexed by char code.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/** Whether `c` is an RFC 7230 `tchar`. */
export function isTokenChar(c: number): boolean {
  return c < 128 && TCHAR[c] === 1;
}

/** Whether `s` is a non-empty RFC 7230 `token`. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    if (!isTokenChar(s.charCodeAt(i))) return false;
  }
  return true;
}

function malformed(message: string): HandshakeError {
  return new HandshakeError('MALFORMED_HTTP', 400, message);
}

/**
 * Incremental parser of one HTTP/1.1 head (start line and header fields, up to the empty
 * line). Strict: anything RFC 7230 lets a recipient reject is rejected, since leniency in
 * head parsing is where request smuggling starts.
 */
export class HttpHeadParser<K extends HttpHeadKind> {
  readonly #kind: K;
  readonly #max: number;
  // Only allocated when the head spans several chunks; never grows beyond #max.
  #buf: Uint8Array = EMPTY;
  #len = 0;
  // Scan state carried across chunks so no byte is examined twice.
  #prevByte = -1;
  #lastLf = -10;
  #done = false;
  #error: HandshakeError | null = null;
  #rest: Uint8Array = EMPTY;

  constructor(kind: K, maxHeadBytes = 16 * 1024) {
    if (kind !== 'request' && kind !== 'response') throw new TypeError(`unknown head kind ${String(kind)}`);
    if (!Number.isSafeInteger(maxHeadBytes) || maxHeadBytes < 1) {
      throw new RangeError('maxHeadBytes must be a positive integer');
    }
    this.#kind = kind;
    this.#max = maxHeadBytes;
  }

  /**
   * Bytes received after the end of the head: the start of whatever followed it (frames).
   * A view of the pushed chunk, not a copy. Chunks pushed after completion are appended.
   */
  get rest(): Uint8Array {
    return this.#rest;
  }

  /**
   * Feeds bytes; returns the head once complete (then never again), else null.
   * Throws HandshakeError (`HEAD_TOO_LARGE`, `MALFORMED_HTTP`); once it has thrown, it
   * throws the same error on every later push.
   */
  push(chunk: Uint8Array): HttpHead<K> | null {
    if (this.#error !== null) throw this.#error;
    if (this.#done) {
      // The caller should have switched to the frame parser; keep the bytes rather than lose them.
      if (chunk.length > 0) this.#rest = concat(this.#rest, chunk);
      return null;
    }
    try {
      return this.#push(chunk);
    } catch (err) {
      if (err instanceof HandshakeError) this.#error = err;
      throw err;
    }
  }

  #push(chunk: Uint8Array): HttpHead<K> | null {
    const room = this.#max - this.#len;
    const window = chunk.length > room ? chunk.subarray(0, room) : chunk;
    const end = this.#scan(window);
    if (end === -1) {
      if (window.length === room) {
        throw new HandshakeError(
          'HEAD_TOO_LARGE',
          431,
          `HTTP head exceeds ${this.#max} bytes`,
        );
      }
      this.#append(window);
      return null;
    }
    let head: Uint8Array;
    if (this.#len === 0) {
      head = chunk.subarray(0, end);
    } else {
      this.#append(chunk.subarray(0, end));
      head = this.#buf.subarray(0, this.#len);
    }
    this.#done = true;
    this.#rest = chunk.subarray(end);
    const text = latin1(head.subarray(0, head.length - 4));
    this.#buf = EMPTY;
    return (this.#kind === 'request' ? parseRequest(text) : parseResponse(text)) as HttpHead<K>;
  }

  /** Returns the index just past CRLF CRLF in `bytes`, or -1; rejects a bare LF. */
  #scan(bytes: Uint8Array): number {
    const base = this.#len;
    let from = 0;
    while (true) {
      const i = bytes.indexOf(LF, from);
      if (i === -1) break;
      const before = i > 0 ? bytes[i - 1] : this.#prevByte;
      if (before !== CR) throw malformed('bare LF in HTTP head');
      const at = base + i;
      if (at - this.#lastLf === 2) return i + 1;
      this.#lastLf = at;
      from = i + 1;
    }
    if (bytes.length > 0) this.#prevByte = bytes[bytes.length - 1];
    return -1;
  }

  #append(bytes: Uint8Array): void {
    const needed = this.#len + bytes.length;
    if (needed > this.#buf.length) {
      const grown = new Uint8Array(Math.min(this.#max, Math.max(needed, this.#buf.length * 2, 256)));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(bytes, this.#len);
    this.#len = needed;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// Latin-1 keeps one char per byte, so obs-text survives and offsets stay byte offsets.
function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

const REQUEST_VERSION = /^HTTP\/([0-9])\.([0-9])$/;
const STATUS_LINE = /^HTTP\/([0-9]\.[0-9]) ([0-9]{3})(?: (.*))?$/s;

function splitLines(text: string): string[] {
  const lines = text.split('\r\n');
  for (const line of lines) {
    if (line.includes('\r')) throw malformed('bare CR in HTTP head');
  }
  return lines;
}

function parseRequest(text: string): HttpRequestHead {
  const lines = splitLines(text);
  const line = lines[0];
  const sp1 = line.indexOf(' ');
  const sp2 = sp1 === -1 ? -1 : line.indexOf(' ', sp1 + 1);
  if (sp2 === -1 || line.includes(' ', sp2 + 1)) throw malformed('malformed request line');
  const method = line.slice(0, sp1);
  const target = line.slice(sp1 + 1, sp2);
  const version = REQUEST_VERSION.exec(line.slice(sp2 + 1));
  if (!isToken(method)) throw malformed('request method is not a token');
  if (target.length === 0 || !isVisibleAscii(target)) throw malformed('malformed request target');
  if (version === null) throw malformed('malformed HTTP version in request line');
  const { headers, rawHeaders } = parseFields(lines);
  return { method, target, version: `${version[1]}.${version[2]}`, headers, rawHeaders };
}

function parseResponse(text: string): HttpResponseHead {
  const lines = splitLines(text);
  const m = STATUS_LINE.exec(lines[0]);
  if (m === null) throw malformed('malformed status line');
  const statusText = m[3] ?? '';
  if (hasControl(statusText)) throw malformed('control character in reason phrase');
  const { headers, rawHeaders } = parseFields(lines);
  return { version: m[1], status: Number(m[2]), statusText, headers, rawHeaders };
}

function parseFields(lines: string[]): Pick<HttpRequestHead, 'headers' | 'rawHeaders'> {
  const headers = new Map<string, string>();
  const rawHeaders: Array<[string, string]> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) throw malformed('obsolete line folding in HTTP head');
    const colon = line.indexOf(':');
    if (colon === -1) throw malformed('header line without a colon');
    const name = line.slice(0, colon);
    if (!isToken(name)) throw malformed(`invalid header name ${JSON.stringify(name)}`);
    const value = trimOws(line.slice(colon + 1));
    if (hasControl(value)) throw malformed(`control character in the value of ${name}`);
    rawHeaders.push([name, value]);
    const key = name.toLowerCase();
    const previous = headers.get(key);
    headers.set(key, previous === undefined ? value : `${previous}, ${value}`);
  }
  return { headers, rawHeaders };
}

/** Strips optional whitespace (SP, HTAB) only; `String#trim` would also eat NBSP (0xA0). */
export function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isOws(s.charCodeAt(start))) start++;
  while (end > start && isOws(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

// CTLs other than HTAB: NUL, CR and LF are smuggling vectors; the rest are never legitimate.
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** Whether every character of `s` is visible ASCII (0x21–0x7E); true for ''. */
export function isVisibleAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}
