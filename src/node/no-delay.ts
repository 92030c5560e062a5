// Nagle's algorithm off with one system call per listening socket rather than one per
// connection. Linux copies TCP_NODELAY from a listening socket to every socket its accept()
// returns, so a listener that has it set hands out connections that have it too; the
// per-connection setsockopt was 2% of a short connection's busy time (docs/benchmarks.md,
// "Handshakes: the 101 and Nagle without a system call of their own").
//
// net.Socket remembers what it set in a symbol-keyed slot that setNoDelay() consults; an
// accepted socket is told there that Nagle is off, so that setNoDelay(true) (which every
// connection calls) makes no system call. The slot is found by name; a Node without it, or a
// listener that is not a TCP socket of this process (a cluster worker's round-robin handle:
// its connections are accepted by the primary), keeps the call per connection.
import { Socket, type Server } from 'node:net';

interface NoDelayHandle {
  setNoDelay(enable: boolean): number;
}

let slot: symbol | null | undefined;

function findSlot(): symbol | null {
  const probe = new Socket();
  const found = Object.getOwnPropertySymbols(probe).find((key) => key.description === 'kSetNoDelay');
  probe.destroy();
  return found ?? null;
}

/**
 * Turns Nagle off on `server`'s listening socket (call it once it listens); true when its
 * accepted sockets inherit that, so that {@link inheritNoDelay} may tell them.
 */
export function noDelayOnListener(server: Server): boolean {
  if (process.platform !== 'linux') return false;
  const handle = (server as unknown as { _handle?: Partial<NoDelayHandle> | null })._handle;
  if (handle == null || typeof handle.setNoDelay !== 'function') return false;
  slot ??= findSlot();
  return slot !== null && handle.setNoDelay(true) === 0;
}

/** Tells a socket accepted by a listener that {@link noDelayOnListener} set up that Nagle is already off. */
export function inheritNoDelay(socket: Socket): void {
  if (slot != null) (socket as unknown as Record<symbol, unknown>)[slot] = true;
}
