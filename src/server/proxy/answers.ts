/**
 * What the server POSTs to each proxy hook, and what the backend must answer: the types
 * (documented with examples in docs/serve/proxy.md) and the checks of the answers. An
 * answer outside its shape is the backend's bug: the check throws a BackendFailure
 * (`malformed`) naming the field, which is logged, and the client is told `internal`.
 */
import { isErrorCode, MAX_REPLY_MESSAGE_LENGTH, type ErrorCode, type Json, type JsonObject } from '../../wire/index.js';
import { BackendFailure } from './backend.js';

/** What every hook is told about the connection. */
export interface ProxyRequestBase {
  /** The connection's client id (`NODE.N`), as the server API and the inspector name it. */
  client: string;
  /** How the client is connected: `websocket` (/ws). */
  transport: 'websocket';
  /** The user the connection is authenticated as; absent when anonymous. */
  user?: string;
  /** The upgrade request's headers the hook lists (lower-case names), those the request had. */
  headers: Record<string, string>;
}

/** POSTed to `connect` before the upgrade is answered. */
export interface ConnectRequest extends ProxyRequestBase {
  /** The upgrade's path and query string (`/ws?room=1`). */
  url: string;
  /** The client's address: the peer's, or behind `--trust-proxy` the one the trusted proxies forwarded. */
  address: string;
}
export interface SubscribeRequest extends ProxyRequestBase {
  channel: string;
}
export interface PublishRequest extends ProxyRequestBase {
  channel: string;
  data: Json;
}
export interface RpcRequest extends ProxyRequestBase {
  method: string;
  /** Absent when the client sent none. */
  params?: Json;
}

/** A refusal of a subscribe or publish: `code` answers the client (default `forbidden`), with `reason` as its message. */
export interface Denial {
  allow: false;
  code?: ErrorCode;
  reason?: string;
}

/**
 * `connect`'s answer: let the connection in, as `user` (absent: anonymous) with `info` (its
 * presence member's public data) until `expiresAt` (ms since the epoch); or refuse the
 * upgrade with `status` 401 or 403 (default 403) and `reason`.
 */
export type ConnectAnswer =
  | { allow: true; user?: string; info?: JsonObject; expiresAt?: number }
  | { allow: false; status?: 401 | 403; reason?: string };
/** `subscribe`'s answer. */
export type SubscribeAnswer = { allow: true } | Denial;
/** `publish`'s answer: `data`, when present, is published instead of what the client sent. */
export type PublishAnswer = { allow: true; data?: Json } | Denial;
/** `rpc`'s answer: the method's `result` (null included), or an `error` the client is answered with. */
export type RpcAnswer = { result: Json } | { error: { code: ErrorCode; message?: string } };

/** The longest `user` a backend may name. */
const MAX_USER_LENGTH = 256;

export function connectAnswer(answer: unknown): ConnectAnswer {
  const o = object(answer, 'the answer');
  if (allowed(o)) {
    const user = optional(o, 'user', 'a string of 1 to 256 characters', (v) => typeof v === 'string' && v.length > 0 && v.length <= MAX_USER_LENGTH) as string | undefined;
    const info = optional(o, 'info', 'an object', isObject) as JsonObject | undefined;
    const expiresAt = optional(o, 'expiresAt', 'a time in ms since the epoch', (v) => typeof v === 'number' && Number.isFinite(v) && v > 0) as number | undefined;
    return { allow: true, user, info, expiresAt };
  }
  const status = optional(o, 'status', '401 or 403', (v) => v === 401 || v === 403) as 401 | 403 | undefined;
  return { allow: false, status, reason: reason(o) };
}

export function subscribeAnswer(answer: unknown): SubscribeAnswer {
  const o = object(answer, 'the answer');
  return allowed(o) ? { allow: true } : denial(o);
}

export function publishAnswer(answer: unknown): PublishAnswer {
  const o = object(answer, 'the answer');
  if (!allowed(o)) return denial(o);
  return Object.hasOwn(o, 'data') ? { allow: true, data: o.data as Json } : { allow: true };
}

export function rpcAnswer(answer: unknown): RpcAnswer {
  const o = object(answer, 'the answer');
  if (Object.hasOwn(o, 'result')) return { result: o.result as Json };
  if (!Object.hasOwn(o, 'error')) throw malformed('the answer has neither `result` nor `error`');
  const error = object(o.error, '`error`');
  const code = error.code;
  if (!isErrorCode(code)) throw malformed(`\`error.code\` must be a hotline error code (bad_request, unauthorized, forbidden, not_found, rate_limited, too_large, internal), not ${JSON.stringify(code)}`);
  return { error: { code, message: optional(error, 'message', `a string of at most ${MAX_REPLY_MESSAGE_LENGTH} characters`, isMessage) as string | undefined } };
}

function allowed(o: Record<string, unknown>): boolean {
  if (typeof o.allow !== 'boolean') throw malformed('`allow` must be true or false');
  return o.allow;
}

function denial(o: Record<string, unknown>): Denial {
  const code = optional(o, 'code', 'a hotline error code', isErrorCode) as ErrorCode | undefined;
  return { allow: false, code, reason: reason(o) };
}

function reason(o: Record<string, unknown>): string | undefined {
  return optional(o, 'reason', `a string of at most ${MAX_REPLY_MESSAGE_LENGTH} characters`, isMessage) as string | undefined;
}

function isMessage(value: unknown): boolean {
  return typeof value === 'string' && value.length <= MAX_REPLY_MESSAGE_LENGTH;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (!isObject(value)) throw malformed(`${what} must be a JSON object`);
  return value;
}

/** A field that may be absent (or null); present, it must pass `valid`. */
function optional(o: Record<string, unknown>, field: string, expected: string, valid: (value: unknown) => boolean): unknown {
  const value = o[field];
  if (value === undefined || value === null) return undefined;
  if (!valid(value)) throw malformed(`\`${field}\` must be ${expected}`);
  return value;
}

function malformed(message: string): BackendFailure {
  return new BackendFailure('malformed', message);
}
