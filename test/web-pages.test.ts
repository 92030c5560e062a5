// The pages of `hotline serve` (web/), end to end in headless Chromium against the built
// CLI: the index, the echo demo, the chat demo (two users, then a server restart), and the
// inspector. It also takes the screenshots in docs/screenshots/ (1280×800): they are
// written there when UPDATE_SCREENSHOTS=1 or when one is missing, and otherwise to a
// temporary folder, so that running the tests leaves the work tree as it was.
// `npm test` builds first; to run this file alone, run `npm run build` before it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import WebSocket from 'ws';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { requireBuiltCli, startCli, type CliServer } from './support/cli-server.js';
import { freePort } from './support/ports.js';
import { waitFor } from './support/wait.js';

requireBuiltCli();

const VIEWPORT = { width: 1280, height: 800 };
const SCREENSHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));
const UPDATE_SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1';
const SCRATCH_SCREENSHOTS = join(tmpdir(), 'hotline-screenshots');

/** Where a screenshot goes: docs/screenshots/ when updating (or missing), else a temporary folder. */
function screenshotPath(name: string): string {
  const committed = join(SCREENSHOTS, name);
  if (UPDATE_SCREENSHOTS || !existsSync(committed)) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    return committed;
  }
  mkdirSync(SCRATCH_SCREENSHOTS, { recursive: true });
  return join(SCRATCH_SCREENSHOTS, name);
}

/** How the tests wait on a page: patiently, and through its reloads. */
const PAGE = { ms: 20_000, every: 50, tolerate: true };

const texts = (page: Page, selector: string): Promise<string[]> => page.locator(selector).allTextContents();
const text = async (page: Page, selector: string): Promise<string> => ((await page.locator(selector).textContent()) ?? '').trim();

/** Page scripts' uncaught errors: every test asserts there were none. */
const pageErrors: string[] = [];

