// The HTTP API of `hotline serve` over real HTTP, against the app in a process of its own
// (test/support/app-server.ts: the API key cannot be set from the CLI before the config
// file), with hotline.v1 subscribers receiving what a backend published: each method's
// answer and what the clients saw, the errors with their statuses, the OpenAPI document
// (its examples run against the server and answered as its schemas say), /metrics and the
// inspector's view of the calls.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import WebSocket from 'ws';
import type { AttackTarget } from './support/attack.js';
import { apiResult, callApi } from './support/api-client.js';
import { startAppTarget } from './support/app-server.js';
import { ChannelsClient, ok, type WireMessage } from './support/channels-client.js';

const KEY = 'test-api-key-0123456789';

let server: AttackTarget;
const clients: ChannelsClient[] = [];

/** A message the client received (already, or from now on) that passes `test`. */
function seen(client: ChannelsClient, test: (message: WireMessage) => boolean): Promise<WireMessage> {
  return client.waitFor(test, 'a message', undefined, 0);
}

async function connect(user?: string): Promise<ChannelsClient> {
  const client = await ChannelsClient.connect(`${server.ws}/ws${user === undefined ? '' : `?user=${user}`}`);
  clients.push(client);
  return client;
}

before(async () => {
  server = await startAppTarget({ api: { key: KEY, requestTimeout: 2000 }, users: true, inspectorPreviews: false });
});
after(async () => {
  for (const client of clients) client.terminate();
  await server.stop();
});

