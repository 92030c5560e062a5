import type { SendData } from './connection-context.js';

/**
 * What a broker publishes through besides its callbacks: a `WebSocketServer`, or the
 * endpoints of `serve()` / `attach()`, whose connections subscribe with `conn.subscribe`.
 */
export interface TopicPublisher {
  /** Sends to the topic's subscribed connections; returns how many it reached. */
  publish(topic: string, data: Exclude<SendData, Blob>): number;
  /** How many connections are subscribed to `topic`. */
  subscriberCount(topic: string): number;
}

/** A broker subscriber: called synchronously by `publish` with the message and the channel it went to. */
export type BrokerCallback<M> = (message: M, channel: string) => void;

/** How a {@link MessageBroker} reports failing callbacks and which servers' topics it also publishes to. */
export interface MessageBrokerOptions {
  /** Told of a callback that threw (default: console.error); delivery to the others goes on. */
  onError?: (error: unknown, channel: string) => void;
  /**
   * Servers whose topics are the broker's channels: a publish also reaches their
   * connections subscribed to the channel, through the servers' own publish (one frame
   * encoded for all). Their messages must then be strings or bytes.
   */
  servers?: readonly TopicPublisher[];
}

/**
 * The in-process pub/sub: parts of one application subscribe callbacks to channels and
 * publish to them, with no sockets and no serialization. Given `servers`, it is a facade
 * over their topics too, so that one publish reaches in-process subscribers and WebSocket
 * subscribers alike. A callback that throws does not stop delivery to the others.
 */
export class MessageBroker<M = unknown> {
  private readonly channels = new Map<string, Set<BrokerCallback<M>>>();
  private readonly onError: (error: unknown, channel: string) => void;
  private readonly servers: readonly TopicPublisher[];

  constructor(options: MessageBrokerOptions = {}) {
    this.onError = options.onError ?? ((error, channel) => console.error(`hotline: a subscriber of '${channel}' threw:`, error));
    this.servers = options.servers ?? [];
  }

  /**
   * Calls `callback` for every later publish to `channel`, until {@link unsubscribe}. The
   * same callback twice on one channel is called once.
   */
  subscribe(channel: string, callback: BrokerCallback<M>): void {
    const callbacks = this.channels.get(channel);
    if (callbacks === undefined) this.channels.set(channel, new Set([callback]));
    else callbacks.add(callback);
  }

  /** Returns whether the callback was subscribed. */
  unsubscribe(channel: string, callback: BrokerCallback<M>): boolean {
    const callbacks = this.channels.get(channel);
    if (callbacks === undefined || !callbacks.delete(callback)) return false;
    if (callbacks.size === 0) this.channels.delete(channel);
    return true;
  }

  /**
   * Delivers `message` to the channel's callbacks, then to the servers' subscribed
   * connections; returns how many were notified (connections a slow-consumer policy
   * dropped it for are not counted).
   * @throws TypeError with `servers`, for a message that is not a string or bytes (before anyone is notified).
   */
  publish(channel: string, message: M): number {
    if (this.servers.length > 0 && !isSendable(message)) {
      throw new TypeError('a message for WebSocket subscribers must be a string, an ArrayBuffer or a view of one');
    }
    let notified = 0;
    const callbacks = this.channels.get(channel);
    if (callbacks !== undefined) {
      // A copy, so a callback may (un)subscribe without disturbing this delivery.
      for (const callback of [...callbacks]) {
        notified++;
        try {
          callback(message, channel);
        } catch (error) {
          this.onError(error, channel);
        }
      }
    }
    for (const server of this.servers) notified += server.publish(channel, message as Exclude<SendData, Blob>);
    return notified;
  }

  /** Callbacks subscribed to the channel, plus the servers' connections subscribed to it. */
  subscriberCount(channel: string): number {
    let count = this.channels.get(channel)?.size ?? 0;
    for (const server of this.servers) count += server.subscriberCount(channel);
    return count;
  }
}

function isSendable(message: unknown): message is Exclude<SendData, Blob> {
  return typeof message === 'string' || message instanceof ArrayBuffer || ArrayBuffer.isView(message);
}
