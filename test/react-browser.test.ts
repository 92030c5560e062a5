// hotline/react in Chromium against `hotline serve`: a React 19 app under StrictMode (every
// effect runs, is cleaned up and runs again) whose five components share one channel. It
// must send one `sub` for them all and no `unsub` while mounted, see messages, members with
// their presence state, ephemeral messages and the connection state, publish through
// usePublish, and unsubscribe once when unmounted (its member leaves at once).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import type { Channel, HotlineClient } from '../src/client/index.js';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { startCli, type CliServer } from './support/cli-server.js';
import { closeClients, sdk } from './support/delivery.js';
import { waitFor } from './support/wait.js';

const ROOM = 'react:room';

describe('hotline/react in Chromium', { skip: chromiumSkip() }, () => {
  let server: CliServer;
  let browser: Browser | undefined;
  let page: Page;
  let peer: HotlineClient;
  let room: Channel<{ text: string }>;

  const inPage = <R>(expression: string): Promise<R> => page.evaluate<R>(expression);
  const text = (id: string): Promise<string> => inPage<string>(`document.getElementById(${JSON.stringify(id)})?.textContent ?? ''`);
  const until = (expression: string, what: string): Promise<unknown> =>
    page.waitForFunction(expression, undefined, { timeout: 15_000, polling: 20 }).catch(async (error: unknown) => {
      throw new Error(`timed out waiting in the page for ${what}: ${await inPage<string>('document.body.innerHTML')}`, { cause: error });
    });

  before(
    async () => {
      server = await startCli(0, ['--presence-grace', '200']);
      const bundled = await build({
        entryPoints: [fileURLToPath(new URL('./support/react-page.ts', import.meta.url))],
        bundle: true,
        write: false,
        format: 'iife',
        platform: 'browser',
        define: { 'process.env.NODE_ENV': '"development"' },
        logLevel: 'silent',
      });
      browser = await launchChromium();
      page = await browser.newPage();
      await page.goto(`${server.http}/healthz`);
      await page.addScriptTag({ content: bundled.outputFiles[0]!.text });
      peer = sdk(`${server.ws}/ws`);
      room = peer.channel<{ text: string }>(ROOM);
      room.presence.get();
      await room.subscribe();
    },
    { timeout: 120_000 },
  );

  after(async () => {
    closeClients();
    await browser?.close();
    await server?.stop();
  });

  test('StrictMode: one sub for five components, live data in each, one unsub on unmount', async () => {
    await inPage('window.app.mount(true)');
    await until(`document.getElementById('state')?.textContent === 'open'`, 'the connection state');
    await until(`document.getElementById('members')?.textContent.split(',').length === 2`, 'both members');
    assert.equal(await text('presence-flags'), 'truncated:false joinLeave:true', 'usePresence says the list is whole and live');
    await waitFor(() => room.presence.get().some((m) => (m['state'] as { color?: string } | undefined)?.color === 'teal'), "the page's presence state at the peer");
    assert.equal(await inPage<number>(`window.app.count('sub')`), 1, 'one sub, shared, despite StrictMode running every effect twice');
    assert.equal(await inPage<number>(`window.app.count('unsub')`), 0, 'no unsubscribe while mounted');

    for (const n of [1, 2, 3]) await room.publish({ text: `m${n}` });
    await until(`document.getElementById('feed')?.children.length === 3`, 'three messages');
    assert.equal(await text('feed'), 'm1m2m3');
    await room.publish({ text: 'tick' }, { ephemeral: true });
    await until(`document.getElementById('ticks')?.textContent === '1'`, 'the ephemeral message');
    assert.equal((await text('feed')).includes('tick'), false, 'not among the messages');

    const got: string[] = [];
    room.on('message', (data) => got.push(data.text));
    await page.click('#send');
    await waitFor(() => got.includes('from react'), 'the publish from usePublish');

    await inPage('window.app.unmount()');
    await until(`window.app.channelState() === 'unsubscribed'`, 'the channel unsubscribed');
    assert.equal(await inPage<number>(`window.app.count('unsub')`), 1, 'one unsub for all five components');
    await waitFor(() => room.presence.get().length === 1, 'the page left presence at once (an unsub, not a disconnect)');
  });

  test('a remount without StrictMode subscribes again, once', async () => {
    const subs = await inPage<number>(`window.app.count('sub')`);
    await inPage('window.app.mount(false)');
    await until(`document.getElementById('members')?.textContent.split(',').length === 2`, 'both members again');
    assert.equal(await inPage<number>(`window.app.count('sub')`), subs + 1);
    await inPage('window.app.unmount()');
    await waitFor(() => room.presence.get().length === 1, 'gone again');
  });
});
