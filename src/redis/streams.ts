import type { ChannelMessage, HistoryQuery, HistoryResult, StreamPosition } from '../channels/index.js';

/** What the streams need of the engine. */
export interface StreamSource {
  /** Reads a channel's history, without waiting for the live stream. */
  read(channel: string, query: HistoryQuery): Promise<HistoryResult>;
  /** Hands a message on: per channel in offset order, each once. */
  deliver(message: ChannelMessage): void;
  /** Whether Redis answers now: a failed fill is retried only then (else by {@link ChannelStreams.recover}). */
  healthy(): boolean;
  /** A stream lost its epoch after messages of it went out: the listener must re-read its channels. */
  broken(): void;
  /** How long a history read waits at most for the live stream to catch up (ms). */
  readonly commandTimeout: number;
}

/** A channel this node subscribed to. */
interface Stream {
  channel: string;
  /** The last message delivered (or, before any, where the stream stood when subscribed). */
  last: StreamPosition | null;
  /** Whether a message of this channel was delivered since the subscribe. */
  delivered: boolean;
  /** While the stream is being read from history (a gap to fill), live messages wait here. */
  waiting: ChannelMessage[] | null;
  /** The stream lost its epoch after messages went out: nothing more is delivered. */
  broken: boolean;
  /** history() calls waiting for the live stream to reach the position they read (in last's epoch). */
  catchUp: Array<{ offset: number; resolve: () => void }>;
}

/** How long a history read waits for the live stream before reading the gap itself (ms). */
const NUDGE_DELAY = 100;
/** How soon a fill that Redis did not answer is tried again, while healthy (ms). */
const FILL_RETRY = 250;

/**
 * The live streams of the channels this node subscribed to, delivered in offset order and
 * each message once: repeats are dropped, and a gap (messages missed while a subscription
 * was down, or a pub/sub message overtaken by a read) is filled from history before
 * anything after it goes out. A history read waits until the live stream has delivered
 * what it read, so that a caller going live at that position misses nothing and gets
 * nothing twice. After an outage every stream is filled from where it stopped.
 */
export class ChannelStreams {
  private readonly streams = new Map<string, Stream>();

  constructor(private readonly source: StreamSource) {}

  get channels(): IterableIterator<string> {
    return this.streams.keys();
  }

  has(channel: string): boolean {
    return this.streams.has(channel);
  }

  /** A new subscription: live messages wait until {@link position} sets where it starts. */
  open(channel: string): object {
    const stream: Stream = { channel, last: null, delivered: false, waiting: [], broken: false, catchUp: [] };
    this.streams.set(channel, stream);
    return stream;
  }

  /** Whether `token` (from {@link open}) is still its channel's stream. */
  isOpen(channel: string, token: object): boolean {
    return this.streams.get(channel) === token;
  }

  /** Where a new subscription starts: where the stream stands once its pub/sub is live. */
  async position(channel: string): Promise<void> {
    const stream = this.streams.get(channel);
    if (stream === undefined) return;
    const { position } = await this.source.read(channel, { limit: 0 });
    if (this.streams.get(channel) !== stream || stream.last !== null) return;
    stream.last = position;
    this.drain(stream);
  }

  close(channel: string): void {
    const stream = this.streams.get(channel);
    if (stream === undefined) return;
    this.streams.delete(channel);
    releaseCatchUp(stream);
  }

  clear(): void {
    for (const stream of this.streams.values()) releaseCatchUp(stream);
    this.streams.clear();
  }

  /** A message from pub/sub. */
  accept(channel: string, message: ChannelMessage): void {
    const stream = this.streams.get(channel);
    if (stream !== undefined) this.take(stream, message);
  }

