// The SSE endpoint on node:http2 (its compatibility API): many streams share one HTTP/2
// connection, each measured by its own response, so a stream whose reader stops is closed as
// a slow consumer while its sibling on the same connection goes on. `hotline serve` has no
// HTTP/2 listener; this is the library's endpoint mounted on one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type ClientHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { channelsEndpoint } from '../src/server/channels.js';
import { sseEndpoint } from '../src/server/sse.js';
import { waitFor } from './support/wait.js';

function read(stream: ClientHttp2Stream): { text: () => string; status: () => number } {
  let text = '';
  let status = 0;
  stream.on('response', (headers) => (status = Number(headers[':status'])));
  stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { text: () => text, status: () => status };
}

test('two streams on one HTTP/2 connection: each delivered; one that stops reading is closed with 1013, the other goes on', { timeout: 60_000 }, async (t) => {
  const channels = channelsEndpoint({ heartbeatInterval: 0, idleTimeout: 0 });
  await channels.ready;
  const sse = sseEndpoint(channels, { backpressureLimit: 256 * 1024 });
  const server = createServer((req, res) => sse.handleRequest(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  // The connection's flow-control window as large as Chromium makes it (15 MiB): with HTTP/2's
  // 64 KiB default, one unread stream would use up the connection's window for all of them.
  const session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  session.on('connect', () => session.setLocalWindowSize(15 * 1024 * 1024));
  t.after(async () => {
    session.destroy();
    sse.close();
    server.close();
    await channels.hub.close();
  });

  const fast = read(session.request({ ':path': '/sse?ch=h2:a' }));
  const slowStream = session.request({ ':path': '/sse?ch=h2:a' });
  const slow = read(slowStream);
  await waitFor(() => fast.text().includes('event: subscribed') && slow.text().includes('event: subscribed'), 'both streams to start');
  assert.equal(fast.status(), 200);
  assert.equal(sse.streams.size, 2);

  await channels.publish('h2:a', { n: 1 });
  await waitFor(() => fast.text().includes('"offset":1') && slow.text().includes('"offset":1'), 'the first message on both');

  slowStream.pause();
  const pad = 'x'.repeat(16 * 1024);
  let n = 1;
  // Paced by the reader that reads: only the other one falls behind.
  while (sse.counters.slowConsumerCloses === 0 && n < 400) {
    await channels.publish('h2:a', { n: ++n, pad });
    await waitFor(() => fast.text().includes(`"offset":${n},`), `message ${n} on the stream that reads`);
  }
  assert.equal(sse.counters.slowConsumerCloses, 1, 'the stream that stopped reading was closed');
  const offsets = [...fast.text().matchAll(/"offset":(\d+),"data"/g)].map((m) => Number(m[1]));
  assert.deepEqual(offsets, Array.from({ length: n }, (_, i) => i + 1));
  slowStream.resume();
  await waitFor(() => slow.text().includes('event: close'), 'the slow stream reads its close event');
  assert.match(slow.text(), /event: close\ndata: \{"code":1013,/);
  assert.equal(session.destroyed, false, 'the connection itself stays');
});
