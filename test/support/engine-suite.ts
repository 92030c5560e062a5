// The behaviour every channel Engine must have, as one suite that each engine runs
// (the memory engine in src/channels/memory-engine.test.ts; the Redis engine later).
// Deliveries are awaited, never assumed synchronous, so engines with a network between
// publish and delivery pass too.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelMessage, Engine, EngineListener, PresenceEvent } from '../../src/channels/index.js';
import { quietWindow, waitFor } from './wait.js';

/** What the suite asks the engine under test to be configured with. */
export interface EngineSuiteOptions {
  /** Messages kept per channel. */
  historySize: number;
  /** How long publish keys are remembered (ms). */
  idempotencyWindow: number;
  /** Channels with their own retention (a server's namespaces): those named `suite:own:…`. */
  channelRetention: (channel: string) => { historySize?: number; historyTtl?: number } | undefined;
}

/** The retention of `suite:own:…` channels: fewer messages, for less time, than the engine's. */
export const OWN_RETENTION = { historySize: 3, historyTtl: 1_000 };

export interface EngineFixture {
  /** A new engine, not started: the suite starts it with its own listener. */
  engine: Engine;
  cleanup(): Promise<void>;
  /**
   * Moves the engine's clock forward by `ms`. Engines that can offer it run the tests of
   * time windows (idempotency keys forgotten); without it those tests are skipped.
   */
  advance?(ms: number): void | Promise<void>;
}

export const ENGINE_SUITE_OPTIONS: Readonly<EngineSuiteOptions> = Object.freeze({
  historySize: 20,
  idempotencyWindow: 60_000,
  channelRetention: (channel: string) => (channel.startsWith('suite:own:') ? OWN_RETENTION : undefined),
});

/** A listener that records what the engine delivers. */
export class Recorder implements EngineListener {
  readonly messages: ChannelMessage[] = [];
  readonly presences: PresenceEvent[] = [];
  readonly ephemerals: Array<[channel: string, data: string, client?: string]> = [];

  message(message: ChannelMessage): void {
    this.messages.push(message);
  }

  ephemeral(channel: string, data: string, client?: string): void {
    this.ephemerals.push(client === undefined ? [channel, data] : [channel, data, client]);
  }

  presence(event: PresenceEvent): void {
    this.presences.push(event);
  }

  on(channel: string): ChannelMessage[] {
    return this.messages.filter((m) => m.channel === channel);
  }

  presenceOn(channel: string): PresenceEvent[] {
    return this.presences.filter((e) => e.channel === channel);
  }
}

let unique = 0;
/** A channel name no other test (or earlier run against a shared backend) uses. */
function channelName(label: string): string {
  return `suite:${label}:${process.pid}.${Date.now().toString(36)}.${unique++}`;
}

/**
 * Registers the shared Engine tests under `describe(name)`. `make` builds a fresh engine
 * configured with the given options for each test.
 */
