import type { Data, Json, JsonObject, Member, SubOk } from '../wire/index.js';
import { Emitter } from './emitter.js';
import { HotlineError, closedError } from './errors.js';
import { ChannelPresence, type PresenceSnapshot } from './presence.js';
import { Timer } from './timer.js';

/** Where a channel's stream stands: what a subscription resumes from after a reconnect. */
export interface ChannelPosition {
  /** The run of the channel's stream the offset belongs to; a new epoch means history was lost. */
  epoch: string;
  /** The offset of the last message in that epoch (0 before the first). */
  offset: number;
}

/** Where a delivered message sits in its channel's stream (the second argument of a `message` listener). */
export interface MessageMeta {
  /** Its offset: one more than the message delivered before it. */
  offset: number;
  /** The epoch its offset belongs to. */
  epoch: string;
}

/** Who sent an ephemeral message, as the server tells it. */
export interface EphemeralMeta {
  /** The publisher's client id (its presence member's `client`), stamped by the server; absent from an older server. */
  client?: string;
}

/** A page of a channel's history, oldest first. */
export interface HistoryPage<T> {
  /** The epoch the offsets belong to: subscribing `since` it and the last offset follows on without a gap. */
  epoch: string;
  /** The messages, oldest first. */
  messages: Array<{
    /** The message's offset in `epoch`. */
    offset: number;
    /** The message as published (typed by the channel's contract, when there is one). */
    data: T;
  }>;
  /** Older messages are kept: read them with `history({ before: messages[0].offset })`. */
  more: boolean;
}

/** Which page of history {@link Channel.history} reads. */
export interface HistoryOptions {
  /** How many of the newest messages (default 50, as the server's default; at most 1000). */
  limit?: number;
  /** Only messages older than this offset (of the same epoch): the page before one you have. */
  before?: number;
}

/** Told after every (re)subscription: whether everything since the last message was replayed. */
export interface SubscribedEvent extends ChannelPosition {
  /** False when missed messages could not be replayed (history lost or trimmed): reload your state. */
  recovered: boolean;
  /** True on the first subscription, false after a reconnect. */
  first: boolean;
}

/**
 * Where a channel's subscription stands. Only `subscribed` delivers messages.
 * - `unsubscribed`: not asked for (or `unsubscribe()`d, or the client closed);
 * - `waiting`: asked for, and subscribed as soon as the connection is (back) up;
 * - `subscribing`: a `sub` is on its way;
 * - `subscribed`: answered; messages flow;
 * - `resyncing`: a message skipped an offset; subscribing again from the last one delivered;
 * - `retrying`: a `sub` timed out or was refused for now (`internal`, `rate_limited`): it is
 *   tried again after a backoff (the `state` event carries the error);
 * - `errored`: refused for good (`forbidden`, `unauthorized`, …) or ended by the server:
 *   the `error` event says why; `subscribe()` tries again.
 */
export type ChannelState = 'unsubscribed' | 'waiting' | 'subscribing' | 'subscribed' | 'resyncing' | 'retrying' | 'errored';

/** The events of a {@link Channel} and their listeners' arguments. */
export type ChannelEvents<T> = {
  /** A message, delivered once and in offset order, live or replayed after a reconnect. */
  message: [data: T, meta: MessageMeta];
  /** The server answered a (re)subscription; check `recovered` after a reconnect. */
  subscribed: [event: SubscribedEvent];
  /** The state changed; `error` says why for `retrying` and `errored`. */
  state: [state: ChannelState, error?: Error];
  /**
   * An ephemeral message (`publish(data, { ephemeral: true })`): to the subscribers of the
   * moment only, with no offset, never replayed; not a `message`, so gaps stay exact.
   */
  ephemeral: [data: T, meta: EphemeralMeta];
  /** A client subscribed to the channel, with this presence member. */
  join: [member: Member];
  /** A member's presence state changed; this is its new member. */
  update: [member: Member];
  /** A client with this member unsubscribed, or disconnected and did not come back within the server's grace period. */
  leave: [member: Member];
  /**
   * The server refused the subscription for good, or ended it itself (the connection's
   * identity changed and may no longer read it, or its credentials expired): the channel
   * is `errored`. `error.code` says why (`forbidden`, `unauthorized`, …).
   */
  error: [error: Error];
};

