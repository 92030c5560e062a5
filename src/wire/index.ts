/**
 * The hotline.v1 channel protocol: its messages, their validation and their encoding,
 * shared by the server and the SDK. Imports nothing but @msgpack/msgpack (for the msgpack
 * encoding), so it runs in browsers as it is.
 */
export { SUBPROTOCOL, ChannelCloseCode, ErrorCode, isErrorCode } from './codes.js';
export { MAX_RECONNECT_WINDOW, reconnectWindowOf, withReconnectHint } from './reconnect-hint.js';
export {
  REQUEST_OPS,
  type ChannelMessage,
  type ClientRequest,
  type Data,
  type DirectMessage,
  type ErrorMessage,
  type HistoryEntry,
  type HistoryOk,
  type HistoryRequest,
  type Join,
  type Json,
  type JsonObject,
  type Leave,
  type Update,
  type EphemeralMessage,
  type EphemeralPubOk,
  type StateRequest,
  type Member,
  type OkReply,
  type PingRequest,
  type Pong,
  type PresenceOk,
  type PresenceRequest,
  type PubOk,
  type PubRequest,
  type ReplyError,
  type ReplyRequest,
  type ReplyTo,
  type RequestOp,
  type RpcOk,
  type AuthOk,
  type AuthRequest,
  type RpcRequest,
  type ServerCall,
  type ServerMessage,
  type ServerOp,
  type Since,
  type SubOk,
  type SubRequest,
  type UnsubOk,
  type UnsubRequest,
  type UnsubPush,
} from './messages.js';
export {
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_MAX_HISTORY_ANSWER_BYTES,
  DEFAULT_WIRE_LIMITS,
  MAX_EPOCH_LENGTH,
  MAX_REPLY_CODE_LENGTH,
  MAX_REPLY_MESSAGE_LENGTH,
  resolveWireLimits,
  type WireLimits,
} from './limits.js';
export { CHANNEL_NAME_PUNCTUATION, isValidChannelName, validateChannelName } from './channel-name.js';
export { exceedsJsonDepth } from './json-depth.js';
export { parseRequest, parseRequestObject, type ParseRequestResult } from './parse-request.js';
export {
  encodeCall,
  encodeData,
  encodeDirectMessage,
  encodeErr,
  encodeHistoryEntry,
  encodeHistoryOk,
  encodeJoin,
  encodeLeave,
  encodeUpdate,
  encodeEphemeral,
  encodeMsg,
  encodeOk,
  encodePong,
  encodeUnsubPush,
  type EncodedHistoryEntry,
  type OkFields,
  utf8Length,
} from './encode.js';
export { parseServerMessage, readServerMessage, replyFor } from './parse-server.js';
export { BINARY_KEY, binaryForm, bytesOfForm, fromBase64, reviveBytes, stringifyWithBytes, toBase64 } from './binary.js';
export {
  MSGPACK_SUBPROTOCOL,
  encodeMsgpack,
  encodingOf,
  msgpackOfJson,
  parseMsgpackRequest,
  parseServerMsgpack,
  scanMsgpack,
  type MsgpackScan,
  type WireEncoding,
} from './msgpack.js';
export { validateWith, type InferOutput, type StandardIssue, type StandardResult, type StandardSchemaV1 } from './standard-schema.js';
export {
  defineContract,
  type ChannelDataOf,
  type ChannelInputOf,
  type ChannelNameOf,
  type Contract,
  type HasRpc,
  type InferInput,
  type NoContract,
  type RpcContract,
  type RpcHandlerParamsOf,
  type RpcNameOf,
  type RpcParamsOf,
  type RpcResultOf,
} from './contract.js';