async function openPage(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${url}: ${error.message}`));
  await page.goto(url);
  return page;
}

/**
 * Form controls without a label and buttons without a name (a string expression: functions
 * given to page.evaluate would be serialized after tsx transformed them).
 */
const UNLABELLED = `[...document.querySelectorAll('input, select, textarea, button')]
  .filter((c) => c.type !== 'hidden')
  .filter((c) => c.tagName === 'BUTTON'
    ? (c.textContent.trim() === '' && !c.getAttribute('aria-label'))
    : (c.labels.length === 0 && !c.getAttribute('aria-label') && !c.getAttribute('aria-labelledby')))
  .map((c) => c.outerHTML)`;

async function assertAccessibleBasics(page: Page): Promise<void> {
  assert.deepEqual(await page.evaluate<string[]>(UNLABELLED), [], 'every control has a label');
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  assert.equal(await page.locator('h1').count(), 1, 'one h1');
  // The first Tab reaches the skip link, which is then visible.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate<string>('document.activeElement.className'), 'skip-link');
  await page.keyboard.press('Shift+Tab');
}

/**
 * A TCP proxy in front of the server, to fail one browser's network alone: `drop()` ends
 * every connection through it, and while `blocked` it turns new ones away.
 */
class DropProxy {
  blocked = false;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<DropProxy> {
    const server = createServer({ noDelay: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const proxy = new DropProxy(server, (server.address() as AddressInfo).port);
    server.on('connection', (client) => {
      client.on('error', () => {});
      if (proxy.blocked) {
        client.destroy();
        return;
      }
      const upstream = connect({ host: '127.0.0.1', port: target, noDelay: true });
      upstream.on('error', () => {});
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        proxy.sockets.add(from);
        from.pipe(to);
        from.on('close', () => {
          proxy.sockets.delete(from);
          to.destroy();
        });
      }
    });
    return proxy;
  }

  drop(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const skip = chromiumSkip();

// Usually well under a minute; the limit leaves room for a loaded machine.
describe('the pages of hotline serve, in Chromium', { timeout: 180_000 }, () => {
  let browser: Browser | undefined;
  let server: CliServer | undefined;
  let port = 0;
  const contexts: BrowserContext[] = [];
  let base = '';

  const newContext = async (): Promise<BrowserContext> => {
    const context = await browser!.newContext({
      viewport: VIEWPORT,
      deviceScaleFactor: 1,
      locale: 'en-GB',
      timezoneId: 'UTC',
      colorScheme: 'light',
      reducedMotion: 'reduce',
    });
    contexts.push(context);
    return context;
  };

  before(async () => {
    if (skip !== false) return;
    // The committed screenshots show the default port.
    port = await freePort(UPDATE_SCREENSHOTS ? 8080 : 0);
    // The inspector test looks for a message's text, which it shows only when asked to.
    server = await startCli(port, ['--inspector-previews']);
    base = server.http;
    browser = await launchChromium();
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close();
    await server?.stop('SIGTERM');
  });

  test('the index links the demos, the inspector, /healthz, /metrics and the WebSocket URLs', { skip }, async () => {
    const page = await openPage(await newContext(), `${base}/`);
    assert.equal(await page.title(), 'hotline');
    assert.match(await text(page, '.lead'), /direct line between browser and server/);
    for (const href of ['/demo/echo', '/demo/chat', '/inspect', '/healthz', '/metrics', '/hotline.js']) {
      assert.ok((await page.locator(`main a[href="${href}"]`).count()) >= 1, `a link to ${href}`);
    }
    assert.deepEqual(await texts(page, 'code[data-ws]'), [`ws://127.0.0.1:${port}/echo`, `ws://127.0.0.1:${port}/ws`, `ws://127.0.0.1:${port}/inspect/ws`]);
    assert.equal(await text(page, 'a[data-http="/metrics"]'), `http://127.0.0.1:${port}/metrics`);
    await waitFor(async () => (await text(page, '#health')).startsWith('healthy'), 'the health check', PAGE);
    assert.match(await text(page, '#snippet-cli'), new RegExp(`hotline connect ws://127\\.0\\.0\\.1:${port}/echo`));
    // The stylesheet and the page script came through.
    assert.equal(await page.evaluate<string>("getComputedStyle(document.querySelector('.site-header')).display"), 'flex');
    await assertAccessibleBasics(page);
    await page.screenshot({ path: screenshotPath('index.png'), animations: 'disabled' });
    // The links work.
    await page.click('main a[href="/healthz"]');
    assert.equal((await page.locator('body').textContent())?.trim(), 'ok');
    assert.deepEqual(pageErrors, []);
  });

  test('the echo demo connects, sends with Enter, shows the echo, and the close code after Disconnect', { skip }, async () => {
    const page = await openPage(await newContext(), `${base}/demo/echo`);
    assert.equal(await page.inputValue('#url'), `ws://127.0.0.1:${port}/echo`);
    assert.equal(await text(page, '#state'), 'CLOSED');
    assert.equal(await page.isDisabled('#send'), true, 'Send waits for the connection');
    await assertAccessibleBasics(page);

    // Enter in the URL field connects, like the Connect button.
    await page.focus('#url');
    await page.keyboard.press('Enter');
    await waitFor(async () => (await text(page, '#state')) === 'OPEN', 'the state OPEN', PAGE);
    assert.match(await text(page, '#extensions'), /^permessage-deflate/, 'Chromium offers permessage-deflate and hotline accepts it');
    assert.equal(await page.isDisabled('#connect'), true);
    assert.equal(await page.isEnabled('#disconnect'), true);
    // The message field has the focus once open.
    assert.equal(await page.evaluate<string>('document.activeElement.id'), 'message');

    await page.keyboard.type('hello, hotline ✓');
    await page.keyboard.press('Enter');
    await waitFor(async () => (await texts(page, '#log li.received .text')).some((t) => t.startsWith('hello, hotline ✓')), 'the echo', PAGE);
    await page.fill('#message', '{"json": [1, 2, 3]}');
    await page.click('#send');
    await waitFor(async () => (await texts(page, '#log li.received .text')).some((t) => t.startsWith('{"json": [1, 2, 3]}')), 'the second echo', PAGE);

    const sent = page.locator('#log li.sent').first();
    assert.equal(await sent.locator('.dir').textContent(), '→ sent');
    assert.equal(await sent.locator('.text').textContent(), 'hello, hotline ✓');
    assert.match((await sent.locator('.time').textContent()) ?? '', /^\d\d:\d\d:\d\d\.\d{3}$/);
    const received = page.locator('#log li.received').first();
    assert.equal(await received.locator('.dir').textContent(), '← received');
    assert.match((await received.locator('.text').textContent()) ?? '', /^hello, hotline ✓ \(round trip \d+ ms\)$/);
    // Sent, received and system lines each have their own colour.
    const colours = await page.evaluate<string[]>(
      `['sent', 'received', 'system'].map((k) => getComputedStyle(document.querySelector('#log li.' + k)).color)`,
    );
    assert.equal(new Set(colours).size, 3, `three colours: ${colours.join(', ')}`);
    assert.equal(await page.locator('#log').getAttribute('aria-live'), 'polite');

    await page.click('#disconnect');
    await waitFor(async () => (await text(page, '#state')) === 'CLOSED', 'the state CLOSED', PAGE);
    assert.match(await text(page, '#close-info'), /^code 1000, no reason, clean$/);
    assert.ok((await texts(page, '#log li.system .text')).some((t) => t.startsWith('closed: code 1000')));
    assert.equal(await page.isDisabled('#message'), true);
    assert.equal(await page.isEnabled('#connect'), true);
    await page.screenshot({ path: screenshotPath('echo.png'), animations: 'disabled' });
    assert.deepEqual(pageErrors, []);
  });

  describe('the chat demo', () => {
    let ada: Page;
    let lin: Page;
    let sam: Page;
    let proxy: DropProxy;
    const messages = (page: Page): Promise<Array<{ nick: string; text: string; stale: boolean }>> =>
      page.evaluate(
        `[...document.querySelectorAll('#messages li.msg')].map((li) => ({
          nick: li.querySelector('.nick').textContent,
          text: li.querySelector('p').textContent,
          stale: li.classList.contains('stale'),
        }))`,
      );
    const notices = (page: Page): Promise<string[]> => texts(page, '#messages li.notice');
    const people = (page: Page): Promise<string[]> => texts(page, '#people .nick');
    const say = async (page: Page, message: string): Promise<void> => {
      await page.fill('#text', message);
      await page.press('#text', 'Enter');
    };
    const sees = (page: Page, nick: string, message: string): Promise<true> =>
      waitFor(async () => (await messages(page)).some((m) => m.nick === nick && m.text === message) || undefined, `${nick}'s "${message}"`, PAGE);

    test('two users in one room see each other, typing and presence; a newcomer gets the history', { skip }, async () => {
      ada = await openPage(await newContext(), `${base}/demo/chat?room=lobby&nick=Ada`);
      lin = await openPage(await newContext(), `${base}/demo/chat?room=lobby&nick=Lin`);
      for (const page of [ada, lin]) {
        await waitFor(async () => (await text(page, '#state')) === 'open', 'the state open', PAGE);
        assert.equal(await text(page, '#room-name'), 'lobby');
      }
      await assertAccessibleBasics(ada);

      // Built-in presence: each lists the other, by the nick in its presence state.
      await waitFor(async () => (await people(ada)).includes('Lin') || undefined, 'Lin in Ada’s presence list', PAGE);
      await waitFor(async () => (await people(lin)).includes('Ada') || undefined, 'Ada in Lin’s presence list', PAGE);
      assert.deepEqual(await people(ada), ['Ada', 'Lin']);
      // No member has an identity: `hotline serve` authenticates nobody; everyone is present anyway.
      assert.equal(await ada.locator('#members li').count(), 0);
      assert.match(await text(ada, '#members-note'), /authenticates nobody here. Everyone subscribed is still present/);

      await say(ada, 'Hi Lin! The echo demo works.');
      await sees(lin, 'Ada', 'Hi Lin! The echo demo works.');
      await sees(ada, 'Ada', 'Hi Lin! The echo demo works.');

      // Lin types: Ada sees it; Lin's message then ends it.
      await lin.locator('#text').pressSequentially('Hello Ada', { delay: 20 });
      await waitFor(async () => (await text(ada, '#typing')) === 'Lin is typing…', 'Lin is typing… on Ada’s page', PAGE);
      await lin.press('#text', 'Enter');
      await sees(ada, 'Lin', 'Hello Ada');
      await waitFor(async () => (await text(ada, '#typing')) === '', 'the typing indicator to end with the message', PAGE);

      const adaSees = await messages(ada);
      assert.deepEqual(
        adaSees.map((m) => [m.nick, m.text]),
        [
          ['Ada', 'Hi Lin! The echo demo works.'],
          ['Lin', 'Hello Ada'],
        ],
      );
      assert.equal(await ada.locator('#messages li.msg.mine').count(), 1);
      assert.match((await ada.locator('#messages li.msg time').first().textContent()) ?? '', /^\d\d:\d\d:\d\d$/);
      assert.equal(await ada.locator('#messages').getAttribute('aria-live'), 'polite');

      // The screenshot: both users, Lin typing again.
      await lin.locator('#text').pressSequentially('Look at the inspector', { delay: 20 });
      await waitFor(async () => (await text(ada, '#typing')) === 'Lin is typing…', 'Lin typing again', PAGE);
      await ada.screenshot({ path: screenshotPath('chat.png'), animations: 'disabled' });
      await lin.press('#text', 'Enter');
      await sees(ada, 'Lin', 'Look at the inspector');

      // Someone joining later gets the room's history, each message once, before live ones.
      // (Sam comes through a proxy, for the next test.)
      proxy = await DropProxy.start(port);
      sam = await openPage(await newContext(), `http://127.0.0.1:${proxy.port}/demo/chat?room=lobby&nick=Sam`);
      await waitFor(async () => (await messages(sam)).length === 3 || undefined, 'the history on Sam’s page', PAGE);
      assert.ok((await notices(sam)).some((n) => n.endsWith('3 earlier messages:')));
      await say(ada, 'Welcome, Sam');
      await sees(sam, 'Ada', 'Welcome, Sam');
      assert.deepEqual(
        (await messages(sam)).map((m) => m.text),
        ['Hi Lin! The echo demo works.', 'Hello Ada', 'Look at the inspector', 'Welcome, Sam'],
      );
      assert.deepEqual(pageErrors, []);
    });

    test('a dropped connection comes back and recovers the messages it missed', { skip }, async () => {
      assert.ok(sam !== undefined && proxy !== undefined, 'runs after the test above');
      await waitFor(async () => (await text(sam, '#state')) === 'open', 'Sam connected', PAGE);
      // The network between Sam and the server fails, and stays down for a while.
      proxy.blocked = true;
      proxy.drop();
      await waitFor(async () => (await text(sam, '#state')) === 'reconnecting', 'Sam reconnecting', PAGE);
      await say(ada, 'Sam, are you there?');
      await say(ada, 'You will see this later');
      await sees(lin, 'Ada', 'You will see this later');
      proxy.blocked = false;
      await waitFor(async () => (await text(sam, '#state')) === 'open', 'Sam open again', PAGE);
      await waitFor(async () => (await notices(sam)).some((n) => n.endsWith('reconnected: recovered 2 missed messages')), '"recovered 2 missed messages"', PAGE);
      await sees(sam, 'Ada', 'You will see this later');
      assert.deepEqual(
        (await messages(sam)).map((m) => [m.text, m.stale]),
        [
          ['Hi Lin! The echo demo works.', false],
          ['Hello Ada', false],
          ['Look at the inspector', false],
          ['Welcome, Sam', false],
          ['Sam, are you there?', false],
          ['You will see this later', false],
        ],
      );
      await sam.context().close();
      await proxy.close();
      assert.deepEqual(pageErrors, []);
    });

    test('after the server restarts, both pages reconnect, reload the lost history, and talk again', { skip }, async () => {
      assert.ok(ada !== undefined && lin !== undefined, 'runs after the test above');
      await server!.stop('SIGKILL');
      for (const page of [ada, lin]) {
        await waitFor(async () => (await text(page, '#state')) === 'reconnecting', 'the state reconnecting', PAGE);
        await waitFor(async () => (await notices(page)).some((n) => n.includes('connection lost: code 1006')), 'the lost connection in the log', PAGE);
      }
      // Sent while the server is down: the SDK queues it until the connection is back.
      await say(ada, 'sent while the server was down');

      server = await startCli(port, ['--inspector-previews']);
      for (const page of [ada, lin]) {
        await waitFor(async () => (await text(page, '#state')) === 'open', 'the state open again', PAGE);
        // The memory engine lost the history: the subscription says recovered: false.
        await waitFor(async () => (await notices(page)).some((n) => n.includes('history lost, reloaded')), '"history lost, reloaded"', PAGE);
        assert.ok((await notices(page)).some((n) => n.endsWith('connection: open again')));
      }
      for (const page of [ada, lin]) await sees(page, 'Ada', 'sent while the server was down');

      await say(lin, 'Back after the restart');
      for (const page of [ada, lin]) await sees(page, 'Lin', 'Back after the restart');

      for (const page of [ada, lin]) {
        const shown = await messages(page);
        // What came before the restart is kept but marked stale; nothing is shown twice.
        assert.deepEqual(
          shown.filter((m) => m.stale).map((m) => m.text),
          ['Hi Lin! The echo demo works.', 'Hello Ada', 'Look at the inspector', 'Welcome, Sam', 'Sam, are you there?', 'You will see this later'],
        );
        assert.deepEqual(
          shown.filter((m) => !m.stale).map((m) => m.text),
          ['sent while the server was down', 'Back after the restart'],
        );
      }
      // Presence comes back on its own.
      await waitFor(async () => (await people(ada)).includes('Lin') || undefined, 'Lin in Ada’s list after the restart', PAGE);
      assert.deepEqual(pageErrors, []);
    });

    test('the inspector shows a connection appear and disappear, with its frames and the chat channels', { skip }, async () => {
      const page = await openPage(await newContext(), `${base}/inspect`);
      await waitFor(async () => (await text(page, '#feed-state')) === 'open', 'the inspector feed', PAGE);
      await assertAccessibleBasics(page);

      const ws = new WebSocket(`${server!.ws}/echo`);
      await once(ws, 'open');
      const token = `inspect-me-${Date.now().toString(36)}`;
      ws.send(token);
      await once(ws, 'message');

      // The frame in, and its echo out, name the connection's id.
      const id = await waitFor(
        async () => (await page.locator('#frames tr[data-direction="in"]', { hasText: token }).first().getAttribute('data-connection')) ?? undefined,
        'the frame in the frames list',
        PAGE,
      );
      assert.equal(await page.locator(`#frames tr[data-direction="out"][data-connection="${id}"]`, { hasText: token }).count(), 1);
      const row = page.locator(`#connections tr[data-id="${id}"]`);
      await waitFor(async () => (await row.count()) === 1, 'the connection in the table', PAGE);
      const cells = await row.locator('td').allTextContents();
      assert.equal(cells[0], `#${id}`);
      assert.equal(cells[1], '/echo');
      assert.equal(cells[2], '127.0.0.1');
      assert.equal(cells[3], '—', 'an /echo connection has no user');
      assert.match(cells[5]!, /^permessage-deflate/);
      assert.match(cells[6]!, /^\d+ s$/);

      // The chat pages' channels, two subscribers each; their /ws connections.
      await waitFor(async () => (await text(page, '#channels tr[data-name="chat:lobby"] td:nth-child(2)')) === '2', 'chat:lobby with 2 subscribers', PAGE);
      // After the restart a page may have come back on the HTTP session (its WebSockets failed
      // while the server was down, as a blocked one would): it moves back to /ws within a second.
      await waitFor(async () => (await page.locator('#connections tr[data-endpoint="/ws"]').count()) === 2, 'both chat pages on /ws', PAGE);
      // The chart has its two lines.
      await waitFor(async () => ((await page.locator('#chart polyline.line-in').getAttribute('points')) ?? '').includes(' '), 'two points on the chart', PAGE);
      assert.equal(await page.locator('#chart polyline').count(), 2);
      await page.screenshot({ path: screenshotPath('inspect.png'), animations: 'disabled' });

      ws.close(1000);
      await once(ws, 'close');
      await waitFor(async () => (await row.count()) === 0, 'the connection to leave the table', PAGE);
      assert.deepEqual(pageErrors, []);
    });
  });
});
