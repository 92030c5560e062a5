import type { ErrorCode } from '../wire/index.js';

/**
 * An error an application hook or rpc handler throws to answer a request with a given
 * `err` code and message, for example `new ChannelError('forbidden', 'members only')`.
 * Anything else thrown is answered as `internal` and reported on the server.
 */
export class ChannelError extends Error {
  /** Always `'ChannelError'`. */
  override readonly name = 'ChannelError';
  constructor(
    /** The `err` reply's `code`, such as `forbidden` or `not_found`; the client sees it and the message. */
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
