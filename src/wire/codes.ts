/** The WebSocket subprotocol name of hotline's channel protocol, offered by clients and chosen by the server. */
export const SUBPROTOCOL = 'hotline.v1';

/**
 * The close codes a hotline.v1 server ends a connection with, beyond the WebSocket
 * protocol's own (RFC 6455 names where the code is registered). Clients tell a drop to
 * recover from (1012, 1013) from a refusal not to retry as it is (1008, 1009, 4401).
 */
export const ChannelCloseCode = {
  /** Sustained abuse: too many bad or rate-limited requests. */
  PolicyViolation: 1008,
  /**
   * A message larger than the endpoint's maximum size (the WebSocket protocol closes with it):
   * sending the same request again would bring the same close, so the SDK does not.
   */
  MessageTooBig: 1009,
  /** A channel's stream could not be re-read after an engine outage: subscribe afresh. */
  ServiceRestart: 1012,
  /** Too slow for a channel's messages: reconnect and recover what was missed. */
  TryAgainLater: 1013,
  /**
   * The credentials expired and were not refreshed within the grace period. hotline's own
   * codes are from the 4000–4999 range RFC 6455 §7.4.2 leaves to applications and mirror
   * HTTP statuses; the SDK treats them as final (it does not reconnect).
   */
  Unauthorized: 4401,
  /** Authenticated, but not allowed: an application's refusal (the SDK does not reconnect). */
  Forbidden: 4403,
} as const;

export type ChannelCloseCode = (typeof ChannelCloseCode)[keyof typeof ChannelCloseCode];

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