/** What a channel needs from its client. */
export interface ChannelHost {
  /** Whether a `sub` would go out now. */
  online(): boolean;
  /** Whether the client is closed for good. */
  closed(): boolean;
  /** Sends `sub` (with a subscription token, if any); one of the callbacks runs when the answer arrives (or it times out). */
  sub(name: string, since: ChannelPosition | null, token: string | undefined, done: (reply: SubOk) => void, failed: (error: HotlineError) => void): void;
  /** Sends `unsub` if the connection is open. */
  unsub(name: string): void;
  /** How long to wait before the `retry`-th (from 0) retry of a subscription refused for now. */
  retryDelay(retry: number): number;
  publishTo(name: string, data: Data, key: string | undefined): Promise<{ offset: number; delivered: number }>;
  /** Sends an ephemeral publish; fails (not resent) when the connection drops first. */
  publishEphemeral(name: string, data: Data): Promise<{ delivered: number }>;
  historyOf(name: string, options: HistoryOptions): Promise<HistoryPage<Json>>;
  presenceOf(name: string): Promise<PresenceSnapshot>;
  /** Sends a `state` request (null clears the state). */
  stateOf(name: string, state: JsonObject | null): Promise<void>;
}

/** How a channel proves it may be subscribed to, on servers that ask (private channels). */
export interface SubscribeOptions {
  /** A subscription token from the application's backend, sent with every `sub`. */
  token?: string;
  /**
   * Fetches a fresh subscription token before each `sub` (the first and every resubscribe
   * after a reconnect): tokens expire. Wins over `token`. A failure ends the subscription
   * (`errored`, code `unauthorized`).
   */
  getToken?(channel: string): string | Promise<string>;
}

/** Refusals that subscribing again cannot change: the subscription ends. */
const FINAL_CODES: readonly string[] = ['forbidden', 'unauthorized', 'not_found', 'bad_request', 'too_large'];

/**
 * One channel of a client. Subscribing is remembered: after a reconnect the channel
 * subscribes again from the last offset seen, so `message` handlers see every message
 * once and in order; when that is impossible `subscribed` says `recovered: false`.
 * `T` is what subscribers receive, `In` what publishers send (they differ when a contract's
 * schema transforms the data).
 */
export class Channel<T = Json, In = T> extends Emitter<ChannelEvents<T>> {
  private current: ChannelState = 'unsubscribed';
  private last: ChannelPosition | null = null;
  /** subscribe() calls waiting for the answer. */
  private waiters: Array<{ resolve(event: SubscribedEvent): void; reject(error: Error): void }> = [];
  /** The `sub` in flight: the answer to any other is stale. */
  private attempt: object | null = null;
  /** Refusals for now in a row: how far the backoff has grown. */
  private retries = 0;
  /** The wait before subscribing again after a refusal for now. */
  private readonly rejoin = new Timer();
  /** How it proves it may subscribe (client.channel's options). */
  private access: SubscribeOptions = {};
  /**
   * Who is here: a live member map kept current across reconnects (`get()`, `subscribe(cb)`),
   * and this client's presence state on the channel (`enter`, `update`, `leave`).
   */
  readonly presence: ChannelPresence;

  constructor(
    /** The channel's name, as given to `client.channel()`. */
    readonly name: string,
    private readonly host: ChannelHost,
  ) {
    super();
    this.presence = new ChannelPresence({
      fetch: () => host.presenceOf(name),
      send: (state) => host.stateOf(name, state),
      subscribed: () => this.current === 'subscribed',
    });
  }

  /** Where the subscription stands; every change is a `state` event. */
  get state(): ChannelState {
    return this.current;
  }

  /** Sets the subscription token (or how to get one) the next `sub` sends. */
  configure(options: SubscribeOptions): void {
    this.access = { token: options.token, getToken: options.getToken };
  }

  /** The last message delivered (or where the last answer started); null before the first answer. */
  get position(): ChannelPosition | null {
    return this.last;
  }

