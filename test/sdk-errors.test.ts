// What the SDK tells its user when it cannot get in, against real servers that refuse the
// upgrade: the `error` event with the HTTP status (hotline's Node WebSocket reveals it),
// no more retries after 401/403 unless a token function can refresh the credentials (once),
// retries for other statuses, and what a WebSocket that hides the status (as browsers do)
// leads to.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WsClient from 'ws';
import { ChannelError } from '../src/channels/index.js';
import { connect, HotlineError, type ClientOptions, type HotlineClient, type WebSocketConstructorLike } from '../src/client/index.js';
import { WebSocket } from '../src/node/client.js';
import type { UpgradeRejection, UpgradeRequest } from '../src/node/server.js';
import { channelsEndpoint, type ChannelsEndpointOptions } from '../src/server/channels.js';
import { serve, type RunningServer } from '../src/server/serve.js';
import { sessionRoutes } from './support/session-routes.js';

const servers: RunningServer[] = [];
const clients: HotlineClient[] = [];
after(async () => {
  for (const client of clients) client.close();
  for (const server of servers) await server.close();
});

/** A channel endpoint whose `authenticate` sees every upgrade: `seen` holds each one's `?token=`. */
async function start(
  decide: (token: string | null) => UpgradeRejection | null,
  options: ChannelsEndpointOptions<undefined> = {},
): Promise<{ url: string; seen: Array<string | null>; server: RunningServer }> {
  const seen: Array<string | null> = [];
  const endpoint = channelsEndpoint({
    ...options,
    authenticate(req: UpgradeRequest) {
      const token = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
      seen.push(token);
      const reject = decide(token);
      return reject === null ? { auth: undefined } : { reject };
    },
  });
  await endpoint.ready;
  const server = await serve({ port: 0, websocket: { '/ws': endpoint.server } });
  servers.push(server);
  return { url: `ws://127.0.0.1:${server.port}/ws`, seen, server };
}

interface Watched {
  client: HotlineClient;
  errors: HotlineError[];
  closes: Array<{ code: number; willRetry: boolean }>;
  /** Resolves once the client's state is `state`. */
  reaches(state: HotlineClient['state']): Promise<void>;
  /** Resolves once `n` errors were emitted. */
  errored(n: number): Promise<void>;
}

function watch(url: string, options: ClientOptions = {}): Watched {
  const client = connect(url, { WebSocket, reconnect: { initial: 20, max: 50 }, ...options });
  clients.push(client);
  const errors: HotlineError[] = [];
  const closes: Watched['closes'] = [];
  const wake = new Set<() => void>();
  const poke = (): void => {
    for (const check of [...wake]) check();
  };
  client.on('error', (error) => {
    errors.push(error);
    poke();
  });
  client.on('close', ({ code, willRetry }) => {
    closes.push({ code, willRetry });
    poke();
  });
  client.on('state', poke);
  const until = (done: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (!done()) return;
        wake.delete(check);
        resolve();
      };
      wake.add(check);
      check();
    });
  return {
    client,
    errors,
    closes,
    reaches: (state) => until(() => client.state === state),
    errored: (n) => until(() => errors.length >= n),
  };
}

const UNAUTHORIZED: UpgradeRejection = { status: 401, message: 'no token', headers: { 'WWW-Authenticate': 'Bearer' } };
const FORBIDDEN: UpgradeRejection = { status: 403, message: 'not yours' };

describe('an upgrade refused with 401 or 403: the client says so and stops', () => {
  for (const [rejection, code] of [
    [UNAUTHORIZED, 'unauthorized'],
    [FORBIDDEN, 'forbidden'],
  ] as const) {
    test(`${rejection.status}: an error event with the status, a close without retry, and waiting requests fail with it`, async () => {
      const server = await start(() => rejection);
      const watched = watch(server.url);
      const channel = watched.client.channel('room:1');
      const subscribed = channel.subscribe(() => {});
      await watched.reaches('closed');
      assert.equal(watched.errors.length, 1);
      const [error] = watched.errors;
      assert.ok(error instanceof HotlineError);
      assert.equal(error.code, code);
      assert.equal(error.status, rejection.status);
      assert.equal(error.message, `the server refused the connection with HTTP ${rejection.status}`);
      assert.deepEqual(watched.closes, [{ code: 1006, willRetry: false }]);
      // One attempt: the client is closed, so it holds no timer that could try again.
      assert.equal(server.seen.length, 1);
      await assert.rejects(subscribed, (e: unknown) => e instanceof HotlineError && e.code === code && e.status === rejection.status);
      assert.equal(channel.state, 'unsubscribed');
    });
  }

  test('a static token is no refresher: one attempt', async () => {
    const server = await start((token) => (token === 'good' ? null : UNAUTHORIZED));
    const watched = watch(server.url, { token: 'stale', tokenParam: 'token' });
    await watched.reaches('closed');
    assert.deepEqual(server.seen, ['stale']);
    assert.equal(watched.errors[0]?.status, 401);
  });
});

