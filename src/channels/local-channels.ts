import { ChannelCloseCode, encodeEphemeral, encodeJoin, encodeLeave, encodeMsg, encodeUpdate } from '../wire/index.js';
import type { Broker, ChannelMessage, PresenceEvent } from './engine.js';
import type { Broadcaster, ChannelClient } from './hub-options.js';
import type { ChannelMetrics } from './metrics.js';
import type { Subscription } from './subscription.js';

/** A channel with subscribers on this node, as the inspector shows it. */
export interface ChannelStats {
  name: string;
  /** Subscribers on this node, live or still recovering. */
  subscribers: number;
  /** Those of them that are live (past their replay). */
  live: number;
  /** Messages delivered here since the channel was subscribed on this node. */
  messages: number;
}

/** A channel with subscribers on this node. */
interface LocalChannel<A, C> {
  /** The last message delivered here, to drop repeats (an engine re-reading after an outage). */
  epoch: string;
  offset: number;
  /** Messages delivered here since the channel was subscribed on this node. */
  messages: number;
  /** The connections that are live: each message is encoded once and written to all of them. */
  live: Set<C>;
  /** Their subscriptions, by connection. */
  subscriptions: Map<C, Subscription<A>>;
  /** Subscriptions still reading, replaying or catching up: live messages are kept or sent to each. */
  recovering: Set<Subscription<A>>;
  /** Settles once the broker delivers this channel to this node. */
  ready: Promise<void>;
}

/**
 * The one record of who subscribes to what on this node: per channel, the connections that
 * are live and the subscriptions still recovering. A channel is subscribed in the broker
 * once, when its first subscriber arrives, and unsubscribed after the last one leaves; each
 * of its messages is encoded once and handed with the live set to the broadcaster, which
 * writes the same frame (compressed once per window) to every one of them.
 *
 * The connections are of type C, the server's own: the broadcaster gets them as they came,
 * to reach its sockets without a lookup per subscriber.
 */
export class LocalChannels<A, C extends ChannelClient<A>> {
  private readonly channels = new Map<string, LocalChannel<A, C>>();
  private broadcaster: Broadcaster<C> | null = null;

  constructor(
    private readonly broker: Broker,
    private readonly metrics: ChannelMetrics,
  ) {}

  /** How live messages reach the connections; set once the hub starts. */
  deliverThrough(broadcaster: Broadcaster<C>): void {
    this.broadcaster = broadcaster;
  }

  /** A new subscription, recovering until its replay is through; settles once the broker delivers the channel here. */
  add(subscription: Subscription<A>): Promise<void> {
    const local = this.channel(subscription.channel);
    local.subscriptions.set(this.clientOf(subscription), subscription);
    local.recovering.add(subscription);
    this.broker.setLocalSubscriberCount(subscription.channel, local.subscriptions.size);
    return local.ready;
  }

  /** A subscription ended; the last one of a channel unsubscribes it from the broker. */
  remove(subscription: Subscription<A>): void {
    const channel = subscription.channel;
    const local = this.channels.get(channel);
    const client = this.clientOf(subscription);
    if (local === undefined || local.subscriptions.get(client) !== subscription) return;
    local.subscriptions.delete(client);
    local.live.delete(client);
    local.recovering.delete(subscription);
    this.broker.setLocalSubscriberCount(channel, local.subscriptions.size);
    if (local.subscriptions.size === 0) {
      this.channels.delete(channel);
      this.broker.unsubscribe(channel).catch(() => {});
    }
  }

  /**
   * A subscription's replay is through: live once this node's deliveries have reached what
   * it sent (a broker may deliver a message after history already showed it). Until then,
   * each newer delivery is caught up on its own, and the one that reaches it makes it live.
   */
  replayed(subscription: Subscription<A>): void {
    const local = this.channels.get(subscription.channel);
    if (local !== undefined && local.epoch === subscription.epoch && local.offset >= subscription.last) this.goLive(local, subscription);
  }

  /** A message from the broker for a channel this node subscribed to. */
  deliver(message: ChannelMessage): void {
    const local = this.channels.get(message.channel);
    if (local === undefined) return;
    if (message.epoch === local.epoch && message.offset <= local.offset) return;
    local.epoch = message.epoch;
    local.offset = message.offset;
    local.messages++;
    let caughtUp: Array<Subscription<A>> | null = null;
    for (const subscription of local.recovering) {
      if (subscription.buffer !== null) subscription.keep(message);
      else if (subscription.catchUp(message)) (caughtUp ??= []).push(subscription);
    }
    if (local.live.size > 0 && this.broadcaster !== null) {
      this.metrics.deliveries += this.broadcaster.broadcast(encodeMsg(message.channel, message.offset, message.data), local.live);
    }
    // Live after this message's broadcast, which they already had.
    for (const subscription of caughtUp ?? []) this.goLive(local, subscription);
  }

