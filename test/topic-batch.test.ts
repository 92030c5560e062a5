// A topic's publishes of one tick are written to each subscriber together, at the tick's end
// (src/node/topic-batch.ts). What a subscriber sees must be what it saw when every publish
// was queued on it at once: the same messages in the same order, across topics and with
// the connection's own sends and close; the same counts from publish(); the same drops
// past the backpressure limit; bufferedAmount counting what waits.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { serve, type RunningServer, type ServeOptions, type WebSocketConnection } from '../src/index.js';
import { Rng } from '../scripts/fuzz/driver/rng.js';
import { upgradeSocket } from './support/raw-upgrade.js';
import { waitFor } from './support/wait.js';

interface Peer {
  ws: WebSocket;
  /** Bytes its socket read. */
  bytesRead(): number;
  /** The server's side of it. */
  conn: WebSocketConnection<unknown>;
  /** What it received, in order. */
  got: string[];
}

interface Harness {
  server: RunningServer;
  /** One at a time: the server's side is the next one opened. */
  connect(options?: WebSocket.ClientOptions): Promise<Peer>;
  /** `count` peers connected one at a time, each subscribed to `topic`. */
  subscribers(count: number, topic?: string): Promise<Peer[]>;
  /** The server's side of a publish, run in one synchronous block (one tick). */
  publish(topic: string, data: string | Buffer): number;
}

async function start(options: Omit<ServeOptions, 'websocket'> = {}, t: { after(fn: () => Promise<void>): void }): Promise<Harness> {
  const opened: WebSocketConnection<unknown>[] = [];
  const server = await serve({
    ...options,
    websocket: { '/ws': { open: (conn) => void opened.push(conn), message() {} } },
  });
  const peers: Peer[] = [];
  t.after(async () => {
    for (const peer of peers) peer.ws.terminate();
    await server.close();
  });
  const harness: Harness = {
    server,
    async connect(clientOptions = { perMessageDeflate: false }) {
      const before = opened.length;
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, clientOptions);
      const got: string[] = [];
      ws.on('message', (data: Buffer) => got.push(data.toString()));
      let response!: IncomingMessage;
      ws.once('upgrade', (res: IncomingMessage) => (response = res));
      await once(ws, 'open');
      const conn = await waitFor(() => opened[before], 'the server side of the connection');
      const peer = { ws, conn, got, bytesRead: () => response.socket.bytesRead };
      peers.push(peer);
      return peer;
    },
    async subscribers(count, topic = 'a') {
      const subscribed: Peer[] = [];
      for (let i = 0; i < count; i++) {
        const peer = await harness.connect();
        peer.conn.subscribe(topic);
        subscribed.push(peer);
      }
      return subscribed;
    },
    publish: (topic, data) => server.publish(topic, data),
  };
  return harness;
}

