// The channel hub without sockets: fake connections and a fake broadcaster, an engine
// that the tests can hold back at the moments that matter, and a clock the tests move.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as v from 'valibot';
import { z } from 'zod';
import type { Member } from '../wire/index.js';
import { ChannelError } from './channel-error.js';
import { EngineUnavailableError, type ChannelMessage, type Engine, type EngineListener, type HistoryQuery, type HistoryResult, type PublishResult } from './engine.js';
import { ChannelHub, type Broadcaster, type ChannelClient, type ChannelHubOptions } from './hub.js';
import { MemoryEngine } from './memory-engine.js';

interface Sent {
  op: string;
  id?: number;
  ch?: string;
  offset?: number;
  data?: unknown;
  code?: string;
  message?: string;
  epoch?: string;
  recovered?: boolean;
  delivered?: number;
  member?: Member;
  members?: Member[];
  messages?: Array<{ offset: number; data: unknown }>;
  result?: unknown;
}

class FakeBroadcaster implements Broadcaster {
  readonly topics = new Map<string, Set<FakeClient>>();
  broadcasts = 0;

  broadcast(channel: string, text: string): number {
    this.broadcasts++;
    const clients = this.topics.get(channel);
    if (clients === undefined) return 0;
    for (const client of clients) client.send(text);
    return clients.size;
  }
}

let clientCounter = 0;

class FakeClient implements ChannelClient<{ user: string }> {
  readonly id = `node.${clientCounter++}`;
  readonly log: Sent[] = [];
  closedWith: { code: number; reason: string } | null = null;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly broadcaster: FakeBroadcaster,
    readonly auth: { user: string },
    readonly member: Member | undefined,
  ) {}

  /**
   * A socket buffer, for pacing tests: with `slow` set, every frame stays buffered until
   * {@link drain}; otherwise it is written at once.
   */
  slow = false;
  bufferedAmount = 0;
  readonly backpressureLimit = 1024 * 1024;
  /** Frames sent with send() (live traffic) while over the limit: a real connection's policy would act. */
  overLimit = 0;
  private drainWaiters: Array<() => void> = [];

  send(text: string): void {
    if (this.bufferedAmount > this.backpressureLimit) this.overLimit++;
    this.sendReliable(text);
  }

  sendReliable(text: string): void {
    if (this.slow) this.bufferedAmount += text.length;
    this.log.push(JSON.parse(text) as Sent);
    const waiting = this.waiters;
    this.waiters = [];
    for (const wake of waiting) wake();
  }

  drained(): Promise<void> {
    if (this.closedWith !== null) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** The peer read everything buffered. */
  drain(): void {
    this.bufferedAmount = 0;
    const waiting = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiting) wake();
  }

  close(code: number, reason: string): void {
    this.closedWith ??= { code, reason };
    this.drain();
  }

  join(channel: string): void {
    let set = this.broadcaster.topics.get(channel);
    if (set === undefined) this.broadcaster.topics.set(channel, (set = new Set()));
    set.add(this);
  }

  leave(channel: string): void {
    this.broadcaster.topics.get(channel)?.delete(this);
  }

  closeCode(): number | undefined {
    return this.closedWith?.code;
  }

  joined(channel: string): boolean {
    return this.broadcaster.topics.get(channel)?.has(this) ?? false;
  }

  /** Resolves once `condition` holds (checked after each message). */
  async until(condition: () => boolean, what: string, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.log)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 20));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  answer(id: number): Sent | undefined {
    return this.log.find((m) => m.id === id && (m.op === 'ok' || m.op === 'err' || m.op === 'pong'));
  }

  msgs(channel: string): Sent[] {
    return this.log.filter((m) => m.op === 'msg' && m.ch === channel);
  }

  offsets(channel: string): number[] {
    return this.msgs(channel).map((m) => m.offset!);
  }

  presenceEvents(channel: string): Array<[string, unknown]> {
    return this.log.filter((m) => (m.op === 'join' || m.op === 'leave') && m.ch === channel).map((m) => [m.op, m.member?.['id']]);
  }
}

/** A hub with fake connections, a controllable clock, and request helpers. */
class Rig {
  readonly broadcaster = new FakeBroadcaster();
  readonly hub: ChannelHub<{ user: string }>;
  time = 1_000_000;
  private nextId = 1;

  constructor(options: ChannelHubOptions<{ user: string }> = {}) {
    this.hub = new ChannelHub({ now: () => this.time, onError: () => {}, ...options });
  }

  async start(): Promise<this> {
    await this.hub.start(this.broadcaster);
    return this;
  }

  /** A connected client; its member is `{ id: user }` unless given (null for none). */
  client(user = `u${clientCounter}`, member: Member | null = { id: user }): FakeClient {
    const client = new FakeClient(this.broadcaster, { user }, member ?? undefined);
    this.hub.connect(client);
    return client;
  }

  /** Sends a request; returns its id. */
  send(client: FakeClient, op: string, fields: Record<string, unknown> = {}): number {
    const id = this.nextId++;
    this.hub.handleText(client, JSON.stringify({ op, id, ...fields }));
    return id;
  }

  /** Sends a request and waits for its answer. */
  async request(client: FakeClient, op: string, fields: Record<string, unknown> = {}): Promise<Sent> {
    const id = this.send(client, op, fields);
    await client.until(() => client.answer(id) !== undefined, `the answer to ${op} #${id}`);
    return client.answer(id)!;
  }

  async ok(client: FakeClient, op: string, fields: Record<string, unknown> = {}): Promise<Sent> {
    const answer = await this.request(client, op, fields);
    assert.equal(answer.op, op === 'ping' ? 'pong' : 'ok', `${op} ${JSON.stringify(fields)} answered ${JSON.stringify(answer)}`);
    return answer;
  }

  async close(): Promise<void> {
    await this.hub.close();
  }
}

