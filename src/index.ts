/**
 * hotline: a WebSocket stack for TypeScript. This entry point is the Node server side;
 * `hotline/protocol` is the sans-I/O core underneath it.
 */
export { serve, type ServeOptions, type RunningServer } from './server/serve.js';
export { WebSocketServer, type WebSocketServerOptions } from './node/server.js';
export {
  WebSocketConnection,
  type ConnectionHandlers,
  type ConnectionOptions,
} from './node/connection.js';
export {
  CloseCode,
  HandshakeError,
  InvalidStateError,
  ProtocolError,
  type HandshakeErrorCode,
  type ProtocolErrorCode,
} from './protocol/index.js';