  /**
   * Waits until the live stream of a subscribed channel has delivered `position` (it is
   * normally a fraction of a millisecond behind). If it lags, the gap is read from history;
   * after the command timeout the wait ends anyway.
   */
  caughtUp(channel: string, position: StreamPosition): Promise<void> {
    const stream = this.streams.get(channel);
    const last = stream?.last;
    if (stream === undefined || stream.broken || last == null) return Promise.resolve();
    if (last.epoch !== position.epoch || last.offset >= position.offset) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(nudge);
        clearTimeout(giveUp);
        resolve();
      };
      const waiter = { offset: position.offset, resolve: done };
      stream.catchUp.push(waiter);
      const nudge = setTimeout(() => {
        if (this.streams.get(channel) === stream && stream.waiting === null && !stream.broken) {
          stream.waiting = [];
          void this.fill(stream);
        }
      }, NUDGE_DELAY);
      const giveUp = setTimeout(() => {
        stream.catchUp = stream.catchUp.filter((w) => w !== waiter);
        done();
      }, this.source.commandTimeout);
    });
  }

  /**
   * Where the channel stands in Redis (the heartbeat reads it). A stream behind it may have
   * missed a message that its pub/sub never brought (a shard failed over, a slot moved, and
   * nothing was published since): it waits briefly for the live stream, then reads the gap
   * from history. A stream in another epoch is read from history at once (and cut if it had
   * delivered messages of the old one).
   */
  verify(channel: string, position: StreamPosition): void {
    const stream = this.streams.get(channel);
    const last = stream?.last;
    if (stream === undefined || stream.broken || last == null || stream.waiting !== null) return;
    if (last.epoch === position.epoch) {
      if (last.offset < position.offset) void this.caughtUp(channel, position);
      return;
    }
    stream.waiting = [];
    void this.fill(stream);
  }

  /**
   * Redis is back (node-redis resubscribed every channel before it reported ready): every
   * stream holds its live messages from now on, `first` runs (the node registers again),
   * then each is read from history after the last message delivered, or positioned if it
   * never was. Rejects when Redis does not answer, to be retried whole.
   */
  async recover(first: () => Promise<void>): Promise<void> {
    for (const stream of this.streams.values()) stream.waiting ??= [];
    await first();
    await Promise.all([...this.streams.values()].map((stream) => (stream.last === null ? this.position(stream.channel) : this.fill(stream, true))));
  }

  /** Delivers in order, drops repeats, and holds what follows a gap until the gap is filled. */
  private take(stream: Stream, message: ChannelMessage): void {
    if (stream.broken) return;
    if (stream.waiting !== null) {
      stream.waiting.push(message);
      return;
    }
    const last = stream.last;
    if (last === null || (message.epoch === last.epoch && message.offset === last.offset + 1)) {
      this.deliver(stream, message);
    } else if (message.epoch === last.epoch && message.offset <= last.offset) {
      // a repeat
    } else if (message.epoch !== last.epoch && !stream.delivered) {
      // Nothing went out from the old epoch: take the new one from its start.
      stream.last = { epoch: message.epoch, offset: 0 };
      releaseCatchUp(stream);
      stream.waiting = [message];
      void this.fill(stream);
    } else if (message.epoch !== last.epoch) {
      this.breakStream(stream);
    } else {
      stream.waiting = [message];
      void this.fill(stream);
    }
  }

  private deliver(stream: Stream, message: ChannelMessage): void {
    stream.last = { epoch: message.epoch, offset: message.offset };
    stream.delivered = true;
    this.source.deliver(message);
    if (stream.catchUp.length > 0) {
      const still = [];
      for (const waiter of stream.catchUp) {
        if (waiter.offset <= message.offset) waiter.resolve();
        else still.push(waiter);
      }
      stream.catchUp = still;
    }
  }

  /**
   * Reads what followed the last delivered message from history, then passes on what waited.
   * When Redis does not answer: `rethrow` (recover() retries as a whole), or a retry soon.
   */
  private async fill(stream: Stream, rethrow = false): Promise<void> {
    const last = stream.last;
    if (last === null) return;
    const channel = stream.channel;
    let result: HistoryResult;
    try {
      result = await this.source.read(channel, { since: last });
    } catch (error) {
      if (rethrow) throw error;
      const retry = setTimeout(() => {
        // While unhealthy, recover() fills it when Redis is back.
        if (this.source.healthy() && this.streams.get(channel) === stream && stream.waiting !== null) void this.fill(stream);
      }, FILL_RETRY);
      retry.unref?.();
      return;
    }
    if (this.streams.get(channel) !== stream || stream.broken) return;
    if (!result.recovered) {
      if (stream.delivered) return this.breakStream(stream);
      stream.last = result.position;
      releaseCatchUp(stream);
    } else {
      for (const message of result.messages) {
        if (message.offset > stream.last!.offset) this.deliver(stream, message);
      }
    }
    this.drain(stream);
  }

  /** Ends the waiting and passes on what waited (which may start another fill). */
  private drain(stream: Stream): void {
    const waiting = stream.waiting ?? [];
    stream.waiting = null;
    for (let i = 0; i < waiting.length; i++) {
      this.take(stream, waiting[i]!);
      if (stream.waiting !== null) {
        (stream.waiting as ChannelMessage[]).push(...waiting.slice(i + 1));
        return;
      }
    }
  }

  /**
   * The channel's epoch is gone (Redis lost its data) after messages of it went out here:
   * nothing of the new epoch is delivered on this subscription, and the listener is asked
   * to re-read its channels, which tells it the old stream cannot be recovered (the hub then
   * closes the channel's subscribers with 1012 and they subscribe afresh).
   */
  private breakStream(stream: Stream): void {
    stream.broken = true;
    stream.waiting = null;
    releaseCatchUp(stream);
    this.source.broken();
  }
}

function releaseCatchUp(stream: Stream): void {
  const waiting = stream.catchUp;
  stream.catchUp = [];
  for (const waiter of waiting) waiter.resolve();
}
