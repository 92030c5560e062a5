// The authentication patterns the README shows, each end to end over real sockets: a token
// in the Authorization header, in a cookie, in the query string, in the first message
// (the auth op) with expiry and refresh, and per-channel permissions.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WsClient from 'ws';
import { ChannelError } from '../src/channels/index.js';
import { connect, type HotlineClient } from '../src/client/index.js';
import { WebSocket } from '../src/node/client.js';
import type { UpgradeRequest } from '../src/node/server.js';
import type { ChannelsEndpointOptions } from '../src/server/channels.js';
import { ChannelsClient, withoutClient } from './support/channels-client.js';
import { startChannels, type ChannelsServer } from './support/channels-server.js';
import { waitFor } from './support/wait.js';

interface User {
  id: string;
  rooms: string[];
}

/** The application's token check: "token-<user>" is valid; users may use only their rooms. */
const USERS: Record<string, User> = {
  'token-ada': { id: 'ada', rooms: ['room:1', 'room:2'] },
  'token-lin': { id: 'lin', rooms: ['room:2'] },
};

function header(req: UpgradeRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const servers: Array<ChannelsServer<User | undefined>> = [];
const clients: HotlineClient[] = [];
after(async () => {
  for (const client of clients) client.close();
  for (const server of servers) await server.close();
});

/** A channel server with these options, closed after the file; resolves with its /ws URL. */
async function start(options: ChannelsEndpointOptions<User | undefined>): Promise<string> {
  const server = await startChannels<User | undefined>(options);
  servers.push(server);
  return server.url();
}

/** A raw hotline.v1 client (closed with its server). */

const rawClient = (url: string, headers: Record<string, string> = {}): Promise<ChannelsClient> => ChannelsClient.connect(url, { headers });

function refusedWith(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WsClient(url, 'hotline.v1', { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => {});
  });
}

describe('a token in the Authorization header (Node clients), checked before the upgrade', () => {
  const authenticate = (req: UpgradeRequest) => {
    const match = /^Bearer (.+)$/.exec(header(req, 'authorization') ?? '');
    if (match === null) return { reject: { status: 401, message: 'missing token', headers: { 'WWW-Authenticate': 'Bearer' } } };
    const user = USERS[match[1]!];
    if (user === undefined) return { reject: { status: 403, message: 'unknown token' } };
    return { auth: user, member: { id: user.id } };
  };

  test('no token: 401; a bad one: 403; a good one: connected, with its member in presence', async () => {
    const url = await start({ authenticate });
    assert.equal(await refusedWith(url), 401);
    assert.equal(await refusedWith(url, { authorization: 'Bearer nope' }), 403);
    const client = await rawClient(url, { authorization: 'Bearer token-ada' });
    assert.equal((await client.request('sub', { ch: 'room:1' })).op, 'ok');
    assert.deepEqual(withoutClient((await client.request('presence', { ch: 'room:1' })).members), [{ id: 'ada' }]);
    client.ws.close();
  });

  test("hotline's Node WebSocket sends it with the headers option", async () => {
    const url = await start({ authenticate });
    const ws = new WebSocket(url, 'hotline.v1', { headers: { authorization: 'Bearer token-lin' } });
    const [event] = (await once(ws, 'open')) as [Event];
    assert.equal(event.type, 'open');
    assert.equal(ws.protocol, 'hotline.v1');
    ws.close();
  });
});