describe('methods', () => {
  test('publish: subscribers receive the message; the answer is its offset; a repeated key is not delivered again', async () => {
    const ada = await connect('ada');
    await ok(ada, 'sub', { ch: 'news' });
    const first = await apiResult<{ epoch: string; offset: number; delivered: number }>(server.http, 'publish', { channel: 'news', data: { text: 'hello' }, idempotencyKey: 'job-1' }, KEY);
    assert.equal(first.offset, 1);
    assert.equal(first.delivered, 1);
    assert.equal(typeof first.epoch, 'string');
    const message = await seen(ada, (m) => m.op === 'msg' && m.ch === 'news');
    assert.deepEqual(message, { op: 'msg', ch: 'news', offset: 1, data: { text: 'hello' } });
    const repeat = await apiResult(server.http, 'publish', { channel: 'news', data: { text: 'hello' }, idempotencyKey: 'job-1' }, KEY);
    assert.deepEqual(repeat, { ...first, delivered: 0 });
    await apiResult(server.http, 'publish', { channel: 'news', data: 'second' }, KEY);
    await seen(ada, (m) => m.op === 'msg' && m.data === 'second');
    assert.deepEqual(
      ada.messages('news').map((m) => m.data),
      [{ text: 'hello' }, 'second'],
      'the repeat was not delivered',
    );
  });

  test('broadcast: one message to each channel, a result or an error per channel in order', async () => {
    const lin = await connect('lin');
    await ok(lin, 'sub', { ch: 'b:1' });
    await ok(lin, 'sub', { ch: 'b:2' });
    const result = await apiResult<{ responses: Array<Record<string, unknown>> }>(server.http, 'broadcast', { channels: ['b:1', 'bad name', 'b:2'], data: { n: 7 } }, KEY);
    assert.equal(result.responses.length, 3);
    assert.deepEqual(result.responses.map((r) => r.channel), ['b:1', 'bad name', 'b:2']);
    assert.deepEqual(result.responses[0]!.result, { epoch: (result.responses[0]!.result as { epoch: string }).epoch, offset: 1, delivered: 1 });
    assert.equal((result.responses[1]!.error as { code: string }).code, 'bad_request');
    assert.match((result.responses[1]!.error as { message: string }).message, /not a channel name/);
    assert.equal((result.responses[2]!.result as { delivered: number }).delivered, 1);
    await seen(lin, (m) => m.op === 'msg' && m.ch === 'b:1');
    await seen(lin, (m) => m.op === 'msg' && m.ch === 'b:2');
    const tooMany = await callApi(server.http, 'broadcast', { channels: Array.from({ length: 1001 }, (_, i) => `c${i}`), data: 1 }, { key: KEY });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body!.error!.code, 'bad_request');
    assert.match(tooMany.body!.error!.message, /^channels: must NOT have more than 1000 items/);
  });

  test('history: the newest messages, limit and before as on the wire', async () => {
    for (let i = 1; i <= 5; i++) await apiResult(server.http, 'publish', { channel: 'h', data: i }, KEY);
    const page = await apiResult<{ epoch: string; messages: Array<{ offset: number; data: unknown }>; more: boolean }>(server.http, 'history', { channel: 'h', limit: 2 }, KEY);
    assert.deepEqual(page.messages, [
      { offset: 4, data: 4 },
      { offset: 5, data: 5 },
    ]);
    assert.equal(page.more, true);
    const older = await apiResult<typeof page>(server.http, 'history', { channel: 'h', limit: 10, before: 4 }, KEY);
    assert.deepEqual(older.messages.map((m) => m.data), [1, 2, 3]);
    assert.equal(older.more, false);
    assert.equal(older.epoch, page.epoch);
  });

  test('presence: the members subscribed, anonymous connections too (without an id)', async () => {
    const sam = await connect('sam');
    const kim = await connect('kim');
    const anonymous = await connect();
    for (const client of [sam, kim, anonymous]) await ok(client, 'sub', { ch: 'room' });
    const { members, count, truncated } = await apiResult<{ members: Array<{ id?: string; client: string }>; count: number; truncated?: true }>(server.http, 'presence', { channel: 'room' }, KEY);
    assert.equal(count, 3);
    assert.equal(truncated, undefined, 'all of them listed');
    // One member per subscriber (sort puts the anonymous one, without an id, last), each with its own client id.
    assert.deepEqual(members.map((m) => m.id).sort(), ['kim', 'sam', undefined]);
    for (const member of members) assert.ok(typeof member.client === 'string' && member.client !== '', `a client id in ${JSON.stringify(member)}`);
    assert.equal(new Set(members.map((m) => m.client)).size, 3, 'a client id per member');
  });

  test('channels: names with their subscriber counts, by pattern, in pages', async () => {
    const a = await connect('pa');
    const b = await connect('pb');
    for (const ch of ['list:a', 'list:b', 'list:c']) await ok(a, 'sub', { ch });
    await ok(b, 'sub', { ch: 'list:b' });
    const first = await apiResult<{ channels: Array<{ name: string; subscribers: number }>; more: boolean }>(server.http, 'channels', { pattern: 'list:*', limit: 2 }, KEY);
    assert.deepEqual(first, {
      channels: [
        { name: 'list:a', subscribers: 1 },
        { name: 'list:b', subscribers: 2 },
      ],
      more: true,
    });
    const rest = await apiResult(server.http, 'channels', { pattern: 'list:*', after: 'list:b' }, KEY);
    assert.deepEqual(rest, { channels: [{ name: 'list:c', subscribers: 1 }], more: false });
  });

  test('unsubscribe: the user gets an unsub push with forbidden; other users keep theirs', async () => {
    const joe = await connect('joe');
    const eve = await connect('eve');
    await ok(joe, 'sub', { ch: 'u' });
    await ok(eve, 'sub', { ch: 'u' });
    const result = await apiResult(server.http, 'unsubscribe', { user: 'joe', channel: 'u', reason: 'moved out' }, KEY);
    assert.deepEqual(result, { unsubscribed: 1 });
    const push = await seen(joe, (m) => m.op === 'unsub');
    assert.deepEqual(push, { op: 'unsub', ch: 'u', code: 'forbidden', message: 'moved out' });
    await apiResult(server.http, 'publish', { channel: 'u', data: 'after' }, KEY);
    await seen(eve, (m) => m.op === 'msg' && m.data === 'after');
    assert.equal(joe.messages('u').length, 0, 'joe no longer receives u');
  });

  test('disconnect: every connection of the user closes with 4403, or 1012 when it should reconnect', async () => {
    const first = await connect('max');
    const second = await connect('max');
    const other = await connect('ann');
    const result = await apiResult(server.http, 'disconnect', { user: 'max', reason: 'banned' }, KEY);
    assert.deepEqual(result, { disconnected: 2 });
    assert.deepEqual(await first.closed, { code: 4403, reason: 'banned' });
    assert.deepEqual(await second.closed, { code: 4403, reason: 'banned' });
    await ok(other, 'ping');
    const again = await connect('max');
    await apiResult(server.http, 'disconnect', { user: 'max', reconnect: true }, KEY);
    assert.equal((await again.closed).code, 1012);
    const both = await callApi(server.http, 'disconnect', { user: 'max', client: 'x.1' }, { key: KEY });
    assert.equal(both.status, 400);
    assert.match(both.body!.error!.message, /^user: give either user or client/);
    const badCode = await callApi(server.http, 'disconnect', { user: 'max', code: 1006 }, { key: KEY });
    assert.equal(badCode.status, 400);
    assert.match(badCode.body!.error!.message, /close code 1006/);
  });

  test('info: this node with its connections, users and channels', async () => {
    const { nodes } = await apiResult<{ nodes: Array<Record<string, number | string>> }>(server.http, 'info', undefined, KEY);
    assert.equal(nodes.length, 1);
    const [node] = nodes;
    const open = clients.filter((c) => c.ws.readyState === WebSocket.OPEN);
    assert.equal(node!.connections, open.length);
    assert.ok((node!.users as number) >= 1 && (node!.users as number) < open.length, 'distinct users, anonymous ones not counted');
    assert.ok((node!.channels as number) >= 3);
    assert.equal(typeof node!.node, 'string');
  });
});

