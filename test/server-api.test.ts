// The server API from an application's HTTP routes (test/support/server-api-node.ts, its own
// process, memory engine), against real connections: raw hotline.v1 clients and the SDK.
// Publishes with offsets, schemas, keys and recovery; presence and history; a user's or a
// client's connections sent to, disconnected, unsubscribed and called (the SDK's handlers);
// what a client that misbehaves around calls gets; and server.publish kept out of /ws.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { connect, type HotlineClient, type HotlineError } from '../src/client/index.js';
import { WebSocket as HotlineWebSocket } from '../src/node/client.js';
import { ChannelsClient, type WireMessage } from './support/channels-client.js';
import { ServerApiNode } from './support/server-api-node.js';
import { waitFor } from './support/wait.js';

let node: ServerApiNode;
const raws: ChannelsClient[] = [];
const sdks: HotlineClient[] = [];

before(async () => {
  node = await ServerApiNode.start({ hub: { maxPendingCalls: 4 } });
});

after(async () => {
  for (const client of raws) client.terminate();
  for (const client of sdks) client.close();
  await node?.stop();
});

async function raw(user?: string): Promise<ChannelsClient> {
  const client = await ChannelsClient.connect(node.ws(user));
  raws.push(client);
  return client;
}

function sdk(user: string, reconnectMs = 20): HotlineClient {
  const client = connect(node.ws(user), { WebSocket: HotlineWebSocket, reconnect: { initial: reconnectMs, max: reconnectMs }, pingInterval: 0 });
  sdks.push(client);
  return client;
}

/** The client id the server gave a raw connection, as an app learns it (from a hook or an rpc). */
async function idOf(client: ChannelsClient): Promise<string> {
  const answer = await client.request('rpc', { method: 'whoami' });
  assert.equal(answer.op, 'ok');
  return answer.result as string;
}

/** Resolves with the next event of an SDK emitter. */
function next<T>(on: (listener: (value: T) => void) => () => void, test: (value: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const off = on((value) => {
      if (!test(value)) return;
      off();
      resolve(value);
    });
  });
}

