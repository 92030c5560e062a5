import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { engineSuite, Recorder } from '../../test/support/engine-suite.js';
import { ChannelError } from './channel-error.js';
import { ENTRY_OVERHEAD, MemoryEngine, type MemoryEngineOptions } from './memory-engine.js';

/** A memory engine on a clock the test moves. */
function clocked(options: MemoryEngineOptions = {}): { engine: MemoryEngine; advance(ms: number): void; readonly time: number } {
  let time = 1_700_000_000_000;
  const engine = new MemoryEngine({ ...options, now: () => time });
  return {
    engine,
    advance(ms: number) {
      time += ms;
    },
    get time() {
      return time;
    },
  };
}

/** Runs `body` with a started engine on a clock it moves, and always closes it. */
async function started(options: MemoryEngineOptions, body: (clock: ReturnType<typeof clocked>) => Promise<void>): Promise<void> {
  const clock = clocked(options);
  await clock.engine.start(new Recorder());
  try {
    await body(clock);
  } finally {
    await clock.engine.close();
  }
}

engineSuite('memory', (options) => {
  const { engine, advance } = clocked(options);
  return Promise.resolve({ engine, advance, cleanup: () => Promise.resolve() });
});

describe('memory engine', () => {
  test('history expires after historyTtl; recovery follows what is left', async () => {
    await started({ historyTtl: 1_000 }, async ({ engine, advance }) => {
      await engine.publish('ttl', '1');
      await engine.publish('ttl', '2');
      await engine.publish('ttl', '3');
      advance(600);
      await engine.publish('ttl', '4');
      await engine.publish('ttl', '5');
      const { epoch } = (await engine.history('ttl')).position;
      assert.equal((await engine.history('ttl')).messages.length, 5);

      advance(400); // the first three are 1000 ms old now
      const after = await engine.history('ttl');
      assert.deepEqual(
        after.messages.map((m) => m.offset),
        [4, 5],
      );
      assert.deepEqual(after.position, { epoch, offset: 5 }, 'trimming keeps the epoch and the offset');
      assert.equal((await engine.history('ttl', { since: { epoch, offset: 3 } })).recovered, true);
      assert.equal((await engine.history('ttl', { since: { epoch, offset: 2 } })).recovered, false);

      advance(600);
      assert.deepEqual((await engine.history('ttl')).messages, []);
      assert.equal((await engine.history('ttl', { since: { epoch, offset: 5 } })).recovered, true, 'nothing was missed');
      assert.equal((await engine.history('ttl', { since: { epoch, offset: 4 } })).recovered, false);
      assert.equal((await engine.publish('ttl', '6')).offset, 6, 'offsets carry on');
    });
  });

  test('historyTtl 0 keeps messages however old', async () => {
    await started({ historyTtl: 0 }, async ({ engine, advance }) => {
      await engine.publish('forever', '1');
      advance(365 * 24 * 3600_000);
      assert.equal((await engine.history('forever')).messages.length, 1);
    });
  });

  test('historySize 0 keeps nothing: only a resume from the current offset recovers', async () => {
    await started({ historySize: 0 }, async ({ engine }) => {
      await engine.subscribe('none');
      await engine.publish('none', '1');
      await engine.publish('none', '2');
      const read = await engine.history('none', { limit: 10 });
      assert.deepEqual(read.messages, []);
      assert.equal(read.position.offset, 2);
      const { epoch } = read.position;
      assert.equal((await engine.history('none', { since: { epoch, offset: 2 } })).recovered, true);
      assert.equal((await engine.history('none', { since: { epoch, offset: 1 } })).recovered, false);
    });
  });

  test('a recovery larger than the limit asked for is not recovered (never partial)', async () => {
    await started({}, async ({ engine }) => {
      for (let n = 0; n < 10; n++) await engine.publish('partial', String(n));
      const { epoch } = (await engine.history('partial')).position;
      const tooMany = await engine.history('partial', { since: { epoch, offset: 2 }, limit: 5 });
      assert.equal(tooMany.recovered, false);
      assert.deepEqual(tooMany.messages, []);
      const fits = await engine.history('partial', { since: { epoch, offset: 5 }, limit: 5 });
      assert.equal(fits.recovered, true);
      assert.deepEqual(
        fits.messages.map((m) => m.offset),
        [6, 7, 8, 9, 10],
      );
    });
  });

  test('an idle channel with nothing kept is forgotten and comes back with a new epoch', async () => {
    await started({ historySize: 0 }, async ({ engine }) => {
      await engine.subscribe('idle');
      const first = await engine.publish('idle', '1');
      await engine.publish('idle', '2');
      assert.equal(engine.channelCount, 1);
      await engine.unsubscribe('idle');
      assert.equal(engine.channelCount, 0, 'forgotten as soon as its last subscription went');
      const again = await engine.publish('idle', '3');
      assert.notEqual(again.epoch, first.epoch, 'a new epoch, at the very same clock time');
      assert.equal(again.offset, 1, 'offsets restart in the new epoch');
      const resumed = await engine.history('idle', { since: { epoch: first.epoch, offset: 2 } });
      assert.equal(resumed.recovered, false);
    });
  });

  test('the sweeper forgets channels whose history and keys expired, but not subscribed or occupied ones', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    await started({ historyTtl: 1_000, idempotencyWindow: 1_000 }, async ({ engine, advance }) => {
      const gone = await engine.publish('sweep:gone', '1', { key: 'k' });
      await engine.publish('sweep:subscribed', '1');
      await engine.subscribe('sweep:subscribed');
      await engine.publish('sweep:member', '1');
      await engine.join('sweep:member', 'c1', { id: 'u1' });
      for (let n = 0; n < 1_000; n++) await engine.publish(`sweep:many:${n}`, String(n));
      assert.equal(engine.channelCount, 1_003);

      advance(500);
      t.mock.timers.tick(1_000);
      assert.equal(engine.channelCount, 1_003, 'nothing expired yet');

      advance(1_000);
      t.mock.timers.tick(1_000);
      assert.equal(engine.channelCount, 2, 'only the subscribed channel and the one with a member are left');
      assert.deepEqual((await engine.history('sweep:subscribed')).messages, []);
      assert.equal((await engine.history('sweep:subscribed')).position.offset, 1, 'a live channel keeps its offsets');

      const back = await engine.publish('sweep:gone', '2', { key: 'k' });
      assert.notEqual(back.epoch, gone.epoch);
      assert.deepEqual([back.offset, back.duplicate], [1, false]);
    });
  });

  test('memory is bounded: 10,000 publishes to one channel with historySize 100 keep 100', async () => {
    await started({ historySize: 100 }, async ({ engine, advance }) => {
      await engine.subscribe('bounded');
      for (let n = 1; n <= 10_000; n++) {
        await engine.publish('bounded', String(n));
        if (n % 100 === 0) advance(1);
      }
      const { messages, position } = await engine.history('bounded', { limit: 1000 });
      assert.equal(position.offset, 10_000);
      assert.equal(messages.length, 100);
      assert.equal(messages[0]!.offset, 9_901);
      assert.equal(messages[99]!.offset, 10_000);
      assert.equal(messages[99]!.data, '10000');
      assert.equal(engine.channelCount, 1);
    });
  });

  test('keys are bounded by the window: 10,000 keyed publishes over time keep only recent keys', async () => {
    await started({ historySize: 10, idempotencyWindow: 1_000 }, async ({ engine, advance }) => {
      for (let n = 1; n <= 10_000; n++) {
        await engine.publish('keys', String(n), { key: `k${n}` });
        advance(1);
      }
      // k9001..k10000 are within the window; k1 was forgotten long ago.
      assert.equal((await engine.publish('keys', '"again"', { key: 'k1' })).duplicate, false);
      const recent = await engine.publish('keys', '"again"', { key: 'k9995' });
      assert.deepEqual([recent.offset, recent.duplicate], [9_995, true]);
    });
  });

  test('a new engine (a restart) gives a channel a new epoch', async () => {
    const a = new MemoryEngine();
    const b = new MemoryEngine();
    await a.start(new Recorder());
    await b.start(new Recorder());
    try {
      const before = await a.publish('restart', '1');
      const after = await b.publish('restart', '1');
      assert.notEqual(after.epoch, before.epoch);
      assert.equal((await b.history('restart', { since: { epoch: before.epoch, offset: 1 } })).recovered, false);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('epochs differ between channels made at the same instant', async () => {
    await started({}, async ({ engine }) => {
      const epochs = new Set<string>();
      for (let n = 0; n < 2_000; n++) epochs.add((await engine.history(`same-instant:${n}`)).position.epoch);
      assert.equal(epochs.size, 2_000);
    });
  });

  test('the listener is told synchronously with the publish, before it resolves', async () => {
    const { engine } = clocked();
    const recorder = new Recorder();
    await engine.start(recorder);
    try {
      await engine.subscribe('sync');
      const pending = engine.publish('sync', '1');
      assert.equal(recorder.on('sync').length, 1);
      await pending;
    } finally {
      await engine.close();
    }
  });
});

describe('memory engine: bounds across channels', () => {
  /** What one history entry of `data` in `channel` costs against maxHistoryBytes. */
  const cost = (channel: string, data: string): number => ENTRY_OVERHEAD + channel.length + data.length;

  test('maxHistoryBytes: the oldest entries go first, whatever their channel; recovery from before them is refused', async () => {
    const data = 'x'.repeat(1_000);
    await started({ maxHistoryBytes: 5 * cost('ch:a', data) }, async ({ engine, advance }) => {
      await engine.subscribe('ch:a');
      const { epoch } = (await engine.history('ch:a')).position;
      for (const channel of ['ch:a', 'ch:b', 'ch:a', 'ch:c', 'ch:a']) {
        await engine.publish(channel, data);
        advance(1);
      }
      assert.equal(engine.retainedBytes, 5 * cost('ch:a', data), 'exactly full');
      await engine.publish('ch:d', data);
      assert.equal(engine.retainedBytes, 5 * cost('ch:a', data));
      // The oldest entry was ch:a's first message.
      assert.deepEqual(
        (await engine.history('ch:a')).messages.map((m) => m.offset),
        [2, 3],
      );
      assert.equal((await engine.history('ch:a', { since: { epoch, offset: 0 } })).recovered, false, 'offset 1 is gone');
      assert.equal((await engine.history('ch:a', { since: { epoch, offset: 1 } })).recovered, true);
      await engine.publish('ch:d', data);
      await engine.publish('ch:d', data);
      // Then ch:b's only message, then ch:a's second: ch:b (unsubscribed, empty) is forgotten.
      assert.equal((await engine.history('ch:b')).position.offset, 0, 'ch:b is gone with its history: a new epoch');
      assert.deepEqual(
        (await engine.history('ch:a')).messages.map((m) => m.offset),
        [3],
      );
      assert.equal((await engine.history('ch:a')).position.epoch, epoch, 'a subscribed channel keeps its epoch and offsets');
      assert.ok(engine.retainedBytes <= 5 * cost('ch:a', data));
    });
  });

  test('publish keys count too, and go in the same order', async () => {
    await started({ historySize: 0, maxHistoryBytes: 3 * (ENTRY_OVERHEAD + 10) }, async ({ engine }) => {
      for (const key of ['key-000001', 'key-000002', 'key-000003', 'key-000004']) await engine.publish('keys', '1', { key });
      assert.equal((await engine.publish('keys', '1', { key: 'key-000001' })).duplicate, false, 'the oldest key was let go');
      assert.equal((await engine.publish('keys', '1', { key: 'key-000004' })).duplicate, true);
    });
  });

  test('per-channel trimming gives its bytes back: 20,000 publishes to one channel with historySize 10', async () => {
    await started({ historySize: 10, maxHistoryBytes: 1_000_000 }, async ({ engine }) => {
      for (let n = 0; n < 20_000; n++) await engine.publish('one', 'abcdefghij');
      assert.equal(engine.retainedBytes, 10 * cost('one', 'abcdefghij'));
    });
  });

  test('maxChannels: the least recently published channel nobody uses is forgotten; subscribed and occupied ones stay', async () => {
    await started({ maxChannels: 4 }, async ({ engine }) => {
      await engine.subscribe('used:sub');
      await engine.publish('idle:1', '1');
      await engine.join('used:member', 'c1', { id: 'u' });
      const two = await engine.publish('idle:2', '1');
      await engine.publish('idle:1', '2'); // idle:1 is now the more recently published
      await engine.publish('new:1', '1');
      assert.equal(engine.channelCount, 4);
      assert.equal((await engine.history('idle:2')).position.offset, 0, 'idle:2 was forgotten');
      assert.equal((await engine.history('idle:1')).position.offset, 2);
      const back = await engine.publish('idle:2', '2');
      assert.notEqual(back.epoch, two.epoch, 'it comes back in a new epoch');
      assert.equal((await engine.history('idle:2', { since: { epoch: two.epoch, offset: 1 } })).recovered, false);
      assert.deepEqual(await engine.members('used:member'), [{ id: 'u' }]);
      assert.equal((await engine.history('used:sub')).position.offset, 0);
    });
  });

  test('maxChannels all in use: a publish to a new channel is refused too_large; subscribing still works', async () => {
    await started({ maxChannels: 2 }, async ({ engine }) => {
      await engine.subscribe('a');
      await engine.subscribe('b');
      await assert.rejects(
        engine.publish('c', '1'),
        (error: unknown) => error instanceof ChannelError && error.code === 'too_large' && /maximum of 2 channels/.test(error.message),
      );
      assert.equal((await engine.publish('a', '1')).offset, 1, 'existing channels are served');
      await engine.subscribe('c');
      assert.equal(engine.channelCount, 3, 'subscriptions are bounded per connection, not here');
      await engine.unsubscribe('c');
      await engine.unsubscribe('b');
      assert.equal((await engine.publish('d', '1')).offset, 1);
    });
  });

  test('reading channels that do not exist creates nothing', async () => {
    await started({}, async ({ engine }) => {
      for (let n = 0; n < 1_000; n++) {
        const read = await engine.history(`none:${n}`, { since: { epoch: 'e', offset: 0 } });
        assert.deepEqual([read.position.offset, read.recovered, read.messages], [0, false, []]);
        assert.deepEqual(await engine.members(`none:${n}`), []);
        engine.setLocalSubscriberCount(`none:${n}`, 0);
      }
      await engine.leave('none:x', 'c1');
      assert.equal(engine.channelCount, 0);
      assert.equal(engine.retainedBytes, 0);
    });
  });
});
