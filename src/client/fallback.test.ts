// The client's choice of transport on mocked timers, with fake WebSockets that never open
// (or open when told) and a fake fetch that serves an HTTP session: when it falls back
// (`fallback.after` attempts that did not open within `fallback.timeout`), that a WebSocket-only
// client never fetches, and that a WebSocket that opens while on the session takes over only
// when no request is in flight. test/sse-fallback*.test.ts run the same against real servers.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientOptions, type Transport } from './client.js';
import type { HotlineError } from './errors.js';
import type { WebSocketLike } from './connection.js';
import type { FetchLike } from './http-session.js';

class NeverOpens implements WebSocketLike {
  static made: NeverOpens[] = [];
  readyState = 0;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  readonly sent: string[] = [];
  constructor() {
    NeverOpens.made.push(this);
  }
  send(text: string): void {
    this.sent.push(text);
  }
  close(): void {
    this.readyState = 3;
  }
  accept(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  /** Refused with an HTTP status, as hotline's Node WebSocket reports it (browsers never do). */
  refuse(status: number): void {
    this.readyState = 3;
    this.onerror?.({ error: Object.assign(new Error(`refused with ${status}`), { status }) });
    this.onclose?.({ code: 1006, reason: '' });
  }
}

/** A server's side of HTTP sessions: each GET a stream that opens at once; POSTed requests recorded. */
function fakeSessions(): { fetch: FetchLike; gets: number; posts: string[]; push(text: string): void } {
  const encoder = new TextEncoder();
  let feed: ((chunk: string) => void) | null = null;
  const state = {
    gets: 0,
    posts: [] as string[],
    push(text: string) {
      feed?.(`data: ${text}\n\n`);
    },
    fetch: (async (_url, init) => {
      if (init.method === 'POST') {
        state.posts.push(...(init.body ?? '').split('\n'));
        return { ok: true, status: 204, body: null, text: async () => '' };
      }
      state.gets++;
      const chunks: string[] = [`event: session\ndata: {"session":"s${state.gets}","client":"n.h0"}\n\n`];
      let wake: (() => void) | null = null;
      feed = (chunk) => {
        chunks.push(chunk);
        wake?.();
      };
      init.signal.addEventListener('abort', () => wake?.());
      return {
        ok: true,
        status: 200,
        text: async () => '',
        body: {
          getReader: () => ({
            read: async () => {
              while (chunks.length === 0 && !init.signal.aborted) await new Promise<void>((resolve) => (wake = resolve));
              if (init.signal.aborted) return { done: true };
              return { done: false, value: encoder.encode(chunks.shift()!) };
            },
          }),
        },
      };
    }) as FetchLike,
  };
  return state;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function advance(t: TestContext, ms: number): Promise<void> {
  t.mock.timers.tick(ms);
  for (let i = 0; i < 5; i++) await turn();
}

function start(t: TestContext, options: ClientOptions) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  t.mock.method(Math, 'random', () => 0.9999);
  NeverOpens.made = [];
  const sessions = fakeSessions();
  const transports: Array<Transport | null> = [];
  const client = connect('ws://fake.test/ws', {
    WebSocket: NeverOpens,
    fetch: sessions.fetch,
    reconnect: { initial: 20, max: 20 },
    pingInterval: 0,
    transports: ['websocket', 'sse'],
    ...options,
  });
  client.on('state', (_state, transport) => transports.push(transport));
  const errors: HotlineError[] = [];
  client.on('error', (error) => errors.push(error));
  t.after(() => client.close());
  return { client, sessions, transports, errors };
}

test('two WebSocket attempts that do not open within fallback.timeout: the third attempt is the HTTP session', async (t) => {
  const { client, sessions } = start(t, { fallback: { timeout: 1_000 } });
  assert.equal(NeverOpens.made.length, 1);
  await advance(t, 999);
  assert.equal(client.state, 'connecting', 'not given up before the timeout');
  await advance(t, 1);
  await advance(t, 20);
  assert.equal(NeverOpens.made.length, 2, 'the second WebSocket attempt');
  assert.equal(sessions.gets, 0);
  await advance(t, 1_000);
  await advance(t, 20);
  assert.equal(NeverOpens.made.length, 2, 'no third WebSocket');
  assert.equal(sessions.gets, 1);
  assert.equal(client.state, 'open');
  assert.equal(client.transport, 'sse');
});

test('fallback.after: 1 falls back after one attempt; the timeout is connectTimeout when that is shorter', async (t) => {
  const { client, sessions } = start(t, { fallback: { after: 1, timeout: 5_000 }, connectTimeout: 300 });
  await advance(t, 300);
  await advance(t, 20);
  assert.equal(sessions.gets, 1);
  assert.equal(client.transport, 'sse');
});

test('a session that does not open either: WebSockets again, then the session, in turn', async (t) => {
  let gets = 0;
  const failing: FetchLike = async () => {
    gets++;
    return { ok: false, status: 502, body: null, text: async () => 'bad gateway' };
  };
  const { client } = start(t, { fetch: failing, fallback: { after: 1, timeout: 100 } });
  for (let i = 0; i < 100 && gets < 3; i++) await advance(t, 10);
  assert.equal(gets, 3);
  assert.equal(NeverOpens.made.length, 3, 'one WebSocket attempt before each session attempt');
  assert.equal(client.state, 'reconnecting');
});

test("transports: ['websocket'] never fetches, however many attempts fail", async (t) => {
  const { sessions } = start(t, { transports: ['websocket'], connectTimeout: 100 });
  for (let i = 0; i < 60; i++) await advance(t, 20);
  assert.ok(NeverOpens.made.length >= 5);
  assert.equal(sessions.gets, 0);
});

test('a WebSocket that opens while a request is in flight waits; once none is, it takes over and the channel resubscribes from its offset', async (t) => {
  const { client, sessions, transports } = start(t, { transports: ['websocket', 'sse'], fallback: { after: 1, timeout: 100, upgradeInterval: 500 } });
  await advance(t, 100);
  await advance(t, 20);
  assert.equal(client.transport, 'sse');
  const channel = client.channel('room');
  const got: number[] = [];
  channel.on('message', (_data, meta) => got.push(meta.offset));
  void channel.subscribe();
  await advance(t, 0);
  const sub = JSON.parse(sessions.posts.at(-1)!) as { id: number };
  sessions.push(JSON.stringify({ op: 'ok', id: sub.id, epoch: 'e', offset: 4, recovered: false }));
  sessions.push(JSON.stringify({ op: 'msg', ch: 'room', offset: 5, data: 1 }));
  await advance(t, 0);
  assert.deepEqual(got, [5]);

  // A publish in flight when the probe opens: the probe is let go.
  const publish = channel.publish(2);
  await advance(t, 0);
  await advance(t, 500);
  const probe = NeverOpens.made.at(-1)!;
  probe.accept();
  await advance(t, 0);
  assert.equal(client.transport, 'sse', 'not while the publish waits for its answer');
  const pub = JSON.parse(sessions.posts.at(-1)!) as { id: number };
  sessions.push(JSON.stringify({ op: 'ok', id: pub.id, offset: 6, delivered: 1 }));
  sessions.push(JSON.stringify({ op: 'msg', ch: 'room', offset: 6, data: 2 }));
  await publish;
  await advance(t, 1_000);
  const next = NeverOpens.made.at(-1)!;
  assert.notEqual(next, probe);
  next.accept();
  await advance(t, 0);
  assert.equal(client.transport, 'websocket');
  assert.deepEqual(transports.slice(-2), ['sse', 'websocket']);
  // The channel asks the WebSocket for what came after the last offset it delivered.
  const resub = next.sent.map((text) => JSON.parse(text) as { op: string; since?: { offset: number } }).find((r) => r.op === 'sub');
  assert.deepEqual(resub?.since, { epoch: 'e', offset: 6 });
  assert.deepEqual(got, [5, 6]);
});

/** A fetch whose every answer is `status`, counting its requests. */
function answering(status: number): { fetch: FetchLike; gets: number } {
  const state = {
    gets: 0,
    fetch: (async () => {
      state.gets++;
      return { ok: false, status, body: null, text: async () => 'no' };
    }) as FetchLike,
  };
  return state;
}

test('the default transports fall back: no transports option, two WebSockets that do not open, then the session', async (t) => {
  const { client, sessions } = start(t, { transports: undefined, fallback: { timeout: 1_000 } });
  for (let i = 0; i < 2; i++) {
    await advance(t, 1_000);
    await advance(t, 20);
  }
  assert.equal(NeverOpens.made.length, 2);
  assert.equal(sessions.gets, 1);
  assert.equal(client.transport, 'sse');
});

for (const [status, code] of [
  [401, 'unauthorized'],
  [403, 'forbidden'],
] as const) {
  test(`an upgrade refused with ${status} (the status seen): no session, the same error and end as without a fallback`, async (t) => {
    const { client, sessions, errors } = start(t, { transports: undefined });
    NeverOpens.made[0]!.refuse(status);
    await advance(t, 0);
    assert.equal(client.state, 'closed');
    assert.deepEqual(
      errors.map((e) => [e.code, e.status]),
      [[code, status]],
    );
    await advance(t, 60_000);
    assert.equal(sessions.gets, 0);
    assert.equal(NeverOpens.made.length, 1);
  });
}

test('an upgrade refused with 503 or 429: retried as a WebSocket with backoff, never the session', async (t) => {
  const { client, sessions, errors } = start(t, { transports: undefined });
  for (const status of [503, 429, 503, 429]) {
    NeverOpens.made.at(-1)!.refuse(status);
    await advance(t, 20);
  }
  assert.equal(NeverOpens.made.length, 5);
  assert.equal(sessions.gets, 0);
  assert.deepEqual(
    errors.map((e) => e.status),
    [503, 429, 503, 429],
  );
  assert.equal(client.state, 'reconnecting');
});

test('an upgrade answered 426 (a proxy dropped the Upgrade headers): the session at once', async (t) => {
  const { client, sessions } = start(t, { transports: undefined });
  NeverOpens.made[0]!.refuse(426);
  await advance(t, 20);
  assert.equal(NeverOpens.made.length, 1);
  assert.equal(sessions.gets, 1);
  assert.equal(client.transport, 'sse');
});

test('an upgrade answered 404 (a proxy that routes /sse and not /ws): the session at once; the error keeps its status', async (t) => {
  const { client, sessions, errors } = start(t, { transports: undefined });
  NeverOpens.made[0]!.refuse(404);
  await advance(t, 20);
  assert.equal(NeverOpens.made.length, 1);
  assert.equal(sessions.gets, 1);
  assert.equal(client.transport, 'sse');
  assert.deepEqual(
    errors.map((e) => [e.code, e.status]),
    [['connect_failed', 404]],
  );
});

for (const status of [404, 405]) {
  test(`a server without the session (${status}): not reported, WebSockets with their backoff from then on, the session tried again once a WebSocket opened`, async (t) => {
    const none = answering(status);
    const { client, errors } = start(t, { transports: undefined, fetch: none.fetch, fallback: { timeout: 100 } });
    for (let i = 0; i < 100 && NeverOpens.made.length < 8; i++) await advance(t, 20);
    assert.equal(none.gets, 1, 'the session once');
    assert.equal(NeverOpens.made.length, 8);
    assert.ok(errors.length >= 7 && errors.every((e) => e.code === 'connect_failed' && !e.message.includes(String(status))), 'only the WebSockets\' failures are reported');
    assert.equal(client.state, 'reconnecting');
    // A WebSocket opens and drops: two failures later the session is tried again.
    const attempts = NeverOpens.made.length;
    for (let i = 0; i < 50 && NeverOpens.made.length === attempts; i++) await advance(t, 20);
    NeverOpens.made.at(-1)!.accept();
    await advance(t, 0);
    assert.equal(client.state, 'open');
    NeverOpens.made.at(-1)!.onclose?.({ code: 1006, reason: '' });
    for (let i = 0; i < 100 && none.gets < 2; i++) await advance(t, 20);
    assert.equal(none.gets, 2);
  });
}

test('a session refused with 401 after WebSockets that failed without a status (a browser): the auth error once, closed, nothing more', async (t) => {
  const refusing = answering(401);
  const { client, errors } = start(t, { transports: undefined, fetch: refusing.fetch, fallback: { timeout: 100 } });
  for (let i = 0; i < 50 && client.state !== 'closed'; i++) await advance(t, 20);
  assert.equal(client.state, 'closed');
  assert.deepEqual(
    errors.map((e) => [e.code, e.status]),
    [
      ['connect_failed', undefined],
      ['connect_failed', undefined],
      ['unauthorized', 401],
    ],
  );
  await advance(t, 60_000);
  assert.equal(refusing.gets, 1);
  assert.equal(NeverOpens.made.length, 2);
});

test('WebSockets that failed without a word (a server restarting looks the same): a WebSocket is tried 1 s after the session opened, and takes over', async (t) => {
  const { client, sessions } = start(t, { transports: undefined, fallback: { timeout: 100 } });
  for (let i = 0; i < 20 && sessions.gets === 0; i++) await advance(t, 20);
  assert.equal(client.transport, 'sse');
  const made = NeverOpens.made.length;
  await advance(t, 999);
  assert.equal(NeverOpens.made.length, made, 'not before 1 s');
  await advance(t, 1);
  assert.equal(NeverOpens.made.length, made + 1);
  NeverOpens.made.at(-1)!.accept();
  await advance(t, 0);
  assert.equal(client.transport, 'websocket');
});

test('a WebSocket proved blocked (426): the next try waits the whole upgradeInterval', async (t) => {
  const { client } = start(t, { transports: undefined, fallback: { upgradeInterval: 10_000 } });
  NeverOpens.made[0]!.refuse(426);
  await advance(t, 20);
  assert.equal(client.transport, 'sse');
  await advance(t, 9_999);
  assert.equal(NeverOpens.made.length, 1);
  await advance(t, 1);
  assert.equal(NeverOpens.made.length, 2);
});
