import { CloseCode } from './close-code.js';

/** Machine-readable identifiers of every error hotline's protocol core raises. */
export type ProtocolErrorCode =
  | 'RESERVED_BITS'
  | 'RESERVED_OPCODE'
  | 'MASK_REQUIRED'
  | 'MASK_FORBIDDEN'
  | 'CONTROL_FRAME_TOO_LONG'
  | 'CONTROL_FRAME_FRAGMENTED'
  | 'UNEXPECTED_CONTINUATION'
  | 'EXPECTED_CONTINUATION'
  | 'NON_MINIMAL_LENGTH'
  | 'LENGTH_MSB_SET'
  | 'MESSAGE_TOO_BIG'
  | 'INVALID_UTF8'
  /** A permessage-deflate message did not inflate. */
  | 'INVALID_COMPRESSED_DATA'
  | 'INVALID_CLOSE_PAYLOAD'
  | 'INVALID_CLOSE_CODE'
  | 'UNEXPECTED_EOF'
  /** The connection was failed by this side, for a reason of its own (for example 1011). */
  | 'LOCAL_FAILURE';

/**
 * A violation of RFC 6455 by the peer. `closeCode` is what the connection is failed with.
 */
export class ProtocolError extends Error {
  /** Always `'ProtocolError'`, so logs tell it apart from other errors. */
  override readonly name = 'ProtocolError';
  constructor(
    /** Which rule was broken; stable, unlike the message. */
    readonly code: ProtocolErrorCode,
    /**
     * The close code the connection is failed with: 1002 for most violations, 1007 for bad
     * UTF-8, 1009 for a message over `maxPayload`; for `LOCAL_FAILURE`, the code this side chose.
     */
    readonly closeCode: CloseCode,
    message: string,
  ) {
    super(message);
  }
}

/** Machine-readable identifiers of every way an opening handshake can fail, on either side. */
export type HandshakeErrorCode =
  | 'HEAD_TOO_LARGE'
  | 'MALFORMED_HTTP'
  | 'METHOD_NOT_ALLOWED'
  /** HTTP/1.0 (400): the upgrade needs HTTP/1.1. */
  | 'HTTP_VERSION'
  /** A major version other than 1 (505). */
  | 'HTTP_VERSION_NOT_SUPPORTED'
  | 'MISSING_HOST'
  | 'NOT_UPGRADE'
  | 'CONNECTION_NOT_UPGRADE'
  | 'BAD_KEY'
  | 'UNSUPPORTED_VERSION'
  | 'BAD_PROTOCOL_HEADER'
  | 'BAD_EXTENSION_HEADER'
  | 'ORIGIN_FORBIDDEN'
  | 'UNEXPECTED_STATUS'
  | 'BAD_ACCEPT'
  | 'UNEXPECTED_PROTOCOL'
  | 'UNEXPECTED_EXTENSION'
  | 'BAD_EXTENSION_RESPONSE';

/**
 * A failed opening handshake. On the server side `status` (and `headers`) say what HTTP
 * response answers it; on the client side `status` is the server's status, if any.
 */
export class HandshakeError extends Error {
  /** Always `'HandshakeError'`. */
  override readonly name = 'HandshakeError';
  constructor(
    /** What was wrong; stable, unlike the message. */
    readonly code: HandshakeErrorCode,
    /** Server side: the HTTP status to refuse with (400, 403, 405, 426, 431, 505). Client side: the status the server sent. */
    readonly status: number,
    message: string,
    /** Header fields the refusal must carry, such as `Allow: GET` for 405 or `Sec-WebSocket-Version: 13` for 426. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** An operation that the connection's current state does not allow (for example, sending after close). */
export class InvalidStateError extends Error {
  /** Always `'InvalidStateError'`, the name the browser's DOMException uses for the same mistake. */
  override readonly name = 'InvalidStateError';
  /** Always `'INVALID_STATE'`. */
  readonly code = 'INVALID_STATE';
}

export { CloseCode };
