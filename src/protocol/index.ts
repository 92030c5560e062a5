/**
 * hotline/protocol: the sans-I/O WebSocket core (RFC 6455). Bytes in, events and bytes
 * out; no sockets, no timers. Bring your own transport: the opening handshake of both
 * sides (an HTTP head parser, request and response checks and builders) is here too, so a
 * transport needs nothing else. permessage-deflate (RFC 7692) is negotiated here and
 * compressed by a codec the transport supplies.
 */
export { CloseCode, isApplicationCloseCode, isValidWireCloseCode } from './close-code.js';
export {
  encodeClosePayload,
  parseClosePayload,
  MAX_CLOSE_REASON_BYTES,
  type CloseInfo,
} from './close-frame.js';
export {
  HandshakeError,
  InvalidStateError,
  ProtocolError,
  type HandshakeErrorCode,
  type ProtocolErrorCode,
} from './errors.js';
export type { DeflateCodec } from './deflate-codec.js';
export {
  buildClientRequest,
  buildServerResponse,
  computeAccept,
  generateKey,
  validateClientRequest,
  validateServerResponse,
  WEBSOCKET_GUID,
  type AcceptedRequest,
  type ClientRequestOptions,
  type ProtocolChooser,
  type ServerHandshakeOptions,
} from './handshake.js';
export { buildRejectResponse } from './reject-response.js';
export {
  HttpHeadParser,
  type HttpHead,
  type HttpHeadFields,
  type HttpHeadKind,
  type HttpRequestHead,
  type HttpResponseHead,
} from './http-head.js';
export { formatExtensions, parseExtensions, type ExtensionOffer } from './extensions-header.js';
export {
  acceptDeflateResponse,
  deflateClientOffer,
  negotiateDeflateServer,
  PERMESSAGE_DEFLATE,
  type DeflateClientOptions,
  type DeflateParams,
  type DeflateServerOptions,
} from './permessage-deflate.js';
export { FrameDecoder, type FrameDecoderOptions, type FrameSink } from './frame-decoder.js';
export {
  encodeFrame,
  encodeFrameHeader,
  encodeTextFrame,
  type FrameOptions,
} from './frame-encoder.js';
export { maskInPlace } from './mask.js';
export { isSameOrigin, parseOrigin, sameOrigin, type OriginCheck } from './origin.js';
export {
  isControlOpcode,
  MAX_CONTROL_PAYLOAD,
  Opcode,
  RSV1,
  RSV2,
  RSV3,
  type ControlOpcode,
  type DataOpcode,
  type Role,
} from './opcode.js';
export { isValidUtf8, Utf8Validator } from './utf8.js';
export {
  DEFAULT_MAX_PAYLOAD,
  ProtocolState,
  WebSocketProtocol,
  type ProtocolHandler,
  type ProtocolOptions,
  type SendOptions,
} from './websocket-protocol.js';