async function withRig(options: ChannelHubOptions<{ user: string }>, body: (rig: Rig) => Promise<void>): Promise<void> {
  const rig = await new Rig(options).start();
  try {
    await body(rig);
  } finally {
    await rig.close();
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Lets pending promise callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A promise with its resolve function. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/**
 * A memory engine whose history and subscribe can be held back, and whose deliveries to
 * the hub can be delayed (as an engine with a network between storing and delivering would).
 */
class ControlledEngine implements Engine {
  readonly inner: MemoryEngine;
  /** When set, history() waits for it: `read` says whether it reads before or after waiting. */
  historyGate: { wait: Promise<void>; read: 'before' | 'after'; started: () => void } | null = null;
  subscribeGate: Promise<void> | null = null;
  /** When true, deliveries queue until flush(). */
  delayDelivery = false;
  /** The next call of each of these methods rejects with this error. */
  failNext: Partial<Record<'publish' | 'subscribe' | 'history' | 'join', Error>> = {};
  private queued: ChannelMessage[] = [];
  private listener: EngineListener | null = null;

  constructor(inner = new MemoryEngine({ historySize: 1000 })) {
    this.inner = inner;
  }

  get healthy(): boolean {
    return this.inner.healthy;
  }

  start(listener: EngineListener): Promise<void> {
    this.listener = listener;
    return this.inner.start({
      message: (message) => {
        if (this.delayDelivery) this.queued.push(message);
        else listener.message(message);
      },
      presence: (event) => listener.presence(event),
    });
  }

  flush(): void {
    const queued = this.queued;
    this.queued = [];
    for (const message of queued) this.listener!.message(message);
  }

  private failure(method: keyof ControlledEngine['failNext']): Error | undefined {
    const error = this.failNext[method];
    delete this.failNext[method];
    return error;
  }

  publish(channel: string, data: string, options?: { key?: string }): Promise<PublishResult> {
    const error = this.failure('publish');
    if (error !== undefined) return Promise.reject(error);
    return this.inner.publish(channel, data, options);
  }

  async subscribe(channel: string): Promise<void> {
    const error = this.failure('subscribe');
    if (error !== undefined) throw error;
    if (this.subscribeGate !== null) await this.subscribeGate;
    return this.inner.subscribe(channel);
  }

  unsubscribe(channel: string): Promise<void> {
    return this.inner.unsubscribe(channel);
  }

  async history(channel: string, query?: HistoryQuery): Promise<HistoryResult> {
    const error = this.failure('history');
    if (error !== undefined) throw error;
    const held = this.historyGate;
    if (held === null) return this.inner.history(channel, query);
    this.historyGate = null;
    let result: HistoryResult | null = null;
    if (held.read === 'before') result = await this.inner.history(channel, query);
    held.started();
    await held.wait;
    return result ?? this.inner.history(channel, query);
  }

  setLocalSubscriberCount(channel: string, count: number): void {
    this.inner.setLocalSubscriberCount(channel, count);
  }

  join(channel: string, client: string, member: Member): Promise<void> {
    const error = this.failure('join');
    if (error !== undefined) return Promise.reject(error);
    return this.inner.join(channel, client, member);
  }

  leave(channel: string, client: string): Promise<void> {
    return this.inner.leave(channel, client);
  }

  members(channel: string): Promise<Member[]> {
    return this.inner.members(channel);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Holds the next history() until the returned open() is called; `reading` settles once it is held. */
  holdHistory(read: 'before' | 'after'): { open(): void; reading: Promise<void> } {
    const wait = gate();
    const reading = gate();
    this.historyGate = { wait: wait.promise, read, started: reading.open };
    return { open: wait.open, reading: reading.promise };
  }
}

const fast = { perSecond: 1_000_000, burst: 1_000_000 };

describe('recovery while messages keep coming', () => {
  for (const read of ['before', 'after'] as const) {
    test(`messages published during the replay (history read ${read} they arrive) come once, in order`, async () => {
      const engine = new ControlledEngine();
      await withRig({ engine, publishRate: fast }, async (rig) => {
        const publisher = rig.client('pub');
        const watcher = rig.client('watch');
        const sub = await rig.ok(watcher, 'sub', { ch: 'race' });
        const epoch = sub.epoch!;
        for (let n = 1; n <= 10; n++) await rig.ok(publisher, 'pub', { ch: 'race', data: n });

        // A subscriber resumes from offset 5; its history read is held while 10 more arrive.
        const resumer = rig.client('resume');
        const held = engine.holdHistory(read);
        const subId = rig.send(resumer, 'sub', { ch: 'race', since: { epoch, offset: 5 } });
        await held.reading;
        for (let n = 11; n <= 20; n++) await rig.ok(publisher, 'pub', { ch: 'race', data: n });
        assert.equal(resumer.answer(subId), undefined, 'still recovering');
        assert.deepEqual(resumer.msgs('race'), [], 'nothing before the ok');
        held.open();
        await resumer.until(() => resumer.offsets('race').length === 15, 'the replay');
        for (let n = 21; n <= 25; n++) await rig.ok(publisher, 'pub', { ch: 'race', data: n });
        await resumer.until(() => resumer.offsets('race').length === 20, 'the live messages');
        await settle();

        const ok = resumer.answer(subId)!;
        assert.equal(ok.op, 'ok');
        assert.equal(ok.recovered, true);
        assert.equal(ok.epoch, epoch);
        assert.equal(ok.offset, read === 'before' ? 10 : 20);
        const okIndex = resumer.log.indexOf(ok);
        assert.ok(resumer.log.findIndex((m) => m.op === 'msg') > okIndex, 'the ok comes before every msg');
        assert.deepEqual(resumer.offsets('race'), range(6, 25), 'every message after 5, once, in order');
        assert.deepEqual(
          resumer.msgs('race').map((m) => m.data),
          range(6, 25),
        );
        assert.deepEqual(watcher.offsets('race'), range(1, 25), 'the live subscriber was not disturbed');
      });
    });
  }

  test('a first subscriber while the engine subscription is pending misses nothing and gets nothing twice', async () => {
    const engine = new ControlledEngine();
    await withRig({ engine, publishRate: fast }, async (rig) => {
      const publisher = rig.client('pub');
      await rig.ok(publisher, 'pub', { ch: 'pending', data: 1 });
      const first = await rig.ok(publisher, 'pub', { ch: 'pending', data: 2 });
      const epoch = (await rig.ok(publisher, 'history', { ch: 'pending' })).epoch!;
      assert.equal(first.offset, 2);

      const subscribed = gate();
      engine.subscribeGate = subscribed.promise;
      const resumer = rig.client('resume');
      const subId = rig.send(resumer, 'sub', { ch: 'pending', since: { epoch, offset: 1 } });
      await settle();
      // Published while the engine has not subscribed the channel yet: never delivered live.
      for (let n = 3; n <= 6; n++) await rig.ok(publisher, 'pub', { ch: 'pending', data: n });
      subscribed.open();
      engine.subscribeGate = null;
      await resumer.until(() => resumer.answer(subId) !== undefined, 'the ok');
      for (let n = 7; n <= 9; n++) await rig.ok(publisher, 'pub', { ch: 'pending', data: n });
      await resumer.until(() => resumer.offsets('pending').length >= 8, 'the messages');
      await settle();
      assert.equal(resumer.answer(subId)!.recovered, true);
      assert.deepEqual(resumer.offsets('pending'), range(2, 9));
    });
  });

  test('without since: the ok gives the offset, and only later messages follow, once', async () => {
    const engine = new ControlledEngine();
    await withRig({ engine, publishRate: fast }, async (rig) => {
      const publisher = rig.client('pub');
      const watcher = rig.client('watch');
      await rig.ok(watcher, 'sub', { ch: 'fresh' });
      for (let n = 1; n <= 3; n++) await rig.ok(publisher, 'pub', { ch: 'fresh', data: n });
      const joiner = rig.client('join');
      const held = engine.holdHistory('before');
      const subId = rig.send(joiner, 'sub', { ch: 'fresh' });
      await held.reading;
      for (let n = 4; n <= 6; n++) await rig.ok(publisher, 'pub', { ch: 'fresh', data: n });
      held.open();
      await joiner.until(() => joiner.answer(subId) !== undefined, 'the ok');
      await rig.ok(publisher, 'pub', { ch: 'fresh', data: 7 });
      await joiner.until(() => joiner.offsets('fresh').length === 4, 'the messages');
      await settle();
      const ok = joiner.answer(subId)!;
      assert.deepEqual({ ...ok, epoch: undefined }, { op: 'ok', id: subId, epoch: undefined, offset: 3, recovered: false });
      assert.deepEqual(joiner.offsets('fresh'), [4, 5, 6, 7]);
    });
  });

  // An engine whose deliveries lag behind what history() already shows (the Redis engine:
  // XADD then PUBLISH, read by another node) must not make the hub send a message twice,
  // nor send a message at or below the offset of the sub's ok as a live one.
  const lateDelivery = async (body: (rig: Rig, engine: ControlledEngine, epoch: string) => Promise<void>): Promise<void> => {
    const engine = new ControlledEngine();
    await withRig({ engine, publishRate: fast }, async (rig) => {
      const publisher = rig.client('pub');
      const watcher = rig.client('watch');
      const { epoch } = await rig.ok(watcher, 'sub', { ch: 'late' });
      engine.delayDelivery = true;
      for (let n = 1; n <= 3; n++) await rig.ok(publisher, 'pub', { ch: 'late', data: n });
      await body(rig, engine, epoch!);
      engine.delayDelivery = false;
      engine.flush();
      await rig.ok(publisher, 'pub', { ch: 'late', data: 4 });
      await settle();
      assert.deepEqual(watcher.offsets('late'), [1, 2, 3, 4], 'the live subscriber gets the late deliveries once');
    });
  };

  test('an engine that delivers after history shows a message: a resumer still gets it once', () =>
    lateDelivery(async (rig, engine, epoch) => {
      const resumer = rig.client('resume');
      await rig.ok(resumer, 'sub', { ch: 'late', since: { epoch, offset: 0 } });
      engine.delayDelivery = false;
      engine.flush();
      await settle();
      assert.deepEqual(resumer.offsets('late'), [1, 2, 3], 'replayed, and the late deliveries not sent again');
    }),
  );

  test('an engine that delivers after history shows a message: a new subscriber gets only offsets after its ok', () =>
    lateDelivery(async (rig, engine) => {
      const fresh = rig.client('fresh');
      const ok = await rig.ok(fresh, 'sub', { ch: 'late' });
      assert.equal(ok.offset, 3);
      engine.delayDelivery = false;
      engine.flush();
      await settle();
      assert.deepEqual(fresh.offsets('late'), [], 'messages 1-3 are before the ok offset');
    }),
  );
});

describe('requests around a pending sub', () => {
  test('an unsub sent during a pending sub is answered after it, and nothing arrives after its ok', async () => {
    const engine = new ControlledEngine();
    await withRig({ engine, publishRate: fast }, async (rig) => {
      const publisher = rig.client('pub');
      const client = rig.client('c');
      const held = engine.holdHistory('after');
      const subId = rig.send(client, 'sub', { ch: 'u' });
      await held.reading;
      const unsubId = rig.send(client, 'unsub', { ch: 'u' });
      await rig.ok(publisher, 'pub', { ch: 'u', data: 1 });
      held.open();
      await client.until(() => client.answer(unsubId) !== undefined, 'the unsub ok');
      await rig.ok(publisher, 'pub', { ch: 'u', data: 2 });
      await settle();
      const ids = client.log.filter((m) => m.op === 'ok').map((m) => m.id);
      assert.deepEqual(ids, [subId, unsubId], 'answered in order');
      const unsubIndex = client.log.findIndex((m) => m.id === unsubId);
      assert.ok(client.log.slice(unsubIndex).every((m) => m.op !== 'msg'), 'no msg after the unsub ok');
      assert.equal(rig.hub.localSubscribers('u'), 0);
      assert.equal(client.joined('u'), false);
      assert.equal(rig.hub.metrics.subscriptions, 0);
    });
  });

  test('a disconnect during a pending sub leaves no subscription, member or topic behind', async () => {
    const engine = new ControlledEngine();
    await withRig({ engine, publishRate: fast }, async (rig) => {
      const publisher = rig.client('pub');
      const watcher = rig.client('watch');
      await rig.ok(watcher, 'sub', { ch: 'd' });
      const client = rig.client('gone');
      const held = engine.holdHistory('before');
      rig.send(client, 'sub', { ch: 'd' });
      await held.reading;
      assert.equal(rig.hub.localSubscribers('d'), 2);
      rig.hub.disconnect(client);
      held.open();
      await settle();
      const published = await rig.ok(publisher, 'pub', { ch: 'd', data: 1 });
      await settle();
      assert.deepEqual(client.log, [], 'nothing sent to a closed connection');
      assert.equal(client.joined('d'), false);
      assert.equal(rig.hub.localSubscribers('d'), 1);
      assert.equal(published.delivered, 1, 'the engine counts only the watcher');
      assert.deepEqual(await engine.members('d'), [{ id: 'watch' }]);
      assert.deepEqual(watcher.presenceEvents('d'), [], 'the one that never finished subscribing never joined nor left');
      assert.equal(rig.hub.metrics.subscriptions, 1);
      assert.equal(rig.hub.metrics.sessions, 2);
    });
  });

  test('a disconnect of the only subscriber during a pending sub unsubscribes the channel from the engine', async () => {
    const engine = new ControlledEngine();
    await withRig({ engine }, async (rig) => {
      const client = rig.client('gone');
      const held = engine.holdHistory('before');
      rig.send(client, 'sub', { ch: 'solo' });
      await held.reading;
      rig.hub.disconnect(client);
      held.open();
      await settle();
      assert.equal(rig.hub.localSubscribers('solo'), 0);
      assert.deepEqual(await engine.members('solo'), []);
      const before = rig.broadcaster.broadcasts;
      const published = await engine.publish('solo', '1');
      assert.equal(published.subscribers, 0, 'the engine counts no subscriber');
      assert.equal(rig.broadcaster.broadcasts, before, 'the node no longer receives the channel');
    });
  });

  test('a disconnect while canSubscribe is deciding subscribes nothing', async () => {
    const decision = gate();
    let asked = 0;
    await withRig(
      {
        canSubscribe: async () => {
          asked++;
          await decision.promise;
          return true;
        },
      },
      async (rig) => {
        const client = rig.client('slow');
        rig.send(client, 'sub', { ch: 'hook' });
        await settle();
        assert.equal(asked, 1);
        rig.hub.disconnect(client);
        decision.open();
        await settle();
        assert.deepEqual(client.log, []);
        assert.equal(rig.hub.localSubscribers('hook'), 0);
        assert.equal(rig.hub.metrics.subscriptions, 0);
        assert.deepEqual(await rig.hub.engine.members('hook'), []);
      },
    );
  });

  test('requests after a disconnect are ignored', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client();
      rig.hub.disconnect(client);
      rig.hub.handleText(client, '{"op":"ping","id":1}');
      rig.hub.handleText(client, 'not json');
      rig.hub.handleBinary(client);
      await settle();
      assert.deepEqual(client.log, []);
      rig.hub.disconnect(client); // twice is harmless
      assert.equal(rig.hub.metrics.sessions, 0);
    });
  });
});

