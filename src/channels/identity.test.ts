// Who a connection is, and until when: an `auth` as another identity, a refresh, and the
// expiry of credentials (subscriptions end, then the connection closes with 4401).
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelError } from './channel-error.js';
import type { ChannelHubOptions, ChannelIdentity } from './hub-options.js';
import { settle, withRig, type Auth, type Rig } from '../../test/support/hub-rig.js';

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
      const client = rig.client(null);
      const publisher = rig.client('p');
      const watcher = rig.client('w');
      await rig.ok(client, 'auth', { token: 'alice' });
      await rig.ok(client, 'sub', { ch: 'alice:inbox' });
      await rig.ok(client, 'sub', { ch: 'lobby' });
      await rig.ok(watcher, 'sub', { ch: 'lobby' });
      await rig.ok(publisher, 'pub', { ch: 'alice:inbox', data: 'before' });
      assert.deepEqual(client.data('alice:inbox'), ['before']);

      const answer = await rig.ok(client, 'auth', { token: 'bob' });
      const push = client.log.find((m) => m.op === 'unsub');
      assert.deepEqual(push, { op: 'unsub', ch: 'alice:inbox', code: 'forbidden', message: 'no longer allowed to read alice:inbox' });
      assert.ok(client.log.indexOf(push!) < client.log.indexOf(answer), 'told before the auth is answered');
      await rig.ok(publisher, 'pub', { ch: 'alice:inbox', data: 'after' });
      await rig.ok(publisher, 'pub', { ch: 'lobby', data: 'still' });
      assert.deepEqual(client.data('alice:inbox'), ['before'], 'nothing after the switch');
      assert.deepEqual(client.data('lobby'), ['still'], 'a channel bob may read stays');
      assert.deepEqual(ids((await rig.ok(watcher, 'presence', { ch: 'lobby' })).members), ['w', 'bob']);
      assert.deepEqual(await rig.engine.members('alice:inbox'), [], 'alice left the channel she may no longer read');
      const events = watcher.log.filter((m) => m.op === 'join' || m.op === 'leave').map((m) => [m.op, m.member?.['id']]);
      assert.deepEqual(events, [
        ['join', 'w'],
        ['leave', 'alice'],
        ['join', 'bob'],
      ]);
      // Later subscriptions announce the new member too.
      await rig.ok(client, 'sub', { ch: 'hall' });
      assert.deepEqual(ids((await rig.ok(watcher, 'presence', { ch: 'hall' })).members), ['bob']);
      assert.equal((await rig.request(client, 'sub', { ch: 'alice:inbox' })).code, 'forbidden');
    });
  });

  test('a refresh as the same identity keeps every subscription and announces nothing', async () => {
    await withRig({ authenticateToken: tokenHook, canSubscribe: onlyAlice }, async (rig) => {
      const client = rig.client(null);
      const watcher = rig.client('w');
      await rig.ok(watcher, 'sub', { ch: 'lobby' });
      await rig.ok(client, 'auth', { token: 'alice' });
      await rig.ok(client, 'sub', { ch: 'alice:inbox' });
      await rig.ok(client, 'sub', { ch: 'lobby' });
      const joins = watcher.log.length;
      await rig.ok(client, 'auth', { token: 'alice' });
      assert.equal(client.log.filter((m) => m.op === 'unsub').length, 0);
      assert.deepEqual(watcher.log.slice(joins), [], 'no leave or join');
      await rig.ok(watcher, 'pub', { ch: 'alice:inbox', data: 1 });
      assert.deepEqual(client.data('alice:inbox'), [1]);
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
        const client = rig.client(null);
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

/** Runs `body` on a hub whose clock and timers the test moves, from 1_000_000 ms. */
function withMockedTime(t: TestContext, options: ChannelHubOptions<Auth>, body: (rig: Rig) => Promise<void>): Promise<void> {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  return withRig(options, body, 'date');
}

describe('expiry', () => {
  test('at expiresAt the subscriptions end (unsub push, presence leave, no delivery); after the grace, 4401', async (t) => {
    await withMockedTime(
      t,
      { authenticateToken: tokenHook, authGrace: 5_000 },
      async (rig) => {
        const client = rig.client(null);
        const publisher = rig.client('p');
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
        assert.deepEqual(client.data('room'), []);
        assert.equal((await rig.request(client, 'sub', { ch: 'room' })).code, 'unauthorized');
        assert.equal(client.closedWith, null, 'the grace period delays the close');
        t.mock.timers.tick(5_000);
        assert.equal(client.closeCode(), 4401);
      },
    );
  });

  test('re-authenticating within the grace keeps the connection; it subscribes again', async (t) => {
    await withMockedTime(
      t,
      { authenticateToken: tokenHook, authGrace: 5_000 },
      async (rig) => {
        const client = rig.client(null);
        await rig.ok(client, 'auth', { token: `alice@${1_010_000}` });
        await rig.ok(client, 'sub', { ch: 'room' });
        t.mock.timers.tick(12_000);
        await settle();
        await rig.ok(client, 'auth', { token: `alice@${1_100_000}` });
        await rig.ok(client, 'sub', { ch: 'room' });
        t.mock.timers.tick(10_000);
        assert.equal(client.closedWith, null);
      },
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
        const client = rig.client('u', { expiresAt: 1_000_000 + 60 * day });
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
        assert.equal(client.closeCode(), 4401);
        assert.ok(delays.every((ms) => ms <= 2 ** 31 - 1));
      },
      'date',
    );
  });
});

/** The members' identity ids (the hub adds each one's `client` id). */
function ids(members: unknown): unknown[] {
  return (members as Array<Record<string, unknown>>).map((member) => member['id']);
}
