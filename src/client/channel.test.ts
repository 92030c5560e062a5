// A channel on its own, with a fake host: its states, where it stands after each sub answer,
// which messages reach the application (each offset once, in order, nothing before the
// answer), and its own retries after a refusal for now, on mocked timers. How the client
// drives it over a connection is in client.test.ts.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Channel, type ChannelHost, type ChannelPosition, type ChannelState, type SubscribedEvent } from './channel.js';
import { HotlineError } from './errors.js';
import type { Json, SubOk } from '../wire/index.js';

interface SentSub {
  since: ChannelPosition | null;
  done(reply: SubOk): void;
  failed(error: HotlineError): void;
}

type FakeHost = ChannelHost & {
  calls: string[];
  /** Channels whose presence was asked for (each subscription's answer syncs the live map). */
  presenceCalls: string[];
  subs: SentSub[];
  isOnline: boolean;
  isClosed: boolean;
  /** The backoff: retry n waits 1000 × 2^n ms. */
  delays: number[];
};

function fakeHost(): FakeHost {
  const host: FakeHost = {
    calls: [],
    presenceCalls: [],
    subs: [],
    isOnline: true,
    isClosed: false,
    delays: [],
    online: () => host.isOnline,
    closed: () => host.isClosed,
    sub(name, since, token, done, failed) {
      host.calls.push(`${since === null ? `sub ${name}` : `sub ${name} since ${since.epoch}:${since.offset}`}${token === undefined ? '' : ` token ${token}`}`);
      host.subs.push({ since, done, failed });
    },
    unsub(name) {
      host.calls.push(`unsub ${name}`);
    },
    retryDelay(retry) {
      const delay = 1000 * 2 ** retry;
      host.delays.push(delay);
      return delay;
    },
    publishTo(name, data, key) {
      host.calls.push(`pub ${name} ${JSON.stringify(data)} ${String(key)}`);
      return Promise.resolve({ offset: 1, delivered: 1 });
    },
    historyOf(name, options) {
      host.calls.push(`history ${name} ${JSON.stringify(options)}`);
      return Promise.resolve({ epoch: 'e', messages: [{ offset: 1, data: 'a' }], more: false });
    },
    presenceOf(name) {
      host.presenceCalls.push(name);
      return Promise.resolve({ members: [{ id: 'u1', client: 'c1' }], count: 1, truncated: false, joinLeave: true });
    },
    publishEphemeral(name, data) {
      host.calls.push(`eph ${name} ${JSON.stringify(data)}`);
      return Promise.resolve({ delivered: 1 });
    },
    stateOf(name, state) {
      host.calls.push(`state ${name} ${JSON.stringify(state)}`);
      return Promise.resolve();
    },
  };
  return host;
}

/** Answers the last sub the channel sent. */
function answer(host: FakeHost, epoch: string, offset: number, recovered: boolean): void {
  host.subs.at(-1)!.done({ op: 'ok', id: 1, epoch, offset, recovered });
}

function refuse(host: FakeHost, code: HotlineError['code'], message = code): void {
  host.subs.at(-1)!.failed(new HotlineError(code, message));
}

/** A channel subscribed at epoch:offset, and what it told the application from the start. */
function subscribedChannel(host: FakeHost, epoch: string, offset: number): { channel: Channel<Json>; seen: Seen } {
  const channel = new Channel<Json>('room:1', host);
  const seen = listen(channel);
  void channel.subscribe();
  answer(host, epoch, offset, false);
  return { channel, seen };
}

/** Resubscribes as after a reconnect and answers with `reply`. */
function reconnect(channel: Channel<Json>, host: FakeHost, epoch: string, offset: number, recovered: boolean): void {
  channel.disconnected();
  channel.connected();
  answer(host, epoch, offset, recovered);
}

type Seen = { offsets: number[]; data: Json[]; subscribed: SubscribedEvent[]; states: string[]; errors: Error[] };

