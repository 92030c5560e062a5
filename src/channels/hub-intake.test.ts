// The hub's request intake and sessions: rate limits on every op that costs, the bound on
// requests in flight (reading pauses), identity changes and expiry, idempotency keys scoped
// to their publisher, and reads that create nothing. Fake connections, the memory engine.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Member } from '../wire/index.js';
import { ChannelError } from './channel-error.js';
import { ChannelHub, type Broadcaster, type ChannelHubOptions, type ChannelClient, type ChannelIdentity } from './hub.js';
import { MemoryEngine } from './memory-engine.js';

type Auth = { user: string } | undefined;

interface Sent {
  op: string;
  id?: number;
  ch?: string;
  code?: string;
  message?: string;
  data?: unknown;
  offset?: number;
  delivered?: number;
  members?: Member[];
  member?: Member;
}

class Topics implements Broadcaster {
  readonly topics = new Map<string, Set<Client>>();
  broadcast(channel: string, text: string): number {
    const clients = this.topics.get(channel) ?? new Set();
    for (const client of clients) client.send(text);
    return clients.size;
  }
}

let counter = 0;

class Client implements ChannelClient<Auth> {
  readonly id = `intake.${counter++}`;
  readonly log: Sent[] = [];
  closedWith: number | null = null;
  pauses = 0;
  resumes = 0;
  paused = false;
  pause?: () => void;
  resume?: () => void;

