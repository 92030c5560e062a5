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
//
// A connection handed from one process to another (`hotline serve --workers`) would meet the
// same constructor twice: the primary's net.Server makes a socket to send, and the worker's
// child_process code makes another around the handle it receives. So the primary sends the
// bare handle (acceptHandles) and the worker makes the socket (socketOf).
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

/** How a socket made around an accepted handle reads and ends (net.Server's options of the same names). */
export interface AcceptedSocketOptions {
  allowHalfOpen?: boolean | undefined;
  pauseOnCreate?: boolean | undefined;
  highWaterMark?: number | undefined;
}

/**
 * A net.Socket around an accepted TCP handle, with every option key its constructor sets, so
 * that all such sockets share one hidden class (see above). Reading starts at once unless
 * `pauseOnCreate`.
 */
export function socketOf(handle: unknown, { allowHalfOpen, pauseOnCreate, highWaterMark }: AcceptedSocketOptions = {}): Socket {
  const options = {
    handle,
    allowHalfOpen,
    pauseOnCreate,
    readable: true,
    writable: true,
    readableHighWaterMark: highWaterMark,
    writableHighWaterMark: highWaterMark,
    // What Socket's constructor would add to its copy of these options.
    emitClose: false,
    autoDestroy: true,
    decodeStrings: false,
  };
  return new Socket(options as ConstructorParameters<typeof Socket>[0]);
}

/** Whether Node's own onconnection must take this accept: a failure, or an option handled there. */
function needsNodeAccept(server: Server, state: ServerState, status: number): boolean {
  return status !== 0 || !!server.maxConnections || !!state.noDelay || !!state.keepAlive || state.blockList != null;
}

/** Replaces the listening handle's onconnection; false, changing nothing, without one. */
function replaceOnConnection(server: Server, make: (nodeAccept: OnConnection) => OnConnection): boolean {
  const handle = (server as unknown as ServerState)._handle;
  const nodeAccept = handle?.onconnection;
  if (handle == null || typeof nodeAccept !== 'function') return false;
  handle.onconnection = make(nodeAccept);
  return true;
}

/**
 * Makes `server`'s connections into sockets with every option key their constructor sets
 * (see above). Call it once the server listens; returns false, changing nothing, when the
 * server has no listening handle with an `onconnection` of its own.
 */
export function acceptWithStableShape(server: Server): boolean {
  const state = server as unknown as ServerState;
  return replaceOnConnection(server, (nodeAccept) =>
    function onconnection(this: unknown, status: number, client: unknown): void {
      if (needsNodeAccept(server, state, status)) {
        nodeAccept.call(this, status, client);
        return;
      }
      const socket = socketOf(client, { allowHalfOpen: state.allowHalfOpen, pauseOnCreate: state.pauseOnConnect, highWaterMark: state.highWaterMark }) as Socket & { server: Server; _server: Server };
      state._connections++;
      socket.server = server;
      socket._server = server;
      server.emit('connection', socket);
      if (serverSocketChannel.hasSubscribers) serverSocketChannel.publish({ socket });
    },
  );
}

/** An accepted connection's TCP handle, before any socket is made around it. */
export interface AcceptedHandle {
  /** Closes the connection (the client sees it end). */
  close(): void;
}

/**
 * Hands each connection `server` accepts to `onHandle` as its bare TCP handle, with no socket
 * made around it and nothing read from it: for a process that only passes connections on to
 * others (`hotline serve --workers`' primary), where the receiver makes the socket
 * ({@link socketOf}). The server counts none of them (close() does not wait for them). Same
 * return and fallbacks as {@link acceptWithStableShape}; a fallen-back connection arrives as
 * a socket through the 'connection' event.
 */
export function acceptHandles(server: Server, onHandle: (handle: AcceptedHandle) => void): boolean {
  const state = server as unknown as ServerState;
  return replaceOnConnection(server, (nodeAccept) =>
    function onconnection(this: unknown, status: number, client: unknown): void {
      if (needsNodeAccept(server, state, status)) nodeAccept.call(this, status, client);
      else onHandle(client as AcceptedHandle);
    },
  );
}
