// The client's state machine with a fake WebSocket class and no network: the test plays the
// server, opening, answering and dropping sockets by hand. Where time matters (backoffs,
// timeouts, heartbeats) the clock is mocked and the test moves it: what must happen by a
// time is asserted then, and what must never happen is asserted after a long jump.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientOptions, type ClientState, type HotlineClient, type WebSocketLike } from './client.js';
import { HotlineError } from './errors.js';
import { MAX_TIMEOUT } from './timer.js';
import type { ChannelState, SubscribedEvent } from './channel.js';

type Request = { op: string; id: number; [field: string]: unknown };

/** A socket the test drives: `accept`, `reply`, `drop`. */
class FakeSocket implements WebSocketLike {
  readyState = 0;
  readonly sent: string[] = [];
  readonly closeCalls: Array<{ code?: number; reason?: string }> = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  /** Answers each ping with a pong, as a live server does. */
  autoPong = false;

  constructor(
    readonly url: string,
    readonly protocols: string | string[],
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error(`send on a socket in state ${this.readyState}`);
    this.sent.push(data);
    const request = JSON.parse(data) as Request;
    if (this.autoPong && request.op === 'ping') setImmediate(() => this.reply({ op: 'pong', id: request.id }));
  }

  close(code?: number, reason?: string): void {
    this.closeCalls.push({ code, reason });
    if (this.readyState >= 2) return;
    this.readyState = 2;
    // As in browsers: the close event comes later.
    setImmediate(() => this.drop(code ?? 1005, reason ?? ''));
  }

  // ── the test's side ──

  get requests(): Request[] {
    return this.sent.map((text) => JSON.parse(text) as Request);
  }

  get ops(): string[] {
    return this.requests.map((r) => r.op);
  }

  /** The last request with this op. */
  last(op: string): Request {
    const found = this.requests.filter((r) => r.op === op).at(-1);
    assert.ok(found !== undefined, `no ${op} was sent (sent: ${this.ops.join(', ')})`);
    return found;
  }

