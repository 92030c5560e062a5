import type { ReplyError } from '../wire/index.js';

/**
 * Why a command of the server API for users' or clients' connections failed (send,
 * disconnect, unsubscribe, call):
 * - `timeout`: no reply to a call within its timeout, or a node reached did not answer in time;
 * - `no_handler`: the client has no handler for the method it was called with;
 * - `handler_error`: the client's handler failed (its code and message are in `remote`);
 * - `client_gone`: no connection with that client id, or it closed before it replied;
 * - `too_many_pending`: the connection has its maximum of calls waiting for a reply, or this
 *   node its maximum of commands waiting for other nodes;
 * - `unavailable`: the engine cannot reach the other nodes (Redis is down).
 */
export type CallErrorCode = 'timeout' | 'no_handler' | 'handler_error' | 'client_gone' | 'too_many_pending' | 'unavailable';

/**
 * The rejection of a server API command for connections (`send`, `disconnect`,
 * `unsubscribe`, `call` on a user or client): `code` says which of the failures above it was.
 */
export class CallError extends Error {
  /** Always `'CallError'`. */
  override readonly name = 'CallError';
  constructor(
    /** Which failure: see {@link CallErrorCode}. */
    readonly code: CallErrorCode,
    message: string,
    /** With `handler_error` and `no_handler`: what the client answered. */
    readonly remote?: ReplyError,
  ) {
    super(message);
  }
}

const codes: ReadonlySet<string> = new Set<CallErrorCode>(['timeout', 'no_handler', 'handler_error', 'client_gone', 'too_many_pending', 'unavailable']);

export function isCallErrorCode(value: unknown): value is CallErrorCode {
  return typeof value === 'string' && codes.has(value);
}
