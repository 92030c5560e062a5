// GET /sse of a real `hotline serve`: the channels as Server-Sent Events, read as EventSource
// reads them (and by curl -N), published to by the SDK over /ws. Each event's id resumes
// every channel of the stream through the hub's recovery: exactly the missed messages, or a
// `subscribed` event that says recovery failed. Bad requests are answered before a stream starts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startCli, type CliServer } from './support/cli-server.js';
import { closeClients, range, sdk } from './support/delivery.js';
import { SseReader } from './support/sse-reader.js';
import { waitFor } from './support/wait.js';

const CURL = '/usr/bin/curl';

describe('GET /sse on hotline serve', () => {
  let server: CliServer;
  before(async () => {
    server = await startCli(0, ['--history-size', '5']);
  });
  after(async () => {
    closeClients();
    await server?.stop();
  });

  const sse = (query: string, headers: Record<string, string> = {}): Promise<SseReader> => SseReader.open(`${server.http}/sse?${query}`, headers);
  const publisher = () => sdk(`${server.ws}/ws`);

  test('a stream: headers for proxies, a retry hint, a subscribed event per channel, then each publish with an id', async () => {
    const reader = await sse('ch=t1:a&ch=t1:b');
    assert.equal(reader.status, 200);
    assert.equal(reader.response.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(reader.response.headers['x-accel-buffering'], 'no');
    assert.equal(reader.response.headers['cache-control'], 'no-cache, no-transform');
    assert.equal(reader.response.headers['content-encoding'], undefined);
    await reader.until((r) => r.named('subscribed').length === 2, 'two subscribed events');
    assert.ok(reader.retry !== null && reader.retry >= 2000 && reader.retry <= 3000, `retry ${reader.retry}`);
    const subscribed = reader.named('subscribed');
    assert.deepEqual(
      subscribed.map((s) => [s.ch, s.offset, s.recovering, s.recovered]),
      [
        ['t1:a', 0, false, false],
        ['t1:b', 0, false, false],
      ],
    );

    const client = publisher();
    const a = client.channel('t1:a');
    const b = client.channel('t1:b');
    await a.publish({ n: 1 });
    await b.publish({ n: 2, text: 'two\nlines' });
    await a.publish({ n: 3 });
    await reader.until((r) => r.messages().length === 3, 'three messages');
    assert.deepEqual(
      reader.messages().map((m) => [m.ch, m.offset, m.data]),
      [
        ['t1:a', 1, { n: 1 }],
        ['t1:b', 1, { n: 2, text: 'two\nlines' }],
        ['t1:a', 2, { n: 3 }],
      ],
    );
    // Each id holds both channels' positions, after its event.
    const ids = reader.events.filter((e) => e.event === 'message').map((e) => e.id.split(',').slice(1).map((p) => p.split(':')[1]));
    assert.deepEqual(ids, [
      ['1', '0'],
      ['1', '1'],
      ['2', '1'],
    ]);
    reader.close();
  });

  test('resuming from an id (Last-Event-ID, or since= for curl): exactly the messages missed, in order, once, then live ones', async () => {
    const client = publisher();
    const a = client.channel('t2:a');
    const b = client.channel('t2:b');
    const first = await sse('ch=t2:a&ch=t2:b');
    // Both channels hold a message: the memory engine forgets a channel with no history once
    // its last subscriber leaves, and one it forgot comes back with a new epoch (not recovered).
    await a.publish('a1');
    await b.publish('b0');
    await first.until((r) => r.messages().length === 2, 'the first messages');
    const resumeFrom = first.lastEventId;
    first.close();
    await b.publish('b1');
    await a.publish('a2');
    await b.publish('b2');

    for (const [how, open] of [
      ['Last-Event-ID', () => sse('ch=t2:a&ch=t2:b', { 'last-event-id': resumeFrom })],
      ['since', () => sse(`ch=t2:a&ch=t2:b&since=${encodeURIComponent(resumeFrom)}`)],
    ] as const) {
      const resumed = await open();
      await resumed.until((r) => r.messages().length === 3, `the three missed (${how})`);
      assert.deepEqual(
        resumed.named('subscribed').map((s) => [s.ch, s.recovering, s.recovered]),
        [
          ['t2:a', true, true],
          ['t2:b', true, true],
        ],
        how,
      );
      const missed = resumed.messages().map((m) => `${m.ch}@${m.offset}=${String(m.data)}`);
      assert.deepEqual(missed.sort(), ['t2:a@2=a2', 't2:b@2=b1', 't2:b@3=b2'], how);
      resumed.close();
    }
    // Live after a replay, no repeat: a third stream resumes from the end of the second.
    const third = await sse('ch=t2:a&ch=t2:b', { 'last-event-id': resumeFrom });
    await third.until((r) => r.messages().length === 3, 'the replay');
    await a.publish('a3');
    await third.until((r) => r.messages().length === 4, 'the live message');
    const offsetsOfA = third.messages().filter((m) => m.ch === 't2:a').map((m) => m.offset);
    assert.deepEqual(offsetsOfA, [2, 3]);
    third.close();
  });

  test('history trimmed past the position: subscribed says recovering and not recovered, and nothing is replayed', async () => {
    const channel = publisher().channel('t3:a');
    const first = await sse('ch=t3:a');
    await channel.publish(0);
    await first.until((r) => r.messages().length === 1, 'one message');
    const from = first.lastEventId;
    first.close();
    // --history-size 5: seven more push the position out of history.
    for (let i = 1; i <= 7; i++) await channel.publish(i);
    const resumed = await sse('ch=t3:a', { 'last-event-id': from });
    await resumed.until((r) => r.named('subscribed').length === 1, 'the subscribed event');
    const [subscribed] = resumed.named('subscribed');
    assert.equal(subscribed!.recovering, true);
    assert.equal(subscribed!.recovered, false);
    assert.equal(subscribed!.offset, 8);
    await channel.publish(8);
    await resumed.until((r) => r.messages().length === 1, 'the live message');
    assert.deepEqual(
      resumed.messages().map((m) => m.offset),
      [9],
      'no replay, live from the answer on',
    );
    // An id written for another channel list says nothing of these: recovering, not recovered.
    const other = await sse('ch=t3:a&ch=t3:b', { 'last-event-id': from });
    await other.until((r) => r.named('subscribed').length === 2, 'the subscribed events');
    assert.deepEqual(
      other.named('subscribed').map((s) => [s.recovering, s.recovered]),
      [
        [true, false],
        [true, false],
      ],
    );
    resumed.close();
    other.close();
  });

  test('curl -N reads /sse and sees each publish of an SDK client', { skip: existsSync(CURL) ? false : `${CURL} is missing` }, async () => {
    if (!existsSync(CURL)) process.stderr.write(`\n!!! SKIPPED: ${CURL} is missing: the curl test did not run\n\n`);
    const curl = spawn(CURL, ['-sN', `${server.http}/sse?ch=t4:curl`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    curl.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    try {
      await waitFor(() => out.includes('event: subscribed'), 'curl to print the subscribed event', { state: () => out });
      const channel = publisher().channel('t4:curl');
      for (let i = 1; i <= 3; i++) {
        await channel.publish({ i });
        await waitFor(() => out.includes(`"offset":${i},"data":{"i":${i}}`), `curl to print publish ${i}`, { state: () => out });
      }
      const lines = out.split('\n').filter((l) => l.startsWith('data: {"op":"msg"'));
      assert.deepEqual(
        lines.map((l) => (JSON.parse(l.slice(6)) as { offset: number }).offset),
        range(1, 3),
      );
    } finally {
      curl.kill();
    }
  });

  test('bad requests are answered with a status and a reason before any stream', async () => {
    const cases: Array<[string, number, RegExp, Record<string, string>?]> = [
      ['', 400, /name at least one channel/],
      ['ch=a%20b', 400, /not allowed/],
      ['ch=x&ch=x', 400, /named twice/],
      [Array.from({ length: 33 }, (_, i) => `ch=c${i}`).join('&'), 400, /at most 32 channels/],
      ['ch=x&since=garbage!', 400, /not a stream position/],
      ['ch=x&since=' + encodeURIComponent('1k,zz'), 400, /not epoch:offset/],
      ['ch=x', 400, /not epoch:offset/, { 'last-event-id': '1k,e:-1' }],
    ];
    for (const [query, status, message, headers] of cases) {
      const reader = await sse(query, headers);
      const text = await reader.text();
      assert.equal(reader.status, status, `${query}: ${text}`);
      assert.match(text, message, query);
    }
    const post = await fetch(`${server.http}/sse?ch=x`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
  });
});
