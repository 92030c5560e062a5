// Attack: cross-site WebSocket hijacking of a real `hotline serve`. A page on another site
// (http://evil.example, a second HTTP server; Chromium resolves the name to 127.0.0.1) opens
// /ws, /echo and /inspect/ws of the server its visitor runs, to read other clients'
// messages through the inspector and publish into their channels. Browsers from another
// origin must be refused with 403 before the upgrade; the server's own pages, and clients
// that send no Origin, must still be served. A page that rebinds its own name to the
// server's address (DNS rebinding) is same-origin, so the open inspector and /metrics of a
// loopback server also check that the Host is a loopback name.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { startTarget, type AttackTarget } from './support/attack.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumSkip } from './support/chromium.js';
import { upgradeRequest } from './support/raw-upgrade.js';

const skip = chromiumSkip();

/** What a page's WebSocket saw: whether it opened, its messages, its close code. */
interface Probe {
  url: string;
  opened: boolean;
  messages: string[];
  code: number | null;
}

// Page-side code, as a string (a function would be serialized after tsx rewrote it).
// probe(url, protocol, send, want): opens, sends `send`, closes after `want` messages.
const PROBE = `window.probe = (url, protocol, send, want) => new Promise((resolve) => {
  const result = { url, opened: false, messages: [], code: null };
  const ws = protocol ? new WebSocket(url, protocol) : new WebSocket(url);
  window.probes = window.probes || {};
  window.probes[url] = 'connecting';
  ws.onopen = () => { result.opened = true; window.probes[url] = 'open'; for (const m of send) ws.send(m); };
  ws.onmessage = (e) => { result.messages.push(String(e.data)); if (result.messages.length >= want) ws.close(1000); };
  ws.onclose = (e) => { result.code = e.code; window.probes[url] = 'closed'; resolve(result); };
});`;

const SUB = JSON.stringify({ op: 'sub', id: 1, ch: 'victim:room' });
const PUB = JSON.stringify({ op: 'pub', id: 2, ch: 'victim:room', data: { text: 'from evil' } });

/** A page at `url`, with the probe and a record of each WebSocket's handshake failure (from the DevTools protocol). */
async function openPage(browser: Browser, url: string): Promise<{ page: Page; failures: Map<string, string> }> {
  const page = await browser.newPage();
  const cdp = await page.context().newCDPSession(page);
  const urls = new Map<string, string>();
  const failures = new Map<string, string>();
  cdp.on('Network.webSocketCreated', (event) => urls.set(event.requestId, event.url));
  cdp.on('Network.webSocketFrameError', (event) => failures.set(urls.get(event.requestId) ?? event.requestId, event.errorMessage));
  await cdp.send('Network.enable');
  await page.goto(url);
  await page.evaluate(PROBE);
  return { page, failures };
}

const probe = (page: Page, url: string, protocol: string | null, send: string[], want: number): Promise<Probe> =>
  page.evaluate<Probe>(`window.probe(${JSON.stringify(url)}, ${JSON.stringify(protocol)}, ${JSON.stringify(send)}, ${want})`);

