/**
 * A client of the channel hub over a text/event-stream response, as the two transports
 * that stream hotline.v1 over HTTP both have it: /sse (sse-stream.ts) and the SDK's HTTP
 * session (http-session-stream.ts). It knows who the client is, when nothing more may be
 * written, how much the client has not read, how long it has read nothing, and how a
 * stream ends: an `event: close` with a code and reason, as a WebSocket close frame would
 * carry, then a bounded wait for the client to read it.
 */
import type { EventEmitter } from 'node:events';
import type { ChannelIdentity } from '../channels/index.js';
import { ChannelCloseCode, type Member } from '../wire/index.js';

/** What a stream needs of its response: node:http's and node:http2's compatibility one both fit. */
export interface StreamResponse extends EventEmitter {
  writeHead(status: number, headers: Record<string, string | undefined>): unknown;
  write(chunk: string): boolean;
  end(chunk?: string): unknown;
  destroy(): unknown;
  readonly writableLength: number;
  readonly writableEnded: boolean;
  readonly headersSent: boolean;
  readonly destroyed: boolean;
}

export interface StreamLimits {
  backpressureLimit: number;
  closeTimeout: number;
}

/** The `data:` field (and the blank line ending the event) of a hotline.v1 text; the same text for every subscriber is formatted once. */
let lastText = '';
let lastData = '';
export function dataField(text: string): string {
  if (text !== lastText) {
    lastText = text;
    // JSON.stringify never writes a line break, but an engine's stored data might hold one.
    lastData = /[\r\n]/.test(text) ? `data: ${text.split(/\r\n|\r|\n/).join('\ndata: ')}\n\n` : `data: ${text}\n\n`;
  }
  return lastData;
}

/**
 * A client of the channel hub reached through an event stream: who it is, and what every
 * such stream does alike. A subclass writes its own head and events to {@link res}.
 */
export abstract class EventStream<A> {
  readonly auth: A;
  readonly member: Member | undefined;
  readonly user: string | undefined;
  /** The client's address (as the per-address count sees it), for the inspector. */
  address = '';
  /** When it opened (ms since the epoch), for the inspector. */
  readonly openedAt = Date.now();
  /** Set once nothing more is written (closed by either side). */
  closed = false;
  private waiters: Array<() => void> = [];
  /** When the client last had nothing left to read, or read some. */
  private lastProgress = Date.now();
  private closeTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    /** The client id the hub knows it by. */
    readonly id: string,
    identity: ChannelIdentity<A>,
    protected readonly res: StreamResponse,
    private readonly limits: StreamLimits,
    /** Called when live traffic finds the client too slow, before the stream closes for it. */
    private readonly onSlow: () => void,
  ) {
    this.auth = identity.auth;
    this.member = identity.member;
    this.user = identity.user;
    res.on('drain', () => {
      this.lastProgress = Date.now();
      this.wake();
    });
  }

  /** Bytes the client has not read yet. */
  get bufferedAmount(): number {
    return this.res.writableLength;
  }

  get backpressureLimit(): number {
    return this.limits.backpressureLimit;
  }

  /** Settles once the client has read everything written, or the stream closed. */
  drained(): Promise<void> {
    if (this.closed || (!this.holding && this.res.writableLength === 0)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Ends the stream with an `event: close` saying why; a client that does not read it loses the connection after the close timeout. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.stop();
    this.res.end(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
    this.closeTimer = setTimeout(() => this.res.destroy(), this.limits.closeTimeout);
    this.closeTimer.unref();
  }

  /** The response closed (the client went, or the stream ended): nothing more is written. */
  gone(): void {
    this.closed = true;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.wake();
  }

  /** Drops the connection at once (a client that reads nothing at all). */
  destroy(): void {
    this.closed = true;
    this.res.destroy();
  }

  /** A comment line; proxies and the client see the stream alive. */
  heartbeat(): void {
    if (this.closed) return;
    if (this.res.writableLength === 0) this.lastProgress = Date.now();
    this.res.write(':\n\n');
  }

  /** How long bytes have been waiting without the client reading any (0 when nothing waits). */
  stalledFor(now: number): number {
    return this.res.writableLength === 0 ? 0 : now - this.lastProgress;
  }

  /** Whether the stream still holds its events back (not started): then nothing counts as drained. */
  protected get holding(): boolean {
    return false;
  }

  /** What was held back is written: the clock of {@link stalledFor} starts again. */
  protected progressed(): void {
    this.lastProgress = Date.now();
    if (this.res.writableLength === 0) this.wake();
  }

  /** Nothing more is written, with nothing to end (a stream whose response never started). */
  protected stop(): void {
    this.closed = true;
    this.wake();
  }

  /** Past the backpressure limit live traffic closes the stream (the client reconnects and recovers): never a hole. */
  protected tooSlow(): boolean {
    if (this.bufferedAmount <= this.limits.backpressureLimit) return false;
    this.onSlow();
    this.close(ChannelCloseCode.TryAgainLater, 'slow consumer: reconnect and recover');
    return true;
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const resolve of waiting) resolve();
  }
}