  accept(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  reply(message: Record<string, unknown>): void {
    if (this.readyState === 3) return;
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  /** The connection ends (1006: without a close frame). */
  drop(code = 1006, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** A fake WebSocket class with its own list of the sockets it made. */
function fakeServer(): { sockets: FakeSocket[]; last: () => FakeSocket; WebSocket: new (url: string, protocols: string | string[]) => FakeSocket } {
  const sockets: FakeSocket[] = [];
  class WebSocket extends FakeSocket {
    constructor(url: string, protocols: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { sockets, last: () => sockets.at(-1)!, WebSocket };
}

// WebSocket only: these tests play a WebSocket server by hand and count its sockets; the
// choice of transport (the default falls back to the HTTP session) is fallback.test.ts's.
const FAST: ClientOptions = { reconnect: { initial: 20, max: 40 }, pingInterval: 0, transports: ['websocket'] };

function start(options: ClientOptions = {}): { client: HotlineClient; server: ReturnType<typeof fakeServer>; states: ClientState[]; closes: Array<{ code: number; reason: string; willRetry: boolean }> } {
  const server = fakeServer();
  const client = connect('ws://fake.test/ws', { ...FAST, ...options, WebSocket: server.WebSocket });
  const states: ClientState[] = [];
  const closes: Array<{ code: number; reason: string; willRetry: boolean }> = [];
  client.on('state', (state) => states.push(state));
  client.on('close', (event) => closes.push(event));
  return { client, server, states, closes };
}

/**
 * Mocked timers for the client's own (setTimeout and Date); the fake sockets' setImmediate
 * stays real. Math.random is pinned just under 1, so every full-jitter wait is the top of
 * its window, minus 1 ms.
 */
function mockTime(t: TestContext): void {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  t.mock.method(Math, 'random', () => 0.9999);
}

/** Lets promise callbacks and setImmediate callbacks run (they are not mocked). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Moves the mocked clock by `ms` and lets what that set off run. */
async function advance(t: TestContext, ms: number): Promise<void> {
  t.mock.timers.tick(ms);
  await turn();
}

/** The longest reconnect backoff of {@link FAST}: one attempt is due within it. */
const BACKOFF = 40;

/** Long past any backoff or timeout of these tests: what has not happened by then never will. */
const LONG = 60_000;

/**
 * Moves the mocked clock 1 ms at a time, letting callbacks run after each, until `condition`
 * holds; resolves with how far it moved. Fails past `limit` ms.
 */
async function tickUntil(t: TestContext, condition: () => boolean, what: string, limit = LONG): Promise<number> {
  for (let elapsed = 0; !condition(); elapsed++) {
    if (elapsed > limit) throw new Error(`${what} did not happen within ${limit} ms of mocked time`);
    await advance(t, 1);
    if (condition()) return elapsed + 1;
  }
  return 0;
}

/** Whether `promise` is still pending once pending callbacks have run. */
async function isPending(promise: Promise<unknown>): Promise<boolean> {
  let pending = true;
  promise.then(
    () => (pending = false),
    () => (pending = false),
  );
  await turn();
  return pending;
}

function isCode(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof HotlineError, `expected a HotlineError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  };
}

/** Whether a promise settled by the time pending callbacks ran (without waiting for it). */
describe('connection state', () => {
  test('connects with the hotline.v1 subprotocol and goes open', () => {
    const { client, server, states } = start();
    assert.equal(client.state, 'connecting');
    assert.equal(server.sockets.length, 1);
    assert.equal(server.last().url, 'ws://fake.test/ws');
    assert.equal(server.last().protocols, 'hotline.v1');
    server.last().accept();
    assert.equal(client.state, 'open');
    assert.deepEqual(states, ['open']);
    client.close();
  });

  test('a drop reconnects after a backoff: open → reconnecting → open, with a close event', async (t) => {
    mockTime(t);
    const { client, server, states, closes } = start();
    server.last().accept();
    server.last().drop(1006);
    assert.equal(client.state, 'reconnecting');
    assert.deepEqual(closes, [{ code: 1006, reason: '', willRetry: true }]);
    await turn();
    assert.equal(server.sockets.length, 1, 'not before the backoff');
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'a second socket after it');
    server.last().accept();
    assert.deepEqual(states, ['open', 'reconnecting', 'open']);
    client.close();
  });

  test("a server going away with a reconnect hint: one random wait within its window replaces the backoff", async (t) => {
    mockTime(t);
    const { client, server, closes } = start({ reconnect: { initial: 20, max: 60_000 } });
    server.last().accept();
    server.last().drop(1001, 'server shutting down; reconnect within 5000 ms');
    assert.deepEqual(closes, [{ code: 1001, reason: 'server shutting down; reconnect within 5000 ms', willRetry: true }]);
    // Math.random is pinned at 0.9999: the wait is the top of the window, 4999 ms, not the 20 ms backoff.
    await advance(t, 4_998);
    assert.equal(server.sockets.length, 1, 'still spreading: not before the drawn delay');
    await advance(t, 1);
    assert.equal(server.sockets.length, 2, 'reconnected within the window');
    server.last().accept();
    // The next plain drop is back on the backoff, from its first step.
    server.last().drop(1006);
    await advance(t, 19);
    assert.equal(server.sockets.length, 3, 'the backoff: within its first 20 ms');
    client.close();
  });

  test('a reconnect hint longer than reconnect.max is capped by it', async (t) => {
    mockTime(t);
    const { client, server } = start({ reconnect: { initial: 20, max: 1_000 } });
    server.last().accept();
    server.last().drop(1001, 'server shutting down; reconnect within 300000 ms');
    await advance(t, 998);
    assert.equal(server.sockets.length, 1);
    await advance(t, 1);
    assert.equal(server.sockets.length, 2, 'within reconnect.max');
    client.close();
  });

  test('failed attempts stay in reconnecting and keep trying', async (t) => {
    mockTime(t);
    const { client, server, states } = start();
    server.last().accept();
    server.last().drop();
    for (let n = 2; n <= 4; n++) {
      await advance(t, BACKOFF);
      assert.equal(server.sockets.length, n, `attempt ${n}`);
      server.last().drop();
      assert.equal(client.state, 'reconnecting');
    }
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 5, 'attempt 5');
    server.last().accept();
    assert.deepEqual(states, ['open', 'reconnecting', 'open']);
    client.close();
  });

  test('reconnect.retries bounds the attempts; then the client is closed', async (t) => {
    mockTime(t);
    const { client, server, closes } = start({ reconnect: { initial: 10, max: 20, retries: 2 } });
    server.last().accept();
    server.last().drop();
    await advance(t, 20);
    assert.equal(server.sockets.length, 2, 'retry 1');
    server.last().drop();
    await advance(t, 20);
    assert.equal(server.sockets.length, 3, 'retry 2');
    server.last().drop();
    assert.equal(client.state, 'closed');
    assert.deepEqual(
      closes.map((c) => c.willRetry),
      [true, true, false],
    );
    await advance(t, LONG);
    assert.equal(server.sockets.length, 3);
  });

  test('a browser "online" event skips the rest of the backoff', async (t) => {
    const target = new EventTarget();
    const global = globalThis as { addEventListener?: unknown; removeEventListener?: unknown };
    global.addEventListener = target.addEventListener.bind(target);
    global.removeEventListener = target.removeEventListener.bind(target);
    try {
      mockTime(t);
      const { client, server } = start({ reconnect: { initial: 60_000, max: 60_000 } });
      server.last().accept();
      server.last().drop();
      await advance(t, 20);
      assert.equal(server.sockets.length, 1, 'still waiting out the backoff');
      target.dispatchEvent(new Event('online'));
      assert.equal(server.sockets.length, 2, 'reconnected at once');
      server.last().accept();
      assert.equal(client.state, 'open');
      client.close();
      // close() removed the listener: another online event does nothing.
      target.dispatchEvent(new Event('online'));
      assert.equal(server.sockets.length, 2);
    } finally {
      delete global.addEventListener;
      delete global.removeEventListener;
    }
  });
});

describe('final close codes', () => {
  for (const code of [1002, 1003, 1007, 1008, 4401, 4403]) {
    test(`${code}: no retry, state closed, requests fail`, async (t) => {
      mockTime(t);
      const { client, server, states, closes } = start();
      server.last().accept();
      const inFlight = client.rpc('slow');
      server.last().drop(code, 'go away');
      assert.equal(client.state, 'closed');
      assert.deepEqual(states, ['open', 'closed']);
      assert.deepEqual(closes, [{ code, reason: 'go away', willRetry: false }]);
      await assert.rejects(inFlight, isCode('disconnected'));
      await assert.rejects(client.rpc('later'), isCode('closed'));
      await assert.rejects(client.channel('c').subscribe(), isCode('closed'));
      await advance(t, LONG);
      assert.equal(server.sockets.length, 1, 'never reconnected');
    });
  }

  test('other codes are retried: 1000, 1001, 1006, 1011, 4000', async (t) => {
    mockTime(t);
    for (const code of [1000, 1001, 1006, 1011, 4000]) {
      const { client, server, closes } = start();
      server.last().accept();
      server.last().drop(code);
      assert.equal(client.state, 'reconnecting', `after ${code}`);
      assert.equal(closes[0]!.willRetry, true);
      await advance(t, BACKOFF);
      assert.equal(server.sockets.length, 2, `a reconnect after ${code}`);
      client.close();
    }
  });

  test('finalCloseCodes replaces the defaults', async (t) => {
    mockTime(t);
    const { client, server } = start({ finalCloseCodes: [4500] });
    server.last().accept();
    server.last().drop(1008);
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'a retry after 1008');
    server.last().accept();
    server.last().drop(4500);
    assert.equal(client.state, 'closed');
  });
});

describe('subscription tokens', () => {
  test("channel(name, { token }) sends the token with its sub; getToken's fresh one goes with the resubscribe after a reconnect", async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    let n = 0;
    const fixed = client.channel('private:a', { token: 'tok-a' }).subscribe();
    const fresh = client.channel('private:b', { getToken: (channel) => `${channel}-${++n}` }).subscribe();
    const socket = server.last();
    await turn();
    const subs = socket.requests.filter((r) => r.op === 'sub');
    assert.deepEqual(subs.map((r) => [r.ch, r.token]), [['private:a', 'tok-a'], ['private:b', 'private:b-1']]);
    for (const sub of subs) socket.reply({ op: 'ok', id: sub.id, epoch: 'e', offset: 0, recovered: false });
    await Promise.all([fixed, fresh]);
    socket.drop();
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2);
    server.last().accept();
    await turn();
    assert.deepEqual(server.last().requests.filter((r) => r.op === 'sub').map((r) => [r.ch, r.token]).sort(), [['private:a', 'tok-a'], ['private:b', 'private:b-2']]);
    client.close();
  });
});

describe('the request queue', () => {
  test('requests made before the connection opens go out when it does: subscriptions first, then in order', async () => {
    const { client, server } = start();
    const published = client.channel('a').publish(1);
    const called = client.rpc('m', { x: 1 });
    const subscribed = client.channel('b').subscribe();
    assert.deepEqual(server.last().sent, []);
    server.last().accept();
    const socket = server.last();
    assert.deepEqual(socket.ops, ['sub', 'pub', 'rpc']);
    assert.deepEqual(socket.last('rpc').params, { x: 1 });
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e', offset: 0, recovered: false });
    socket.reply({ op: 'ok', id: socket.last('pub').id, offset: 1, delivered: 0 });
    socket.reply({ op: 'ok', id: socket.last('rpc').id, result: 'r' });
    assert.deepEqual(await published, { offset: 1, delivered: 0 });
    assert.equal(await called, 'r');
    assert.equal((await subscribed).first, true);
    client.close();
  });

  test('queue_full: beyond queueSize, a request fails at once', async () => {
    const { client, server } = start({ queueSize: 2 });
    const first = client.rpc('one');
    const second = client.channel('c').publish(2);
    await assert.rejects(client.rpc('three'), isCode('queue_full'));
    await assert.rejects(client.channel('c').history(), isCode('queue_full'));
    server.last().accept();
    assert.deepEqual(server.last().ops, ['rpc', 'pub'], 'the two that fit go out');
    client.close();
    await assert.rejects(first, isCode('closed'));
    await assert.rejects(second, isCode('closed'));
  });

  test('queue_timeout: a request that waited longer than queueTimeout fails and is never sent', async (t) => {
    mockTime(t);
    const { client, server } = start({ queueTimeout: 50 });
    const waited = client.channel('c').publish('stale');
    await advance(t, 49);
    assert.equal(await isPending(waited), true, 'not before queueTimeout');
    await advance(t, 1);
    await assert.rejects(waited, isCode('queue_timeout'));
    // Its place is free again.
    const fresh = client.rpc('fresh');
    server.last().accept();
    assert.deepEqual(server.last().ops, ['rpc']);
    server.last().reply({ op: 'ok', id: server.last().last('rpc').id, result: 1 });
    assert.equal(await fresh, 1);
    client.close();
  });

  test('while reconnecting, requests queue and go out after the reconnect', async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    server.last().drop();
    const queued = client.rpc('later');
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    assert.deepEqual(server.last().sent, []);
    server.last().accept();
    assert.deepEqual(server.last().ops, ['rpc']);
    server.last().reply({ op: 'ok', id: server.last().last('rpc').id, result: 'done' });
    assert.equal(await queued, 'done');
    client.close();
  });
});

describe('requests in flight when the connection drops', () => {
  test('publish, history and presence go again with the same text (same key); rpc fails with disconnected', async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel('room');
    const published = channel.publish({ text: 'hi' });
    const history = channel.history({ limit: 2 });
    const presence = channel.presence.fetch();
    const called = client.rpc('maybe-ran');
    const first = server.last();
    const pubText = first.sent.find((t) => t.includes('"op":"pub"'))!;
    const key = first.last('pub').key;
    assert.equal(typeof key, 'string');
    first.drop();
    await assert.rejects(called, isCode('disconnected'));
    const later = client.rpc('after-the-drop');
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    const second = server.last();
    second.accept();
    assert.deepEqual(second.ops, ['pub', 'history', 'presence', 'rpc'], 'retried first, in their order, then the queue');
    assert.equal(second.sent[0], pubText, 'the publish is resent unchanged: same idempotency key');
    second.reply({ op: 'ok', id: second.last('pub').id, offset: 9, delivered: 0 });
    second.reply({ op: 'ok', id: second.last('history').id, epoch: 'e', messages: [] });
    second.reply({ op: 'ok', id: second.last('presence').id, members: [], count: 0 });
    second.reply({ op: 'ok', id: second.last('rpc').id, result: null });
    assert.deepEqual(await published, { offset: 9, delivered: 0 });
    assert.deepEqual((await history).messages, []);
    assert.deepEqual(await presence, { members: [], count: 0, truncated: false, joinLeave: true });
    assert.equal(await later, null);
    client.close();
  });

  test('every publish carries the same unguessable sender id, across reconnects; another client has another', async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    void client.channel('room').publish(1).catch(() => {});
    const sender = server.last().last('pub').sender;
    assert.match(String(sender), /^[0-9a-f-]{32,36}$/, 'a UUID or 128 random bits');
    server.last().drop();
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    server.last().accept();
    void client.channel('room').publish(2).catch(() => {});
    assert.deepEqual(
      server.last().requests.filter((r) => r.op === 'pub').map((r) => r.sender),
      [sender, sender],
    );
    const other = start();
    other.server.last().accept();
    void other.client.channel('room').publish(1).catch(() => {});
    assert.notEqual(other.server.last().last('pub').sender, sender);
    client.close();
    other.client.close();
  });

  test('each publish gets its own key unless one is given', () => {
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel('room');
    void channel.publish(1).catch(() => {});
    void channel.publish(2).catch(() => {});
    void channel.publish(3, { key: 'mine' }).catch(() => {});
    const keys = server.last().requests.map((r) => r.key);
    assert.equal(new Set(keys).size, 3);
    assert.equal(keys[2], 'mine');
    client.close();
  });

  test('an answer that arrives for an old connection’s request is ignored', async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    const old = server.last();
    const published = client.channel('c').publish(1);
    const id = old.last('pub').id;
    old.drop();
    old.reply({ op: 'ok', id, offset: 1, delivered: 1 });
    assert.equal(await isPending(published), true);
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    server.last().accept();
    server.last().reply({ op: 'ok', id: server.last().last('pub').id, offset: 1, delivered: 0 });
    assert.deepEqual(await published, { offset: 1, delivered: 0 });
    client.close();
  });
});

describe('answers and timeouts', () => {
  test('an err answer rejects with the server’s code and message', async () => {
    const { client, server } = start();
    server.last().accept();
    const call = client.rpc('secret');
    server.last().reply({ op: 'err', id: server.last().last('rpc').id, code: 'forbidden', message: 'no' });
    await assert.rejects(call, (error) => {
      assert.ok(error instanceof HotlineError);
      assert.equal(error.code, 'forbidden');
      assert.equal(error.message, 'no');
      return true;
    });
    client.close();
  });

  test('requestTimeout, and a per-call rpc timeout: no answer fails with timeout; a late answer is ignored', async (t) => {
    mockTime(t);
    const { client, server } = start({ requestTimeout: 40 });
    server.last().accept();
    const history = client.channel('c').history();
    const call = client.rpc('slow', null, { timeout: 20 });
    await advance(t, 19);
    assert.equal(await isPending(call), true, 'the rpc, before its 20 ms');
    await advance(t, 1);
    await assert.rejects(call, isCode('timeout'));
    await advance(t, 19);
    assert.equal(await isPending(history), true, 'the history read, before requestTimeout');
    await advance(t, 1);
    await assert.rejects(history, isCode('timeout'));
    server.last().reply({ op: 'ok', id: server.last().last('rpc').id, result: 'late' });
    assert.equal(client.state, 'open', 'a timeout does not end the connection');
    client.close();
  });

  test('connectTimeout: a socket that does not open is abandoned, and the client tries again', async (t) => {
    mockTime(t);
    const { client, server, closes, states } = start({ connectTimeout: 50 });
    const hung = server.last();
    await advance(t, 49);
    assert.deepEqual(closes, [], 'not before connectTimeout');
    await advance(t, 1);
    assert.deepEqual(closes, [{ code: 4000, reason: 'connect timeout', willRetry: true }]);
    assert.equal(hung.closeCalls.length, 1, 'the hung socket was closed');
    assert.equal(client.state, 'reconnecting');
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'a second attempt');
    // The abandoned socket opening late changes nothing.
    hung.accept();
    assert.equal(client.state, 'reconnecting');
    server.last().accept();
    assert.equal(client.state, 'open');
    assert.deepEqual(states, ['reconnecting', 'open']);
    client.close();
  });
});

describe('heartbeat', () => {
  test('pings after pingInterval of silence; answered pings keep the connection', async (t) => {
    mockTime(t);
    const { client, server } = start({ pingInterval: 60, pingTimeout: 120 });
    const socket = server.last();
    socket.autoPong = true;
    socket.accept();
    const pings = (): number => socket.ops.filter((op) => op === 'ping').length;
    // Each pong comes back at once: the silence before a ping is the time since the last one.
    for (let n = 1; n <= 4; n++) {
      const silence = await tickUntil(t, () => pings() === n, `ping ${n}`);
      assert.ok(silence >= 60, `ping ${n} after ${silence} ms of silence`);
    }
    assert.equal(client.state, 'open');
    assert.equal(server.sockets.length, 1);
    assert.deepEqual(socket.closeCalls, []);
    client.close();
  });

  test('an unanswered ping drops the connection with heartbeat timeout, and the client reconnects', async (t) => {
    mockTime(t);
    const { client, server, closes } = start({ pingInterval: 60, pingTimeout: 60 });
    const silent = server.last();
    silent.accept();
    const silence = await tickUntil(t, () => silent.ops.includes('ping'), 'a ping');
    assert.ok(silence >= 60, `the ping after ${silence} ms of silence`);
    const unanswered = await tickUntil(t, () => closes.length === 1, 'the heartbeat timeout');
    assert.ok(unanswered >= 60, `given up ${unanswered} ms after the ping`);
    assert.deepEqual(closes, [{ code: 4000, reason: 'heartbeat timeout', willRetry: true }]);
    assert.equal(silent.closeCalls.length, 1, 'the dead socket was closed');
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    client.close();
  });

  test('pingInterval 0 sends no pings', async (t) => {
    mockTime(t);
    const { client, server } = start({ pingInterval: 0 });
    server.last().accept();
    await advance(t, LONG);
    assert.deepEqual(server.last().sent, []);
    client.close();
  });
});

describe('close()', () => {
  test('while open: pending requests fail with closed, the socket closes with 1000, nothing reconnects', async (t) => {
    mockTime(t);
    const { client, server, states } = start();
    server.last().accept();
    const call = client.rpc('pending');
    const published = client.channel('c').publish(1);
    client.close();
    assert.equal(client.state, 'closed');
    assert.deepEqual(states, ['open', 'closed']);
    assert.deepEqual(server.last().closeCalls, [{ code: 1000, reason: '' }]);
    await assert.rejects(call, isCode('closed'));
    await assert.rejects(published, isCode('closed'));
    await assert.rejects(client.rpc('after'), isCode('closed'));
    client.close();
    assert.deepEqual(states, ['open', 'closed'], 'a second close() does nothing');
    await advance(t, LONG);
    assert.equal(server.sockets.length, 1);
  });

  test('while reconnecting: the retry is cancelled and queued requests fail', async (t) => {
    mockTime(t);
    const { client, server } = start({ reconnect: { initial: 50, max: 50 } });
    server.last().accept();
    server.last().drop();
    const queued = client.rpc('queued');
    client.close();
    await assert.rejects(queued, isCode('closed'));
    await advance(t, LONG);
    assert.equal(server.sockets.length, 1);
  });

  test('while connecting: the attempt is abandoned', async () => {
    const { client, server } = start();
    const queued = client.channel('c').publish(1);
    const subscribed = client.channel('c').subscribe();
    client.close();
    assert.equal(server.last().closeCalls.length, 1);
    await assert.rejects(queued, isCode('closed'));
    await assert.rejects(subscribed, isCode('closed'));
  });
});

describe('subscriptions', () => {
  test('resubscribes from the last offset seen; the replay is deduplicated by offset', async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel<string>('room');
    const got: number[] = [];
    const events: SubscribedEvent[] = [];
    channel.on('subscribed', (event) => events.push(event));
    const subscribed = channel.subscribe((_data, meta) => got.push(meta.offset));
    let socket = server.last();
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e1', offset: 3, recovered: false });
    assert.deepEqual(await subscribed, { epoch: 'e1', offset: 3, recovered: false, first: true });
    for (const offset of [4, 5]) socket.reply({ op: 'msg', ch: 'room', offset, data: `m${offset}` });
    socket.drop();
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    socket = server.last();
    socket.accept();
    const sub = socket.last('sub');
    assert.deepEqual(sub.since, { epoch: 'e1', offset: 5 });
    socket.reply({ op: 'ok', id: sub.id, epoch: 'e1', offset: 7, recovered: true });
    for (const offset of [5, 6, 7, 7, 8]) socket.reply({ op: 'msg', ch: 'room', offset, data: `m${offset}` });
    assert.deepEqual(got, [4, 5, 6, 7, 8]);
    assert.deepEqual(events.at(-1), { epoch: 'e1', offset: 7, recovered: true, first: false });
    client.close();
  });

  test('concurrent subscribe() calls share one sub; a later one answers from where the channel stands', async () => {
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel('room');
    const a = channel.subscribe();
    const b = channel.subscribe();
    const socket = server.last();
    assert.deepEqual(socket.ops, ['sub']);
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e', offset: 2, recovered: false });
    assert.deepEqual(await a, await b);
    assert.deepEqual(await channel.subscribe(), { epoch: 'e', offset: 2, recovered: true, first: false });
    assert.deepEqual(socket.ops, ['sub'], 'no second sub');
    client.close();
  });

  test('a refused resubscription ends the subscription with an error event; it is not retried', async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel('room');
    const errors: Error[] = [];
    channel.on('error', (error) => errors.push(error));
    const subscribed = channel.subscribe();
    server.last().reply({ op: 'ok', id: server.last().last('sub').id, epoch: 'e', offset: 0, recovered: false });
    await subscribed;
    server.last().drop();
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    server.last().accept();
    server.last().reply({ op: 'err', id: server.last().last('sub').id, code: 'forbidden', message: 'not any more' });
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof HotlineError && errors[0].code === 'forbidden');
    assert.equal(channel.state, 'errored');
    server.last().drop();
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 3, 'another reconnect');
    server.last().accept();
    assert.deepEqual(server.last().sent, [], 'not subscribed again');
    client.close();
  });

  test('an unsub pushed by the server ends the subscription with an error event; later messages are dropped, no resubscription', async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel('room');
    const errors: Error[] = [];
    const got: number[] = [];
    channel.on('error', (error) => errors.push(error));
    const subscribed = channel.subscribe((_d, meta) => got.push(meta.offset));
    server.last().reply({ op: 'ok', id: server.last().last('sub').id, epoch: 'e', offset: 0, recovered: false });
    await subscribed;
    server.last().reply({ op: 'msg', ch: 'room', offset: 1, data: 1 });
    server.last().reply({ op: 'unsub', ch: 'room', code: 'forbidden', message: 'no longer allowed to read room' });
    server.last().reply({ op: 'msg', ch: 'room', offset: 2, data: 2 });
    assert.deepEqual(got, [1]);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof HotlineError && errors[0].code === 'forbidden');
    assert.equal(channel.state, 'errored');
    server.last().drop();
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    server.last().accept();
    assert.deepEqual(server.last().sent, [], 'not subscribed again');
    client.close();
  });

  test('unsubscribe() sends unsub and later messages of the channel are dropped', async () => {
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel('room');
    const got: number[] = [];
    const subscribed = channel.subscribe((_d, meta) => got.push(meta.offset));
    const socket = server.last();
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e', offset: 0, recovered: false });
    await subscribed;
    socket.reply({ op: 'msg', ch: 'room', offset: 1, data: 1 });
    channel.unsubscribe();
    assert.deepEqual(socket.ops, ['sub', 'unsub']);
    socket.reply({ op: 'msg', ch: 'room', offset: 2, data: 2 });
    assert.deepEqual(got, [1]);
    client.close();
  });

  test('subscribe() then unsubscribe() before the answer: the subscribe promise still settles', async () => {
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel('room');
    const subscribed = channel.subscribe();
    subscribed.catch(() => {});
    channel.unsubscribe();
    const socket = server.last();
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e', offset: 0, recovered: false });
    socket.reply({ op: 'ok', id: socket.last('unsub').id });
    const pending = await isPending(subscribed);
    client.close();
    assert.equal(pending, false, 'an awaited subscribe() hangs forever');
  });

  test('a drop moves every subscribed channel to waiting; the reconnect subscribes them again', async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel('room');
    const states: ChannelState[] = [];
    channel.on('state', (state) => states.push(state));
    const subscribed = channel.subscribe();
    server.last().reply({ op: 'ok', id: server.last().last('sub').id, epoch: 'e', offset: 0, recovered: false });
    await subscribed;
    server.last().drop();
    assert.equal(channel.state, 'waiting');
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    server.last().accept();
    server.last().reply({ op: 'ok', id: server.last().last('sub').id, epoch: 'e', offset: 0, recovered: true });
    client.close();
    assert.deepEqual(states, ['subscribing', 'subscribed', 'waiting', 'subscribing', 'subscribed', 'unsubscribed']);
  });

  test('first is true for a channel’s first subscription, even when it is made after a reconnect', async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    server.last().drop();
    const channel = client.channel('late');
    const subscribed = channel.subscribe();
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    const socket = server.last();
    socket.accept();
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e', offset: 0, recovered: false });
    const event = await subscribed;
    client.close();
    assert.equal(event.first, true, 'the app never had this channel before: this is not a resubscription');
  });
});

describe('a channel’s subscription retries on its own', () => {
  test('a sub unanswered within requestTimeout is retried on that channel alone after a backoff; the connection stays and other channels keep receiving', async (t) => {
    mockTime(t);
    const { client, server, closes } = start({ requestTimeout: 1000, resubscribe: { initial: 500, max: 500 } });
    server.last().accept();
    const socket = server.last();
    const steady: number[] = [];
    const steadySubscribed = client.channel('steady').subscribe((_d, meta) => steady.push(meta.offset));
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e', offset: 0, recovered: false });
    await steadySubscribed;

    const slow = client.channel('slow');
    const states: string[] = [];
    slow.on('state', (state, error) => states.push(error ? `${state} (${(error as HotlineError).code})` : state));
    const got: number[] = [];
    const subscribed = slow.subscribe((_d, meta) => got.push(meta.offset));
    const abandoned = socket.last('sub');
    t.mock.timers.tick(999);
    socket.reply({ op: 'msg', ch: 'steady', offset: 1, data: 1 });
    assert.equal(slow.state, 'subscribing');
    t.mock.timers.tick(1);
    assert.equal(slow.state, 'retrying');
    assert.deepEqual(socket.ops, ['sub', 'sub', 'unsub'], 'leaves the channel the server may yet subscribe');
    assert.deepEqual(socket.last('unsub').ch, 'slow');
    socket.reply({ op: 'msg', ch: 'steady', offset: 2, data: 2 });
    // The server answers the abandoned sub late, and sends a message of it: both ignored.
    socket.reply({ op: 'ok', id: abandoned.id, epoch: 'e', offset: 7, recovered: false });
    socket.reply({ op: 'msg', ch: 'slow', offset: 8, data: 'of the abandoned sub' });
    socket.reply({ op: 'ok', id: socket.last('unsub').id });
    t.mock.timers.tick(498);
    assert.deepEqual(socket.ops, ['sub', 'sub', 'unsub'], 'not before the backoff');
    t.mock.timers.tick(1);
    assert.deepEqual(socket.ops, ['sub', 'sub', 'unsub', 'sub']);
    const retried = socket.last('sub');
    assert.equal(retried.ch, 'slow');
    assert.equal(retried.since, undefined, 'never subscribed: nothing to recover');
    socket.reply({ op: 'msg', ch: 'steady', offset: 3, data: 3 });
    socket.reply({ op: 'ok', id: retried.id, epoch: 'e', offset: 8, recovered: false });
    socket.reply({ op: 'msg', ch: 'slow', offset: 9, data: 'live' });
    assert.deepEqual(await subscribed, { epoch: 'e', offset: 8, recovered: false, first: true });
    assert.deepEqual(got, [9]);
    assert.deepEqual(steady, [1, 2, 3], 'the other channel kept receiving throughout');
    assert.deepEqual(states, ['subscribing', 'retrying (timeout)', 'subscribing', 'subscribed']);
    assert.equal(server.sockets.length, 1, 'the connection stayed');
    assert.deepEqual(closes, []);
    assert.equal(client.state, 'open');
    client.close();
  });

  test('a sub answered internal, then ok: retried with a growing backoff, ends subscribed, no error event', async (t) => {
    mockTime(t);
    const { client, server } = start({ resubscribe: { initial: 100, factor: 2, max: 1000 } });
    server.last().accept();
    const socket = server.last();
    const channel = client.channel('flaky');
    const states: string[] = [];
    const errors: Error[] = [];
    channel.on('state', (state, error) => states.push(error ? `${state} (${(error as HotlineError).code})` : state));
    channel.on('error', (error) => errors.push(error));
    let settledWith: unknown = 'pending';
    void channel.subscribe().then(
      (event) => (settledWith = event),
      (error: unknown) => (settledWith = error),
    );
    const waits = [100, 200, 400];
    for (const wait of waits) {
      socket.reply({ op: 'err', id: socket.last('sub').id, code: 'internal', message: 'the engine is unreachable' });
      const sent = socket.ops.length;
      t.mock.timers.tick(wait - 2);
      assert.equal(socket.ops.length, sent, `nothing before ${wait - 1} ms`);
      t.mock.timers.tick(1);
      assert.equal(socket.ops.length, sent + 1, `the retry after ${wait - 1} ms`);
      await turn();
      assert.equal(settledWith, 'pending', 'subscribe() waits through the retries');
    }
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e', offset: 3, recovered: false });
    await turn();
    assert.deepEqual(settledWith, { epoch: 'e', offset: 3, recovered: false, first: true });
    assert.equal(channel.state, 'subscribed');
    assert.deepEqual(socket.ops, ['sub', 'sub', 'sub', 'sub'], 'an err means no subscription: no unsub before a retry');
    assert.deepEqual(states, ['subscribing', ...waits.flatMap(() => ['retrying (internal)', 'subscribing']), 'subscribed']);
    assert.deepEqual(errors, []);
    assert.equal(server.sockets.length, 1);
    client.close();
  });

  test('a sub answered rate_limited is retried; forbidden ends it: errored, an error event, subscribe() rejects, never again', async (t) => {
    mockTime(t);
    const { client, server } = start({ resubscribe: { initial: 100, max: 100 } });
    server.last().accept();
    const socket = server.last();
    const channel = client.channel('private');
    const errors: Error[] = [];
    channel.on('error', (error) => errors.push(error));
    const subscribed = channel.subscribe();
    socket.reply({ op: 'err', id: socket.last('sub').id, code: 'rate_limited', message: 'subscribing too fast' });
    t.mock.timers.tick(100);
    socket.reply({ op: 'err', id: socket.last('sub').id, code: 'forbidden', message: 'members only' });
    await assert.rejects(subscribed, isCode('forbidden'));
    assert.equal(channel.state, 'errored');
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof HotlineError && errors[0].code === 'forbidden');
    t.mock.timers.tick(60_000);
    assert.deepEqual(socket.ops, ['sub', 'sub'], 'not asked again');
    assert.equal(client.state, 'open');
    client.close();
  });

  test('a resync after a gap goes subscribed → resyncing → subscribed, and a resync sub that times out is retried', async (t) => {
    mockTime(t);
    const { client, server } = start({ requestTimeout: 1000, resubscribe: { initial: 100, max: 100 } });
    server.last().accept();
    const socket = server.last();
    const channel = client.channel('room');
    const states: ChannelState[] = [];
    channel.on('state', (state) => states.push(state));
    const got: number[] = [];
    const subscribed = channel.subscribe((_d, meta) => got.push(meta.offset));
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e', offset: 0, recovered: false });
    await subscribed;
    socket.reply({ op: 'msg', ch: 'room', offset: 1, data: 1 });
    socket.reply({ op: 'msg', ch: 'room', offset: 3, data: 3 });
    assert.equal(channel.state, 'resyncing');
    assert.deepEqual(socket.last('sub').since, { epoch: 'e', offset: 1 });
    t.mock.timers.tick(1000);
    assert.equal(channel.state, 'retrying');
    t.mock.timers.tick(100);
    assert.deepEqual(socket.ops, ['sub', 'unsub', 'sub', 'unsub', 'sub']);
    assert.deepEqual(socket.last('sub').since, { epoch: 'e', offset: 1 }, 'still from the last message delivered');
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e', offset: 3, recovered: true });
    for (const offset of [2, 3, 4]) socket.reply({ op: 'msg', ch: 'room', offset, data: offset });
    assert.deepEqual(got, [1, 2, 3, 4]);
    assert.deepEqual(states, ['subscribing', 'subscribed', 'resyncing', 'retrying', 'subscribing', 'subscribed']);
    assert.equal(server.sockets.length, 1);
    client.close();
  });
});

describe('typed answers', () => {
  test('an ok that lacks a field its request’s answer must have fails the request as internal', async () => {
    const { client, server } = start();
    server.last().accept();
    const socket = server.last();
    const published = client.channel('c').publish(1);
    socket.reply({ op: 'ok', id: socket.last('pub').id, offset: 4 });
    await assert.rejects(published, (error: unknown) => isCode('internal')(error) && /pub/.test((error as Error).message));
    const read = client.channel('c').history();
    socket.reply({ op: 'ok', id: socket.last('history').id, epoch: 'e' });
    await assert.rejects(read, isCode('internal'));
    const called = client.rpc('m');
    socket.reply({ op: 'pong', id: socket.last('rpc').id });
    await assert.rejects(called, isCode('internal'));
    client.close();
  });
});

describe('token refresh', () => {
  /**
   * Node's setTimeout fires at once (after 1 ms) for a delay past 2^31 − 1 ms; the mocked
   * one would wait. Made to behave as Node's, so that an overflow shows.
   */
  function overflowLikeNode(t: TestContext): void {
    const mocked = globalThis.setTimeout;
    t.mock.method(globalThis, 'setTimeout', (callback: () => void, ms: number) => mocked(callback, ms > MAX_TIMEOUT ? 1 : ms));
  }

  test('credentials valid for 40 days are refreshed a minute before they expire, not at once', async (t) => {
    mockTime(t);
    overflowLikeNode(t);
    const DAY = 86_400_000;
    let issued = 0;
    const { client, server } = start({ token: () => `token-${issued++}` });
    server.last().accept();
    await turn();
    const socket = server.last();
    const auths = (): Request[] => socket.requests.filter((r) => r.op === 'auth');
    assert.deepEqual(auths().map((r) => r.token), ['token-0']);
    socket.reply({ op: 'ok', id: auths()[0]!.id, expiresAt: Date.now() + 40 * DAY });
    t.mock.timers.tick(1);
    await turn();
    t.mock.timers.tick(30 * DAY);
    await turn();
    assert.equal(auths().length, 1, 'no refresh in the first 30 days');
    t.mock.timers.tick(10 * DAY - 60_000 - 2);
    await turn();
    assert.equal(auths().length, 1, 'no refresh before a minute ahead of expiry');
    t.mock.timers.tick(1);
    await turn();
    assert.deepEqual(auths().map((r) => r.token), ['token-0', 'token-1']);
    assert.equal(client.state, 'open');
    client.close();
  });
});

describe('requests that close the connection', () => {
  test('1009 (message too big): requests in flight fail with too_large instead of going again; the client reconnects', async (t) => {
    mockTime(t);
    const { client, server, closes } = start();
    server.last().accept();
    const huge = client.channel('room').publish('x'.repeat(100));
    const read = client.channel('room').history({ limit: 5 });
    server.last().drop(1009, 'message exceeds the limit of 1048576 bytes');
    await assert.rejects(huge, isCode('too_large'));
    await assert.rejects(read, isCode('too_large'));
    assert.deepEqual(closes, [{ code: 1009, reason: 'message exceeds the limit of 1048576 bytes', willRetry: true }]);
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    server.last().accept();
    assert.deepEqual(server.last().ops, [], 'nothing was sent again');
    const later = client.rpc('echo');
    server.last().reply({ op: 'ok', id: server.last().last('rpc').id, result: 1 });
    assert.equal(await later, 1);
    client.close();
  });

  test(`a request in flight at ${3} drops in a row (an answer too big for the client: it fails with 1006) fails with disconnected, and is not asked again`, async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    const read = client.channel('room').history({ limit: 20 });
    for (let connection = 1; connection <= 3; connection++) {
      const socket = server.last();
      assert.deepEqual(socket.ops, ['history'], `connection ${connection} asks`);
      socket.drop(1006);
      if (connection < 3) {
        await advance(t, BACKOFF);
        assert.equal(server.sockets.length, connection + 1, `reconnect ${connection}`);
        server.last().accept();
      }
    }
    await assert.rejects(read, (error: unknown) => isCode('disconnected')(error) && /3 times/.test((error as Error).message));
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 4, 'the client reconnects all the same');
    server.last().accept();
    assert.deepEqual(server.last().ops, [], 'the request is not asked a fourth time');
    client.close();
  });
});

describe('a gap in a channel’s offsets', () => {
  test('unsub and sub since go out on the same connection; nothing before the new answer is delivered; the replay fills the hole', async () => {
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel<string>('room');
    const states: ChannelState[] = [];
    channel.on('state', (state) => states.push(state));
    const got: number[] = [];
    const events: SubscribedEvent[] = [];
    channel.on('subscribed', (event) => events.push(event));
    const subscribed = channel.subscribe((_data, meta) => got.push(meta.offset));
    const socket = server.last();
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e1', offset: 3, recovered: false });
    await subscribed;
    // 6 and 7 never arrive (a server that dropped them under backpressure).
    for (const offset of [4, 5, 8, 9]) socket.reply({ op: 'msg', ch: 'room', offset, data: `m${offset}` });
    assert.deepEqual(got, [4, 5]);
    assert.deepEqual(socket.ops, ['sub', 'unsub', 'sub'], 'one resync, on the same connection');
    const again = socket.last('sub');
    assert.deepEqual(again.since, { epoch: 'e1', offset: 5 });
    // Still in flight from the old subscription: not delivered.
    socket.reply({ op: 'msg', ch: 'room', offset: 10, data: 'm10' });
    socket.reply({ op: 'ok', id: socket.last('unsub').id });
    socket.reply({ op: 'ok', id: again.id, epoch: 'e1', offset: 10, recovered: true });
    for (const offset of [6, 7, 8, 9, 10, 11]) socket.reply({ op: 'msg', ch: 'room', offset, data: `m${offset}` });
    assert.deepEqual(got, [4, 5, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(
      events.map((e) => [e.recovered, e.first]),
      [
        [false, true],
        [true, false],
      ],
    );
    assert.equal(server.sockets.length, 1, 'the connection stayed');
    assert.deepEqual(states, ['subscribing', 'subscribed', 'resyncing', 'subscribed']);
    client.close();
  });

  test('a gap while the resubscription cannot be answered: the reconnect resubscribes from the position', async (t) => {
    mockTime(t);
    const { client, server } = start();
    server.last().accept();
    const channel = client.channel<string>('room');
    const got: number[] = [];
    const subscribed = channel.subscribe((_data, meta) => got.push(meta.offset));
    let socket = server.last();
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e1', offset: 0, recovered: false });
    await subscribed;
    socket.reply({ op: 'msg', ch: 'room', offset: 1, data: 'm1' });
    socket.reply({ op: 'msg', ch: 'room', offset: 3, data: 'm3' });
    socket.drop();
    await advance(t, BACKOFF);
    assert.equal(server.sockets.length, 2, 'the reconnect');
    socket = server.last();
    socket.accept();
    assert.deepEqual(socket.ops, ['sub']);
    assert.deepEqual(socket.last('sub').since, { epoch: 'e1', offset: 1 });
    socket.reply({ op: 'ok', id: socket.last('sub').id, epoch: 'e1', offset: 3, recovered: true });
    for (const offset of [2, 3]) socket.reply({ op: 'msg', ch: 'room', offset, data: `m${offset}` });
    assert.deepEqual(got, [1, 2, 3]);
    client.close();
  });
});

describe('history pages', () => {
  const page = (from: number, to: number): Array<{ offset: number; data: string }> =>
    Array.from({ length: to - from + 1 }, (_, i) => ({ offset: from + i, data: `m${from + i}` }));

  test('pages are followed back with before until limit messages are in; the result is oldest first', async () => {
    const { client, server } = start();
    server.last().accept();
    const socket = server.last();
    const read = client.channel<string>('room').history({ limit: 10 });
    assert.deepEqual(socket.last('history'), { op: 'history', id: socket.last('history').id, ch: 'room', limit: 10 });
    socket.reply({ op: 'ok', id: socket.last('history').id, epoch: 'e', messages: page(17, 20), more: true });
    await turn();
    assert.equal(socket.ops.length, 2, 'the second page');
    assert.deepEqual({ ...socket.last('history'), id: 0 }, { op: 'history', id: 0, ch: 'room', limit: 6, before: 17 });
    socket.reply({ op: 'ok', id: socket.last('history').id, epoch: 'e', messages: page(13, 16), more: true });
    await turn();
    assert.equal(socket.ops.length, 3, 'the third page');
    assert.deepEqual({ ...socket.last('history'), id: 0 }, { op: 'history', id: 0, ch: 'room', limit: 2, before: 13 });
    socket.reply({ op: 'ok', id: socket.last('history').id, epoch: 'e', messages: page(11, 12), more: true });
    const result = await read;
    assert.deepEqual(result, { epoch: 'e', messages: page(11, 20), more: true });
    assert.equal(socket.ops.length, 3, 'no page past the limit');
    client.close();
  });

  test('without a limit the server’s default is asked for; an answer without more ends the read (an older server)', async () => {
    const { client, server } = start();
    server.last().accept();
    const socket = server.last();
    const read = client.channel<string>('room').history({ before: 30 });
    assert.equal(socket.last('history').limit, 50);
    assert.equal(socket.last('history').before, 30);
    socket.reply({ op: 'ok', id: socket.last('history').id, epoch: 'e', messages: page(1, 3) });
    assert.deepEqual(await read, { epoch: 'e', messages: page(1, 3), more: false });
    client.close();
  });

  test('a new epoch between pages starts the read over; an epoch that keeps changing fails with internal', async () => {
    const { client, server } = start();
    server.last().accept();
    const socket = server.last();
    const answer = (epoch: string, messages: Array<{ offset: number; data: string }>, more: boolean): void =>
      socket.reply({ op: 'ok', id: socket.last('history').id, epoch, messages, more });
    const read = client.channel<string>('room').history({ limit: 4 });
    answer('e1', page(9, 10), true);
    await turn();
    assert.equal(socket.ops.length, 2, 'the second page');
    answer('e2', page(1, 2), false);
    await turn();
    assert.equal(socket.ops.length, 3, 'a read from the start');
    assert.equal(socket.last('history').before, undefined);
    assert.equal(socket.last('history').limit, 4);
    answer('e2', page(1, 2), false);
    assert.deepEqual(await read, { epoch: 'e2', messages: page(1, 2), more: false });

    const unstable = client.channel<string>('room').history({ limit: 4 });
    const failed = assert.rejects(unstable, isCode('internal'));
    for (let i = 0; i < 8; i++) {
      const sent: number = socket.ops.length;
      answer(`x${i}`, page(9, 10), true);
      await turn();
      if (i < 7) assert.equal(socket.ops.length, sent + 1, 'the next page');
    }
    await failed;
    client.close();
  });
});

describe('close() from inside a listener', () => {
  test('from a close listener: the client stays closed', async (t) => {
    mockTime(t);
    const { client, server, states } = start();
    client.on('close', () => client.close());
    server.last().accept();
    server.last().drop();
    await advance(t, LONG);
    const after = { state: client.state, sockets: server.sockets.length, states: [...states] };
    client.close();
    assert.deepEqual(after, { state: 'closed', sockets: 1, states: ['open', 'closed'] });
  });

  test('from a state listener on reconnecting: the client stays closed', async (t) => {
    mockTime(t);
    const { client, server } = start();
    client.on('state', (state) => {
      if (state === 'reconnecting') client.close();
    });
    server.last().accept();
    server.last().drop();
    await advance(t, LONG);
    const after = { state: client.state, sockets: server.sockets.length };
    // The revived attempt's connect timer outlives close() (the state already says closed):
    // open its socket so that close() can clean up.
    if (server.sockets.length > 1) server.last().accept();
    client.close();
    assert.deepEqual(after, { state: 'closed', sockets: 1 });
  });

  test('from a state listener on open: nothing is sent on the dead socket, nothing throws, no timer is left', async () => {
    // 1. A wanted channel: its sub goes to a socket that is gone.
    {
      const { client, server } = start({ pingInterval: 0, requestTimeout: 50 });
      client.on('state', (state) => {
        if (state === 'open') client.close();
      });
      client.channel('c').subscribe().catch(() => {});
      let thrown: unknown = null;
      try {
        server.last().accept();
      } catch (error) {
        thrown = error;
      }
      assert.equal(client.state, 'closed');
      assert.equal(thrown, null, `accept() threw: ${String(thrown)}`);
    }
    // 2. No channel: no heartbeat timer is armed for a closed client, and the connect
    // timer went with its connection: no timer is left.
    {
      const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
      const before = timers();
      const { client, server } = start({ pingInterval: 1000 });
      client.on('state', (state) => {
        if (state === 'open') client.close();
      });
      server.last().accept();
      assert.equal(client.state, 'closed');
      assert.equal(timers(), before, 'a timer is armed on a closed client');
    }
  });
});

