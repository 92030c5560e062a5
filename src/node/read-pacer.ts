import type { Socket } from 'node:net';
import { Buffer } from 'node:buffer';
import type { WebSocketProtocol } from '../protocol/index.js';

const EMPTY = Buffer.alloc(0);

/** What a {@link ReadPacer} asks of the connection it paces. */
export interface PacedReader {
  /** Bytes handed to the socket and not yet written out, plus those still queued in the protocol. */
  readonly bufferedAmount: number;
  /** Decodes what the protocol kept while reading was paused (as a read does), then writes what that queued. */
  readKept(now: number): void;
}

/**
 * When a server connection reads from its peer. Reading stops while anything holds it, and
 * goes on once nothing does:
 * - backpressure: the peer sends but does not read what it is sent, so its buffered bytes
 *   passed the limit; reading resumes once they fall back under it, whatever made them fall;
 * - the inflate budget: a message inflated more than the rate allows, and reading waits
 *   until the budget refills (the protocol keeps the rest of that read undecoded);
 * - the application's `pause()`.
 * It also times the frame or fragmented message now partly received, less the time this
 * side was not reading, for the server's `messageTimeout`.
 */
export class ReadPacer {
  /**
   * When the frame or fragmented message now partly received began to arrive (ms since the
   * epoch, moved on by the time reading was paused), or 0 for none.
   */
  partialSince = 0;
  /** The protocol's received count when `partialSince` was set (a new count: a new frame). */
  private partialCount = 0;
  /** When reading was paused, for any reason (0 while reading). */
  private pausedAt = 0;
  private backpressure = false;
  private userPaused = false;
  /** Reading paused until the inflate budget refills. */
  private throttle: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly socket: Socket,
    private readonly protocol: WebSocketProtocol,
    private readonly reader: PacedReader,
    /** Buffered outgoing bytes past which reading pauses. */
    private readonly limit: number,
  ) {}

  /** Whether reading is paused, for any reason. */
  get paused(): boolean {
    return this.pausedAt !== 0;
  }

  /** Whether the application paused reading. */
  get pausedByUser(): boolean {
    return this.userPaused;
  }

  pauseByUser(): void {
    if (this.userPaused || this.stopped) return;
    this.userPaused = true;
    this.pause(Date.now());
  }

  resumeByUser(): void {
    if (!this.userPaused) return;
    this.userPaused = false;
    this.resume();
  }

  /**
   * After a read, and what it queued was handed to the socket: times a frame left partial,
   * and pauses reading from a peer whose buffered bytes passed the limit.
   */
  afterRead(now: number): void {
    const protocol = this.protocol;
    if (!protocol.receivingPartial) {
      this.partialSince = 0;
    } else if (this.partialSince === 0 || protocol.receivedCount !== this.partialCount) {
      this.partialSince = now;
      this.partialCount = protocol.receivedCount;
    }
    if (!this.backpressure && this.reader.bufferedAmount > this.limit) {
      this.backpressure = true;
      this.pause(now);
      this.awaitWritten();
    }
  }

  /** Stops reading for `ms` (the inflate budget was overdrawn): the protocol keeps the rest of this read. */
  throttleFor(ms: number): void {
    this.protocol.pause();
    this.pause(Date.now());
    this.throttle = setTimeout(ReadPacer.onBudgetRefilled, ms, this);
  }

  /** The socket's 'drain': everything handed to it is written. */
  onDrain(): void {
    if (this.backpressure) this.checkBuffered();
  }

  /** The connection closed: no timer stays armed. */
  stop(): void {
    this.stopped = true;
    if (this.throttle !== null) clearTimeout(this.throttle);
    this.throttle = null;
  }

  private static onBudgetRefilled(pacer: ReadPacer): void {
    pacer.throttle = null;
    if (pacer.stopped) return;
    // What the protocol kept is read first; it may overdraw the budget again.
    pacer.reader.readKept(Date.now());
    pacer.resume();
  }

  /**
   * Waits for the buffered bytes to be written. 'drain' follows only a write that returned
   * false, which a limit under the socket's high-water mark may never see: then an empty
   * write's callback says when everything before it is written.
   */
  private awaitWritten(): void {
    const socket = this.socket;
    if (socket.writableNeedDrain || socket.destroyed || socket.writableEnded) return;
    socket.write(EMPTY, () => this.checkBuffered());
  }

  private checkBuffered(): void {
    if (!this.backpressure || this.stopped) return;
    if (this.reader.bufferedAmount > this.limit) {
      this.awaitWritten();
      return;
    }
    this.backpressure = false;
    this.resume();
  }

  private pause(now: number): void {
    if (this.pausedAt !== 0) return;
    this.pausedAt = now;
    this.socket.pause();
    // A read that came through the socket's Readable (the upgrade request's, or any on a
    // socket that reads through 'data') leaves Node a read-more step queued in this tick,
    // which starts the handle reading again whatever pause() did; a pause from a handler of
    // that read is queued before it. Pausing again two ticks on, after it, keeps this pause.
    process.nextTick(ReadPacer.pauseAgain, this, 2);
  }

  private static pauseAgain(pacer: ReadPacer, passes: number): void {
    if (pacer.pausedAt === 0 || pacer.stopped) return;
    if (passes > 1) process.nextTick(ReadPacer.pauseAgain, pacer, passes - 1);
    else pacer.socket.pause();
  }

  /** Reads again once nothing holds reading. */
  private resume(): void {
    if (this.pausedAt === 0 || this.stopped || this.backpressure || this.userPaused || this.throttle !== null || this.protocol.paused) return;
    // The time this side did not read does not count against the peer's partial message.
    if (this.partialSince !== 0) this.partialSince += Date.now() - this.pausedAt;
    this.pausedAt = 0;
    this.socket.resume();
  }
}
