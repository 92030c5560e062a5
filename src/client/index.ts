/** hotline/client: the reconnecting hotline.v1 SDK for browsers and Node. */
export {
  connect,
  HotlineClient,
  type ClientEvents,
  type ClientOptions,
  type ClientState,
  type FallbackOptions,
  type Transport,
  type WebSocketConstructorLike,
  type WebSocketLike,
} from './client.js';
export type { FetchLike } from './http-session.js';
export {
  Channel,
  type ChannelEvents,
  type ChannelPosition,
  type ChannelState,
  type HistoryOptions,
  type HistoryPage,
  type EphemeralMeta,
  type MessageMeta,
  type SubscribedEvent,
  type SubscribeOptions,
} from './channel.js';
export { ChannelPresence, type PresenceSnapshot } from './presence.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { HotlineError, type ClientErrorCode } from './errors.js';
export type { CallHandler } from './handlers.js';
export { ChannelCloseCode, defineContract } from '../wire/index.js';
export type {
  ChannelDataOf,
  ChannelInputOf,
  ChannelNameOf,
  Contract,
  NoContract,
  RpcContract,
  RpcNameOf,
  RpcParamsOf,
  RpcResultOf,
} from '../wire/index.js';
export type { InferOutput, Json, JsonObject, Member, StandardSchemaV1 } from '../wire/index.js';
