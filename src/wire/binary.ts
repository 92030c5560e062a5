/**
 * Bytes in hotline.v1 data. The msgpack encoding carries them as msgpack `bin`; JSON has no
 * bytes, so in JSON (the JSON encoding, history, engines, SSE, the HTTP API) they are written
 * as `{"$bin":"<base64>"}`: an object with that one key and a canonical standard base64
 * string (RFC 4648 §4, padded). Such an object means those bytes in either encoding, so a
 * message keeps one stored form that both encodings replay exactly.
 *
 * Base64 is written here rather than with `Buffer` or `atob`: this layer runs in browsers
 * and Node alike and imports nothing from either.
 */

/** The one key of the JSON form of bytes. */
export const BINARY_KEY = '$bin';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Each base64 character's value, 255 for characters outside the alphabet. */
const VALUES = new Uint8Array(128).fill(255);
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;

/** Standard padded base64 of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  const parts: string[] = [];
  let out = '';
  const whole = bytes.length - (bytes.length % 3);
  for (let i = 0; i < whole; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
    // Strings built by += stay ropes; flattening them in pieces keeps a big one cheap.
    if (out.length >= 8192) {
      parts.push(out);
      out = '';
    }
  }
  const rest = bytes.length - whole;
  if (rest === 1) {
    const n = bytes[whole]! << 16;
    out += `${ALPHABET[n >> 18]!}${ALPHABET[(n >> 12) & 63]!}==`;
  } else if (rest === 2) {
    const n = (bytes[whole]! << 16) | (bytes[whole + 1]! << 8);
    out += `${ALPHABET[n >> 18]!}${ALPHABET[(n >> 12) & 63]!}${ALPHABET[(n >> 6) & 63]!}=`;
  }
  parts.push(out);
  return parts.join('');
}

/**
 * The bytes of a canonical standard padded base64 string, or null when it is not one (a
 * character outside the alphabet, a length that is not a multiple of 4, bits set in the
 * padding): only one string stands for given bytes, so `{"$bin": …}` round-trips exactly.
 */
export function fromBase64(text: string): Uint8Array | null {
  const length = text.length;
  if (length % 4 !== 0) return null;
  const padding = length === 0 ? 0 : text.charCodeAt(length - 1) !== 0x3d ? 0 : text.charCodeAt(length - 2) === 0x3d ? 2 : 1;
  const bytes = new Uint8Array((length / 4) * 3 - padding);
  let at = 0;
  for (let i = 0; i < length; i += 4) {
    const last = i + 4 === length;
    const a = value(text, i);
    const b = value(text, i + 1);
    const c = last && padding === 2 ? 0 : value(text, i + 2);
    const d = last && padding >= 1 ? 0 : value(text, i + 3);
    if ((a | b | c | d) > 63) return null;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    bytes[at++] = n >> 16;
    if (last && padding === 2) {
      if ((n & 0xffff) !== 0) return null;
      break;
    }
    bytes[at++] = (n >> 8) & 255;
    if (last && padding === 1) {
      if ((n & 0xff) !== 0) return null;
      break;
    }
    bytes[at++] = n & 255;
  }
  return bytes;
}

function value(text: string, at: number): number {
  const code = text.charCodeAt(at);
  return code < 128 ? VALUES[code]! : 255;
}

/** The JSON form of bytes. */
export function binaryForm(bytes: Uint8Array): { $bin: string } {
  return { [BINARY_KEY]: toBase64(bytes) } as { $bin: string };
}

/** The bytes a value stands for when it is the JSON form of bytes; null for any other value. */
export function bytesOfForm(value: unknown): Uint8Array | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  let only: unknown = undefined;
  let keys = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (++keys > 1 || key !== BINARY_KEY) return null;
    only = (value as Record<string, unknown>)[key];
  }
  return keys === 1 && typeof only === 'string' ? fromBase64(only) : null;
}

/** Whether a value is bytes as JavaScript holds them: a Uint8Array (a Node Buffer is one) or another view of an ArrayBuffer. */
export function isBytes(value: unknown): value is ArrayBufferView {
  return ArrayBuffer.isView(value);
}

/** A view's bytes as a Uint8Array, without copying. */
export function bytesOf(view: ArrayBufferView): Uint8Array {
  return view instanceof Uint8Array ? view : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * JSON.stringify with bytes written in their JSON form. The holder's own value is looked
 * at, not what `toJSON` made of it: a Node Buffer's `toJSON` would give `{type, data}`.
 */
export function stringifyWithBytes(value: unknown): string | undefined {
  return JSON.stringify(value, function (this: Record<string, unknown>, key: string, item: unknown) {
    const raw = this[key];
    return isBytes(raw) ? binaryForm(bytesOf(raw)) : item;
  }) as string | undefined;
}

/**
 * Replaces, in place, every JSON form of bytes inside a parsed JSON value by the bytes
 * (a top-level form is returned as bytes). Without recursion: the value's depth is bounded
 * by whoever parsed it, but a stack costs no more.
 */
export function reviveBytes(value: unknown): unknown {
  const top = bytesOfForm(value);
  if (top !== null) return top;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item !== 'object' || item === null || isBytes(item)) continue;
    const holder = item as Record<string, unknown>;
    for (const key in holder) {
      if (!Object.hasOwn(holder, key)) continue;
      const child = holder[key];
      if (typeof child !== 'object' || child === null) continue;
      const bytes = bytesOfForm(child);
      if (bytes !== null) holder[key] = bytes;
      else stack.push(child);
    }
  }
  return value;
}

/**
 * Replaces, in place, every Uint8Array inside a value by its JSON form (a top-level one is
 * returned as the form): what a decoded msgpack request holds becomes what the same request
 * in JSON would hold.
 */
export function formBytes(value: unknown): unknown {
  if (value instanceof Uint8Array) return binaryForm(value);
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item !== 'object' || item === null) continue;
    const holder = item as Record<string, unknown>;
    for (const key in holder) {
      if (!Object.hasOwn(holder, key)) continue;
      const child = holder[key];
      if (child instanceof Uint8Array) holder[key] = binaryForm(child);
      else if (typeof child === 'object' && child !== null) stack.push(child);
    }
  }
  return value;
}
