// The attack both event-stream transports (/sse and /sse/session) must survive: a client
// that stops reading while its channel publishes. 60 KiB messages are published until the
// server counts a slow-consumer close; then the reader reads again, and what it got must be
// a contiguous run from the first message (never thinned), ended by a 1013 `close` event
// (or by the connection, once the close timeout passed), with the server's RSS bounded and
// the neighbour served throughout.
import assert from 'node:assert/strict';
import { assertServed, describeReport, MiB, RssSampler, type AttackTarget, type Neighbour } from './attack.js';
import { KiB, noise, range, sdk } from './delivery.js';
import type { SseReader } from './sse-reader.js';

/** At most this many 60 KiB messages: well past what the kernel's socket buffers and 1 MiB hold. */
const MAX_MESSAGES = 400;

export interface SlowStreamAttack {
  target: AttackTarget;
  neighbour: Neighbour;
  /** The stream that will not read, subscribed to `channel` already. */
  reader: SseReader;
  channel: string;
  /** The server's count of slow-consumer closes for this transport. */
  closes(): Promise<number>;
  /** The offsets of the channel messages the reader got. */
  offsetsOf(reader: SseReader): number[];
  /** Names the attack in its report line. */
  label: string;
}

/** Runs the attack and asserts what it must show; resolves with the offsets published and received. */
export async function attackWithSlowReader(attack: SlowStreamAttack): Promise<{ published: number[]; received: number[] }> {
  const { target, neighbour, reader, channel } = attack;
  const closesBefore = await attack.closes();
  const peak = new RssSampler(target.pid);
  reader.socket.pause();

  const publishers = Array.from({ length: 4 }, () => sdk(`${target.ws}/ws`).channel<{ seq: number; pad: string }>(channel));
  const published: number[] = [];
  let closed = false;
  while (!closed && published.length < MAX_MESSAGES) {
    for (let i = 0; i < 10; i++) published.push((await publishers[published.length % 4]!.publish({ seq: published.length, pad: noise(60 * KiB) })).offset);
    closed = (await attack.closes()) > closesBefore;
  }
  const rssPeak = peak.stop();
  const report = await neighbour.report();
  reader.socket.resume();
  await reader.until((r) => r.ended, 'the end of the stream', 30_000);
  const received = attack.offsetsOf(reader);
  const close = reader.named('close');
  process.stdout.write(
    `${attack.label}: ${published.length} published, ${received.length} received (${received[0]}–${received.at(-1)}), close ${JSON.stringify(close)}; ` +
      `RSS baseline ${(target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
  );
  assert.ok(closed, `closed as a slow consumer within ${MAX_MESSAGES} messages`);
  assert.deepEqual(received, range(1, received.length), 'a contiguous run: no hole');
  assert.ok(received.length < published.length, 'it stopped getting messages');
  // The close event when it read its buffer within closeTimeout (5 s); after that the server drops the connection.
  assert.ok(close.length === 0 || (close.length === 1 && close[0]!.code === 1013), JSON.stringify(close));
  assert.ok(target.alive());
  assert.ok(rssPeak - target.baseline < 96 * MiB, `RSS grew ${((rssPeak - target.baseline) / MiB).toFixed(1)} MiB`);
  assertServed(report);
  return { published, received };
}
