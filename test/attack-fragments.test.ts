// Attack: one message sent as 1-byte fragments. Each frame costs the attacker 7 bytes on
// the wire; what it costs the server must stay near the message's own size, whatever the
// number of fragments (a buffer per fragment made ~130 bytes of server memory per byte
// sent: five such messages killed a server with a 256 MiB heap).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { assertServed, attackFixture, clientFrame, describeReport, MiB, rawConnect, type RawConnection, RssSampler, startTarget } from './support/attack.js';

const MESSAGE = 900_000;
const ATTACKERS = 5;

const fixture = attackFixture(() => startTarget([], { nodeArgs: ['--max-old-space-size=256'] }));

/** Writes the message as 1-byte frames, in 64 KiB writes that wait for the socket to drain. */
async function sendInOneByteFragments(conn: RawConnection, size: number): Promise<void> {
  const frames: Buffer[] = [];
  let pending = 0;
  const flush = async (): Promise<void> => {
    const chunk = Buffer.concat(frames);
    frames.length = 0;
    pending = 0;
    if (conn.socket.destroyed) throw new Error('the server closed the connection');
    if (!conn.socket.write(chunk)) await Promise.race([new Promise((resolve) => conn.socket.once('drain', resolve)), conn.closed]);
  };
  const byte = Buffer.from('a');
  for (let i = 0; i < size; i++) {
    const frame = clientFrame(i === 0 ? 0x1 : 0x0, byte, i === size - 1);
    frames.push(frame);
    pending += frame.length;
    if (pending >= 64 * 1024) await flush();
  }
  await flush();
}

test(`${ATTACKERS} messages of ${MESSAGE} one-byte fragments: echoed whole, server memory near their size, the neighbour served`, { timeout: 120_000 }, async () => {
  const peak = new RssSampler(fixture.target.pid);
  const attackers = await Promise.all(Array.from({ length: ATTACKERS }, () => rawConnect(fixture.target.port, '/echo')));
  await Promise.all(attackers.map((conn) => sendInOneByteFragments(conn, MESSAGE)));
  // Each gets its message back whole: a 10-byte header (64-bit length) and the payload.
  await Promise.all(
    attackers.map(
      (conn) =>
        new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (conn.received().length >= 10 + MESSAGE) resolve();
          };
          conn.socket.on('data', check);
          conn.closed.then(() => reject(new Error(`closed after ${conn.received().length} bytes`)), () => {});
          check();
        }),
    ),
  );
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  for (const conn of attackers) {
    const echoed = conn.received();
    assert.equal(echoed[0], 0x81, 'one text frame');
    assert.equal(Number(echoed.readBigUInt64BE(2)), MESSAGE);
    assert.ok(echoed.subarray(10, 10 + MESSAGE).every((b) => b === 0x61), 'the payload, byte for byte');
    conn.socket.destroy();
  }
  assert.ok(fixture.target.alive(), 'the server is still running');
  const growth = rssPeak - fixture.target.baseline;
  process.stdout.write(
    `fragments: baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
  );
  // Payloads in assembly and their echoes: ~9 MB; allow for buffers, GC and the sockets.
  assert.ok(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB (under 64 MiB)`);
  assertServed(report);
});

test('one message of 1-byte fragments, each read padded with 64 KiB of unsolicited pongs: the server holds the message, not the reads', { timeout: 120_000 }, async () => {
  const FRAGMENTS = 1280;
  const conn = await rawConnect(fixture.target.port, '/echo');
  const base = fixture.target.rss();
  const peak = new RssSampler(fixture.target.pid);
  const pongs = Buffer.concat(Array.from({ length: 500 }, () => clientFrame(0xa, Buffer.alloc(125))));
  const byte = Buffer.from('b');
  let sent = 0;
  for (let i = 0; i < FRAGMENTS; i++) {
    const write = Buffer.concat([clientFrame(i === 0 ? 0x2 : 0x0, byte, false), pongs]);
    sent += write.length;
    if (!conn.socket.write(write)) await Promise.race([new Promise((resolve) => conn.socket.once('drain', resolve)), conn.closed]);
    if (conn.socket.destroyed) throw new Error('the server closed the connection');
  }
  // The last fragment ends the message: its echo says the server read everything before it.
  conn.socket.write(clientFrame(0x0, byte, true));
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (conn.received().length >= 4 + FRAGMENTS + 1) resolve();
    };
    conn.socket.on('data', check);
    conn.closed.then(() => reject(new Error('closed before the echo')), () => {});
    check();
  });
  const growth = peak.stop() - base;
  const echoed = conn.received();
  assert.equal(echoed[0], 0x82, 'one binary frame');
  assert.equal(echoed.readUInt16BE(2), FRAGMENTS + 1);
  conn.socket.destroy();
  process.stdout.write(`padded fragments: ${(sent / MiB).toFixed(0)} MiB sent, RSS grew ${(growth / MiB).toFixed(1)} MiB\n`);
  // Keeping each fragment's read would hold 64 KiB per byte: 80 MiB here.
  assert.ok(growth < 32 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB while ${(sent / MiB).toFixed(0)} MiB were sent (under 32 MiB)`);
  assertServed(await fixture.neighbour.report());
});