describe('errors', () => {
  test('no key, a wrong key, or another scheme: 401 with WWW-Authenticate, and the connection closed', async () => {
    for (const key of [null, 'wrong-key-wrong-key', `${KEY}x`]) {
      const answer = await callApi(server.http, 'publish', { channel: 'x', data: 1 }, { key });
      assert.equal(answer.status, 401);
      assert.deepEqual(answer.body, { error: { code: 'unauthorized', message: 'the API key is required: Authorization: apikey KEY' } });
      assert.equal(answer.headers['www-authenticate'], 'apikey');
    }
    const bearer = await callApi(server.http, 'info', undefined, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(bearer.status, 401);
  });

  test('an unknown method is 404, GET is 405 with Allow, a body that is not JSON is 415', async () => {
    const unknown = await callApi(server.http, 'publsh', {}, { key: KEY });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body!.error!.code, 'not_found');
    assert.match(unknown.body!.error!.message, /no API method "publsh"; the methods are publish, broadcast/);
    const get = await callApi(server.http, 'info', undefined, { key: KEY, method: 'GET' });
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'POST');
    const form = await callApi(server.http, 'publish', undefined, { key: KEY, raw: 'channel=x', contentType: 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 415);
    assert.equal(form.body!.error!.code, 'unsupported_media_type');
  });

  test('bad JSON, a missing field, a field of the wrong type or an unknown field: 400 naming it', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['publish', undefined, /^the body is not JSON/],
      ['publish', { data: 1 }, /^channel: is required$/],
      ['publish', { channel: 7, data: 1 }, /^channel: must be string$/],
      ['publish', { channel: 'x', data: 1, skip: true }, /^skip: is not a field of this method$/],
      ['history', { channel: 'x', limit: 0 }, /^limit: must be >= 1$/],
      ['broadcast', { channels: ['a', 5], data: 1 }, /^channels\.1: must be string$/],
      ['publish', [1], /^body: must be a JSON object$/],
    ];
    for (const [method, body, message] of cases) {
      const answer = await callApi(server.http, method, body, body === undefined ? { key: KEY, raw: '{"channel": "x",' } : { key: KEY });
      assert.equal(answer.status, 400, `${method} ${JSON.stringify(body)}`);
      assert.equal(answer.body!.error!.code, 'bad_request');
      assert.match(answer.body!.error!.message, message);
    }
  });

  test('data over maxDataLength is 400 too_large; a body over maxBodyBytes is 413', async () => {
    const big = await callApi(server.http, 'publish', { channel: 'x', data: 'x'.repeat(70_000) }, { key: KEY });
    assert.equal(big.status, 400);
    assert.equal(big.body!.error!.code, 'too_large');
    const huge = await callApi(server.http, 'publish', { channel: 'x', data: 'x'.repeat(300_000) }, { key: KEY });
    assert.equal(huge.status, 413);
    assert.deepEqual(huge.body, { error: { code: 'too_large', message: 'the body is larger than 262144 bytes' } });
    assert.equal(huge.headers.connection, 'close');
  });
});