describe('publish, presence, history', () => {
  test('a server publish reaches subscribers with the next offset, and counts them', async () => {
    const watchers = [await raw('ada'), await raw('lin')];
    for (const w of watchers) assert.equal((await w.request('sub', { ch: 'news' })).op, 'ok');
    const published = await node.ok<{ epoch: string; offset: number; delivered: number }>('publish', 'news', { text: 'one' });
    assert.deepEqual([published.offset, published.delivered], [1, 2]);
    for (const w of watchers) {
      const msg = await w.waitFor((m) => m.op === 'msg' && m.ch === 'news', 'the message', undefined, 0);
      assert.deepEqual(msg, { op: 'msg', ch: 'news', offset: 1, data: { text: 'one' } });
    }
  });

  test('recovered after a reconnect like any other message: replayed with since, recovered:true', async () => {
    const first = await raw('ada');
    const sub = await first.request('sub', { ch: 'feed' });
    await node.ok('publish', 'feed', 1);
    await first.until(() => first.messages('feed').length === 1, 'the first');
    await first.close();
    await node.ok('publish', 'feed', 2);
    await node.ok('publish', 'feed', 3);
    const second = await raw('ada');
    const resumed = await second.request('sub', { ch: 'feed', since: { epoch: sub.epoch, offset: 1 } });
    assert.deepEqual([resumed.op, resumed.recovered, resumed.offset], ['ok', true, 3]);
    await second.until(() => second.messages('feed').length === 2, 'the replay');
    assert.deepEqual(
      second.messages('feed').map((m) => [m.offset, m.data]),
      [
        [2, 2],
        [3, 3],
      ],
    );
  });

  test('the SDK sees a server publish made while it was away once, in order, with recovered:true', async () => {
    const client = sdk('ada', 300);
    const channel = client.channel<number>('feed:sdk');
    const got: Array<[number, number]> = [];
    const resubscribed = next<{ recovered: boolean; first: boolean }>((l) => channel.on('subscribed', l), (e) => !e.first);
    await channel.subscribe((n, { offset }) => got.push([offset, n]));
    await node.ok('publish', 'feed:sdk', 1);
    const id = await client.rpc<string>('whoami');
    // 1012 (service restart): the SDK reconnects, after 300 ms; meanwhile two more publishes.
    const closed = next<{ code: number; willRetry: boolean }>((l) => client.on('close', l));
    assert.equal(await node.ok('disconnect', { client: id }, { code: 1012, reason: 'moving' }), 1);
    assert.deepEqual(await closed, { code: 1012, reason: 'moving', willRetry: true });
    await node.ok('publish', 'feed:sdk', 2);
    await node.ok('publish', 'feed:sdk', 3);
    assert.equal((await resubscribed).recovered, true);
    await waitFor(() => got.length >= 3, 'the three messages');
    assert.deepEqual(got, [
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  test("schema, keys and bad arguments are refused with the ChannelError a client's publish gets", async () => {
    const bad = await node.api('publish', 'typed:1', { text: 5 });
    assert.equal(bad.error?.name, 'ChannelError');
    assert.equal(bad.error?.code, 'bad_request');
    assert.match(bad.error!.message, /^invalid data for typed:1: text: /);
    const first = await node.ok<{ offset: number; delivered: number }>('publish', 'typed:1', { text: 'a' }, { key: 'job-7' });
    const retry = await node.ok<{ offset: number; delivered: number }>('publish', 'typed:1', { text: 'a' }, { key: 'job-7' });
    assert.deepEqual([retry.offset, retry.delivered], [first.offset, 0]);
    const conflict = await node.api('publish', 'typed:1', { text: 'b' }, { key: 'job-7' });
    assert.equal(conflict.error?.code, 'bad_request');
    assert.match(conflict.error!.message, /used for other data/);
    assert.equal((await node.api('publish', 'no spaces', 1)).error?.code, 'bad_request');
    assert.equal((await node.api('publish', 'big', 'x'.repeat(70_000))).error?.code, 'too_large');
  });

  test('presence lists the subscribers; history reads pages with their data', async () => {
    for (const user of ['sam', 'kim']) assert.equal((await (await raw(user)).request('sub', { ch: 'lobby' })).op, 'ok');
    const members = await node.ok<Array<{ id: string }>>('presence', 'lobby');
    assert.deepEqual(members.map((m) => m.id).sort(), ['kim', 'sam']);
    for (let n = 1; n <= 3; n++) await node.ok('publish', 'lobby', { n });
    const page = await node.ok<{ messages: Array<{ offset: number; data: unknown }>; more: boolean }>('history', 'lobby', { limit: 2 });
    assert.deepEqual(page.messages, [
      { offset: 2, data: { n: 2 } },
      { offset: 3, data: { n: 3 } },
    ]);
    assert.equal(page.more, true);
  });
});

describe("a user's or a client's connections", () => {
  test('send reaches every connection of a user (raw and SDK) as a message, or one client id', async () => {
    const ada = [await raw('ada-s'), await raw('ada-s')];
    const client = sdk('ada-s');
    const lin = await raw('lin-s');
    await client.rpc('whoami');
    const received = next<unknown>((l) => client.on('message', l));
    assert.equal(await node.ok('send', { user: 'ada-s' }, { notice: 'hello' }), 3);
    for (const conn of ada) assert.deepEqual(await conn.waitFor((m) => m.op === 'message', 'the message', undefined, 0), { op: 'message', data: { notice: 'hello' } });
    assert.deepEqual(await received, { notice: 'hello' });
    assert.equal(await node.ok('send', { client: await idOf(lin) }, 'just you'), 1);
    assert.deepEqual(await lin.waitFor((m) => m.op === 'message', 'the message', undefined, 0), { op: 'message', data: 'just you' });
    assert.equal(ada[0]!.ofOp('message').length, 1);
    assert.equal(await node.ok('send', { user: 'nobody' }, 1), 0);
  });

  test('disconnect closes them with 4403, and the SDK does not reconnect', async () => {
    const conn = await raw('ada-d');
    const client = sdk('ada-d');
    await client.rpc('whoami');
    const closed = next<{ code: number; willRetry: boolean }>((l) => client.on('close', l));
    assert.equal(await node.ok('disconnect', { user: 'ada-d' }), 2);
    assert.deepEqual(await conn.closed, { code: 4403, reason: 'disconnected by the server' });
    assert.deepEqual(await closed, { code: 4403, reason: 'disconnected by the server', willRetry: false });
    assert.equal(client.state, 'closed');
    assert.equal((await node.api('disconnect', { user: 'x' }, { code: 1006 })).error?.code, 'bad_request');
  });

  test('unsubscribe ends the subscription with an unsub push; the SDK channel is errored with forbidden', async () => {
    const conn = await raw('ada-u');
    await conn.request('sub', { ch: 'room:u' });
    const client = sdk('ada-u');
    const channel = client.channel('room:u');
    await channel.subscribe(() => {});
    const errored = next<[string, Error | undefined]>((l) => channel.on('state', (state, error) => l([state, error])), ([state]) => state === 'errored');
    assert.equal(await node.ok('unsubscribe', { user: 'ada-u' }, 'room:u', { reason: 'muted' }), 2);
    assert.deepEqual(await conn.waitFor((m) => m.op === 'unsub', 'the push', undefined, 0), { op: 'unsub', ch: 'room:u', code: 'forbidden', message: 'muted' });
    const [, error] = await errored;
    assert.equal((error as HotlineError).code, 'forbidden');
    await node.ok('publish', 'room:u', 'after');
    assert.equal((await conn.request('ping')).op, 'pong');
    assert.deepEqual(conn.messages('room:u'), [], 'nothing after the push');
  });

  test("call: the SDK's handler answers; no handler, a handler that throws, one too slow and a client gone are CallErrors", async () => {
    const client = sdk('ada-c');
    client.handle<{ a: number; b: number }>('add', ({ a, b }) => a + b);
    client.handle('refuse', () => {
      throw Object.assign(new Error('not now'), { code: 'forbidden' });
    });
    client.handle('stall', () => new Promise(() => {}));
    const id = await client.rpc<string>('whoami');
    assert.equal(await node.ok('call', id, 'add', { a: 2, b: 3 }), 5);
    const none = await node.api('call', id, 'unknown');
    assert.deepEqual([none.error?.name, none.error?.code, none.error?.remote?.code], ['CallError', 'no_handler', 'not_found']);
    const refused = await node.api('call', id, 'refuse');
    assert.deepEqual([refused.error?.code, refused.error?.remote], ['handler_error', { code: 'forbidden', message: 'not now' }]);
    const slow = await node.api('call', id, 'stall', null, { timeout: 200 });
    assert.equal(slow.error?.code, 'timeout');
    client.close();
    await waitFor(async () => (await node.api('call', id, 'add', { a: 1, b: 1 })).error?.code === 'client_gone', 'client_gone');
    assert.equal((await node.api('call', 'no-such.client', 'add')).error?.code, 'client_gone');
  });
});

describe('a client that misbehaves around calls', () => {
  /** The calls a raw client received so far. */
  const calls = (client: ChannelsClient): WireMessage[] => client.ofOp('call');

  test('a reply to a call never made, or a second reply: bad_request; the right reply still counts', async () => {
    const conn = await raw('mallory');
    const id = await idOf(conn);
    const never = await conn.request('reply', { call: 77, result: 'made up' });
    assert.deepEqual([never.op, never.code], ['err', 'bad_request']);
    const pending = node.api('call', id, 'ask', { q: 1 });
    const call = await conn.waitFor((m) => m.op === 'call', 'the call', undefined, 0);
    assert.deepEqual(call, { op: 'call', call: 1, method: 'ask', params: { q: 1 }, timeout: 10_000 });
    assert.equal((await conn.request('reply', { call: 1, result: 'first' })).op, 'ok');
    assert.equal((await conn.request('reply', { call: 1, result: 'second' })).code, 'bad_request');
    assert.deepEqual((await pending).result, 'first');
  });

  test('never replying: the call times out, a late reply is bad_request; past 4 waiting calls, too_many_pending at once', async () => {
    const conn = await raw('mallory-2');
    const id = await idOf(conn);
    const outcomes = (await node.post('call-many', { client: id, method: 'ignore', count: 6, timeout: 300 })) as { result: Record<string, number> };
    assert.deepEqual(outcomes.result, { too_many_pending: 2, timeout: 4 });
    assert.equal(calls(conn).length, 4, 'the refused ones were never sent');
    assert.equal((await conn.request('reply', { call: 1, result: 'late' })).code, 'bad_request');
    // The places are free again.
    const again = node.api('call', id, 'ask');
    const call = await conn.waitFor((m) => m.op === 'call' && m['call'] === 5, 'the next call', undefined, 0);
    await conn.request('reply', { call: call['call'], result: 'ok now' });
    assert.equal((await again).result, 'ok now');
  });

  test('a reply larger than the largest message closes the connection with 1009, and the call fails client_gone', async () => {
    const conn = await raw('mallory-3');
    const id = await idOf(conn);
    const pending = node.api('call', id, 'ask');
    await conn.waitFor((m) => m.op === 'call', 'the call', undefined, 0);
    conn.sendJson({ op: 'reply', id: 99, call: 1, result: 'x'.repeat(300 * 1024) });
    assert.equal((await conn.closed).code, 1009);
    assert.equal((await pending).error?.code, 'client_gone');
  });
});

test('server.publish never reaches /ws: a raw topic publish passes it by, and its own publish throws TopicsDisabledError', async () => {
  const conn = await raw('topics');
  await conn.request('sub', { ch: 'room:1' });
  const plain = new WebSocket(`${node.origin}/topics`);
  const got = new Promise<string>((resolve) => plain.once('message', (data: Buffer) => resolve(data.toString())));
  await new Promise((resolve) => plain.once('open', resolve));
  try {
    const answer = (await node.post('raw-publish', { topic: 'room:1', data: 'not hotline.v1' })) as { reached: number; direct: { name: string; code: string } };
    assert.equal(answer.reached, 1, 'the raw endpoint subscriber only');
    assert.deepEqual([answer.direct.name, answer.direct.code], ['TopicsDisabledError', 'TOPICS_DISABLED']);
    assert.equal(await got, 'not hotline.v1');
    assert.equal((await conn.request('ping')).op, 'pong');
    assert.deepEqual(conn.unparsed, [], 'no frame that is not hotline.v1 reached the channel connection');
    assert.deepEqual(conn.messages('room:1'), []);
  } finally {
    plain.terminate();
  }
});

