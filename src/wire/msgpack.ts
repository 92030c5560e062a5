/**
 * hotline.v1 in MessagePack (`hotline.v1.msgpack`): the same messages with the same fields,
 * one msgpack map per binary frame, bytes as msgpack `bin`. The server keeps every message
 * in the JSON form (src/wire/binary.ts) and transcodes at the edge: a request is checked
 * here ({@link scanMsgpack}) before @msgpack/msgpack decodes it, its bytes are given their
 * JSON form, and it goes through the same field checks as a JSON request; what the server
 * sends is JSON text made msgpack by {@link msgpackOfJson}, once per message and encoding.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { formBytes, reviveBytes } from './binary.js';
import { ErrorCode } from './codes.js';
import { DEFAULT_WIRE_LIMITS, type WireLimits } from './limits.js';
import type { ServerMessage } from './messages.js';
import { parseRequestObject, type ParseRequestResult } from './parse-request.js';
import { readServerMessage } from './parse-server.js';

/** The subprotocol of hotline.v1 in msgpack; a server that speaks it prefers it when a client offers it. */
export const MSGPACK_SUBPROTOCOL = 'hotline.v1.msgpack';

/** How a connection's messages are written: JSON text frames, or msgpack binary frames. */
export type WireEncoding = 'json' | 'msgpack';

/** The encoding a negotiated subprotocol names: msgpack for {@link MSGPACK_SUBPROTOCOL}, JSON for anything else. */
export function encodingOf(protocol: string | undefined): WireEncoding {
  return protocol === MSGPACK_SUBPROTOCOL ? 'msgpack' : 'json';
}

/** Why a msgpack request was refused before it was decoded, or null when it may be. */
export interface MsgpackScan {
  /** Null when the bytes are one well-formed value within the limits. */
  problem: string | null;
  /** Whether it holds `bin` values (then they are given their JSON form). */
  hasBytes: boolean;
  /** Entries its maps declare, all maps together: a decoded value with fewer had repeated keys. */
  mapEntries: number;
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A map or array being read: items left (a map counts keys and values). */
interface Open {
  left: number;
  map: boolean;
}

/**
 * One linear pass over untrusted msgpack, before any of it is decoded: exactly one value and
 * nothing after it; maps and arrays nested at most `maxDepth` levels (the request is level
 * 1, as for JSON; bytes count as a level, as their JSON form does); every count and length
 * within the bytes that are left (so nothing is allocated for a header that lies); map keys
 * strings; strings valid UTF-8; no extension types (timestamps included: hotline.v1 data is
 * JSON values and bytes). Repeated keys are found after decoding, by `mapEntries`: a set of
 * keys per map here would cost more than the decoding itself.
 */
export function scanMsgpack(bytes: Uint8Array, maxDepth: number, maxValues = Infinity): MsgpackScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  const stack: Open[] = [];
  let at = 0;
  let hasBytes = false;
  let mapEntries = 0;
  let values = 0;
  const fail = (problem: string): MsgpackScan => ({ problem, hasBytes, mapEntries });
  const length = (size: 1 | 2 | 4): number => {
    if (at + size > end) return -1;
    const n = size === 1 ? bytes[at]! : size === 2 ? view.getUint16(at) : view.getUint32(at);
    at += size;
    return n;
  };
  let done = false;
  while (!done) {
    if (at >= end) return fail('the message is not valid msgpack: it ends inside a value');
    const top = stack.length === 0 ? null : stack[stack.length - 1]!;
    const isKey = top !== null && top.map && top.left % 2 === 0;
    const type = bytes[at++]!;
    if (++values > maxValues) return fail(`the message holds more than ${maxValues} values (keys included)`);
    let container: 'map' | 'array' | null = null;
    let count = 0;
    let str = -1;
    if (type <= 0x7f || type >= 0xe0 || type === 0xc0 || type === 0xc2 || type === 0xc3) {
      // fixint, nil, booleans: nothing follows
    } else if (type <= 0x8f) {
      container = 'map';
      count = type & 0x0f;
    } else if (type <= 0x9f) {
      container = 'array';
      count = type & 0x0f;
    } else if (type <= 0xbf) {
      str = type & 0x1f;
    } else if (type === 0xd9 || type === 0xda || type === 0xdb) {
      str = length(type === 0xd9 ? 1 : type === 0xda ? 2 : 4);
      if (str < 0) return fail('the message is not valid msgpack: it ends inside a value');
    } else if (type === 0xc4 || type === 0xc5 || type === 0xc6) {
      const size = length(type === 0xc4 ? 1 : type === 0xc5 ? 2 : 4);
      if (size < 0 || at + size > end) return fail('the message is not valid msgpack: it ends inside a value');
      // A level, as their JSON form ({"$bin": …}) is one: the same request nests alike in either encoding.
      if (stack.length + 1 > maxDepth) return fail(`the message nests maps and arrays deeper than ${maxDepth} levels`);
      hasBytes = true;
      at += size;
    } else if (type === 0xca || type === 0xcb || (type >= 0xcc && type <= 0xd3)) {
      const size = type === 0xca ? 4 : type === 0xcb ? 8 : 1 << (type - (type >= 0xd0 ? 0xd0 : 0xcc));
      if (at + size > end) return fail('the message is not valid msgpack: it ends inside a value');
      at += size;
    } else if (type === 0xdc || type === 0xdd || type === 0xde || type === 0xdf) {
      container = type <= 0xdd ? 'array' : 'map';
      count = length(type === 0xdc || type === 0xde ? 2 : 4);
      if (count < 0) return fail('the message is not valid msgpack: it ends inside a value');
    } else if ((type >= 0xc7 && type <= 0xc9) || (type >= 0xd4 && type <= 0xd8)) {
      return fail('msgpack extension types are not part of hotline.v1');
    } else {
      return fail(`the message is not valid msgpack: 0x${type.toString(16)} is not a type`);
    }
    if (isKey && str < 0) return fail('a map key must be a string');
    if (str >= 0) {
      if (at + str > end) return fail('the message is not valid msgpack: it ends inside a value');
      if (!isUtf8(bytes, at, at + str)) return fail('a msgpack string is not valid UTF-8');
      at += str;
    }
    if (top !== null) top.left--;
    if (container !== null) {
      if (stack.length + 1 > maxDepth) return fail(`the message nests maps and arrays deeper than ${maxDepth} levels`);
      const items = container === 'map' ? count * 2 : count;
      // Each item takes a byte at least: a count past what is left is a lie.
      if (items > end - at) return fail('the message is not valid msgpack: a count is larger than the message');
      if (container === 'map') mapEntries += count;
      if (items > 0) stack.push({ left: items, map: container === 'map' });
    }
    while (stack.length > 0 && stack[stack.length - 1]!.left === 0) stack.pop();
    if (stack.length === 0) done = true;
  }
  if (at !== end) return fail('the message is not valid msgpack: bytes follow the request');
  return { problem: null, hasBytes, mapEntries };
}

