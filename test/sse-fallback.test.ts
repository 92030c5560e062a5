// The SDK's HTTP fallback session in Node (its own fetch) against a real channel server in a
// child process (test/support/sdk-server.ts with "session"): behind a proxy that refuses
// `Upgrade` (it drops the Upgrade headers: the server answers 426) the client falls back at once, does every op over the
// session (sub, pub, presence, rpc, history), survives a cut of its stream with each message
// once and in order, and moves back to a WebSocket once the proxy lets upgrades through,
// without a gap or a repeat. A WebSocket class that throws falls back at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Channel } from '../src/client/channel.js';
import type { ClientState, Transport, WebSocketConstructorLike } from '../src/client/client.js';
import { closeClients, publishLoop, range, sdk } from './support/delivery.js';
import { killAll, startServer, type ServerProcess } from './support/sdk-process.js';
import { UpgradeProxy } from './support/upgrade-proxy.js';
import { waitFor } from './support/wait.js';

let throwingAttempts = 0;
class ThrowingWebSocket {
  constructor() {
    throwingAttempts++;
    throw new Error('WebSockets are blocked here');
  }
}

/** The offsets and the `seq`s of what a channel delivers, in order. */
function received(feed: Channel<{ seq: number }>): { seen: number[]; seqs: number[] } {
  const seen: number[] = [];
  const seqs: number[] = [];
  feed.on('message', (data, meta) => {
    seen.push(meta.offset);
    seqs.push(data.seq);
  });
  return { seen, seqs };
}

