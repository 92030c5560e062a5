// parse-msgpack: parseMsgpackRequest (hotline.v1.msgpack) on the bytes of a binary frame:
// never throws, bounds nesting as the JSON path does, refuses extension types, and accepts
// only what @msgpack/msgpack (the oracle, decoding on its own) reads as the same request,
// which must also be what the JSON path makes of that request written as JSON.
import { Buffer } from 'node:buffer';
import { decode, encode, ExtData } from '@msgpack/msgpack';
import { DEFAULT_WIRE_LIMITS, encodeErr, parseMsgpackRequest, parseRequest, resolveWireLimits, scanMsgpack, type WireLimits } from '../../../src/wire/index.js';
import { formBytes } from '../../../src/wire/binary.js';
import type { Target } from '../driver/input.js';
import { mutateBytes } from '../driver/mutate.js';
import { outcome } from '../driver/outcomes.js';
import type { Rng } from '../driver/rng.js';

const LIMITS: ReadonlyArray<[string, WireLimits]> = [
  ['default limits', DEFAULT_WIRE_LIMITS],
  ['tight limits', resolveWireLimits({ maxChannelNameLength: 8, maxKeyLength: 4, maxMethodLength: 4, maxTokenLength: 16, maxHistoryLimit: 5, maxJsonDepth: 3 })],
];

const CORPUS: ReadonlyArray<Record<string, unknown>> = [
  { op: 'sub', id: 1, ch: 'room:1' },
  { op: 'sub', id: 2, ch: 'room:1', since: { epoch: 'k3v9x', offset: 41 } },
  { op: 'unsub', id: 3, ch: 'room:1' },
  { op: 'pub', id: 4, ch: 'room:1', data: { text: 'hi', n: [1, 2.5, { deep: [true, null] }], b: new Uint8Array([0, 255]) }, key: 'k-1' },
  { op: 'pub', id: 5, ch: 'a', data: new Uint8Array(0) },
  { op: 'history', id: 6, ch: 'room:1', limit: 2 },
  { op: 'presence', id: 7, ch: 'room:1' },
  { op: 'rpc', id: 8, method: 'add', params: [1, 2] },
  { op: 'ping', id: 9 },
  { op: 'auth', id: 10, token: 'secret' },
  { op: 'reply', id: 13, call: 1, result: { confirmed: true } },
];
/** Values a field may be replaced with: every msgpack type, and the edges of each. */
const VALUES: readonly unknown[] = [
  null, true, false, -1, 0, 0.5, -0.5, 2 ** 53, 2 ** 64, -(2 ** 63), Number.NaN, Infinity, '', 'x', 'c'.repeat(201), 'room 1', '__proto__',
  new Uint8Array([1, 2, 3]), [], {}, { $bin: 'AAEC' }, { epoch: 'e', offset: -1 }, new Date(0), new ExtData(7, new Uint8Array([1])), [[[[[]]]]],
];
const KEYS = ['op', 'id', 'ch', 'data', 'key', 'since', 'limit', 'method', 'params', 'token', 'call', 'result', 'error', 'constructor', ''];
/** Type bytes and headers the mutator splices in: containers with big counts, ext, the unused 0xc1. */
const DICT: readonly Buffer[] = [
  [0x80], [0x8f], [0x90], [0x9f], [0xa0], [0xbf], [0xc0], [0xc1], [0xc4, 0xff], [0xc7, 0x01, 0x01], [0xd4, 0xff], [0xd6, 0xff],
  [0xd9, 0xff], [0xdc, 0xff, 0xff], [0xdd, 0xff, 0xff, 0xff, 0xff], [0xde, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff], [0xcb], [0xff], [0xc3, 0x28],
].map((b) => Buffer.from(b));