export function engineSuite(name: string, make: (options: EngineSuiteOptions) => Promise<EngineFixture>): void {
  const { historySize, idempotencyWindow } = ENGINE_SUITE_OPTIONS;

  /** Runs `body` with a started engine and its recorder, and always cleans up. */
  async function withEngine(body: (engine: Engine, recorder: Recorder, fixture: EngineFixture) => Promise<void>): Promise<void> {
    const fixture = await make({ ...ENGINE_SUITE_OPTIONS });
    const recorder = new Recorder();
    try {
      await fixture.engine.start(recorder);
      await body(fixture.engine, recorder, fixture);
    } finally {
      await fixture.engine.close();
      await fixture.cleanup();
    }
  }

  /** Publishes `count` messages with data `"<prefix><n>"`, n from 1, one after another. */
  async function publishMany(engine: Engine, channel: string, count: number, prefix = 'm'): Promise<number[]> {
    const offsets: number[] = [];
    for (let n = 1; n <= count; n++) offsets.push((await engine.publish(channel, JSON.stringify(`${prefix}${n}`))).offset);
    return offsets;
  }

  describe(`engine: ${name}`, () => {
    describe('offsets and epochs', () => {
      test('a new channel stands at offset 0 with no history', () =>
        withEngine(async (engine) => {
          const ch = channelName('fresh');
          const result = await engine.history(ch);
          assert.equal(result.position.offset, 0);
          assert.equal(typeof result.position.epoch, 'string');
          assert.ok(result.position.epoch.length >= 1 && result.position.epoch.length <= 64, 'epochs fit the wire limit');
          assert.deepEqual(result.messages, []);
          assert.equal(result.recovered, false);
        }));

      test('offsets start at 1 and rise by one per publish, in one epoch', () =>
        withEngine(async (engine) => {
          const ch = channelName('offsets');
          await engine.subscribe(ch);
          const results = [];
          for (let n = 0; n < 10; n++) results.push(await engine.publish(ch, String(n)));
          assert.deepEqual(
            results.map((r) => r.offset),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
          );
          assert.ok(
            results.every((r) => !r.duplicate),
            'no duplicates without keys',
          );
          const epochs = new Set(results.map((r) => r.epoch));
          assert.equal(epochs.size, 1, 'one epoch while the channel lives');
          const { position } = await engine.history(ch);
          assert.deepEqual(position, { epoch: results[0]!.epoch, offset: 10 });
        }));

      test('concurrent publishes get distinct, contiguous offsets', () =>
        withEngine(async (engine) => {
          const ch = channelName('concurrent');
          const results = await Promise.all(Array.from({ length: 50 }, (_, n) => engine.publish(ch, String(n))));
          assert.deepEqual(
            results.map((r) => r.offset).sort((a, b) => a - b),
            Array.from({ length: 50 }, (_, n) => n + 1),
          );
        }));

      test('channels have offsets of their own', () =>
        withEngine(async (engine) => {
          const a = channelName('a');
          const b = channelName('b');
          assert.equal((await engine.publish(a, '1')).offset, 1);
          assert.equal((await engine.publish(a, '2')).offset, 2);
          assert.equal((await engine.publish(b, '1')).offset, 1);
          assert.equal((await engine.publish(a, '3')).offset, 3);
        }));

      test('the epoch stays the same while the channel lives, subscribed or keeping history', () =>
        withEngine(async (engine) => {
          const ch = channelName('epoch');
          await engine.subscribe(ch);
          const first = await engine.publish(ch, '"a"');
          await engine.unsubscribe(ch);
          // Still has history: the same epoch, offsets carry on.
          const second = await engine.publish(ch, '"b"');
          assert.equal(second.epoch, first.epoch);
          assert.equal(second.offset, 2);
          const read = await engine.history(ch);
          assert.equal(read.position.epoch, first.epoch);
        }));
    });

    describe('history', () => {
      test("a channel's own retention (channelRetention) bounds its history; other channels keep the engine's", () =>
        withEngine(async (engine, _recorder, fixture) => {
          const own = channelName('own');
          const other = channelName('other');
          await publishMany(engine, own, 10);
          await publishMany(engine, other, 10);
          const kept = await engine.history(own);
          assert.deepEqual(kept.messages.map((m) => JSON.parse(m.data) as string), ['m8', 'm9', 'm10'], 'its own historySize');
          assert.equal((await engine.history(other)).messages.length, 10, "the engine's historySize");
          // Recovering from before what it keeps is not recovered.
          const position = kept.position;
          assert.equal((await engine.history(own, { since: { epoch: position.epoch, offset: 5 } })).recovered, false);
          if (fixture.advance === undefined) return;
          await fixture.advance(OWN_RETENTION.historyTtl + 1);
          assert.deepEqual((await engine.history(own)).messages, [], 'its own historyTtl');
          assert.equal((await engine.history(other)).messages.length, 10, "the engine's historyTtl (none here) keeps the rest");
        }));

      test('messages keep their channel, epoch, offset and data text', () =>
        withEngine(async (engine) => {
          const ch = channelName('fields');
          const data = '{"text":"héllo 👋","n":[1,2,{"x":null}]}';
          const published = await engine.publish(ch, data);
          const { messages } = await engine.history(ch);
          assert.deepEqual(messages, [{ channel: ch, epoch: published.epoch, offset: 1, data }]);
        }));

      test('limit gives the newest messages, oldest first', () =>
        withEngine(async (engine) => {
          const ch = channelName('limit');
          await publishMany(engine, ch, 8);
          const three = await engine.history(ch, { limit: 3 });
          assert.deepEqual(
            three.messages.map((m) => [m.offset, m.data]),
            [
              [6, '"m6"'],
              [7, '"m7"'],
              [8, '"m8"'],
            ],
          );
          assert.equal(three.position.offset, 8);
          assert.equal(three.recovered, false, 'a read without since recovers nothing');
          const all = await engine.history(ch, { limit: 100 });
          assert.deepEqual(
            all.messages.map((m) => m.offset),
            [1, 2, 3, 4, 5, 6, 7, 8],
          );
          const one = await engine.history(ch, { limit: 1 });
          assert.deepEqual(
            one.messages.map((m) => m.offset),
            [8],
          );
          const unlimited = await engine.history(ch);
          assert.equal(unlimited.messages.length, 8);
        }));

      test('before pages back: the newest messages older than an offset, oldest first', () =>
        withEngine(async (engine) => {
          const ch = channelName('before');
          await publishMany(engine, ch, historySize + 5);
          const offsets = async (query: { limit?: number; before?: number }): Promise<number[]> =>
            (await engine.history(ch, query)).messages.map((m) => m.offset);
          // History holds 6…(historySize + 5).
          assert.deepEqual(await offsets({ limit: 3, before: 12 }), [9, 10, 11]);
          assert.deepEqual(await offsets({ limit: 100, before: 9 }), [6, 7, 8], 'not past the oldest kept');
          assert.deepEqual(await offsets({ before: 8 }), [6, 7], 'without a limit: everything older');
          assert.deepEqual(await offsets({ limit: 2, before: 6 }), [], 'nothing kept before the oldest');
          assert.deepEqual(await offsets({ limit: 2, before: 1 }), []);
          assert.deepEqual(await offsets({ limit: 2, before: historySize + 100 }), [historySize + 4, historySize + 5], 'beyond the newest: the newest');
          const page = await engine.history(ch, { limit: 2, before: 10 });
          assert.equal(page.position.offset, historySize + 5, 'the position is the stream’s, not the page’s');
          assert.equal(page.recovered, false);
        }));

      test(`history keeps the newest ${historySize} messages`, () =>
        withEngine(async (engine) => {
          const ch = channelName('size');
          await publishMany(engine, ch, historySize + 15);
          const { messages, position } = await engine.history(ch, { limit: 1000 });
          assert.equal(position.offset, historySize + 15);
          assert.deepEqual(
            messages.map((m) => m.offset),
            Array.from({ length: historySize }, (_, i) => 16 + i),
          );
        }));

      test('since: exactly the messages after it, recovered', () =>
        withEngine(async (engine) => {
          const ch = channelName('since');
          const offsets = await publishMany(engine, ch, 10);
          const epoch = (await engine.history(ch)).position.epoch;
          const result = await engine.history(ch, { since: { epoch, offset: 6 } });
          assert.equal(result.recovered, true);
          assert.deepEqual(result.position, { epoch, offset: 10 });
          assert.deepEqual(
            result.messages.map((m) => [m.offset, m.data]),
            [
              [7, '"m7"'],
              [8, '"m8"'],
              [9, '"m9"'],
              [10, '"m10"'],
            ],
          );
          assert.deepEqual(offsets, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
          const fromStart = await engine.history(ch, { since: { epoch, offset: 0 } });
          assert.equal(fromStart.recovered, true);
          assert.equal(fromStart.messages.length, 10);
        }));

      test('since the current offset: recovered, nothing to replay', () =>
        withEngine(async (engine) => {
          const ch = channelName('since-now');
          await publishMany(engine, ch, 3);
          const epoch = (await engine.history(ch)).position.epoch;
          const result = await engine.history(ch, { since: { epoch, offset: 3 } });
          assert.equal(result.recovered, true);
          assert.deepEqual(result.messages, []);
        }));

      test('since offset 0 of an empty channel: recovered, nothing to replay', () =>
        withEngine(async (engine) => {
          const ch = channelName('since-empty');
          await engine.subscribe(ch);
          const { epoch } = (await engine.history(ch)).position;
          const result = await engine.history(ch, { since: { epoch, offset: 0 } });
          assert.equal(result.recovered, true);
          assert.deepEqual(result.messages, []);
        }));

      test('since with a wrong epoch: not recovered, nothing replayed', () =>
        withEngine(async (engine) => {
          const ch = channelName('wrong-epoch');
          await publishMany(engine, ch, 5);
          const { epoch } = (await engine.history(ch)).position;
          const result = await engine.history(ch, { since: { epoch: `${epoch}x`, offset: 2 } });
          assert.equal(result.recovered, false);
          assert.deepEqual(result.messages, []);
          assert.deepEqual(result.position, { epoch, offset: 5 });
        }));

      test('since an offset ahead of the stream: not recovered', () =>
        withEngine(async (engine) => {
          const ch = channelName('ahead');
          await publishMany(engine, ch, 5);
          const { epoch } = (await engine.history(ch)).position;
          const result = await engine.history(ch, { since: { epoch, offset: 6 } });
          assert.equal(result.recovered, false);
          assert.deepEqual(result.messages, []);
          assert.equal(result.position.offset, 5);
        }));

      test('since a point that history was trimmed past (by size): not recovered', () =>
        withEngine(async (engine) => {
          const ch = channelName('trimmed');
          const total = historySize + 10;
          await publishMany(engine, ch, total);
          const { epoch } = (await engine.history(ch)).position;
          const oldestKept = total - historySize + 1;
          for (const offset of [0, 1, oldestKept - 2]) {
            const lost = await engine.history(ch, { since: { epoch, offset } });
            assert.equal(lost.recovered, false, `since ${offset}: message ${offset + 1} is gone`);
            assert.deepEqual(lost.messages, []);
          }
          // Right before the oldest kept message everything that followed is still there.
          const kept = await engine.history(ch, { since: { epoch, offset: oldestKept - 1 } });
          assert.equal(kept.recovered, true);
          assert.deepEqual(
            kept.messages.map((m) => m.offset),
            Array.from({ length: historySize }, (_, i) => oldestKept + i),
          );
        }));
    });

    describe('idempotent publishes', () => {
      test('the same key on a channel is a duplicate with the first offset, stored and delivered once', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('key');
          await engine.subscribe(ch);
          const first = await engine.publish(ch, '"once"', { key: 'k-1' });
          const again = await engine.publish(ch, '"once"', { key: 'k-1' });
          assert.deepEqual(first, { epoch: first.epoch, offset: 1, duplicate: false, subscribers: 0 });
          assert.deepEqual(again, { epoch: first.epoch, offset: 1, duplicate: true, subscribers: 0 });
          // The key with other data is a misused key, not a repeat: refused, nothing published.
          const third = await engine.publish(ch, '"other"', { key: 'k-1' });
          assert.deepEqual(third, { epoch: first.epoch, offset: 1, duplicate: true, conflict: true, subscribers: 0 });
          const next = await engine.publish(ch, '"next"', { key: 'k-2' });
          assert.equal(next.offset, 2, 'a duplicate takes no offset');
          const plain = await engine.publish(ch, '"plain"');
          assert.equal(plain.offset, 3);
          await waitFor(() => recorder.on(ch).length === 3, 'three deliveries');
          assert.deepEqual(
            recorder.on(ch).map((m) => [m.offset, m.data]),
            [
              [1, '"once"'],
              [2, '"next"'],
              [3, '"plain"'],
            ],
          );
          const { messages } = await engine.history(ch);
          assert.deepEqual(
            messages.map((m) => m.data),
            ['"once"', '"next"', '"plain"'],
          );
        }));

      test('the same key on another channel is independent', () =>
        withEngine(async (engine) => {
          const a = channelName('key-a');
          const b = channelName('key-b');
          await engine.publish(a, '"x"');
          const inA = await engine.publish(a, '"a"', { key: 'shared' });
          const inB = await engine.publish(b, '"b"', { key: 'shared' });
          assert.equal(inA.duplicate, false);
          assert.equal(inA.offset, 2);
          assert.equal(inB.duplicate, false);
          assert.equal(inB.offset, 1);
          assert.equal((await engine.publish(b, '"b"', { key: 'shared' })).duplicate, true);
        }));

      test('keys are scoped to their publisher: the same key from another publisher is another key', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('key-scope');
          await engine.subscribe(ch);
          const victim = await engine.publish(ch, '"mine"', { key: 'k', publisher: 'u:victim' });
          const attacker = await engine.publish(ch, '"theirs"', { key: 'k', publisher: 'u:attacker' });
          const unscoped = await engine.publish(ch, '"anon"', { key: 'k' });
          assert.deepEqual(
            [victim, attacker, unscoped].map((r) => [r.offset, r.duplicate]),
            [
              [1, false],
              [2, false],
              [3, false],
            ],
          );
          // The victim's retry is still recognised, and a reuse with other data is not a repeat.
          assert.deepEqual(await engine.publish(ch, '"mine"', { key: 'k', publisher: 'u:victim' }), { epoch: victim.epoch, offset: 1, duplicate: true, subscribers: 0 });
          assert.equal((await engine.publish(ch, '"changed"', { key: 'k', publisher: 'u:victim' })).conflict, true);
          // A publisher whose name looks like another's scope prefix does not reach it.
          assert.equal((await engine.publish(ch, '"x"', { key: 'k', publisher: 'u' })).duplicate, false);
          assert.equal((await engine.publish(ch, '"y"', { key: 'victim:k', publisher: 'u:' })).duplicate, false);
          await waitFor(() => recorder.on(ch).length === 5, 'five deliveries');
          assert.deepEqual(
            recorder.on(ch).map((m) => m.data),
            ['"mine"', '"theirs"', '"anon"', '"x"', '"y"'],
          );
        }));

      test('concurrent publishes with one key: exactly one is new', () =>
        withEngine(async (engine) => {
          const ch = channelName('key-race');
          const results = await Promise.all(Array.from({ length: 10 }, () => engine.publish(ch, '"x"', { key: 'same' })));
          assert.equal(results.filter((r) => !r.duplicate).length, 1);
          assert.ok(
            results.every((r) => r.offset === 1),
            'all answered with offset 1',
          );
        }));

      test('a key is forgotten after the idempotency window', async (t) => {
        const fixture = await make({ ...ENGINE_SUITE_OPTIONS });
        const advance = fixture.advance;
        if (advance === undefined) {
          await fixture.cleanup();
          t.skip('this engine has no clock to advance');
          return;
        }
        const recorder = new Recorder();
        const engine = fixture.engine;
        try {
          await engine.start(recorder);
          const ch = channelName('key-window');
          assert.equal((await engine.publish(ch, '"1"', { key: 'k' })).offset, 1);
          await advance(idempotencyWindow / 2);
          const inside = await engine.publish(ch, '"1"', { key: 'k' });
          assert.deepEqual([inside.offset, inside.duplicate], [1, true], 'still remembered inside the window');
          await advance(idempotencyWindow / 2 + 1);
          const after = await engine.publish(ch, '"1"', { key: 'k' });
          assert.deepEqual([after.offset, after.duplicate], [2, false], 'a new publish after the window');
          const repeat = await engine.publish(ch, '"1"', { key: 'k' });
          assert.deepEqual([repeat.offset, repeat.duplicate], [2, true], 'and remembered again from then');
        } finally {
          await engine.close();
          await fixture.cleanup();
        }
      });
    });

    describe('delivery', () => {
      test('the listener gets messages of subscribed channels only, per channel in offset order', () =>
        withEngine(async (engine, recorder) => {
          const a = channelName('dl-a');
          const b = channelName('dl-b');
          const quiet = channelName('dl-quiet');
          await engine.subscribe(a);
          await engine.subscribe(b);
          for (let n = 1; n <= 30; n++) {
            await engine.publish(a, `"a${n}"`);
            await engine.publish(quiet, `"q${n}"`);
            if (n % 2 === 0) await engine.publish(b, `"b${n}"`);
          }
          await waitFor(() => recorder.on(a).length === 30 && recorder.on(b).length === 15, 'the deliveries');
          assert.deepEqual(
            recorder.on(a).map((m) => m.offset),
            Array.from({ length: 30 }, (_, i) => i + 1),
          );
          assert.deepEqual(
            recorder.on(a).map((m) => m.data),
            Array.from({ length: 30 }, (_, i) => `"a${i + 1}"`),
          );
          assert.deepEqual(
            recorder.on(b).map((m) => m.offset),
            Array.from({ length: 15 }, (_, i) => i + 1),
          );
          const epoch = (await engine.history(a)).position.epoch;
          assert.ok(
            recorder.on(a).every((m) => m.epoch === epoch && m.channel === a),
            'channel and epoch on every message',
          );
          // The quiet channel was never subscribed: nothing of it arrived.
          await quietWindow(20);
          assert.deepEqual(recorder.on(quiet), []);
        }));

      test('concurrent publishes are still delivered in offset order', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('dl-concurrent');
          await engine.subscribe(ch);
          await Promise.all(Array.from({ length: 100 }, (_, n) => engine.publish(ch, String(n))));
          await waitFor(() => recorder.on(ch).length === 100, '100 deliveries');
          assert.deepEqual(
            recorder.on(ch).map((m) => m.offset),
            Array.from({ length: 100 }, (_, i) => i + 1),
          );
        }));

      test('nothing is delivered after unsubscribe, and again after a new subscribe', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('dl-unsub');
          const marker = channelName('dl-marker');
          await engine.subscribe(ch);
          await engine.subscribe(marker);
          await engine.publish(ch, '"before"');
          await waitFor(() => recorder.on(ch).length === 1, 'the first delivery');
          await engine.unsubscribe(ch);
          await engine.publish(ch, '"while away"');
          await engine.publish(marker, '"marker"');
          await waitFor(() => recorder.on(marker).length === 1, 'the marker');
          await quietWindow(20);
          assert.deepEqual(
            recorder.on(ch).map((m) => m.data),
            ['"before"'],
          );
          await engine.subscribe(ch);
          await engine.publish(ch, '"back"');
          await waitFor(() => recorder.on(ch).length === 2, 'the delivery after resubscribing');
          assert.deepEqual(
            recorder.on(ch).map((m) => [m.offset, m.data]),
            [
              [1, '"before"'],
              [3, '"back"'],
            ],
          );
        }));

      test('a subscribe that resolved sees every later publish', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('dl-after-sub');
          await engine.subscribe(ch);
          const published = await engine.publish(ch, '"first"');
          await waitFor(() => recorder.on(ch).length === 1, 'the delivery');
          assert.deepEqual(recorder.on(ch)[0], { channel: ch, epoch: published.epoch, offset: 1, data: '"first"' });
        }));
    });

    describe('presence', () => {
      test('join and leave: events on a subscribed channel, and members()', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('presence');
          await engine.subscribe(ch);
          assert.deepEqual(await engine.members(ch), []);
          await engine.join(ch, 'c1', { id: 'u1', name: 'Ada' });
          await engine.join(ch, 'c2', { id: 'u2', name: 'Lin' });
          await waitFor(() => recorder.presenceOn(ch).length === 2, 'two joins');
          assert.deepEqual(recorder.presenceOn(ch), [
            { channel: ch, kind: 'join', client: 'c1', member: { id: 'u1', name: 'Ada' } },
            { channel: ch, kind: 'join', client: 'c2', member: { id: 'u2', name: 'Lin' } },
          ]);
          const members = await engine.members(ch);
          assert.deepEqual(
            members.map((m) => m['id']).sort(),
            ['u1', 'u2'],
          );
          await engine.leave(ch, 'c1');
          await waitFor(() => recorder.presenceOn(ch).length === 3, 'the leave');
          assert.deepEqual(recorder.presenceOn(ch)[2], { channel: ch, kind: 'leave', client: 'c1', member: { id: 'u1', name: 'Ada' } });
          assert.deepEqual(await engine.members(ch), [{ id: 'u2', name: 'Lin' }]);
        }));

      test('a changed member is an update; the same member again tells nothing', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('presence-update');
          await engine.subscribe(ch);
          await engine.join(ch, 'k1', { id: 'u1' }, 'n.1');
          await engine.join(ch, 'k1', { id: 'u1', state: { x: 1 } }, 'n.1');
          await engine.join(ch, 'k1', { id: 'u1', state: { x: 1 } }, 'n.1');
          await engine.join(ch, 'k2', { id: 'u2' }, 'n.2');
          await waitFor(() => recorder.presenceOn(ch).length >= 3, 'join, update, join');
          await quietWindow(20);
          assert.deepEqual(
            recorder.presenceOn(ch).map((e) => [e.kind, e.client, e.member['state'] ?? null]),
            [
              ['join', 'k1', null],
              ['update', 'k1', { x: 1 }],
              ['join', 'k2', null],
            ],
          );
        }));

      test('a key taken over by another connection (a reconnect) stays when the old one leaves; the new one leaves it', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('presence-owner');
          await engine.subscribe(ch);
          await engine.join(ch, 'k', { id: 'u' }, 'old.1');
          await engine.join(ch, 'k', { id: 'u' }, 'new.1');
          await engine.leave(ch, 'k', 'old.1');
          assert.deepEqual(await engine.members(ch), [{ id: 'u' }], 'the late leave of the old connection changes nothing');
          await engine.leave(ch, 'k', 'new.1');
          assert.deepEqual(await engine.members(ch), []);
          await waitFor(() => recorder.presenceOn(ch).length === 2, 'the join and the one leave');
          await quietWindow(20);
          assert.deepEqual(recorder.presenceOn(ch).map((e) => e.kind), ['join', 'leave']);
        }));

      test('members(limit) lists at most limit; memberCount counts them all', () =>
        withEngine(async (engine) => {
          const ch = channelName('presence-limit');
          for (let n = 0; n < 5; n++) await engine.join(ch, `k${n}`, { n }, `c.${n}`);
          assert.equal((await engine.members(ch, 2)).length, 2);
          assert.equal((await engine.members(ch)).length, 5);
          assert.equal(await engine.memberCount?.(ch), 5);
        }));

      test('ephemeral messages reach subscribed nodes, with no offset and nothing kept; the subscriber count comes back', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('ephemeral');
          await engine.subscribe(ch);
          engine.setLocalSubscriberCount(ch, 3);
          await waitFor(async () => (await engine.subscriberCount!(ch)) === 3, 'the count written');
          assert.equal(await engine.publishEphemeral!(ch, '{"x":1}'), 3);
          await waitFor(() => recorder.ephemerals.length === 1, 'the ephemeral message');
          assert.deepEqual(recorder.ephemerals, [[ch, '{"x":1}']]);
          // The publisher's client id comes back as it was given (the hub stamps it on the message).
          await engine.publishEphemeral!(ch, '{"x":2}', '5f0c9a1e2b7d4c3a');
          await waitFor(() => recorder.ephemerals.length === 2, 'the second ephemeral message');
          assert.deepEqual(recorder.ephemerals[1], [ch, '{"x":2}', '5f0c9a1e2b7d4c3a']);
          const { position, messages } = await engine.history(ch);
          assert.deepEqual([position.offset, messages], [0, []], 'no offset taken, nothing in history');
          assert.equal((await engine.publish(ch, '"m"')).offset, 1, 'the next message is offset 1');
          await waitFor(() => recorder.on(ch).length === 1, 'the message');
          assert.deepEqual(recorder.on(ch).map((m) => m.offset), [1]);
        }));

      test('members are per connection: one user on two connections is listed twice, and leaves one at a time', () =>
        withEngine(async (engine) => {
          const ch = channelName('presence-two');
          await engine.subscribe(ch);
          await engine.join(ch, 'c1', { id: 'u1' });
          await engine.join(ch, 'c2', { id: 'u1' });
          assert.equal((await engine.members(ch)).length, 2);
          await engine.leave(ch, 'c1');
          assert.deepEqual(await engine.members(ch), [{ id: 'u1' }]);
        }));

      test('a leave of a client that never joined changes nothing and tells no one', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('presence-stranger');
          await engine.subscribe(ch);
          await engine.join(ch, 'c1', { id: 'u1' });
          await engine.leave(ch, 'nobody');
          await engine.join(ch, 'c2', { id: 'u2' });
          await waitFor(() => recorder.presenceOn(ch).length >= 2, 'the joins');
          await quietWindow(20);
          assert.deepEqual(
            recorder.presenceOn(ch).map((e) => [e.kind, e.client]),
            [
              ['join', 'c1'],
              ['join', 'c2'],
            ],
          );
          assert.equal((await engine.members(ch)).length, 2);
        }));

      test('no events for channels this node did not subscribe, but members() knows them', () =>
        withEngine(async (engine, recorder) => {
          const ch = channelName('presence-unsubscribed');
          const marker = channelName('presence-marker');
          await engine.subscribe(marker);
          await engine.join(ch, 'c1', { id: 'u1' });
          await engine.join(marker, 'c9', { id: 'u9' });
          await waitFor(() => recorder.presenceOn(marker).length === 1, 'the marker join');
          await quietWindow(20);
          assert.deepEqual(recorder.presenceOn(ch), []);
          assert.deepEqual(await engine.members(ch), [{ id: 'u1' }]);
          await engine.leave(ch, 'c1');
          assert.deepEqual(await engine.members(ch), []);
        }));
    });

    describe('subscriber counts', () => {
      test('a publish counts the subscribers setLocalSubscriberCount reported; a repeated key counts none', () =>
        withEngine(async (engine) => {
          const ch = channelName('count');
          assert.equal((await engine.publish(ch, '"none yet"')).subscribers, 0);
          // Engines spanning nodes may apply the count asynchronously.
          const counted = async (n: number): Promise<void> => {
            let last = -1;
            await waitFor(async () => (last = (await engine.publish(ch, '"probe"')).subscribers) === n, `a publish to count ${n}`, { ms: 3_000, state: () => `it counted ${last}` });
          };
          engine.setLocalSubscriberCount(ch, 3);
          await counted(3);
          engine.setLocalSubscriberCount(ch, 1);
          await counted(1);
          const keyed = await engine.publish(ch, '"once"', { key: 'k' });
          assert.deepEqual([keyed.duplicate, keyed.subscribers], [false, 1]);
          const repeat = await engine.publish(ch, '"once"', { key: 'k' });
          assert.deepEqual([repeat.duplicate, repeat.subscribers], [true, 0], 'a repeat is delivered to no one');
          engine.setLocalSubscriberCount(ch, 0);
          await counted(0);
          assert.equal((await engine.publish(channelName('count-other'), '1')).subscribers, 0);
        }));
    });

    test('an engine reports itself healthy, and closes', () =>
      withEngine((engine) => {
        assert.equal(engine.healthy, true);
        return Promise.resolve();
      }));
  });
}
