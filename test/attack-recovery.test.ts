// Recovery of big messages against a real `hotline serve` process (default limits): what a
// subscriber missed is replayed paced by its connection's backpressure, so a replay larger
// than the slow-consumer limit (1 MiB) arrives whole instead of being cut by the limit.
//
// Before the fix, 40 × 60 KiB published while an SDK client was cut off came back as
// offsets 2–24 after recovered:true, and nothing more (not even a live message after):
// the replay was queued in one tick past 1 MiB, the `drop` policy discarded the rest, and
// the SDK did not notice the gap. A stalled resubscription got 29 of 110.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocket as WsWebSocket } from 'ws';
import { assertServed, attackFixture, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';
import { closeClients, KiB, publishBig, range, recordChannel, sdk, tcpOf, type Big } from './support/delivery.js';
import { waitFor } from './support/wait.js';
import { CutProxy } from './support/sdk-proxy.js';

const fixture = attackFixture(() => startTarget([], { nodeArgs: ['--max-old-space-size=256'] }));
const proxies: CutProxy[] = [];

afterEach(async () => {
  closeClients();
  for (const proxy of proxies.splice(0)) await proxy.close();
});

test('40 × 60 KiB published while an SDK client was cut off: after recovered:true it sees every offset once, in order', { timeout: 60_000 }, async () => {
  const proxy = await CutProxy.start(fixture.target.port);
  proxies.push(proxy);
  const subscriber = sdk(`ws://127.0.0.1:${proxy.port}/ws`);
  const channel = subscriber.channel<Big>('recovery:big');
  const seen = recordChannel(channel);
  await channel.subscribe();
  // One message first: a channel with no history and no subscribers is forgotten (and
  // would come back in a new epoch, not recoverable).
  const publisher = sdk(fixture.target.ws + '/ws');
  const first = await publisher.channel<Big>('recovery:big').publish({ seq: -1, pad: '' });
  await waitFor(() => seen.offsets.length === 1, 'the first message');
  seen.offsets.length = 0;
  seen.seqs.length = 0;

  proxy.mode = 'reset';
  proxy.cut();
  await waitFor(() => subscriber.state === 'reconnecting', 'the subscriber to notice the cut');
  const offsets = await publishBig(publisher.channel<Big>('recovery:big'), 40, 60 * KiB);
  assert.deepEqual(offsets, range(first.offset + 1, first.offset + 40));
  proxy.mode = 'forward';

  await waitFor(() => seen.subscribed.length >= 2 && (seen.offsets.length >= 40 || !seen.subscribed[1]!.recovered), 'the resubscription and its replay');
  // One more live message: nothing may be missing between the replay and what follows.
  const [live] = await publishBig(publisher.channel<Big>('recovery:big'), 1, 60 * KiB, 40);
  const report = (): string =>
    `offsets seen ${seen.offsets[0]}–${seen.offsets.at(-1)} (${seen.offsets.length}: ${JSON.stringify(seen.offsets)}), subscribed ${JSON.stringify(seen.subscribed.map((e) => e.recovered))}`;
  await waitFor(() => seen.offsets.at(-1) === live, 'the live message after the replay', { ms: 20_000, state: report });
  process.stdout.write(
    `recovery: offsets seen ${seen.offsets[0]}–${seen.offsets.at(-1)} (${seen.offsets.length}), subscribed ${JSON.stringify(seen.subscribed.map((e) => e.recovered))}\n`,
  );
  assert.deepEqual(
    seen.subscribed.map((e) => e.recovered),
    [false, true],
  );
  assert.deepEqual(seen.offsets, range(first.offset + 1, first.offset + 41), 'every offset once, in order');
  assert.deepEqual(seen.seqs, range(0, 40));
});

test('a resubscription that does not read its replay: the server holds about one backpressure limit, then delivers it all', { timeout: 60_000 }, async () => {
  const channel = 'recovery:stalled';
  const publisher = sdk(fixture.target.ws + '/ws');
  const head = await publisher.channel<Big>(channel).publish({ seq: -1, pad: '' });
  // 100 × 60 KiB kept in history (the memory engine's default keeps 100).
  await publishBig(publisher.channel<Big>(channel), 100, 60 * KiB);

  const peak = new RssSampler(fixture.target.pid);
  // A raw client that asks for all 100 and does not read: its socket's receive buffer fills,
  // then the server's. Each replayed message waits for the connection to drain.
  const stalled = new WsWebSocket(`${fixture.target.ws}/ws`, 'hotline.v1', { perMessageDeflate: false });
  await once(stalled, 'open');
  const received: Array<{ op: string; offset?: number }> = [];
  stalled.on('message', (data: Buffer) => received.push(JSON.parse(data.toString()) as { op: string; offset?: number }));
  // A first subscription, to learn the channel's epoch.
  stalled.send(JSON.stringify({ op: 'sub', id: 1, ch: channel }));
  await waitFor(() => received.length >= 1, 'the first answer');
  const { epoch } = received[0] as unknown as { epoch: string };
  stalled.send(JSON.stringify({ op: 'unsub', id: 2, ch: channel }));
  // Its answer, not the subscriber's own presence join that came before it.
  await waitFor(() => received.some((m) => (m as { id?: number }).id === 2), 'the unsub');
  received.length = 0;
  tcpOf(stalled).pause();
  stalled.send(JSON.stringify({ op: 'sub', id: 3, ch: channel, since: { epoch, offset: head.offset } }));
  // Others keep publishing meanwhile: live messages kept for the stalled one until its
  // replay is through (10 × 60 KiB, under the 1 MiB a subscription may keep).
  await publishBig(publisher.channel<Big>(channel), 10, 60 * KiB, 100);
  const rssStalled = peak.peak;
  const report = await fixture.neighbour.report();
  tcpOf(stalled).resume();
  const closed = new Promise<number>((resolve) => stalled.once('close', (code: number) => resolve(code)));
  let closeCode: number | null = null;
  void closed.then((code) => (closeCode = code));
  await waitFor(() => received.filter((m) => m.op === 'msg').length >= 110 || closeCode !== null, 'the replay and the live messages', { ms: 30_000, state: () => `${received.length} received` });
  const rssPeak = peak.stop();
  stalled.close();
  const msgs = received.filter((m) => m.op === 'msg').map((m) => m.offset);
  process.stdout.write(
    `stalled replay: ${msgs.length} msgs, RSS baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB (while stalled ${(rssStalled / MiB).toFixed(1)}); neighbour ${describeReport(report)}\n`,
  );
  assert.equal((received[0] as unknown as { recovered: boolean }).recovered, true);
  assert.equal(closeCode, null, 'not closed');
  assert.deepEqual(msgs, range(head.offset + 1, head.offset + 110), 'the replay and the live messages after it, in order, none twice');
  assert.ok(fixture.target.alive());
  assert.ok(rssPeak - fixture.target.baseline < 96 * MiB, `RSS grew ${((rssPeak - fixture.target.baseline) / MiB).toFixed(1)} MiB`);
  assertServed(report);
});
