// The HTTP session endpoint's timer logic and bounds with fake requests and responses (whose
// unread bytes the test sets) on a real hub, and mocked timers: heartbeats, the idle
// timeout of a session whose reader reads nothing, the slow-consumer close, the end of a
// session with its stream, and close().
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { channelsEndpoint } from './channels.js';
import { httpSessionEndpoint, type HttpSessionOptions } from './http-session.js';
import { StreamAdmission } from './stream-admission.js';
import { FakeResponse } from '../../test/support/fake-response.js';

function get(): IncomingMessage {
  return { method: 'GET', url: '/sse/session', headers: {}, socket: { remoteAddress: '192.0.2.1' } } as unknown as IncomingMessage;
}

/** A POST whose body arrives on the next turn. */
function post(session: string, body: string): IncomingMessage {
  const req = Object.assign(new EventEmitter(), {
    method: 'POST',
    url: '/sse/session',
    headers: { 'hotline-session': session, 'content-type': 'application/x-ndjson' },
    socket: { remoteAddress: '192.0.2.1' },
    resume() {},
    destroy() {},
  });
  setImmediate(() => {
    req.emit('data', Buffer.from(body));
    req.emit('end');
  });
  return req as unknown as IncomingMessage;
}

const turns = async (n = 10): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

async function setup(t: TestContext, options: Omit<HttpSessionOptions, 'admission'>) {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout', 'Date'], now: 1_000_000 });
  const channels = channelsEndpoint({ heartbeatInterval: 0, idleTimeout: 0 });
  await channels.ready;
  const endpoint = httpSessionEndpoint(channels, { admission: new StreamAdmission({ maxStreams: 10, maxStreamsPerAddress: 10 }), ...options });
  t.after(() => {
    endpoint.close();
    void channels.hub.close();
  });
  const open = async (): Promise<{ res: FakeResponse; id: string }> => {
    const res = new FakeResponse();
    endpoint.handleRequest(get(), res as unknown as ServerResponse);
    await turns();
    const id = /"session":"([^"]+)"/.exec(res.body)?.[1];
    assert.ok(id !== undefined, res.body);
    return { res, id };
  };
  const send = async (id: string, body: string): Promise<FakeResponse> => {
    const res = new FakeResponse();
    endpoint.handleRequest(post(id, body), res as unknown as ServerResponse);
    await turns();
    return res;
  };
  return { channels, endpoint, open, send };
}

test('a comment line every heartbeatInterval; a session whose bytes wait unread for idleTimeout is dropped, and its id with it', async (t) => {
  const { endpoint, open, send } = await setup(t, { heartbeatInterval: 1_000, idleTimeout: 5_000 });
  const reading = await open();
  const stalled = await open();
  assert.notEqual(reading.id, stalled.id);
  assert.equal(Buffer.from(reading.id, 'base64url').length, 24, '192 random bits');
  const before = reading.res.body.length;
  t.mock.timers.tick(2_000);
  assert.equal(reading.res.body.slice(before), ':\n\n:\n\n');

  stalled.res.writableLength = 4096;
  t.mock.timers.tick(4_000);
  assert.equal(stalled.res.destroyed, false, 'not yet: 4 s');
  stalled.res.emit('drain');
  t.mock.timers.tick(4_000);
  assert.equal(stalled.res.destroyed, false, 'read 4 s ago');
  t.mock.timers.tick(2_000);
  assert.equal(stalled.res.destroyed, true, 'nothing read for 5 s');
  assert.equal(endpoint.counters.idleCloses, 1);
  assert.equal(endpoint.sessions.size, 1);
  assert.equal((await send(stalled.id, '{"op":"ping","id":1}\n')).status, 404, 'its id ends with it');
  assert.equal((await send(reading.id, '{"op":"ping","id":1}\n')).status, 204);
  assert.match(reading.res.body, /data: \{"op":"pong","id":1\}\n\n$/);
});

test('live messages past the backpressure limit close the session with event close 1013, after what was written', async (t) => {
  const { channels, endpoint, open, send } = await setup(t, { backpressureLimit: 1_000, closeTimeout: 2_000 });
  const { res, id } = await open();
  assert.equal((await send(id, '{"op":"sub","id":1,"ch":"a"}\n')).status, 204);
  await channels.publish('a', 1);
  assert.match(res.body, /data: \{"op":"msg","ch":"a","offset":1,"data":1\}\n\n$/);
  res.writableLength = 1_001;
  await channels.publish('a', 2);
  assert.doesNotMatch(res.body, /"offset":2/);
  assert.match(res.body, /event: close\ndata: \{"code":1013,"reason":"slow consumer: reconnect and recover"\}\n\n$/);
  assert.equal(endpoint.counters.slowConsumerCloses, 1);
  t.mock.timers.tick(2_000);
  assert.equal(res.destroyed, true, 'its unread bytes keep it closeTimeout, no longer');
  assert.equal(channels.hub.localSubscribers('a'), 0);
});

test('close(): every session ends with event close 1001', async (t) => {
  const { endpoint, open } = await setup(t, {});
  const { res } = await open();
  endpoint.close();
  assert.match(res.body, /event: close\ndata: \{"code":1001,"reason":"server shutting down"\}\n\n$/);
});