  constructor(
    private readonly topics: Topics,
    readonly auth: Auth,
    readonly member: Member | undefined,
    pausable: boolean,
    readonly user?: string,
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

  // Never past its backpressure limit: these tests are about what arrives, not how fast.
  readonly bufferedAmount = 0;
  readonly backpressureLimit = 1024 * 1024;
  send(text: string): void {
    this.log.push(JSON.parse(text) as Sent);
  }
  sendReliable(text: string): void {
    this.send(text);
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  close(code: number): void {
    this.closedWith ??= code;
  }
  join(channel: string): void {
    if (!this.topics.topics.has(channel)) this.topics.topics.set(channel, new Set());
    this.topics.topics.get(channel)!.add(this);
  }
  leave(channel: string): void {
    this.topics.topics.get(channel)?.delete(this);
  }

  answer(id: number): Sent | undefined {
    return this.log.find((m) => m.id === id && (m.op === 'ok' || m.op === 'err' || m.op === 'pong'));
  }
  answers(id: number): number {
    return this.log.filter((m) => m.id === id && (m.op === 'ok' || m.op === 'err' || m.op === 'pong')).length;
  }
  msgs(channel: string): unknown[] {
    return this.log.filter((m) => m.op === 'msg' && m.ch === channel).map((m) => m.data);
  }
}

/** Lets pending promise callbacks run (setImmediate is never mocked here). */
async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

class Rig {
  readonly topics = new Topics();
  readonly engine: MemoryEngine;
  readonly hub: ChannelHub<Auth>;
  time = 1_000_000;
  private nextId = 1;

  constructor(options: ChannelHubOptions<Auth> = {}, clock: 'rig' | 'date' = 'rig') {
    const now = clock === 'rig' ? () => this.time : Date.now;
    this.engine = new MemoryEngine({ now });
    this.hub = new ChannelHub<Auth>({ engine: this.engine, now, onError: () => {}, ...options });
  }

  async start(): Promise<this> {
    await this.hub.start(this.topics);
    return this;
  }

  client(options: { user?: string; member?: Member | null; pausable?: boolean; auth?: Auth; expiresAt?: number } = {}): Client {
    const user = options.user;
    const client = new Client(
      this.topics,
      options.auth ?? (user === undefined ? undefined : { user }),
      options.member === null ? undefined : (options.member ?? (user === undefined ? undefined : { id: user })),
      options.pausable ?? true,
      user,
    );
    this.hub.connect(client, options.expiresAt);
    return client;
  }

  send(client: Client, op: string, fields: Record<string, unknown> = {}): number {
    const id = this.nextId++;
    this.hub.handleText(client, JSON.stringify({ op, id, ...fields }));
    return id;
  }

  async request(client: Client, op: string, fields: Record<string, unknown> = {}): Promise<Sent> {
    const id = this.send(client, op, fields);
    for (let i = 0; i < 100 && client.answer(id) === undefined; i++) await settle(1);
    const answer = client.answer(id);
    assert.ok(answer !== undefined, `no answer to ${op} #${id}: ${JSON.stringify(client.log)}`);
    return answer;
  }

  async ok(client: Client, op: string, fields: Record<string, unknown> = {}): Promise<Sent> {
    const answer = await this.request(client, op, fields);
    assert.equal(answer.op, op === 'ping' ? 'pong' : 'ok', `${op} ${JSON.stringify(fields)} answered ${JSON.stringify(answer)}`);
    return answer;
  }
}

async function withRig(options: ChannelHubOptions<Auth>, body: (rig: Rig) => Promise<void>, clock: 'rig' | 'date' = 'rig'): Promise<void> {
  const rig = await new Rig(options, clock).start();
  try {
    await body(rig);
  } finally {
    await rig.hub.close();
  }
}

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('rate limits on every op that costs', () => {
  test('history, presence, unsub, ping and auth each have a bucket; over it: rate_limited, not carried out', async () => {
    const tokens: string[] = [];
    await withRig(
      {
        historyRate: { perSecond: 1, burst: 2 },
        presenceRate: { perSecond: 1, burst: 1 },
        unsubscribeRate: { perSecond: 1, burst: 1 },
        pingRate: { perSecond: 1, burst: 3 },
        authRate: { perSecond: 1, burst: 1 },
        abuseLimit: 1000,
        authenticateToken: (token) => {
          tokens.push(token);
          return { auth: { user: token } };
        },
      },
      async (rig) => {
        const client = rig.client({ user: 'u' });
        await rig.ok(client, 'history', { ch: 'a' });
        await rig.ok(client, 'history', { ch: 'a' });
        const limited = await rig.request(client, 'history', { ch: 'a' });
        assert.deepEqual([limited.code, limited.message], ['rate_limited', 'reading history too fast']);
        await rig.ok(client, 'presence', { ch: 'a' });
        assert.equal((await rig.request(client, 'presence', { ch: 'a' })).code, 'rate_limited');
        await rig.ok(client, 'unsub', { ch: 'a' });
        assert.equal((await rig.request(client, 'unsub', { ch: 'a' })).code, 'rate_limited');
        for (let i = 0; i < 3; i++) await rig.ok(client, 'ping');
        assert.equal((await rig.request(client, 'ping')).code, 'rate_limited');
        await rig.ok(client, 'auth', { token: 'one' });
        assert.equal((await rig.request(client, 'auth', { token: 'two' })).code, 'rate_limited');
        assert.deepEqual(tokens, ['one'], 'the limited auth never reached authenticateToken');
        // The buckets are separate: publishing and subscribing still work.
        await rig.ok(client, 'sub', { ch: 'a' });
        await rig.ok(client, 'pub', { ch: 'a', data: 1 });
        rig.time += 1_000;
        await rig.ok(client, 'history', { ch: 'a' });
        await rig.ok(client, 'presence', { ch: 'a' });
        await rig.ok(client, 'ping');
        assert.equal(rig.hub.metrics.errors.rate_limited, 5);
      },
    );
  });

  test('with the defaults, a flood of history requests is closed with 1008 after abuseLimit refusals', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client();
      const burst = Array.from({ length: 100 }, (_, i) => rig.send(client, 'history', { ch: `probe:${i}` }));
      await settle();
      assert.ok(burst.every((id) => client.answer(id)?.op === 'ok'), 'the burst is read');
      const flood = Array.from({ length: 300 }, (_, i) => rig.send(client, 'history', { ch: `probe:x${i}` }));
      const codes = flood.map((id) => client.answer(id)?.code ?? 'none');
      assert.equal(codes.filter((c) => c === 'rate_limited').length, 100, 'then refusals, up to abuseLimit');
      assert.equal(codes.filter((c) => c === 'none').length, 200, 'and nothing after the close');
      assert.equal(client.closedWith, 1008);
      assert.equal(rig.engine.channelCount, 0, 'and the reads created no channel');
    });
  });
});

