import { validateChannelName } from './channel-name.js';
import { ErrorCode } from './codes.js';
import { hasNonFiniteNumber } from './finite.js';
import { exceedsJsonDepth } from './json-depth.js';
import { DEFAULT_WIRE_LIMITS, MAX_EPOCH_LENGTH, MAX_REPLY_CODE_LENGTH, MAX_REPLY_MESSAGE_LENGTH, type WireLimits } from './limits.js';
import { REQUEST_OPS, type ClientRequest, type HistoryRequest, type Json, type JsonObject, type PubRequest, type ReplyError, type RequestOp, type Since, type SubRequest } from './messages.js';

export type ParseRequestResult =
  | { ok: true; request: ClientRequest }
  | { ok: false; id?: number; code: ErrorCode; message: string };

type Fields = Record<string, unknown>;

/** A reason a field is wrong; thrown inside the parser and turned into an `err` with the id. */
class FieldError {
  constructor(readonly message: string) {}
}

const requestOps: ReadonlySet<string> = new Set(REQUEST_OPS);

/**
 * Reads one client request from the text of a frame. Never throws: anything wrong comes
 * back as a bad_request with a message naming the problem, and with the request's `id`
 * whenever the id itself was readable and valid, so the client can match the error to
 * its request. Unknown fields are ignored and left out of the result.
 */
