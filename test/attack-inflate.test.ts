// Attack: compressed requests that starve the CPU. A permessage-deflate frame of about
// 1 KiB inflates to a 1 MiB message, and inflating it, checking its UTF-8 and parsing its
// JSON costs the server milliseconds: a few connections sending such frames at full speed
// kept one core busy and made a neighbour wait 100 ms and more for each round trip. Two
// bounds stop it: /ws refuses a message larger than a hotline.v1 request can be (1009,
// decided as the inflating passes the limit), and every connection may inflate only
// `inflateRate` bytes per second: past it, reading from it pauses until the budget refills.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { constants as zlib, deflateRawSync } from 'node:zlib';
import { assertServed, attackFixture, clientFrame, cpuMs, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';
import { upgradeSocket } from './support/raw-upgrade.js';
import { sleep } from './support/wait.js';

/** How long each attack runs. */
const ATTACK_MS = 3_000;

const fixture = attackFixture(() => startTarget([], { nodeArgs: ['--max-old-space-size=256'] }));

/** A text message compressed as permessage-deflate sends it (sync flush, tail removed), in one masked frame. */
function compressedFrame(text: string): Buffer {
  const deflated = deflateRawSync(Buffer.from(text), { finishFlush: zlib.Z_SYNC_FLUSH });
  return clientFrame(0x1, deflated.subarray(0, deflated.length - 4), true, true);
}

/** A hotline.v1 ping padded with an unknown field (ignored by the server) to `size` bytes. */
function paddedPing(size: number): string {
  const head = '{"op":"ping","id":1,"pad":"';
  return head + 'a'.repeat(size - head.length - 2) + '"}';
}

/**
 * A raw client that negotiated permessage-deflate: it counts the server's data frames
 * (skipping their payloads, so megabytes of echoes cost it nothing) and keeps the close code.
 */
class DeflatePeer {
  dataFrames = 0;
  closeCode: number | null = null;
  closeReason = '';
  readonly closed: Promise<void>;
  private header = Buffer.alloc(0);
  private skip = 0;
  private control: Buffer[] | null = null;
  private opcode = 0;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(port: number, path: string): Promise<DeflatePeer> {
    const { socket, head, rest } = await upgradeSocket(port, path, ['Sec-WebSocket-Extensions: permessage-deflate']);
    if (!/sec-websocket-extensions: permessage-deflate/i.test(head)) {
      socket.destroy();
      throw new Error(`no permessage-deflate in the upgrade: ${head}`);
    }
    const peer = new DeflatePeer(socket);
    socket.on('data', (data: Buffer) => peer.read(data));
    peer.read(rest);
    return peer;
  }

  /** Writes `frame` again and again, as fast as the server takes it, until `until` or the close. */
  async flood(frame: Buffer, until: number): Promise<number> {
    const batch = Buffer.concat(Array.from({ length: Math.max(1, Math.floor(16_384 / frame.length)) }, () => frame));
    const perBatch = batch.length / frame.length;
    let sent = 0;
    let open = true;
    void this.closed.then(() => (open = false));
    while (open && Date.now() < until && !this.socket.destroyed) {
      sent += perBatch;
      if (!this.socket.write(batch)) {
        await Promise.race([new Promise((resolve) => this.socket.once('drain', resolve)), this.closed, sleep(until - Date.now())]);
      }
    }
    return sent;
  }

  private read(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        this.control?.push(chunk.subarray(at, at + n));
        this.skip -= n;
        at += n;
        if (this.skip === 0) this.endFrame();
        continue;
      }
      // A header is at most 10 bytes (a server's are unmasked); it may arrive split.
      const before = this.header.length;
      this.header = Buffer.concat([this.header, chunk.subarray(at, at + 10)]);
      const parsed = parseHeader(this.header);
      if (parsed === null) {
        at = chunk.length;
        continue;
      }
      at += parsed.headerLength - before;
      this.header = Buffer.alloc(0);
      this.opcode = parsed.opcode;
      this.control = parsed.opcode === 0x8 ? [] : null;
      this.skip = parsed.length;
      if (this.skip === 0) this.endFrame();
    }
  }

  /** Settles once `n` data frames have arrived. */
  frames(n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.dataFrames >= n) resolve();
        else this.waiters.push(check);
      };
      check();
    });
  }

  private endFrame(): void {
    if (this.opcode === 0x1 || this.opcode === 0x2) {
      this.dataFrames++;
      const waiting = this.waiters;
      this.waiters = [];
      for (const wake of waiting) wake();
    }
    if (this.opcode === 0x8 && this.control !== null) {
      const payload = Buffer.concat(this.control);
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.closeReason = payload.subarray(2).toString();
    }
    this.control = null;
  }
}