describe('an engine that fails', () => {
  const unavailable = (): EngineUnavailableError => new EngineUnavailableError('the backend is unreachable');

  test('publish, history and subscribe failures answer internal once; nothing is left half-done; a retry works', async () => {
    const engine = new ControlledEngine();
    const reported: unknown[] = [];
    await withRig({ engine, onError: (error) => reported.push(error) }, async (rig) => {
      const client = rig.client();
      engine.failNext.publish = unavailable();
      const pub = await rig.request(client, 'pub', { ch: 'f', data: 1, key: 'k1' });
      assert.equal(pub.code, 'internal');
      const retried = await rig.ok(client, 'pub', { ch: 'f', data: 1, key: 'k1' });
      assert.deepEqual([retried.offset, retried.delivered], [1, 0]);

      // An unexpected engine error is reported; an outage (EngineUnavailableError) is only answered.
      engine.failNext.history = new Error('engine bug');
      const sub = await rig.request(client, 'sub', { ch: 'f' });
      assert.equal(sub.code, 'internal');
      assert.equal(rig.hub.localSubscribers('f'), 0);
      assert.equal(rig.hub.metrics.subscriptions, 0);
      assert.equal(client.joined('f'), false);
      await rig.ok(client, 'sub', { ch: 'f' });

      engine.failNext.subscribe = unavailable();
      assert.equal((await rig.request(client, 'sub', { ch: 'g' })).code, 'internal');
      assert.equal(rig.hub.localSubscribers('g'), 0);
      await rig.ok(client, 'sub', { ch: 'g' });
      await settle();
      const answers = client.log.filter((m) => m.op === 'ok' || m.op === 'err').map((m) => m.id);
      assert.equal(new Set(answers).size, answers.length, 'no request answered twice');
      assert.deepEqual(
        reported.map((e) => (e as Error).message),
        ['engine bug'],
      );
      assert.match(pub.message!, /unavailable/);
    });
  });

  test(
    'a presence join that fails after the sub was answered does not answer the sub a second time',
    async () => {
      const engine = new ControlledEngine();
      await withRig({ engine }, async (rig) => {
        const client = rig.client('ada');
        engine.failNext.join = unavailable();
        const id = rig.send(client, 'sub', { ch: 'p' });
        await client.until(() => client.answer(id) !== undefined, 'the answer');
        await rig.ok(client, 'ping');
        const answers = client.log.filter((m) => m.id === id);
        assert.deepEqual(
          answers.map((m) => m.op),
          ['ok'],
          `answered ${JSON.stringify(answers)}`,
        );
      });
    },
  );
});

