/** The WebSocket subprotocol name of hotline's channel protocol, offered by clients and chosen by the server. */
export const SUBPROTOCOL = 'hotline.v1';

/** The `code` of an `err` message: why a request failed. */
export const ErrorCode = {
  /** The request is not valid JSON, not an object, has a bad field or an unknown op. */
  BadRequest: 'bad_request',
  /** The connection has no valid credentials for this request. */
  Unauthorized: 'unauthorized',
  /** The credentials are fine but do not allow this request. */
  Forbidden: 'forbidden',
  /** The thing asked for does not exist, such as an rpc method. */
  NotFound: 'not_found',
  /** The connection sends faster than its limit allows. */
  RateLimited: 'rate_limited',
  /** The request is over a size or count limit. */
  TooLarge: 'too_large',
  /** The server failed; the request may be retried. */
  Internal: 'internal',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const errorCodes: ReadonlySet<string> = new Set(Object.values(ErrorCode));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && errorCodes.has(value);
}
