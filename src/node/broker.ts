/**
 * In-process publish/subscribe between parts of one application: no sockets, no
 * serialization. A callback that throws does not stop delivery to the others.
 */
export class MessageBroker<M = unknown> {
  private readonly channels = new Map<string, Set<(message: M, channel: string) => void>>();
  private readonly onError: (error: unknown, channel: string) => void;

  constructor(options: { onError?: (error: unknown, channel: string) => void } = {}) {
    this.onError =
      options.onError ??
      ((error, channel) => console.error(`hotline: a subscriber of '${channel}' threw:`, error));
  }

  subscribe(channel: string, callback: (message: M, channel: string) => void): void {
    let callbacks = this.channels.get(channel);
    if (callbacks === undefined) {
      callbacks = new Set();
      this.channels.set(channel, callbacks);
    }
    callbacks.add(callback);
  }

  /** Returns whether the callback was subscribed. */
  unsubscribe(channel: string, callback: (message: M, channel: string) => void): boolean {
    const callbacks = this.channels.get(channel);
    if (callbacks === undefined || !callbacks.delete(callback)) return false;
    if (callbacks.size === 0) this.channels.delete(channel);
    return true;
  }

  /** Delivers `message` to the channel's subscribers; returns how many were notified. */
  publish(channel: string, message: M): number {
    const callbacks = this.channels.get(channel);
    if (callbacks === undefined) return 0;
    let notified = 0;
    // A copy, so a callback may (un)subscribe without disturbing this delivery.
    for (const callback of [...callbacks]) {
      notified++;
      try {
        callback(message, channel);
      } catch (error) {
        this.onError(error, channel);
      }
    }
    return notified;
  }

  subscriberCount(channel: string): number {
    return this.channels.get(channel)?.size ?? 0;
  }
}
