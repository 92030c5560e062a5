import type { Json, Member } from '../wire/index.js';
import { Emitter } from './emitter.js';

/** Where a channel's stream stands: what a subscription resumes from after a reconnect. */
export interface ChannelPosition {
  epoch: string;
  offset: number;
}

export interface MessageMeta {
  offset: number;
  epoch: string;
}

/** A page of a channel's history, oldest first. */
export interface HistoryPage<T> {
  epoch: string;
  messages: Array<{ offset: number; data: T }>;
  /** Older messages are kept: read them with `history({ before: messages[0].offset })`. */
  more: boolean;
}

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

export type ChannelEvents<T> = {
  message: [data: T, meta: MessageMeta];
  subscribed: [event: SubscribedEvent];
  join: [member: Member];
  leave: [member: Member];
  /**
   * The server refused a resubscription, or ended the subscription itself (the connection's
   * identity changed and may no longer read it, or its credentials expired): the channel is
   * unsubscribed. `error.code` says why (`forbidden`, `unauthorized`, …).
   */
  error: [error: Error];
};

/** What a channel needs from its client. */
export interface ChannelHost {
  subscribeChannel(channel: Channel<never>): Promise<SubscribedEvent>;
  unsubscribeChannel(channel: Channel<never>): void;
  publishTo(name: string, data: Json, key: string | undefined): Promise<{ offset: number; delivered: number }>;
  historyOf(name: string, options: HistoryOptions): Promise<HistoryPage<Json>>;
  presenceOf(name: string): Promise<Member[]>;
  /** The channel saw a gap in its offsets: subscribe again from its position. */
  resync(channel: Channel<never>): void;
}

/**
 * One channel of a client. Subscribing is remembered: after a reconnect the client
 * subscribes again from the last offset seen, so `message` handlers see every message
 * once and in order; when that is impossible `subscribed` says `recovered: false`.
 */
export class Channel<T = Json> extends Emitter<ChannelEvents<T>> {
  /** Whether the application wants this channel subscribed (kept across reconnects). */
  wanted = false;
  /** The last message seen; null before the first subscription answers. */
  position: ChannelPosition | null = null;
  /** A gap was seen: nothing is delivered until the resubscription it caused is answered. */
  private resyncing = false;

  constructor(
    readonly name: string,
    private readonly host: ChannelHost,
  ) {
    super();
  }

  /**
   * Subscribes (and stays subscribed across reconnects until `unsubscribe`). `handler`, if
   * given, is added as a `message` listener. Resolves once the server answered.
   */
  subscribe(handler?: (data: T, meta: MessageMeta) => void): Promise<SubscribedEvent> {
    if (handler !== undefined) this.on('message', handler);
    return this.host.subscribeChannel(this as unknown as Channel<never>);
  }

  unsubscribe(): void {
    this.host.unsubscribeChannel(this as unknown as Channel<never>);
  }

  /**
   * Publishes `data`; resolves with its offset and how many subscribers it reached. Retried
   * after a reconnect with the same idempotency key, so it is delivered exactly once.
   */
  publish(data: T, options: { key?: string } = {}): Promise<{ offset: number; delivered: number }> {
    return this.host.publishTo(this.name, data as Json, options.key);
  }

  /**
   * The newest messages (at most `limit`, before `before` if given), with the epoch their
   * offsets belong to. The server answers in pages bounded in bytes; they are followed
   * until `limit` messages are in or none older are kept (then `more` is false).
   */
  history(options: HistoryOptions = {}): Promise<HistoryPage<T>> {
    return this.host.historyOf(this.name, options) as Promise<HistoryPage<T>>;
  }

  presence(): Promise<Member[]> {
    return this.host.presenceOf(this.name);
  }

  /**
   * Called by the client: a message for this channel, dropped if already seen. One that
   * skips an offset is never delivered past the hole: the channel subscribes again from
   * its position, which replays what is missing or says `recovered: false`.
   */
  receive(offset: number, data: Json): void {
    const last = this.position;
    // Messages follow a sub's answer, which set the position; one at or before it was seen.
    if (last === null || offset <= last.offset || this.resyncing) return;
    if (offset !== last.offset + 1) {
      this.resyncing = true;
      this.host.resync(this as unknown as Channel<never>);
      return;
    }
    this.position = { epoch: last.epoch, offset };
    this.emit('message', data as T, { offset, epoch: last.epoch });
  }

  /** Called by the client on a sub's answer. */
  subscribed(event: SubscribedEvent): void {
    this.resyncing = false;
    // Recovered: the replay follows and moves the position on. Otherwise live messages
    // start after the answer's offset.
    if (!event.recovered || this.position === null || this.position.epoch !== event.epoch) {
      this.position = { epoch: event.epoch, offset: event.offset };
    }
    this.emit('subscribed', event);
  }

  presenceEvent(kind: 'join' | 'leave', member: Member): void {
    this.emit(kind, member);
  }

  failed(error: Error): void {
    this.emit('error', error);
  }
}