describe('cross-site WebSocket hijacking of hotline serve, in Chromium', { skip, timeout: 120_000 }, () => {
  let browser: Browser;
  let evil: Server;
  let evilOrigin: string;
  const targets: AttackTarget[] = [];

  before(async () => {
    // The attacker's site: an empty page on another port, under another name.
    evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><html lang="en"><title>evil</title></html>');
    });
    evil.listen(0, '127.0.0.1');
    await once(evil, 'listening');
    evilOrigin = `http://evil.example:${(evil.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP evil.example 127.0.0.1'],
    });
  });

  after(async () => {
    await browser?.close();
    evil?.close();
    for (const target of targets) await target.stop();
  });

  const start = async (args: string[] = []): Promise<AttackTarget> => {
    const target = await startTarget(args);
    targets.push(target);
    return target;
  };

  test('a page on another site is refused on /ws, /echo and /inspect/ws (403), and learns nothing of a client it spied on', async () => {
    const target = await start();
    const victim = new WebSocket(`${target.ws}/ws`, 'hotline.v1');
    const seen: Array<{ op: string; id?: number; data?: unknown }> = [];
    const answered = new Map<number, () => void>();
    victim.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { op: string; id?: number; data?: unknown };
      seen.push(message);
      if (message.id !== undefined) answered.get(message.id)?.();
    });
    await once(victim, 'open');
    const request = (body: object & { id: number }): Promise<void> =>
      new Promise((resolve) => {
        answered.set(body.id, resolve);
        victim.send(JSON.stringify(body));
      });
    await request({ op: 'sub', id: 1, ch: 'victim:room' } as { op: string; id: number; ch: string });

    const { page, failures } = await openPage(browser, `${evilOrigin}/`);
    // The inspector first: had it opened, it would see the secret published next.
    const spying = probe(page, `${target.ws}/inspect/ws`, null, [], 2);
    await page.waitForFunction(`window.probes[${JSON.stringify(`${target.ws}/inspect/ws`)}] !== 'connecting'`);
    await request({ op: 'pub', id: 2, ch: 'victim:room', data: { text: 'the secret: 4711' } } as { op: string; id: number });
    const inspector = await spying;
    const channel = await probe(page, `${target.ws}/ws`, 'hotline.v1', [SUB, PUB], 3);
    const echo = await probe(page, `${target.ws}/echo`, null, ['hello'], 1);

    for (const result of [inspector, channel, echo]) {
      assert.equal(result.opened, false, `${result.url} did not open (it saw ${JSON.stringify(result.messages).slice(0, 300)})`);
      assert.equal(result.code, 1006);
      assert.deepEqual(result.messages, []);
      assert.equal(failures.get(result.url), 'Error during WebSocket handshake: Unexpected response code: 403');
    }
    // Nothing from the attacker reached the channel: the victim's next publish comes back alone.
    await request({ op: 'pub', id: 3, ch: 'victim:room', data: { text: 'still mine' } } as { op: string; id: number });
    const delivered = seen.filter((m) => m.op === 'msg').map((m) => (m.data as { text: string }).text);
    assert.deepEqual(delivered, ['the secret: 4711', 'still mine']);
    victim.close();

    // What the browser does not show: the refusal says why.
    for (const path of ['/ws', '/echo', '/inspect/ws']) {
      const answer = await upgradeRequest(target.port, path, { headers: [`Origin: ${evilOrigin}`] });
      assert.equal(answer.status, 403, path);
      assert.match(answer.response, /^HTTP\/1\.1 403 Forbidden\r\n/);
      assert.equal(answer.body, `origin ${evilOrigin} is not allowed`);
    }
    await page.close();
  });

  test("the server's own pages connect (as 127.0.0.1 and as localhost), and so do clients without Origin", async () => {
    const target = await start();
    for (const base of [target.http, target.http.replace('127.0.0.1', 'localhost')]) {
      const { page } = await openPage(browser, `${base}/`);
      const ws = base.replace('http:', 'ws:');
      const echo = await probe(page, `${ws}/echo`, null, ['hello'], 1);
      assert.deepEqual([echo.opened, echo.messages], [true, ['hello']], `${ws}/echo`);
      // The sub's answer, the client's own join, the publish's answer and its message.
      const channel = await probe(page, `${ws}/ws`, 'hotline.v1', [SUB, PUB], 4);
      assert.equal(channel.opened, true);
      assert.deepEqual(
        channel.messages.map((m) => (JSON.parse(m) as { op: string }).op).sort(),
        ['join', 'msg', 'ok', 'ok'],
      );
      const inspector = await probe(page, `${ws}/inspect/ws`, null, [], 1);
      assert.equal(inspector.opened, true);
      assert.equal((JSON.parse(inspector.messages[0]!) as { type: string }).type, 'snapshot');
      await page.close();
    }
    for (const path of ['/ws', '/echo', '/inspect/ws']) {
      const answer = await upgradeRequest(target.port, path);
      assert.equal(answer.status, 101, `${path} without Origin`);
      answer.socket.destroy();
    }
  });

  test("--origin lets that site's pages in (a listed site is the operator's own, the inspector included); --origin '*' every site, but not on the inspector", async () => {
    const listed = await start(['--origin', evilOrigin]);
    const { page } = await openPage(browser, `${evilOrigin}/`);
    const echo = await probe(page, `${listed.ws}/echo`, null, ['hello'], 1);
    assert.deepEqual([echo.opened, echo.messages], [true, ['hello']]);
    const channel = await probe(page, `${listed.ws}/ws`, 'hotline.v1', [SUB], 1);
    assert.equal(channel.opened, true);
    // Behind a proxy that does not pass the Host on, the inspector's own page has a listed origin.
    const inspector = await probe(page, `${listed.ws}/inspect/ws`, null, [], 1);
    assert.equal(inspector.opened, true);
    const other = await upgradeRequest(listed.port, '/ws', { headers: ['Origin: http://another.example'] });
    assert.equal(other.status, 403, 'an origin not on the list');

    const any = await start(['--origin', '*']);
    // On stderr, after the startup lines on stdout.
    while (!/warning: --origin '\*' lets every web site open \/echo and \/ws/.test(any.output())) await once(any.child.stderr!, 'data');
    const open = await probe(page, `${any.ws}/echo`, null, ['hi'], 1);
    assert.deepEqual([open.opened, open.messages], [true, ['hi']]);
    const spy = await upgradeRequest(any.port, '/inspect/ws', { headers: ['Origin: http://another.example'] });
    assert.equal(spy.status, 403, "'*' does not open the inspector to other sites");
    await page.close();
  });

  test('DNS rebinding: a page under a name that resolves to the server is same-origin, but the open inspector and /metrics refuse its Host', async () => {
    const target = await start();
    // The page's origin is http://evil.example:PORT and so is the Host its requests carry.
    const rebound = `http://evil.example:${target.port}`;
    const { page, failures } = await openPage(browser, `${rebound}/`);
    const inspectorUrl = `ws://evil.example:${target.port}/inspect/ws`;
    const inspector = await probe(page, inspectorUrl, null, [], 1);
    assert.equal(inspector.opened, false);
    assert.equal(failures.get(inspectorUrl), 'Error during WebSocket handshake: Unexpected response code: 403');
    const statuses = await page.evaluate<number[]>(`Promise.all(['/metrics', '/inspect'].map((p) => fetch(p).then((r) => r.status)))`);
    assert.deepEqual(statuses, [403, 403]);
    const metrics = await page.evaluate<string>(`fetch('/metrics').then((r) => r.text())`);
    assert.match(metrics, /listens on loopback only: open it as localhost or 127\.0\.0\.1/);
    await page.close();
  });
});
