/**
 * hotline: a WebSocket stack for TypeScript. This entry point is the Node side: servers,
 * the channel endpoint and engines, and the WHATWG WebSocket client. `hotline/client` is
 * the reconnecting SDK; `hotline/protocol` the sans-I/O core underneath it all.
 */
export {
  attach,
  serve,
  type AttachOptions,
  type EndpointOptions,
  type Endpoints,
  type RunningServer,
  type ServeOptions,
} from './server/serve.js';
export {
  WebSocketServer,
  type ConnectionObserver,
  type ServerCounters,
  type UpgradeDecision,
  type UpgradeRejection,
  type UpgradeRequest,
  type WebSocketServerOptions,
} from './node/server.js';
export {
  SendResult,
  WebSocketConnection,
  type ConnectionHandlers,
  type ConnectionOptions,
  type ConnectionSendOptions,
  type MessageTap,
  type SendData,
  type SlowConsumerPolicy,
} from './node/connection.js';
export type { TrustProxy } from './node/trust-proxy.js';
export { MessageBroker, type BrokerCallback, type MessageBrokerOptions, type TopicPublisher } from './node/broker.js';
export {
  ConnectError,
  WebSocket,
  type BinaryType,
  type ConnectErrorCode,
  type WebSocketData,
  type WebSocketEventMap,
  type WebSocketMessageEvent,
  type WebSocketOptions,
  type WebSocketPongEvent,
} from './node/client.js';
export { CloseEvent, ErrorEvent, type CloseEventInit, type ErrorEventInit } from './node/events.js';
export { TopicRegistry, TopicsDisabledError } from './node/topics.js';
export {
  DEFAULT_DEFLATE_THRESHOLD,
  type DeflateTuning,
  type PerMessageDeflateOptions,
} from './node/deflate.js';
export type { ServerDeflateOptions } from './node/server.js';
export type { ClientDeflateOptions } from './node/client.js';
export {
  channelsEndpoint,
  type ChannelConnectionData,
  type ChannelsEndpoint,
  type ChannelsEndpointOptions,
  type ContractRpcHandler,
  type RpcHandlers,
  type TransportClient,
} from './server/channels.js';
export { sseEndpoint, SSE_DEFAULTS, type SseEndpoint, type SseOptions, type SseCounters } from './server/sse.js';
export {
  httpSessionEndpoint,
  HTTP_SESSION_DEFAULTS,
  SESSION_CONTENT_TYPE,
  SESSION_HEADER,
  type HttpSessionEndpoint,
  type HttpSessionOptions,
  type HttpSessionCounters,
} from './server/http-session.js';
export { StreamAdmission, type StreamAdmissionOptions } from './server/stream-admission.js';
export { createApp, type App, type AppOptions } from './server/app.js';
export { Logger, type LogLevel } from './server/log.js';
export {
  CallError,
  ChannelError,
  ChannelHub,
  ChannelsApi,
  MemoryEngine,
  EngineUnavailableError,
  type Broker,
  type BrokerListener,
  type CallErrorCode,
  type CallOptions,
  type DisconnectOptions,
  type NodeBus,
  type NodeBusListener,
  type ServerHistory,
  type ServerPresence,
  type ServerHistoryOptions,
  type ServerPublishOptions,
  type ServerPublishResult,
  type ConnectionTarget,
  type UnsubscribeOptions,
  type ChannelClient,
  type ChannelHubOptions,
  type ChannelProxy,
  type ChannelIdentity,
  type ChannelMessage,
  type ChannelMetrics,
  type ChannelRules,
  type Engine,
  type EngineListener,
  type HistoryQuery,
  type HistoryResult,
  type MemoryEngineOptions,
  type PresenceEvent,
  type PresenceListener,
  type PresenceManager,
  type PublishResult,
  type RequestContext,
  type RpcMethod,
  type StandardSchemaV1,
  type StreamPosition,
} from './channels/index.js';
export {
  CloseCode,
  HandshakeError,
  InvalidStateError,
  ProtocolError,
  sameOrigin,
  type HandshakeErrorCode,
  type OriginCheck,
  type ProtocolErrorCode,
} from './protocol/index.js';
export { ChannelCloseCode, defineContract, type Contract, type NoContract, type RpcContract } from './wire/index.js';
