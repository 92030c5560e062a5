// Attack: many connections each leave a message unfinished at the very end of a full read.
// A read can be 64 KiB: had the server kept the message's first byte as a view of that read,
// each connection would hold 64 KiB for the one byte it sent of its message. What it holds
// must follow what was sent of the message, not the read it came in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { assertServed, attackFixture, clientFrame, describeReport, MiB, rawConnect, type RawConnection, startTarget } from './support/attack.js';

const ATTACKERS = 1200;
/** 480 unsolicited pongs of 125 bytes: a read of about 62 KiB that the server drops. */
const PADDING = Buffer.concat(Array.from({ length: 480 }, () => clientFrame(0xa, Buffer.alloc(125, 0x70))));
/** The padding, the first fragment of a binary message with one byte of it, and a ping whose pong says the server read them all. */
const WRITE = Buffer.concat([PADDING, clientFrame(0x2, Buffer.from('z'), false), clientFrame(0x9, Buffer.from('?'))]);

// Per-address limits off: every attacker comes from 127.0.0.1.
const fixture = attackFixture(() => startTarget(['--max-connections-per-address', '0', '--connection-rate-per-address', '0']));

/** Resolves once `conn` got the pong to its ping (a 3-byte frame 0x8a 0x01 '?'). */
function ponged(conn: RawConnection): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (conn.received().includes(Buffer.from([0x8a, 0x01, 0x3f]))) resolve();
    };
    conn.socket.on('data', check);
    conn.closed.then(() => reject(new Error(`closed after ${conn.received().length} bytes`)), () => {});
    check();
  });
}

test(`${ATTACKERS} connections each leave a message unfinished at the end of a ${Math.round(WRITE.length / 1024)} KiB read: the server holds their bytes, not their reads; the neighbour served`, { timeout: 120_000 }, async () => {
  const base = fixture.target.rss();
  const attackers: RawConnection[] = [];
  // In batches of 100, each waiting for its pongs: every read is over before the next batch.
  for (let batch = 0; batch < ATTACKERS / 100; batch++) {
    const conns = await Promise.all(Array.from({ length: 100 }, () => rawConnect(fixture.target.port, '/echo')));
    for (const conn of conns) conn.socket.write(WRITE);
    await Promise.all(conns.map(ponged));
    attackers.push(...conns);
  }
  const held = fixture.target.rss() - base;
  const report = await fixture.neighbour.report();
  assert.ok(fixture.target.alive(), 'the server is still running');
  for (const conn of attackers) assert.ok(!conn.socket.destroyed, 'every attacker is still connected: its message is still unfinished');
  process.stdout.write(
    `unfinished: ${ATTACKERS} connections, ${((ATTACKERS * WRITE.length) / MiB).toFixed(0)} MiB sent, RSS +${(held / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
  );
  // Holding each connection's read would be 72 MiB on its own; its byte in a small buffer,
  // and the connection itself, are a few KiB each.
  assert.ok(held < 36 * MiB, `RSS grew ${(held / MiB).toFixed(1)} MiB with ${ATTACKERS} unfinished messages (under 36 MiB)`);
  assertServed(report);
  for (const conn of attackers) conn.socket.destroy();
});
