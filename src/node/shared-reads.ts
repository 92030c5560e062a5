// Reads a connection's socket into one buffer shared by every socket of the process, as
// net.connect's documented `onread` option does for a client socket, and hands each read on
// as a buffer of its own. Node otherwise allocates 64 KiB of native memory for every read
// and shrinks it to what came: that allocation, and glibc handing the freed memory back to
// the kernel and faulting it in again, cost more than copying what was read (measured in
// docs/benchmarks.md, "Reads into one buffer"). A read is copied before anything else sees
// it, so the protocol's views into a chunk stay valid for as long as it keeps them.
//
// A client socket of our own asks for it with net.connect's `onread` (sharedOnRead).
// net.Socket has no public way to turn this on after accept. It keeps the option in two
// symbol-keyed slots that its read callback, pause() and resume() consult; they are found by
// name here, and a socket whose Node lacks them, or that is not plain TCP (TLS decrypts in
// its own wrap), reads through 'data' as before.
import { Buffer } from 'node:buffer';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/** Libuv reads at most this much at a time, so one read always fits. */
const READ_SIZE = 64 * 1024;

/** net's read callback: false would pause the socket; these always read on. */
type ReadCallback = (this: Socket, nread: number, buffer: Buffer) => boolean;

interface Slots {
  buffer: symbol;
  callback: symbol;
}

interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

function findSlots(): Slots | null {
  const probe = new Socket();
  let buffer: symbol | undefined;
  let callback: symbol | undefined;
  for (const key of Object.getOwnPropertySymbols(probe)) {
    if (key.description === 'kBuffer') buffer = key;
    else if (key.description === 'kBufferCb') callback = key;
  }
  probe.destroy();
  return buffer !== undefined && callback !== undefined ? { buffer, callback } : null;
}

let slots: Slots | null | undefined;
let shared: Buffer | null = null;

function sharedBuffer(): Buffer {
  return (shared ??= Buffer.allocUnsafeSlow(READ_SIZE));
}

/** A read callback that hands `onChunk` a copy of each read. */
function copying(onChunk: (this: Socket, chunk: Buffer) => void): ReadCallback {
  return function (nread, buffer) {
    // A store of its own, as Node gives each read: a view the protocol keeps (a partial
    // message, a paused read) then holds its own bytes, not a slab of the buffer pool
    // shared with other connections' reads.
    const chunk = Buffer.allocUnsafeSlow(nread);
    buffer.copy(chunk, 0, 0, nread);
    onChunk.call(this, chunk);
    return true;
  };
}

/** The server's sockets share one callback per receiver function (no closure per socket). */
const serverCallbacks = new WeakMap<(this: Socket, chunk: Buffer) => void, ReadCallback>();

/**
 * net.connect's `onread` option that reads into the shared buffer and hands `onChunk` each
 * read as a buffer it owns (with the socket as `this`).
 */
export function sharedOnRead(onChunk: (this: Socket, chunk: Buffer) => void): { buffer: Buffer; callback: ReadCallback } {
  return { buffer: sharedBuffer(), callback: copying(onChunk) };
}

/**
 * Delivers each read of `socket` to `onChunk` (with the socket as `this`), as a buffer the
 * receiver owns; false when the socket cannot read this way (the caller listens to 'data').
 * pause() and resume() work as with 'data'.
 */
export function readIntoShared(socket: Socket, onChunk: (this: Socket, chunk: Buffer) => void): boolean {
  // Bytes already in the stream's queue (read while the upgrade hook decided) come out as
  // 'data' events once it resumes: such a socket keeps 'data', so that they come first.
  if (socket instanceof TLSSocket || socket.readableLength > 0) return false;
  const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  if (handle == null || typeof handle.useUserBuffer !== 'function') return false;
  slots ??= findSlots();
  if (slots === null) return false;
  const buffer = sharedBuffer();
  const owned = socket as unknown as Record<symbol, unknown>;
  owned[slots.buffer] = buffer;
  let callback = serverCallbacks.get(onChunk);
  if (callback === undefined) serverCallbacks.set(onChunk, (callback = copying(onChunk)));
  owned[slots.callback] = callback;
  (handle as UserBufferHandle).useUserBuffer(buffer);
  return true;
}
