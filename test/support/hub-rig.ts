// The channel hub without sockets, for the unit tests of src/channels: fake connections
// that log what they are sent (and can hold it, like a socket buffer), a broadcaster that
// writes each live message to the subscribers the hub hands it, a clock the tests move,
// and an engine that the tests can hold back at the moments that matter.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { Member } from '../../src/wire/index.js';
import type { ChannelMessage, Engine, EngineListener, HistoryQuery, HistoryResult, PublishOptions, PublishResult } from '../../src/channels/engine.js';
import { ChannelHub } from '../../src/channels/hub.js';
import type { Broadcaster, ChannelClient, ChannelHubOptions } from '../../src/channels/hub-options.js';
import { MemoryEngine } from '../../src/channels/memory-engine.js';
import { assertOk, type WireMessage } from './channels-client.js';

/** Who a fake connection is: a user's name, or undefined before it authenticates. */
export type Auth = { user: string } | undefined;

/** Any message the hub sends, as a test reads it. */
export type Sent = WireMessage;

/** Writes each broadcast to every live subscriber the hub names, as the server's shared frame would. */
export class FakeBroadcaster implements Broadcaster<FakeClient> {
  broadcasts = 0;

  broadcast(text: string, subscribers: ReadonlySet<FakeClient>): number {
    this.broadcasts++;
    for (const client of subscribers) client.send(text);
    return subscribers.size;
  }
}

let clientCounter = 0;

export interface ClientOptions {
  /** The presence member (default `{ id: user }`; null for none). */
  member?: Member | null;
  /** Whether the hub can pause reading it (default true); without, requests past the bound are refused. */
  pausable?: boolean;
  /** When its credentials from the upgrade expire. */
  expiresAt?: number;
}

export class FakeClient implements ChannelClient<Auth> {
  readonly id = `node.${clientCounter++}`;
  readonly log: Sent[] = [];
  closedWith: { code: number; reason: string } | null = null;
  /**
   * A socket buffer, for pacing tests: with `slow` set, every frame stays buffered until
   * {@link drain}; otherwise it is written at once.
   */
  slow = false;
  bufferedAmount = 0;
  readonly backpressureLimit = 1024 * 1024;
  /** Frames sent with send() (live traffic) while over the limit: a real connection's policy would act. */
  overLimit = 0;
  pauses = 0;
  resumes = 0;
  paused = false;
  pause?: () => void;
  resume?: () => void;
  private drainWaiters: Array<() => void> = [];

  constructor(
    readonly auth: Auth,
    readonly member: Member | undefined,
    readonly user: string | undefined,
    pausable: boolean,
  ) {
    if (pausable) {
      this.pause = () => {
        this.pauses++;
        this.paused = true;
      };
      this.resume = () => {
        this.resumes++;
        this.paused = false;
      };
    }
  }

  send(text: string): void {
    if (this.bufferedAmount > this.backpressureLimit) this.overLimit++;
    this.sendReliable(text);
  }

  sendReliable(text: string): void {
    if (this.slow) this.bufferedAmount += text.length;
    this.log.push(JSON.parse(text) as Sent);
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

  closeCode(): number | undefined {
    return this.closedWith?.code;
  }

  /** Resolves once `condition` holds; fails after `ms` of real time (timers may be mocked). */
  async until(condition: () => boolean, what: string, ms = 5_000): Promise<void> {
    const deadline = performance.now() + ms;
    while (!condition()) {
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.log)}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  answer(id: number): Sent | undefined {
    return this.log.find((m) => m.id === id && isAnswer(m));
  }

  /** How many times request `id` was answered. */
  answers(id: number): number {
    return this.log.filter((m) => m.id === id && isAnswer(m)).length;
  }

  msgs(channel: string): Sent[] {
    return this.log.filter((m) => m.op === 'msg' && m.ch === channel);
  }

  /** The data of the channel's messages, in the order they came. */
  data(channel: string): unknown[] {
    return this.msgs(channel).map((m) => m.data);
  }

  offsets(channel: string): number[] {
    return this.msgs(channel).map((m) => m.offset!);
  }

  presenceEvents(channel: string): Array<[string, unknown]> {
    return this.log.filter((m) => (m.op === 'join' || m.op === 'leave' || m.op === 'update') && m.ch === channel).map((m) => [m.op, m.member?.['id']]);
  }
}

function isAnswer(message: Sent): boolean {
  return message.op === 'ok' || message.op === 'err' || message.op === 'pong';
}

/** A hub with fake connections, a controllable clock, and request helpers. */
export class Rig {
  readonly broadcaster = new FakeBroadcaster();
  readonly engine: Engine;
  readonly hub: ChannelHub<Auth, FakeClient>;
  time = 1_000_000;
  private nextId = 1;