describe('with a token function: refreshed once, then retried at once', () => {
  test('a stale token refused with 401, the fresh one gets in, and the channel works', async () => {
    const server = await start((token) => (token?.startsWith('fresh') ? null : UNAUTHORIZED));
    const issued: string[] = [];
    const watched = watch(server.url, {
      tokenParam: 'token',
      token: () => {
        const token = issued.length === 0 ? 'stale' : `fresh-${issued.length}`;
        issued.push(token);
        return token;
      },
    });
    const channel = watched.client.channel<{ n: number }>('room:1');
    const got = new Promise<number>((resolve) => void channel.subscribe((message) => resolve(message.n)));
    await watched.reaches('open');
    await channel.publish({ n: 7 });
    assert.equal(await got, 7);
    assert.deepEqual(issued, ['stale', 'fresh-1'], 'the function was called once more: the refresh');
    assert.deepEqual(server.seen, ['stale', 'fresh-1'], 'the retry carried the fresh token');
    assert.equal(watched.errors.length, 1);
    assert.equal(watched.errors[0]!.status, 401);
    assert.deepEqual(watched.closes, [{ code: 1006, willRetry: true }]);
  });

  test('refused again after the refresh: the client stops after two attempts', async () => {
    const server = await start(() => FORBIDDEN);
    let calls = 0;
    const watched = watch(server.url, { tokenParam: 'token', token: () => `t${++calls}` });
    await watched.reaches('closed');
    assert.deepEqual(server.seen, ['t1', 't2']);
    assert.deepEqual(
      watched.errors.map((e) => [e.code, e.status]),
      [
        ['forbidden', 403],
        ['forbidden', 403],
      ],
    );
    assert.deepEqual(watched.closes, [
      { code: 1006, willRetry: true },
      { code: 1006, willRetry: false },
    ]);
  });

  test('a refresh is allowed again once a connection opened: each refusal streak gets one', async () => {
    // Refuses every other upgrade: an open connection resets the allowance.
    let upgrades = 0;
    const server = await start(() => (upgrades++ % 2 === 0 ? UNAUTHORIZED : null));
    const watched = watch(server.url, { tokenParam: 'token', token: () => 'any' });
    await watched.reaches('open');
    // The server drops it: the next upgrade is refused, refreshed, and accepted again.
    for (const endpoint of server.server.endpoints.values()) endpoint.terminateAll();
    await watched.errored(2);
    await watched.reaches('open');
    assert.equal(server.seen.length, 4);
    assert.deepEqual(
      watched.closes.map((c) => c.willRetry),
      [true, true, true],
    );
  });
});

describe('other refusals and failures: reported, and retried with backoff', () => {
  test('503: connect_failed with the status, and the client tries again', async () => {
    let refusals = 0;
    const server = await start(() => (refusals++ < 2 ? { status: 503, message: 'busy', headers: { 'Retry-After': '1' } } : null));
    const watched = watch(server.url);
    await watched.reaches('open');
    assert.deepEqual(
      watched.errors.map((e) => [e.code, e.status]),
      [
        ['connect_failed', 503],
        ['connect_failed', 503],
      ],
    );
    assert.equal(server.seen.length, 3);
  });

  test('nothing listening: connect_failed without a status, naming the cause; retried', async () => {
    const { url, server } = await start(() => null);
    await server.close();
    const watched = watch(url);
    await watched.errored(2);
    assert.equal(watched.client.state, 'reconnecting');
    assert.equal(watched.errors[0]!.code, 'connect_failed');
    assert.equal(watched.errors[0]!.status, undefined);
    assert.match(watched.errors[0]!.message, /^could not connect: .*ECONNREFUSED/);
    watched.client.close();
  });

  test('a WebSocket that hides the status, as browsers do: connect_failed, retried even on 401', async () => {
    // The `ws` package's client, seen through its browser-style event handlers: its error
    // event carries no status (browsers' carry nothing at all).
    let upgrades = 0;
    const server = await start(() => (upgrades++ < 2 ? UNAUTHORIZED : null));
    const watched = watch(server.url, { WebSocket: WsClient as unknown as WebSocketConstructorLike });
    await watched.reaches('open');
    assert.equal(server.seen.length, 3);
    assert.deepEqual(
      watched.errors.map((e) => [e.code, e.status]),
      [
        ['connect_failed', undefined],
        ['connect_failed', undefined],
      ],
    );
  });
});

