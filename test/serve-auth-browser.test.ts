// A browser page connects to /ws with the connection token in a cookie its own origin set
// (what a web app does after its backend signed the user in): headless Chromium sends the
// cookie with the WebSocket upgrade, and presence shows the token's sub and info. With an
// expired cookie the browser's connection never opens (the 401 came before the upgrade).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { AttackTarget } from './support/attack.js';
import { withoutClient } from './support/channels-client.js';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { startScriptTarget } from './support/limits-target.js';
import { hs256, nowSeconds, SECRET } from './support/tokens.js';

const APP_SERVER = fileURLToPath(new URL('./support/app-server.ts', import.meta.url));

/** In the page (a script, as the page runs it): open /ws, subscribe, read presence; the members, or how the socket ended. */
const PRESENCE = `(ch) => new Promise((resolve) => {
  const ws = new WebSocket('ws://' + location.host + '/ws', 'hotline.v1');
  ws.onopen = () => ws.send(JSON.stringify({ op: 'sub', id: 1, ch }));
  ws.onmessage = (event) => {
    const message = JSON.parse(String(event.data));
    if (message.id === 1) ws.send(JSON.stringify({ op: 'presence', id: 2, ch }));
    if (message.id === 2) { resolve({ members: message.members }); ws.close(); }
  };
  ws.onclose = (event) => resolve({ closed: event.code });
})`;

const presenceFromPage = (page: Page, channel: string): Promise<unknown> => page.evaluate(`(${PRESENCE})(${JSON.stringify(channel)})`);

/** Sets the token cookie from the page, as a web app's script would after sign-in. */
const setCookie = (page: Page, token: string): Promise<unknown> => page.evaluate(`document.cookie = ${JSON.stringify(`hl_token=${token}; path=/; SameSite=Strict`)}`);

describe('a browser connecting with a token cookie', { skip: chromiumSkip(), timeout: 60_000 }, () => {
  let server: AttackTarget;
  let browser: Browser;
  before(async () => {
    [server, browser] = await Promise.all([startScriptTarget(APP_SERVER, { token: { hmacSecret: SECRET, cookie: 'hl_token' } }), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the cookie set by the page\'s origin is sent with the upgrade: presence shows the sub and info', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.http}/`);
    const token = await hs256({ sub: 'browser-user', info: { agent: 'chromium' }, exp: nowSeconds() + 600 });
    await setCookie(page, token);
    const { members } = (await presenceFromPage(page, 'lobby:browser')) as { members: Array<Record<string, unknown>> };
    assert.deepEqual(withoutClient(members), [{ id: 'browser-user', info: { agent: 'chromium' } }]);
  });

  test('an expired cookie: the connection never opens', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.http}/`);
    const token = await hs256({ sub: 'browser-user', exp: nowSeconds() - 600 });
    await setCookie(page, token);
    assert.deepEqual(await presenceFromPage(page, 'lobby:expired'), { closed: 1006 });
  });
});
