// Attack: an upgrade reset while the server waits to decide on it. With a connect hook
// (here `--proxy-connect`, a backend that takes its time) the socket belongs to no one while
// the backend is asked; the attacker sends its upgrade and resets the TCP connection at that
// moment. A reset of a socket with no 'error' listener ends a Node process: before the fix,
// the first one killed `hotline serve` (read ECONNRESET, unhandled). Now each reset costs a
// backend call and nothing else: the process stays up, the backend's late answer finds the
// socket gone, and the neighbour beside it is served.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { assertServed, attackFixture, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';
import { waitFor } from './support/wait.js';

const ATTACKERS = 30;
/** How long the backend takes to allow a connection: the window in which each attacker resets. */
const HOLD_MS = 150;

/** A connect backend that allows everyone after HOLD_MS and counts the calls it received. */
let calls = 0;
let answered = 0;
let backend: Server | undefined;
async function startBackend(): Promise<number> {
  backend = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls++;
      setTimeout(() => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"allow":true}');
        answered++;
      }, HOLD_MS);
    });
  });
  await new Promise<void>((resolve) => backend!.listen(0, '127.0.0.1', resolve));
  return (backend.address() as AddressInfo).port;
}
after(() => backend?.close());

const fixture = attackFixture(async () => {
  const port = await startBackend();
  return startTarget(['--proxy-connect', JSON.stringify({ url: `http://127.0.0.1:${port}/connect`, timeout: 3000 })]);
});

const UPGRADE = [
  'GET /ws HTTP/1.1',
  'Host: 127.0.0.1',
  'Upgrade: websocket',
  'Connection: Upgrade',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version: 13',
  'Sec-WebSocket-Protocol: hotline.v1',
  '',
  '',
].join('\r\n');

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

test(`${ATTACKERS} upgrades reset while the connect hook decides: the server stays up, the neighbour is served`, { timeout: 60_000 }, async () => {
  const peak = new RssSampler(fixture.target.pid);
  for (let i = 0; i < ATTACKERS; i++) {
    const socket = await open(fixture.target.port);
    socket.on('error', () => {});
    const before = calls;
    socket.write(UPGRADE);
    // The backend has the call: the server is waiting on it, with the socket in hand.
    await waitFor(() => calls > before, 'the connect hook called for the attacker');
    socket.resetAndDestroy();
    assert.ok(fixture.target.alive(), `the server is still running after reset ${i + 1}`);
  }
  // The backend answers every held call; each finds its socket gone.
  await waitFor(() => answered === calls, 'every held call answered');
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  process.stdout.write(`upgrade resets: ${ATTACKERS} during the hook; RSS baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`);
  assert.ok(fixture.target.alive(), 'the server is still running');
  assert.ok(rssPeak - fixture.target.baseline < 32 * MiB, 'RSS bounded');
  assertServed(report);
});
