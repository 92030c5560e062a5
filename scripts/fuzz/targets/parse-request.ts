// parse-request: parseRequest (hotline.v1) on the text of a frame: never throws, answers
// bad_request with the id whenever it was readable, applies the nesting limit to the text
// as written, and accepts only what satisfies every field rule.
import { Buffer } from 'node:buffer';
import {
  DEFAULT_WIRE_LIMITS,
  encodeErr,
  MAX_EPOCH_LENGTH,
  parseRequest,
  REQUEST_OPS,
  resolveWireLimits,
  validateChannelName,
  type WireLimits,
} from '../../../src/wire/index.js';
import type { Target } from '../driver/input.js';
import { mutateBytes } from '../driver/mutate.js';
import { outcome } from '../driver/outcomes.js';
import type { Rng } from '../driver/rng.js';

const TIGHT_LIMITS: WireLimits = resolveWireLimits({ maxChannelNameLength: 8, maxKeyLength: 4, maxMethodLength: 4, maxTokenLength: 16, maxHistoryLimit: 5, maxJsonDepth: 3 });
const REQUEST_LIMITS: ReadonlyArray<[string, WireLimits]> = [
  ['default limits', DEFAULT_WIRE_LIMITS],
  ['tight limits', TIGHT_LIMITS],
];

const WIRE_CORPUS: readonly string[] = [
  '{"op":"sub","id":1,"ch":"room:1"}',
  '{"op":"sub","id":2,"ch":"room:1","since":{"epoch":"k3v9x","offset":41}}',
  '{"op":"unsub","id":3,"ch":"room:1"}',
  '{"op":"pub","id":4,"ch":"room:1","data":{"text":"hi","n":[1,2,{"deep":[true,null]}]},"key":"k-1"}',
  '{"op":"pub","id":5,"ch":"a","data":null}',
  '{"op":"history","id":6,"ch":"room:1","limit":2}',
  '{"op":"presence","id":7,"ch":"room:1"}',
  '{"op":"rpc","id":8,"method":"add","params":[1,2]}',
  '{"op":"ping","id":9}',
  '{"op":"auth","id":10,"token":"secret"}',
  '{"op":"reply","id":13,"call":1,"result":{"confirmed":true}}',
  '{"op":"reply","id":14,"call":2,"error":{"code":"not_found","message":"no handler for x"}}',
  '{"id":11,"op":"pub","ch":"x","data":"\\ud800 lone","key":null,"extra":{"__proto__":{"polluted":1}}}',
  '{"op":"sub","id":0,"ch":"user@example.com/orders=eu,1","since":null}',
  '[{"op":"ping","id":1}]',
  '{"op":"ping","id":1.5}',
  '{"op":"pub","id":12,"ch":"x","data":"[[[[[[{{{{ not nesting \\" \\\\"}',
];
const WIRE_VALUES: readonly string[] = [
  'null', 'true', '-1', '-0', '0.5', '1e21', '9007199254740991', '9007199254740992', '1e400', '""', '"x"', '[]', '{}',
  `"${'c'.repeat(201)}"`, '"room:1"', '"a b"', '"\\u0000"', '"\\ud83d\\ude00"', '{"epoch":"e","offset":-1}', '{"epoch":"","offset":0}',
  `{"epoch":"${'e'.repeat(65)}","offset":1}`, '"toString"', '"constructor"', '"__proto__"',
];
const WIRE_KEYS = ['op', 'id', 'ch', 'data', 'key', 'since', 'limit', 'method', 'params', 'token', 'call', 'result', 'error', '__proto__', 'constructor', 'hasOwnProperty', 'toString', ''];
const WIRE_DICT: readonly Buffer[] = ['{', '}', '[', ']', '"', '\\', ':', ',', '\\"', '\\\\', '\\u', 'null', '-', 'e9', '\u00e9', '\u{1F600}', '\ud7ff', '\ufeff'].map((s) => Buffer.from(s));

/**
 * Nesting depth of JSON text as written (duplicate keys that JSON.parse drops still count,
 * and malformed text has a depth too): brackets outside strings, found by a plain
 * tokenizer with an escape flag, independent of exceedsJsonDepth's backslash-run counting.
 */
function textDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c /* \ */) escaped = true;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) max = Math.max(max, ++depth);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return max;
}

function generateWireText(rng: Rng): string {
  const r = rng.float();
  if (r < 0.05) {
    // Big or deep monsters: linear-time checks must stay linear.
    const n = rng.size(1 << 20);
    return rng.pick([
      () => '['.repeat(n),
      () => `{"op":"pub","id":1,"ch":"x","data":${'['.repeat(n)}${']'.repeat(n)}}`,
      () => `{"op":"pub","id":1,"ch":"x","data":"${'\\'.repeat(n)}"}`,
      () => `{"op":"pub","id":1,"ch":"x","data":"${'\\"'.repeat(n >> 1)}"}`,
      () => `${'{"a":'.repeat(n >> 4)}1${'}'.repeat(n >> 4)}`,
      () => `"${'"'.repeat(n)}`,
      () => ' '.repeat(n) + '{"op":"ping","id":1}',
    ])();
  }
  if (r < 0.5) {
    // Structure-aware: fields of a corpus request replaced, dropped, added, nested.
    const base = JSON.parse(rng.pick(WIRE_CORPUS.slice(0, 12))) as Record<string, unknown>;
    const entries = Object.entries(base).map(([k, v]) => [k, JSON.stringify(v)] as [string, string]);
    const rounds = 1 + rng.size(4);
    for (let i = 0; i < rounds; i++) {
      const at = rng.int(entries.length + 1);
      switch (rng.int(5)) {
        case 0:
          if (entries[at]) entries[at][1] = rng.pick(WIRE_VALUES);
          break;
        case 1:
          entries.splice(at, 1);
          break;
        case 2:
          entries.splice(at, 0, [rng.pick(WIRE_KEYS), rng.pick(WIRE_VALUES)]);
          break;
        case 3:
          if (entries[at]) {
            const depth = rng.size(80);
            entries[at][1] = `${'['.repeat(depth)}${entries[at][1]}${']'.repeat(depth)}`;
          }
          break;
        case 4:
          if (entries[at]) entries.push([...entries[at]]);
          break;
      }
    }
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
  }
  const pool = WIRE_CORPUS.map((s) => Buffer.from(s));
  return mutateBytes(rng, rng.pick(pool), pool, WIRE_DICT, 1 + rng.size(7), 1 << 20).toString('utf8');
}