describe('abuse', () => {
  test('abuseLimit bad requests close the connection with 1008; fewer do not', async () => {
    await withRig({ abuseLimit: 5, abuseWindow: 10_000 }, async (rig) => {
      const good = rig.client('good');
      const bad = rig.client('bad');
      for (let i = 0; i < 4; i++) rig.hub.handleText(bad, '{not json');
      await rig.ok(good, 'ping');
      assert.equal(bad.closedWith, null, 'four bad requests are four errs');
      assert.equal(bad.log.length, 4);
      assert.ok(
        bad.log.every((m) => m.op === 'err' && m.code === 'bad_request' && m.id === undefined),
        'errs without id',
      );
      await rig.ok(bad, 'ping');
      rig.send(bad, 'frobnicate');
      await settle();
      assert.equal(bad.closeCode(), 1008);
      assert.equal(bad.log.at(-1)!.code, 'bad_request', 'the last bad request was still answered');
      const count = bad.log.length;
      rig.send(bad, 'ping');
      await settle();
      assert.equal(bad.log.length, count, 'a closed connection gets nothing more');
      assert.equal(rig.hub.metrics.abuseCloses, 1);
      assert.equal(rig.hub.metrics.sessions, 1);
      await rig.ok(good, 'ping');
      assert.equal(good.closedWith, null);
    });
  });

  test('bad requests spread wider than the window do not add up', async () => {
    await withRig({ abuseLimit: 3, abuseWindow: 1_000 }, async (rig) => {
      const client = rig.client();
      for (let round = 0; round < 5; round++) {
        rig.hub.handleText(client, '[]');
        rig.hub.handleText(client, '42');
        rig.time += 1_000;
      }
      await settle();
      assert.equal(client.closedWith, null);
      assert.equal(client.log.length, 10);
    });
  });

  test('rate-limited requests count as abuse too', async () => {
    await withRig({ abuseLimit: 3, publishRate: { perSecond: 1, burst: 1 } }, async (rig) => {
      const client = rig.client();
      await rig.ok(client, 'pub', { ch: 'x', data: 1 });
      for (let i = 0; i < 3; i++) rig.send(client, 'pub', { ch: 'x', data: 1 });
      await settle();
      assert.equal(client.closedWith?.code, 1008);
      assert.equal(client.log.filter((m) => m.code === 'rate_limited').length, 3);
    });
  });

  test('errors that are not the peer misbehaving (forbidden, not_found, too_large) are not abuse', async () => {
    await withRig({ abuseLimit: 2, canPublish: () => false, maxSubscriptions: 1 }, async (rig) => {
      const client = rig.client();
      for (let i = 0; i < 3; i++) assert.equal((await rig.request(client, 'pub', { ch: 'x', data: 1 })).code, 'forbidden');
      for (let i = 0; i < 3; i++) assert.equal((await rig.request(client, 'rpc', { method: 'nope' })).code, 'not_found');
      await rig.ok(client, 'sub', { ch: 'a' });
      for (let i = 0; i < 3; i++) assert.equal((await rig.request(client, 'sub', { ch: `b${i}` })).code, 'too_large');
      assert.equal(client.closedWith, null);
    });
  });
});

describe('rate limits', () => {
  test('publishes over the rate are answered rate_limited, not carried out, and allowed again later', async () => {
    await withRig({ publishRate: { perSecond: 2, burst: 3 } }, async (rig) => {
      const client = rig.client();
      const watcher = rig.client('w');
      await rig.ok(watcher, 'sub', { ch: 'r' });
      for (let n = 1; n <= 3; n++) await rig.ok(client, 'pub', { ch: 'r', data: n });
      const limited = await rig.request(client, 'pub', { ch: 'r', data: 4 });
      assert.deepEqual({ ...limited, message: '' }, { op: 'err', id: limited.id, code: 'rate_limited', message: '' });
      rig.time += 499;
      assert.equal((await rig.request(client, 'pub', { ch: 'r', data: 5 })).code, 'rate_limited');
      rig.time += 1;
      const again = await rig.ok(client, 'pub', { ch: 'r', data: 6 });
      assert.equal(again.offset, 4, 'the limited publishes took no offset');
      await settle();
      assert.deepEqual(
        watcher.msgs('r').map((m) => m.data),
        [1, 2, 3, 6],
      );
      assert.equal(rig.hub.metrics.errors.rate_limited, 2);
    });
  });

  test('subscribes and rpc calls have limits of their own; ping has its own (pingRate, burst 50)', async () => {
    await withRig(
      {
        subscribeRate: { perSecond: 1, burst: 2 },
        rpcRate: { perSecond: 1, burst: 1 },
        abuseLimit: 1000,
        rpc: { hello: () => 'hi' },
      },
      async (rig) => {
        const client = rig.client();
        await rig.ok(client, 'sub', { ch: 'a' });
        await rig.ok(client, 'sub', { ch: 'b' });
        assert.equal((await rig.request(client, 'sub', { ch: 'c' })).code, 'rate_limited');
        assert.equal((await rig.ok(client, 'rpc', { method: 'hello' })).result, 'hi');
        assert.equal((await rig.request(client, 'rpc', { method: 'hello' })).code, 'rate_limited');
        for (let i = 0; i < 50; i++) await rig.ok(client, 'ping');
        await rig.ok(client, 'pub', { ch: 'a', data: 1 });
        rig.time += 1_000;
        await rig.ok(client, 'sub', { ch: 'c' });
        await rig.ok(client, 'rpc', { method: 'hello' });
      },
    );
  });

  test('limits are per connection', async () => {
    await withRig({ publishRate: { perSecond: 1, burst: 1 } }, async (rig) => {
      const a = rig.client('a');
      const b = rig.client('b');
      await rig.ok(a, 'pub', { ch: 'x', data: 1 });
      assert.equal((await rig.request(a, 'pub', { ch: 'x', data: 1 })).code, 'rate_limited');
      await rig.ok(b, 'pub', { ch: 'x', data: 1 });
    });
  });
});

