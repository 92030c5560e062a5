// A browser's own EventSource on /sse of a real `hotline serve --redis`, across a restart of
// that server: the stopping server ends the stream with event close 1001, Chromium
// reconnects by itself with Last-Event-ID, and the restarted process
// (which remembers nothing: the position is in the id, the history in Redis) replays exactly
// what a second node published while it was down, in order, once, then goes on live.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { createApp } from '../src/server/app.js';
import { Logger } from '../src/server/log.js';
import { serve } from '../src/server/serve.js';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { startCli, type CliServer } from './support/cli-server.js';
import { freePort } from './support/ports.js';
import { closeClients, range, sdk } from './support/delivery.js';
import { RedisServer, redisServerInstalled } from './support/redis-server.js';

const CHANNEL = 'sse:feed';
const OTHER = 'sse:other';

const noRedis = !redisServerInstalled() && process.env.CI !== 'true';
if (noRedis) process.stderr.write('\n*** SKIPPED: redis-server not installed — the EventSource restart test did not run ***\n\n');
const skip = chromiumSkip() || (noRedis ? 'redis-server not installed' : false);

interface PageLog {
  messages: Array<{ ch: string; offset: number; data: number }>;
  subscribed: Array<{ ch: string; recovering: boolean; recovered: boolean }>;
  opens: number;
  closes: Array<{ code: number; reason: string }>;
  lastEventId: string;
}

describe('EventSource in Chromium against hotline serve --redis', { skip }, () => {
  let redis: RedisServer;
  let port: number;
  let node: CliServer;
  let other: CliServer;
  let browser: Browser | undefined;
  let page: Page;
  // Every answer the page had to /sse: a stream that stops reconnecting was answered with
  // something other than 200, and this says what and by whom.
  const answers: string[] = [];

  const log = (): Promise<PageLog> => page.evaluate<PageLog>('window.log');
  const waitInPage = async (expression: string, what: string): Promise<void> => {
    try {
      await page.waitForFunction(expression, undefined, { timeout: 20_000, polling: 20 });
    } catch (error) {
      const state = await page.evaluate<number>('window.source.readyState');
      throw new Error(`timed out waiting in the page for ${what}: ${JSON.stringify(await log())}, readyState ${state}, /sse answers: ${answers.join('; ')}; the server printed: ${node.output()}`, { cause: error });
    }
  };

  before(
    async () => {
      redis = await RedisServer.start();
      port = await freePort();
      node = await startCli(port, ['--redis', redis.url]);
      other = await startCli(0, ['--redis', redis.url]);
      browser = await launchChromium();
      page = await browser.newPage();
      page.on('response', (response) => {
        if (new URL(response.url()).pathname === '/sse') answers.push(`${response.status()} ${response.headers()['content-type'] ?? '(no content type)'}`);
      });
      page.on('requestfailed', (request) => {
        if (new URL(request.url()).pathname === '/sse') answers.push(`failed: ${request.failure()?.errorText ?? 'unknown'}`);
      });
      await page.goto(`http://127.0.0.1:${port}/healthz`);
    },
    { timeout: 120_000 },
  );

  after(async () => {
    closeClients();
    await browser?.close();
    await node?.stop('SIGKILL');
    await other?.stop('SIGKILL');
    await redis?.stop();
  });

  test('receives publishes; told 1001 as its server stops, and after the restart resumes with Last-Event-ID: the missed ones exactly once, in order', { timeout: 90_000 }, async () => {
    await page.evaluate(`
      window.log = { messages: [], subscribed: [], opens: 0, closes: [], lastEventId: '' };
      const source = window.source = new EventSource('/sse?ch=${CHANNEL}&ch=${OTHER}');
      source.onopen = () => window.log.opens++;
      source.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        window.log.messages.push({ ch: msg.ch, offset: msg.offset, data: msg.data });
        window.log.lastEventId = event.lastEventId;
      };
      source.addEventListener('subscribed', (event) => window.log.subscribed.push(JSON.parse(event.data)));
      source.addEventListener('close', (event) => window.log.closes.push(JSON.parse(event.data)));
    `);
    await waitInPage('window.log.subscribed.length === 2', 'the subscribed events');
    // Published through the other node: they reach this one through Redis.
    const publisher = sdk(`${other.ws}/ws`).channel<number>(CHANNEL);
    for (let i = 1; i <= 3; i++) await publisher.publish(i);
    await waitInPage('window.log.messages.length === 3', 'the first three');

    await node.stop('SIGTERM');
    for (let i = 4; i <= 7; i++) await publisher.publish(i);
    node = await startCli(port, ['--redis', redis.url]);
    await waitInPage('window.log.opens === 2 && window.log.messages.length === 7', 'the four published while the server was down');
    await publisher.publish(8);
    await waitInPage('window.log.messages.length === 8', 'a live one after the replay');

    const seen = await log();
    assert.deepEqual(
      seen.messages.map((m) => [m.offset, m.data]),
      range(1, 8).map((n) => [n, n]),
      'every message once, in order',
    );
    assert.deepEqual(
      seen.subscribed.map((s) => [s.ch, s.recovering, s.recovered]),
      [
        [CHANNEL, false, false],
        [OTHER, false, false],
        [CHANNEL, true, true],
        [OTHER, true, true],
      ],
    );
    // The stopping server ended the stream itself, as it closes WebSockets: 1001 with the reconnect hint.
    assert.deepEqual(seen.closes, [{ code: 1001, reason: 'server shutting down; reconnect within 5000 ms' }]);
  });
});

describe('EventSource in Chromium, refused by a full server', { skip: chromiumSkip() }, () => {
  test('told close 1013 in a stream of one event, it tries again by itself after Retry-After, and gets in once there is room', { timeout: 60_000 }, async () => {
    const app = createApp({ logger: new Logger('silent'), sse: { maxStreams: 1 } });
    await app.ready;
    const server = await serve({ port: 0, host: '127.0.0.1', websocket: app.websocket, request: app.request });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${server.port}/healthz`);
      await page.evaluate(`
        window.log = { first: [], second: [] };
        window.first = new EventSource('/sse?ch=full');
        first.addEventListener('subscribed', () => log.first.push('subscribed'));
      `);
      await page.waitForFunction('window.log.first.length === 1', undefined, { timeout: 20_000, polling: 20 });
      await page.evaluate(`
        window.second = new EventSource('/sse?ch=full');
        second.addEventListener('close', (event) => log.second.push(JSON.parse(event.data)));
        second.addEventListener('subscribed', () => log.second.push('subscribed'));
      `);
      await page.waitForFunction('window.log.second.length === 1', undefined, { timeout: 20_000, polling: 20 });
      assert.deepEqual(await page.evaluate('window.log.second'), [{ code: 1013, reason: '503 too many streams' }]);
      // CONNECTING, not CLOSED: it will try again (a 503 would have stopped it for good).
      assert.equal(await page.evaluate('window.second.readyState'), 0);
      await page.evaluate('window.first.close()');
      // The retry comes 5 to 7.5 s later (Retry-After: 5, spread).
      await page.waitForFunction('window.log.second.includes("subscribed")', undefined, { timeout: 20_000, polling: 50 });
      assert.equal(await page.evaluate('window.second.readyState'), 1);
    } finally {
      await browser.close();
      await server.close();
      await app.close();
    }
  });
});

