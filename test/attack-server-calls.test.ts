// Attack: clients that misbehave around the server's calls (`channels.call`, the server API).
// The server calls them; they never reply, reply to calls never made (or twice), or reply
// with more than the largest message. Against a node in its own process
// (test/support/server-api-node.ts: the CLI has no app to call clients), each bound holds:
// at most maxPendingCalls (64) calls wait per connection, each until its timeout, the rest
// fail too_many_pending without being sent; bogus replies are bad_request strikes that end
// in 1008; an oversized reply is 1009 and its call client_gone. The process stays alive,
// its RSS bounded, and a neighbour on /echo and /ws is served throughout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { assertServed, describeReport, MiB, Neighbour, RssSampler } from './support/attack.js';
import { ServerApiNode } from './support/server-api-node.js';

const ATTACKERS = 20;
const CALLS = 300;

let node: ServerApiNode;
let neighbour: Neighbour;

before(async () => {
  node = await ServerApiNode.start({ hub: { abuseLimit: 100 } });
  neighbour = await Neighbour.start(node.origin);
});

after(async () => {
  await neighbour?.stop();
  await node?.stop();
});

interface Attacker {
  ws: WebSocket;
  id: string;
  /** Calls received (they are read, never answered). */
  calls: number;
  closed: Promise<number>;
}

/** A hotline.v1 connection that reads everything and learns its client id. */
async function attacker(): Promise<Attacker> {
  const ws = new WebSocket(node.ws(), 'hotline.v1', { perMessageDeflate: false, maxPayload: 0 });
  const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
  ws.on('error', () => {});
  await once(ws, 'open');
  const self: Attacker = { ws, id: '', calls: 0, closed };
  const id = new Promise<string>((resolve) => {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { op: string; id?: number; result?: string };
      if (message.op === 'call') self.calls++;
      else if (message.op === 'ok' && message.id === 0) resolve(message.result!);
    });
  });
  ws.send(JSON.stringify({ op: 'rpc', id: 0, method: 'whoami' }));
  self.id = await id;
  return self;
}

test(`${ATTACKERS} clients that never reply to ${CALLS} calls each: 64 wait per connection until their timeout, the rest fail at once`, { timeout: 120_000 }, async () => {
  const attackers = await Promise.all(Array.from({ length: ATTACKERS }, attacker));
  const baseline = (await node.stats()).rss;
  const peak = new RssSampler(node.pid);
  const outcomes = await Promise.all(
    attackers.map((a) => node.post('call-many', { client: a.id, method: 'confirm', count: CALLS, timeout: 1_500 }) as Promise<{ result: Record<string, number> }>),
  );
  const rssPeak = peak.stop();
  const report = await neighbour.report();
  for (const [i, { result }] of outcomes.entries()) {
    assert.deepEqual(result, { timeout: 64, too_many_pending: CALLS - 64 }, `attacker ${i}`);
    assert.equal(attackers[i]!.calls, 64, `attacker ${i} was sent only the calls that could wait`);
  }
  // The places are free again after the timeouts: a new call is sent.
  const again = node.api('call', attackers[0]!.id, 'confirm', null, { timeout: 200 });
  assert.equal((await again).error?.code, 'timeout');
  assert.equal(attackers[0]!.calls, 65);
  for (const a of attackers) a.ws.terminate();
  assert.ok(node.running, 'the server is still running');
  const growth = rssPeak - baseline;
  process.stdout.write(`never-reply: ${ATTACKERS}×${CALLS} calls; RSS ${(baseline / MiB).toFixed(1)} → peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`);
  assert.ok(growth < 48 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB (under 48 MiB)`);
  assertServed(report);
});

test('replies to calls never made, as fast as the socket takes them: bad_request each, then 1008; the neighbour served', { timeout: 60_000 }, async () => {
  const attackers = await Promise.all(Array.from({ length: 5 }, attacker));
  const peak = new RssSampler(node.pid);
  const baseline = (await node.stats()).rss;
  for (const a of attackers) {
    for (let n = 0; n < 5_000 && a.ws.readyState === WebSocket.OPEN; n++) a.ws.send(JSON.stringify({ op: 'reply', id: n + 1, call: 1_000_000 + n, result: null }));
  }
  const codes = await Promise.all(attackers.map((a) => a.closed));
  const rssPeak = peak.stop();
  const report = await neighbour.report();
  assert.deepEqual(codes, attackers.map(() => 1008), 'each closed for abuse');
  assert.ok(node.running);
  process.stdout.write(`bogus replies: 5×5000; RSS ${(baseline / MiB).toFixed(1)} → peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`);
  assert.ok(rssPeak - baseline < 32 * MiB, `RSS grew ${((rssPeak - baseline) / MiB).toFixed(1)} MiB (under 32 MiB)`);
  assertServed(report);
});

test('replies of 1 MiB (4× the largest message) to real calls, 3 rounds of 10: each refused with 1009 from the frame header, its call client_gone', { timeout: 60_000 }, async () => {
  const baseline = (await node.stats()).rss;
  const peak = new RssSampler(node.pid);
  const big = JSON.stringify({ op: 'reply', id: 1, call: 1, result: 'x'.repeat(MiB) });
  for (let round = 0; round < 3; round++) {
    const attackers = await Promise.all(Array.from({ length: 10 }, attacker));
    const calls = attackers.map((a) => node.api('call', a.id, 'confirm'));
    await Promise.all(
      attackers.map(async (a) => {
        while (a.calls === 0) await new Promise((resolve) => setImmediate(resolve));
        a.ws.send(big);
      }),
    );
    const codes = await Promise.all(attackers.map((a) => a.closed));
    const outcomes = await Promise.all(calls);
    assert.deepEqual(codes, attackers.map(() => 1009), `round ${round}`);
    assert.deepEqual(outcomes.map((o) => o.error?.code), attackers.map(() => 'client_gone'), `round ${round}`);
  }
  const rssPeak = peak.stop();
  const report = await neighbour.report();
  assert.ok(node.running);
  process.stdout.write(`oversized replies: 30×1 MiB; RSS ${(baseline / MiB).toFixed(1)} → peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`);
  // The refused bytes are still read (and dropped) until the peer's close frame: transient buffers, as for any oversized message.
  assert.ok(rssPeak - baseline < 48 * MiB, `RSS grew ${((rssPeak - baseline) / MiB).toFixed(1)} MiB (under 48 MiB)`);
  assertServed(report);
});