describe('a server that refuses the credentials with 401 on the upgrade and on the HTTP session (the default transports)', () => {
  /** One endpoint behind both paths: every upgrade and every session GET refused with 401, each counted. */
  async function refusingBoth(): Promise<{ url: string; upgrades: string[]; sessionGets: number; routes: ReturnType<typeof sessionRoutes> }> {
    const state = { url: '', upgrades: [] as string[], sessionGets: 0, routes: null as unknown as ReturnType<typeof sessionRoutes> };
    const endpoint = channelsEndpoint({
      authenticate(req: UpgradeRequest) {
        // The session's GET comes here as the upgrade does: told apart by its path.
        if ((req.url ?? '').startsWith('/sse/session')) state.sessionGets++;
        else state.upgrades.push(req.url ?? '');
        return { reject: UNAUTHORIZED };
      },
    });
    await endpoint.ready;
    state.routes = sessionRoutes(endpoint);
    const server = await serve({ port: 0, websocket: { '/ws': endpoint.server }, request: state.routes.request });
    servers.push(server);
    state.url = `ws://127.0.0.1:${server.port}/ws`;
    return state;
  }

  test("hotline's Node WebSocket sees the 401: the auth error once, closed after one upgrade, the session never asked", async () => {
    const server = await refusingBoth();
    const watched = watch(server.url);
    await watched.reaches('closed');
    assert.deepEqual(
      watched.errors.map((e) => [e.code, e.status]),
      [['unauthorized', 401]],
    );
    assert.deepEqual(watched.closes, [{ code: 1006, willRetry: false }]);
    assert.equal(server.upgrades.length, 1);
    assert.equal(server.sessionGets, 0);
    server.routes.close();
  });

  test('a WebSocket that hides the status (as browsers do): two upgrades, one session GET whose 401 ends it, once', async () => {
    const server = await refusingBoth();
    const watched = watch(server.url, { WebSocket: WsClient as unknown as WebSocketConstructorLike });
    await watched.reaches('closed');
    assert.deepEqual(
      watched.errors.map((e) => [e.code, e.status]),
      [
        ['connect_failed', undefined],
        ['connect_failed', undefined],
        ['unauthorized', 401],
      ],
    );
    assert.deepEqual(
      watched.closes.map((c) => c.willRetry),
      [true, true, false],
    );
    assert.equal(server.upgrades.length, 2);
    assert.equal(server.sessionGets, 1);
    server.routes.close();
  });

  test('with a token function: refreshed once, the fresh token refused too, and no more requests', async () => {
    const server = await refusingBoth();
    let calls = 0;
    const watched = watch(server.url, { tokenParam: 'token', token: () => `t${++calls}` });
    await watched.reaches('closed');
    assert.deepEqual(server.upgrades, ['/ws?token=t1', '/ws?token=t2']);
    assert.equal(server.sessionGets, 0);
    assert.deepEqual(
      watched.errors.map((e) => e.code),
      ['unauthorized', 'unauthorized'],
    );
    server.routes.close();
  });
});

test('a token refused over the connection (the auth message): an error event, and the client closes', async () => {
  const endpoint = channelsEndpoint({
    authenticateToken(token) {
      throw new ChannelError('unauthorized', `unknown token ${token}`);
    },
  });
  await endpoint.ready;
  const server = await serve({ port: 0, websocket: { '/ws': endpoint.server } });
  servers.push(server);
  const watched = watch(`ws://127.0.0.1:${server.port}/ws`, { token: 'nope' });
  await watched.reaches('closed');
  assert.deepEqual(
    watched.errors.map((e) => [e.code, e.status, e.message]),
    [['unauthorized', undefined, 'authentication failed: unknown token nope']],
  );
});
