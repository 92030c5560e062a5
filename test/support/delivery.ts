// Helpers for the SDK delivery tests (attack-recovery, attack-slow-consumer, attack-history,
// sdk-faults, sdk-browser, sdk-resubscribe): SDK clients over hotline's Node WebSocket,
// payloads that do not compress, a steady publisher.
import { randomBytes } from 'node:crypto';
import { WebSocket as NodeWebSocket, type WebSocketOptions } from '../../src/node/client.js';
import { connect, type Channel, type ClientOptions, type HotlineClient, type SubscribedEvent, type WebSocketConstructorLike } from '../../src/client/index.js';
import { sleep, within } from './wait.js';

export const KiB = 1024;

/** hotline's WebSocket, as the SDK takes it (its handlers' event types are narrower than WebSocketLike's). */
export const SdkWebSocket = NodeWebSocket as unknown as WebSocketConstructorLike;

/** hotline's WebSocket with Node-only options fixed (a smaller maxPayload, no deflate, …). */
export function webSocketWith(options: WebSocketOptions, onCreate?: () => void): WebSocketConstructorLike {
  class Configured extends NodeWebSocket {
    constructor(url: string | URL, protocols?: string | readonly string[]) {
      super(url, protocols, options);
      onCreate?.();
    }
  }
  return Configured as unknown as WebSocketConstructorLike;
}

const opened = new Set<HotlineClient>();

/** An SDK client over hotline's WebSocket with a quick reconnect, closed by {@link closeClients}. */
export function sdk(url: string, options: ClientOptions = {}): HotlineClient {
  const client = connect(url, { WebSocket: SdkWebSocket, reconnect: { initial: 100, max: 300 }, ...options });
  opened.add(client);
  return client;
}

export function closeClients(): void {
  for (const client of opened) client.close();
  opened.clear();
}

/** `length` characters of base64 from random bytes: compression cannot shrink them much. */
export function noise(length: number): string {
  return randomBytes(Math.ceil((length * 3) / 4)).toString('base64').slice(0, length);
}

export interface Big {
  seq: number;
  pad: string;
}

/** Everything a channel told the application, in order. */
export function recordChannel(channel: Channel<Big>): {
  offsets: number[];
  seqs: number[];
  subscribed: SubscribedEvent[];
} {
  const seen = { offsets: [] as number[], seqs: [] as number[], subscribed: [] as SubscribedEvent[] };
  channel.on('message', (data, meta) => {
    seen.offsets.push(meta.offset);
    seen.seqs.push(data.seq);
  });
  channel.on('subscribed', (event) => seen.subscribed.push(event));
  return seen;
}

/** A publisher that publishes {seq} from `from` on, each publish awaited and `pause` ms apart, until stopped. */
export function publishLoop(channel: Channel<{ seq: number }>, pause = 5, from = 0): { results: Array<{ seq: number; offset: number }>; errors: unknown[]; stop(): Promise<void> } {
  const results: Array<{ seq: number; offset: number }> = [];
  const errors: unknown[] = [];
  let running = true;
  const done = (async () => {
    for (let seq = from; running; seq++) {
      try {
        results.push({ seq, offset: (await channel.publish({ seq })).offset });
      } catch (error) {
        errors.push(error);
      }
      // Pacing, not a wait for anything.
      await sleep(pause);
    }
  })();
  return {
    results,
    errors,
    async stop(): Promise<void> {
      running = false;
      await within(done, 'the publisher to stop');
    },
  };
}

/** Offsets from..to, inclusive. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** Publishes `count` messages of `size` characters of noise, `seq` 0… in order; resolves with their offsets. */
export async function publishBig(channel: Channel<Big>, count: number, size: number, firstSeq = 0): Promise<number[]> {
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) offsets.push((await channel.publish({ seq: firstSeq + i, pad: noise(size) })).offset);
  return offsets;
}

/**
 * The TCP socket under a `ws` client, to stop reading (`pause()`) as a stalled browser
 * would: `ws` has no public way to stop reading, and its `_socket` has been there since
 * its first versions.
 */
export function tcpOf(ws: object): { pause(): void; resume(): void } {
  return (ws as { _socket: { pause(): void; resume(): void } })._socket;
}