export function wireTarget(): Target {
  return {
    name: 'parse-request',
    description: 'parseRequest (hotline.v1 requests): never throws, answers bad_request with the id when readable, enforces the nesting limit',
    variants: REQUEST_LIMITS.length,
    describeVariant: (v) => REQUEST_LIMITS[v]?.[0] ?? '?',
    generate(rng) {
      return { variant: rng.int(REQUEST_LIMITS.length), splits: [], data: Buffer.from(generateWireText(rng)) };
    },
    check(input) {
      const limits = REQUEST_LIMITS[input.variant]?.[1];
      if (limits === undefined) return null;
      // What a connection hands the hub: the text frame as a string.
      const text = input.data.toString('utf8');
      const result = parseRequest(text, limits);
      outcome(result.ok ? `ok ${result.request.op}` : /nests/.test(result.message) ? 'bad_request (depth)' : result.id === undefined ? 'bad_request without id' : 'bad_request with id');
      if (text.length < 65536 && JSON.stringify(parseRequest(text, limits)) !== JSON.stringify(result)) return { key: 'nondeterministic', message: 'two parses disagree' };
      // The nesting limit applies to the text as written, valid JSON or not (it is checked first).
      const depth = textDepth(text);
      const depthAnswer = !result.ok && /nests objects and arrays deeper/.test(result.message);
      if (depth > limits.maxJsonDepth && !depthAnswer) return { key: 'depth-missed', message: `a request nested ${depth} deep (limit ${limits.maxJsonDepth}) was not refused for it` };
      if (depth <= limits.maxJsonDepth && depthAnswer) return { key: 'depth-false-alarm', message: `a request nested ${depth} deep (limit ${limits.maxJsonDepth}) was refused as too deep` };
      let value: unknown;
      let json = !depthAnswer;
      if (json) {
        try {
          value = JSON.parse(text);
        } catch {
          json = false;
        }
      }
      if (!result.ok) {
        if (result.code !== 'bad_request' || typeof result.message !== 'string' || result.message.length === 0) return { key: 'error-shape', message: JSON.stringify(result) };
        if (result.id !== undefined && !(Number.isSafeInteger(result.id) && result.id >= 0)) return { key: 'error-id', message: `err carries id ${String(result.id)}` };
        // The id is answered whenever it was readable.
        if (json && !depthAnswer && typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, 'id')) {
          const id = (value as Record<string, unknown>)['id'];
          if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 && result.id !== (id === 0 ? 0 : id)) return { key: 'error-lost-id', message: `bad_request without the readable id ${id}` };
        }
        try {
          JSON.parse(encodeErr(result.id, result.code, result.message));
        } catch (e) {
          return { key: 'err-encoding', message: `encodeErr: ${String(e)}` };
        }
        return null;
      }
      if (!json) return { key: 'accepted-invalid-json', message: 'a request that is not JSON was accepted' };
      const request = result.request as unknown as Record<string, unknown>;
      const fields = value as Record<string, unknown>;
      if (!REQUEST_OPS.includes(request['op'] as (typeof REQUEST_OPS)[number])) return { key: 'op', message: `accepted op ${String(request['op'])}` };
      if (!(Number.isSafeInteger(request['id']) && (request['id'] as number) >= 0) || request['id'] !== fields['id']) return { key: 'id', message: `accepted id ${String(request['id'])}` };
      const ch = request['ch'];
      if (ch !== undefined && (typeof ch !== 'string' || validateChannelName(ch, limits.maxChannelNameLength) !== null)) return { key: 'channel', message: `accepted channel ${JSON.stringify(ch)}` };
      if (['sub', 'unsub', 'pub', 'history', 'presence'].includes(request['op'] as string) && ch === undefined) return { key: 'channel-missing', message: 'accepted without a channel' };
      const since = request['since'] as { epoch?: unknown; offset?: unknown } | undefined;
      if (since !== undefined && !(typeof since.epoch === 'string' && since.epoch.length >= 1 && since.epoch.length <= MAX_EPOCH_LENGTH && Number.isSafeInteger(since.offset) && (since.offset as number) >= 0)) {
        return { key: 'since', message: `accepted since ${JSON.stringify(since)}` };
      }
      const key = request['key'];
      if (key !== undefined && !(typeof key === 'string' && key.length >= 1 && key.length <= limits.maxKeyLength)) return { key: 'key', message: `accepted key ${JSON.stringify(key)}` };
      const limit = request['limit'];
      if (limit !== undefined && !(Number.isSafeInteger(limit) && (limit as number) >= 1 && (limit as number) <= limits.maxHistoryLimit)) return { key: 'limit', message: `accepted limit ${String(limit)}` };
      const method = request['method'];
      if (request['op'] === 'rpc' && !(typeof method === 'string' && method.length >= 1 && method.length <= limits.maxMethodLength)) return { key: 'method', message: `accepted method ${JSON.stringify(method)}` };
      const token = request['token'];
      if (request['op'] === 'auth' && !(typeof token === 'string' && token.length >= 1 && token.length <= limits.maxTokenLength)) return { key: 'token', message: 'accepted a bad token' };
      if (request['op'] === 'pub' && !Object.hasOwn(request, 'data')) return { key: 'data', message: 'accepted a pub without data' };
      if (request['op'] === 'reply') {
        if (!(Number.isSafeInteger(request['call']) && (request['call'] as number) >= 0)) return { key: 'reply-call', message: `accepted call ${String(request['call'])}` };
        const error = request['error'] as { code?: unknown; message?: unknown } | undefined;
        if (Object.hasOwn(request, 'result') === (error !== undefined)) return { key: 'reply-shape', message: 'accepted a reply without exactly one of result and error' };
        if (error !== undefined && !(typeof error.code === 'string' && error.code.length >= 1 && error.code.length <= 64 && typeof error.message === 'string' && error.message.length <= 1024)) {
          return { key: 'reply-error', message: `accepted error ${JSON.stringify(error)}` };
        }
      }
      return null;
    },
  };
}
