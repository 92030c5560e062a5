// hotline's server talking to headless Chromium's own WebSocket: the page is served by the
// hotline server itself (so it has a real origin), and the client code runs in the page.
// The page script is plain JavaScript in a string, and the tests call it through string
// expressions: functions passed to page.evaluate would be serialized after tsx transformed
// them, with helpers the page does not have.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { serve, type RunningServer } from '../src/server/serve.js';
import { echoHandlers } from '../src/server/echo.js';
import type { ConnectionHandlers, WebSocketConnection } from '../src/node/connection.js';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { waitFor } from './support/wait.js';

const MiB = 1024 * 1024;
const SMALL_MAX_PAYLOAD = 1024;

/** The client side, run in the page: each scenario opens its own WebSocket and reports what it saw. */
const PAGE_SCRIPT = String.raw`
'use strict';
const base = 'ws://' + location.host;
const LIMIT_MS = 15000;

function withLimit(what, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out in the page: ' + what)), LIMIT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function session(path, protocols) {
  const ws = protocols === undefined ? new WebSocket(base + path) : new WebSocket(base + path, protocols);
  ws.binaryType = 'arraybuffer';
  const queue = [];
  const waiters = [];
  let sawError = false;
  let wasOpen = false;
  ws.addEventListener('message', (event) => {
    const waiter = waiters.shift();
    if (waiter) waiter(event.data);
    else queue.push(event.data);
  });
  ws.addEventListener('error', () => { sawError = true; });
  const opened = new Promise((resolve) => {
    ws.addEventListener('open', () => { wasOpen = true; resolve(true); });
    ws.addEventListener('close', () => resolve(false));
  });
  const closed = new Promise((resolve) => {
    ws.addEventListener('close', (event) => resolve({
      opened: wasOpen, code: event.code, reason: event.reason, wasClean: event.wasClean, sawError,
    }));
  });
  const next = () => queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiters.push(resolve));
  return { ws, opened, closed, next };
}

function describeData(data) {
  return typeof data === 'string' ? { text: data } : { bytes: Array.from(new Uint8Array(data)) };
}

function toSend(item) {
  if ('text' in item) return item.text;
  const bytes = new Uint8Array(item.bytes);
  if (item.as === 'blob') return new Blob([bytes]);
  if (item.as === 'view') {
    // The bytes in the middle of a larger buffer: only the view may go out.
    const padded = new Uint8Array(bytes.length + 6);
    padded.fill(0xee);
    padded.set(bytes, 3);
    return padded.subarray(3, 3 + bytes.length);
  }
  return bytes.buffer;
}

function pattern(size) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >>> 11)) & 0xff;
  return bytes;
}

window.hl = {
  echo(path, items) {
    return withLimit('echo', (async () => {
      const s = session(path);
      if (!(await s.opened)) return { error: 'did not open', close: await s.closed };
      const received = [];
      for (const item of items) {
        s.ws.send(toSend(item));
        received.push(describeData(await s.next()));
      }
      s.ws.close(1000, 'done');
      return { received, close: await s.closed };
    })());
  },

  big(path, size) {
    return withLimit('big', (async () => {
      const s = session(path);
      if (!(await s.opened)) return { error: 'did not open', close: await s.closed };
      const sent = pattern(size);
      const started = performance.now();
      s.ws.send(sent);
      const data = await s.next();
      const ms = Math.round(performance.now() - started);
      const got = new Uint8Array(data);
      let firstDifference = -1;
      if (got.length === sent.length) {
        for (let i = 0; i < got.length; i++) {
          if (got[i] !== sent[i]) { firstDifference = i; break; }
        }
      }
      s.ws.close(1000);
      return { binary: data instanceof ArrayBuffer, length: got.length, firstDifference, ms, close: await s.closed };
    })());
  },

  many(path, count) {
    return withLimit('many', (async () => {
      const s = session(path);
      if (!(await s.opened)) return { error: 'did not open', close: await s.closed };
      for (let i = 0; i < count; i++) {
        if (i % 2 === 0) s.ws.send('message ' + i);
        else s.ws.send(new Uint32Array([i]).buffer);
      }
      let firstWrong = -1;
      for (let i = 0; i < count; i++) {
        const data = await s.next();
        const ok = i % 2 === 0
          ? data === 'message ' + i
          : data instanceof ArrayBuffer && data.byteLength === 4 && new Uint32Array(data)[0] === i;
        if (!ok && firstWrong === -1) firstWrong = i;
      }
      s.ws.close(1000);
      return { firstWrong, close: await s.closed };
    })());
  },

  /** Opens /ctl with the given subprotocols; the server answers a tag with its own view of the protocol. */
  negotiate(protocols, tag) {
    return withLimit('negotiate', (async () => {
      const s = session('/ctl', protocols);
      if (!(await s.opened)) return { opened: false, protocol: s.ws.protocol, close: await s.closed };
      s.ws.send(JSON.stringify({ tag }));
      const ack = await s.next();
      s.ws.close(1000);
      return { opened: true, protocol: s.ws.protocol, ack, close: await s.closed };
    })());
  },

  /** The browser closes, with a code and reason (or none when code is null). */
  clientClose(tag, code, reason) {
    return withLimit('clientClose', (async () => {
      const s = session('/ctl');
      if (!(await s.opened)) return { error: 'did not open', close: await s.closed };
      s.ws.send(JSON.stringify({ tag }));
      await s.next();
      if (code === null) s.ws.close();
      else s.ws.close(code, reason);
      return { close: await s.closed };
    })());
  },

  /** Asks the server to close or terminate this connection, and reports the CloseEvent. */
  serverCommand(command) {
    return withLimit('serverCommand', (async () => {
      const s = session('/ctl');
      if (!(await s.opened)) return { error: 'did not open', close: await s.closed };
      s.ws.send(JSON.stringify(command));
      return { close: await s.closed };
    })());
  },

  /** Sends one binary message of the given size and waits for the connection to end. */
  sendAndWaitClose(path, size) {
    return withLimit('sendAndWaitClose', (async () => {
      const s = session(path);
      if (!(await s.opened)) return { error: 'did not open', close: await s.closed };
      s.ws.send(new Uint8Array(size));
      return { close: await s.closed };
    })());
  },

  /** Connects and reports how the attempt ended. */
  attempt(path) {
    return withLimit('attempt', (async () => {
      const s = session(path);
      if (await s.opened) s.ws.close(1000);
      return { close: await s.closed };
    })());
  },
};
`;

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>hotline interop</title></head>
<body><script>${PAGE_SCRIPT}</script></body></html>`;

interface PageClose {
  opened: boolean;
  code: number;
  reason: string;
  wasClean: boolean;
  sawError: boolean;
}

type Described = { text: string } | { bytes: number[] };
type Item = { text: string } | { bytes: number[]; as: 'arraybuffer' | 'blob' | 'view' };

interface EchoResult {
  error?: string;
  received: Described[];
  close: PageClose;
}

interface CloseResult {
  error?: string;
  close: PageClose;
}

interface ServerClose {
  tag: string;
  code: number;
  reason: string;
}

/** The /ctl endpoint: the browser tags its connection, then asks the server to close or terminate it. */
function controlEndpoint(closes: ServerClose[]): ConnectionHandlers<undefined> {
  const tags = new Map<WebSocketConnection<undefined>, string>();
  return {
    message(conn, message) {
      const command = JSON.parse(String(message)) as { tag?: string; close?: number; reason?: string; terminate?: boolean };
      if (command.tag !== undefined) {
        tags.set(conn, command.tag);
        conn.send(`ok ${conn.protocol}`);
      } else if (command.close !== undefined) {
        conn.close(command.close, command.reason);
      } else if (command.terminate === true) {
        conn.terminate();
      }
    },
    close(conn, code, reason) {
      closes.push({ tag: tags.get(conn) ?? '', code, reason });
      tags.delete(conn);
    },
  };
}

function js(value: unknown): string {
  return JSON.stringify(value);
}

// Decided once, when the file loads; every test carries it so the runner counts the skips.
const skip = chromiumSkip();

/** A test that needs the browser: skipped (and counted as skipped) when Chromium is missing. */
function browserTest(name: string, fn: () => Promise<void>): void {
  test(name, { skip }, fn);
}

describe('hotline server with Chromium as the client', { timeout: 60_000 }, () => {
  let browser: Browser | undefined;
  let page: Page;
  let server: RunningServer | undefined;
  const serverCloses: ServerClose[] = [];

  before(async () => {
    if (skip !== false) return;
    server = await serve({
      port: 0,
      host: '127.0.0.1',
      websocket: {
        '/echo': echoHandlers,
        '/ctl': controlEndpoint(serverCloses),
        '/small': { handlers: echoHandlers, maxPayload: SMALL_MAX_PAYLOAD },
        '/locked': { handlers: echoHandlers, origins: ['https://allowed.example'] },
      },
      endpoint: { maxPayload: 17 * MiB, protocols: ['chat', 'superchat'], closeTimeout: 2_000 },
      shutdownTimeout: 1_000,
      request(req, res) {
        if (req.method === 'GET' && req.url === '/') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end(PAGE);
        } else {
          res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('not found\n');
        }
      },
    });
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.port}/`);
    assert.equal(await page.evaluate<string>('typeof window.hl'), 'object');
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const inPage = <R>(expression: string): Promise<R> => page.evaluate<R>(expression);

  browserTest('text, including non-ASCII and emoji, comes back as the same text', async () => {
    const texts = [
      'hello',
      'héllo wörld — ça va ? ¿qué tal? ß',
      '日本語のテキスト、中文，한국어',
      '😀🎉👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 𝄞',
      '\u0000 control \u0007 and U+FFFF: \uffff',
      '€'.repeat(50_000),
    ];
    const result = await inPage<EchoResult>(`hl.echo('/echo', ${js(texts.map((text) => ({ text })))})`);
    assert.equal(result.error, undefined);
    assert.deepEqual(result.received, texts.map((text) => ({ text })));
    assert.equal(result.close.code, 1000);
    assert.equal(result.close.wasClean, true);
  });

  browserTest('a lone surrogate leaves the browser as U+FFFD and comes back so', async () => {
    const result = await inPage<EchoResult>(`hl.echo('/echo', [{ text: 'a\\ud800b' }])`);
    assert.deepEqual(result.received, [{ text: 'a\ufffdb' }]);
  });

  browserTest('binary from an ArrayBuffer, a Blob and a typed-array view comes back as the same bytes', async () => {
    const all = Array.from({ length: 256 }, (_, i) => i);
    const items: Item[] = [
      { bytes: [0, 1, 2, 255], as: 'arraybuffer' },
      { bytes: all, as: 'arraybuffer' },
      { bytes: [9, 8, 7, 6, 5], as: 'blob' },
      { bytes: all.slice().reverse(), as: 'blob' },
      { bytes: [42, 43, 44], as: 'view' },
      { bytes: Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff), as: 'arraybuffer' },
    ];
    const result = await inPage<EchoResult>(`hl.echo('/echo', ${js(items)})`);
    assert.equal(result.error, undefined);
    assert.deepEqual(
      result.received,
      items.map((item) => ('bytes' in item ? { bytes: item.bytes } : item)),
    );
    assert.equal(result.close.code, 1000);
  });

  browserTest('empty text and empty binary messages come back empty, with their types', async () => {
    const items: Item[] = [
      { text: '' },
      { bytes: [], as: 'arraybuffer' },
      { bytes: [], as: 'blob' },
      { text: '' },
    ];
    const result = await inPage<EchoResult>(`hl.echo('/echo', ${js(items)})`);
    assert.deepEqual(result.received, [{ text: '' }, { bytes: [] }, { bytes: [] }, { text: '' }]);
  });

  browserTest('a 16 MiB binary message makes the round trip intact', async () => {
    const result = await inPage<{ error?: string; binary: boolean; length: number; firstDifference: number; ms: number; close: PageClose }>(
      `hl.big('/echo', ${16 * MiB})`,
    );
    assert.equal(result.error, undefined);
    assert.equal(result.binary, true);
    assert.equal(result.length, 16 * MiB);
    assert.equal(result.firstDifference, -1, 'the echoed bytes differ from those sent');
    assert.equal(result.close.code, 1000);
    assert.equal(result.close.wasClean, true);
  });

  browserTest('2,000 messages, text and binary interleaved, come back in order', async () => {
    const result = await inPage<{ error?: string; firstWrong: number; close: PageClose }>(`hl.many('/echo', 2000)`);
    assert.equal(result.error, undefined);
    assert.equal(result.firstWrong, -1, `message ${result.firstWrong} came back wrong or out of order`);
    assert.equal(result.close.code, 1000);
  });

  describe('subprotocols (server prefers chat, then superchat)', () => {
    interface Negotiated {
      opened: boolean;
      protocol: string;
      ack?: string;
      close: PageClose;
    }

    browserTest("the server's preference wins over the browser's order", async () => {
      const result = await inPage<Negotiated>(`hl.negotiate(['superchat', 'chat'], 'p1')`);
      assert.equal(result.opened, true);
      assert.equal(result.protocol, 'chat');
      assert.equal(result.ack, 'ok chat');
    });

    browserTest('the only supported offer is chosen', async () => {
      const result = await inPage<Negotiated>(`hl.negotiate(['v9.unknown', 'superchat'], 'p2')`);
      assert.equal(result.protocol, 'superchat');
      assert.equal(result.ack, 'ok superchat');
    });

    browserTest('no offer: no subprotocol on either side', async () => {
      const result = await inPage<Negotiated>(`hl.negotiate(undefined, 'p3')`);
      assert.equal(result.opened, true);
      assert.equal(result.protocol, '');
      assert.equal(result.ack, 'ok ');
    });

    browserTest('no supported offer: the server names none and Chromium fails the connection (1006)', async () => {
      const result = await inPage<Negotiated>(`hl.negotiate(['v9.unknown'], 'p4')`);
      assert.equal(result.opened, false);
      assert.equal(result.close.code, 1006);
      assert.equal(result.close.sawError, true);
      assert.equal(result.close.wasClean, false);
    });
  });

  describe('closing', () => {
    browserTest("the browser's close code and reason reach the server's close handler", async () => {
      const reason = 'bye from the browser ✓';
      const result = await inPage<CloseResult>(`hl.clientClose('c1', 4000, ${js(reason)})`);
      assert.equal(result.error, undefined);
      // The server answers with the same code (and no reason), then closes TCP.
      assert.equal(result.close.code, 4000);
      assert.equal(result.close.wasClean, true);
      const seen = await waitFor(() => serverCloses.find((c) => c.tag === 'c1'), "the server's close handler");
      assert.deepEqual(seen, { tag: 'c1', code: 4000, reason });
    });

    browserTest('a close without a code reaches the server as 1005 with no reason', async () => {
      const result = await inPage<CloseResult>(`hl.clientClose('c2', null, '')`);
      assert.equal(result.close.code, 1005);
      assert.equal(result.close.wasClean, true);
      const seen = await waitFor(() => serverCloses.find((c) => c.tag === 'c2'), "the server's close handler");
      assert.deepEqual(seen, { tag: 'c2', code: 1005, reason: '' });
    });

    browserTest("the server's close code and reason reach the browser's CloseEvent, cleanly", async () => {
      const reason = 'server says bye ✓';
      const result = await inPage<CloseResult>(`hl.serverCommand(${js({ close: 4001, reason })})`);
      assert.equal(result.error, undefined);
      assert.deepEqual(result.close, { opened: true, code: 4001, reason, wasClean: true, sawError: false });
    });

    browserTest('the server terminating the connection is 1006 and not clean in the browser', async () => {
      const result = await inPage<CloseResult>(`hl.serverCommand({ terminate: true })`);
      assert.equal(result.close.opened, true);
      assert.equal(result.close.code, 1006);
      assert.equal(result.close.wasClean, false);
    });

    browserTest('a message over maxPayload is closed with 1009', async () => {
      const result = await inPage<CloseResult>(`hl.sendAndWaitClose('/small', ${SMALL_MAX_PAYLOAD + 1})`);
      assert.equal(result.close.opened, true);
      assert.equal(result.close.code, 1009);
    });

    browserTest('a message exactly at maxPayload is still echoed', async () => {
      const bytes = Array.from({ length: SMALL_MAX_PAYLOAD }, (_, i) => i & 0xff);
      const result = await inPage<EchoResult>(`hl.echo('/small', [{ bytes: ${js(bytes)}, as: 'arraybuffer' }])`);
      assert.deepEqual(result.received, [{ bytes }]);
    });

    browserTest("an Origin allow-list without the page's origin refuses it: error, then 1006", async () => {
      const rejectedBefore = server!.endpoints.get('/locked')!.counters.rejected;
      const result = await inPage<CloseResult>(`hl.attempt('/locked')`);
      assert.deepEqual(result.close, { opened: false, code: 1006, reason: '', wasClean: false, sawError: true });
      assert.equal(server!.endpoints.get('/locked')!.counters.rejected, rejectedBefore + 1);
    });
  });
});
