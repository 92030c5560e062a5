// The SDK with `encoding: 'msgpack'` in headless Chromium, beside a Node SDK client speaking
// JSON, on one channel of a real `hotline serve`: a Node publisher (msgpack) and the page
// publish bytes (Uint8Array) and JSON objects; both subscribers see every message with the
// same offsets and contents, bytes as Uint8Array. Then both subscribers' connections are cut
// (TCP resets through proxies, no close frame) while the publisher goes on: each resubscribes
// with `recovered: true` and gets what it missed from history, exactly once and in order, in
// its own encoding.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { WebSocket as NodeWebSocket } from '../src/node/client.js';
import { connect, type Channel, type HotlineClient, type WebSocketConstructorLike } from '../src/client/index.js';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { CLI, startCli, type CliServer } from './support/cli-server.js';
import { freePort } from './support/ports.js';
import { CutProxy } from './support/sdk-proxy.js';
import { waitFor } from './support/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = fileURLToPath(new URL('../dist/hotline.js', import.meta.url));
const HotlineWebSocket = NodeWebSocket as unknown as WebSocketConstructorLike;
const CHANNEL = 'doc:mixed';

type Data = Uint8Array | { seq: number; from: string };

/** What a subscriber saw, comparable across Node and the page: bytes as a list of numbers. */
interface Seen {
  offset: number;
  bytes?: number[];
  json?: unknown;
}

/** The payload of the i-th message: bytes on odd steps (all 256 values over the run), JSON on even ones. */
function payload(i: number): Data {
  return i % 2 === 1 ? Uint8Array.from({ length: 1 + (i % 7) * 40 }, (_, k) => (i * 37 + k) & 255) : { seq: i, from: 'node' };
}

function seen(data: unknown, offset: number): Seen {
  return data instanceof Uint8Array ? { offset, bytes: [...data] } : { offset, json: data };
}

const pageScript = (url: string): string => String.raw`
window.sdk = { sockets: [], subscribed: [], seen: [] };
window.sdkReady = (async () => {
  const { connect } = await import('/hotline.js');
  // The page's own WebSocket, recorded to show the protocol it spoke.
  class Recorded extends WebSocket {
    constructor(url, protocols) { super(url, protocols); window.sdk.sockets.push(this); }
  }
  const client = connect(${JSON.stringify(url)}, { encoding: 'msgpack', WebSocket: Recorded, reconnect: { initial: 100, max: 400 } });
  window.sdk.client = client;
  const channel = client.channel(${JSON.stringify(CHANNEL)});
  window.sdk.channel = channel;
  channel.on('subscribed', (event) => window.sdk.subscribed.push(event));
  channel.on('message', (data, meta) =>
    window.sdk.seen.push(data instanceof Uint8Array ? { offset: meta.offset, bytes: [...data] } : { offset: meta.offset, json: data }),
  );
  return channel.subscribe();
})();
`;

