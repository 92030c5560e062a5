// Reads a connection's socket into one buffer shared by every socket of the process, as
// net.connect's documented `onread` option does for a client socket, and hands each read on
// as a copy that no later read overwrites: a store of its own, or a slice of the
// connection's own slab (ReadSlab). Node otherwise allocates 64 KiB of native memory for
// every read and shrinks it to what came: that allocation, and glibc handing the freed
// memory back to the kernel and faulting it in again, cost more than copying what was read
// (measured in docs/benchmarks.md, "Reads into one buffer"). A read is copied before
// anything else sees it, so the protocol's views into a chunk stay valid for as long as it
// keeps them.
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

/** A read this size or smaller goes into its receiver's {@link ReadSlab}, when it has one. */
const SMALL_READ = 512;
const SLAB_SIZE = 2 * 1024;

/** `nread` bytes of `buffer` in a store of exactly their size, as Node gives each read. */
function copyOfRead(buffer: Buffer, nread: number): Buffer {
  const chunk = Buffer.allocUnsafeSlow(nread);
  buffer.copy(chunk, 0, 0, nread);
  return chunk;
}

/**
 * Where one connection's small reads are copied: consecutive reads share a 2 KiB slab
 * rather than a store each, since a store per read (a backing store for V8 to track and
 * free) cost more than the rest of a small message's path (docs/benchmarks.md, "A
 * connection's small reads share a slab"). The slab is the connection's own, so a Buffer
 * handed to its handler never shares its ArrayBuffer with another connection's bytes. The
 * protocol copies out what it keeps past a read, so a peer pins what it sent, not the slab.
 */
export class ReadSlab {
  private slab: ArrayBuffer | null = null;
  /** Bytes of the slab handed out; -1 before the first small read, which gets a store of its own. */
  private used = -1;

  /** `nread` bytes of `buffer` in memory no later read reuses. */
  copyOf(buffer: Buffer, nread: number): Buffer {
    if (nread > SMALL_READ) return copyOfRead(buffer, nread);
    let slab = this.slab;
    if (slab === null || SLAB_SIZE - this.used < nread) {
      // Many connections read one small thing and end (a close frame, one request): the
      // slab waits for a second read.
      if (this.used < 0) {
        this.used = 0;
        return copyOfRead(buffer, nread);
      }
      slab = this.slab = new ArrayBuffer(SLAB_SIZE);
      this.used = 0;
    }
    const chunk = Buffer.from(slab, this.used, nread);
    // 8-byte aligned, as Node's own pool keeps its slices.
    this.used = (this.used + nread + 7) & ~7;
    buffer.copy(chunk, 0, 0, nread);
    return chunk;
  }
}

/** A read callback that hands `onChunk` a copy of each read: in `slabOf(socket)`, or a store of its own. */
function copying(onChunk: (this: Socket, chunk: Buffer) => void, slabOf?: (socket: Socket) => ReadSlab): ReadCallback {
  if (slabOf === undefined) {
    return function (nread, buffer) {
      onChunk.call(this, copyOfRead(buffer, nread));
      return true;
    };
  }
  return function (nread, buffer) {
    onChunk.call(this, slabOf(this).copyOf(buffer, nread));
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
 * receiver owns: a slice of `slabOf(socket)` when small, else a store of its own. False
 * when the socket cannot read this way (the caller listens to 'data'). pause() and resume()
 * work as with 'data'. One callback is made per `onChunk`, with the `slabOf` of its first call.
 */
export function readIntoShared(socket: Socket, onChunk: (this: Socket, chunk: Buffer) => void, slabOf?: (socket: Socket) => ReadSlab): boolean {
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
  if (callback === undefined) serverCallbacks.set(onChunk, (callback = copying(onChunk, slabOf)));
  owned[slots.callback] = callback;
  (handle as UserBufferHandle).useUserBuffer(buffer);
  return true;
}