describe('reads create nothing', () => {
  test('history and presence of channels that do not exist leave no channel in the engine or the hub', async () => {
    await withRig({}, async (rig) => {
      const client = rig.client({ user: 'u' });
      for (let i = 0; i < 50; i++) {
        const history = await rig.ok(client, 'history', { ch: `nothing:${i}` });
        assert.deepEqual((history as { messages?: unknown[] }).messages, []);
        assert.deepEqual((await rig.ok(client, 'presence', { ch: `nothing:${i}` })).members, []);
      }
      assert.equal(rig.engine.channelCount, 0);
      assert.deepEqual(rig.hub.channelStats(), []);
    });
  });

  test('a refused sub and an unsub of a channel never subscribed leave nothing either', async () => {
    await withRig({ canSubscribe: (_c, channel) => !channel.startsWith('secret:') }, async (rig) => {
      const client = rig.client({ user: 'u' });
      assert.equal((await rig.request(client, 'sub', { ch: 'secret:1' })).code, 'forbidden');
      await rig.ok(client, 'unsub', { ch: 'other' });
      assert.equal(rig.engine.channelCount, 0);
      assert.deepEqual(rig.hub.channelStats(), []);
    });
  });
});

describe('requests in flight per connection', () => {
  test('past maxPendingRequests reading pauses; it resumes at half; every request is answered once, in order', async () => {
    const held = gate();
    await withRig(
      {
        maxPendingRequests: 4,
        abuseLimit: 1000,
        historyRate: { perSecond: 1e6, burst: 1e6 },
        canSubscribe: async () => {
          await held.promise;
          return true;
        },
      },
      async (rig) => {
        const client = rig.client({ user: 'u' });
        const ids = [rig.send(client, 'history', { ch: 'a' }), rig.send(client, 'history', { ch: 'a' }), rig.send(client, 'history', { ch: 'a' })];
        assert.equal(client.paused, false, 'three in flight: still reading');
        ids.push(rig.send(client, 'history', { ch: 'a' }));
        assert.equal(client.paused, true, 'the fourth pauses reading');
        // What was already read before the pause took effect still waits its turn.
        for (let i = 0; i < 6; i++) ids.push(rig.send(client, 'history', { ch: 'a' }));
        assert.equal(client.pauses, 1);
        // A ping is answered at once, whatever waits.
        const ping = rig.send(client, 'ping');
        assert.equal(client.answer(ping)?.op, 'pong');
        await settle();
        assert.equal(client.log.filter((m) => m.op === 'ok').length, 0, 'nothing answered while the hook holds');
        held.open();
        await settle(30);
        assert.equal(client.paused, false);
        assert.equal(client.resumes, 1);
        assert.deepEqual(
          ids.map((id) => client.answers(id)),
          ids.map(() => 1),
        );
        const answered = client.log.filter((m) => m.op === 'ok').map((m) => m.id);
        assert.deepEqual(answered, ids, 'in the order sent');
        assert.equal(rig.hub.metrics.readPauses, 1);
      },
    );
  });

  test('the pending bound counts bytes too (maxPendingBytes)', async () => {
    const held = gate();
    await withRig(
      {
        maxPendingBytes: 10_000,
        canPublish: async () => {
          await held.promise;
          return true;
        },
      },
      async (rig) => {
        const client = rig.client({ user: 'u' });
        rig.send(client, 'pub', { ch: 'a', data: 'x'.repeat(6_000) });
        assert.equal(client.paused, false);
        rig.send(client, 'pub', { ch: 'a', data: 'x'.repeat(6_000) });
        assert.equal(client.paused, true);
        held.open();
        await settle(30);
        assert.equal(client.paused, false);
        assert.equal(client.log.filter((m) => m.op === 'ok').length, 2);
      },
    );
  });

  test('a client that cannot pause is answered rate_limited past the bound, and the rest still run', async () => {
    const held = gate();
    await withRig(
      {
        maxPendingRequests: 3,
        abuseLimit: 1000,
        canSubscribe: async () => {
          await held.promise;
          return true;
        },
      },
      async (rig) => {
        const client = rig.client({ user: 'u', pausable: false });
        const ids = Array.from({ length: 5 }, () => rig.send(client, 'presence', { ch: 'a' }));
        const refused = ids.slice(3).map((id) => client.answer(id));
        assert.deepEqual(
          refused.map((a) => [a?.code, a?.message]),
          [
            ['rate_limited', 'more than 3 requests waiting for an answer'],
            ['rate_limited', 'more than 3 requests waiting for an answer'],
          ],
        );
        held.open();
        await settle(30);
        assert.deepEqual(
          ids.map((id) => client.answers(id)),
          [1, 1, 1, 1, 1],
        );
        await rig.ok(client, 'presence', { ch: 'a' });
      },
    );
  });

  test('a connection that closes while paused answers nothing more and is not resumed', async () => {
    const held = gate();
    await withRig(
      {
        maxPendingRequests: 2,
        canSubscribe: async () => {
          await held.promise;
          return true;
        },
      },
      async (rig) => {
        const client = rig.client({ user: 'u' });
        rig.send(client, 'presence', { ch: 'a' });
        rig.send(client, 'presence', { ch: 'a' });
        assert.equal(client.paused, true);
        rig.hub.disconnect(client);
        held.open();
        await settle(20);
        assert.equal(client.resumes, 0);
        assert.deepEqual(client.log, []);
      },
    );
  });
});

