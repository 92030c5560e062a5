// Attack: keeping another identity's access. A connection authenticated as alice (the
// `auth` op) subscribes to alice's private room, then authenticates as bob: it kept
// receiving alice's room, even after alice's token expired, and later subscriptions
// announced it as alice. Now an identity change asks canSubscribe again for every
// subscription (the refused ones end with an `unsub` push) and replaces the presence
// member; at expiry every subscription ends, and the grace period only delays the 4401.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { HubServer } from './support/hub-process.js';

interface Message {
  op: string;
  id?: number;
  ch?: string;
  code?: string;
  data?: unknown;
  member?: { id: string };
  members?: Array<{ id: string }>;
}

let server: HubServer;

before(async () => {
  server = await HubServer.start({
    tokens: {
      alice: { user: 'alice', ttl: 600_000 },
      'alice-too': { user: 'alice', ttl: 600_000 },
      bob: { user: 'bob', ttl: 600_000 },
      'alice-short': { user: 'alice', ttl: 1_000 },
    },
    rooms: { 'room:alice': ['alice'] },
    hub: { authGrace: 1_500 },
  });
});

after(async () => {
  await server?.stop();
});

/** A hotline.v1 connection that records what it receives and waits on it. */
class Peer {
  readonly log: Message[] = [];
  closed: number | null = null;
  private nextId = 1;
  private waiters: Array<() => void> = [];

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.log.push(JSON.parse(data.toString()) as Message);
      this.wake();
    });
    ws.on('close', (code) => {
      this.closed = code;
      this.wake();
    });
  }

  static open(): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${server.ws}/ws`, ['hotline.v1'], { perMessageDeflate: false });
      ws.once('open', () => resolve(new Peer(ws)));
      ws.once('error', reject);
    });
  }

  async until<T>(find: () => T | undefined, what: string, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (Date.now() > deadline || this.closed !== null) throw new Error(`no ${what} (closed: ${this.closed}); got ${JSON.stringify(this.log)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(200, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async request(op: string, fields: Record<string, unknown> = {}): Promise<Message> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ op, id, ...fields }));
    return this.until(() => this.log.find((m) => m.id === id && m.op !== 'msg'), `an answer to ${op} #${id}`);
  }

  async ok(op: string, fields: Record<string, unknown> = {}): Promise<Message> {
    const answer = await this.request(op, fields);
    assert.equal(answer.op, op === 'ping' ? 'pong' : 'ok', `${op} answered ${JSON.stringify(answer)}`);
    return answer;
  }

  msgs(channel: string): unknown[] {
    return this.log.filter((m) => m.op === 'msg' && m.ch === channel).map((m) => m.data);
  }

  close(): void {
    this.ws.close();
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const wake of waiting) wake();
  }
}

describe('switching identity over a live connection', () => {
  test("an auth as bob ends alice's private subscription (unsub push), and presence shows bob, not alice", async () => {
    const [client, publisher, watcher] = await Promise.all([Peer.open(), Peer.open(), Peer.open()]);
    try {
      await publisher.ok('auth', { token: 'alice-too' });
      await watcher.ok('auth', { token: 'bob' });
      await watcher.ok('sub', { ch: 'lobby' });
      await client.ok('auth', { token: 'alice' });
      await client.ok('sub', { ch: 'room:alice' });
      await client.ok('sub', { ch: 'lobby' });
      await publisher.ok('pub', { ch: 'room:alice', data: 'for alice' });
      await client.until(() => (client.msgs('room:alice').length === 1 ? true : undefined), "alice's message");

      await client.ok('auth', { token: 'bob' });
      const push = client.log.find((m) => m.op === 'unsub');
      assert.deepEqual({ ...push, message: undefined }, { op: 'unsub', ch: 'room:alice', code: 'forbidden', message: undefined });
      // Published in this order to one connection: once the lobby message is there, a room
      // message would have come before it.
      await publisher.ok('pub', { ch: 'room:alice', data: 'after the switch' });
      await publisher.ok('pub', { ch: 'lobby', data: 'marker' });
      await client.until(() => (client.msgs('lobby').includes('marker') ? true : undefined), 'the lobby marker');
      assert.deepEqual(client.msgs('room:alice'), ['for alice'], 'nothing of alice after the switch');
      assert.equal((await client.request('history', { ch: 'room:alice' })).code, 'forbidden');

      const members = (await watcher.ok('presence', { ch: 'lobby' })).members!.map((m) => m.id).sort();
      assert.deepEqual(members, ['bob', 'bob'], 'the watcher and the switched client, both bob');
      const events = watcher.log.filter((m) => m.op === 'join' || m.op === 'leave').map((m) => `${m.op} ${m.member!.id}`);
      assert.deepEqual(events, ['join alice', 'leave alice', 'join bob']);
      await client.ok('sub', { ch: 'hall' });
      await watcher.ok('sub', { ch: 'hall' });
      assert.deepEqual((await watcher.ok('presence', { ch: 'hall' })).members!.map((m) => m.id), ['bob', 'bob']);
    } finally {
      for (const peer of [client, publisher, watcher]) peer.close();
    }
  });

  test('at expiry nothing of the identity survives: subscriptions end, no delivery, then 4401 after the grace', async () => {
    const [client, publisher] = await Promise.all([Peer.open(), Peer.open()]);
    try {
      await publisher.ok('auth', { token: 'alice-too' });
      await publisher.ok('sub', { ch: 'room:alice' });
      await client.ok('auth', { token: 'alice-short' });
      await client.ok('sub', { ch: 'room:alice' });
      const push = await client.until(() => client.log.find((m) => m.op === 'unsub'), 'the unsub push at expiry');
      assert.deepEqual([push.ch, push.code], ['room:alice', 'unauthorized']);
      await publisher.until(() => publisher.log.find((m) => m.op === 'leave'), "alice's leave");
      await publisher.ok('pub', { ch: 'room:alice', data: 'after expiry' });
      // A ping sent after the publish was delivered comes back after anything sent for it.
      assert.equal((await client.request('ping')).op, 'pong');
      assert.deepEqual(client.msgs('room:alice'), []);
      await client.until(() => (client.closed !== null ? true : undefined), 'the close');
      assert.equal(client.closed, 4401);
    } finally {
      client.close();
      publisher.close();
    }
  });
});
