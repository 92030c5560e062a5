// Attacks on /sse of a real `hotline serve`, with a neighbour on /ws and /echo beside them:
//  - a reader that never reads while its channel publishes: its stream is closed once the
//    backpressure limit (1 MiB) is waiting, after a contiguous run of events (never thinned),
//    and a reconnect with Last-Event-ID recovers the rest; RSS stays bounded;
//  - a flood of streams from one address: past 100 they are answered 429, and the server stays
//    bounded; closing them frees the count;
//  - huge queries: refused with a status (431 past the head limit, 400 past the channel limit)
//    before anything is subscribed;
//  - streams opened and closed in a loop from one address: past 200 at once and 20 a second
//    they are answered 429, while another address opens its stream.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { assertServed, attackFixture, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';
import { closeClients, range } from './support/delivery.js';
import { attackWithSlowReader } from './support/slow-stream.js';
import { SseReader } from './support/sse-reader.js';
import { waitFor } from './support/wait.js';

/**
 * An attacker that does not ask for an event stream: its refusals are statuses. An
 * EventSource (Accept: text/event-stream) is told a refusal that passes in a stream of one
 * `close` event instead, and is refused all the same: the flood below shows one.
 */
const PLAIN = { accept: '*/*' };

describe('/sse of hotline serve under attack', () => {
  const fixture = attackFixture(() => startTarget(['--history-size', '1000'], { nodeArgs: ['--max-old-space-size=256'] }));

  async function metric(name: string): Promise<number> {
    const { text } = await fixture.target.get('/metrics');
    return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  }

  test('a reader that never reads: closed after a contiguous run, recovers on reconnect; RSS bounded; the neighbour served', { timeout: 90_000 }, async () => {
    const { target, neighbour } = fixture;
    const reader = await SseReader.open(`${target.http}/sse?ch=slow:sse`);
    await reader.until((r) => r.named('subscribed').length === 1, 'subscribed');
    const { published, received: offsets } = await attackWithSlowReader({
      target,
      neighbour,
      reader,
      channel: 'slow:sse',
      closes: () => metric('hotline_sse_slow_consumer_closes_total'),
      offsetsOf: (r) => r.messages().map((m) => m.offset),
      label: 'slow SSE reader',
    });

    // The browser's reconnect: from the last id it read, the rest, exactly.
    const resumed = await SseReader.open(`${target.http}/sse?ch=slow:sse`, { 'last-event-id': reader.lastEventId });
    await resumed.until((r) => r.messages().length === published.length - offsets.length, 'the rest', { ms: 30_000 });
    assert.deepEqual(resumed.named('subscribed').map((s) => [s.recovering, s.recovered]), [[true, true]]);
    assert.deepEqual(
      resumed.messages().map((m) => m.offset),
      range(offsets.length + 1, published.length),
    );
    resumed.close();
    closeClients();
  });

  test('a flood of streams from one address: 100 served, the rest 429; RSS bounded; the neighbour served; closing frees them', { timeout: 60_000 }, async () => {
    const { target, neighbour } = fixture;
    const peak = new RssSampler(target.pid);
    const readers: SseReader[] = [];
    try {
      for (let i = 0; i < 130; i++) readers.push(await SseReader.open(`${target.http}/sse?ch=flood:${i % 7}`, PLAIN));
      // An EventSource past the share is told in a stream of one event instead, and takes no place either.
      const eventSource = await SseReader.open(`${target.http}/sse?ch=flood:0`);
      readers.push(eventSource);
      await waitFor(() => eventSource.ended, 'the one event');
      assert.deepEqual(
        [eventSource.status, eventSource.events.map((e) => [e.event, e.data])],
        [200, [['close', JSON.stringify({ code: 1013, reason: '429 at most 100 streams per client address' })]]],
      );
      const statuses = readers.slice(0, -1).map((r) => r.status);
      const served = statuses.filter((s) => s === 200).length;
      const refused = readers.filter((r) => r.status === 429);
      assert.equal(served, 100, `statuses: ${JSON.stringify(statuses)}`);
      assert.equal(refused.length, 30);
      assert.equal(refused[0]!.response.headers['retry-after'], '5');
      assert.match(await refused[0]!.text(), /at most 100 streams per client address/);
      assert.equal(await metric('hotline_sse_streams'), 100);
    } finally {
      for (const reader of readers) reader.close();
    }
    const rssPeak = peak.stop();
    const report = await neighbour.report();
    process.stdout.write(`SSE flood: RSS baseline ${(target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`);
    assert.ok(rssPeak - target.baseline < 64 * MiB, `RSS grew ${((rssPeak - target.baseline) / MiB).toFixed(1)} MiB`);
    assertServed(report);
    await waitFor(async () => (await metric('hotline_sse_streams')) === 0, 'the streams to close');
    const again = await SseReader.open(`${target.http}/sse?ch=flood:0`);
    assert.equal(again.status, 200, 'the count was freed');
    again.close();
  });

  test('huge queries: 431 past the head limit, 400 past the channel limit; nothing subscribed; the neighbour served', async () => {
    const { target, neighbour } = fixture;
    const peak = new RssSampler(target.pid);
    // 1 MiB of query on a raw socket: the server reads no further than its head limit.
    const huge = (): Promise<string> =>
      new Promise<string>((resolve, reject) => {
        const socket = tcpConnect(target.port, '127.0.0.1', () => {
          socket.write(`GET /sse?ch=${'a'.repeat(MiB)} HTTP/1.1\r\nHost: x\r\n\r\n`);
        });
        let text = '';
        socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        socket.on('close', () => resolve(text));
        socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? resolve(text) : reject(error)));
      });
    const many = Array.from({ length: 60 }, (_, i) => `ch=${'c'.repeat(150)}${i}`).join('&');
    // Rounds of both, long enough for the neighbour's round trips to show it was served meanwhile.
    for (let round = 0; round < 30; round++) {
      const answers = await Promise.all(Array.from({ length: 4 }, huge));
      for (const answer of answers) assert.match(answer.split('\r\n')[0] ?? '(nothing)', /^HTTP\/1\.1 431/, answer.slice(0, 200));
      const refused = await SseReader.open(`${target.http}/sse?${many}`);
      assert.equal(refused.status, 400);
      assert.match(await refused.text(), /at most 32 channels per stream \(60 named\)/);
    }
    assert.equal(await metric('hotline_sse_streams'), 0);
    const report = await neighbour.report();
    const rssPeak = peak.stop();
    assert.ok(target.alive());
    assert.ok(rssPeak - target.baseline < 64 * MiB);
    assertServed(report);
  });
  test('streams opened and closed in a loop from one address: at most 200 and 20 a second, the rest 429; another address served', { timeout: 60_000 }, async () => {
    const { target, neighbour } = fixture;
    // Earlier tests of the file left history behind: growth is counted from here.
    const rssBefore = target.rss();
    const peak = new RssSampler(target.pid);
    const RATE = 20;
    const BURST = 200;
    const url = `${target.http}/sse?ch=churn:1`;
    let accepted = 0;
    let attempts = 0;
    const refusals: string[] = [];
    let refusedForRate!: () => void;
    const rateRefused = new Promise<void>((resolve) => (refusedForRate = resolve));
    const start = performance.now();
    // Bounded in count and time: at most 2,000 attempts or 3 s, 8 at a time.
    const churn = async (): Promise<void> => {
      while (attempts < 2_000 && performance.now() - start < 3_000) {
        attempts++;
        const reader = await SseReader.open(url, PLAIN, '127.0.0.2');
        if (reader.status === 200) accepted++;
        else {
          const body = await reader.text();
          refusals.push(`${reader.status} ${reader.response.headers['retry-after']} ${body}`);
          if (/too fast/.test(body)) refusedForRate();
        }
        reader.close();
      }
    };
    const loop = Promise.all(Array.from({ length: 8 }, churn)).finally(refusedForRate);
    // Another address, once the churning one is being refused for its rate.
    const other = await rateRefused.then(() => SseReader.open(`${target.http}/sse?ch=churn:2`, {}, '127.0.0.3'));
    await loop;
    const elapsedMs = performance.now() - start;
    other.close();
    const report = await neighbour.report();
    const rssPeak = peak.stop();
    const forRate = refusals.filter((r) => r.includes('too fast'));
    process.stdout.write(
      `SSE churn: ${accepted} streams opened, ${forRate.length} refused for the rate, ${refusals.length - forRate.length} for the count, in ${elapsedMs.toFixed(0)} ms; ` +
        `another address ${other.status}; RSS +${((rssPeak - rssBefore) / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
    );
    assert.ok(target.alive());
    assert.equal(other.status, 200, 'another address opens its stream');
    assert.ok(forRate.length > 0, 'the loop met the rate');
    // The bucket may have been drawn on by the tests before: never more than the burst and the rate.
    assert.ok(accepted <= BURST + Math.ceil((RATE * elapsedMs) / 1000), `${accepted} opened in ${elapsedMs.toFixed(0)} ms`);
    for (const refusal of refusals) assert.match(refusal, /^429 (1 opening streams too fast from this address|5 at most 100 streams per client address)\n?$/);
    assert.ok(rssPeak - rssBefore < 32 * MiB, `RSS grew ${((rssPeak - rssBefore) / MiB).toFixed(1)} MiB`);
    assertServed(report);
  });
});