export function parseRequest(text: string, limits: WireLimits = DEFAULT_WIRE_LIMITS): ParseRequestResult {
  if (exceedsJsonDepth(text, limits.maxJsonDepth)) {
    return badRequest(undefined, `the message nests objects and arrays deeper than ${limits.maxJsonDepth} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return badRequest(undefined, 'the message is not valid JSON');
  }
  if (!isObject(value)) return badRequest(undefined, 'a request must be a JSON object');
  return readValue(value, limits);
}

/**
 * Reads a request already decoded into an object (by JSON.parse, or from msgpack with its
 * bytes in their JSON form): the checks after the encoding's own.
 */
export function parseRequestObject(value: Record<string, unknown>, limits: WireLimits = DEFAULT_WIRE_LIMITS): ParseRequestResult {
  return readValue(value, limits);
}

function readValue(value: Fields, limits: WireLimits): ParseRequestResult {

  const rawId = own(value, 'id');
  if (rawId === undefined) return badRequest(undefined, '"id" is required');
  const id = nonNegativeInteger(rawId);
  if (id === undefined) return badRequest(undefined, '"id" must be a non-negative integer');

  const op = own(value, 'op');
  if (op === undefined) return badRequest(id, '"op" is required');
  if (typeof op !== 'string') return badRequest(id, '"op" must be a string');
  if (!requestOps.has(op)) {
    return badRequest(id, `unknown op ${quote(op)}; the ops are ${REQUEST_OPS.join(', ')}`);
  }
  try {
    return { ok: true, request: readRequest(op as RequestOp, id, value, limits) };
  } catch (error) {
    if (error instanceof FieldError) return badRequest(id, error.message);
    throw error;
  }
}

/** A token (`auth`'s, or a `sub`'s subscription token): a non-empty string within maxTokenLength. */
function tokenField(token: unknown, limits: WireLimits): string {
  if (typeof token !== 'string' || token.length === 0 || token.length > limits.maxTokenLength) {
    throw new FieldError(`"token" must be a non-empty string of at most ${limits.maxTokenLength} characters`);
  }
  return token;
}

function readRequest(op: RequestOp, id: number, fields: Fields, limits: WireLimits): ClientRequest {
  switch (op) {
    case 'sub': {
      const ch = channel(fields, limits);
      const since = readSince(fields);
      const request: SubRequest = since === undefined ? { op, id, ch } : { op, id, ch, since };
      const token = own(fields, 'token');
      if (token !== undefined) request.token = tokenField(token, limits);
      const sender = own(fields, 'sender');
      if (sender !== undefined) request.sender = keyField(sender, '"sender"', limits);
      return request;
    }
    case 'unsub':
      return { op, id, ch: channel(fields, limits) };
    case 'pub': {
      const ch = channel(fields, limits);
      if (!Object.hasOwn(fields, 'data')) throw new FieldError('"data" is required (null is allowed)');
      const data = finiteJson(fields['data'], '"data"');
      const key = own(fields, 'key');
      const sender = own(fields, 'sender');
      const ephemeral = own(fields, 'ephemeral');
      if (key === undefined && sender === undefined && ephemeral === undefined) return { op, id, ch, data };
      const request: PubRequest = { op, id, ch, data };
      if (key !== undefined) request.key = keyField(key, '"key"', limits);
      if (sender !== undefined) request.sender = keyField(sender, '"sender"', limits);
      if (ephemeral !== undefined && ephemeral !== false) {
        if (ephemeral !== true) throw new FieldError('"ephemeral" must be true or false');
        // Nothing is stored, so nothing could recognise a repeat.
        if (key !== undefined) throw new FieldError('an ephemeral publish takes no "key": it is never stored, so it cannot be deduplicated');
        request.ephemeral = true;
      }
      return request;
    }
    case 'state': {
      const ch = channel(fields, limits);
      const state = own(fields, 'state');
      if (state === undefined) return { op, id, ch };
      if (!isObject(state)) throw new FieldError('"state" must be a JSON object (or null to clear it)');
      return { op, id, ch, state: finiteJson(state, '"state"') as JsonObject };
    }
    case 'presence':
      return { op, id, ch: channel(fields, limits) };
    case 'history': {
      const ch = channel(fields, limits);
      const request: HistoryRequest = { op, id, ch };
      const rawLimit = own(fields, 'limit');
      if (rawLimit !== undefined) {
        const limit = nonNegativeInteger(rawLimit);
        if (limit === undefined || limit < 1 || limit > limits.maxHistoryLimit) {
          throw new FieldError(`"limit" must be an integer from 1 to ${limits.maxHistoryLimit}`);
        }
        request.limit = limit;
      }
      const rawBefore = own(fields, 'before');
      if (rawBefore !== undefined) {
        const before = nonNegativeInteger(rawBefore);
        if (before === undefined) throw new FieldError('"before" must be a non-negative integer (an offset)');
        request.before = before;
      }
      return request;
    }
    case 'rpc': {
      const method = own(fields, 'method');
      if (method === undefined) throw new FieldError('"method" is required');
      if (typeof method !== 'string' || method.length === 0 || method.length > limits.maxMethodLength) {
        throw new FieldError(`"method" must be a non-empty string of at most ${limits.maxMethodLength} characters`);
      }
      // null is a value here: the method gets exactly what the client sent.
      if (!Object.hasOwn(fields, 'params')) return { op, id, method };
      return { op, id, method, params: finiteJson(fields['params'], '"params"') };
    }
    case 'ping':
      return { op, id };
    case 'auth':
      return { op, id, token: tokenField(own(fields, 'token'), limits) };
    case 'reply': {
      const rawCall = own(fields, 'call');
      if (rawCall === undefined) throw new FieldError('"call" is required');
      const call = nonNegativeInteger(rawCall);
      if (call === undefined) throw new FieldError('"call" must be a non-negative integer');
      // null is a value for result, as for data: the server gets what the handler returned.
      const hasResult = Object.hasOwn(fields, 'result');
      const rawError = own(fields, 'error');
      if (hasResult === (rawError !== undefined)) throw new FieldError('a reply carries exactly one of "result" and "error"');
      if (hasResult) return { op, id, call, result: finiteJson(fields['result'], '"result"') };
      return { op, id, call, error: replyError(rawError) };
    }
  }
}

function replyError(value: unknown): ReplyError {
  if (!isObject(value)) throw new FieldError('"error" must be an object with "code" and "message"');
  const code = own(value, 'code');
  if (typeof code !== 'string' || code.length === 0 || code.length > MAX_REPLY_CODE_LENGTH) {
    throw new FieldError(`"error.code" must be a non-empty string of at most ${MAX_REPLY_CODE_LENGTH} characters`);
  }
  const message = own(value, 'message');
  if (typeof message !== 'string' || message.length > MAX_REPLY_MESSAGE_LENGTH) {
    throw new FieldError(`"error.message" must be a string of at most ${MAX_REPLY_MESSAGE_LENGTH} characters`);
  }
  return { code, message };
}

function channel(fields: Fields, limits: WireLimits): string {
  const ch = own(fields, 'ch');
  if (ch === undefined) throw new FieldError('"ch" is required');
  if (typeof ch !== 'string') throw new FieldError('"ch" must be a string');
  const problem = validateChannelName(ch, limits.maxChannelNameLength);
  if (problem !== null) throw new FieldError(`"ch" must be a channel name: ${problem}`);
  return ch;
}

function keyField(value: unknown, name: string, limits: WireLimits): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > limits.maxKeyLength) {
    throw new FieldError(`${name} must be a non-empty string of at most ${limits.maxKeyLength} characters`);
  }
  return value;
}

/** The value as JSON to pass on: refused when it holds a number JSON cannot write back. */
function finiteJson(value: unknown, name: string): Json {
  if (hasNonFiniteNumber(value)) throw new FieldError(`${name} holds a number too large for JSON (such as 1e400)`);
  return value as Json;
}

function readSince(fields: Fields): Since | undefined {
  const since = own(fields, 'since');
  if (since === undefined) return undefined;
  if (!isObject(since)) throw new FieldError('"since" must be an object with "epoch" and "offset"');
  const epoch = own(since, 'epoch');
  if (epoch === undefined) throw new FieldError('"since.epoch" is required');
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH) {
    throw new FieldError(`"since.epoch" must be a non-empty string of at most ${MAX_EPOCH_LENGTH} characters`);
  }
  const rawOffset = own(since, 'offset');
  if (rawOffset === undefined) throw new FieldError('"since.offset" is required');
  const offset = nonNegativeInteger(rawOffset);
  if (offset === undefined) throw new FieldError('"since.offset" must be a non-negative integer');
  return { epoch, offset };
}

function badRequest(id: number | undefined, message: string): ParseRequestResult {
  return id === undefined
    ? { ok: false, code: ErrorCode.BadRequest, message }
    : { ok: false, id, code: ErrorCode.BadRequest, message };
}

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A field's value, undefined when absent. Null counts as absent too, as encoders in other
 * languages write a missing value; only `data` and `params` read null as a value. Own
 * properties only: a name like "constructor" must not find Object.prototype's.
 */
function own(fields: Fields, name: string): unknown {
  return Object.hasOwn(fields, name) ? (fields[name] ?? undefined) : undefined;
}

/** The value as a non-negative safe integer (-0 becomes 0), or undefined. */
function nonNegativeInteger(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) return undefined;
  return value === 0 ? 0 : value;
}

/** A client-supplied string for an error message: JSON-quoted and cut short. */
function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}
