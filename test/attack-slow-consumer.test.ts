// Slow consumers on /ws: a subscriber that stops reading while others publish is closed
// with 1013 (try again later) once its connection holds the backpressure limit (1 MiB),
// after a contiguous run of messages: never a hole. The SDK reconnects and recovers the
// rest. Before the fix, the `drop` policy discarded what passed the limit and the
// subscriber saw the offsets jump once it read again.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { WebSocket as WsWebSocket } from 'ws';
import { assertServed, attackFixture, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';
import { closeClients, KiB, publishBig, range, recordChannel, sdk, tcpOf, webSocketWith, type Big } from './support/delivery.js';
import { waitFor } from './support/wait.js';
import { CutProxy } from './support/sdk-proxy.js';

/** At most this many 60 KiB messages per attack: well past what the kernel's socket buffers and 1 MiB hold. */
const MAX_MESSAGES = 400;

/**
 * Publishes 60 KiB messages in rounds of 10, from `publishers` connections in turn (each
 * has its own rate limit), until `done()` says so after a round, or MAX_MESSAGES.
 */
async function publishUntil(url: string, channel: string, done: () => Promise<boolean>, publishers = 4): Promise<number[]> {
  const channels = Array.from({ length: publishers }, () => sdk(url).channel<Big>(channel));
  const offsets: number[] = [];
  for (let round = 0; offsets.length < MAX_MESSAGES; round++) {
    offsets.push(...(await publishBig(channels[round % publishers]!, 10, 60 * KiB, offsets.length)));
    if (await done()) break;
  }
  return offsets;
}

describe('against hotline serve', () => {
  const fixture = attackFixture(() => startTarget([], { nodeArgs: ['--max-old-space-size=256'] }));
  after(() => closeClients());

  async function slowCloses(): Promise<number> {
    const { text } = await fixture.target.get('/metrics');
    return Number(/^hotline_slow_consumer_closes_total\{endpoint="\/ws"\} (\d+)/m.exec(text)?.[1] ?? 0);
  }

  test('a subscriber that stops reading: closed with 1013 after a contiguous run, the server bounded, the neighbour served', { timeout: 90_000 }, async () => {
    const closesBefore = await slowCloses();
    const peak = new RssSampler(fixture.target.pid);
    const reader = new WsWebSocket(`${fixture.target.ws}/ws`, 'hotline.v1', { perMessageDeflate: false });
    await once(reader, 'open');
    const got: Array<{ op: string; offset?: number }> = [];
    reader.on('message', (data: Buffer) => got.push(JSON.parse(data.toString()) as { op: string; offset?: number }));
    let code: number | null = null;
    reader.on('close', (closeCode: number) => (code = closeCode));
    reader.send(JSON.stringify({ op: 'sub', id: 1, ch: 'slow:feed' }));
    // The answer (its own presence join follows it).
    await waitFor(() => got.some((m) => m.op === 'ok'), 'the sub answer');
    const { offset: from } = got.find((m) => m.op === 'ok') as { offset: number };
    const socket = tcpOf(reader);
    socket.pause();

    let closed = false;
    const published = await publishUntil(fixture.target.ws + '/ws', 'slow:feed', async () => (closed = (await slowCloses()) > closesBefore));
    const rssPeak = peak.stop();
    const report = await fixture.neighbour.report();
    socket.resume();
    await waitFor(() => code !== null, 'the close', { ms: 30_000, state: () => `${got.length} received` });
    const offsets = got.filter((m) => m.op === 'msg').map((m) => m.offset!);
    process.stdout.write(
      `slow consumer: ${published.length} published, ${offsets.length} received (${offsets[0]}–${offsets.at(-1)}), close ${code}; ` +
        `RSS baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
    );
    assert.ok(closed, `closed as a slow consumer within ${MAX_MESSAGES} messages`);
    assert.deepEqual(offsets, range(from + 1, from + offsets.length), 'a contiguous run: no hole');
    assert.ok(offsets.length < published.length, 'it stopped getting messages');
    // 1013 when it read its buffer within closeTimeout (5 s); after that the server drops TCP.
    assert.ok(code === 1013 || code === 1006, `closed with ${code}`);
    assert.ok(fixture.target.alive());
    assert.ok(rssPeak - fixture.target.baseline < 96 * MiB, `RSS grew ${((rssPeak - fixture.target.baseline) / MiB).toFixed(1)} MiB`);
    assertServed(report);
  });
});

describe('the SDK', () => {
  const SERVER_SCRIPT = fileURLToPath(new URL('./support/sdk-server.ts', import.meta.url));
  let child: ChildProcess;
  let port: number;
  const proxies: CutProxy[] = [];

  before(async () => {
    // History of 10,000 and no TTL: everything the slow subscriber misses can be recovered.
    child = spawn(process.execPath, ['--import', 'tsx', SERVER_SCRIPT, '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await waitFor(() => /sdk-server ready port=\d+/.test(output), 'the server', { ms: 30_000, state: () => output });
    port = Number(/sdk-server ready port=(\d+)/.exec(output)![1]);
  });

  afterEach(async () => {
    closeClients();
    for (const proxy of proxies.splice(0)) await proxy.close();
  });

  after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  test('an SDK subscriber that falls behind is closed, reconnects and recovers: every offset once, in order', { timeout: 90_000 }, async () => {
    const proxy = await CutProxy.start(port);
    proxies.push(proxy);
    const subscriber = sdk(`ws://127.0.0.1:${proxy.port}/ws`, { WebSocket: webSocketWith({ perMessageDeflate: false }) });
    const closes: Array<{ code: number; willRetry: boolean }> = [];
    subscriber.on('close', (event) => closes.push({ code: event.code, willRetry: event.willRetry }));
    const channel = subscriber.channel<Big>('slow:sdk');
    const seen = recordChannel(channel);
    const first = await channel.subscribe();

    // The subscriber stops reading (TCP backpressure all the way to the server).
    proxy.hold();
    const url = `ws://127.0.0.1:${port}/ws`;
    const published = await publishBig(sdk(url).channel<Big>('slow:sdk'), 300, 60 * KiB);
    proxy.release();
    await waitFor(() => seen.offsets.at(-1) === published.at(-1), 'every message', { ms: 60_000, state: () => `${seen.offsets.length} seen, closes ${JSON.stringify(closes)}` });
    process.stdout.write(`slow SDK subscriber: ${seen.offsets.length} of ${published.length} seen, closes ${JSON.stringify(closes)}, subscribed ${JSON.stringify(seen.subscribed.map((e) => e.recovered))}\n`);
    assert.deepEqual(seen.offsets, range(first.offset + 1, first.offset + 300), 'every offset once, in order');
    assert.deepEqual(seen.seqs, range(0, 299));
    assert.ok(closes.length >= 1 && closes.every((c) => (c.code === 1013 || c.code === 1006) && c.willRetry), JSON.stringify(closes));
    assert.ok(seen.subscribed.length >= 2 && seen.subscribed.slice(1).every((e) => e.recovered), 'every resubscription recovered');
  });
});
