// The SDK in headless Chromium, as an application would use it: the page loads /hotline.js
// from a real `hotline serve` (the built CLI, in a child process), connects to /ws with the
// browser's own WebSocket, and stays subscribed while the test breaks things.
//
// The test is in two parts, because what can be recovered depends on who still remembers:
//  (a) the page's connection is cut (through a TCP proxy: a reset, no close frame) while the
//      server keeps running and a publisher keeps publishing. The server still has the
//      history, so the page must get everything published while it was away, exactly once
//      and in order (contiguous offsets, matching payloads), with `recovered: true`.
//  (b) the server process is killed (SIGKILL) and started again on the same port. The memory
//      engine lost its history, so what was published while the server was down, and the
//      old epoch's messages, cannot be recovered by anyone. The page must be told so
//      (`recovered: false`, a new epoch) and then receive the new messages.
//
// `npm test` builds before it runs the tests; run alone, this file builds once if
// dist/hotline.js or the CLI is missing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { WebSocket as NodeWebSocket } from '../src/node/client.js';
import { connect, type HotlineClient, type WebSocketConstructorLike } from '../src/client/index.js';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { CLI, startCli, type CliServer } from './support/cli-server.js';
import { freePort } from './support/ports.js';
import { publishLoop } from './support/delivery.js';
import { CutProxy } from './support/sdk-proxy.js';
import { waitFor } from './support/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = fileURLToPath(new URL('../dist/hotline.js', import.meta.url));

// hotline's WebSocket does not type-check as the SDK's WebSocketConstructorLike (see
// sdk-faults.test.ts); at run time it is what the SDK documents for Node.
const HotlineWebSocket = NodeWebSocket as unknown as WebSocketConstructorLike;

const CHANNEL = 'browser:feed';

/**
 * The page comes from the server's port and connects through the proxy's, so its origin is
 * not the one its WebSocket reaches: allow it.
 */
const allowPages = (port: number): string[] => ['--origin', `http://127.0.0.1:${port}`];

/** The page's side: the SDK from /hotline.js, the platform WebSocket, a log of what the app saw. */
function pageScript(url: string): string {
  return String.raw`
window.sdk = { states: [], closes: [], subscribed: [], messages: [] };
window.sdkReady = (async () => {
  const { connect } = await import('/hotline.js');
  const client = connect(${JSON.stringify(url)}, { reconnect: { initial: 200, max: 800 } });
  window.sdk.client = client;
  client.on('state', (state) => window.sdk.states.push(state));
  client.on('close', (event) => window.sdk.closes.push(event));
  const channel = client.channel(${JSON.stringify(CHANNEL)});
  channel.on('subscribed', (event) => window.sdk.subscribed.push(event));
  channel.on('message', (data, meta) => window.sdk.messages.push({ seq: data.seq, offset: meta.offset, epoch: meta.epoch }));
  return channel.subscribe();
})();
`;
}

interface PageEvent {
  epoch: string;
  offset: number;
  recovered: boolean;
  first: boolean;
}

interface PageMessage {
  seq: number;
  offset: number;
  epoch: string;
}

function assertContiguous(offsets: number[], from: number, what: string): void {
  assert.deepEqual(
    offsets,
    offsets.map((_, i) => from + 1 + i),
    `${what}: offsets must be contiguous from ${from + 1}`,
  );
}