describe('schemas', () => {
  const schemas = {
    zod: {
      message: z.object({ text: z.string().trim().min(1), tags: z.array(z.string()).default([]) }),
      params: z.object({ a: z.number(), b: z.number() }),
    },
    valibot: {
      message: v.object({ text: v.pipe(v.string(), v.trim(), v.minLength(1)), tags: v.optional(v.array(v.string()), []) }),
      params: v.object({ a: v.number(), b: v.number() }),
    },
  };

  for (const [vendor, schema] of Object.entries(schemas)) {
    test(`${vendor}: invalid data is a bad_request naming the issue and is never delivered`, async () => {
      await withRig({ channels: { 'chat:*': { schema: schema.message } } }, async (rig) => {
        const publisher = rig.client('p');
        const watcher = rig.client('w');
        await rig.ok(watcher, 'sub', { ch: 'chat:1' });
        const wrongType = await rig.request(publisher, 'pub', { ch: 'chat:1', data: { text: 5 } });
        assert.equal(wrongType.op, 'err');
        assert.equal(wrongType.code, 'bad_request');
        assert.match(wrongType.message!, /^invalid data for chat:1: text: /);
        assert.match(wrongType.message!, /string/i);
        const blank = await rig.request(publisher, 'pub', { ch: 'chat:1', data: { text: '   ' } });
        assert.equal(blank.code, 'bad_request');
        assert.match(blank.message!, /text: /);
        const nested = await rig.request(publisher, 'pub', { ch: 'chat:1', data: { text: 'ok', tags: ['a', 7] } });
        assert.equal(nested.code, 'bad_request');
        assert.match(nested.message!, /tags\.1: /, 'the path names the array index');
        const notObject = await rig.request(publisher, 'pub', { ch: 'chat:1', data: null });
        assert.equal(notObject.code, 'bad_request');
        await settle();
        assert.deepEqual(watcher.msgs('chat:1'), []);
        const history = await rig.ok(watcher, 'history', { ch: 'chat:1' });
        assert.deepEqual(history.messages, []);
        assert.equal(rig.hub.metrics.publishes, 0);
      });
    });

    test(`${vendor}: subscribers get the data as the schema transformed it`, async () => {
      await withRig({ channels: { 'chat:*': { schema: schema.message } } }, async (rig) => {
        const publisher = rig.client('p');
        const watcher = rig.client('w');
        await rig.ok(watcher, 'sub', { ch: 'chat:2' });
        const ok = await rig.ok(publisher, 'pub', { ch: 'chat:2', data: { text: '  hello  ', extra: true } });
        assert.equal(ok.offset, 1);
        await watcher.until(() => watcher.msgs('chat:2').length === 1, 'the message');
        assert.deepEqual(watcher.msgs('chat:2')[0], { op: 'msg', ch: 'chat:2', offset: 1, data: { text: 'hello', tags: [] } });
        const history = await rig.ok(watcher, 'history', { ch: 'chat:2' });
        assert.deepEqual(history.messages, [{ offset: 1, data: { text: 'hello', tags: [] } }]);
        // Other channels have no schema.
        await rig.ok(publisher, 'pub', { ch: 'other', data: 42 });
      });
    });

    test(`${vendor}: rpc params are validated (and transformed) before the handler runs`, async () => {
      let calls = 0;
      await withRig(
        {
          rpc: {
            add: {
              schema: schema.params,
              handler: (params) => {
                calls++;
                const { a, b } = params as { a: number; b: number };
                return a + b;
              },
            },
          },
        },
        async (rig) => {
          const client = rig.client();
          assert.equal((await rig.ok(client, 'rpc', { method: 'add', params: { a: 2, b: 3 } })).result, 5);
          const invalid = await rig.request(client, 'rpc', { method: 'add', params: { a: 2, b: 'x' } });
          assert.equal(invalid.code, 'bad_request');
          assert.match(invalid.message!, /^invalid params for add: b: /);
          const missing = await rig.request(client, 'rpc', { method: 'add' });
          assert.equal(missing.code, 'bad_request');
          assert.equal(calls, 1);
        },
      );
    });
  }

  test('the longest matching rule wins; an exact name beats a prefix', async () => {
    await withRig(
      {
        channels: {
          'chat:*': { schema: z.string() },
          'chat:numbers:*': { schema: z.number() },
          'chat:numbers:free': {},
        },
      },
      async (rig) => {
        const client = rig.client();
        await rig.ok(client, 'pub', { ch: 'chat:1', data: 'text' });
        assert.equal((await rig.request(client, 'pub', { ch: 'chat:1', data: 1 })).code, 'bad_request');
        await rig.ok(client, 'pub', { ch: 'chat:numbers:1', data: 1 });
        assert.equal((await rig.request(client, 'pub', { ch: 'chat:numbers:1', data: 'text' })).code, 'bad_request');
        await rig.ok(client, 'pub', { ch: 'chat:numbers:free', data: { anything: true } });
        await rig.ok(client, 'pub', { ch: 'chatter', data: { anything: true } });
      },
    );
  });

  test('an asynchronous schema is awaited', async () => {
    const slow = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: async (value: unknown) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          return typeof value === 'number' ? { value: value * 2 } : { issues: [{ message: 'not a number' }] };
        },
      },
    };
    await withRig({ channels: { n: { schema: slow } } }, async (rig) => {
      const client = rig.client();
      await rig.ok(client, 'sub', { ch: 'n' });
      await rig.ok(client, 'pub', { ch: 'n', data: 21 });
      const bad = await rig.request(client, 'pub', { ch: 'n', data: 'x' });
      assert.equal(bad.message, 'invalid data for n: not a number');
      await client.until(() => client.msgs('n').length === 1, 'the message');
      assert.equal(client.msgs('n')[0]!.data, 42);
    });
  });
});

