/**
 * hotline: a WebSocket stack for TypeScript. This entry point is the Node server side;
 * `hotline/protocol` is the sans-I/O core underneath it.
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
export { MessageBroker } from './node/broker.js';
export {
  WebSocket,
  type BinaryType,
  type WebSocketData,
  type WebSocketEventMap,
  type WebSocketMessageEvent,
  type WebSocketOptions,
  type WebSocketPongEvent,
} from './node/client.js';
export { CloseEvent, type CloseEventInit } from './node/events.js';
export { TopicRegistry } from './node/topics.js';
export {
  CloseCode,
  HandshakeError,
  InvalidStateError,
  ProtocolError,
  type HandshakeErrorCode,
  type ProtocolErrorCode,
} from './protocol/index.js';
