// Attacks on the HTTP API (/api/): what a caller costs the server per byte it sends.
// - Without the key, a request costs the header parse: it is answered 401 and its
//   connection closed, however large a body it declares or keeps sending.
// - With the key, a body is read up to maxBodyBytes (256 KiB): a larger declared length is
//   refused before reading, a chunked body that grows past the cap is cut off there; both
//   413 and the connection closed.
// - A body that trickles in is answered 408 after requestTimeout and its connection closed.
// The target is a real `hotline serve --api-key KEY`; a neighbour beside it is served
// throughout, and the server's RSS stays near its baseline.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { connect as connectTcp, type Socket } from 'node:net';
import { test } from 'node:test';
import { assertServed, attackFixture, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';

const KEY = 'attack-api-key-0123456789';
const REQUEST_TIMEOUT = 1_000;
const fixture = attackFixture(() =>
  startTarget(['--api-key', KEY, '--api-request-timeout', String(REQUEST_TIMEOUT)], { nodeArgs: ['--max-old-space-size=256'] }),
);

interface RawExchange {
  /** What the server answered, head and body. */
  response: string;
  /** Body bytes the attacker got written before the server closed the connection. */
  sent: number;
  /** ms from the first byte to the close. */
  elapsed: number;
}

/**
 * Sends `head`, then body chunks of `chunk` bytes (as fast as the socket takes them) until
 * `total` bytes are sent or the server closes the connection.
 */
function attack(port: number, head: string, total: number, chunk = 64 * 1024, chunked = false): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket: Socket = connectTcp(port, '127.0.0.1');
    const started = performance.now();
    let response = '';
    let sent = 0;
    let closed = false;
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => (response += data));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      resolve({ response, sent, elapsed: performance.now() - started });
    });
    const body = Buffer.alloc(chunk, 0x20);
    const pump = (): void => {
      while (!closed && sent < total) {
        sent += chunk;
        const ok = socket.write(chunked ? Buffer.concat([Buffer.from(`${chunk.toString(16)}\r\n`), body, Buffer.from('\r\n')]) : body);
        if (!ok) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    socket.write(head, pump);
  });
}

function head(path: string, headers: Record<string, string>): string {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

const DECLARED = 100 * MiB;

test('without the key, 20 requests declaring 100 MiB bodies: each answered 401 and closed after little of its body; memory flat; the neighbour served', { timeout: 60_000 }, async () => {
  const { target, neighbour } = fixture;
  const peak = new RssSampler(target.pid);
  const exchanges = await Promise.all(
    Array.from({ length: 20 }, () => attack(target.port, head('/api/publish', { 'content-type': 'application/json', 'content-length': String(DECLARED) }), DECLARED)),
  );
  const rssPeak = peak.stop();
  const report = await neighbour.report();
  const mostSent = Math.max(...exchanges.map((e) => e.sent));
  process.stdout.write(`api 401: most body sent before the close ${(mostSent / MiB).toFixed(1)} MiB of 100; RSS +${((rssPeak - target.baseline) / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`);
  for (const exchange of exchanges) {
    assert.match(exchange.response, /^HTTP\/1\.1 401 /);
    assert.match(exchange.response, /\r\nconnection: close\r\n/i);
    assert.match(exchange.response, /"code":"unauthorized"/);
  }
  // The kernel's socket buffers take some before the close arrives; never the body.
  assert.ok(mostSent < 16 * MiB, `an attacker got ${(mostSent / MiB).toFixed(1)} MiB written before the close`);
  assert.ok(rssPeak - target.baseline < 16 * MiB, `RSS grew ${((rssPeak - target.baseline) / MiB).toFixed(1)} MiB`);
  assert.ok(target.alive());
  assertServed(report);
});

test('with the key, 20 bodies past maxBodyBytes (declared, or chunked and growing): 413 at the cap and closed; memory near 20 caps', { timeout: 60_000 }, async () => {
  const { target, neighbour } = fixture;
  const peak = new RssSampler(target.pid);
  const auth = { authorization: `apikey ${KEY}`, 'content-type': 'application/json' };
  const exchanges = await Promise.all([
    ...Array.from({ length: 10 }, () => attack(target.port, head('/api/publish', { ...auth, 'content-length': String(DECLARED) }), DECLARED)),
    ...Array.from({ length: 10 }, () => attack(target.port, head('/api/publish', { ...auth, 'transfer-encoding': 'chunked' }), DECLARED, 16 * 1024, true)),
  ]);
  const rssPeak = peak.stop();
  const report = await neighbour.report();
  const mostSent = Math.max(...exchanges.map((e) => e.sent));
  process.stdout.write(`api 413: most body sent before the close ${(mostSent / MiB).toFixed(1)} MiB of 100; RSS +${((rssPeak - target.baseline) / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`);
  for (const exchange of exchanges) {
    assert.match(exchange.response, /^HTTP\/1\.1 413 /);
    assert.match(exchange.response, /"message":"the body is larger than 262144 bytes"/);
  }
  assert.ok(mostSent < 16 * MiB, `an attacker got ${(mostSent / MiB).toFixed(1)} MiB written before the close`);
  assert.ok(rssPeak - target.baseline < 24 * MiB, `RSS grew ${((rssPeak - target.baseline) / MiB).toFixed(1)} MiB`);
  assert.ok(target.alive());
  assertServed(report);
});

test(`with the key, 50 bodies that stop arriving: each answered 408 after requestTimeout (${REQUEST_TIMEOUT} ms) and closed; the neighbour served`, { timeout: 60_000 }, async () => {
  const { target, neighbour } = fixture;
  const exchanges = await Promise.all(
    Array.from({ length: 50 }, () =>
      // 10 bytes of a 1000-byte body, then nothing.
      attack(target.port, head('/api/publish', { authorization: `apikey ${KEY}`, 'content-type': 'application/json', 'content-length': '1000' }), 10, 10),
    ),
  );
  const report = await neighbour.report();
  const slowest = Math.max(...exchanges.map((e) => e.elapsed));
  process.stdout.write(`api 408: closed after ${Math.min(...exchanges.map((e) => e.elapsed)).toFixed(0)}–${slowest.toFixed(0)} ms; neighbour ${describeReport(report)}\n`);
  for (const exchange of exchanges) {
    assert.match(exchange.response, /^HTTP\/1\.1 408 /);
    assert.match(exchange.response, /"code":"request_timeout"/);
    assert.ok(exchange.elapsed >= REQUEST_TIMEOUT - 50, `closed after ${exchange.elapsed.toFixed(0)} ms`);
  }
  assert.ok(slowest < REQUEST_TIMEOUT + 5_000, `the slowest closed after ${slowest.toFixed(0)} ms`);
  assertServed(report);
});