describe('permissions', () => {
  test('canSubscribe false answers forbidden for sub, history and presence; true allows', async () => {
    const asked: string[] = [];
    await withRig(
      {
        canSubscribe: ({ client }, channel) => {
          asked.push(`${client.auth.user}:${channel}`);
          return !channel.startsWith('admin:');
        },
      },
      async (rig) => {
        const client = rig.client('ada');
        for (const op of ['sub', 'history', 'presence']) {
          const answer = await rig.request(client, op, { ch: 'admin:log' });
          assert.equal(answer.op, 'err');
          assert.equal(answer.code, 'forbidden', op);
          assert.equal(typeof answer.message, 'string');
        }
        await rig.ok(client, 'sub', { ch: 'room:1' });
        assert.equal(rig.hub.localSubscribers('admin:log'), 0);
        assert.deepEqual(asked, ['ada:admin:log', 'ada:admin:log', 'ada:admin:log', 'ada:room:1']);
      },
    );
  });

  test('a hook throwing ChannelError answers its code; another error answers internal and is reported', async () => {
    const reported: unknown[] = [];
    await withRig(
      {
        canSubscribe: async (_context, channel) => {
          await Promise.resolve();
          if (channel === 'expired') throw new ChannelError('unauthorized', 'your session expired');
          if (channel === 'broken') throw new Error('hook bug');
          return true;
        },
        canPublish: (_context, channel, data) => {
          if (channel === 'locked') throw new ChannelError('unauthorized', 'log in to publish');
          return data !== 'forbidden word';
        },
        onError: (error) => reported.push(error),
      },
      async (rig) => {
        const client = rig.client();
        const expired = await rig.request(client, 'sub', { ch: 'expired' });
        assert.deepEqual(expired, { op: 'err', id: expired.id, code: 'unauthorized', message: 'your session expired' });
        const broken = await rig.request(client, 'sub', { ch: 'broken' });
        assert.equal(broken.code, 'internal');
        assert.equal(reported.length, 1);
        assert.equal((reported[0] as Error).message, 'hook bug');
        const locked = await rig.request(client, 'pub', { ch: 'locked', data: 1 });
        assert.deepEqual(locked, { op: 'err', id: locked.id, code: 'unauthorized', message: 'log in to publish' });
        assert.equal((await rig.request(client, 'pub', { ch: 'open', data: 'forbidden word' })).code, 'forbidden');
        await rig.ok(client, 'pub', { ch: 'open', data: 'fine' });
        assert.equal(rig.hub.metrics.subscriptions, 0);
        assert.equal(client.closedWith, null);
      },
    );
  });
});

describe('rpc', () => {
  test('results, null for nothing, params as sent, the caller in the context', async () => {
    const seen: unknown[] = [];
    await withRig(
      {
        rpc: {
          'rooms.list': (params) => {
            seen.push(params);
            return ['room:1', 'room:2'];
          },
          nothing: () => undefined,
          whoami: (_params, { client }) => client.auth.user,
          later: async () => {
            await new Promise((resolve) => setTimeout(resolve, 5));
            return { done: true };
          },
        },
      },
      async (rig) => {
        const client = rig.client('ada');
        const list = await rig.ok(client, 'rpc', { method: 'rooms.list', params: { prefix: 'room:' } });
        assert.deepEqual(list, { op: 'ok', id: list.id, result: ['room:1', 'room:2'] });
        await rig.ok(client, 'rpc', { method: 'rooms.list', params: null });
        await rig.ok(client, 'rpc', { method: 'rooms.list' });
        assert.deepEqual(seen, [{ prefix: 'room:' }, null, undefined]);
        const nothing = await rig.ok(client, 'rpc', { method: 'nothing' });
        assert.ok('result' in nothing && nothing.result === null, 'result: null');
        assert.equal((await rig.ok(client, 'rpc', { method: 'whoami' })).result, 'ada');
        assert.deepEqual((await rig.ok(client, 'rpc', { method: 'later' })).result, { done: true });
      },
    );
  });

  test('an unknown method is not_found, even one named like an Object.prototype property', async () => {
    await withRig({ rpc: { known: () => 1 } }, async (rig) => {
      const client = rig.client();
      for (const method of ['unknown', 'constructor', 'toString', '__proto__', 'hasOwnProperty']) {
        const answer = await rig.request(client, 'rpc', { method });
        assert.equal(answer.code, 'not_found', method);
        assert.match(answer.message!, /no rpc method/);
      }
      await withRig({}, async (bare) => {
        assert.equal((await bare.request(bare.client(), 'rpc', { method: 'known' })).code, 'not_found');
      });
    });
  });

  test('a throwing handler answers internal, calls onError with the error and the caller, and keeps the connection', async () => {
    const reported: Array<{ error: unknown; user: string }> = [];
    await withRig(
      {
        rpc: {
          boom: () => {
            throw new Error('kaboom');
          },
          rejects: () => Promise.reject(new Error('async kaboom')),
          denied: () => {
            throw new ChannelError('forbidden', 'admins only');
          },
        },
        onError: (error, { client }) => reported.push({ error, user: client.auth.user }),
      },
      async (rig) => {
        const client = rig.client('lin');
        const boom = await rig.request(client, 'rpc', { method: 'boom' });
        assert.equal(boom.code, 'internal');
        assert.ok(!boom.message!.includes('kaboom'), 'the error itself stays on the server');
        assert.equal((await rig.request(client, 'rpc', { method: 'rejects' })).code, 'internal');
        assert.deepEqual(
          reported.map((r) => [(r.error as Error).message, r.user]),
          [
            ['kaboom', 'lin'],
            ['async kaboom', 'lin'],
          ],
        );
        const denied = await rig.request(client, 'rpc', { method: 'denied' });
        assert.deepEqual(denied, { op: 'err', id: denied.id, code: 'forbidden', message: 'admins only' });
        assert.equal(reported.length, 2, 'a ChannelError is an answer, not a failure');
        await rig.ok(client, 'ping');
        assert.equal(client.closedWith, null);
        assert.equal(rig.hub.metrics.errors.internal, 2);
      },
    );
  });

  test('a slow rpc does not hold up other requests', async () => {
    const slow = gate();
    await withRig({ rpc: {
        slow: async () => {
          await slow.promise;
          return 'late';
        },
      } }, async (rig) => {
      const client = rig.client();
      const rpcId = rig.send(client, 'rpc', { method: 'slow' });
      await rig.ok(client, 'sub', { ch: 'x' });
      await rig.ok(client, 'ping');
      assert.equal(client.answer(rpcId), undefined);
      slow.open();
      await client.until(() => client.answer(rpcId) !== undefined, 'the rpc answer');
      assert.equal(client.answer(rpcId)!.result, 'late');
    });
  });
});

describe('presence', () => {
  test('join and leave reach the other subscribers, not the one joining; presence lists members', async () => {
    await withRig({}, async (rig) => {
      const ada = rig.client('ada', { id: 'ada', name: 'Ada' });
      const lin = rig.client('lin', { id: 'lin', name: 'Lin' });
      const anon = rig.client('anon', null);
      await rig.ok(ada, 'sub', { ch: 'room' });
      await rig.ok(anon, 'sub', { ch: 'room' });
      await rig.ok(lin, 'sub', { ch: 'room' });
      await settle();
      assert.deepEqual(ada.presenceEvents('room'), [['join', 'lin']]);
      assert.deepEqual(anon.presenceEvents('room'), [['join', 'lin']]);
      assert.deepEqual(lin.presenceEvents('room'), [], 'no join for oneself');
      const listed = await rig.ok(anon, 'presence', { ch: 'room' });
      assert.deepEqual(
        listed.members!.map((m) => m['id']).sort(),
        ['ada', 'lin'],
        'a connection without a member is not listed',
      );
      await rig.ok(lin, 'unsub', { ch: 'room' });
      rig.hub.disconnect(ada);
      await settle();
      assert.deepEqual(anon.presenceEvents('room'), [
        ['join', 'lin'],
        ['leave', 'lin'],
        ['leave', 'ada'],
      ]);
      assert.deepEqual(lin.presenceEvents('room'), [], 'no events after unsub');
      assert.deepEqual((await rig.ok(anon, 'presence', { ch: 'room' })).members, []);
    });
  });

  test('presence of a channel one is not subscribed to is allowed', async () => {
    await withRig({}, async (rig) => {
      const ada = rig.client('ada');
      const outsider = rig.client('out');
      await rig.ok(ada, 'sub', { ch: 'room' });
      assert.deepEqual((await rig.ok(outsider, 'presence', { ch: 'room' })).members, [{ id: 'ada' }]);
      assert.deepEqual((await rig.ok(outsider, 'presence', { ch: 'empty' })).members, []);
    });
  });
});

