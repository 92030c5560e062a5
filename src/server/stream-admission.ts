/**
 * The count of long-lived HTTP streams a server holds: /sse streams and HTTP sessions
 * (http-session.ts) share one pool, so that a client cannot double its share by using both.
 * A stream counts from its admission until its response closes.
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { EventEmitter } from 'node:events';
import { compileTrustProxy, headerMap, type TrustProxy } from '../node/trust-proxy.js';
import type { UpgradeRejection } from '../node/server.js';
import type { RateLimit } from '../channels/rate-limit.js';
import { ConnectionRatePerAddress } from './address-limit.js';

/** The bounds of a {@link StreamAdmission}. */
export interface StreamAdmissionOptions {
  /** Streams at once, every client together; past it, 503 with Retry-After. */
  maxStreams: number;
  /** Streams at once from one client address; past it, 429 with Retry-After. */
  maxStreamsPerAddress: number;
  /** Proxies whose `X-Forwarded-For`/`Forwarded` are believed for the per-address count. */
  trustProxy?: TrustProxy;
  /**
   * New streams per second from one client address, with a burst; past it, 429 with
   * Retry-After (default {@link DEFAULT_STREAM_RATE_PER_ADDRESS}; null: no limit).
   */
  ratePerAddress?: RateLimit | null;
}

/**
 * New streams per client address: 20 a second, 200 at once. Twice the per-address count
 * at once (where WebSocket connections get their count once): EventSource reopens a
 * dropped stream by itself every `retry`, so a client holding its full share may reopen it
 * all twice in quick succession, after a restart and a network change.
 */
export const DEFAULT_STREAM_RATE_PER_ADDRESS: RateLimit = { perSecond: 20, burst: 200 };

/** Counts open HTTP streams, in all and per client address, and refuses those past the bounds. */
export class StreamAdmission {
  private open = 0;
  private readonly byAddress = new Map<string, number>();
  private readonly clientAddress: ReturnType<typeof compileTrustProxy>;
  private readonly rate: ConnectionRatePerAddress;

  /** A count with these bounds. */
  constructor(private readonly options: StreamAdmissionOptions) {
    this.clientAddress = compileTrustProxy(options.trustProxy);
    this.rate = new ConnectionRatePerAddress(options.ratePerAddress === undefined ? DEFAULT_STREAM_RATE_PER_ADDRESS : options.ratePerAddress);
  }

  /** Streams counted now. */
  get size(): number {
    return this.open;
  }

  /** The client's address, as the per-address count sees it. */
  addressOf(req: IncomingMessage | Http2ServerRequest): string {
    const peer = req.socket.remoteAddress ?? '';
    return this.clientAddress === null ? peer : this.clientAddress(peer, headerMap(req.headers));
  }

  /** Counts one more stream until `res` closes, or says why not. `noun` names it in the refusal. */
  admit(req: IncomingMessage | Http2ServerRequest, res: EventEmitter, noun: string): UpgradeRejection | null {
    const { maxStreams, maxStreamsPerAddress } = this.options;
    const address = this.addressOf(req);
    const mine = this.byAddress.get(address) ?? 0;
    if (this.open >= maxStreams) return { status: 503, message: `too many ${noun}`, headers: { 'Retry-After': '5' } };
    if (mine >= maxStreamsPerAddress) return { status: 429, message: `at most ${maxStreamsPerAddress} ${noun} per client address`, headers: { 'Retry-After': '5' } };
    // After the counts: a stream they refuse takes no token.
    if (!this.rate.take(address)) return { status: 429, message: `opening ${noun} too fast from this address`, headers: { 'Retry-After': '1' } };
    this.byAddress.set(address, mine + 1);
    this.open++;
    res.once('close', () => {
      this.open--;
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left === 0) this.byAddress.delete(address);
      else this.byAddress.set(address, left);
    });
    return null;
  }
}