function generate(rng: Rng): Buffer {
  const r = rng.float();
  if (r < 0.05) {
    // Monsters: a deep run, or counts that claim more than the frame holds.
    const n = rng.size(1 << 20);
    return rng.pick([
      () => Buffer.concat([Buffer.from([0x82, 0xa2, 0x69, 0x64, 0x01, 0xa1, 0x64]), Buffer.alloc(n, 0x91), Buffer.from([0xc0])]),
      () => Buffer.concat([Buffer.from([0x82, 0xa2, 0x69, 0x64, 0x01, 0xa1, 0x64]), Buffer.alloc(n, 0x81 + 0)]),
      () => Buffer.concat([Buffer.from([0x82, 0xa2, 0x69, 0x64, 0x01, 0xa1, 0x64, 0xdd, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(n, 0xc0)]),
      () => Buffer.concat([Buffer.from([0x82, 0xa2, 0x69, 0x64, 0x01, 0xa1, 0x64, 0xdb]), Buffer.from([0, n >> 16, (n >> 8) & 255, n & 255]), Buffer.alloc(n, 0x61)]),
    ])();
  }
  if (r < 0.5) {
    // Structure-aware: a corpus request with fields replaced, dropped, added, nested.
    const request: Record<string, unknown> = { ...rng.pick(CORPUS) };
    const rounds = 1 + rng.size(4);
    for (let i = 0; i < rounds; i++) {
      const keys = Object.keys(request);
      const key = keys.length > 0 && rng.chance(0.6) ? rng.pick(keys) : rng.pick(KEYS);
      switch (rng.int(3)) {
        case 0:
          request[key] = rng.pick(VALUES);
          break;
        case 1:
          delete request[key];
          break;
        case 2: {
          let value: unknown = request[key] ?? null;
          for (let depth = rng.size(80); depth > 0; depth--) value = rng.chance(0.5) ? [value] : { d: value };
          request[key] = value;
          break;
        }
      }
    }
    try {
      return Buffer.from(encode(request));
    } catch {
      return Buffer.from(encode({ op: 'ping', id: 1 }));
    }
  }
  const pool = CORPUS.map((c) => Buffer.from(encode(c)));
  return mutateBytes(rng, rng.pick(pool), pool, DICT, 1 + rng.size(7), 1 << 20);
}

/** Nesting of a decoded value: a map, an array and bytes (as their JSON form) are a level each; extension values are leaves. */
function depthOf(value: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== 'object' || item === null || item instanceof ExtData || item instanceof Date) continue;
    max = Math.max(max, depth + 1);
    if (item instanceof Uint8Array) continue;
    for (const child of Object.values(item as object)) stack.push([child, depth + 1]);
  }
  return max;
}

function hasExtension(value: unknown): boolean {
  const stack = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (item instanceof ExtData || item instanceof Date) return true;
    if (typeof item === 'object' && item !== null && !(item instanceof Uint8Array)) stack.push(...Object.values(item as object));
  }
  return false;
}

export function msgpackTarget(): Target {
  return {
    name: 'parse-msgpack',
    description: 'parseMsgpackRequest (hotline.v1.msgpack requests): never throws, bounds nesting, refuses extensions, agrees with @msgpack/msgpack and the JSON path',
    variants: LIMITS.length,
    describeVariant: (v) => LIMITS[v]?.[0] ?? '?',
    generate(rng) {
      return { variant: rng.int(LIMITS.length), splits: [], data: generate(rng) };
    },
    check(input) {
      const limits = LIMITS[input.variant]?.[1];
      if (limits === undefined) return null;
      const bytes = new Uint8Array(input.data);
      const result = parseMsgpackRequest(bytes, limits);
      outcome(result.ok ? `ok ${result.request.op}` : /nests/.test(result.message) ? 'bad_request (depth)' : result.id === undefined ? 'bad_request without id' : 'bad_request with id');
      // Linear in the frame even when the oracle would not be: only small inputs are decoded by it.
      let value: unknown;
      let decoded = false;
      if (bytes.length <= 65536) {
        try {
          value = decode(bytes);
          decoded = true;
        } catch {
          decoded = false;
        }
      }
      if (!result.ok) {
        if (result.code !== 'bad_request' || result.message.length === 0) return { key: 'error-shape', message: JSON.stringify(result) };
        try {
          JSON.parse(encodeErr(result.id, result.code, result.message));
        } catch (e) {
          return { key: 'err-encoding', message: `encodeErr: ${String(e)}` };
        }
        // Past the scan, an id that was readable is answered.
        if (decoded && scanMsgpack(bytes, limits.maxJsonDepth).problem === null && typeof value === 'object' && value !== null && !Array.isArray(value)) {
          const id = (value as Record<string, unknown>)['id'];
          if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 && result.id !== id) return { key: 'error-lost-id', message: `bad_request without the readable id ${id}` };
        }
        return null;
      }
      if (bytes.length > 65536) return null;
      if (!decoded) return { key: 'accepted-invalid', message: 'a frame @msgpack/msgpack cannot decode was accepted' };
      if (hasExtension(value)) return { key: 'accepted-extension', message: 'a request holding an extension type was accepted' };
      const depth = depthOf(value);
      if (depth > limits.maxJsonDepth) return { key: 'depth-missed', message: `a request nested ${depth} deep (limit ${limits.maxJsonDepth}) was accepted` };
      // The same request as JSON reads the same (bytes in their JSON form).
      const json = parseRequest(JSON.stringify(formBytes(value)), limits);
      if (!json.ok || JSON.stringify(json.request) !== JSON.stringify(result.request)) {
        return { key: 'differs-from-json', message: `msgpack read ${JSON.stringify(result.request)}, JSON ${JSON.stringify(json)}` };
      }
      return null;
    },
  };
}
