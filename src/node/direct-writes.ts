// Hands a connection's frames to its socket's libuv stream directly, as net.Socket's own
// write does at its end, without the Writable stream around it: its state, a request
// object and a callback per write, the callback deferred to the next tick. Measured in
// docs/benchmarks.md, "Text as bytes, and writes straight to the stream".
//
// The stream's write methods take a request object that only Node's stream_wrap binding
// makes, and report through a shared state array whether the write completed at once (the
// kernel took every byte) or went on in the background. That binding is reached through
// process.binding, deprecated (DEP0111) but still serving stream_wrap. A socket whose
// Node lacks it, that is not plain TCP or a pipe (TLS encrypts in its own wrap), or whose
// Writable still holds bytes (they must go first) is written through socket.write as before.
//
// What a direct write that went on in the background still holds counts as buffered
// (DirectWriter.pending) until libuv says it is written, as the Writable counts its bytes
// until their callback; 'drain' is emitted on the socket as the Writable would emit it.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { getSystemErrorName } from 'node:util';

/** A write request: stream_wrap's object that libuv's completion reports to. */
interface WriteRequest {
  oncomplete: ((this: WriteRequest, status: number) => void) | null;
  /** Kept alive until written: libuv reads it in the background. */
  data: Buffer | Buffer[] | string | null;
  writer: DirectWriter | null;
  bytes: number;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

/** The part of libuv's stream handle (TCP, Pipe) this uses; TLS and JS streams lack writeQueueSize. */
interface StreamHandle {
  writeBuffer(req: WriteRequest, data: Buffer): number;
  writev(req: WriteRequest, chunks: Buffer[], allBuffers: true): number;
  writeUtf8String(req: WriteRequest, text: string): number;
  readonly writeQueueSize?: number;
}

/** Deprecated, so absent from @types/node; Node 20 still serves stream_wrap through it. */
type BindingLoader = (name: string) => unknown;

function loadBinding(): StreamWrapBinding | null {
  // With --pending-deprecation, process.binding warns: such a process keeps the Writable.
  const flags = `${process.execArgv.join(' ')} ${process.env['NODE_OPTIONS'] ?? ''}`;
  const load = (process as unknown as { binding?: BindingLoader }).binding;
  if (flags.includes('--pending-deprecation') || typeof load !== 'function') return null;
  try {
    const binding = load.call(process, 'stream_wrap') as Partial<StreamWrapBinding>;
    const { WriteWrap, streamBaseState, kLastWriteWasAsync } = binding;
    if (typeof WriteWrap !== 'function' || !(streamBaseState instanceof Int32Array) || typeof kLastWriteWasAsync !== 'number') return null;
    return { WriteWrap, streamBaseState, kLastWriteWasAsync };
  } catch {
    return null;
  }
}

let binding: StreamWrapBinding | null | undefined;
/**
 * A request not yet used: a write the kernel took at once never binds its request, so the
 * next write reuses it; one that went on in the background keeps it, and a new one is made.
 * (Node's StreamBase::Write binds the request only on the way to libuv's queue, after
 * trying the write at once; true of Node 20's source. Check it again on a Node upgrade:
 * test/direct-writes.test.ts exercises both ways.)
 */
let spare: WriteRequest | null = null;

function onWritten(this: WriteRequest, status: number): void {
  const writer = this.writer!;
  this.data = null;
  this.writer = null;
  writer.finished(this.bytes, status);
}

function emitDrain(socket: Socket): void {
  if (!socket.destroyed) socket.emit('drain');
}

/**
 * One socket's direct writes: what of them is still being written, and whether the
 * socket may be written this way at all (decided at its first write).
 */
export class DirectWriter {
  /** Bytes of direct writes that libuv is still writing (socket.bytesWritten counts them as written). */
  pending = 0;
  /** A write returned what the Writable's would have returned false for: 'drain' is owed. */
  private owesDrain = false;
  private direct: boolean | undefined;

  constructor(private readonly socket: Socket) {}

