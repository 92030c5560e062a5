import { CallError, ChannelError, EngineUnavailableError } from '../../channels/index.js';

/**
 * The `code` of an HTTP API error body: the hotline.v1 codes where the meaning is the same
 * (`bad_request`, `unauthorized`, `forbidden`, `not_found`, `rate_limited`, `too_large`,
 * `internal`), the server API's (`timeout`, `unavailable`, `too_many_pending`), and the
 * HTTP ones a request can fail with before it reaches a method.
 */
export type ApiErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'request_timeout'
  | 'too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'too_many_pending'
  | 'timeout'
  | 'unavailable'
  | 'internal';

/** The HTTP status of each code: one home for the mapping the handler and the OpenAPI document share. */
export const API_ERROR_STATUS: Readonly<Record<ApiErrorCode, number>> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  too_many_pending: 503,
  unavailable: 503,
  timeout: 504,
};

/** A request the API refuses, with its code; the status follows from the code unless given. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    status?: number,
  ) {
    super(message);
    this.status = status ?? API_ERROR_STATUS[code];
  }
}

/**
 * What the server API threw, as the HTTP API answers it. A channel's `too_large` (data over
 * maxDataLength) is a bad field, 400, not the body cap's 413. Anything unknown is
 * `internal`, its message kept to the server's log.
 */
export function apiErrorOf(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ChannelError) {
    const code: ApiErrorCode = error.code === 'unauthorized' ? 'forbidden' : error.code;
    return new ApiError(code, error.message, code === 'too_large' ? 400 : undefined);
  }
  if (error instanceof CallError) {
    if (error.code === 'timeout' || error.code === 'unavailable' || error.code === 'too_many_pending') return new ApiError(error.code, error.message);
    return new ApiError('internal', error.message);
  }
  if (error instanceof EngineUnavailableError) return new ApiError('unavailable', error.message);
  return new ApiError('internal', 'the server failed; the request may be retried');
}