describe('a token in a cookie or the query string (browsers)', () => {
  const authenticate = (req: UpgradeRequest) => {
    const cookie = /(?:^|;\s*)session=([^;]+)/.exec(header(req, 'cookie') ?? '')?.[1];
    const query = new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? undefined;
    const user = USERS[cookie ?? query ?? ''];
    return user === undefined ? { reject: { status: 401, message: 'not signed in' } } : { auth: user };
  };

  test('the session cookie a browser sends with the upgrade', async () => {
    const url = await start({ authenticate });
    assert.equal(await refusedWith(url, { cookie: 'other=1' }), 401);
    const client = await rawClient(url, { cookie: 'theme=dark; session=token-ada' });
    assert.equal((await client.request('ping')).op, 'pong');
    client.ws.close();
  });

  test('a token in the query string', async () => {
    const url = await start({ authenticate });
    assert.equal(await refusedWith(`${url}?token=nope`), 401);
    const client = await rawClient(`${url}?token=token-lin`);
    assert.equal((await client.request('ping')).op, 'pong');
    client.ws.close();
  });
});

describe('a token in the first message (the auth op), with expiry and refresh', () => {
  /** "token-<user>#n" is valid for `lifetime(user)` ms (600 for everyone by default). */
  const tokenCheck =
    (lifetime: (user: User) => number = () => 600) =>
    (token: string) => {
      const user = USERS[token.split('#')[0]!];
      if (user === undefined) throw new ChannelError('unauthorized', 'unknown token');
      return { auth: user, member: { id: user.id }, expiresAt: Date.now() + lifetime(user) };
    };
  const authenticateToken = tokenCheck();

  test('requests before auth are unauthorized; after it they work', async () => {
    const url = await start({ authenticateToken });
    const client = await rawClient(url);
    const refused = await client.request('sub', { ch: 'room:1' });
    assert.equal(refused.op, 'err');
    assert.equal(refused.code, 'unauthorized');
    assert.equal((await client.request('auth', { token: 'nope' })).code, 'unauthorized');
    const ok = await client.request('auth', { token: 'token-ada' });
    assert.equal(ok.op, 'ok');
    assert.equal(typeof ok.expiresAt, 'number');
    assert.equal((await client.request('sub', { ch: 'room:1' })).op, 'ok');
    client.ws.close();
  });

  test('expired credentials: subscriptions end, requests refused, then closed with 4401 after the grace period', async () => {
    const url = await start({ authenticateToken, authGrace: 300 });
    const client = await rawClient(url);
    await client.request('auth', { token: 'token-ada' });
    assert.equal((await client.request('sub', { ch: 'room:1' })).op, 'ok');
    // At expiry the server ends the subscription: the moment the credentials ran out.
    const ended = await client.waitFor((m) => m.op === 'unsub' && m.ch === 'room:1', 'the subscription to end at expiry');
    assert.equal(ended.code, 'unauthorized');
    const refused = await client.request('pub', { ch: 'room:1', data: 1 });
    assert.equal(refused.code, 'unauthorized');
    assert.match(String(refused.message), /expired/);
    assert.equal((await client.closed).code, 4401);
  });

  test('the SDK refreshes its token before expiry and keeps its subscriptions', async () => {
    const url = await start({ authenticateToken, authGrace: 300 });
    let issued = 0;
    const subscriber = connect(url, { WebSocket: WebSocket as never, token: () => `token-ada#${issued++}` });
    const publisher = connect(url, { WebSocket: WebSocket as never, token: () => 'token-lin' });
    clients.push(subscriber, publisher);
    const received: number[] = [];
    await subscriber.channel<number>('room:2').subscribe((n) => received.push(n));
    await publisher.channel<number>('room:2').publish(1);
    // Three refreshes: the first token (600 ms) and the grace (300 ms) are long over by the
    // third, so only refreshes keep the subscriber (and the publisher) going.
    await waitFor(() => issued >= 4, 'three refreshes');
    await publisher.channel<number>('room:2').publish(2);
    await waitFor(() => received.length === 2, 'the message after the refreshes');
    assert.deepEqual(received, [1, 2]);
    assert.equal(subscriber.state, 'open');
  });
  /** Ada's tokens last 600 ms; Lin's, the publisher's, long enough for any test. */
  const shortForAda = tokenCheck((user) => (user.id === 'ada' ? 600 : 60_000));

  test('a refresh answered after expiry: the SDK authenticates again, and the subscription recovers what was published meanwhile', async () => {
    const url = await start({ authenticateToken: shortForAda, authGrace: 60_000 });
    // The first token at once; every refresh is held until the test lets it go, as a slow
    // token service (or a timer held up by a busy host) would.
    const held: Array<() => void> = [];
    let issued = 0;
    const token = async (): Promise<string> => {
      const n = issued++;
      if (n > 0) await new Promise<void>((resolve) => held.push(resolve));
      return `token-ada#${n}`;
    };
    const subscriber = connect(url, { WebSocket: WebSocket as never, token });
    const publisher = connect(url, { WebSocket: WebSocket as never, token: 'token-lin' });
    clients.push(subscriber, publisher);
    const channel = subscriber.channel<string>('room:2');
    const received: string[] = [];
    const states: string[] = [];
    const subscribed: boolean[] = [];
    channel.on('state', (state) => states.push(state));
    channel.on('subscribed', (event) => subscribed.push(event.recovered));
    await channel.subscribe((text) => received.push(text));
    await publisher.channel<string>('room:2').publish('before');
    // The credentials expire with the refresh still held: the server ends the subscription.
    await waitFor(() => channel.state === 'waiting', 'the subscription ended at expiry, waiting for a fresh token');
    await publisher.channel<string>('room:2').publish('meanwhile');
    for (const release of held.splice(0)) release();
    await waitFor(() => received.length === 2, 'the message published meanwhile, recovered');
    await publisher.channel<string>('room:2').publish('after');
    await waitFor(() => received.length === 3, 'the message after');
    assert.deepEqual(received, ['before', 'meanwhile', 'after']);
    assert.deepEqual(states.slice(states.indexOf('subscribed')), ['subscribed', 'waiting', 'subscribing', 'subscribed']);
    assert.deepEqual(subscribed, [false, true], 'the second subscription recovered');
    assert.equal(subscriber.state, 'open');
    subscriber.close();
  });

  test('no fresh token to be had after expiry: the channel ends with an error, the connection stays', async () => {
    const url = await start({ authenticateToken: shortForAda, authGrace: 60_000 });
    let issued = 0;
    const token = async (): Promise<string> => {
      if (issued++ > 0) throw new Error('the token service is down');
      return 'token-ada#0';
    };
    const subscriber = connect(url, { WebSocket: WebSocket as never, token });
    clients.push(subscriber);
    const channel = subscriber.channel<string>('room:2');
    const errors: Error[] = [];
    channel.on('error', (error) => errors.push(error));
    await channel.subscribe(() => {});
    await waitFor(() => channel.state === 'errored', 'the channel to end');
    assert.match(errors[0]!.message, /could not get a fresh token: the token service is down/);
    assert.equal(subscriber.state, 'open');
    subscriber.close();
  });
});

describe('per-channel permissions', () => {
  test('canSubscribe and canPublish decide per channel: forbidden otherwise', async () => {
    const url = await start({
      authenticate: (req) => {
        const user = USERS[header(req, 'authorization') ?? ''];
        return user === undefined ? { reject: { status: 401 } } : { auth: user };
      },
      canSubscribe: ({ auth }, channel) => auth?.rooms.includes(channel) ?? false,
      canPublish: ({ auth }, channel) => auth?.rooms.includes(channel) ?? false,
    });
    const lin = await rawClient(url, { authorization: 'token-lin' });
    assert.equal((await lin.request('sub', { ch: 'room:2' })).op, 'ok');
    const refused = await lin.request('sub', { ch: 'room:1' });
    assert.equal(refused.code, 'forbidden');
    assert.equal((await lin.request('pub', { ch: 'room:1', data: 'hi' })).code, 'forbidden');
    assert.equal((await lin.request('history', { ch: 'room:1' })).code, 'forbidden');
    lin.ws.close();
  });
});