describe('limits and answers', () => {
  test('too_large: data over maxDataLength and a sub beyond maxSubscriptions', async () => {
    await withRig({ maxDataLength: 20, maxSubscriptions: 2 }, async (rig) => {
      const client = rig.client();
      await rig.ok(client, 'pub', { ch: 'x', data: '123456789012345678' }); // 20 characters of JSON
      const big = await rig.request(client, 'pub', { ch: 'x', data: '1234567890123456789' });
      assert.equal(big.code, 'too_large');
      assert.match(big.message!, /21 characters of JSON; the limit is 20/);
      await rig.ok(client, 'sub', { ch: 'a' });
      await rig.ok(client, 'sub', { ch: 'b' });
      const third = await rig.request(client, 'sub', { ch: 'c' });
      assert.equal(third.code, 'too_large');
      await rig.ok(client, 'unsub', { ch: 'a' });
      await rig.ok(client, 'sub', { ch: 'c' });
    });
  });

  test('a second sub to the same channel is a bad_request; unsub of an unknown channel is ok', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client();
      await rig.ok(client, 'sub', { ch: 'x' });
      const again = await rig.request(client, 'sub', { ch: 'x' });
      assert.equal(again.code, 'bad_request');
      assert.equal(rig.hub.localSubscribers('x'), 1);
      await rig.ok(client, 'unsub', { ch: 'never' });
      await rig.ok(client, 'unsub', { ch: 'x' });
      await rig.ok(client, 'unsub', { ch: 'x' });
    });
  });

  test('ping answers pong; a binary message is a bad_request without an id', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client();
      const pong = await rig.ok(client, 'ping');
      assert.deepEqual(pong, { op: 'pong', id: pong.id });
      rig.hub.handleBinary(client);
      assert.deepEqual({ ...client.log.at(-1), message: '' }, { op: 'err', code: 'bad_request', message: '' });
    });
  });

  test('idempotent publishes answer the first offset with delivered 0 and deliver once', async () => {
    await withRig({}, async (rig) => {
      const publisher = rig.client('p');
      const watcher = rig.client('w');
      await rig.ok(watcher, 'sub', { ch: 'orders' });
      await rig.ok(publisher, 'sub', { ch: 'orders' });
      const first = await rig.ok(publisher, 'pub', { ch: 'orders', data: { sku: 'A-1' }, key: 'c7f3-0001' });
      const again = await rig.ok(publisher, 'pub', { ch: 'orders', data: { sku: 'A-1' }, key: 'c7f3-0001' });
      assert.deepEqual(first, { op: 'ok', id: first.id, offset: 1, delivered: 2 });
      assert.deepEqual(again, { op: 'ok', id: again.id, offset: 1, delivered: 0 });
      await settle();
      assert.equal(watcher.msgs('orders').length, 1);
      assert.equal(publisher.msgs('orders').length, 1);
    });
  });
});

describe('metrics', () => {
  test('the counters follow what happened', async () => {
    await withRig({ abuseLimit: 3, rpc: { boom: () => Promise.reject(new Error('x')) } }, async (rig) => {
      const m = rig.hub.metrics;
      const a = rig.client('a');
      const b = rig.client('b');
      assert.equal(m.sessions, 2);
      const { epoch } = await rig.ok(a, 'sub', { ch: 'm' });
      await rig.ok(b, 'sub', { ch: 'm' });
      await rig.ok(b, 'sub', { ch: 'n' });
      assert.equal(m.subscriptions, 3);
      await rig.ok(a, 'pub', { ch: 'm', data: 1 }); // reaches a and b
      await rig.ok(a, 'pub', { ch: 'm', data: 2, key: 'k' }); // a and b
      await rig.ok(a, 'pub', { ch: 'm', data: 2, key: 'k' }); // a repeat
      await rig.ok(a, 'pub', { ch: 'nobody', data: 3 }); // reaches no one
      assert.equal(m.publishes, 3);
      assert.equal(m.duplicatePublishes, 1);
      assert.equal(m.deliveries, 4);
      const c = rig.client('c');
      await rig.ok(c, 'sub', { ch: 'm', since: { epoch, offset: 0 } }); // replays 2
      await rig.ok(c, 'sub', { ch: 'n', since: { epoch: 'gone', offset: 0 } });
      assert.deepEqual(m.recoveries, { recovered: 1, notRecovered: 1 });
      assert.equal(m.deliveries, 6);
      await rig.ok(a, 'history', { ch: 'm' });
      await rig.ok(a, 'presence', { ch: 'm' });
      await rig.ok(a, 'ping');
      await rig.ok(a, 'unsub', { ch: 'm' });
      await rig.request(a, 'rpc', { method: 'boom' });
      await rig.request(a, 'rpc', { method: 'none' });
      const expected = { sub: 5, unsub: 1, pub: 4, presence: 1, history: 1, rpc: 2, ping: 1 };
      for (const [op, count] of Object.entries(expected)) assert.equal(m.requests[op as keyof typeof expected], count, op);
      assert.equal(m.subscriptions, 4);
      assert.equal(m.errors.internal, 1);
      assert.equal(m.errors.not_found, 1);
      rig.hub.handleText(b, 'nope');
      rig.hub.handleText(b, 'nope');
      rig.hub.handleText(b, 'nope');
      assert.equal(m.errors.bad_request, 3);
      assert.equal(m.abuseCloses, 1);
      assert.equal(m.sessions, 2);
      assert.equal(m.subscriptions, 2, "b's two subscriptions went with it");
      rig.hub.disconnect(c);
      rig.hub.disconnect(a);
      assert.equal(m.sessions, 0);
      assert.equal(m.subscriptions, 0);
    });
  });
});

