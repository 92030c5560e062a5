// The cursors demo (/demo/cursors) in Chromium against `hotline serve`: two pages in one
// room list each other (presence state), each sees the other's pointer where it is, with
// its name (ephemeral messages), and sees the other typing; a page that closes takes its
// cursor with it once the grace period is over. A client that publishes a position naming
// another's client id moves only its own cursor: the sender is the server's word.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { startCli, type CliServer } from './support/cli-server.js';
import { ChannelsClient, ok } from './support/channels-client.js';

describe('the cursors demo in Chromium', { skip: chromiumSkip() }, () => {
  let server: CliServer;
  let browser: Browser | undefined;

  before(
    async () => {
      server = await startCli(0, ['--presence-grace', '300']);
      browser = await launchChromium();
    },
    { timeout: 60_000 },
  );
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function open(name: string, room = 't1'): Promise<Page> {
    const page = await browser!.newPage({ viewport: { width: 1000, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${server.http}/demo/cursors?room=${room}&name=${name}`);
    (page as Page & { errors?: string[] }).errors = errors;
    return page;
  }

  const people = (page: Page): Promise<string[]> => page.locator('#people li').allTextContents();

  test('two pages: each lists the other, sees its pointer with its name, and its typing', async () => {
    const ada = await open('Ada');
    const lin = await open('Lin');
    await lin.waitForFunction(`document.querySelectorAll('#people li').length === 2`, undefined, { timeout: 15_000 });
    await ada.waitForFunction(`document.querySelectorAll('#people li').length === 2`, undefined, { timeout: 15_000 });
    assert.deepEqual(await people(ada), ['Ada (you)', 'Lin']);
    assert.deepEqual(await people(lin), ['Ada', 'Lin (you)']);

    // Ada moves to 25 % across and 50 % down the board; Lin's page shows her cursor there.
    const box = (await ada.locator('#board').boundingBox())!;
    await ada.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.2);
    await ada.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.5, { steps: 5 });
    const cursor = lin.locator('.cursor:not([hidden])');
    await lin.waitForFunction(`document.querySelector('.cursor:not([hidden])')?.style.left === '25%'`, undefined, { timeout: 15_000 });
    assert.equal(await cursor.locator('.name').textContent(), 'Ada');
    assert.equal(await lin.evaluate<string>(`document.querySelector('.cursor:not([hidden])').style.top`), '50%');
    // And the other way round.
    const linBox = (await lin.locator('#board').boundingBox())!;
    await lin.mouse.move(linBox.x + linBox.width * 0.75, linBox.y + linBox.height * 0.1, { steps: 3 });
    await ada.waitForFunction(`document.querySelector('.cursor:not([hidden])')?.style.left === '75%'`, undefined, { timeout: 15_000 });
    assert.equal(await ada.locator('.cursor:not([hidden]) .name').textContent(), 'Lin');
    assert.equal(await ada.locator('.cursor').count(), 1, 'no cursor of its own');

    await lin.locator('#note').fill('hello');
    await ada.waitForFunction(`[...document.querySelectorAll('#people li')].some((li) => li.textContent === 'Lin — typing…')`, undefined, { timeout: 15_000 });

    await lin.close();
    await ada.waitForFunction(`document.querySelectorAll('#people li').length === 1 && document.querySelectorAll('.cursor').length === 0`, undefined, { timeout: 15_000 });
    assert.deepEqual((ada as Page & { errors?: string[] }).errors, [], 'no page error');
    await ada.close();
  });

  test("a position that names another's client id moves only its sender's cursor", async () => {
    const ada = await open('Ada', 't2');
    const lin = await open('Lin', 't2');
    await lin.waitForFunction(`document.querySelectorAll('#people li').length === 2`, undefined, { timeout: 15_000 });
    const box = (await ada.locator('#board').boundingBox())!;
    await ada.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.2);
    await ada.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.5, { steps: 5 });
    const adaAtLin = lin.locator('.cursor', { has: lin.locator('.name', { hasText: 'Ada' }) });
    await lin.waitForFunction(`[...document.querySelectorAll('.cursor')].some((c) => c.textContent === 'Ada' && c.style.left === '25%')`, undefined, { timeout: 15_000 });
    const adaId = await adaAtLin.getAttribute('data-client');

    // A client of its own (no page) subscribes, then claims Ada's id in its data.
    const forger = await ChannelsClient.connect(`${server.ws}/ws`);
    try {
      const forgerId = (await ok(forger, 'sub', { ch: 'cursors:t2' })).client as string;
      assert.notEqual(forgerId, adaId);
      await ok(forger, 'pub', { ch: 'cursors:t2', data: { c: adaId, x: 0.9, y: 0.9 }, ephemeral: true });
      // Its next position, naming itself, arrives after the forged one (one connection's order).
      await ok(forger, 'pub', { ch: 'cursors:t2', data: { c: forgerId, x: 0.6, y: 0.6 }, ephemeral: true });
      await lin.waitForFunction(`document.querySelector('.cursor[data-client="${forgerId}"]')?.style.left === '60%'`, undefined, { timeout: 15_000 });
      const at = await lin.evaluate<string>(`(() => { const c = document.querySelector('.cursor[data-client="${adaId}"]'); return c.style.left + ' ' + c.style.top; })()`);
      assert.equal(at, '25% 50%', "Ada's cursor did not move");
    } finally {
      await forger.close();
    }
    await lin.close();
    await ada.close();
  });
});
