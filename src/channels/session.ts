import { ChannelCloseCode, encodeErr, encodeOk, encodePong, type ClientRequest, type ErrorCode, type JsonObject, type Member, type PingRequest, type ReplyRequest } from '../wire/index.js';
import { ClientCalls } from './calls.js';
import { ChannelError } from './channel-error.js';
import type { HubCore } from './core.js';
import { EngineUnavailableError } from './engine.js';
import { DEFAULTS, type ChannelClient, type ChannelHubOptions, type ChannelIdentity, type ChannelRules, type RequestContext } from './hub-options.js';
import { RequestIntake, type IntakeOptions } from './intake.js';
import { TokenBucket, type RateLimit } from './rate-limit.js';
import { SubscriptionTable } from './subscription-table.js';

/** A request the session queues (ping and reply are answered at once). */
export type QueuedRequest = Exclude<ClientRequest, PingRequest | ReplyRequest>;

/** setTimeout's longest delay (2^31 − 1 ms, 24.8 days); a longer one fires at once. */
const MAX_TIMER_DELAY = 2 ** 31 - 1;
/** Where each connection's request queue starts: one settled promise shared by all, not one each. */
const SETTLED: Promise<void> = Promise.resolve();

/**
 * One connection's side of the hub: who it is and until when, its rate limits and strikes,
 * its requests in flight and the order they run in, and its subscriptions. Requests other
 * than rpc and ping run one after another, in the order they came; an rpc waits for those
 * before it but not for those after it.
 */
export class Session<A> {
  auth: A;
  member: Member | undefined;
  /** The authenticated user, which scopes idempotency keys and presence keys. */
  user: string | undefined;
  /** The client's random id (the `sender` of its first `sub` that had one), kept across its reconnects. */
  sender: string | undefined = undefined;
  /** The key its presence is kept under (see presence.ts); made on its first join. */
  presenceKey: string | undefined = undefined;
  /** Its presence state per channel (`state` requests); gone with the subscription. Made by the first state. */
  states: Map<string, JsonObject> | null = null;
  closed = false;
  /** Closed by the hub (abuse, expiry, the server API): its presence gets no grace period. */
  sentAway = false;
  readonly subscriptions = new SubscriptionTable<A>();
  private callsMade: ClientCalls | null = null;
  private authenticated: boolean;
  private expiresAt: number | undefined = undefined;
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;
  private queue: Promise<void> = SETTLED;
  /** Arrival rate limits, and the requests read and not yet answered (ping aside). */
  private readonly intake: RequestIntake;
  // Each op's bucket, made by its first request (as full as one made at connect): most
  // clients only subscribe. Fields, not a record of them: one object less per connection.
  private pubBucket: TokenBucket | null = null;
  private subBucket: TokenBucket | null = null;
  private rpcBucket: TokenBucket | null = null;
  /** Publish buckets of rules with their own rate: at most one per rule (the server's configuration bounds them). */
  private ruleBuckets: Map<ChannelRules, TokenBucket> | null = null;
  /** Times of recent bad or rate-limited requests; made by the first (most connections make none). */
  private strikes: number[] | null = null;

  constructor(
    readonly client: ChannelClient<A>,
    private readonly core: HubCore<A>,
  ) {
    const options = core.options;
    this.auth = client.auth;
    this.member = client.member;
    this.user = client.user;
    this.authenticated = options.authenticateToken === undefined || client.auth !== undefined;
    this.intake = new RequestIntake(intakeOptions(options), client);
  }

  /** The server API's calls to this connection that wait for its reply; made by the first call. */
  get calls(): ClientCalls {
    return (this.callsMade ??= new ClientCalls(this.core.options.maxPendingCalls ?? DEFAULTS.maxPendingCalls));
  }

  get context(): RequestContext<A> {
    return { client: this.client, auth: this.auth, user: this.user, isSubscribed: (channel) => this.subscriptions.has(channel) };
  }