describe('delivery under backpressure', () => {
  /** 60 KiB of JSON data: nine of them reach half the fake connection's 1 MiB limit. */
  const big = (n: number): string => `${n}:${'x'.repeat(60 * 1024)}`;

  async function channelOf(rig: Rig, ch: string, count: number): Promise<{ epoch: string; head: number }> {
    const publisher = rig.client('publisher');
    const head = await rig.ok(publisher, 'pub', { ch, data: 'head' });
    for (let i = 1; i <= count; i++) await rig.ok(publisher, 'pub', { ch, data: big(i) });
    const { epoch } = await rig.ok(publisher, 'history', { ch, limit: 1 });
    return { epoch: epoch!, head: head.offset! };
  }

  test('a replay is paced: it stops at half the limit, goes on as the client drains, and what arrived meanwhile follows, once, in order', () =>
    withRig({ publishRate: { perSecond: 1000, burst: 1000 } }, async (rig) => {
      const { epoch, head } = await channelOf(rig, 'paced', 30);
      const slow = rig.client('slow');
      slow.slow = true;
      await rig.ok(slow, 'sub', { ch: 'paced', since: { epoch, offset: head } });
      await settle();
      const first = slow.offsets('paced').length;
      assert.ok(first >= 8 && first < 30, `${first} messages before the replay waits`);
      assert.ok(slow.bufferedAmount < slow.backpressureLimit, 'within the limit');
      // Live messages during the replay are kept for it, not broadcast to it.
      const publisher = rig.client('late');
      for (let i = 31; i <= 33; i++) await rig.ok(publisher, 'pub', { ch: 'paced', data: big(i) });
      assert.equal(slow.joined('paced'), false);
      // Other requests are not held up by the replay.
      await rig.ok(slow, 'ping');
      while (slow.offsets('paced').length < 33) {
        const before = slow.offsets('paced').length;
        slow.drain();
        await settle();
        assert.ok(slow.offsets('paced').length > before, 'each drain moves the replay on');
      }
      assert.deepEqual(slow.offsets('paced'), range(head + 1, head + 33));
      assert.equal(slow.joined('paced'), true, 'live once the replay is through');
      assert.equal(slow.overLimit, 0, 'nothing went past the limit as live traffic');
      await rig.ok(publisher, 'pub', { ch: 'paced', data: 'live' });
      assert.deepEqual(slow.offsets('paced').slice(-2), [head + 33, head + 34]);
    }));

  test('live messages kept during a stalled replay past the backpressure limit: closed with 1013, nothing more sent', () =>
    withRig({ publishRate: { perSecond: 1000, burst: 1000 } }, async (rig) => {
      const { epoch, head } = await channelOf(rig, 'stalled', 20);
      const slow = rig.client('slow');
      slow.slow = true;
      await rig.ok(slow, 'sub', { ch: 'stalled', since: { epoch, offset: head } });
      await settle();
      const sent = slow.offsets('stalled');
      const publisher = rig.client('late');
      for (let i = 21; i <= 40 && slow.closedWith === null; i++) await rig.ok(publisher, 'pub', { ch: 'stalled', data: big(i) });
      assert.deepEqual(slow.closedWith, { code: 1013, reason: 'slow consumer: reconnect and recover' });
      assert.equal(rig.hub.metrics.slowConsumerCloses, 1);
      slow.drain();
      await settle();
      assert.deepEqual(slow.offsets('stalled'), sent, 'no more messages after the close');
      assert.deepEqual(sent, range(head + 1, head + sent.length), 'what it got is contiguous');
      assert.equal(rig.hub.localSubscribers('stalled'), 0);
    }));

  test('thousands of small live messages kept during a stalled replay follow it once, in order', () =>
    // Sent in one go by a client that cannot pause: the in-flight bound is raised to hold them.
    withRig({ publishRate: { perSecond: 1e6, burst: 1e6 }, maxPendingRequests: 5000 }, async (rig) => {
      const { epoch, head } = await channelOf(rig, 'small', 12);
      const slow = rig.client('slow');
      slow.slow = true;
      await rig.ok(slow, 'sub', { ch: 'small', since: { epoch, offset: head } });
      await settle();
      const publisher = rig.client('late');
      for (let i = 0; i < 3000; i++) rig.send(publisher, 'pub', { ch: 'small', data: i });
      await publisher.until(() => publisher.log.length === 3000, 'the publishes');
      assert.equal(slow.closedWith, null, 'about 190 KiB kept: under the limit');
      while (slow.offsets('small').length < 12 + 3000) {
        slow.drain();
        await settle();
      }
      assert.deepEqual(slow.offsets('small'), range(head + 1, head + 3012));
      assert.equal(slow.joined('small'), true);
    }));

  test('an unsub during a paced replay stops it: nothing of the channel follows the unsub’s answer', () =>
    withRig({ publishRate: { perSecond: 1000, burst: 1000 } }, async (rig) => {
      const { epoch, head } = await channelOf(rig, 'left', 20);
      const slow = rig.client('slow');
      slow.slow = true;
      await rig.ok(slow, 'sub', { ch: 'left', since: { epoch, offset: head } });
      await settle();
      const unsub = await rig.ok(slow, 'unsub', { ch: 'left' });
      const at = slow.log.indexOf(unsub);
      slow.drain();
      await settle();
      assert.deepEqual(
        slow.log.slice(at + 1).filter((m) => m.ch === 'left'),
        [],
      );
    }));

  test('answers are sent reliably: over the limit, a client still gets every answer', () =>
    withRig({}, async (rig) => {
      const client = rig.client('full');
      client.slow = true;
      client.bufferedAmount = 2 * client.backpressureLimit;
      await rig.ok(client, 'ping');
      await rig.ok(client, 'pub', { ch: 'x', data: 1 });
      await rig.ok(client, 'presence', { ch: 'x' });
      assert.equal(client.overLimit, 0);
    }));
});

describe('history pages', () => {
  const entryOf = (offset: number, data: string): number => JSON.stringify({ offset, data }).length + 1;

  test('an answer holds the newest messages that fit in maxHistoryAnswerBytes and says more; before pages back to the oldest', () =>
    withRig({ maxHistoryAnswerBytes: 1000 }, async (rig) => {
      const client = rig.client('reader');
      for (let i = 1; i <= 12; i++) await rig.ok(client, 'pub', { ch: 'h', data: 'x'.repeat(200) });
      const read: number[] = [];
      let before: number | undefined;
      const pages: number[] = [];
      for (;;) {
        const answer = await rig.ok(client, 'history', { ch: 'h', limit: 100, ...(before === undefined ? {} : { before }) });
        const offsets = answer.messages!.map((m) => m.offset);
        const bytes = JSON.stringify(answer).length;
        assert.ok(bytes <= 1000, `a page of ${bytes} bytes`);
        pages.push(offsets.length);
        read.unshift(...offsets);
        if ((answer as { more?: boolean }).more !== true) break;
        before = offsets[0];
      }
      assert.deepEqual(read, range(1, 12));
      assert.deepEqual(pages, [3, 3, 3, 3]);
      assert.ok(3 * entryOf(1, 'x'.repeat(200)) < 1000);
    }));

  test('more is false when nothing older is kept, true when limit leaves older ones out; one message bigger than the bound still comes', () =>
    withRig({ maxHistoryAnswerBytes: 100 }, async (rig) => {
      const client = rig.client('reader');
      await rig.ok(client, 'pub', { ch: 'h', data: 'small' });
      await rig.ok(client, 'pub', { ch: 'h', data: 'y'.repeat(500) });
      const all = await rig.ok(client, 'history', { ch: 'h', limit: 1 });
      assert.deepEqual(
        all.messages!.map((m) => m.offset),
        [2],
        'the one message, though bigger than the bound',
      );
      assert.equal((all as { more?: boolean }).more, true);
      const oldest = await rig.ok(client, 'history', { ch: 'h', before: 2 });
      assert.deepEqual(
        oldest.messages!.map((m) => m.offset),
        [1],
      );
      assert.equal((oldest as { more?: boolean }).more, undefined, 'nothing older: no more');
      const bad = await rig.request(client, 'history', { ch: 'h', before: -1 });
      assert.equal(bad.code, 'bad_request');
    }));
});