/** Whether bytes[from, to) are valid UTF-8: ASCII at a glance, the rest by a fatal decoder. */
function isUtf8(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    if (bytes[i]! >= 0x80) {
      try {
        fatalUtf8.decode(bytes.subarray(i, to));
        return true;
      } catch {
        return false;
      }
    }
  }
  return true;
}

/** The entries of every map (plain object) in a decoded value, counted as {@link MsgpackScan.mapEntries} counts what was declared. */
function mapEntriesOf(value: unknown): number {
  let entries = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item !== 'object' || item === null || item instanceof Uint8Array) continue;
    if (Array.isArray(item)) {
      for (const element of item) if (typeof element === 'object' && element !== null) stack.push(element);
      continue;
    }
    for (const key in item) {
      entries++;
      const child = (item as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null) stack.push(child);
    }
  }
  return entries;
}

/**
 * Reads one client request from a msgpack frame. Never throws: like {@link parseRequest} for
 * JSON, anything wrong is a bad_request (with the id when it could be read), and the bytes
 * in it come out in their JSON form, so the server handles it as the same request in JSON.
 * `maxValues` bounds the values (keys included) one request may hold: decoding in JavaScript
 * costs more per value than JSON.parse does, and a msgpack value can be a single byte.
 */
export function parseMsgpackRequest(bytes: Uint8Array, limits: WireLimits = DEFAULT_WIRE_LIMITS, maxValues = Infinity): ParseRequestResult {
  const first = bytes.length === 0 ? -1 : bytes[0]!;
  if ((first & 0xf0) !== 0x80 && first !== 0xde && first !== 0xdf) {
    return { ok: false, code: ErrorCode.BadRequest, message: 'a request must be a msgpack map' };
  }
  const scan = scanMsgpack(bytes, limits.maxJsonDepth, maxValues);
  if (scan.problem !== null) return { ok: false, code: ErrorCode.BadRequest, message: scan.problem };
  let value: unknown;
  try {
    value = requestDecoder.decode(bytes);
  } catch (error) {
    // The scan let it through, so this is the decoder's own refusal (a `__proto__` key).
    return { ok: false, code: ErrorCode.BadRequest, message: `the message is not valid msgpack: ${error instanceof Error ? error.message : String(error)}` };
  }
  // The decoder keeps the last of repeated keys, as JSON.parse does; here they are refused.
  if (mapEntriesOf(value) !== scan.mapEntries) {
    // Decoded by now: the request's id is answered when it is a valid one.
    const id = (value as Record<string, unknown>)['id'];
    const message = 'a map repeats a key';
    return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? { ok: false, id, code: ErrorCode.BadRequest, message } : { ok: false, code: ErrorCode.BadRequest, message };
  }
  if (scan.hasBytes) formBytes(value);
  return parseRequestObject(value as Record<string, unknown>, limits);
}

/**
 * Decodes requests once {@link scanMsgpack} has bounded every length by the frame's; no
 * extension is let through even if one slipped past (none can).
 */
const requestDecoder = new Decoder({ maxExtLength: 0 });

const encoder = new Encoder({ ignoreUndefined: true });

/**
 * A server message written as JSON text (by src/wire/encode.ts) as msgpack: the same value,
 * with the JSON form of bytes written as `bin`. What the server sends a msgpack connection.
 */
export function msgpackOfJson(text: string): Uint8Array {
  const value: unknown = JSON.parse(text);
  return encoder.encode(text.includes('"$bin"') ? reviveBytes(value) : value);
}

/** A client's request (or any message) as msgpack: Uint8Arrays as `bin`, `undefined` fields left out. */
export function encodeMsgpack(message: unknown): Uint8Array {
  return encoder.encode(message);
}

const serverDecoder = new Decoder();

/**
 * Reads one message from the server in msgpack, for the SDK: null for anything that is not
 * a well-formed hotline.v1 server message, as {@link parseServerMessage} does for JSON.
 * Bytes in data arrive as Uint8Arrays.
 */
export function parseServerMsgpack(bytes: Uint8Array): ServerMessage | null {
  let value: unknown;
  try {
    value = serverDecoder.decode(bytes);
  } catch {
    return null;
  }
  return readServerMessage(value);
}