describe('the OpenAPI document', () => {
  test('is served without the key, names every method, and its examples run and are answered as its schemas say', async () => {
    const response = await fetch(`${server.http}/api/openapi.json`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const doc = (await response.json()) as {
      openapi: string;
      paths: Record<string, { post: { requestBody: { content: { 'application/json': { schema: object; example: unknown } } }; responses: Record<string, { content: { 'application/json': { schema: object; example?: unknown } } }> } }>;
      components: { schemas: Record<string, object> };
    };
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(Object.keys(doc.paths), ['publish', 'broadcast', 'history', 'presence', 'channels', 'disconnect', 'unsubscribe', 'info'].map((m) => `/api/${m}`));
    const ajv = new Ajv2020({ strict: false });
    ajv.addSchema({ $id: 'doc', components: doc.components });
    for (const [path, { post }] of Object.entries(doc.paths)) {
      const request = post.requestBody.content['application/json'];
      assert.equal(ajv.validate(request.schema, request.example), true, `${path}: the request example fits its schema (${ajv.errorsText()})`);
      const ok200 = post.responses['200']!.content['application/json'];
      const resolve = (schema: object): object => JSON.parse(JSON.stringify(schema).replaceAll('"#/components', '"doc#/components')) as object;
      assert.equal(ajv.validate(resolve(ok200.schema), ok200.example), true, `${path}: the answer example fits its schema`);
      assert.ok(post.responses['401'] && post.responses['400'] && post.responses['413'], `${path} documents its errors`);
      // The example, sent to the server, is answered as the schema says.
      const answer = await callApi(server.http, path.slice('/api/'.length), request.example, { key: KEY });
      assert.equal(answer.status, 200, `${path}: ${answer.text}`);
      assert.equal(ajv.validate(resolve(ok200.schema), answer.body), true, `${path}: the answer fits its schema (${ajv.errorsText()})`);
    }
  });
});

describe('operators', () => {
  test('/metrics counts API calls by method and status; unknown paths share one label', async () => {
    await callApi(server.http, 'nope-1', {}, { key: KEY });
    await callApi(server.http, 'nope-2', {}, { key: KEY });
    const { text } = await server.get('/metrics');
    assert.match(text, /^hotline_api_requests_total\{method="publish",status="200"\} \d+$/m);
    assert.match(text, /^hotline_api_requests_total\{method="publish",status="401"\} \d+$/m);
    const unknown = /^hotline_api_requests_total\{method="unknown",status="404"\} (\d+)$/m.exec(text);
    assert.ok(unknown !== null && Number(unknown[1]) >= 3, 'every unknown method counted under one label');
    assert.doesNotMatch(text, /nope-1/);
  });

  test('the inspector shows the recent calls (never the key, no bodies without previews) and each connection’s user', async () => {
    const watched = await connect('zed');
    await apiResult(server.http, 'publish', { channel: 'seen', data: { secret: 'do-not-show' } }, KEY);
    const inspector = new WebSocket(`${server.ws}/inspect/ws`);
    const snapshot = await new Promise<Record<string, unknown>>((resolve, reject) => {
      inspector.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()) as Record<string, unknown>));
      inspector.once('error', reject);
    });
    inspector.close();
    const text = JSON.stringify(snapshot);
    const api = snapshot.api as { calls: Array<Record<string, unknown>>; total: number };
    const last = api.calls.at(-1)!;
    assert.equal(last.method, 'publish');
    assert.equal(last.status, 200);
    assert.equal(typeof last.duration, 'number');
    assert.equal(last.preview, undefined);
    assert.doesNotMatch(text, new RegExp(KEY));
    assert.doesNotMatch(text, /do-not-show/);
    const users = (snapshot.connections as Array<{ endpoint: string; user: string | null }>).filter((c) => c.endpoint === '/ws').map((c) => c.user);
    assert.ok(users.includes('zed'));
    assert.ok(users.includes(null), 'anonymous connections show no user');
    void watched;
  });
});

test('without api.key the API is off: every /api/ path answers 404', async () => {
  const off = await startAppTarget({});
  try {
    for (const path of ['publish', 'openapi.json']) {
      const answer = await callApi(off.http, path, {}, { key: KEY });
      assert.equal(answer.status, 404);
      assert.equal(answer.body!.error!.code, 'not_found');
      assert.match(answer.body!.error!.message, /the HTTP API is off/);
    }
  } finally {
    await off.stop();
  }
});

