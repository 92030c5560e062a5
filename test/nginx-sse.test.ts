// docs/transports.md's nginx block, run as written (ports aside) by a real nginx in front of a
// real `hotline serve`: each /sse event comes through as it is published, not held back in a
// buffer, and an SDK client whose WebSocket this nginx does not carry (it proxies /sse only,
// so /ws is its 404) falls back to the HTTP session through it and publishes and receives.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractBlocks } from './support/docs-extract.js';
import { startCli } from './support/cli-server.js';
import { closeClients, sdk } from './support/delivery.js';
import { haveNginx, Nginx } from './support/nginx.js';
import { ROOT } from './support/packed.js';
import { SseReader } from './support/sse-reader.js';
import { waitFor } from './support/wait.js';

const PAGE = 'docs/transports.md';
const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  closeClients();
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

test("transports.md's nginx block: /sse events flow through unbuffered; the SDK falls back to the session through it", { timeout: 60_000 }, async (t) => {
  if (!haveNginx(t)) return;
  const blocks = extractBlocks(readFileSync(join(ROOT, PAGE), 'utf8'), PAGE).filter((block) => block.lang === 'nginx');
  assert.equal(blocks.length, 1);
  const server = await startCli(0, []);
  cleanup.push(() => server.stop('SIGKILL'));
  const nginx = await Nginx.start(blocks[0]!.text, { upstream: server.port });
  cleanup.push(() => nginx.stop());

  const reader = await SseReader.open(`http://127.0.0.1:${nginx.port}/sse?ch=nginx:feed`);
  assert.equal(reader.status, 200);
  await reader.until((r) => r.named('subscribed').length === 1, 'the subscribed event through nginx');
  const publisher = sdk(`${server.ws}/ws`).channel<{ n: number }>('nginx:feed');
  // Each small event arrives before the next is published: nothing waits for a buffer to fill.
  for (let n = 1; n <= 5; n++) {
    await publisher.publish({ n });
    await reader.until((r) => r.messages().length === n, `event ${n} through nginx`, 3_000);
  }
  assert.deepEqual(
    reader.messages().map((m) => m.offset),
    [1, 2, 3, 4, 5],
  );
  reader.close();

  const client = sdk(`ws://127.0.0.1:${nginx.port}/ws`, { reconnect: { initial: 20, max: 50 }, transports: ['websocket', 'sse'] });
  const channel = client.channel<{ n: number }>('nginx:feed');
  const got: number[] = [];
  channel.on('message', (data) => got.push(data.n));
  await channel.subscribe();
  assert.equal(client.transport, 'sse');
  await channel.publish({ n: 6 });
  await publisher.publish({ n: 7 });
  await waitFor(() => got.length === 2, 'both messages through nginx');
  assert.deepEqual(got, [6, 7]);
  client.close();
});
