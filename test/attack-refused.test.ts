// Attack: upgrades that are refused, from peers that never read the answer and never close.
// A refusal is plain HTTP followed by the end of the server's side; the peer's side stays
// open as long as the peer likes, and with it the server's socket and file descriptor,
// unless the server gives up on it. Against a real `hotline serve --close-timeout 500`: every
// kind of refusal (403 origin, 426 version, 404 path, 400 malformed) must free its
// descriptor within the close timeout, while a neighbour is served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { assertServed, attackFixture, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';

const CLOSE_TIMEOUT = 500;
/** Attackers per kind of refusal. */
const EACH = 50;

const fixture = attackFixture(() => startTarget(['--close-timeout', String(CLOSE_TIMEOUT)]));

/** File descriptors the server process holds (one per socket, and its own few). */
function descriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function request(path: string, extra: readonly string[] = [], version = '13'): string {
  return [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${fixture.target.port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    `Sec-WebSocket-Version: ${version}`,
    ...extra,
    '',
    '',
  ].join('\r\n');
}

/** The refusals, and the status each one's peer finds in its (unread) socket. */
const REFUSALS: ReadonlyArray<{ name: string; request: () => string; status: number }> = [
  { name: 'a foreign Origin', request: () => request('/echo', ['Origin: https://elsewhere.example']), status: 403 },
  { name: 'version 8', request: () => request('/ws', [], '8'), status: 426 },
  { name: 'no endpoint', request: () => request('/nowhere'), status: 404 },
  { name: 'a malformed head', request: () => 'GET /echo HTTP/1.1\r\nthis is not a header\r\n\r\n', status: 400 },
];

test(`${EACH * REFUSALS.length} refused peers that never read nor close: the server frees every descriptor within --close-timeout, the neighbour served`, { timeout: 60_000 }, async () => {
  const base = descriptors(fixture.target.pid);
  const rss = new RssSampler(fixture.target.pid);
  const peers: Array<{ socket: Socket; status: number }> = [];
  try {
    for (const refusal of REFUSALS) {
      for (let i = 0; i < EACH; i++) {
        const socket = connect(fixture.target.port, '127.0.0.1');
        socket.pause(); // never reads, never ends
        socket.on('error', () => {});
        socket.write(refusal.request());
        peers.push({ socket, status: refusal.status });
      }
    }
    await Promise.all(peers.map(({ socket }) => (socket.connecting ? once(socket, 'connect') : undefined)));
    const sent = Date.now();
    // Sampled until the server is back to its own descriptors (and the neighbour's).
    let peak = descriptors(fixture.target.pid);
    let now = peak;
    while (now > base && Date.now() - sent < CLOSE_TIMEOUT + 5_000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      now = descriptors(fixture.target.pid);
      peak = Math.max(peak, now);
    }
    const took = Date.now() - sent;
    const rssPeak = rss.stop();
    process.stdout.write(
      `refused: ${peers.length} peers; server descriptors ${base} before, peak ${peak}, ${now} after ${took} ms; ` +
        `RSS ${(fixture.target.baseline / MiB).toFixed(1)} MiB before, peak ${(rssPeak / MiB).toFixed(1)} MiB\n`,
    );
    assert.ok(rssPeak - fixture.target.baseline < 32 * MiB, `RSS grew ${((rssPeak - fixture.target.baseline) / MiB).toFixed(1)} MiB (under 32 MiB)`);
    assert.ok(peak >= base + peers.length / 2, `the attack landed: the server held ${peak - base} sockets at the peak`);
    assert.ok(now <= base, `the server still holds ${now - base} refused sockets ${took} ms after the requests`);
    assert.ok(took < CLOSE_TIMEOUT + 2_000, `freed after ${took} ms (close timeout ${CLOSE_TIMEOUT} ms)`);
    assert.ok(peers.every(({ socket }) => !socket.destroyed), 'no peer closed its side');
    assert.ok(fixture.target.alive());

    // What each peer finds once it reads at last: its refusal, then the end of the stream.
    const answers = await Promise.all(
      peers.map(async ({ socket }) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.resume();
        await once(socket, 'end');
        return Number(/^HTTP\/1\.1 (\d{3}) /.exec(Buffer.concat(chunks).toString('latin1'))?.[1] ?? 0);
      }),
    );
    assert.deepEqual(answers, peers.map(({ status }) => status));
    const report = await fixture.neighbour.report();
    process.stdout.write(`refused: neighbour ${describeReport(report)}\n`);
    assertServed(report);
  } finally {
    rss.stop();
    for (const { socket } of peers) socket.destroy();
  }
});
