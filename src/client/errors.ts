import type { ErrorCode } from '../wire/index.js';

/** Why a client request failed: a server `err` code, or one of the client's own. */
export type ClientErrorCode =
  | ErrorCode
  /** No answer within the request's timeout. */
  | 'timeout'
  /** The request waited for a connection longer than the queue allows, or the queue was full. */
  | 'queue_full'
  | 'queue_timeout'
  /** The connection dropped before an answer to a request that is not safe to repeat (rpc). */
  | 'disconnected'
  /** The client was closed. */
  | 'closed'
  /** The request was withdrawn (a subscribe followed by unsubscribe before the answer). */
  | 'cancelled'
  /**
   * A connection attempt failed before it opened: the network, or the server refused the
   * upgrade (`status` says with what, where the platform reveals it; 401 and 403 are
   * `unauthorized` and `forbidden` instead).
   */
  | 'connect_failed';

/**
 * Every failure the client reports: a rejected request, a refused subscription, a
 * connection that could not get in. Branch on `code`, not on the message.
 */
export class HotlineError extends Error {
  /** Always `'HotlineError'`. */
  override readonly name = 'HotlineError';
  constructor(
    /** The server's `err` code, or one of the client's own (see {@link ClientErrorCode}). */
    readonly code: ClientErrorCode,
    message: string,
    /** The HTTP status the server refused the upgrade with, when known. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Why a request fails once the client is closed. */
export const closedError = (): HotlineError => new HotlineError('closed', 'the client was closed');
