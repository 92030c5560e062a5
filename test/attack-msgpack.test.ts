// Attack: hostile hotline.v1.msgpack frames, each just under the default maxPayload (256 KiB),
// sent back to back to a real `hotline serve`: nesting 250,000 levels deep, counts and
// lengths claiming gigabytes, a quarter of a million one-byte values (decoding costs several
// times JSON.parse's per value), tens of thousands of keys, extension payloads. Each is
// refused from one pass over its bytes, before anything is decoded, with the `err` a
// malformed JSON request gets; an attacker that keeps on is closed with 1008 at the abuse
// limit, the server's memory stays near its baseline, and a neighbour is served throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from '@msgpack/msgpack';
import WebSocket from 'ws';
import { assertServed, attackFixture, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';

const FRAME = 250_000;
const FRAMES = 150;
/** {"op":"pub","id":1,"ch":"a","data": …}: the request map of 4 entries, up to `data`'s value. */
const HEAD = [0x84, 0xa2, 0x6f, 0x70, 0xa3, 0x70, 0x75, 0x62, 0xa2, 0x69, 0x64, 0x01, 0xa2, 0x63, 0x68, 0xa1, 0x61, 0xa4, 0x64, 0x61, 0x74, 0x61];

/** Frames of each kind, FRAME bytes or a little more. */
const ATTACKS: Record<string, () => Buffer> = {
  deep: () => Buffer.concat([Buffer.from(HEAD), Buffer.alloc(FRAME, 0x91), Buffer.from([0xc0])]),
  'lying counts': () => Buffer.concat([Buffer.from([...HEAD, 0xdd, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(FRAME, 0xc0)]),
  'lying lengths': () => Buffer.concat([Buffer.from([...HEAD, 0xdb, 0xff, 0xff, 0xff, 0xf0]), Buffer.alloc(FRAME, 0x61)]),
  'many values': () => Buffer.concat([Buffer.from([...HEAD, 0xdd, 0x00, 0x03, 0xd0, 0x90]), Buffer.alloc(FRAME, 0xc0)]),
  'many keys': () => {
    const keys = 40_000;
    const parts = [Buffer.from([...HEAD, 0xde, keys >> 8, keys & 255])];
    for (let i = 0; i < keys; i++) parts.push(Buffer.from([0xa3, 0x61 + (i % 26), 0x61 + (Math.floor(i / 26) % 26), 0x61 + (Math.floor(i / 676) % 26), 0xc0]));
    return Buffer.concat(parts);
  },
  extension: () => Buffer.concat([Buffer.from([...HEAD, 0xc9, 0x00, 0x03, 0xd0, 0x90, 0x05]), Buffer.alloc(FRAME, 0x00)]),
};

const fixture = attackFixture(() => startTarget([], { nodeArgs: ['--max-old-space-size=256'] }));

interface Outcome {
  errs: number;
  /** The `err` messages seen, once each. */
  messages: Set<string>;
  ids: number;
  close: number;
  ms: number;
}

/** Sends FRAMES copies of `frame` on a hotline.v1.msgpack connection; resolves at the close (or after every answer). */
async function attack(frame: Buffer): Promise<Outcome> {
  const ws = new WebSocket(`${fixture.target.ws}/ws`, ['hotline.v1.msgpack'], { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  assert.equal(ws.protocol, 'hotline.v1.msgpack');
  const outcome: Outcome = { errs: 0, messages: new Set(), ids: 0, close: 0, ms: 0 };
  const started = performance.now();
  const closed = new Promise<void>((resolve) =>
    ws.on('close', (code) => {
      outcome.close = code;
      outcome.ms = performance.now() - started;
      resolve();
    }),
  );
  ws.on('message', (data: Buffer) => {
    const message = decode(data) as { op: string; id?: number; code?: string; message?: string };
    if (message.op === 'err' && message.code === 'bad_request') outcome.errs++;
    if (message.id !== undefined) outcome.ids++;
    if (message.message !== undefined) outcome.messages.add(message.message.replace(/\d+/g, 'N'));
  });
  // Each frame once the one before it was answered: what a frame costs the server shows in
  // its answer time, and two shared cores are not simply saturated.
  for (let i = 0; i < FRAMES && ws.readyState === WebSocket.OPEN; i++) {
    ws.send(frame);
    await Promise.race([new Promise((resolve) => ws.once('message', resolve)), closed]);
  }
  await closed;
  return outcome;
}

test(`${Object.keys(ATTACKS).length} kinds of hostile msgpack, ${FRAMES} frames of ~${FRAME / 1000} kB each: each refused bad_request before decoding, 1008 at the abuse limit, memory flat, the neighbour served`, { timeout: 120_000 }, async () => {
  const peak = new RssSampler(fixture.target.pid);
  const names = Object.keys(ATTACKS);
  // One attacker at a time: the point is what each frame costs, not saturating two shared cores.
  const outcomes: Outcome[] = [];
  for (const name of names) outcomes.push(await attack(ATTACKS[name]!()));
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  const lines = names.map((name, i) => {
    const o = outcomes[i]!;
    return `${name}: ${o.errs} errs in ${o.ms.toFixed(0)} ms, close ${o.close}: ${[...o.messages].join(' | ')}`;
  });
  process.stdout.write(
    `msgpack: baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n  ${lines.join('\n  ')}\n`,
  );
  for (const [i, o] of outcomes.entries()) {
    const name = names[i]!;
    // The abuse limit (100 strikes in 10 s) closes with 1008 after answering each strike.
    assert.equal(o.close, 1008, `${name}: closed as abuse`);
    assert.ok(o.errs >= 100, `${name}: ${o.errs} bad_request answers before the close`);
    assert.equal(o.ids, 0, `${name}: refused before the request was read, so without an id`);
    assert.equal(o.messages.size, 1, `${name}: one reason, ${[...o.messages].join(', ')}`);
  }
  assert.match([...outcomes[0]!.messages][0]!, /deeper than N levels/);
  assert.match([...outcomes[1]!.messages][0]!, /a count is larger than the message/);
  assert.match([...outcomes[2]!.messages][0]!, /ends inside a value/);
  assert.match([...outcomes[3]!.messages][0]!, /more than N values/);
  assert.match([...outcomes[4]!.messages][0]!, /more than N values/);
  assert.match([...outcomes[5]!.messages][0]!, /extension types/);
  assert.ok(fixture.target.alive(), 'the server is still running');
  const growth = rssPeak - fixture.target.baseline;
  // Frames in flight (6 connections, a few of 250 kB each) and their reads; nothing decoded.
  assert.ok(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB (under 64 MiB)`);
  assertServed(report);
});