/** Tokens of the form `user@expiresAt`, as an authenticateToken hook would decode a JWT. */
function tokenHook(token: string): ChannelIdentity<Auth> {
  const [user, expires] = token.split('@');
  if (user === undefined || user === 'bad') throw new ChannelError('unauthorized', 'bad token');
  const identity: ChannelIdentity<Auth> = { auth: { user }, user, member: { id: user } };
  if (expires !== undefined) identity.expiresAt = Number(expires);
  return identity;
}

const onlyAlice = (context: { auth: Auth }, channel: string): boolean => !channel.startsWith('alice:') || context.auth?.user === 'alice';

describe('switching identity', () => {
  test('an auth as another user ends the subscriptions the new one may not read (unsub push) and swaps the presence member', async () => {
    await withRig({ authenticateToken: tokenHook, canSubscribe: onlyAlice }, async (rig) => {
      const client = rig.client();
      const publisher = rig.client({ user: 'p' });
      const watcher = rig.client({ user: 'w' });
      await rig.ok(client, 'auth', { token: 'alice' });
      await rig.ok(client, 'sub', { ch: 'alice:inbox' });
      await rig.ok(client, 'sub', { ch: 'lobby' });
      await rig.ok(watcher, 'sub', { ch: 'lobby' });
      await rig.ok(publisher, 'pub', { ch: 'alice:inbox', data: 'before' });
      assert.deepEqual(client.msgs('alice:inbox'), ['before']);

      const answer = await rig.ok(client, 'auth', { token: 'bob' });
      const push = client.log.find((m) => m.op === 'unsub');
      assert.deepEqual(push, { op: 'unsub', ch: 'alice:inbox', code: 'forbidden', message: 'no longer allowed to read alice:inbox' });
      assert.ok(client.log.indexOf(push!) < client.log.indexOf(answer), 'told before the auth is answered');
      await rig.ok(publisher, 'pub', { ch: 'alice:inbox', data: 'after' });
      await rig.ok(publisher, 'pub', { ch: 'lobby', data: 'still' });
      assert.deepEqual(client.msgs('alice:inbox'), ['before'], 'nothing after the switch');
      assert.deepEqual(client.msgs('lobby'), ['still'], 'a channel bob may read stays');
      assert.deepEqual((await rig.ok(watcher, 'presence', { ch: 'lobby' })).members, [{ id: 'w' }, { id: 'bob' }]);
      assert.deepEqual(await rig.engine.members('alice:inbox'), [], 'alice left the channel she may no longer read');
      const events = watcher.log.filter((m) => m.op === 'join' || m.op === 'leave').map((m) => [m.op, m.member?.['id']]);
      assert.deepEqual(events, [
        ['leave', 'alice'],
        ['join', 'bob'],
      ]);
      // Later subscriptions announce the new member too.
      await rig.ok(client, 'sub', { ch: 'hall' });
      assert.deepEqual((await rig.ok(watcher, 'presence', { ch: 'hall' })).members, [{ id: 'bob' }]);
      assert.equal((await rig.request(client, 'sub', { ch: 'alice:inbox' })).code, 'forbidden');
    });
  });

  test('a refresh as the same identity keeps every subscription and announces nothing', async () => {
    await withRig({ authenticateToken: tokenHook, canSubscribe: onlyAlice }, async (rig) => {
      const client = rig.client();
      const watcher = rig.client({ user: 'w' });
      await rig.ok(watcher, 'sub', { ch: 'lobby' });
      await rig.ok(client, 'auth', { token: 'alice' });
      await rig.ok(client, 'sub', { ch: 'alice:inbox' });
      await rig.ok(client, 'sub', { ch: 'lobby' });
      const joins = watcher.log.length;
      await rig.ok(client, 'auth', { token: 'alice' });
      assert.equal(client.log.filter((m) => m.op === 'unsub').length, 0);
      assert.deepEqual(watcher.log.slice(joins), [], 'no leave or join');
      await rig.ok(watcher, 'pub', { ch: 'alice:inbox', data: 1 });
      assert.deepEqual(client.msgs('alice:inbox'), [1]);
    });
  });

  test('a hook that throws while subscriptions are checked again ends them (with its code), never keeps them', async () => {
    let calls = 0;
    await withRig(
      {
        authenticateToken: tokenHook,
        canSubscribe: () => {
          if (++calls > 1) throw new Error('directory down');
          return true;
        },
      },
      async (rig) => {
        const client = rig.client();
        await rig.ok(client, 'auth', { token: 'alice' });
        await rig.ok(client, 'sub', { ch: 'room' });
        await rig.ok(client, 'auth', { token: 'bob' });
        assert.deepEqual(
          client.log.filter((m) => m.op === 'unsub').map((m) => [m.ch, m.code]),
          [['room', 'internal']],
        );
      },
    );
  });
});

