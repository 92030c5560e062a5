/**
 * Close codes of RFC 6455 §7.4.1 and the IANA "WebSocket Close Code Number" registry.
 */
export const CloseCode = {
  /** The purpose of the connection is fulfilled; the ordinary goodbye. */
  NormalClosure: 1000,
  /** An endpoint is going away: a server shutting down (hotline's `closeAll()` default) or a connection idle past its timeout. */
  GoingAway: 1001,
  /** The peer broke RFC 6455: a bad frame, mask or close payload. Do not reconnect and repeat it. */
  ProtocolError: 1002,
  /** A message of a type the endpoint cannot accept (for example binary where only text is understood). */
  UnsupportedData: 1003,
  /** Reported locally when a close frame carried no code; never sent. */
  NoStatusReceived: 1005,
  /** Reported locally when the connection dropped without a close frame; never sent. */
  AbnormalClosure: 1006,
  /** A message's data did not match its type: a text message or close reason that is not valid UTF-8. */
  InvalidPayload: 1007,
  /**
   * A message broke the endpoint's policy. hotline sends it for a frame or message not
   * completed within `messageTimeout`, for a slow consumer under `slowConsumer: 'close'`,
   * and for sustained abuse of the channel protocol.
   */
  PolicyViolation: 1008,
  /** A frame or message was larger than the receiver's `maxPayload`. */
  MessageTooBig: 1009,
  /** Sent by a client when the server did not accept an extension the client requires. */
  MandatoryExtension: 1010,
  /** The endpoint hit an unexpected condition of its own (a failed send, a throwing handler), not the peer's fault. */
  InternalError: 1011,
  /** The service is restarting; reconnecting later is expected to succeed. */
  ServiceRestart: 1012,
  /**
   * The endpoint is temporarily overloaded; reconnect later. hotline sends it to a slow
   * consumer (`slowConsumer: 'try-again-later'`, and a channel subscriber too slow for its
   * replay) so that the client reconnects and recovers what it missed.
   */
  TryAgainLater: 1013,
  /** A gateway or proxy received an invalid response from the server behind it. */
  BadGateway: 1014,
  /** Reported locally when the TLS handshake failed; never sent. */
  TlsHandshake: 1015,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Whether `code` is in 3000–4999, the codes for libraries, frameworks and applications. */
export function isApplicationCloseCode(code: number): boolean {
  return Number.isInteger(code) && code >= 3000 && code <= 4999;
}

/**
 * Whether `code` may appear in a close frame on the wire: the registered codes that are
 * not reserved for local use (1005, 1006, 1015), and the 3000–4999 ranges for libraries,
 * frameworks and applications. 1004 and 1016–2999 are reserved and rejected.
 */
export function isValidWireCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  return (
    (code >= CloseCode.NormalClosure && code <= CloseCode.UnsupportedData) ||
    (code >= CloseCode.InvalidPayload && code <= CloseCode.BadGateway) ||
    isApplicationCloseCode(code)
  );
}

/** The reason of the 1001 a server that stops sends (before any reconnect hint), on WebSocket connections and SSE streams alike. */
export const SHUTTING_DOWN = 'server shutting down';