describe('the SDK in Chromium, loaded from hotline serve', { skip: chromiumSkip() }, () => {
  let server: CliServer;
  let port: number;
  let proxy: CutProxy;
  let browser: Browser | undefined;
  let page: Page;
  let publisher: HotlineClient;

  const inPage = <R>(expression: string): Promise<R> => page.evaluate<R>(expression);
  const waitInPage = async (expression: string, what: string): Promise<void> => {
    try {
      await page.waitForFunction(expression, undefined, { timeout: 15_000, polling: 20 });
    } catch (error) {
      const log = await inPage<unknown>('({ states: window.sdk.states, closes: window.sdk.closes, subscribed: window.sdk.subscribed, messages: window.sdk.messages.length })');
      throw new Error(`timed out waiting in the page for ${what}: ${JSON.stringify(log)}`, { cause: error });
    }
  };

  before(
    async () => {
      if (!existsSync(bundle) || !existsSync(CLI)) {
        const built = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
        assert.equal(built.status, 0, 'npm run build failed');
      }
      port = await freePort();
      server = await startCli(port, allowPages(port));
      proxy = await CutProxy.start(port);
      browser = await launchChromium();
      page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${port}/healthz`);
      publisher = connect(`ws://127.0.0.1:${port}/ws`, { WebSocket: HotlineWebSocket, reconnect: { initial: 200, max: 800 } });
    },
    { timeout: 120_000 },
  );

  after(async () => {
    publisher?.close();
    await browser?.close();
    await proxy?.close();
    await server?.stop('SIGKILL');
  });

  test('(a) a cut connection with the server up: recovered, exactly once, in order; (b) a server restart: recovered:false, then new messages', async () => {
    await page.addScriptTag({ content: pageScript(`ws://127.0.0.1:${proxy.port}/ws`) });
    const first = await inPage<PageEvent>('window.sdkReady');
    assert.equal(first.first, true);
    assert.equal(await inPage<string>('window.sdk.client.state'), 'open');

    // ── (a) the page's connection is cut; the server keeps everything ──
    const channel = publisher.channel<{ seq: number }>(CHANNEL);
    let loop = publishLoop(channel, 20);
    await waitFor(() => loop.results.length >= 10, 'the first publishes');
    await waitInPage('window.sdk.messages.length >= 5', 'the first messages');
    proxy.mode = 'reset';
    assert.equal(proxy.cut(), 1, 'the page had one connection through the proxy');
    const publishedAtCut = loop.results.length;
    await waitInPage("window.sdk.client.state === 'reconnecting'", 'the page to notice the cut');
    // The page cannot get back in (the proxy resets its attempts) until the publisher has
    // published into the gap.
    await waitFor(() => loop.results.length >= publishedAtCut + 25, 'publishes while the page is away');
    const gap = loop.results.length - publishedAtCut;
    proxy.mode = 'forward';
    await waitInPage('window.sdk.subscribed.length === 2', 'the resubscription');
    const resumed = (await inPage<PageEvent[]>('window.sdk.subscribed'))[1]!;
    assert.deepEqual({ recovered: resumed.recovered, first: resumed.first, epoch: resumed.epoch }, { recovered: true, first: false, epoch: first.epoch });
    await loop.stop();
    assert.deepEqual(loop.errors, []);
    const lastA = loop.results.at(-1)!;
    await waitInPage(`window.sdk.messages.at(-1)?.offset === ${lastA.offset}`, 'the last message of part (a)');
    const partA = await inPage<PageMessage[]>('window.sdk.messages');
    assertContiguous(partA.map((m) => m.offset), first.offset, 'part (a)');
    const seqByOffset = new Map(loop.results.map((r) => [r.offset, r.seq]));
    assert.equal(partA.length, loop.results.length, 'every publish seen once');
    for (const m of partA) assert.equal(m.seq, seqByOffset.get(m.offset), `payload at offset ${m.offset}`);

    // ── (b) the server dies and comes back empty ──
    await server.stop('SIGKILL');
    await waitInPage("window.sdk.client.state === 'reconnecting'", 'the page to notice the crash');
    server = await startCli(port, allowPages(port));
    await waitInPage('window.sdk.subscribed.length === 3', 'the resubscription after the restart');
    const restarted = (await inPage<PageEvent[]>('window.sdk.subscribed'))[2]!;
    assert.equal(restarted.recovered, false, 'the restarted memory engine has no history: the page must be told');
    assert.equal(restarted.first, false);
    assert.notEqual(restarted.epoch, first.epoch, 'a new epoch');
    loop = publishLoop(channel, 20, 1000);
    await waitInPage(`window.sdk.messages.filter((m) => m.epoch === ${JSON.stringify(restarted.epoch)}).length >= 10`, 'new messages after the restart');
    await loop.stop();
    assert.deepEqual(loop.errors, []);
    const lastB = loop.results.at(-1)!;
    await waitInPage(`window.sdk.messages.at(-1)?.offset === ${lastB.offset}`, 'the last message of part (b)');
    const partB = (await inPage<PageMessage[]>('window.sdk.messages')).slice(partA.length);
    assert.ok(partB.every((m) => m.epoch === restarted.epoch), 'after the restart, only the new epoch');
    assertContiguous(partB.map((m) => m.offset), restarted.offset, 'part (b)');
    assert.deepEqual(
      partB.map((m) => m.seq),
      loop.results.filter((r) => r.offset > restarted.offset).map((r) => r.seq),
      'the new messages, once each, in order',
    );
    assert.deepEqual(await inPage<string[]>('window.sdk.states'), ['open', 'reconnecting', 'open', 'reconnecting', 'open']);
    console.log(
      `# browser: (a) ${gap}+ messages published while cut off, all ${partA.length} seen once (offsets ${first.offset + 1}–${lastA.offset}); ` +
        `(b) after the restart recovered:false in epoch ${restarted.epoch}, then ${partB.length} new messages`,
    );
    await inPage('window.sdk.client.close()');
    assert.equal(await inPage<string>('window.sdk.client.state'), 'closed');
  });
});