describe('the SDK falls back to the HTTP session', () => {
  let server: ServerProcess;
  let proxy: UpgradeProxy;

  before(async () => {
    server = await startServer(0, { session: true });
    proxy = await UpgradeProxy.start(server.port);
  });
  after(async () => {
    closeClients();
    await proxy?.close();
    await killAll();
  });

  test('behind a proxy that refuses upgrades: every op over the session, a cut stream recovered once, then back to a WebSocket without a gap', { timeout: 60_000 }, async () => {
    const events: Array<[ClientState, Transport | null]> = [];
    const client = sdk(`ws://127.0.0.1:${proxy.port}/ws?member=alice`, {
      reconnect: { initial: 20, max: 50 },
      transports: ['websocket', 'sse'],
      fallback: { upgradeInterval: 300 },
    });
    client.on('state', (state, transport) => events.push([state, transport]));
    const feed = client.channel<{ seq: number }>('fallback:feed');
    const { seen, seqs } = received(feed);
    await feed.subscribe();
    assert.equal(client.transport, 'sse');
    // Answered 426 (the proxy dropped the Upgrade headers): the session at once.
    assert.ok(proxy.refusedUpgrades >= 1, `${proxy.refusedUpgrades} upgrades refused first`);
    // The refused attempt left `connecting` for `reconnecting`; the session opened.
    assert.deepEqual(events, [['reconnecting', null], ['open', 'sse']]);

    // A publisher on the server's own port, beside the fallback client.
    const publisher = sdk(`ws://127.0.0.1:${server.port}/ws`);
    const loop = publishLoop(publisher.channel<{ seq: number }>('fallback:feed'), 5);
    await waitFor(() => seen.length >= 20, 'messages over the session');

    // Every op over the session.
    const own = await feed.publish({ seq: -1 });
    assert.ok(own.offset > 0);
    assert.deepEqual((await feed.presence.fetch()).members.map((m) => m.id), ['alice']);
    assert.deepEqual(await client.rpc<{ x: number }>('echo' as never, { x: 1 } as never), { x: 1 });
    const page = await feed.history({ limit: 5 });
    assert.equal(page.messages.length, 5);

    // The proxy cuts the stream: the client opens another session and recovers from its offset.
    // (The replies above came over the stream; their POSTs' answers may still be on their way.)
    await waitFor(() => proxy.responsesInProgress === 1, 'the stream alone in progress at the proxy');
    const before = seen.length;
    assert.equal(proxy.cutStreams(), 1);
    await waitFor(() => events.filter(([state]) => state === 'open').length === 2 && seen.length > before + 20, 'a new session and messages after it');
    assert.equal(client.transport, 'sse');

    // Upgrades get through now: the client moves to a WebSocket while the publisher goes on.
    proxy.allowUpgrades = true;
    await waitFor(() => client.transport === 'websocket', 'the move to a WebSocket', { ms: 10_000 });
    const moved = seen.length;
    await waitFor(() => seen.length > moved + 20, 'messages over the WebSocket');
    await loop.stop();
    const last = Math.max(...loop.results.map((r) => r.offset), own.offset);
    await waitFor(() => seen.at(-1) === last, 'the last message');

    assert.deepEqual(loop.errors, []);
    assert.deepEqual(seen, range(seen[0]!, last), 'each offset once, in order: no gap, no repeat');
    assert.ok(seqs.includes(-1), 'its own publish came back');
    assert.deepEqual(
      events.map(([state, transport]) => `${state}:${transport}`),
      ['reconnecting:null', 'open:sse', 'reconnecting:null', 'open:sse', 'open:websocket'],
    );
    client.close();
    publisher.close();
  });

  test('a WebSocket class that throws: the HTTP session at once, and it stays there', { timeout: 30_000 }, async () => {
    const client = sdk(`ws://127.0.0.1:${server.port}/ws?member=bob`, {
      WebSocket: ThrowingWebSocket as unknown as WebSocketConstructorLike,
      transports: ['websocket', 'sse'],
      fallback: { upgradeInterval: 100 },
    });
    const states: Array<Transport | null> = [];
    client.on('state', (_state, transport) => states.push(transport));
    const channel = client.channel<{ n: number }>('fallback:throws');
    const got: number[] = [];
    channel.on('message', (data) => got.push(data.n));
    await channel.subscribe();
    assert.equal(client.transport, 'sse');
    for (let n = 0; n < 5; n++) await channel.publish({ n });
    await waitFor(() => got.length === 5, 'its own messages');
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
    assert.deepEqual((await channel.presence.fetch()).members.map((m) => m.id), ['bob']);
    // Probes keep failing to be made: it stays on the session, with nothing lost.
    const attempts = throwingAttempts;
    await waitFor(() => throwingAttempts >= attempts + 3, 'three more tries of a WebSocket');
    assert.equal(client.transport, 'sse');
    assert.deepEqual(states, ['sse']);
    client.close();
  });

  test("transports: ['sse'] never tries a WebSocket", { timeout: 30_000 }, async () => {
    const refusedBefore = proxy.refusedUpgrades;
    proxy.allowUpgrades = false;
    const client = sdk(`ws://127.0.0.1:${proxy.port}/ws`, { transports: ['sse'] });
    const channel = client.channel('fallback:only');
    await channel.subscribe();
    assert.equal(client.transport, 'sse');
    assert.equal((await channel.publish({ hello: 'there' })).offset, 1);
    assert.equal(proxy.refusedUpgrades, refusedBefore);
    client.close();
  });

  test('a stream cut while a POST is held at the proxy, released just after the cut or racing it: each publish delivered once, in order; an rpc in flight fails with disconnected', { timeout: 60_000 }, async () => {
    const client = sdk(`ws://127.0.0.1:${proxy.port}/ws`, { transports: ['sse'], reconnect: { initial: 20, max: 50 } });
    const opens: number[] = [];
    client.on('state', (state) => state === 'open' && opens.push(Date.now()));
    const feed = client.channel<{ seq: number }>('cut:posts');
    const { seen, seqs } = received(feed);
    await feed.subscribe();
    const publisher = sdk(`ws://127.0.0.1:${server.port}/ws`);
    const loop = publishLoop(publisher.channel<{ seq: number }>('cut:posts'), 5);
    await waitFor(() => seen.length >= 10, 'live messages');

    const own: Array<{ seq: number; offset: number }> = [];
    for (const [round, order] of [
      [1, 'cut, then release'],
      [2, 'release and cut at once'],
    ] as const) {
      proxy.holdPosts = true;
      const published = feed.publish({ seq: -round });
      await waitFor(() => proxy.heldPosts === 1, `round ${round}: the publish's POST held`);
      proxy.holdPosts = false;
      const answersBefore = proxy.releasedAnswers.length;
      if (order === 'cut, then release') {
        await waitFor(() => proxy.responsesInProgress === 1, `round ${round}: the stream alone in progress at the proxy`);
        assert.equal(proxy.cutStreams(), 1, 'the stream alone was in progress');
        proxy.releasePosts();
      } else {
        proxy.releasePosts();
        proxy.cutStreams();
      }
      // The server answered the POST that came late (404 once it knew the stream was gone, or
      // 204 having run it on a stream being torn down): either way the client resends it with
      // its key after it reattaches, and it is delivered once.
      await waitFor(() => proxy.releasedAnswers.length === answersBefore + 1, `round ${round}: the server's answer to the late POST`);
      assert.ok([204, 404].includes(proxy.releasedAnswers.at(-1)!), `round ${round}: answered ${proxy.releasedAnswers.at(-1)}`);
      const { offset } = await published;
      own.push({ seq: -round, offset });
      await waitFor(() => opens.length === round + 1 && seen.includes(offset), `round ${round}: a new session and the publish's message`);
    }

    // An rpc whose POST is in flight when the stream goes: it may have run, so it fails, and says so.
    proxy.holdPosts = true;
    const call = client.rpc('echo' as never, { x: 1 } as never);
    await waitFor(() => proxy.heldPosts === 1, "the rpc's POST held");
    proxy.holdPosts = false;
    proxy.cutStreams();
    await assert.rejects(call, (error: unknown) => (error as { code?: string }).code === 'disconnected');
    proxy.releasePosts();

    await loop.stop();
    const last = Math.max(...loop.results.map((r) => r.offset), ...own.map((o) => o.offset));
    await waitFor(() => seen.at(-1) === last, 'the last message');
    assert.deepEqual(loop.errors, []);
    assert.deepEqual(seen, range(seen[0]!, last), 'each offset once, in order: no gap, no repeat');
    for (const { seq, offset } of own) {
      assert.equal(seqs.filter((s) => s === seq).length, 1, `publish ${seq} delivered once`);
      assert.equal(seqs[seen.indexOf(offset)], seq);
    }
    console.log(`# late POSTs answered ${proxy.releasedAnswers.join(', ')}; sessions opened ${opens.length}`);
    client.close();
    publisher.close();
  });
});
