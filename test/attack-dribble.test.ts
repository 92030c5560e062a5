// Attack: frames and messages dribbled a byte at a time. Every byte counts as liveness for
// the heartbeat and the idle timeout, so a peer that sends one byte now and then holds its
// connection (and whatever part of a message it sent) forever: 5,000 such connections were
// held past both. `messageTimeout` bounds the time a frame, or a fragmented message, may
// take from its first byte to its last: past it the connection is failed with 1008.
//
// The CLI cannot set the timeouts yet, so the target is ./support/limits-server.ts: the
// app's /echo and /ws with messageTimeout 1 s, a heartbeat of 2 s and an idle timeout of
// 4 s, which the attackers outlive by sending a byte every 150 ms (before the fix they were
// all still open after 10 s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { assertServed, attackFixture, clientFrame, closeCodeIn, describeReport, MiB, rawConnect, type RawConnection, RssSampler } from './support/attack.js';
import { startLimitsTarget } from './support/limits-target.js';

const MESSAGE_TIMEOUT = 1_000;
const DRIBBLE_MS = 150;
/** Attackers of each kind. */
const EACH = 200;

const fixture = attackFixture(() => startLimitsTarget({ messageTimeout: MESSAGE_TIMEOUT, heartbeatInterval: 2_000, idleTimeout: 4_000 }, ['--max-old-space-size=256']));

async function metric(name: string, endpoint: string): Promise<number> {
  const { text } = await fixture.target.get('/metrics');
  const line = text.split('\n').find((l) => l.startsWith(`${name}{endpoint="${endpoint}"} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

/** An attacker: what it sends first, then what it sends every DRIBBLE_MS until it is closed. */
interface Dribbler {
  conn: RawConnection;
  next(): Buffer;
  /** When its first byte went out, and when it was closed (0: not yet). */
  openedAt: number;
  closedAt: number;
}

/** A data frame of 100 bytes whose payload comes a byte at a time. */
function dribbledFrame(conn: RawConnection): Dribbler {
  const frame = clientFrame(0x1, Buffer.alloc(100, 0x61));
  const openedAt = Date.now();
  conn.socket.write(frame.subarray(0, 6)); // header and mask key
  let at = 6;
  return { conn, openedAt, closedAt: 0, next: () => frame.subarray(at, ++at) };
}

/** A fragmented message: every frame arrives whole, the message never ends. */
function endlessMessage(conn: RawConnection): Dribbler {
  const openedAt = Date.now();
  conn.socket.write(clientFrame(0x1, Buffer.from('a'), false));
  return { conn, openedAt, closedAt: 0, next: () => clientFrame(0x0, Buffer.from('a'), false) };
}

/** A ping of 125 bytes whose header and payload come a byte at a time. */
function dribbledPing(conn: RawConnection): Dribbler {
  const frame = clientFrame(0x9, Buffer.alloc(125, 0x62));
  let at = 0;
  return { conn, openedAt: Date.now(), closedAt: 0, next: () => frame.subarray(at, ++at) };
}

test(`${3 * EACH} connections dribbling a frame, a fragmented message or a ping past the heartbeat and idle timeouts: failed with 1008 after messageTimeout, the neighbour served`, { timeout: 60_000 }, async () => {
  await fixture.neighbour.forget();
  const peak = new RssSampler(fixture.target.pid);
  const kinds = [dribbledFrame, endlessMessage, dribbledPing];
  const attackers: Dribbler[] = [];
  // Dribbling starts with the first connection: connecting them all takes longer than the
  // heartbeat, which would otherwise end the first ones before the timeout could.
  const timer = setInterval(() => {
    for (const a of attackers) if (!a.conn.socket.destroyed && a.closedAt === 0) a.conn.socket.write(a.next());
  }, DRIBBLE_MS);
  for (const kind of kinds) {
    for (let i = 0; i < EACH; i++) {
      const attacker = kind(await rawConnect(fixture.target.port, kind === endlessMessage ? '/ws' : '/echo'));
      void attacker.conn.closed.then(() => (attacker.closedAt = Date.now()));
      attackers.push(attacker);
    }
  }
  // Every attacker closed (or, before the fix, not within 10 messageTimeouts).
  const deadline = new Promise<void>((resolve) => setTimeout(resolve, 10 * MESSAGE_TIMEOUT).unref());
  await Promise.race([
    Promise.all(attackers.map((a) => a.conn.closed)),
    deadline,
  ]);
  clearInterval(timer);
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  const open = attackers.filter((a) => a.closedAt === 0).length;
  const codes = new Map<number | null, number>();
  for (const a of attackers) codes.set(closeCodeIn(a.conn.received()), (codes.get(closeCodeIn(a.conn.received())) ?? 0) + 1);
  const lifetimes = attackers.map((a) => (a.closedAt === 0 ? Date.now() : a.closedAt) - a.openedAt);
  const fastest = Math.min(...lifetimes);
  const slowest = Math.max(...lifetimes);
  const timeouts = (await metric('hotline_message_timeouts_total', '/echo')) + (await metric('hotline_message_timeouts_total', '/ws'));
  process.stdout.write(
    `dribble: ${attackers.length - open} of ${attackers.length} closed, after ${fastest} to ${slowest} ms; close codes ${JSON.stringify([...codes])}; ` +
      `message timeouts counted ${timeouts}; RSS baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
  );
  for (const a of attackers) a.conn.socket.destroy();
  assert.ok(fixture.target.alive(), 'the server is still running');
  assert.equal(open, 0, 'every dribbling connection was closed');
  assert.deepEqual([...codes], [[1008, attackers.length]], 'each with a close frame of 1008 (not a heartbeat termination)');
  for (const a of attackers) {
    const text = a.conn.received().toString('latin1');
    assert.ok(text.includes(`frame or message not completed within ${MESSAGE_TIMEOUT} ms`), 'the reason says why');
  }
  // Failed at the first sweep past the timeout (the sweep runs every 500 ms here), not before.
  assert.ok(fastest >= MESSAGE_TIMEOUT, `the first attacker was closed after ${fastest} ms`);
  assert.ok(slowest < MESSAGE_TIMEOUT + 2_000, `the last attacker was closed after ${slowest} ms`);
  assert.equal(timeouts, attackers.length, 'each is counted in hotline_message_timeouts_total');
  assertServed(report);
});