function parseHeader(bytes: Buffer): { opcode: number; length: number; headerLength: number } | null {
  if (bytes.length < 2) return null;
  const short = bytes[1]! & 0x7f;
  if (short === 126) return bytes.length < 4 ? null : { opcode: bytes[0]! & 0x0f, length: bytes.readUInt16BE(2), headerLength: 4 };
  if (short === 127) return bytes.length < 10 ? null : { opcode: bytes[0]! & 0x0f, length: Number(bytes.readBigUInt64BE(2)), headerLength: 10 };
  return { opcode: bytes[0]! & 0x0f, length: short, headerLength: 2 };
}

async function metric(name: string, endpoint: string): Promise<number> {
  const { text } = await fixture.target.get('/metrics');
  const line = text.split('\n').find((l) => l.startsWith(`${name}{endpoint="${endpoint}"} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

test('1 MiB compressed pings on /ws at full speed from two connections: refused with 1009 before any parsing, the neighbour served', { timeout: 60_000 }, async () => {
  const frame = compressedFrame(paddedPing(MiB));
  assert.ok(frame.length < 1_200, `the frame is ${frame.length} bytes`);
  await fixture.neighbour.forget();
  const peak = new RssSampler(fixture.target.pid);
  const cpuBefore = cpuMs(fixture.target.pid);
  const started = Date.now();
  const until = started + ATTACK_MS;
  const closes: Array<number | null> = [];
  const reasons = new Set<string>();
  let answered = 0;
  // Each attacker connects again as soon as it is closed, until the time is up.
  const attack = async (): Promise<void> => {
    while (Date.now() < until) {
      const peer = await DeflatePeer.open(fixture.target.port, '/ws');
      await peer.flood(frame, until);
      await Promise.race([peer.closed, sleep(until - Date.now())]);
      answered += peer.dataFrames;
      closes.push(peer.closeCode);
      reasons.add(peer.closeReason);
      peer.socket.destroy();
    }
  };
  await Promise.all([attack(), attack()]);
  const cpu = (cpuMs(fixture.target.pid) - cpuBefore) / (Date.now() - started);
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  const refused = closes.filter((code) => code === 1009).length;
  process.stdout.write(
    `inflate /ws 1 MiB: ${closes.length} connections, ${refused} closed with 1009, ${answered} pongs; server CPU ${(cpu * 100).toFixed(0)}%; ` +
      `RSS baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
  );
  assert.ok(fixture.target.alive(), 'the server is still running');
  // The last connection of each attacker may still be open when the time is up.
  assert.ok(refused >= closes.length - 2 && refused > 0, `${refused} of ${closes.length} connections closed with 1009`);
  assert.deepEqual([...reasons].filter((r) => r !== ''), ['message inflates past the limit of 262144 bytes']);
  assert.equal(answered, 0, 'no ping of 1 MiB was parsed and answered');
  // Each connection costs a handshake and at most 256 KiB of inflating, whatever it sends:
  // 100-230 connections in 3 s grew RSS 38-49 MiB in the runs measured (V8 frees the
  // inflated garbage lazily), however many more frames they wrote.
  assert.ok(rssPeak - fixture.target.baseline < 96 * MiB, `RSS grew ${((rssPeak - fixture.target.baseline) / MiB).toFixed(1)} MiB (under 96 MiB)`);
  assertServed(report);
});

