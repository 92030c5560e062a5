import { ErrorCode, isErrorCode } from './codes.js';
import type { HistoryEntry, Json, Member, OkReply, ReplyTo, RequestOp, ServerMessage } from './messages.js';

type Fields = Record<string, unknown>;

/**
 * Reads one message from the server, for the SDK. Returns null for anything that is not a
 * well-formed hotline.v1 server message, including ops from a newer server, which the
 * SDK ignores. What it returns can be trusted as far as `op`, `id`, `ch` and `offset` go,
 * and every other known field that is present has its documented type. Never throws.
 */
export function parseServerMessage(text: string): ServerMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return readServerMessage(value);
}

/** {@link parseServerMessage} for a message already decoded (from msgpack): null for anything but a well-formed server message. */
export function readServerMessage(value: unknown): ServerMessage | null {
  if (!isObject(value)) return null;
  switch (own(value, 'op')) {
    case 'ok':
      return readOk(value);
    case 'pong': {
      const id = messageId(own(value, 'id'));
      return id === undefined ? null : { op: 'pong', id };
    }
    case 'msg': {
      const ch = own(value, 'ch');
      const offset = counter(own(value, 'offset'));
      if (typeof ch !== 'string' || offset === undefined || !Object.hasOwn(value, 'data')) return null;
      return { op: 'msg', ch, offset, data: value['data'] as Json };
    }
    case 'ephemeral': {
      const ch = own(value, 'ch');
      const client = own(value, 'client');
      if (typeof ch !== 'string' || !Object.hasOwn(value, 'data') || (client !== undefined && typeof client !== 'string')) return null;
      return client === undefined ? { op: 'ephemeral', ch, data: value['data'] as Json } : { op: 'ephemeral', ch, client, data: value['data'] as Json };
    }
    case 'join':
    case 'leave':
    case 'update': {
      const ch = own(value, 'ch');
      const member = own(value, 'member');
      if (typeof ch !== 'string' || !isObject(member)) return null;
      return { op: value['op'] as 'join' | 'leave' | 'update', ch, member: member as Member };
    }
    case 'call': {
      const call = counter(own(value, 'call'));
      const method = own(value, 'method');
      const timeout = counter(own(value, 'timeout'));
      if (call === undefined || typeof method !== 'string' || timeout === undefined) return null;
      return { op: 'call', call, method, params: Object.hasOwn(value, 'params') ? (value['params'] as Json) : null, timeout };
    }
    case 'message':
      return Object.hasOwn(value, 'data') ? { op: 'message', data: value['data'] as Json } : null;
    case 'err':
      return readErr(value);
    case 'unsub': {
      const ch = own(value, 'ch');
      const rawCode = own(value, 'code');
      const message = own(value, 'message');
      if (typeof ch !== 'string' || typeof rawCode !== 'string' || typeof message !== 'string') return null;
      return { op: 'unsub', ch, code: isErrorCode(rawCode) ? rawCode : ErrorCode.Internal, message };
    }
    default:
      return null;
  }
}

function readErr(value: Fields): ServerMessage | null {
  const rawId = own(value, 'id');
  const id = rawId === undefined ? undefined : messageId(rawId);
  if (rawId !== undefined && id === undefined) return null;
  const rawCode = own(value, 'code');
  const message = own(value, 'message');
  if (typeof rawCode !== 'string' || typeof message !== 'string') return null;
  // A code from a newer server still fails the request; 'internal' is the closest we know.
  const code = isErrorCode(rawCode) ? rawCode : ErrorCode.Internal;
  return id === undefined ? { op: 'err', code, message } : { op: 'err', id, code, message };
}

/**
 * An ok reply does not say which request it answers; its id does. So every known field is
 * checked when present, and {@link replyFor} checks the ones a given op needs.
 */
function readOk(value: Fields): OkReply | null {
  const id = messageId(own(value, 'id'));
  if (id === undefined) return null;
  const reply: Fields = { op: 'ok', id };
  for (const [name, check] of okFieldChecks) {
    if (!Object.hasOwn(value, name)) continue;
    const field = value[name];
    if (!check(field)) return null;
    reply[name] = field;
  }
  return reply as unknown as OkReply;
}

const okFieldChecks: ReadonlyArray<readonly [string, (value: unknown) => boolean]> = [
  ['epoch', (value) => typeof value === 'string'],
  ['offset', (value) => counter(value) !== undefined],
  ['recovered', (value) => typeof value === 'boolean'],
  ['delivered', (value) => counter(value) !== undefined],
  ['members', (value) => Array.isArray(value) && value.every(isObject)],
  ['messages', (value) => Array.isArray(value) && value.every(isHistoryEntry)],
  ['more', (value) => typeof value === 'boolean'],
  ['count', (value) => counter(value) !== undefined],
  ['client', (value) => typeof value === 'string'],
  ['truncated', (value) => typeof value === 'boolean'],
  ['joinLeave', (value) => typeof value === 'boolean'],
  ['expiresAt', (value) => typeof value === 'number' && Number.isFinite(value)],
  ['result', () => true],
];

/** The fields each op's ok reply must have. */
const requiredFields: { readonly [Op in RequestOp]: readonly string[] } = {
  sub: ['epoch', 'offset', 'recovered'],
  unsub: [],
  // An ephemeral publish has no offset: the SDK checks it for the others.
  pub: ['delivered'],
  state: [],
  presence: ['count'],
  history: ['epoch', 'messages'],
  rpc: ['result'],
  ping: [],
  auth: [],
  reply: [],
};

/**
 * The reply narrowed to the answer of a request with `op`, or null when it lacks a field
 * that answer needs (a server bug, which the SDK reports rather than trusts).
 */
export function replyFor<Op extends RequestOp>(op: Op, message: ServerMessage): ReplyTo[Op] | null {
  if (op === 'ping') return (message.op === 'pong' ? message : null) as ReplyTo[Op] | null;
  if (message.op !== 'ok') return null;
  for (const name of requiredFields[op]) if (!Object.hasOwn(message, name)) return null;
  return message as ReplyTo[Op];
}

function isHistoryEntry(value: unknown): value is HistoryEntry {
  return isObject(value) && counter(own(value, 'offset')) !== undefined && Object.hasOwn(value, 'data');
}

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function own(fields: Fields, name: string): unknown {
  return Object.hasOwn(fields, name) ? fields[name] : undefined;
}

/** Ids and offsets are non-negative safe integers. */
function counter(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) return undefined;
  return value === 0 ? 0 : value;
}

const messageId = counter;