test('a message that takes a while but completes within messageTimeout is echoed; the neighbour is served', { timeout: 30_000 }, async () => {
  const conn = await rawConnect(fixture.target.port, '/echo');
  const payload = Buffer.alloc(40, 0x63);
  const frame = clientFrame(0x2, payload);
  // Half the timeout in pieces, then the rest.
  const pieces = [frame.subarray(0, 10), frame.subarray(10, 20), frame.subarray(20)];
  for (const piece of pieces) {
    conn.socket.write(piece);
    await new Promise((resolve) => setTimeout(resolve, MESSAGE_TIMEOUT / 4));
  }
  // The echo, among the heartbeat's pings.
  const echoed = await new Promise<Buffer>((resolve, reject) => {
    const check = (): void => {
      const data = dataFrameIn(conn.received());
      if (data !== null) resolve(data);
    };
    conn.socket.on('data', check);
    conn.closed.then(() => reject(new Error('closed')), () => {});
    check();
  });
  assert.deepEqual(echoed, Buffer.concat([Buffer.from([0x82, payload.length]), payload]));
  conn.socket.destroy();
  assertServed(await fixture.neighbour.report(), { count: 1 });
});

/** The first whole data frame (header included) among a server's frames, or null. */
function dataFrameIn(bytes: Buffer): Buffer | null {
  let at = 0;
  while (at + 2 <= bytes.length) {
    const length = bytes[at + 1]! & 0x7f; // the frames here are short
    if (at + 2 + length > bytes.length) return null;
    if ((bytes[at]! & 0x0f) === 0x2) return bytes.subarray(at, at + 2 + length);
    at += 2 + length;
  }
  return null;
}