describe('the msgpack SDK in Chromium beside a JSON SDK client in Node', { skip: chromiumSkip() }, () => {
  let server: CliServer;
  let port: number;
  let pageProxy: CutProxy;
  let nodeProxy: CutProxy;
  let browser: Browser | undefined;
  let page: Page;
  let publisher: HotlineClient;
  let jsonClient: HotlineClient;

  const inPage = <R>(expression: string): Promise<R> => page.evaluate<R>(expression);
  const waitInPage = (expression: string): Promise<unknown> => page.waitForFunction(expression, undefined, { timeout: 15_000, polling: 20 });

  before(
    async () => {
      if (!existsSync(bundle) || !existsSync(CLI)) {
        const built = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
        assert.equal(built.status, 0, 'npm run build failed');
      }
      port = await freePort();
      server = await startCli(port, ['--origin', `http://127.0.0.1:${port}`]);
      pageProxy = await CutProxy.start(port);
      nodeProxy = await CutProxy.start(port);
      browser = await launchChromium();
      page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${port}/healthz`);
      publisher = connect(`ws://127.0.0.1:${port}/ws`, { WebSocket: HotlineWebSocket, encoding: 'msgpack' });
      jsonClient = connect(`ws://127.0.0.1:${nodeProxy.port}/ws`, { WebSocket: HotlineWebSocket, reconnect: { initial: 100, max: 400 } });
    },
    { timeout: 120_000 },
  );

  after(async () => {
    publisher?.close();
    jsonClient?.close();
    await browser?.close();
    await pageProxy?.close();
    await nodeProxy?.close();
    await server?.stop('SIGKILL');
  });

  test('bytes and JSON between encodings, then a cut of both subscribers: each recovers what it missed from history, in its encoding', async () => {
    await page.addScriptTag({ content: pageScript(`ws://127.0.0.1:${pageProxy.port}/ws`) });
    const first = await inPage<{ offset: number; epoch: string }>('window.sdkReady');
    assert.equal(await inPage<string>('window.sdk.sockets[0].protocol'), 'hotline.v1.msgpack');
    assert.equal(await inPage<string>('window.sdk.sockets[0].binaryType'), 'arraybuffer');

    const nodeSeen: Seen[] = [];
    const nodeSubscribed: Array<{ recovered: boolean }> = [];
    const jsonChannel: Channel<Data> = jsonClient.channel<Data>(CHANNEL);
    jsonChannel.on('subscribed', (event) => nodeSubscribed.push(event));
    await jsonChannel.subscribe((data, meta) => nodeSeen.push(seen(data, meta.offset)));
    const channel = publisher.channel<Data>(CHANNEL);

    // Live: the Node publisher (msgpack) and the page (msgpack), to both subscribers.
    const published: Seen[] = [];
    for (let i = 0; i < 10; i++) {
      const data = payload(i);
      const { offset } = await channel.publish(data);
      published.push(seen(data, offset));
    }
    const pageBytes = await inPage<{ offset: number }>('window.sdk.channel.publish(new Uint8Array([0, 255, 128, 10, 13, 34, 92]))');
    published.push({ offset: pageBytes.offset, bytes: [0, 255, 128, 10, 13, 34, 92] });
    const pageJson = await inPage<{ offset: number }>("window.sdk.channel.publish({ seq: -1, from: 'page' })");
    published.push({ offset: pageJson.offset, json: { seq: -1, from: 'page' } });
    await waitFor(() => nodeSeen.length === published.length, 'the live messages in Node (JSON)');
    await waitInPage(`window.sdk.seen.length === ${published.length}`);
    assert.deepEqual(nodeSeen, published);
    assert.deepEqual(await inPage<Seen[]>('window.sdk.seen'), published);

    // Both subscribers cut off; the publisher goes on.
    pageProxy.mode = 'reset';
    nodeProxy.mode = 'reset';
    assert.equal(pageProxy.cut(), 1);
    assert.equal(nodeProxy.cut(), 1);
    await waitInPage("window.sdk.client.state === 'reconnecting'");
    await waitFor(() => jsonClient.state === 'reconnecting', 'the Node client to notice the cut');
    for (let i = 10; i < 30; i++) {
      const data = payload(i);
      const { offset } = await channel.publish(data);
      published.push(seen(data, offset));
    }
    pageProxy.mode = 'forward';
    nodeProxy.mode = 'forward';
    await waitInPage('window.sdk.subscribed.length === 2');
    await waitFor(() => nodeSubscribed.length === 2, 'the Node client to resubscribe');
    const resumed = await inPage<{ recovered: boolean; first: boolean; epoch: string }>('window.sdk.subscribed[1]');
    assert.deepEqual({ recovered: resumed.recovered, first: resumed.first, epoch: resumed.epoch }, { recovered: true, first: false, epoch: first.epoch });
    assert.equal(nodeSubscribed[1]!.recovered, true);
    await waitFor(() => nodeSeen.length === published.length, 'the recovered messages in Node (JSON)');
    await waitInPage(`window.sdk.seen.length === ${published.length}`);
    assert.deepEqual(nodeSeen, published, 'Node (JSON): every message once, in order, bytes intact');
    assert.deepEqual(await inPage<Seen[]>('window.sdk.seen'), published, 'the page (msgpack): every message once, in order, bytes intact');
    assert.deepEqual(
      published.map((m) => m.offset),
      published.map((_, i) => first.offset + 1 + i),
      'contiguous offsets',
    );
    assert.equal(await inPage<string>('window.sdk.sockets.at(-1).protocol'), 'hotline.v1.msgpack');
    await inPage('window.sdk.client.close()');
  });
});
