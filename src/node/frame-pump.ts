import type { Socket } from 'node:net';
import type { WebSocketProtocol } from '../protocol/index.js';
import { DirectWriter } from './direct-writes.js';
import { withSharedJoins, writeChunks, writePlanned } from './write.js';

// Pumps with frames queued outside a read, flushed together once the event loop's I/O
// callbacks have run: a publish to 10,000 subscribers schedules one callback, not 10,000,
// and the publishes read from several sockets in one pass of the loop reach a subscriber
// in one write, not one each (a write is most of a delivery's cost).
const flushQueue: FramePump[] = [];
/** Work that writes in the same pass, before the pumps (a topic's batch of publishes). */
const beforeFlush: Array<() => void> = [];
let flushQueued = false;

function flushQueuedPumps(): void {
  let tasks = 0;
  let pumps = 0;
  try {
    // What a task or a flush queues meanwhile joins this pass (a close handler that sends).
    while (tasks < beforeFlush.length) beforeFlush[tasks++]!();
    withSharedJoins(() => {
      while (pumps < flushQueue.length) flushQueue[pumps++]!.flushIfScheduled();
    });
  } finally {
    // After a throw (a bug; it still reaches the process) what was not reached goes in the
    // next pass, and the one that threw is not run again: no pump is left scheduled with
    // no flush to come, silently holding its connection's frames.
    dropFirst(beforeFlush, tasks);
    dropFirst(flushQueue, pumps);
    flushQueued = false;
    if (beforeFlush.length > 0 || flushQueue.length > 0) queueFlush();
  }
}

function dropFirst(queue: unknown[], count: number): void {
  if (count === queue.length) queue.length = 0;
  else queue.splice(0, count);
}

function queueFlush(): void {
  if (flushQueued) return;
  flushQueued = true;
  setImmediate(flushQueuedPumps);
}

/**
 * Runs `task` when this tick's frames are written, before the pumps flush: what it queues
 * on a pump goes out in that pump's write.
 */
export function beforeNextFlush(task: () => void): void {
  beforeFlush.push(task);
  queueFlush();
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

/**
 * Moves what a {@link WebSocketProtocol} queued onto its socket, for a server's connection
 * and for the client alike: frames queued during one read, or outside reads during one
 * tick, go out in one write; the transport is ended when the protocol says so; and a timer
 * bounds how long the peer may then take to close its side (or to answer our close frame).
 */
export class FramePump {
  /** Bytes taken from the protocol and handed to the socket so far (framing included). */
  taken = 0;
  private scheduled = false;
  /** Inside a read: frames queued now go out when it ends, with no flush scheduled. */
  private reading = false;
  private closeTimer: NodeJS.Timeout | null = null;
  /**
   * @param writer The socket's writer, when one already wrote to it and is still writing
   * (the handshake's response); else a new one.
   */
  constructor(
    private readonly socket: Socket,
    private readonly protocol: WebSocketProtocol,
    private readonly closeTimeout: number,
    private readonly writer = new DirectWriter(socket),
  ) {}

  /** Bytes handed to the socket that it has not written yet. */
  get unwritten(): number {
    return this.socket.writableLength + this.writer.pending;
  }

  /** Nothing to write, nothing being written, no flush due and no close timer: the owner may let it go. */
  get idle(): boolean {
    return !this.scheduled && !this.reading && this.closeTimer === null && this.writer.pending === 0 && this.socket.writableLength === 0;
  }

  /** Writes what the protocol queued once this pass of the loop's I/O is done, unless a read is under way. */
  schedule(): void {
    if (this.scheduled || this.reading) return;
    this.scheduled = true;
    flushQueue.push(this);
    queueFlush();
  }

  /** A read starts: what it queues waits for {@link endRead}. */
  beginRead(): void {
    this.reading = true;
  }

  /** The read ended: everything it queued goes out in one write. */
  endRead(): void {
    this.reading = false;
    this.flush();
  }

  /** Writes what the tick's flush is for, unless a flush since then already did. */
  flushIfScheduled(): void {
    if (this.scheduled) this.flush();
  }

  /** Writes what the protocol queued now, and ends the transport when the protocol says so. */
  flush(): void {
    this.scheduled = false;
    const { socket, protocol } = this;
    const writable = !socket.destroyed && !socket.writableEnded;
    // Frames the socket can no longer take stay in the protocol, not counted as taken.
    const queued = protocol.bufferedAmount;
    if (queued > 0 && writable) {
      this.taken += queued;
      writeChunks(protocol.takeOutgoing(), this.writer);
    }
    if (protocol.shouldCloseTransport && writable) {
      // Closing handshake done (or the peer's FIN in) and every byte with the kernel: closing
      // the socket sends them, then our FIN, as end() would, without a shutdown call and a
      // wait for the peer's FIN (a third of a short connection's system calls). After a
      // failure the peer may still be sending, and closing with unread bytes resets the
      // connection, which can lose our close frame at the peer: that case ends and waits.
      if (protocol.failure === null && this.writer.flushed) {
        socket.destroy();
        return;
      }
      socket.end();
      this.armCloseTimer();
    }
  }

  /**
   * Writes bytes encoded for many sockets (a topic's batch) now; the protocol has nothing
   * queued, or it would go first. Returns what the socket's write returns.
   */
  writePlanned(plan: Buffer | Buffer[], bytes: number): boolean {
    this.taken += bytes;
    return writePlanned(plan, bytes, this.writer);
  }

  /** Destroys the socket if it has not closed within the close timeout (once armed, it stays). */
  armCloseTimer(): void {
    if (this.closeTimer !== null || this.socket.destroyed) return;
    this.closeTimer = setTimeout(destroySocket, this.closeTimeout, this.socket);
    this.closeTimer.unref();
  }

  /** The socket closed: its timer goes (and none is armed again: the socket is destroyed). */
  stop(): void {
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
  }
}