  /**
   * Subscribes (and stays subscribed across reconnects until `unsubscribe`). `handler`, if
   * given, is added as a `message` listener. Resolves once the server answered, after any
   * retries; rejects when the subscription is refused for good, withdrawn or the client closes.
   */
  subscribe(handler?: (data: T, meta: MessageMeta) => void): Promise<SubscribedEvent> {
    if (handler !== undefined) this.on('message', handler);
    if (this.host.closed()) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      // Already subscribed: answer with where it stands.
      if (this.current === 'subscribed') return resolve({ ...this.last!, recovered: true, first: false });
      this.waiters.push({ resolve, reject });
      if (!this.wanted) this.join();
    });
  }

  /**
   * Ends the subscription (and its resubscribing after reconnects); a `subscribe()` still
   * waiting rejects `cancelled`. Listeners stay: a later `subscribe()` uses them again.
   */
  unsubscribe(): void {
    if (!this.wanted) return;
    // First, so that a subscribe() from a state listener goes out after it.
    this.host.unsub(this.name);
    this.stop('unsubscribed', new HotlineError('cancelled', 'unsubscribed before the server answered'));
  }

  /**
   * Publishes `data`; resolves with its offset and how many subscribers it reached. Retried
   * after a reconnect with the same idempotency key, so it is delivered exactly once.
   *
   * With `ephemeral: true` (cursors, typing, game ticks) it goes to the subscribers of the
   * moment only, as an `ephemeral` event: no offset, no history, no recovery, no retry (it
   * fails `disconnected` if the connection drops first), and it is the first thing the
   * server drops for a slow subscriber. It counts against the same publish rate.
   */
  publish(
    data: In,
    options: {
      /** Sends it as an ephemeral message (see above). */
      ephemeral: true;
    },
  ): Promise<{
    /** Subscribers it was sent to, on every node. */
    delivered: number;
  }>;
  publish(
    data: In,
    options?: {
      /** Your own idempotency key; by default the client makes one, so retries are recognised anyway. */
      key?: string;
      /** False (the default): a message with an offset, kept in history. */
      ephemeral?: false;
    },
  ): Promise<{
    /** The message's offset in the channel's epoch. */
    offset: number;
    /** Subscribers it reached, on every node; 0 when the server had it already (a repeat). */
    delivered: number;
  }>;
  publish(data: In, options: { key?: string; ephemeral?: boolean } = {}): Promise<{ offset?: number; delivered: number }> {
    if (options.ephemeral === true) return this.host.publishEphemeral(this.name, data as Data);
    return this.host.publishTo(this.name, data as Data, options.key);
  }

  /**
   * The newest messages (at most `limit`, before `before` if given), with the epoch their
   * offsets belong to. The server answers in pages bounded in bytes; they are followed
   * until `limit` messages are in or none older are kept (then `more` is false).
   */
  history(options: HistoryOptions = {}): Promise<HistoryPage<T>> {
    return this.host.historyOf(this.name, options) as Promise<HistoryPage<T>>;
  }

  // ─────────────── called by the client ───────────────

  /**
   * A message for this channel: delivered only while subscribed, each offset once. One that
   * skips an offset is never delivered past the hole: the channel leaves and subscribes
   * again from its position on the same connection (requests are handled in order, so
   * nothing of the old subscription follows the new one's answer), and the replay fills
   * the hole or the answer says `recovered: false`.
   * @internal Called by the client; an application listens to `message` instead.
   */
  receive(offset: number, data: Json): void {
    const last = this.last;
    if (this.current !== 'subscribed' || last === null || offset <= last.offset) return;
    if (offset !== last.offset + 1) {
      this.host.unsub(this.name);
      this.join('resyncing');
      return;
    }
    this.last = { epoch: last.epoch, offset };
    this.emit('message', data as T, { offset, epoch: last.epoch });
  }

  /** @internal Called by the client: a `join`, `update` or `leave` push for this channel: the live map moves on, and the event is emitted. */
  presenceEvent(kind: 'join' | 'update' | 'leave', member: Member): void {
    if (!this.wanted) return;
    this.presence.event(kind, member);
    this.emit(kind, member);
  }

  /** @internal Called by the client: an ephemeral message, delivered only while subscribed. */
  receiveEphemeral(data: Json, client?: string): void {
    if (this.current === 'subscribed') this.emit('ephemeral', data as T, client === undefined ? {} : { client });
  }

  /** @internal Called by the client: the connection is up (and authenticated); a channel waiting for it subscribes. */
  connected(): void {
    if (this.current === 'waiting') this.join();
  }

  /**
   * @internal Called by the client: the server's subscription is gone (with the connection,
   * or ended at the expiry of credentials the client is refreshing); made again once the
   * client is connected (and authenticated) again.
   */
  disconnected(): void {
    if (!this.wanted) return;
    this.attempt = null;
    this.rejoin.clear();
    this.set('waiting');
  }

  /** @internal Called by the client: it could not authenticate again for the channels waiting on it; they end. */
  waitingEnded(error: HotlineError): void {
    if (this.current === 'waiting') this.stop('errored', error);
  }

  /** @internal Called by the client: the server ended the subscription (an `unsub` push); not resumed. */
  ended(error: HotlineError): void {
    if (this.wanted) this.stop('errored', error);
  }

  /** @internal Called by the client: it closed for good. */
  closed(error: HotlineError): void {
    if (this.wanted) this.stop('unsubscribed', error);
  }

  // ─────────────── the subscription ───────────────

  private get wanted(): boolean {
    return this.current !== 'unsubscribed' && this.current !== 'errored';
  }

  private join(state: 'subscribing' | 'resyncing' = 'subscribing'): void {
    this.rejoin.clear();
    if (!this.host.online()) return this.set('waiting');
    const attempt = {};
    this.attempt = attempt;
    const first = this.last === null;
    const send = (token: string | undefined): void => {
      // Fetching the token took time: the connection may be gone, or this attempt abandoned.
      if (this.attempt !== attempt || !this.host.online()) return;
      this.host.sub(
        this.name,
        this.last,
        token,
        (reply) => {
          if (this.attempt === attempt) this.joined(reply, first);
        },
        (error) => {
          if (this.attempt === attempt) this.refused(error);
        },
      );
    };
    const { getToken } = this.access;
    if (getToken === undefined) send(this.access.token);
    else {
      Promise.resolve()
        .then(() => getToken(this.name))
        .then(send, (error: unknown) => {
          if (this.attempt === attempt) this.refused(new HotlineError('unauthorized', `getToken(${this.name}) failed: ${error instanceof Error ? error.message : String(error)}`));
        });
    }
    this.set(state);
  }

  private joined(reply: SubOk, first: boolean): void {
    this.attempt = null;
    this.retries = 0;
    const { epoch, offset, recovered } = reply;
    // Recovered: the replay follows and moves the position on. Otherwise live messages
    // start after the answer's offset.
    if (!recovered || this.last === null || this.last.epoch !== epoch) this.last = { epoch, offset };
    const event: SubscribedEvent = { epoch, offset, recovered, first };
    const waiters = this.waiters;
    this.waiters = [];
    this.set('subscribed');
    // Requests go in order, so the snapshot is read after this subscription joined.
    if (this.current === 'subscribed') this.presence.resync(reply.client);
    this.emit('subscribed', event);
    for (const waiter of waiters) waiter.resolve(event);
  }

  private refused(error: HotlineError): void {
    this.attempt = null;
    if (FINAL_CODES.includes(error.code)) return this.stop('errored', error);
    // A sub that timed out may still be carried out: leave, so that the next is not
    // refused as a repeat, and nothing of it is taken for the next one's.
    if (error.code === 'timeout') this.host.unsub(this.name);
    this.rejoin.set(this.host.retryDelay(this.retries++), () => this.join());
    this.set('retrying', error);
  }

  /** Stops trying: no sub in flight, no retry, no position; waiting subscribe() calls get `error`. */
  private stop(state: 'unsubscribed' | 'errored', error: Error): void {
    this.attempt = null;
    this.rejoin.clear();
    this.last = null;
    this.retries = 0;
    const waiters = this.waiters;
    this.waiters = [];
    const failed = state === 'errored';
    this.presence.clear();
    this.set(state, failed ? error : undefined);
    if (failed) this.emit('error', error);
    for (const waiter of waiters) waiter.reject(error);
  }

  private set(state: ChannelState, error?: Error): void {
    if (this.current === state) return;
    this.current = state;
    this.emit('state', state, error);
  }
}