describe('a tick of publishes to a topic', () => {
  test('keeps each subscriber’s order across topics and with its own sends', async (t) => {
    const h = await start({}, t);
    const both = await h.connect();
    const onlyA = await h.connect();
    both.conn.subscribe('a');
    both.conn.subscribe('b');
    onlyA.conn.subscribe('a');

    const reached = [h.publish('a', 'a1'), h.publish('b', 'b1')];
    both.conn.send('direct');
    reached.push(h.publish('a', 'a2'), h.publish('a', 'a3'), h.publish('b', 'b2'));

    assert.deepEqual(reached, [2, 1, 2, 2, 1]);
    await waitFor(() => both.got.length === 6 && onlyA.got.length === 3, 'every message', { state: () => `${both.got} / ${onlyA.got}` });
    assert.deepEqual(both.got, ['a1', 'b1', 'direct', 'a2', 'a3', 'b2']);
    assert.deepEqual(onlyA.got, ['a1', 'a2', 'a3']);
  });

  test('reaches who was subscribed at each publish: a subscriber that leaves gets the earlier ones, one that joins the later', async (t) => {
    const h = await start({}, t);
    const leaving = await h.connect();
    const staying = await h.connect();
    const joining = await h.connect();
    leaving.conn.subscribe('a');
    staying.conn.subscribe('a');

    const first = h.publish('a', 'x1');
    leaving.conn.unsubscribe('a');
    joining.conn.subscribe('a');
    const second = h.publish('a', 'x2');
    joining.conn.send('end');
    leaving.conn.send('end');

    assert.deepEqual([first, second], [2, 2]);
    await waitFor(() => staying.got.length === 2 && leaving.got.length === 2 && joining.got.length === 2, 'every message');
    assert.deepEqual(staying.got, ['x1', 'x2']);
    assert.deepEqual(leaving.got, ['x1', 'end']);
    assert.deepEqual(joining.got, ['x2', 'end']);
  });

  test('passes each publisher by, when several connections publish to the topic in one tick', async (t) => {
    const h = await start({}, t);
    const [one, two, reader] = (await h.subscribers(3)) as [Peer, Peer, Peer];

    const reached = [
      one.conn.publish('a', 'from one'),
      two.conn.publish('a', 'from two'),
      h.publish('a', 'from the server'),
      one.conn.publish('a', 'one again'),
    ];

    assert.deepEqual(reached, [2, 2, 3, 2]);
    await waitFor(() => one.got.length === 2 && two.got.length === 3 && reader.got.length === 4, 'every message', {
      state: () => JSON.stringify([one.got, two.got, reader.got]),
    });
    assert.deepEqual(one.got, ['from two', 'from the server']);
    assert.deepEqual(two.got, ['from one', 'from the server', 'one again']);
    assert.deepEqual(reader.got, ['from one', 'from two', 'from the server', 'one again']);
  });

  test('goes out before a close the connection starts in the same tick', async (t) => {
    const h = await start({}, t);
    const [peer] = (await h.subscribers(1)) as [Peer];
    const closed = once(peer.ws, 'close');
    h.publish('a', 'p1');
    h.publish('a', 'p2');
    peer.conn.close(1000, 'bye');
    const [code, reason] = (await closed) as [number, Buffer];
    assert.equal(code, 1000);
    assert.equal(reason.toString(), 'bye');
    assert.deepEqual(peer.got, ['p1', 'p2']);
  });

  test('a subscriber terminated in the tick harms nothing: the others get the batch, the server stays up', async (t) => {
    const h = await start({}, t);
    const [gone, stays] = (await h.subscribers(2)) as [Peer, Peer];
    const closed = once(gone.ws, 'close');
    assert.equal(h.publish('a', 'k1'), 2);
    gone.conn.terminate();
    assert.equal(h.publish('a', 'k2'), 2);
    const [code] = (await closed) as [number];
    assert.equal(code, 1006);
    await waitFor(() => stays.got.length === 2, 'both messages');
    assert.deepEqual(stays.got, ['k1', 'k2']);
    assert.deepEqual(gone.got, []);
    assert.equal(h.publish('a', 'k3'), 1);
    await waitFor(() => stays.got.length === 3, 'the publish after');
  });

  test('a tick of publishes past the join limit goes out as one vectored write, whole and in order', async (t) => {
    const h = await start({}, t);
    const [peer] = (await h.subscribers(1)) as [Peer];
    // 3 × 4 KiB and two small ones: past the 8 KiB that are joined into one buffer.
    const sent = ['s', 'x'.repeat(4096), 'y'.repeat(4096), 't', 'z'.repeat(4096)];
    for (const message of sent) h.publish('a', message);
    await waitFor(() => peer.got.length === sent.length, 'every message');
    assert.deepEqual(peer.got, sent);
  });

  test('is counted in bufferedAmount until it is written, and passes the publisher by', async (t) => {
    const h = await start({}, t);
    const [subscriber, publisher] = (await h.subscribers(2)) as [Peer, Peer];
    // A 3-byte text message is a 5-byte frame.
    assert.equal(publisher.conn.publish('a', 'abc'), 1);
    assert.equal(publisher.conn.publish('a', 'def'), 1);
    assert.equal(subscriber.conn.bufferedAmount, 10);
    assert.equal(publisher.conn.bufferedAmount, 0);
    await waitFor(() => subscriber.got.length === 2, 'both messages');
    assert.deepEqual(subscriber.got, ['abc', 'def']);
    assert.equal(subscriber.conn.bufferedAmount, 0);
    assert.deepEqual(publisher.got, []);
  });

  test("drops past the backpressure limit exactly where one publish at a time would ('drop' policy)", async (t) => {
    // 300-byte messages are 302-byte frames. From an empty buffer a frame is taken while
    // what is buffered before it is within 1,000 bytes: 0, 302, 604 and 906 are; 1,208 is not.
    const h = await start({ endpoint: { backpressureLimit: 1000, slowConsumer: 'drop' } }, t);
    const [one, two] = (await h.subscribers(2)) as [Peer, Peer];
    const message = (i: number): string => String(i).padEnd(300, '.');
    const reached = [1, 2, 3, 4, 5, 6].map((i) => h.publish('a', message(i)));
    assert.deepEqual(reached, [2, 2, 2, 2, 0, 0]);
    assert.equal(h.server.endpoints.get('/ws')!.counters.droppedMessages, 4);
    one.conn.send('end', { force: true });
    two.conn.send('end', { force: true });
    await waitFor(() => one.got.length === 5 && two.got.length === 5, 'what was taken');
    const taken = [1, 2, 3, 4].map(message).concat('end');
    assert.deepEqual(one.got, taken);
    assert.deepEqual(two.got, taken);
  });

  test("a subscriber that stops reading gets 'drain' once it reads what its batches filled its socket with", async (t) => {
    let conn!: WebSocketConnection<undefined>;
    let drained = 0;
    const server = await serve({
      websocket: { '/ws': { open: (c) => void (conn = c), message() {}, drain: () => void drained++ } },
      endpoint: { backpressureLimit: 256 * 1024, slowConsumer: 'drop' },
    });
    const { socket } = await upgradeSocket(server.port, '/ws');
    t.after(async () => {
      socket.destroy();
      await server.close();
    });
    socket.pause();
    await waitFor(() => conn !== undefined, 'the connection');
    conn.subscribe('a');
    const chunk = Buffer.alloc(64 * 1024, 1);
    const reached: number[] = [];
    // One publish a tick until one is dropped: each batch is written on its own.
    for (let i = 0; i < 200 && !reached.includes(0); i++) {
      reached.push(server.publish('a', chunk));
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok(reached.includes(0), `a publish past the limit is dropped: ${reached.length} publishes`);
    socket.resume();
    await waitFor(() => drained > 0 && conn.bufferedAmount === 0, 'the drain handler');
  });

  test('a subscriber with permessage-deflate gets its compressed publishes in order among the plain ones', async (t) => {
    const h = await start({ endpoint: { perMessageDeflate: { threshold: 100 } } }, t);
    const deflating = await h.connect({ perMessageDeflate: true });
    const plain = await h.connect({ perMessageDeflate: false });
    assert.equal(deflating.conn.extensions.includes('permessage-deflate'), true);
    deflating.conn.subscribe('a');
    plain.conn.subscribe('a');
    const big = 'z'.repeat(5000);
    const reached = [h.publish('a', 's1'), h.publish('a', big), h.publish('a', 's2')];
    assert.deepEqual(reached, [2, 2, 2]);
    await waitFor(() => deflating.got.length === 3 && plain.got.length === 3, 'every message');
    assert.deepEqual(deflating.got, ['s1', big, 's2']);
    assert.deepEqual(plain.got, ['s1', big, 's2']);
    // The big one went compressed to the subscriber that asked for it.
    assert.ok(deflating.bytesRead() < plain.bytesRead() - 4000, `${deflating.bytesRead()} < ${plain.bytesRead()} - 4000`);
  });

  test('a tap still sees every publish, each as its subscriber gets it', async (t) => {
    const h = await start({}, t);
    const [peer] = (await h.subscribers(1)) as [Peer];
    const shown: string[] = [];
    h.server.endpoints.get('/ws')!.tap = (_conn, direction, message) => {
      if (direction === 'out') shown.push(String(message));
    };
    h.publish('a', 'q1');
    h.publish('a', 'q2');
    await waitFor(() => peer.got.length === 2, 'both messages');
    assert.deepEqual(shown, ['q1', 'q2']);
    assert.deepEqual(peer.got, ['q1', 'q2']);
  });

  test('counts its messages and bytes out as they are written', async (t) => {
    const h = await start({}, t);
    const [one, two] = (await h.subscribers(2)) as [Peer, Peer];
    const counters = h.server.endpoints.get('/ws')!.counters;
    const before = { messages: counters.messagesOut, bytes: counters.bytesOut };
    h.publish('a', 'abc');
    h.publish('a', 'defg');
    await waitFor(() => one.got.length === 2 && two.got.length === 2, 'both messages');
    assert.equal(counters.messagesOut - before.messages, 4);
    assert.equal(counters.bytesOut - before.bytes, 2 * (5 + 6));
  });

  for (const seed of [1, 2, 3]) {
    test(`random ticks of publishes, sends, joins, leaves and closes deliver what one publish at a time would (seed ${seed})`, async (t) => {
      const rng = new Rng(seed);
      const h = await start({}, t);
      const TOPICS = ['a', 'b', 'c'];
      const peers: Peer[] = [];
      for (let i = 0; i < 6; i++) peers.push(await h.connect());
      // The model: who is subscribed to what, who is closing, and what each peer must get.
      const subscribed = peers.map(() => new Set<string>());
      const closing = peers.map(() => false);
      const expected = peers.map((): string[] => []);
      const closed = peers.map((peer) => once(peer.ws, 'close'));
      let n = 0;
      for (let tick = 0; tick < 12; tick++) {
        for (let op = 0; op < 30; op++) {
          const i = rng.int(peers.length);
          const peer = peers[i]!;
          const topic = rng.pick(TOPICS);
          const roll = rng.int(100);
          const message = `m${n++}`;
          if (roll < 55) {
            // A publish from the server, or from a connection (passing it by).
            const from = rng.chance(0.5) ? i : -1;
            const reached = from === -1 ? h.publish(topic, message) : peer.conn.publish(topic, message);
            let count = 0;
            subscribed.forEach((topics, j) => {
              if (j !== from && topics.has(topic) && !closing[j]) {
                expected[j]!.push(message);
                count++;
              }
            });
            assert.equal(reached, count, `publish ${message} to ${topic} from ${from} reached`);
          } else if (closing[i]) {
            continue;
          } else if (roll < 70) {
            peer.conn.send(message);
            expected[i]!.push(message);
          } else if (roll < 85) {
            peer.conn.subscribe(topic);
            subscribed[i]!.add(topic);
          } else if (roll < 98) {
            peer.conn.unsubscribe(topic);
            subscribed[i]!.delete(topic);
          } else if (tick > 2) {
            peer.conn.close(1000, 'done');
            closing[i] = true;
          }
        }
        // The tick ends: its frames go out.
        await new Promise((resolve) => setImmediate(resolve));
      }
      for (let i = 0; i < peers.length; i++) {
        if (closing[i]) await closed[i];
        else await waitFor(() => peers[i]!.got.length >= expected[i]!.length, `peer ${i}'s ${expected[i]!.length} messages`);
        assert.deepEqual(peers[i]!.got, expected[i], `peer ${i} got what it was sent, in order`);
      }
    });
  }
});
