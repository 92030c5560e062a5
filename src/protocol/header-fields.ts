// The header fields the protocol writes, and the matching of names and tokens in the ones it
// reads: what the opening handshake and a refused upgrade's response both check, in one place.
import { isToken } from './http-head.js';

/** `s` with A–Z lowered: header names and tokens compare ASCII case-insensitively. */
export function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  }
  return s;
}

// Field values we emit: visible ASCII, SP and HTAB. Excluding obs-text keeps the head pure
// ASCII, so it encodes the same whether the caller writes it as UTF-8 or Latin-1.
function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!(c === 0x09 || (c >= 0x20 && c <= 0x7e))) return false;
  }
  return true;
}

/**
 * One `name: value` line of a head we write.
 * @throws TypeError for a name that is not a token, or a value with CR, LF, a control or a
 * non-ASCII character (which could split the head).
 */
export function fieldLine(name: string, value: string): string {
  if (!isToken(name)) throw new TypeError(`header name ${JSON.stringify(name)} is not a token`);
  if (!isFieldValue(value)) {
    throw new TypeError(`value of header ${name} contains CR, LF, a control or a non-ASCII character`);
  }
  return `${name}: ${value}\r\n`;
}

/**
 * The caller's extra header lines.
 * @throws TypeError for one whose name is `reserved` (set by the protocol itself), or that
 * {@link fieldLine} refuses.
 */
export function extraFieldLines(headers: Readonly<Record<string, string>> | undefined, reserved: ReadonlySet<string>): string {
  let out = '';
  if (headers === undefined) return out;
  for (const [name, value] of Object.entries(headers)) {
    if (reserved.has(asciiLower(name))) {
      throw new TypeError(`header ${name} is set by the handshake and cannot be given in headers`);
    }
    out += fieldLine(name, value);
  }
  return out;
}

/** Whether `s` is `lowerCase` with any of its ASCII letters in either case (no string made). */
export function equalsAsciiLower(s: string, lowerCase: string): boolean {
  if (s.length !== lowerCase.length) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== lowerCase.charCodeAt(i)) return false;
  }
  return true;
}

/** Whether a parsed token list (null: malformed) holds `lowerCaseToken`, in any case. */
export function hasToken(list: readonly string[] | null, lowerCaseToken: string): boolean {
  if (list === null) return false;
  for (let i = 0; i < list.length; i++) if (equalsAsciiLower(list[i]!, lowerCaseToken)) return true;
  return false;
}
