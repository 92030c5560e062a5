// A channel on its own, with a fake host: where it stands after each sub answer, and which
// messages reach the application (each offset once, in order, nothing before the answer).
// How the client drives it over a connection is in client.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Channel, type ChannelHost, type SubscribedEvent } from './channel.js';
import type { Json } from '../wire/index.js';

function fakeHost(): ChannelHost & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    subscribeChannel(channel) {
      calls.push(`sub ${channel.name}`);
      return Promise.resolve({ epoch: 'e', offset: 0, recovered: false, first: true });
    },
    unsubscribeChannel(channel) {
      calls.push(`unsub ${channel.name}`);
    },
    publishTo(name, data, key) {
      calls.push(`pub ${name} ${JSON.stringify(data)} ${String(key)}`);
      return Promise.resolve({ offset: 1, delivered: 1 });
    },
    historyOf(name, options) {
      calls.push(`history ${name} ${JSON.stringify(options)}`);
      return Promise.resolve({ epoch: 'e', messages: [{ offset: 1, data: 'a' }], more: false });
    },
    presenceOf(name) {
      calls.push(`presence ${name}`);
      return Promise.resolve([{ id: 'u1' }]);
    },
    resync(channel) {
      calls.push(`resync ${channel.name} from ${channel.position?.offset}`);
    },
  };
}

function listen(channel: Channel<Json>): { offsets: number[]; data: Json[]; subscribed: SubscribedEvent[] } {
  const seen = { offsets: [] as number[], data: [] as Json[], subscribed: [] as SubscribedEvent[] };
  channel.on('message', (data, meta) => {
    seen.offsets.push(meta.offset);
    seen.data.push(data);
  });
  channel.on('subscribed', (event) => seen.subscribed.push(event));
  return seen;
}

describe('dedupe by offset', () => {
  test('nothing reaches the application before the first sub answer', () => {
    const channel = new Channel<Json>('room:1', fakeHost());
    const seen = listen(channel);
    channel.receive(1, 'early');
    assert.deepEqual(seen.offsets, []);
    assert.equal(channel.position, null);
  });

  test('live messages after the answer, each offset once; repeats and older offsets are dropped', () => {
    const channel = new Channel<Json>('room:1', fakeHost());
    const seen = listen(channel);
    channel.subscribed({ epoch: 'e1', offset: 10, recovered: false, first: true });
    for (const offset of [11, 12, 12, 10, 9, 13, 11, 14]) channel.receive(offset, `m${offset}`);
    assert.deepEqual(seen.offsets, [11, 12, 13, 14]);
    assert.deepEqual(seen.data, ['m11', 'm12', 'm13', 'm14']);
    assert.deepEqual(channel.position, { epoch: 'e1', offset: 14 });
  });

  test('the answer’s own offset was already published before the subscription: not delivered', () => {
    const channel = new Channel<Json>('room:1', fakeHost());
    const seen = listen(channel);
    channel.subscribed({ epoch: 'e1', offset: 5, recovered: false, first: true });
    channel.receive(5, 'old');
    channel.receive(6, 'new');
    assert.deepEqual(seen.offsets, [6]);
  });

  test('messages carry the channel’s epoch in their meta', () => {
    const channel = new Channel<Json>('room:1', fakeHost());
    const metas: Array<{ offset: number; epoch: string }> = [];
    channel.on('message', (_data, meta) => metas.push(meta));
    channel.subscribed({ epoch: 'k3v9x', offset: 0, recovered: false, first: true });
    channel.receive(1, null);
    assert.deepEqual(metas, [{ offset: 1, epoch: 'k3v9x' }]);
  });
});

