// What the SDK does in a real browser when the server refuses the upgrade: the page cannot
// see the status (browsers show error and close 1006, nothing more), so the SDK reports
// `connect_failed` without one and keeps retrying with backoff, where in Node it would stop
// at the 403. The refusal here is hotline serve's own: an Origin it does not allow.
// `npm test` builds first; to run this file alone, run `npm run build` before it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { startCli, type CliServer } from './support/cli-server.js';
import { upgradeRequest } from './support/raw-upgrade.js';

describe('the SDK in Chromium, refused at the upgrade', { skip: chromiumSkip(), timeout: 60_000 }, () => {
  let server: CliServer;
  let browser: Browser | undefined;
  let page: Page;

  before(async () => {
    server = await startCli();
    browser = await launchChromium();
    page = await browser.newPage();
    // The page's origin is http://127.0.0.1:PORT; it connects to localhost:PORT, another
    // host as far as the same-origin check goes: 403.
    await page.goto(`${server.http}/healthz`);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('an error event without a status, for each attempt, and it keeps trying', async () => {
    const url = `ws://localhost:${server.port}/ws`;
    await page.evaluate(`
      window.seen = { errors: [], closes: [] };
      (async () => {
        const { connect } = await import('/hotline.js');
        const client = connect(${JSON.stringify(url)}, { reconnect: { initial: 50, max: 100 } });
        window.client = client;
        client.on('error', (error) => window.seen.errors.push({ code: error.code, status: error.status ?? null }));
        client.on('close', ({ code, willRetry }) => window.seen.closes.push({ code, willRetry }));
      })();
    `);
    await page.waitForFunction('window.seen.errors.length >= 3', undefined, { timeout: 20_000, polling: 20 });
    const seen = await page.evaluate<{ errors: unknown[]; closes: unknown[]; state: string }>(
      '(() => { window.client.close(); return { ...window.seen, state: window.client.state }; })()',
    );
    assert.deepEqual(seen.errors.slice(0, 3), Array(3).fill({ code: 'connect_failed', status: null }));
    assert.deepEqual(seen.closes.slice(0, 3), Array(3).fill({ code: 1006, willRetry: true }));
    // What the browser was refused with, seen from outside it: 403.
    const answer = await upgradeRequest(server.port, '/ws', { host: `localhost:${server.port}`, headers: [`Origin: ${server.http}`] });
    assert.equal(answer.status, 403);
  });
});
