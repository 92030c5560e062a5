import { ChannelCloseCode, encodeMsg, type ErrorCode } from '../wire/index.js';
import type { ChannelMessage, StreamPosition } from './engine.js';
import type { ChannelMetrics } from './metrics.js';
import type { Session } from './session.js';

/**
 * One connection's subscription to one channel, on its way from history to live. It joins
 * the channel's stream first and keeps what arrives while it reads history; once answered
 * it replays what was missed, then the kept messages it did not already send (by offset),
 * each once the connection has room, and only then goes live, so nothing is missed or
 * sent twice. Messages that arrive after the kept ones ran out but before this node's
 * deliveries reached the replay's end are caught up one by one.
 */
export class Subscription<A> {
  /** Live messages that arrived while reading or replaying history; null once they ran out. */
  buffer: ChannelMessage[] | null = [];
  /** Whether the sub was answered: presence events go out from then on. */
  answered = false;
  /** Set when the server ended it before it was answered: it ends right after its answer. */
  ending: { code: ErrorCode; message: string } | null = null;
  /** The stream's epoch and the last offset sent to this connection. */
  epoch = '';
  last = 0;
  /** Bytes of data in `buffer`: past the connection's backpressure limit it is closed as slow. */
  private kept = 0;

  constructor(
    readonly session: Session<A>,
    readonly channel: string,
    private readonly metrics: ChannelMetrics,
    /** The subscription token it was made with: asked again when the identity changes. */
    readonly token?: string,
  ) {}

  /** False once the connection closed or dropped this subscription. */
  get current(): boolean {
    return !this.session.closed && this.session.subscriptions.get(this.channel) === this;
  }

  /** The sub was answered at `position`: the replay starts after it. */
  answer(position: StreamPosition): void {
    this.epoch = position.epoch;
    this.last = position.offset;
    this.answered = true;
  }

  /**
   * Keeps a live message that arrived while reading or replaying history. What is kept is
   * bounded like a socket's buffer: past the backpressure limit the client is too slow
   * for the channel, and is closed with 1013 to reconnect and recover.
   */
  keep(message: ChannelMessage): void {
    this.buffer!.push(message);
    this.kept += keptSize(message);
    const session = this.session;
    if (this.kept <= session.client.backpressureLimit || session.closed) return;
    this.metrics.slowConsumerCloses++;
    session.close(ChannelCloseCode.TryAgainLater, 'slow consumer: reconnect and recover');
  }

  /**
   * A message after the kept ones ran out, before the subscription is live: sent unless
   * already sent. True when the subscription has reached it (and may go live).
   */
  catchUp(message: ChannelMessage): boolean {
    if (message.epoch !== this.epoch || message.offset < this.last) return false;
    if (message.offset === this.last) return true;
    this.session.client.send(encodeMsg(message.channel, message.offset, message.data));
    this.metrics.deliveries++;
    this.last = message.offset;
    return true;
  }

  /**
   * Sends what was missed, then the live messages kept meanwhile, each once the connection
   * has room (a replay larger than the backpressure limit waits for the client to read
   * instead of meeting the slow-consumer policy). True when it went through; false when
   * the subscription ended meanwhile.
   */
  async replay(missed: readonly ChannelMessage[]): Promise<boolean> {
    // The missed messages end at the answer's offset, where `last` stands already.
    for (const message of missed) {
      await pace(this.session);
      if (!this.current) return false;
      this.sendReplayed(message);
    }
    // Kept messages are taken from the front by index (many small ones must not cost a
    // shift each); what was sent is cut off now and then. More may arrive meanwhile.
    const kept = this.buffer!;
    let next = 0;
    while (next < kept.length) {
      await pace(this.session);
      if (!this.current) return false;
      const message = kept[next++]!;
      this.kept -= keptSize(message);
      if (next >= 1024 && next * 2 >= kept.length) {
        kept.splice(0, next);
        next = 0;
      }
      if (message.epoch !== this.epoch || message.offset <= this.last) continue;
      this.sendReplayed(message);
      this.last = message.offset;
    }
    this.buffer = null;
    return true;
  }

  /** One message of a replay: never dropped (the replay is paced instead). */
  private sendReplayed(message: ChannelMessage): void {
    this.session.client.sendReliable(encodeMsg(message.channel, message.offset, message.data));
    this.metrics.deliveries++;
  }
}

/**
 * Waits while the connection holds half its backpressure limit or more: what is sent
 * reliably (replays, history pages) stays within the limit plus one message, and leaves
 * room for live messages, which meet the slow-consumer policy past the limit.
 */
export async function pace<A>(session: Session<A>): Promise<void> {
  const client = session.client;
  if (!session.closed && client.bufferedAmount >= client.backpressureLimit / 2) await client.drained();
}

/** What a kept message counts toward the backpressure limit: about its frame. */
function keptSize(message: ChannelMessage): number {
  return message.data.length + message.channel.length + 48;
}
