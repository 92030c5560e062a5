/**
 * Close codes of RFC 6455 §7.4.1 and the IANA "WebSocket Close Code Number" registry.
 */
export const CloseCode = {
  NormalClosure: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Reported locally when a close frame carried no code; never sent. */
  NoStatusReceived: 1005,
  /** Reported locally when the connection dropped without a close frame; never sent. */
  AbnormalClosure: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
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
