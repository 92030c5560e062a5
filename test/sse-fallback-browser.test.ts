// The SDK's HTTP fallback in Chromium, with the browser's own fetch and WebSocket, against a
// real channel server in a child process (test/support/sdk-server.ts with "session"; rpc
// `echo`, presence members from `?member=`), through a reverse proxy that the test controls:
//  (a) the proxy refuses `Upgrade`: the SDK falls back to the HTTP session, subscribes,
//      publishes, gets presence and rpc answers, survives a cut of its stream with each
//      message once and in order, and, once the proxy lets upgrades through, moves back to a
//      WebSocket without a gap or a repeat;
//  (b) a page whose `WebSocket` constructor throws: the same over the session alone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { closeClients, publishLoop, range, sdk } from './support/delivery.js';
import { killAll, startServer, type ServerProcess } from './support/sdk-process.js';
import { UpgradeProxy } from './support/upgrade-proxy.js';
import { waitFor } from './support/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = fileURLToPath(new URL('../dist/hotline.js', import.meta.url));

interface PageLog {
  events: string[];
  offsets: number[];
  seqs: number[];
  subscribed: Array<{ recovered: boolean; first: boolean }>;
}

/** The page's side: the SDK from /hotline.js; `blockWebSocket` makes the page's WebSocket constructor throw. */
function pageScript(url: string, channel: string, blockWebSocket: boolean): string {
  return String.raw`
${blockWebSocket ? "window.WebSocket = class { constructor() { throw new DOMException('blocked by policy', 'SecurityError'); } };" : ''}
window.log = { events: [], offsets: [], seqs: [], subscribed: [] };
window.ready = (async () => {
  const { connect } = await import('/hotline.js');
  const client = connect(${JSON.stringify(url)}, { reconnect: { initial: 50, max: 200 }, transports: ['websocket', 'sse'], fallback: { upgradeInterval: 300 } });
  window.client = client;
  client.on('state', (state, transport) => window.log.events.push(state + ':' + transport));
  const channel = client.channel(${JSON.stringify(channel)});
  window.channel = channel;
  channel.on('subscribed', (event) => window.log.subscribed.push({ recovered: event.recovered, first: event.first }));
  channel.on('message', (data, meta) => { window.log.offsets.push(meta.offset); window.log.seqs.push(data.seq); });
  await channel.subscribe();
  const own = await channel.publish({ seq: -1 });
  const members = (await channel.presence.fetch()).members.map((m) => m.id);
  const echoed = await client.rpc('echo', { from: 'page' });
  return { transport: client.transport, own: own.offset, members, echoed };
})();
`;
}

describe('the SDK falls back to the HTTP session in Chromium', { skip: chromiumSkip() }, () => {
  let server: ServerProcess;
  let proxy: UpgradeProxy;
  let browser: Browser | undefined;
  let page: Page;

  const log = (): Promise<PageLog> => page.evaluate<PageLog>('window.log');
  const waitInPage = async (expression: string, what: string): Promise<void> => {
    try {
      await page.waitForFunction(expression, undefined, { timeout: 15_000, polling: 20 });
    } catch (error) {
      const seen = await log();
      throw new Error(`timed out waiting in the page for ${what}: ${JSON.stringify({ ...seen, offsets: seen.offsets.slice(-20) })}`, { cause: error });
    }
  };

  before(
    async () => {
      if (!existsSync(bundle)) {
        const built = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
        assert.equal(built.status, 0, 'npm run build failed');
      }
      server = await startServer(0, { session: true });
      proxy = await UpgradeProxy.start(server.port);
      browser = await launchChromium();
    },
    { timeout: 120_000 },
  );

  after(async () => {
    closeClients();
    await browser?.close();
    await proxy?.close();
    await killAll();
  });

  /** Publishes on the server's own port while `during` runs; checks the page got each offset once, in order. */
  async function scenario(channel: string, upgrade: boolean): Promise<void> {
    page = await browser!.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/`);
    proxy.allowUpgrades = false;
    await page.addScriptTag({ content: pageScript(`ws://127.0.0.1:${proxy.port}/ws?member=page`, channel, !upgrade) });
    const ready = await page.evaluate<{ transport: string; own: number; members: string[]; echoed: unknown }>('window.ready');
    assert.deepEqual(ready, { transport: 'sse', own: ready.own, members: ['page'], echoed: { from: 'page' } });
    assert.ok(ready.own >= 1);

    const publisher = sdk(`ws://127.0.0.1:${server.port}/ws`).channel<{ seq: number }>(channel);
    const loop = publishLoop(publisher, 10);
    await waitInPage('window.log.offsets.length >= 15', 'messages over the session');

    // The proxy cuts the stream: a new session, recovered from the page's offset.
    assert.equal(proxy.cutStreams(), 1, 'the page had one stream through the proxy');
    await waitInPage("window.log.events.filter((e) => e === 'open:sse').length === 2 && window.log.subscribed.length === 2", 'a new session');
    const cutAt = (await log()).offsets.length;
    await waitInPage(`window.log.offsets.length >= ${cutAt + 15}`, 'messages after the cut');

    if (upgrade) {
      proxy.allowUpgrades = true;
      await waitInPage("window.client.transport === 'websocket'", 'the move to a WebSocket');
      const movedAt = (await log()).offsets.length;
      await waitInPage(`window.log.offsets.length >= ${movedAt + 15}`, 'messages over the WebSocket');
    }
    await loop.stop();
    assert.deepEqual(loop.errors, []);
    const last = Math.max(...loop.results.map((r) => r.offset));
    await waitInPage(`window.log.offsets.at(-1) === ${last}`, 'the last message');
    const seen = await log();
    assert.deepEqual(seen.offsets, range(seen.offsets[0]!, last), 'each offset once, in order: no gap, no repeat');
    assert.ok(seen.seqs.includes(-1), "the page's own publish came back");
    assert.ok(
      seen.subscribed.slice(1).every((s) => s.recovered && !s.first),
      `every resubscription recovered: ${JSON.stringify(seen.subscribed)}`,
    );
    const opens = seen.events.filter((e) => e.startsWith('open:'));
    assert.deepEqual(opens, upgrade ? ['open:sse', 'open:sse', 'open:websocket'] : ['open:sse', 'open:sse']);
    process.stdout.write(`${channel}: ${seen.offsets.length} messages ${seen.offsets[0]}–${last}; events ${seen.events.join(' ')}\n`);
    await page.evaluate('window.client.close()');
    await page.close();
    await waitFor(() => proxy.cutStreams() === 0, 'the page to let go of its stream');
  }

  test('(a) a proxy that refuses Upgrade: fallback, every op, a cut recovered once, then back to a WebSocket without a gap', { timeout: 60_000 }, async () => {
    await scenario('browser:proxy', true);
    assert.ok(proxy.refusedUpgrades >= 1);
  });

  test('(b) a page whose WebSocket constructor throws: every op over the session, a cut recovered once', { timeout: 60_000 }, async () => {
    await scenario('browser:blocked', false);
  });
});