  /** Takes one of the op's tokens: false when the connection does it too fast. */
  take(op: 'pub' | 'sub' | 'rpc'): boolean {
    const now = this.core.now();
    if (op === 'pub') return (this.pubBucket ??= new TokenBucket(this.rate(op), now)).take(now);
    if (op === 'sub') return (this.subBucket ??= new TokenBucket(this.rate(op), now)).take(now);
    return (this.rpcBucket ??= new TokenBucket(this.rate(op), now)).take(now);
  }

  private rate(op: 'pub' | 'sub' | 'rpc'): RateLimit {
    const { options } = this.core;
    if (op === 'pub') return options.publishRate ?? DEFAULTS.publishRate;
    return op === 'sub' ? (options.subscribeRate ?? DEFAULTS.subscribeRate) : (options.rpcRate ?? DEFAULTS.rpcRate);
  }

  /** Takes a publish token for a channel: from its rules' own bucket when they set a rate, else the connection's. */
  takePublish(rules: ChannelRules | undefined): boolean {
    const rate = rules?.publishRate;
    if (rate === undefined) return this.take('pub');
    this.ruleBuckets ??= new Map();
    let bucket = this.ruleBuckets.get(rules!);
    if (bucket === undefined) this.ruleBuckets.set(rules!, (bucket = new TokenBucket(rate, this.core.now())));
    return bucket.take(this.core.now());
  }

  /**
   * A valid request: a ping is answered at once, and a reply (which nothing queued may wait
   * for: an rpc handler may be awaiting it) settles its call at once; the rest wait their turn. An op limited on
   * arrival that comes too fast, or one past the bound of requests in flight of a client
   * that cannot pause, is refused without being queued.
   */
  receive(request: ClientRequest, size: number, execute: (request: QueuedRequest) => Promise<void>): void {
    const tooFast = this.intake.refusal(request.op, this.core.now());
    if (tooFast !== null) return this.fail(request.id, 'rate_limited', tooFast);
    if (request.op === 'ping') return this.client.sendReliable(encodePong(request.id));
    if (request.op === 'reply') return this.replied(request);
    const admitted = this.intake.admit(size);
    if (admitted === 'paused') this.core.metrics.readPauses++;
    if (admitted === 'refused') return this.fail(request.id, 'rate_limited', this.intake.boundMessage);
    if (request.op === 'rpc') {
      const released = (): void => this.intake.release(size, !this.closed);
      const before = this.queue;
      void this.run(request.id, async () => {
        await before;
        if (this.refused(request.id)) return;
        return execute(request);
      }).then(released, released);
      return;
    }
    // Checked in turn, not on arrival: an auth queued before the request may have settled it.
    const checked = request.op !== 'auth';
    const done = (): void => {
      this.intake.release(size, !this.closed);
      // The last request queued is done: the queue starts from the shared settled promise
      // again, and an idle connection holds none of its own.
      if (this.queue === tail) this.queue = SETTLED;
    };
    const tail = this.queue
      .then(() => this.run(request.id, () => (checked && this.refused(request.id) ? Promise.resolve() : execute(request))))
      .then(done, done);
    this.queue = tail;
  }

  /** Why this connection may not make requests now, or null. */
  refusal(): string | null {
    if (!this.authenticated) return 'authenticate first: send {"op":"auth","token":…}';
    if (this.expiresAt !== undefined && this.core.now() >= this.expiresAt) {
      return 'credentials expired: send a fresh token with {"op":"auth","token":…}';
    }
    return null;
  }

  /** Answers `unauthorized` (and true) when the connection may not make requests now. */
  refused(id: number): boolean {
    const refusal = this.refusal();
    if (refusal !== null) this.fail(id, 'unauthorized', refusal);
    return refusal !== null;
  }

  /** The identity an `auth` request proved (its member is replaced by the presence part). */
  identify(identity: ChannelIdentity<A>): void {
    this.auth = identity.auth;
    this.user = identity.user;
    this.authenticated = true;
    this.setExpiry(identity.expiresAt);
  }

  /** When the credentials stop being valid (undefined: never). */
  setExpiry(expiresAt: number | undefined): void {
    this.expiresAt = expiresAt;
    this.armExpiry();
  }

  /** Answers are never dropped: they are bounded by the request rate, and large ones are paced. */
  reply(text: string): void {
    if (!this.closed) this.client.sendReliable(text);
  }