  /**
   * The broker's backend came back: messages published meanwhile by other nodes may never
   * have been pushed here. Each channel is read from history after the last message this
   * node delivered; where that is impossible, its subscribers are closed with 1012 (service
   * restart) so that their clients resubscribe and learn what they lost.
   */
  async resync(): Promise<void> {
    for (const [channel, local] of this.channels) {
      if (local.epoch === '') continue;
      try {
        const result = await this.broker.history(channel, { since: { epoch: local.epoch, offset: local.offset } });
        if (result.recovered) {
          for (const message of result.messages) this.deliver(message);
          continue;
        }
      } catch {
        // Still unreachable: treated like a lost history.
      }
      for (const client of [...local.subscriptions.keys()]) client.close(ChannelCloseCode.ServiceRestart, 'channel stream lost; resubscribe');
    }
  }

  /**
   * A join, update or leave: to the channel's subscribers that were answered (the member's
   * own connection too: its SDK keeps the same map as everyone, its own state included).
   */
  presenceChanged(event: PresenceEvent): void {
    const local = this.channels.get(event.channel);
    if (local === undefined) return;
    const encode = event.kind === 'join' ? encodeJoin : event.kind === 'update' ? encodeUpdate : encodeLeave;
    const text = encode(event.channel, event.member);
    // Not before a subscription's answer: only once it has read history.
    const to: C[] = [];
    for (const [client, subscription] of local.subscriptions) if (subscription.answered) to.push(client);
    if (to.length === 0) return;
    // One frame per encoding for all of them, as a message (a state update can be a flood's unit).
    if (this.broadcaster !== null) this.broadcaster.broadcast(text, to);
    else for (const client of to) client.send(text);
  }

  /**
   * An ephemeral message: to every subscriber that was answered, live or still catching up
   * (it has no offset, so no place in a replay to keep; a subscriber of an idle channel
   * waits for the next message to go live, and must not miss cursors meanwhile). Not to
   * one holding half its backpressure limit or more: ephemeral messages are dropped first,
   * and counted, so that its channel messages still fit.
   */
  deliverEphemeral(channel: string, data: string, client?: string): void {
    const local = this.channels.get(channel);
    if (local === undefined || this.broadcaster === null) return;
    const to = new Set<C>();
    for (const [client, subscription] of local.subscriptions) {
      if (!subscription.answered) continue;
      if (client.bufferedAmount >= client.backpressureLimit / 2) this.metrics.ephemeralDrops++;
      else to.add(client);
    }
    if (to.size > 0) this.metrics.ephemeralDeliveries += this.broadcaster.broadcast(encodeEphemeral(channel, data, client), to);
  }

  /** Channels with subscribers on this node: their subscribers (and how many of them are live) and the messages delivered. */
  stats(): ChannelStats[] {
    return [...this.channels].map(([name, local]) => ({ name, subscribers: local.subscriptions.size, live: local.live.size, messages: local.messages }));
  }

  /** How many channels have subscribers on this node. */
  get count(): number {
    return this.channels.size;
  }

  /** The names of the channels with subscribers on this node. */
  names(): IterableIterator<string> {
    return this.channels.keys();
  }

  /** Subscribers of a channel on this node, recovering or live. */
  subscribers(channel: string): number {
    return this.channels.get(channel)?.subscriptions.size ?? 0;
  }

  private channel(channel: string): LocalChannel<A, C> {
    let local = this.channels.get(channel);
    if (local === undefined) {
      const created: LocalChannel<A, C> = {
        epoch: '',
        offset: 0,
        messages: 0,
        live: new Set(),
        subscriptions: new Map(),
        recovering: new Set(),
        ready: this.broker.subscribe(channel),
      };
      // A failed broker subscription fails the subscribes waiting on it; the next one retries.
      created.ready.catch(() => {
        if (this.channels.get(channel) === created && created.subscriptions.size === 0) this.channels.delete(channel);
      });
      this.channels.set(channel, created);
      local = created;
    }
    return local;
  }

  /** Every client came in through ChannelHub.connect(client: C). */
  private clientOf(subscription: Subscription<A>): C {
    return subscription.session.client as C;
  }

  /** Unless it ended meanwhile (a send that closed the connection, an unsub before this turn). */
  private goLive(local: LocalChannel<A, C>, subscription: Subscription<A>): void {
    const client = this.clientOf(subscription);
    if (local.subscriptions.get(client) !== subscription) return;
    local.recovering.delete(subscription);
    local.live.add(client);
  }
}