describe('expiry', () => {
  test('at expiresAt the subscriptions end (unsub push, presence leave, no delivery); after the grace, 4401', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    await withRig(
      { authenticateToken: tokenHook, authGrace: 5_000 },
      async (rig) => {
        const client = rig.client();
        const publisher = rig.client({ user: 'p' });
        await rig.ok(publisher, 'sub', { ch: 'room' });
        await rig.ok(client, 'auth', { token: `alice@${1_000_000 + 10_000}` });
        await rig.ok(client, 'sub', { ch: 'room' });
        t.mock.timers.tick(10_000);
        await settle();
        assert.deepEqual(
          client.log.filter((m) => m.op === 'unsub').map((m) => [m.ch, m.code]),
          [['room', 'unauthorized']],
        );
        assert.deepEqual(
          publisher.log.filter((m) => m.op === 'leave').map((m) => m.member?.['id']),
          ['alice'],
        );
        await rig.ok(publisher, 'pub', { ch: 'room', data: 'after expiry' });
        assert.deepEqual(client.msgs('room'), []);
        assert.equal((await rig.request(client, 'sub', { ch: 'room' })).code, 'unauthorized');
        assert.equal(client.closedWith, null, 'the grace period delays the close');
        t.mock.timers.tick(5_000);
        assert.equal(client.closedWith, 4401);
      },
      'date',
    );
  });

  test('re-authenticating within the grace keeps the connection; it subscribes again', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    await withRig(
      { authenticateToken: tokenHook, authGrace: 5_000 },
      async (rig) => {
        const client = rig.client();
        await rig.ok(client, 'auth', { token: `alice@${1_010_000}` });
        await rig.ok(client, 'sub', { ch: 'room' });
        t.mock.timers.tick(12_000);
        await settle();
        await rig.ok(client, 'auth', { token: `alice@${1_100_000}` });
        await rig.ok(client, 'sub', { ch: 'room' });
        t.mock.timers.tick(10_000);
        assert.equal(client.closedWith, null);
      },
      'date',
    );
  });

  test('an expiresAt beyond setTimeout range (24.8 days) is waited for in steps, not taken as now', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    const mocked = globalThis.setTimeout;
    const delays: number[] = [];
    t.mock.method(globalThis, 'setTimeout', ((fn: () => void, ms: number) => {
      delays.push(ms);
      return mocked(fn, ms);
    }) as typeof setTimeout);
    const day = 24 * 3600_000;
    await withRig(
      { authGrace: 30_000 },
      async (rig) => {
        const client = rig.client({ user: 'u', expiresAt: 1_000_000 + 60 * day });
        await rig.ok(client, 'sub', { ch: 'room' });
        assert.ok(delays.length > 0 && delays.every((ms) => ms >= 0 && ms <= 2 ** 31 - 1), `timer delays within range: ${delays.join(', ')}`);
        t.mock.timers.tick(2 ** 31);
        t.mock.timers.tick(30 * day);
        await settle();
        assert.equal(client.closedWith, null, 'still open 55 days in');
        assert.equal(client.log.filter((m) => m.op === 'unsub').length, 0);
        t.mock.timers.tick(60 * day - 2 ** 31 - 30 * day);
        await settle();
        assert.deepEqual(
          client.log.filter((m) => m.op === 'unsub').map((m) => m.code),
          ['unauthorized'],
        );
        t.mock.timers.tick(30_000);
        assert.equal(client.closedWith, 4401);
        assert.ok(delays.every((ms) => ms <= 2 ** 31 - 1));
      },
      'date',
    );
  });
});