describe('resubscription', () => {
  test('recovered:true in the same epoch keeps the position: the replay moves it on, overlaps are dropped', () => {
    const channel = new Channel<Json>('room:1', fakeHost());
    const seen = listen(channel);
    channel.subscribed({ epoch: 'e1', offset: 0, recovered: false, first: true });
    channel.receive(1, 'a');
    channel.receive(2, 'b');
    // Reconnected: the server is at 5 and replays 3..5; a repeat of 2 and 4 must not show.
    channel.subscribed({ epoch: 'e1', offset: 5, recovered: true, first: false });
    assert.deepEqual(channel.position, { epoch: 'e1', offset: 2 }, 'the replay starts after what was seen');
    for (const offset of [2, 3, 4, 4, 5, 6]) channel.receive(offset, `r${offset}`);
    assert.deepEqual(seen.offsets, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(
      seen.subscribed.map((e) => [e.recovered, e.first]),
      [
        [false, true],
        [true, false],
      ],
    );
  });

  test('recovered:false jumps to the answer’s offset: nothing older is delivered', () => {
    const channel = new Channel<Json>('room:1', fakeHost());
    const seen = listen(channel);
    channel.subscribed({ epoch: 'e1', offset: 0, recovered: false, first: true });
    channel.receive(1, 'a');
    channel.subscribed({ epoch: 'e1', offset: 50, recovered: false, first: false });
    assert.deepEqual(channel.position, { epoch: 'e1', offset: 50 });
    channel.receive(30, 'stale');
    channel.receive(51, 'live');
    assert.deepEqual(seen.offsets, [1, 51]);
  });

  test('a new epoch (the server lost its history) restarts offsets: low offsets are new messages', () => {
    const channel = new Channel<Json>('room:1', fakeHost());
    const seen = listen(channel);
    channel.subscribed({ epoch: 'e1', offset: 100, recovered: false, first: true });
    channel.receive(101, 'old epoch');
    channel.subscribed({ epoch: 'e2', offset: 0, recovered: false, first: false });
    channel.receive(1, 'new epoch');
    channel.receive(2, 'new epoch');
    assert.deepEqual(seen.offsets, [101, 1, 2]);
    assert.deepEqual(channel.position, { epoch: 'e2', offset: 2 });
  });

  test('recovered:true with another epoch cannot keep the old position', () => {
    const channel = new Channel<Json>('room:1', fakeHost());
    channel.subscribed({ epoch: 'e1', offset: 7, recovered: false, first: true });
    channel.subscribed({ epoch: 'e2', offset: 3, recovered: true, first: false });
    assert.deepEqual(channel.position, { epoch: 'e2', offset: 3 });
  });
});

describe('a gap in offsets', () => {
  test('a skipped offset is not delivered: the channel resyncs once from its position and delivers nothing until answered', () => {
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const seen = listen(channel);
    channel.subscribed({ epoch: 'e1', offset: 10, recovered: false, first: true });
    channel.receive(11, 'a');
    channel.receive(12, 'b');
    // 13–16 were lost on the way.
    for (const offset of [17, 18, 19]) channel.receive(offset, `m${offset}`);
    assert.deepEqual(seen.offsets, [11, 12], 'nothing past the hole');
    assert.deepEqual(host.calls, ['resync room:1 from 12'], 'one resync, however many messages follow the hole');
    assert.deepEqual(channel.position, { epoch: 'e1', offset: 12 });

    // The resubscription recovers: the replay fills the hole, in order, then live messages.
    channel.subscribed({ epoch: 'e1', offset: 19, recovered: true, first: false });
    for (let offset = 13; offset <= 21; offset++) channel.receive(offset, `m${offset}`);
    assert.deepEqual(seen.offsets, [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]);
    assert.deepEqual(
      seen.subscribed.map((e) => e.recovered),
      [false, true],
    );
  });

  test('a resync that cannot recover says recovered:false, then live messages carry on from its offset', () => {
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const seen = listen(channel);
    channel.subscribed({ epoch: 'e1', offset: 0, recovered: false, first: true });
    channel.receive(1, 'a');
    channel.receive(5, 'after a hole');
    channel.subscribed({ epoch: 'e1', offset: 40, recovered: false, first: false });
    channel.receive(41, 'live');
    assert.deepEqual(seen.offsets, [1, 41]);
    assert.deepEqual(
      seen.subscribed.map((e) => [e.recovered, e.first]),
      [
        [false, true],
        [false, false],
      ],
      'the application is told',
    );
  });

  test('a second hole after the resync starts another resync', () => {
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const seen = listen(channel);
    channel.subscribed({ epoch: 'e1', offset: 0, recovered: false, first: true });
    channel.receive(2, 'hole');
    channel.subscribed({ epoch: 'e1', offset: 2, recovered: true, first: false });
    channel.receive(1, 'a');
    channel.receive(2, 'b');
    channel.receive(4, 'hole again');
    assert.deepEqual(seen.offsets, [1, 2]);
    assert.deepEqual(host.calls, ['resync room:1 from 0', 'resync room:1 from 2']);
  });
});

describe('the host', () => {
  test('subscribe adds the handler and asks the host; publish, history and presence go to the host', async () => {
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const got: Json[] = [];
    await channel.subscribe((data) => got.push(data));
    channel.subscribed({ epoch: 'e', offset: 0, recovered: false, first: true });
    channel.receive(1, 'x');
    assert.deepEqual(got, ['x']);
    assert.deepEqual(await channel.publish({ a: 1 }, { key: 'k1' }), { offset: 1, delivered: 1 });
    assert.deepEqual(await channel.history({ limit: 3 }), { epoch: 'e', messages: [{ offset: 1, data: 'a' }], more: false });
    assert.deepEqual(await channel.presence(), [{ id: 'u1' }]);
    channel.unsubscribe();
    assert.deepEqual(host.calls, ['sub room:1', 'pub room:1 {"a":1} k1', 'history room:1 {"limit":3}', 'presence room:1', 'unsub room:1']);
  });
});
