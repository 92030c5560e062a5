import { HandshakeError } from './errors.js';
import { isToken, isTokenChar, trimOws } from './http-head.js';

/** One element of a `Sec-WebSocket-Extensions` list: an extension and its parameters, in order. */
export interface ExtensionOffer {
  /** The extension token as written, for example `permessage-deflate`. */
  name: string;
  /** `true` for a parameter given without a value. Order and duplicates are kept. */
  params: Array<[name: string, value: string | true]>;
}

function bad(message: string): HandshakeError {
  return new HandshakeError('BAD_EXTENSION_HEADER', 400, `Sec-WebSocket-Extensions: ${message}`);
}

function skipOws(s: string, i: number): number {
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09) break;
    i++;
  }
  return i;
}

function tokenEnd(s: string, i: number): number {
  while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
  return i;
}

function where(s: string, i: number): string {
  return i >= s.length ? 'end of header' : `${JSON.stringify(s[i])} at offset ${i}`;
}

/** Reads the quoted-string opening at `s[i]`; returns its unescaped content and the index past it. */
function readQuoted(s: string, i: number): [string, number] {
  let out = '';
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x22) return [out, j + 1];
    if (c === 0x5c) {
      j++;
      if (j >= s.length) break;
      const e = s.charCodeAt(j);
      // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
      if (!(e === 0x09 || (e >= 0x20 && e <= 0x7e) || (e >= 0x80 && e <= 0xff))) {
        throw bad(`invalid escaped character at offset ${j}`);
      }
      out += s[j];
    } else if (c === 0x09 || c === 0x20 || c === 0x21 || (c >= 0x23 && c <= 0x7e) || (c >= 0x80 && c <= 0xff)) {
      out += s[j];
    } else {
      throw bad(`invalid character in quoted string at offset ${j}`);
    }
  }
  throw bad(`unterminated quoted string starting at offset ${i}`);
}

/**
 * Parses a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1 with RFC 7230 §7 list rules).
 * Offers are returned in order; an extension listed twice yields two offers.
 * @throws HandshakeError `BAD_EXTENSION_HEADER` (400), naming the problem and its offset.
 */
export function parseExtensions(header: string): ExtensionOffer[] {
  const s = header;
  const offers: ExtensionOffer[] = [];
  let i = 0;
  while (true) {
    i = skipOws(s, i);
    if (i >= s.length) break;
    if (s[i] === ',') {
      i++;
      continue;
    }
    const nameEnd = tokenEnd(s, i);
    if (nameEnd === i) throw bad(`expected an extension name, found ${where(s, i)}`);
    const offer: ExtensionOffer = { name: s.slice(i, nameEnd), params: [] };
    i = skipOws(s, nameEnd);
    while (s[i] === ';') {
      i = skipOws(s, i + 1);
      const paramEnd = tokenEnd(s, i);
      if (paramEnd === i) throw bad(`expected a parameter name, found ${where(s, i)}`);
      const param = s.slice(i, paramEnd);
      i = skipOws(s, paramEnd);
      let value: string | true = true;
      if (s[i] === '=') {
        i = skipOws(s, i + 1);
        if (s[i] === '"') {
          const valueStart = i;
          [value, i] = readQuoted(s, i);
          // §9.1: the unescaped value must itself be a token.
          if (!isToken(value)) {
            throw bad(`quoted value of ${param} at offset ${valueStart} is not a token`);
          }
        } else {
          const valueEnd = tokenEnd(s, i);
          if (valueEnd === i) throw bad(`expected a value for ${param}, found ${where(s, i)}`);
          value = s.slice(i, valueEnd);
          i = valueEnd;
        }
        i = skipOws(s, i);
      }
      offer.params.push([param, value]);
    }
    offers.push(offer);
    if (i < s.length) {
      if (s[i] !== ',') throw bad(`expected ",", ";" or "=", found ${where(s, i)}`);
      i++;
    }
  }
  // 1#extension: a list of only empty elements is not a list.
  if (offers.length === 0) throw bad('no extension listed');
  return offers;
}

/**
 * Serializes offers as `name; param; param=value, name2`. Values are always tokens (§9.1),
 * so they never need quoting.
 * @throws TypeError if a name or value is not a token, since no valid header could carry it.
 */
export function formatExtensions(offers: readonly ExtensionOffer[]): string {
  const parts: string[] = [];
  for (const offer of offers) {
    if (!isToken(offer.name)) throw new TypeError(`extension name ${JSON.stringify(offer.name)} is not a token`);
    let part = offer.name;
    for (const [name, value] of offer.params) {
      if (!isToken(name)) throw new TypeError(`extension parameter ${JSON.stringify(name)} is not a token`);
      if (value === true) {
        part += `; ${name}`;
      } else {
        if (!isToken(value)) {
          throw new TypeError(`value ${JSON.stringify(value)} of extension parameter ${name} is not a token`);
        }
        part += `; ${name}=${value}`;
      }
    }
    parts.push(part);
  }
  return parts.join(', ');
}

/**
 * Parses a comma-separated list of tokens (`#token`, as in Upgrade, Connection and
 * Sec-WebSocket-Protocol). Empty elements and OWS are skipped; an empty value gives `[]`.
 * Returns null if any element is not a token.
 */
export function parseTokenList(value: string): string[] | null {
  const out: string[] = [];
  for (const element of value.split(',')) {
    const item = trimOws(element);
    if (item.length === 0) continue;
    if (!isToken(item)) return null;
    out.push(item);
  }
  return out;
}
