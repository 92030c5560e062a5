// The client's choice of transport on mocked timers, with fake WebSockets that never open
// (or open when told) and a fake fetch that serves an HTTP session: when it falls back
// (`fallback.after` attempts that did not open within `fallback.timeout`), that a WebSocket-only
// client never fetches, and that a WebSocket that opens while on the session takes over only
// when no request is in flight. test/sse-fallback*.test.ts run the same against real servers.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientOptions, type Transport } from './client.js';
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
  t.after(() => client.close());
  return { client, sessions, transports };
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