  /** An `err` answer; `bad_request` and `rate_limited` are strikes, and `abuseLimit` of them close with 1008. */
  fail(id: number | undefined, code: ErrorCode, message: string): void {
    const { metrics, options } = this.core;
    metrics.errors[code]++;
    this.reply(encodeErr(id, code, message));
    if (code !== 'bad_request' && code !== 'rate_limited') return;
    const now = this.core.now();
    const window = options.abuseWindow ?? DEFAULTS.abuseWindow;
    const strikes = (this.strikes ??= []);
    strikes.push(now);
    while (strikes.length > 0 && strikes[0]! <= now - window) strikes.shift();
    if (strikes.length >= (options.abuseLimit ?? DEFAULTS.abuseLimit) && !this.closed) {
      metrics.abuseCloses++;
      this.close(ChannelCloseCode.PolicyViolation, 'too many bad or rate-limited requests');
    }
  }

  /** Closes the connection from the hub's side; its subscriptions and presence go at once (no grace: it was sent away). */
  close(code: number, reason: string): void {
    this.sentAway = true;
    this.client.close(code, reason);
    this.core.disconnect(this.client);
  }

  /** The connection is gone: nothing more is sent, and the expiry timer stops. */
  end(): void {
    this.closed = true;
    this.callsMade?.end();
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
  }

  /**
   * A reply to a call of the server's: `ok` when it settled one, `bad_request` (a strike)
   * when none with its number is waiting, so replies to calls never made cannot be sent
   * for free.
   */
  private replied(request: ReplyRequest): void {
    if (this.callsMade?.reply(request) === true) return this.reply(encodeOk(request.id));
    this.fail(request.id, 'bad_request', `no call ${request.call} is waiting for a reply (it timed out, was answered already, or was never made)`);
  }

  /** Runs a request; a thrown ChannelError answers its code, anything else `internal`. */
  private async run(id: number, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      if (this.closed) return;
      if (error instanceof ChannelError) {
        this.fail(id, error.code, error.message);
      } else if (error instanceof EngineUnavailableError) {
        // Never a silent drop: the request was not carried out, and the client is told.
        this.fail(id, 'internal', `unavailable: ${error.message}`);
      } else {
        this.core.report(error, this.context);
        this.fail(id, 'internal', 'internal error');
      }
    }
  }

  /**
   * At expiresAt the subscriptions end (nothing more is delivered to the old identity); a
   * grace period later, a connection that has not re-authenticated is closed with 4401.
   * A deadline past setTimeout's range is reached in steps.
   */
  private armExpiry(): void {
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    const expiresAt = this.expiresAt;
    if (expiresAt === undefined || this.closed) return;
    const now = this.core.now();
    const closeAt = expiresAt + (this.core.options.authGrace ?? DEFAULTS.authGrace);
    if (now >= closeAt) return this.close(ChannelCloseCode.Unauthorized, 'credentials expired');
    if (now >= expiresAt) {
      for (const channel of this.subscriptions.channels()) {
        this.core.endSubscription(this, channel, 'unauthorized', 'credentials expired: authenticate again, then subscribe');
      }
    }
    const next = now < expiresAt ? expiresAt : closeAt;
    this.expiryTimer = setTimeout(() => this.armExpiry(), Math.min(next - now, MAX_TIMER_DELAY));
    (this.expiryTimer as { unref?: () => void }).unref?.();
  }
}

/** The intake's options of a hub, made once per hub: every connection's intake shares them. */
const intakeOptionsOf = new WeakMap<object, IntakeOptions>();

function intakeOptions<A>(o: ChannelHubOptions<A>): IntakeOptions {
  let made = intakeOptionsOf.get(o);
  if (made === undefined) {
    made = {
      rates: { history: o.historyRate, presence: o.presenceRate, unsub: o.unsubscribeRate, ping: o.pingRate, auth: o.authRate },
      maxPendingRequests: o.maxPendingRequests,
      maxPendingBytes: o.maxPendingBytes,
    };
    intakeOptionsOf.set(o, made);
  }
  return made;
}