  /**
   * Writes `data`; returns false, as socket.write does, once the socket holds at least its
   * high-water mark (a 'drain' follows when it has written everything).
   */
  write(data: Buffer): boolean {
    const handle = this.handle();
    if (handle === null) return this.socket.write(data);
    const req = (spare ??= new binding!.WriteWrap());
    return this.dispatched(req, handle.writeBuffer(req, data), data, data.length);
  }

  /**
   * Writes `text` as UTF-8 (a handshake's response: the stream encodes it as it writes,
   * with no Buffer made for it); returns what {@link write} returns.
   */
  writeString(text: string): boolean {
    const handle = this.handle();
    if (handle === null) return this.socket.write(text);
    const req = (spare ??= new binding!.WriteWrap());
    return this.dispatched(req, handle.writeUtf8String(req, text), text, Buffer.byteLength(text));
  }

  /**
   * Writes `chunks` in one vectored write (as a corked socket would); returns what
   * {@link write} returns.
   */
  writev(chunks: Buffer[], bytes: number): boolean {
    const handle = this.handle();
    if (handle === null) {
      const socket = this.socket;
      socket.cork();
      let ok = true;
      for (const chunk of chunks) ok = socket.write(chunk);
      socket.uncork();
      return ok;
    }
    const req = (spare ??= new binding!.WriteWrap());
    return this.dispatched(req, handle.writev(req, chunks, true), chunks, bytes);
  }

  /**
   * Whether the kernel holds every byte written, on a stream written directly: closing the
   * socket then loses nothing. (TLS holds bytes of its own, and ends with an alert.)
   */
  get flushed(): boolean {
    return this.pending === 0 && this.handle() !== null;
  }

  /** The stream to write to directly, or null when this write goes through socket.write. */
  private handle(): StreamHandle | null {
    const socket = this.socket;
    const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
    this.direct ??= handle != null && !(socket instanceof TLSSocket) && typeof handle.writeQueueSize === 'number' && (binding ??= loadBinding()) !== null;
    // Bytes the Writable holds go first; so does its state once the socket is ending.
    if (!this.direct || handle == null || socket.writableLength > 0 || socket.writableEnded) return null;
    return handle;
  }

  /** After the stream took a write: its error, or whether libuv goes on with it in the background. */
  private dispatched(req: WriteRequest, error: number, data: Buffer | Buffer[] | string, bytes: number): boolean {
    const socket = this.socket;
    if (error !== 0) {
      // A request the stream failed may have been bound and let go: none is reused.
      spare = null;
      socket.destroy(systemError(error));
      return false;
    }
    const full = bytes >= socket.writableHighWaterMark;
    if (binding!.streamBaseState[binding!.kLastWriteWasAsync] !== 0) {
      spare = null;
      req.oncomplete = onWritten;
      req.data = data;
      req.writer = this;
      req.bytes = bytes;
      this.pending += bytes;
      if (full || this.pending >= socket.writableHighWaterMark) this.owesDrain = true;
      return !this.owesDrain;
    }
    if (!full) return true;
    // Written at once (so nothing was pending: libuv queues behind a pending write), but
    // as large as the Writable's mark: it would have returned false and emitted 'drain'
    // once the write's callback ran.
    process.nextTick(emitDrain, socket);
    return false;
  }

  /** libuv finished a background write: `status` below 0 is its error (or ECANCELED on close). */
  finished(bytes: number, status: number): void {
    this.pending -= bytes;
    const socket = this.socket;
    if (status < 0) {
      if (!socket.destroyed) socket.destroy(systemError(status));
      return;
    }
    if (this.pending === 0 && this.owesDrain) {
      this.owesDrain = false;
      emitDrain(socket);
    }
  }
}

function systemError(errno: number): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(errno);
  } catch {
    code = `E${-errno}`;
  }
  const error: NodeJS.ErrnoException = new Error(`write ${code}`);
  error.errno = errno;
  error.code = code;
  error.syscall = 'write';
  return error;
}
