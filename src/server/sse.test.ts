// The SSE endpoint's timer logic and bounds with a fake response (whose unread bytes the test
// sets) on a real hub, and mocked timers: heartbeats, the idle timeout of a stream whose
// client reads nothing, the slow-consumer close, and the overall cap on streams.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { channelsEndpoint } from './channels.js';
import { sseEndpoint, type SseOptions } from './sse.js';
import { FakeResponse } from '../../test/support/fake-response.js';

function request(url: string, address = '192.0.2.1', headers: Record<string, string> = {}): IncomingMessage {
  return { method: 'GET', url, headers, socket: { remoteAddress: address } } as unknown as IncomingMessage;
}

async function setup(t: TestContext, options: SseOptions) {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout', 'Date'], now: 1_000_000 });
  const channels = channelsEndpoint({ heartbeatInterval: 0, idleTimeout: 0 });
  await channels.ready;
  const sse = sseEndpoint(channels, options);
  t.after(() => {
    sse.close();
    void channels.hub.close();
  });
  const open = async (url: string, address?: string, headers?: Record<string, string>): Promise<FakeResponse> => {
    const res = new FakeResponse();
    sse.handleRequest(request(url, address, headers), res as unknown as ServerResponse);
    // The hub answers the subs on its own turns.
    for (let i = 0; i < 20 && res.status === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    return res;
  };
  return { channels, sse, open };
}

test('a comment line every heartbeatInterval; a stream whose bytes wait unread for idleTimeout is dropped', async (t) => {
  const { sse, open } = await setup(t, { heartbeatInterval: 1_000, idleTimeout: 5_000 });
  const reading = await open('/sse?ch=a');
  const stalled = await open('/sse?ch=a');
  assert.equal(reading.status, 200);
  assert.equal(sse.streams.size, 2);
  const before = reading.body.length;
  t.mock.timers.tick(1_000);
  assert.equal(reading.body.slice(before), ':\n\n');
  t.mock.timers.tick(2_000);
  assert.equal(reading.body.slice(before), ':\n\n:\n\n:\n\n');

  // From now on the stalled one's client reads nothing: its bytes wait.
  stalled.writableLength = 4096;
  t.mock.timers.tick(4_000);
  assert.equal(stalled.destroyed, false, 'not yet: 4 s');
  // A client that reads (a drain) starts the count again.
  stalled.emit('drain');
  t.mock.timers.tick(4_000);
  assert.equal(stalled.destroyed, false, 'read 4 s ago');
  t.mock.timers.tick(2_000);
  assert.equal(stalled.destroyed, true, 'nothing read for 5 s');
  assert.equal(reading.destroyed, false);
  assert.equal(sse.counters.idleCloses, 1);
  assert.equal(sse.streams.size, 1);
});

test('live messages past the backpressure limit close the stream with event close 1013, after what was written: never a hole', async (t) => {
  const { channels, sse, open } = await setup(t, { backpressureLimit: 1_000, closeTimeout: 2_000 });
  const res = await open('/sse?ch=a');
  await channels.publish('a', 1);
  assert.match(res.body, /"offset":1,"data":1\}\n\n$/);
  res.writableLength = 1_001;
  await channels.publish('a', 2);
  assert.doesNotMatch(res.body, /"offset":2/);
  assert.match(res.body, /event: close\ndata: \{"code":1013,"reason":"slow consumer: reconnect and recover"\}\n\n$/);
  assert.equal(res.writableEnded, true);
  assert.equal(sse.counters.slowConsumerCloses, 1);
  // Its last bytes may keep the connection for closeTimeout, no longer.
  t.mock.timers.tick(2_000);
  assert.equal(res.destroyed, true);
  assert.equal(channels.hub.localSubscribers('a'), 0);
});

test('maxStreams: past it 503 with Retry-After, whoever asks; maxStreamsPerAddress: 429 for that address only', async (t) => {
  const { open } = await setup(t, { maxStreams: 3, maxStreamsPerAddress: 2 });
  const a1 = await open('/sse?ch=a', '192.0.2.1');
  const a2 = await open('/sse?ch=a', '192.0.2.1');
  const a3 = await open('/sse?ch=a', '192.0.2.1');
  const b1 = await open('/sse?ch=a', '192.0.2.2');
  const c1 = await open('/sse?ch=a', '192.0.2.3');
  assert.deepEqual([a1.status, a2.status, a3.status, b1.status, c1.status], [200, 200, 429, 200, 503]);
  assert.equal(a3.headers['Retry-After'], '5');
  assert.equal(c1.headers['Retry-After'], '5');
  assert.equal(c1.body, 'too many streams\n');
  a1.destroy();
  const c2 = await open('/sse?ch=a', '192.0.2.3');
  assert.equal(c2.status, 200, 'a closed stream frees its place');
});

test('an EventSource (Accept: text/event-stream) is told a refusal that passes in a stream of one event, to try again after Retry-After; others keep the status', async (t) => {
  const { open } = await setup(t, { maxStreams: 2, maxStreamsPerAddress: 1 });
  const eventSource = { accept: 'text/event-stream' };
  // A refusal that does not pass stays a status: the EventSource stops, as it should.
  assert.equal((await open('/sse', '192.0.2.1', eventSource)).status, 400);
  assert.equal((await open('/sse?ch=a', '192.0.2.1', eventSource)).status, 200);
  const overShare = await open('/sse?ch=a', '192.0.2.1', eventSource);
  assert.equal((await open('/sse?ch=a', '192.0.2.2', eventSource)).status, 200);
  const full = await open('/sse?ch=a', '192.0.2.3', eventSource);
  for (const [res, reason] of [
    [overShare, '429 at most 1 streams per client address'],
    [full, '503 too many streams'],
  ] as const) {
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    const [, wait] = /^retry: (\d+)\n\n/.exec(res.body) ?? [];
    // Retry-After: 5, spread by up to half again as a stream's retry hint is.
    assert.ok(Number(wait) >= 5_000 && Number(wait) <= 7_500, `retry ${wait}`);
    assert.ok(res.body.endsWith(`event: close\ndata: ${JSON.stringify({ code: 1013, reason })}\n\n`), res.body);
    assert.equal(res.writableEnded, true, 'the one event ends the response');
  }
  // Without asking for an event stream (curl, a health check), the status.
  assert.equal((await open('/sse?ch=a', '192.0.2.4')).status, 503);
});

test('close(): every stream ends with event close 1001', async (t) => {
  const { sse, open } = await setup(t, {});
  const res = await open('/sse?ch=a&ch=b');
  sse.close();
  assert.match(res.body, /event: close\ndata: \{"code":1001,"reason":"server shutting down"\}\n\n$/);
});
