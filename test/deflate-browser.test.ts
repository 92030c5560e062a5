// permessage-deflate between hotline's server and headless Chromium's own WebSocket. The
// page is served by the hotline server; its WebSocket connects through a recording TCP
// proxy, so the tests see what Chromium offered, what the server answered, and which
// frames carried RSV1, besides what the page itself reports (ws.extensions, the echoed
// messages). The page script is plain JavaScript in a string (see browser-interop.test.ts
// for why), and the page compares the large echoes itself, returning only the verdicts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { serve, type RunningServer } from '../src/server/serve.js';
import type { ConnectionHandlers } from '../src/node/connection.js';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { RecordingProxy, type ProxiedConnection } from './support/deflate-proxy.js';
import { Op, deflateForWire, inflateFromWire } from './support/deflate-wire.js';

const KiB = 1024;
const MiB = 1024 * 1024;

const PAGE_SCRIPT = String.raw`
'use strict';
const LIMIT_MS = 20000;

function withLimit(what, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out in the page: ' + what)), LIMIT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function session(url) {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const queue = [];
  const waiters = [];
  ws.addEventListener('message', (event) => {
    const waiter = waiters.shift();
    if (waiter) waiter(event.data);
    else queue.push(event.data);
  });
  const opened = new Promise((resolve) => {
    ws.addEventListener('open', () => resolve(true));
    ws.addEventListener('close', () => resolve(false));
  });
  const closed = new Promise((resolve) => {
    ws.addEventListener('close', (event) => resolve({ code: event.code, wasClean: event.wasClean }));
  });
  const next = () => queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiters.push(resolve));
  return { ws, opened, closed, next };
}

/** Deterministic content: 'text' (compressible), 'random' bytes, or 'run' (similar JSON texts). */
function make(spec, i) {
  if (spec.kind === 'text') {
    const row = '{"id":' + (i % 10) + ',"text":"the quick brown fox jumps over the lazy dog"},';
    return row.repeat(Math.ceil(spec.size / row.length)).slice(0, spec.size);
  }
  if (spec.kind === 'random') {
    const bytes = new Uint8Array(spec.size);
    for (let at = 0; at < bytes.length; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
    return bytes.buffer;
  }
  // 'run': the same incompressible base in every message, so only history helps.
  return JSON.stringify({ seq: i, body: RUN_BASE }).padEnd(spec.size, ' ');
}

let RUN_BASE = '';
{
  // A fixed pseudo-random base (xorshift), the same on every run of the page.
  let x = 2463534242;
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < 1200; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    RUN_BASE += chars[x & 63];
  }
}

function same(sent, got) {
  if (typeof sent === 'string') return typeof got === 'string' && got === sent;
  if (!(got instanceof ArrayBuffer) || got.byteLength !== sent.byteLength) return false;
  const a = new Uint8Array(sent);
  const b = new Uint8Array(got);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(data) {
  return typeof data === 'string' ? { type: 'text', length: data.length } : { type: 'binary', length: data.byteLength };
}

window.hl = {
  /**
   * Opens url, asks the server for its conn.extensions, then sends each spec's message and
   * waits for its echo; with burst, sends 'count' messages before reading any echo.
   */
  run(url, specs, burst) {
    return withLimit('run', (async () => {
      const s = session(url);
      if (!(await s.opened)) return { error: 'did not open', close: await s.closed };
      s.ws.send('!extensions');
      const serverExtensions = await s.next();
      const results = [];
      if (burst) {
        const sent = [];
        for (let i = 0; i < burst.count; i++) {
          sent.push(make(burst.spec, i));
          s.ws.send(sent[i]);
        }
        let firstWrong = -1;
        for (let i = 0; i < burst.count; i++) {
          const got = await s.next();
          if (!same(sent[i], got) && firstWrong === -1) firstWrong = i;
        }
        results.push({ firstWrong });
      }
      for (const spec of specs) {
        const data = make(spec, 0);
        s.ws.send(data);
        const got = await s.next();
        results.push({ ok: same(data, got), sent: describe(data), got: describe(got) });
      }
      s.ws.close(1000, 'done');
      return { extensions: s.ws.extensions, serverExtensions, results, close: await s.closed };
    })());
  },
  /** The text of message i of a run, so the test can compute its size on its own. */
  runText(i, size) {
    return make({ kind: 'run', size }, i);
  },
};
`;

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>hotline deflate</title></head>
<body><script>${PAGE_SCRIPT}</script></body></html>`;

interface Spec {
  kind: 'text' | 'random' | 'run';
  size: number;
}

interface RunResult {
  error?: string;
  extensions: string;
  serverExtensions: string;
  results: Array<{ ok: boolean; sent: unknown; got: unknown } | { firstWrong: number }>;
  close: { code: number; wasClean: boolean };
}

/** The echo endpoint, which also answers `!extensions` with conn.extensions. */
const echoWithExtensions: ConnectionHandlers<undefined> = {
  message(conn, message) {
    if (message === '!extensions') conn.send(conn.extensions);
    else conn.send(message);
  },
};

/** 10 B, 4 KiB and 1 MiB, as text and as binary (random bytes, which do not compress). */
const SIZES: Spec[] = [
  { kind: 'text', size: 10 },
  { kind: 'random', size: 10 },
  { kind: 'text', size: 4 * KiB },
  { kind: 'random', size: 4 * KiB },
  { kind: 'text', size: MiB },
  { kind: 'random', size: MiB },
];

const RUN_SIZE = 1500;

const skip = chromiumSkip();

describe('hotline server with Chromium, permessage-deflate', { timeout: 60_000 }, () => {
  let browser: Browser | undefined;
  let page: Page;
  let server: RunningServer | undefined;
  let proxy: RecordingProxy | undefined;

  before(async () => {
    if (skip !== false) return;
    server = await serve({
      port: 0,
      host: '127.0.0.1',
      websocket: {
        '/echo': { handlers: echoWithExtensions, perMessageDeflate: true },
        '/echo-takeover': { handlers: echoWithExtensions, perMessageDeflate: { serverNoContextTakeover: false } },
        '/plain': { handlers: echoWithExtensions, perMessageDeflate: false },
      },
      // 1 MiB of random bytes deflates to a little over 1 MiB.
      endpoint: { maxPayload: 2 * MiB, heartbeatInterval: 0, closeTimeout: 2_000 },
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
    proxy = await RecordingProxy.start(server.port);
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.port}/`);
    assert.equal(await page.evaluate<string>('typeof window.hl'), 'object');
  });

  after(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.close();
  });

  /** Runs the page's scenario through the proxy; resolves once the connection is closed on both sides. */
  async function run(path: string, specs: Spec[], burst?: { spec: Spec; count: number }): Promise<{ result: RunResult; wire: ProxiedConnection }> {
    const url = `ws://127.0.0.1:${proxy!.port}${path}`;
    const [result, wire] = await Promise.all([
      page.evaluate<RunResult>(`hl.run(${JSON.stringify(url)}, ${JSON.stringify(specs)}, ${JSON.stringify(burst ?? null)})`),
      proxy!.nextConnection(),
    ]);
    await wire.closed;
    assert.equal(result.error, undefined);
    assert.deepEqual(result.close, { code: 1000, wasClean: true });
    return { result, wire };
  }

  function assertEchoes(result: RunResult, from = 0): void {
    for (const [i, r] of result.results.slice(from).entries()) {
      assert.ok('ok' in r && r.ok, `message ${i} (${JSON.stringify(SIZES[i])}) did not come back the same: ${JSON.stringify(r)}`);
    }
  }

  function assertNoRsv1OnControlFrames(wire: ProxiedConnection): void {
    for (const frame of [...wire.toServer.frames, ...wire.toClient.frames]) {
      assert.equal(frame.rsv2 || frame.rsv3, false, 'RSV2/RSV3 set');
      if (frame.opcode >= 0x8 || frame.opcode === Op.Continuation) assert.equal(frame.rsv1, false, `RSV1 on opcode ${frame.opcode}`);
    }
    assert.deepEqual(wire.toServer.controls.map((f) => f.opcode), [Op.Close]);
    assert.deepEqual(wire.toClient.controls.map((f) => f.opcode), [Op.Close]);
  }

  test('defaults: Chromium sees "permessage-deflate; server_no_context_takeover", and 10 B to 1 MiB echo exactly', { skip }, async () => {
    const { result, wire } = await run('/echo', SIZES);
    assert.equal(wire.toServer.header('sec-websocket-extensions'), 'permessage-deflate; client_max_window_bits', "Chromium's offer");
    assert.equal(wire.toClient.header('sec-websocket-extensions'), 'permessage-deflate; server_no_context_takeover');
    assert.equal(result.extensions, 'permessage-deflate; server_no_context_takeover', 'ws.extensions in the page');
    assert.equal(result.serverExtensions, result.extensions, 'conn.extensions on the server');
    assertEchoes(result);
    assertNoRsv1OnControlFrames(wire);

    // Server to client: below the 1 KiB threshold as is, above it compressed, each message
    // on its own (server_no_context_takeover), so each inflates alone.
    const down = wire.toClient.messages;
    assert.deepEqual(down.map((m) => m.rsv1), [false, false, false, true, true, true, true]);
    for (const m of down.filter((m) => m.rsv1 && m.payload !== null)) inflateFromWire(m.payload!);
    assert.ok(down[5]!.length < MiB / 20, `1 MiB of text went to Chromium as ${down[5]!.length} B`);
    assert.ok(down[6]!.length >= MiB, 'random bytes do not shrink');
    // Client to server (the first is !extensions): Chromium compresses what it sends.
    const up = wire.toServer.messages;
    assert.equal(up.length, 7);
    assert.ok(up.slice(3).every((m) => m.rsv1), `RSV1 from Chromium: ${up.map((m) => m.rsv1).join(' ')}`);
    assert.ok(up[5]!.length < MiB / 20, `1 MiB of text came from Chromium as ${up[5]!.length} B`);
  });

  test("defaults: 100 messages in a row come back in order; Chromium's context takeover shows on the wire", { skip }, async () => {
    const { result, wire } = await run('/echo', [], { spec: { kind: 'run', size: RUN_SIZE }, count: 100 });
    assert.deepEqual(result.results, [{ firstWrong: -1 }]);
    assertNoRsv1OnControlFrames(wire);
    const up = wire.toServer.messages.slice(1);
    const down = wire.toClient.messages.slice(1);
    assert.equal(up.length, 100);
    assert.equal(down.length, 100);
    const alone = deflateForWire(Buffer.from(await page.evaluate<string>(`hl.runText(7, ${RUN_SIZE})`))).length;
    // Chromium keeps its context: from the second message on, each refers back to the last.
    for (const [i, m] of up.entries()) {
      assert.ok(m.rsv1, `message ${i} from Chromium is compressed`);
      if (i > 0) assert.ok(m.length * 4 < alone, `message ${i} came as ${m.length} B; alone it deflates to ${alone} B`);
    }
    // The server resets its context: every echo is compressed on its own.
    for (const [i, m] of down.entries()) {
      assert.ok(m.rsv1, `echo ${i} is compressed`);
      assert.ok(m.length * 4 > alone, `echo ${i} went as ${m.length} B`);
    }
  });

  test('serverNoContextTakeover: false: Chromium sees "permessage-deflate", echoes are exact and refer back', { skip }, async () => {
    const { result, wire } = await run('/echo-takeover', SIZES, { spec: { kind: 'run', size: RUN_SIZE }, count: 100 });
    assert.equal(wire.toClient.header('sec-websocket-extensions'), 'permessage-deflate');
    assert.equal(result.extensions, 'permessage-deflate');
    assert.equal(result.serverExtensions, 'permessage-deflate');
    assert.deepEqual(result.results[0], { firstWrong: -1 });
    assertEchoes(result, 1);
    assertNoRsv1OnControlFrames(wire);
    const alone = deflateForWire(Buffer.from(await page.evaluate<string>(`hl.runText(7, ${RUN_SIZE})`))).length;
    const down = wire.toClient.messages;
    // !extensions, then the run of 100, then the six sizes.
    assert.equal(down.length, 1 + 100 + SIZES.length);
    for (const [i, m] of down.slice(2, 101).entries()) {
      assert.ok(m.rsv1 && m.length * 4 < alone, `echo ${i + 1} of the run went as ${m.length} B; alone it deflates to ${alone} B`);
    }
    assert.deepEqual(down.slice(101).map((m) => m.rsv1), [false, false, true, true, true, true]);
  });

  test('perMessageDeflate off: Chromium sees ws.extensions === "", and nothing is compressed', { skip }, async () => {
    const { result, wire } = await run('/plain', SIZES);
    assert.equal(wire.toServer.header('sec-websocket-extensions'), 'permessage-deflate; client_max_window_bits', "Chromium's offer");
    assert.equal(wire.toClient.header('sec-websocket-extensions'), undefined);
    assert.equal(result.extensions, '');
    assert.equal(result.serverExtensions, '');
    assertEchoes(result);
    assertNoRsv1OnControlFrames(wire);
    for (const m of [...wire.toServer.messages, ...wire.toClient.messages]) assert.equal(m.rsv1, false);
    assert.equal(wire.toClient.messages[5]!.length, MiB);
  });
});
