// A listener's connections made into sockets without a hidden class of their own.
//
// net.Server hands each accepted TCP handle to `new Socket({ handle, allowHalfOpen, ... })`.
// Socket's constructor copies those options with an object spread and then adds three keys
// to the copy (emitClose, autoDestroy, decodeStrings). In Node 20 (V8 11.3) a key added to
// a spread copy makes a new hidden class for that one object (%DebugPrint shows a new map
// per call), and what such an object references outlives the young generation: a bare
// node:net server that destroys every connection at once kept about 680 B per connection
// through each scavenge, to be promoted and left for a full collection. Passing every key
// the constructor sets keeps the copy on one hidden class: about 5 B per connection. Measured
// in docs/benchmarks.md, "Accepting a connection without a hidden class of its own".
//
// So a listener of serve() makes its sockets itself, as net.Server's own `onconnection`
// does, with the whole set of keys. What that function does beyond the socket is done here
// too: the count of connections that close() and getConnections() read, the socket's
// server, the 'connection' event and the `net.server.socket` diagnostics channel. A listener
// configured in a way this does not cover (maxConnections, noDelay, keepAlive, or the
// blockList of later Nodes set on the server) and a failed accept go to net.Server's own
// function unchanged.
import { channel } from 'node:diagnostics_channel';
import { Socket, type Server } from 'node:net';

/** The listening handle's callback: libuv's status (0, or a negative errno) and the new connection's handle. */
type OnConnection = (this: unknown, status: number, client: unknown) => void;

/** The parts of net.Server that its own `onconnection` reads and writes. */
interface ServerState {
  _handle?: { onconnection?: OnConnection } | null;
  _connections: number;
  allowHalfOpen?: boolean;
  pauseOnConnect?: boolean;
  highWaterMark?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  /** net.Server's option from Node 22.13 on: its own onconnection refuses the addresses it lists. */
  blockList?: unknown;
}

const serverSocketChannel = channel('net.server.socket');

/**
 * Makes `server`'s connections into sockets with every option key their constructor sets
 * (see above). Call it once the server listens; returns false, changing nothing, when the
 * server has no listening handle with an `onconnection` of its own.
 */
export function acceptWithStableShape(server: Server): boolean {
  const state = server as unknown as ServerState;
  const handle = state._handle;
  const nodeAccept = handle?.onconnection;
  if (handle == null || typeof nodeAccept !== 'function') return false;
  handle.onconnection = function onconnection(this: unknown, status: number, client: unknown): void {
    if (status !== 0 || server.maxConnections || state.noDelay || state.keepAlive || state.blockList != null) {
      nodeAccept.call(this, status, client);
      return;
    }
    const options = {
      handle: client,
      allowHalfOpen: state.allowHalfOpen,
      pauseOnCreate: state.pauseOnConnect,
      readable: true,
      writable: true,
      readableHighWaterMark: state.highWaterMark,
      writableHighWaterMark: state.highWaterMark,
      // What Socket's constructor would add to its copy of these options.
      emitClose: false,
      autoDestroy: true,
      decodeStrings: false,
    };
    const socket = new Socket(options as ConstructorParameters<typeof Socket>[0]) as Socket & { server: Server; _server: Server };
    state._connections++;
    socket.server = server;
    socket._server = server;
    server.emit('connection', socket);
    if (serverSocketChannel.hasSubscribers) serverSocketChannel.publish({ socket });
  };
  return true;
}
