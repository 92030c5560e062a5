/** Channels: the hotline.v1 hub, the Broker and PresenceManager interfaces and the embedded memory engine. */
export { CallError, type CallErrorCode } from './call-error.js';
export { ChannelError } from './channel-error.js';
export {
  DEFAULT_HISTORY_SIZE,
  DEFAULT_HISTORY_TTL,
  DEFAULT_IDEMPOTENCY_WINDOW,
  EngineUnavailableError,
  type Broker,
  type BrokerListener,
  type ChannelMessage,
  type Engine,
  type EngineListener,
  type HistoryQuery,
  type NodeBus,
  type NodeBusListener,
  type HistoryResult,
  type PresenceEvent,
  type PresenceListener,
  type PresenceManager,
  type PublishOptions,
  type PublishResult,
  type RetentionOptions,
  type ChannelRetention,
  type StreamPosition,
} from './engine.js';
export { ChannelHub } from './hub.js';
export type {
  Broadcaster,
  ChannelClient,
  ChannelIdentity,
  ChannelHubOptions,
  ChannelProxy,
  ChannelRules,
  Permission,
  RequestContext,
  RpcMethod,
} from './hub-options.js';
export type { ChannelStats } from './local-channels.js';
export {
  ChannelsApi,
  MAX_CHANNELS_LIMIT,
  type CallOptions,
  type ChannelsPage,
  type ChannelsQuery,
  type NodeInfo,
  type DisconnectOptions,
  type ServerHistory,
  type ServerHistoryOptions,
  type ServerPublishOptions,
  type ServerPublishResult,
  type ConnectionTarget,
  type UnsubscribeOptions,
} from './server-api.js';
export type { PresenceSnapshot as ServerPresence } from './presence.js';
export { DEFAULT_MAX_CHANNELS, DEFAULT_MAX_HISTORY_BYTES, MemoryEngine, type MemoryEngineOptions } from './memory-engine.js';
export { newChannelMetrics, type ChannelMetrics } from './metrics.js';
export type { RateLimit } from './rate-limit.js';
export { validateWith, type InferOutput, type StandardIssue, type StandardResult, type StandardSchemaV1 } from '../wire/index.js';