test('compressed 1 MiB echoes and 200 KiB pings at full speed: slowed to inflateRate, nothing lost, the neighbour served, CPU bounded', { timeout: 60_000 }, async () => {
  const echoFrame = compressedFrame('x'.repeat(MiB));
  const pingFrame = compressedFrame(paddedPing(200 * 1024));
  await fixture.neighbour.forget();
  const pausesBefore = (await metric('hotline_inflate_pauses_total', '/echo')) + (await metric('hotline_inflate_pauses_total', '/ws'));
  const peak = new RssSampler(fixture.target.pid);
  const cpuBefore = cpuMs(fixture.target.pid);
  const started = Date.now();
  const until = started + ATTACK_MS;
  const [echo, ws] = await Promise.all([DeflatePeer.open(fixture.target.port, '/echo'), DeflatePeer.open(fixture.target.port, '/ws')]);
  const [echoSent, wsSent] = await Promise.all([echo.flood(echoFrame, until), ws.flood(pingFrame, until)]);
  const elapsed = (Date.now() - started) / 1000;
  const answered = [echo.dataFrames, ws.dataFrames];
  const codes = [echo.closeCode, ws.closeCode];
  echo.socket.destroy();
  ws.socket.destroy();
  const cpu = (cpuMs(fixture.target.pid) - cpuBefore) / (Date.now() - started);
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  const pauses = (await metric('hotline_inflate_pauses_total', '/echo')) + (await metric('hotline_inflate_pauses_total', '/ws'));
  process.stdout.write(
    `inflate throttled: echoes ${answered[0]} of ${echoSent} sent, pongs ${answered[1]} of ${wsSent} sent in ${elapsed.toFixed(1)} s; ` +
      `close ${codes.join(', ')}; pauses ${pauses - pausesBefore}; server CPU ${(cpu * 100).toFixed(0)}%; ` +
      `RSS baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
  );
  assert.ok(fixture.target.alive(), 'the server is still running');
  assert.deepEqual(codes, [null, null], 'the attackers are slowed, not closed');
  // The budget (4 MiB/s, a burst of one second's worth) bounds what each connection
  // inflates: at most the burst plus the rate for the time, plus the message that overdraws it.
  const allowed = (bytes: number): number => Math.ceil((4 * MiB * (1 + elapsed)) / bytes) + 1;
  assert.ok(answered[0]! > 0 && answered[0]! <= allowed(MiB), `${answered[0]} echoes (at most ${allowed(MiB)})`);
  assert.ok(answered[1]! > 0 && answered[1]! <= allowed(200 * 1024), `${answered[1]} pongs (at most ${allowed(200 * 1024)})`);
  assert.ok(pauses > pausesBefore, 'the pauses are counted in /metrics');
  assert.ok(cpu < 0.4, `the server used ${(cpu * 100).toFixed(0)}% of a core (under 40%)`);
  assert.ok(rssPeak - fixture.target.baseline < 64 * MiB, `RSS grew ${((rssPeak - fixture.target.baseline) / MiB).toFixed(1)} MiB (under 64 MiB)`);
  assertServed(report);
});

test('ten compressed 1 MiB messages sent at once on /echo: every one echoed, the budget only delays them', { timeout: 60_000 }, async () => {
  const messages = Array.from({ length: 10 }, (_, i) => String.fromCharCode(0x61 + i).repeat(MiB));
  const peer = await DeflatePeer.open(fixture.target.port, '/echo');
  const started = Date.now();
  peer.socket.write(Buffer.concat(messages.map((m) => compressedFrame(m))));
  await Promise.race([peer.frames(messages.length), peer.closed]);
  const elapsed = Date.now() - started;
  peer.socket.destroy();
  assert.equal(peer.closeCode, null);
  assert.equal(peer.dataFrames, messages.length, 'every message was echoed');
  // 10 MiB at 4 MiB/s after a burst of 4 MiB: about 1.5 s of waiting.
  assert.ok(elapsed >= 1_000, `the echoes took ${elapsed} ms (paced by inflateRate)`);
});
