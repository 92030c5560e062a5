// /sse admits a request as /ws admits an upgrade: the application's `authenticate` (cookie,
// query token, Authorization header) and `canSubscribe` through the same hub, refusing with
// the HTTP status before a stream starts. An SSE subscriber is a presence member like any
// other (its own join first), and sees others join, update and leave; ephemeral messages come
// as events without an id; heartbeats are comment lines.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ChildLines } from './support/child-lines.js';
import { ChannelsClient } from './support/channels-client.js';
import { SseReader } from './support/sse-reader.js';

const SCRIPT = fileURLToPath(new URL('./support/sse-server.ts', import.meta.url));

describe('/sse with an application authenticate and canSubscribe', () => {
  let child: ChildProcess;
  let base = '';
  before(async () => {
    child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, JSON.stringify({ heartbeatInterval: 50 })], { stdio: ['pipe', 'pipe', 'inherit'] });
    const line = await new ChildLines(child).next((l) => l.startsWith('sse-server ready'), 'the server to start', 20_000);
    base = `http://127.0.0.1:${/port=(\d+)/.exec(line)![1]}`;
  });
  after(() => {
    child?.stdin!.end();
  });

  test('no credentials: 401; an unknown token: 403; each with the reason and no stream', async () => {
    const none = await SseReader.open(`${base}/sse?ch=room:1`);
    assert.equal(none.status, 401);
    assert.equal(await none.text(), 'sign in first\n');
    const unknown = await SseReader.open(`${base}/sse?ch=room:1&token=mallory`);
    assert.equal(unknown.status, 403);
    assert.equal(await unknown.text(), 'unknown token\n');
  });

  test('authenticate sees the client address a trusted proxy forwarded, as on /ws', async () => {
    const refused = await SseReader.open(`${base}/sse?ch=room:1&token=where`, { 'x-forwarded-for': '203.0.113.9' });
    assert.equal(refused.status, 403);
    assert.equal(await refused.text(), 'from 203.0.113.9\n');
  });

  test('a cookie, a query token and a bearer header each open a stream', async () => {
    for (const [how, url, headers] of [
      ['cookie', `${base}/sse?ch=room:1`, { cookie: 'theme=dark; session=alice' }],
      ['query', `${base}/sse?ch=room:1&token=alice`, {}],
      ['header', `${base}/sse?ch=room:1`, { authorization: 'Bearer alice' }],
    ] as const) {
      const reader = await SseReader.open(url, headers);
      assert.equal(reader.status, 200, how);
      await reader.until((r) => r.named('subscribed').length === 1, `the subscribed event (${how})`);
      reader.close();
    }
  });

  test('canSubscribe refuses one channel of the list: 403 with the hub answer, and nothing streamed', async () => {
    const refused = await SseReader.open(`${base}/sse?ch=room:1&ch=private:alice&token=bob`);
    assert.equal(refused.status, 403);
    const text = await refused.text();
    assert.match(text, /private:alice/);
    assert.doesNotMatch(text, /event:/);
    const allowed = await SseReader.open(`${base}/sse?ch=room:1&ch=private:alice&token=alice`);
    assert.equal(allowed.status, 200);
    await allowed.until((r) => r.named('subscribed').length === 2, 'both channels');
    allowed.close();
  });

  test('an SSE subscriber is in presence, sees others join and leave, and heartbeats arrive as comments', async () => {
    const reader = await SseReader.open(`${base}/sse?ch=room:p&token=alice`);
    await reader.until((r) => r.named('subscribed').length === 1, 'subscribed');
    // Every subscriber is a member and gets its own join first, right after its `subscribed`.
    await reader.until((r) => r.named('join').length >= 1, 'its own join event');
    const own = reader.named('join')[0]!;
    assert.equal(reader.events.findIndex((e) => e.event === 'join'), reader.events.findIndex((e) => e.event === 'subscribed') + 1);
    assert.equal(typeof (own.member as { client?: unknown }).client, 'string');
    assert.deepEqual(own, { op: 'join', ch: 'room:p', member: { id: 'alice', client: (own.member as { client: string }).client } });
    const bob = await ChannelsClient.connect(`${base.replace('http', 'ws')}/ws?token=bob`);
    await bob.request('sub', { ch: 'room:p' });
    const presence = await bob.request('presence', { ch: 'room:p' });
    const members = presence.members as Array<{ id: string; client: string }>;
    assert.deepEqual(members.map((m) => m.id).sort(), ['alice', 'bob']);
    assert.deepEqual(
      members.find((m) => m.id === 'alice'),
      own.member,
    );
    const bobMember = members.find((m) => m.id === 'bob')!;
    await reader.until((r) => r.named('join').length >= 2, "bob's join event");
    assert.deepEqual(reader.named('join'), [own, { op: 'join', ch: 'room:p', member: bobMember }]);
    // A presence state change is an `update` event; an ephemeral publish an `ephemeral` event without an id.
    await bob.request('state', { ch: 'room:p', state: { typing: true } });
    await reader.until((r) => r.named('update').length >= 1, 'the update event');
    assert.deepEqual(reader.named('update'), [{ op: 'update', ch: 'room:p', member: { ...bobMember, state: { typing: true } } }]);
    const idBefore = reader.lastEventId;
    await bob.request('pub', { ch: 'room:p', data: { x: 1 }, ephemeral: true });
    await reader.until((r) => r.named('ephemeral').length >= 1, 'the ephemeral event');
    // The server stamps who sent it: bob's member's client id.
    assert.deepEqual(reader.named('ephemeral'), [{ op: 'ephemeral', ch: 'room:p', client: bobMember.client, data: { x: 1 } }]);
    assert.match(reader.raw, /\nevent: ephemeral\ndata: [^\n]*\n\n/);
    assert.doesNotMatch(reader.raw, /id: [^\n]*\nevent: ephemeral|event: ephemeral\nid:/);
    assert.equal(reader.lastEventId, idBefore, 'an ephemeral message moves no position');
    await bob.close();
    await reader.until((r) => r.named('leave').length >= 1, 'the leave event');
    assert.deepEqual(reader.named('leave'), [{ op: 'leave', ch: 'room:p', member: { ...bobMember, state: { typing: true } } }]);
    await reader.until((r) => r.comments >= 2, 'two heartbeats');
    assert.equal(reader.named('join').length, 2, 'no other join');
    reader.close();
  });
});
