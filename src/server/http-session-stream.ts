/**
 * The downstream of one HTTP session (http-session.ts) as the channel hub sees it: a
 * connection (a {@link TransportClient}) whose every hotline.v1 text (answers, messages,
 * presence, pushes, server calls) is one `data:` event, in the order the hub sent them.
 * Unlike an /sse stream it translates nothing: the SDK reads the same texts as over /ws.
 * Live traffic past the backpressure limit closes the session (event `close`, 1013): the
 * SDK opens another and recovers, so a slow reader is never silently thinned.
 */
import type { ChannelIdentity } from '../channels/index.js';
import type { Member } from '../wire/index.js';
import { ChannelCloseCode } from '../wire/index.js';
import type { TransportClient } from './channels.js';
import { dataField, type StreamLimits, type StreamResponse } from './sse-stream.js';

export class SessionStream<A> implements TransportClient<A> {
  readonly auth: A;
  readonly member: Member | undefined;
  readonly user: string | undefined;
  /** Set once nothing more is written (closed by either side). */
  closed = false;
  /** POST bodies being read for this session now. */
  posting = 0;
  /** The client's address (as the per-address count sees it), for the inspector. */
  address = '';
  /** When it opened (ms since the epoch), for the inspector. */
  readonly openedAt = Date.now();
  private waiters: Array<() => void> = [];
  private lastProgress = Date.now();
  private closeTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    /** The client id the hub knows it by (`NODE.hN`). */
    readonly id: string,
    identity: ChannelIdentity<A>,
    private readonly res: StreamResponse,
    private readonly limits: StreamLimits,
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

  /** The headers, and the `session` event that tells the client the id its POSTs carry. */
  start(session: string): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      // no-transform: a proxy that compresses would hold events back to fill its blocks.
      'cache-control': 'no-cache, no-store, no-transform',
      'x-accel-buffering': 'no',
    });
    this.res.write(`event: session\ndata: ${JSON.stringify({ session, client: this.id })}\n\n`);
  }

  send(text: string): void {
    if (!this.closed && !this.tooSlow()) this.res.write(dataField(text));
  }

  sendReliable(text: string): void {
    if (!this.closed) this.res.write(dataField(text));
  }

  deliver(text: string): boolean {
    if (this.closed || this.tooSlow()) return false;
    this.res.write(dataField(text));
    return true;
  }

  get bufferedAmount(): number {
    return this.res.writableLength;
  }

  get backpressureLimit(): number {
    return this.limits.backpressureLimit;
  }

  drained(): Promise<void> {
    if (this.closed || this.res.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Ends the session with an `event: close` saying why, as a WebSocket close frame would. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.wake();
    this.res.end(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
    // A client that does not read its last bytes does not keep the connection past this.
    this.closeTimer = setTimeout(() => this.res.destroy(), this.limits.closeTimeout);
    this.closeTimer.unref();
  }

  /** The response closed (the client went, or the session ended): nothing more is written. */
  gone(): void {
    this.closed = true;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.wake();
  }

  /** Drops the stream at once (a client that reads nothing at all). */
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

  private tooSlow(): boolean {
    if (this.res.writableLength <= this.limits.backpressureLimit) return false;
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