  /** `clock: 'date'`: the hub and engine read Date.now (for tests that mock it); else `time`. */
  constructor(options: ChannelHubOptions<Auth> = {}, clock: 'rig' | 'date' = 'rig') {
    const now = clock === 'rig' ? () => this.time : Date.now;
    this.engine = (options.engine as Engine | undefined) ?? new MemoryEngine({ now });
    this.hub = new ChannelHub<Auth, FakeClient>({ now, onError: () => {}, ...options, engine: this.engine });
  }

  /** The memory engine, for tests that look inside it. */
  get memory(): MemoryEngine {
    assert.ok(this.engine instanceof MemoryEngine, 'the rig runs on a memory engine');
    return this.engine;
  }

  async start(): Promise<this> {
    await this.hub.start(this.broadcaster);
    return this;
  }

  /**
   * A connected client: `user` names who it is (its auth, presence member and user); without
   * one it gets a fresh name; null makes it anonymous (no auth, member or user).
   */
  client(user?: string | null, options: ClientOptions = {}): FakeClient {
    const name = user === undefined ? `u${clientCounter}` : user;
    const member = options.member === null || name === null ? undefined : (options.member ?? { id: name });
    const client = new FakeClient(name === null ? undefined : { user: name }, member, name ?? undefined, options.pausable ?? true);
    this.hub.connect(client, options.expiresAt);
    return client;
  }

  /** Subscribers of the channel on this node that are live (the rest are recovering). */
  live(channel: string): number {
    return this.hub.channelStats().find((c) => c.name === channel)?.live ?? 0;
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
    assertOk(answer, op, fields);
    return answer;
  }
}

export async function withRig(options: ChannelHubOptions<Auth>, body: (rig: Rig) => Promise<void>, clock: 'rig' | 'date' = 'rig'): Promise<void> {
  const rig = await new Rig(options, clock).start();
  try {
    await body(rig);
  } finally {
    await rig.hub.close();
  }
}

/** Lets pending promise callbacks run (setImmediate is never mocked here). */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A promise with its resolve function. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Rates no test reaches. */
export const fast = { perSecond: 1_000_000, burst: 1_000_000 };

/**
 * A memory engine whose history and subscribe can be held back, and whose deliveries to
 * the hub can be delayed (as an engine with a network between storing and delivering would).
 */
export class ControlledEngine implements Engine {
  readonly inner: MemoryEngine;
  /** When set, history() waits for it: `read` says whether it reads before or after waiting. */
  historyGate: { wait: Promise<void>; read: 'before' | 'after'; started: () => void } | null = null;
  subscribeGate: Promise<void> | null = null;
  /** When true, deliveries queue until flush(). */
  delayDelivery = false;
  /** The next call of each of these methods rejects with this error. */
  failNext: Partial<Record<'publish' | 'subscribe' | 'history' | 'join', Error>> = {};
  /** Messages the engine delivered to the hub. */
  delivered = 0;
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
        this.delivered++;
        if (this.delayDelivery) this.queued.push(message);
        else listener.message(message);
      },
      presence: (event) => listener.presence(event),
    });
  }

  /** Loses the deliveries queued so far, as an engine that missed them would. */
  drop(): void {
    this.queued = [];
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

  publish(channel: string, data: string, options?: PublishOptions): Promise<PublishResult> {
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

  publishEphemeral(channel: string, data: string, client?: string): Promise<number> {
    return this.inner.publishEphemeral(channel, data, client);
  }

  subscriberCount(channel: string): Promise<number> {
    return this.inner.subscriberCount(channel);
  }

  join(channel: string, client: string, member: Member, owner?: string): Promise<void> {
    const error = this.failure('join');
    if (error !== undefined) return Promise.reject(error);
    return this.inner.join(channel, client, member, owner);
  }

  leave(channel: string, client: string, owner?: string): Promise<void> {
    return this.inner.leave(channel, client, owner);
  }

  members(channel: string, limit?: number): Promise<Member[]> {
    return this.inner.members(channel, limit);
  }

  memberCount(channel: string): Promise<number> {
    return this.inner.memberCount(channel);
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

/** A rig on a {@link ControlledEngine}, where publishing is never rate limited. */
export async function withControlled(options: ChannelHubOptions<Auth>, body: (rig: Rig, engine: ControlledEngine) => Promise<void>): Promise<void> {
  const engine = new ControlledEngine();
  await withRig({ engine, publishRate: fast, ...options }, (rig) => body(rig, engine));
}