function listen(channel: Channel<Json>): Seen {
  const seen = { offsets: [] as number[], data: [] as Json[], subscribed: [] as SubscribedEvent[], states: [] as string[], errors: [] as Error[] };
  channel.on('message', (data, meta) => {
    seen.offsets.push(meta.offset);
    seen.data.push(data);
  });
  channel.on('subscribed', (event) => seen.subscribed.push(event));
  channel.on('state', (state, error) => seen.states.push(error === undefined ? state : `${state} (${(error as HotlineError).code})`));
  channel.on('error', (error) => seen.errors.push(error));
  return seen;
}

/** Whether a promise has settled, once pending callbacks have run. */
async function outcome(promise: Promise<unknown>): Promise<string> {
  let result = 'pending';
  promise.then(
    () => (result = 'resolved'),
    (error: unknown) => (result = `rejected ${(error as HotlineError).code}`),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return result;
}

function mockTimers(t: TestContext): void {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
}

describe('dedupe by offset', () => {
  test('nothing reaches the application before the first sub answer', () => {
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const seen = listen(channel);
    channel.receive(1, 'early');
    void channel.subscribe();
    channel.receive(1, 'before the answer');
    assert.deepEqual(seen.offsets, []);
    assert.equal(channel.position, null);
  });

  test('live messages after the answer, each offset once; repeats and older offsets are dropped', () => {
    const host = fakeHost();
    const { channel, seen } = subscribedChannel(host, 'e1', 10);
    for (const offset of [11, 12, 12, 10, 9, 13, 11, 14]) channel.receive(offset, `m${offset}`);
    assert.deepEqual(seen.offsets, [11, 12, 13, 14]);
    assert.deepEqual(seen.data, ['m11', 'm12', 'm13', 'm14']);
    assert.deepEqual(channel.position, { epoch: 'e1', offset: 14 });
  });

  test('the answer’s own offset was already published before the subscription: not delivered', () => {
    const host = fakeHost();
    const { channel, seen } = subscribedChannel(host, 'e1', 5);
    channel.receive(5, 'old');
    channel.receive(6, 'new');
    assert.deepEqual(seen.offsets, [6]);
  });

  test('messages carry the channel’s epoch in their meta', () => {
    const host = fakeHost();
    const { channel } = subscribedChannel(host, 'k3v9x', 0);
    const metas: Array<{ offset: number; epoch: string }> = [];
    channel.on('message', (_data, meta) => metas.push(meta));
    channel.receive(1, null);
    assert.deepEqual(metas, [{ offset: 1, epoch: 'k3v9x' }]);
  });
});

describe('resubscription', () => {
  test('recovered:true in the same epoch keeps the position: the replay moves it on, overlaps are dropped', () => {
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const seen = listen(channel);
    void channel.subscribe();
    answer(host, 'e1', 0, false);
    channel.receive(1, 'a');
    channel.receive(2, 'b');
    // Reconnected: the sub asks from 2; the server is at 5 and replays 3..5; a repeat of 2 and 4 must not show.
    channel.disconnected();
    channel.connected();
    assert.deepEqual(host.subs.at(-1)!.since, { epoch: 'e1', offset: 2 });
    answer(host, 'e1', 5, true);
    assert.deepEqual(channel.position, { epoch: 'e1', offset: 2 }, 'the replay starts after what was seen');
    for (const offset of [2, 3, 4, 4, 5, 6]) channel.receive(offset, `r${offset}`);
    assert.deepEqual(seen.offsets, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(seen.subscribed.map((e) => [e.recovered, e.first]), [[false, true], [true, false]]);
  });

  test('recovered:false jumps to the answer’s offset: nothing older is delivered', () => {
    const host = fakeHost();
    const { channel, seen } = subscribedChannel(host, 'e1', 0);
    channel.receive(1, 'a');
    reconnect(channel, host, 'e1', 50, false);
    assert.deepEqual(channel.position, { epoch: 'e1', offset: 50 });
    channel.receive(30, 'stale');
    channel.receive(51, 'live');
    assert.deepEqual(seen.offsets, [1, 51]);
  });

  test('a new epoch (the server lost its history) restarts offsets: low offsets are new messages', () => {
    const host = fakeHost();
    const { channel, seen } = subscribedChannel(host, 'e1', 100);
    channel.receive(101, 'old epoch');
    reconnect(channel, host, 'e2', 0, false);
    channel.receive(1, 'new epoch');
    channel.receive(2, 'new epoch');
    assert.deepEqual(seen.offsets, [101, 1, 2]);
    assert.deepEqual(channel.position, { epoch: 'e2', offset: 2 });
  });

  test('recovered:true with another epoch cannot keep the old position', () => {
    const host = fakeHost();
    const { channel } = subscribedChannel(host, 'e1', 7);
    reconnect(channel, host, 'e2', 3, true);
    assert.deepEqual(channel.position, { epoch: 'e2', offset: 3 });
  });

  test('while the connection is down nothing is delivered, and nothing is sent until it is back', () => {
    const host = fakeHost();
    const { channel, seen } = subscribedChannel(host, 'e1', 0);
    channel.disconnected();
    channel.receive(1, 'from a dead connection');
    assert.equal(channel.state, 'waiting');
    assert.deepEqual(host.calls, ['sub room:1']);
    channel.connected();
    assert.deepEqual(host.calls, ['sub room:1', 'sub room:1 since e1:0']);
    assert.deepEqual(seen.states, ['subscribing', 'subscribed', 'waiting', 'subscribing']);
    assert.deepEqual(seen.offsets, []);
  });
});

describe('a gap in offsets', () => {
  test('a skipped offset is not delivered: the channel resyncs once from its position and delivers nothing until answered', () => {
    const host = fakeHost();
    const { channel, seen } = subscribedChannel(host, 'e1', 10);
    channel.receive(11, 'a');
    channel.receive(12, 'b');
    // 13–16 were lost on the way.
    for (const offset of [17, 18, 19]) channel.receive(offset, `m${offset}`);
    assert.deepEqual(seen.offsets, [11, 12], 'nothing past the hole');
    assert.deepEqual(host.calls, ['sub room:1', 'unsub room:1', 'sub room:1 since e1:12'], 'one resync, however many messages follow the hole');
    assert.deepEqual(channel.position, { epoch: 'e1', offset: 12 });

    // The resubscription recovers: the replay fills the hole, in order, then live messages.
    answer(host, 'e1', 19, true);
    for (let offset = 13; offset <= 21; offset++) channel.receive(offset, `m${offset}`);
    assert.deepEqual(seen.offsets, [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]);
    assert.deepEqual(seen.subscribed.map((e) => [e.recovered, e.first]), [[false, true], [true, false]]);
  });

  test('a resync goes subscribed → resyncing → subscribed, on the same connection', () => {
    const host = fakeHost();
    const { channel, seen } = subscribedChannel(host, 'e1', 0);
    channel.receive(1, 'a');
    channel.receive(3, 'after a hole');
    assert.equal(channel.state, 'resyncing');
    channel.receive(2, 'held back: the old subscription');
    answer(host, 'e1', 3, true);
    channel.receive(2, 'b');
    channel.receive(3, 'c');
    assert.deepEqual(seen.states, ['subscribing', 'subscribed', 'resyncing', 'subscribed']);
    assert.deepEqual(seen.offsets, [1, 2, 3]);
  });

  test('a resync that cannot recover says recovered:false, then live messages carry on from its offset', () => {
    const host = fakeHost();
    const { channel, seen } = subscribedChannel(host, 'e1', 0);
    channel.receive(1, 'a');
    channel.receive(5, 'after a hole');
    answer(host, 'e1', 40, false);
    channel.receive(41, 'live');
    assert.deepEqual(seen.offsets, [1, 41]);
    assert.deepEqual(seen.subscribed.map((e) => [e.recovered, e.first]), [[false, true], [false, false]], 'the application is told');
  });

  test('a second hole after the resync starts another resync', () => {
    const host = fakeHost();
    const { channel, seen } = subscribedChannel(host, 'e1', 0);
    channel.receive(2, 'hole');
    answer(host, 'e1', 2, true);
    channel.receive(1, 'a');
    channel.receive(2, 'b');
    channel.receive(4, 'hole again');
    assert.deepEqual(seen.offsets, [1, 2]);
    assert.deepEqual(host.calls, ['sub room:1', 'unsub room:1', 'sub room:1 since e1:0', 'unsub room:1', 'sub room:1 since e1:2']);
  });

  test('a hole while offline waits for the connection; the reconnect resubscribes from the position', () => {
    const host = fakeHost();
    const { channel } = subscribedChannel(host, 'e1', 0);
    channel.receive(1, 'a');
    host.isOnline = false;
    channel.receive(3, 'hole');
    assert.equal(channel.state, 'waiting');
    host.isOnline = true;
    channel.connected();
    assert.deepEqual(host.subs.at(-1)!.since, { epoch: 'e1', offset: 1 });
  });
});

describe('states', () => {
  test('unsubscribed → subscribing → subscribed; unsubscribe() → unsubscribed, with an unsub', async () => {
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const seen = listen(channel);
    assert.equal(channel.state, 'unsubscribed');
    const subscribed = channel.subscribe();
    assert.equal(channel.state, 'subscribing');
    answer(host, 'e', 0, false);
    assert.equal(channel.state, 'subscribed');
    assert.deepEqual(await subscribed, { epoch: 'e', offset: 0, recovered: false, first: true });
    channel.unsubscribe();
    assert.deepEqual(seen.states, ['subscribing', 'subscribed', 'unsubscribed']);
    assert.deepEqual(host.calls, ['sub room:1', 'unsub room:1']);
    assert.equal(channel.position, null);
  });

  test('subscribed before the connection is up: waiting, then subscribing once it is', () => {
    const host = fakeHost();
    host.isOnline = false;
    const channel = new Channel<Json>('room:1', host);
    const seen = listen(channel);
    void channel.subscribe();
    assert.equal(channel.state, 'waiting');
    assert.deepEqual(host.calls, []);
    host.isOnline = true;
    channel.connected();
    answer(host, 'e', 0, false);
    assert.deepEqual(seen.states, ['waiting', 'subscribing', 'subscribed']);
  });

  test('a sub answered internal is tried again after the backoff, and ends subscribed; the backoff grows and starts over', async (t) => {
    mockTimers(t);
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const seen = listen(channel);
    const subscribed = channel.subscribe();
    refuse(host, 'internal');
    assert.equal(channel.state, 'retrying');
    t.mock.timers.tick(999);
    assert.equal(host.subs.length, 1, 'not before the backoff');
    t.mock.timers.tick(1);
    assert.equal(host.subs.length, 2);
    refuse(host, 'rate_limited');
    t.mock.timers.tick(1999);
    assert.equal(host.subs.length, 2, 'the second wait is longer');
    t.mock.timers.tick(1);
    assert.equal(await outcome(subscribed), 'pending', 'subscribe() waits through the retries');
    answer(host, 'e', 4, false);
    assert.equal(await outcome(subscribed), 'resolved');
    assert.deepEqual(seen.states, ['subscribing', 'retrying (internal)', 'subscribing', 'retrying (rate_limited)', 'subscribing', 'subscribed']);
    assert.deepEqual(seen.errors, [], 'no error event: the subscription did not end');
    assert.deepEqual(host.delays, [1000, 2000]);
    assert.deepEqual(host.calls, ['sub room:1', 'sub room:1', 'sub room:1'], 'no unsub: an err means the server did not subscribe');
    // After a success the backoff starts from the beginning again.
    channel.receive(6, 'a hole');
    refuse(host, 'internal');
    assert.deepEqual(host.delays, [1000, 2000, 1000]);
  });

  test('a code the client does not know (a newer server’s) is retried like internal', (t) => {
    mockTimers(t);
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    void channel.subscribe();
    host.subs.at(-1)!.failed(new HotlineError('unavailable' as HotlineError['code'], 'try later'));
    assert.equal(channel.state, 'retrying');
    t.mock.timers.tick(1000);
    assert.equal(channel.state, 'subscribing');
  });

  test('a sub that timed out: unsub first (the server may yet carry it out), then a retry after the backoff', (t) => {
    mockTimers(t);
    const host = fakeHost();
    const { channel } = subscribedChannel(host, 'e1', 3);
    channel.disconnected();
    channel.connected();
    const late = host.subs.at(-1)!;
    refuse(host, 'timeout');
    assert.deepEqual(host.calls, ['sub room:1', 'sub room:1 since e1:3', 'unsub room:1']);
    // The server's late answer to the abandoned sub, and messages of its subscription, change nothing.
    late.done({ op: 'ok', id: 1, epoch: 'e1', offset: 9, recovered: true });
    channel.receive(4, 'of the abandoned subscription');
    assert.equal(channel.state, 'retrying');
    assert.deepEqual(channel.position, { epoch: 'e1', offset: 3 });
    t.mock.timers.tick(1000);
    assert.deepEqual(host.calls.at(-1), 'sub room:1 since e1:3');
  });

  for (const code of ['forbidden', 'unauthorized', 'not_found', 'bad_request', 'too_large'] as const) {
    test(`${code} ends it for good: errored, an error event, subscribe() rejects, no retry`, async (t) => {
      mockTimers(t);
      const host = fakeHost();
      const channel = new Channel<Json>('room:1', host);
      const seen = listen(channel);
      const subscribed = channel.subscribe();
      refuse(host, code);
      assert.equal(channel.state, 'errored');
      assert.equal(await outcome(subscribed), `rejected ${code}`);
      assert.deepEqual(seen.states, ['subscribing', `errored (${code})`]);
      assert.equal(seen.errors.length, 1);
      t.mock.timers.tick(60_000);
      assert.equal(host.subs.length, 1, 'never asked again');
      // The application may ask again.
      void channel.subscribe();
      assert.equal(channel.state, 'subscribing');
      assert.equal(host.subs.length, 2);
    });
  }

  test('the server ending the subscription (unsub push): errored, an error event, not resumed on reconnect', () => {
    const host = fakeHost();
    const { channel, seen } = subscribedChannel(host, 'e1', 0);
    channel.ended(new HotlineError('forbidden', 'no longer allowed'));
    channel.receive(1, 'after the end');
    channel.disconnected();
    channel.connected();
    assert.deepEqual(seen.states, ['subscribing', 'subscribed', 'errored (forbidden)']);
    assert.equal(seen.errors.length, 1);
    assert.deepEqual(seen.offsets, []);
    assert.equal(host.subs.length, 1);
  });

  test('unsubscribe() while retrying cancels the retry; subscribe() rejects with cancelled', async (t) => {
    mockTimers(t);
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const subscribed = channel.subscribe();
    refuse(host, 'internal');
    channel.unsubscribe();
    assert.equal(await outcome(subscribed), 'rejected cancelled');
    t.mock.timers.tick(60_000);
    assert.equal(host.subs.length, 1);
    assert.equal(channel.state, 'unsubscribed');
  });

  test('the connection dropping while retrying: waiting, and the reconnect subscribes at once', (t) => {
    mockTimers(t);
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const seen = listen(channel);
    void channel.subscribe();
    refuse(host, 'internal');
    channel.disconnected();
    host.isOnline = false;
    t.mock.timers.tick(60_000);
    assert.equal(host.subs.length, 1, 'the backoff timer went with the connection');
    host.isOnline = true;
    channel.connected();
    assert.equal(host.subs.length, 2);
    assert.deepEqual(seen.states, ['subscribing', 'retrying (internal)', 'waiting', 'subscribing']);
  });

  test('the client closing: unsubscribed, subscribe() rejects with closed, and later ones at once', async () => {
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const subscribed = channel.subscribe();
    channel.closed(new HotlineError('closed', 'the client was closed'));
    host.isClosed = true;
    assert.equal(channel.state, 'unsubscribed');
    assert.equal(await outcome(subscribed), 'rejected closed');
    assert.equal(await outcome(channel.subscribe()), 'rejected closed');
  });

  test('subscribe() while subscribed answers from where it stands, without a sub', async () => {
    const host = fakeHost();
    const { channel } = subscribedChannel(host, 'e', 2);
    channel.receive(3, 'x');
    assert.deepEqual(await channel.subscribe(), { epoch: 'e', offset: 3, recovered: true, first: false });
    assert.equal(host.subs.length, 1);
  });

  test('an answer to a sub withdrawn by unsubscribe() is ignored, also after subscribing again', () => {
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const states: ChannelState[] = [];
    channel.on('state', (state) => states.push(state));
    void channel.subscribe().catch(() => {});
    const withdrawn = host.subs.at(-1)!;
    channel.unsubscribe();
    void channel.subscribe();
    withdrawn.done({ op: 'ok', id: 1, epoch: 'e', offset: 0, recovered: false });
    assert.equal(channel.state, 'subscribing', 'the answer to the first sub is not the second’s');
    answer(host, 'e', 1, false);
    assert.deepEqual(states, ['subscribing', 'unsubscribed', 'subscribing', 'subscribed']);
  });
});

describe('subscription tokens', () => {
  test('a token is sent with every sub; getToken is asked afresh before each, the resubscribe included', async () => {
    const host = fakeHost();
    const fixed = new Channel<Json>('private:1', host);
    fixed.configure({ token: 't0' });
    void fixed.subscribe();
    assert.deepEqual(host.calls, ['sub private:1 token t0']);

    const asked: string[] = [];
    const fresh = new Channel<Json>('private:2', host);
    fresh.configure({ token: 'ignored', getToken: (channel) => Promise.resolve(`${channel}#${asked.push(channel)}`) });
    const subscribed = fresh.subscribe();
    assert.equal(fresh.state, 'subscribing');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(host.calls.slice(1), ['sub private:2 token private:2#1']);
    answer(host, 'e', 3, false);
    await subscribed;
    fresh.disconnected();
    fresh.connected();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(host.calls.slice(2), ['sub private:2 since e:3 token private:2#2']);
  });

  test('getToken failing ends the subscription: errored, unauthorized, nothing sent', async () => {
    const host = fakeHost();
    const channel = new Channel<Json>('private:1', host);
    const seen = listen(channel);
    channel.configure({ getToken: () => Promise.reject(new Error('the backend said no')) });
    const subscribed = channel.subscribe();
    assert.equal(await outcome(subscribed), 'rejected unauthorized');
    assert.deepEqual(host.calls, []);
    assert.deepEqual(seen.states, ['subscribing', 'errored (unauthorized)']);
    assert.match(seen.errors[0]!.message, /getToken\(private:1\) failed: the backend said no/);
  });

  test('a token fetched after the connection dropped is not sent on it; the reconnect asks again', async () => {
    const host = fakeHost();
    const channel = new Channel<Json>('private:1', host);
    let release: (token: string) => void = () => {};
    let asked = 0;
    channel.configure({ getToken: () => new Promise<string>((resolve) => ((asked++), (release = resolve))) });
    void channel.subscribe();
    await new Promise((resolve) => setImmediate(resolve));
    host.isOnline = false;
    channel.disconnected();
    release('late');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(host.calls, [], 'not sent while offline');
    host.isOnline = true;
    channel.connected();
    await new Promise((resolve) => setImmediate(resolve));
    release('fresh');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(asked, 2);
    assert.deepEqual(host.calls, ['sub private:1 token fresh']);
  });
});

describe('the host', () => {
  test('subscribe adds the handler and asks the host; publish, history and presence go to the host', async () => {
    const host = fakeHost();
    const channel = new Channel<Json>('room:1', host);
    const got: Json[] = [];
    const subscribed = channel.subscribe((data) => got.push(data));
    answer(host, 'e', 0, false);
    await subscribed;
    channel.receive(1, 'x');
    assert.deepEqual(got, ['x']);
    assert.deepEqual(await channel.publish({ a: 1 }, { key: 'k1' }), { offset: 1, delivered: 1 });
    assert.deepEqual(await channel.history({ limit: 3 }), { epoch: 'e', messages: [{ offset: 1, data: 'a' }], more: false });
    assert.deepEqual(await channel.presence.fetch(), { members: [{ id: 'u1', client: 'c1' }], count: 1, truncated: false, joinLeave: true });
    channel.unsubscribe();
    assert.deepEqual(host.calls, ['sub room:1', 'pub room:1 {"a":1} k1', 'history room:1 {"limit":3}', 'unsub room:1']);
    assert.deepEqual(host.presenceCalls, ['room:1'], 'the live map is not kept until it is used');
  });
});