describe('idempotency keys are scoped to their publisher', () => {
  test("another client's guess of a key neither swallows the victim's publish nor is swallowed", async () => {
    await withRig({}, async (rig) => {
      const victim = rig.client();
      const attacker = rig.client();
      const watcher = rig.client();
      await rig.ok(watcher, 'sub', { ch: 'orders' });
      const stolen = await rig.ok(attacker, 'pub', { ch: 'orders', data: 'fake', key: 'order-17', sender: 'guess' });
      const real = await rig.ok(victim, 'pub', { ch: 'orders', data: 'real', key: 'order-17', sender: 'victim-random-id' });
      assert.equal(stolen.delivered, 1);
      assert.equal(real.delivered, 1, 'the victim publish was delivered');
      assert.deepEqual(watcher.msgs('orders'), ['fake', 'real']);
    });
  });

  test('the same sender on a new connection (the SDK after a reconnect) is deduplicated', async () => {
    await withRig({}, async (rig) => {
      const watcher = rig.client();
      await rig.ok(watcher, 'sub', { ch: 'orders' });
      const first = rig.client();
      const sent = await rig.ok(first, 'pub', { ch: 'orders', data: 'x', key: 'k', sender: 's-1' });
      rig.hub.disconnect(first);
      const second = rig.client();
      const retried = await rig.ok(second, 'pub', { ch: 'orders', data: 'x', key: 'k', sender: 's-1' });
      assert.deepEqual([retried.offset, retried.delivered], [sent.offset, 0]);
      assert.deepEqual(watcher.msgs('orders'), ['x']);
    });
  });

  test('an authenticated user is its own scope, whatever sender it sends; without any, the connection is', async () => {
    await withRig({}, async (rig) => {
      const watcher = rig.client();
      await rig.ok(watcher, 'sub', { ch: 'c' });
      const tab1 = rig.client({ user: 'ada' });
      const tab2 = rig.client({ user: 'ada' });
      await rig.ok(tab1, 'pub', { ch: 'c', data: 1, key: 'k', sender: 'a' });
      assert.equal((await rig.ok(tab2, 'pub', { ch: 'c', data: 1, key: 'k', sender: 'b' })).delivered, 0, "ada's own retry");
      const lin = rig.client({ user: 'lin' });
      assert.equal((await rig.ok(lin, 'pub', { ch: 'c', data: 1, key: 'k', sender: 'a' })).delivered, 1, "lin is not ada, even with ada's sender");
      const anon1 = rig.client();
      const anon2 = rig.client();
      await rig.ok(anon1, 'pub', { ch: 'c', data: 2, key: 'k2' });
      assert.equal((await rig.ok(anon2, 'pub', { ch: 'c', data: 2, key: 'k2' })).delivered, 1);
      assert.equal((await rig.ok(anon1, 'pub', { ch: 'c', data: 2, key: 'k2' })).delivered, 0);
      assert.deepEqual(watcher.msgs('c'), [1, 1, 2, 2]);
    });
  });

  test('a key reused with other data is a bad_request, and nothing is delivered', async () => {
    await withRig({}, async (rig) => {
      const watcher = rig.client();
      await rig.ok(watcher, 'sub', { ch: 'c' });
      const client = rig.client({ user: 'ada' });
      await rig.ok(client, 'pub', { ch: 'c', data: { n: 1 }, key: 'k' });
      const reused = await rig.request(client, 'pub', { ch: 'c', data: { n: 2 }, key: 'k' });
      assert.deepEqual([reused.op, reused.code], ['err', 'bad_request']);
      assert.match(reused.message!, /key "k" was used for other data in c/);
      assert.deepEqual(watcher.msgs('c'), [{ n: 1 }]);
    });
  });
});
