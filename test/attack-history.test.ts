// History answers against a real `hotline serve` process (default limits): an answer is
// never dropped, is bounded in bytes (512 KiB, paged with `more` and `before`), and so
// never passes what a client accepts; a 1009 does not make the SDK loop.
//
// Before the fix: five `history` requests at once on a channel of 100 × 60 KiB got one
// answer (the other four were dropped by the slow-consumer policy); the SDK reading 20 ×
// 60 KiB over hotline's Node client (maxPayload 1 MiB) was closed with 1009 and asked
// again on every reconnect (a loop: 55 reconnects in 30 s).
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocket as WsWebSocket } from 'ws';
import { HotlineError } from '../src/client/index.js';
import { assertServed, attackFixture, describeReport, MiB, RssSampler, startTarget } from './support/attack.js';
import { closeClients, KiB, publishBig, range, sdk, webSocketWith, type Big } from './support/delivery.js';
import { waitFor } from './support/wait.js';

const MAX_ANSWER = 512 * KiB;

/** 100 × 60 KiB: the memory engine's whole history of one channel. */
const BIG = 'history:big';
let bigOffsets: number[];

const fixture = attackFixture(
  () => startTarget([], { nodeArgs: ['--max-old-space-size=256'] }),
  async (target) => {
    const publisher = sdk(target.ws + '/ws');
    bigOffsets = await publishBig(publisher.channel<Big>(BIG), 100, 60 * KiB);
    closeClients();
  },
);

afterEach(() => closeClients());

interface Answer {
  op: string;
  id?: number;
  epoch?: string;
  messages?: Array<{ offset: number }>;
  more?: boolean;
  code?: string;
}

test('five history requests at once on 100 × 60 KiB: every one answered, each page under 512 KiB, following pages reads all 100', { timeout: 60_000 }, async () => {
  const peak = new RssSampler(fixture.target.pid);
  const ws = new WsWebSocket(`${fixture.target.ws}/ws`, 'hotline.v1', { perMessageDeflate: false, maxPayload: 64 * MiB });
  await once(ws, 'open');
  const answers = new Map<number, { answer: Answer; bytes: number }>();
  ws.on('message', (data: Buffer) => {
    const answer = JSON.parse(data.toString()) as Answer;
    if (answer.id !== undefined) answers.set(answer.id, { answer, bytes: data.length });
  });
  for (let id = 1; id <= 5; id++) ws.send(JSON.stringify({ op: 'history', id, ch: BIG, limit: 100 }));
  await waitFor(() => answers.size === 5, 'five answers', { ms: 20_000, state: () => `${answers.size} answered` });
  process.stdout.write(`history: ${answers.size} of 5 answered, pages of ${[...answers.values()].map((a) => `${a.answer.messages?.length} messages / ${(a.bytes / KiB).toFixed(0)} KiB`).join(', ')}\n`);
  for (const { answer, bytes } of answers.values()) {
    assert.equal(answer.op, 'ok');
    assert.ok(bytes <= MAX_ANSWER, `an answer of ${bytes} bytes`);
    assert.equal(answer.more, true, 'older messages are kept');
    assert.deepEqual(
      answer.messages!.map((m) => m.offset),
      bigOffsets.slice(-answer.messages!.length),
      'the newest that fit, oldest first',
    );
  }

  // Following the pages with `before` reads the whole history, each offset once.
  const read: number[] = [];
  let cursor: number | undefined;
  for (let id = 100; ; id++) {
    ws.send(JSON.stringify({ op: 'history', id, ch: BIG, limit: 100 - read.length, ...(cursor === undefined ? {} : { before: cursor }) }));
    await waitFor(() => answers.has(id), `page ${id}`);
    const { answer, bytes } = answers.get(id)!;
    assert.ok(bytes <= MAX_ANSWER);
    read.unshift(...answer.messages!.map((m) => m.offset));
    if (answer.more !== true || read.length >= 100) break;
    cursor = answer.messages![0]!.offset;
  }
  assert.deepEqual(read, bigOffsets);
  ws.close();
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  process.stdout.write(`history: RSS baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`);
  assert.ok(fixture.target.alive());
  assert.ok(rssPeak - fixture.target.baseline < 64 * MiB, `RSS grew ${((rssPeak - fixture.target.baseline) / MiB).toFixed(1)} MiB`);
  assertServed(report);
});

test('the SDK over hotline’s Node client (maxPayload 1 MiB) reads 20 × 60 KiB of history: no 1009, one connection', { timeout: 60_000 }, async () => {
  let connections = 0;
  const client = sdk(fixture.target.ws + '/ws', { WebSocket: webSocketWith({ maxPayload: 1024 * 1024 }, () => connections++) });
  const closes: number[] = [];
  client.on('close', (event) => closes.push(event.code));
  const result = await client.channel<Big>(BIG).history({ limit: 20 });
  assert.deepEqual(
    result.messages.map((m) => m.offset),
    bigOffsets.slice(-20),
  );
  assert.deepEqual(
    result.messages.map((m) => m.data.seq),
    range(80, 99),
  );
  assert.equal(result.more, true);
  const all = await client.channel<Big>(BIG).history({ limit: 1000 });
  assert.deepEqual(
    all.messages.map((m) => m.offset),
    bigOffsets,
  );
  assert.equal(all.more, false);
  process.stdout.write(`sdk history: 20 and ${all.messages.length} messages read over ${connections} connection(s), closes ${JSON.stringify(closes)}\n`);
  assert.equal(connections, 1);
  assert.deepEqual(closes, []);
});

test('an answer larger than the client accepts fails its connection: asked 3 times, then the request fails and the client carries on', { timeout: 60_000 }, async () => {
  let connections = 0;
  // A client that accepts less than one history page (but more than one message). Its
  // WebSocket fails the connection on the big answer: the SDK sees 1006, not 1009.
  const client = sdk(fixture.target.ws + '/ws', { WebSocket: webSocketWith({ maxPayload: 128 * KiB }, () => connections++) });
  const closes: Array<{ code: number; willRetry: boolean }> = [];
  client.on('close', (event) => closes.push({ code: event.code, willRetry: event.willRetry }));
  const started = Date.now();
  const read = client.channel<Big>(BIG).history({ limit: 20 });
  await assert.rejects(read, (error: unknown) => error instanceof HotlineError && error.code === 'disconnected' && /3 times/.test(error.message));
  const failedAfter = Date.now() - started;
  await waitFor(() => client.state === 'open', 'the client to be back');
  // Small answers still work on the same client.
  const small = await client.channel<Big>(BIG).history({ limit: 1 });
  assert.deepEqual(
    small.messages.map((m) => m.offset),
    bigOffsets.slice(-1),
  );
  process.stdout.write(`too big for the client: failed after ${failedAfter} ms, ${connections} connections, closes ${JSON.stringify(closes)}\n`);
  assert.equal(connections, 4, 'three that the answer failed, and one that stays');
  assert.deepEqual(closes, [1, 2, 3].map(() => ({ code: 1006, willRetry: true })));
});

test('a publish larger than the server accepts (1009 from the server): it fails with too_large at once, and is not sent again', { timeout: 60_000 }, async () => {
  let connections = 0;
  const client = sdk(fixture.target.ws + '/ws', { WebSocket: webSocketWith({ perMessageDeflate: false }, () => connections++) });
  const closes: number[] = [];
  client.on('close', (event) => closes.push(event.code));
  await client.channel('history:huge').subscribe();
  const huge = client.channel<Big>('history:huge').publish({ seq: 0, pad: 'x'.repeat(1100 * KiB) });
  await assert.rejects(huge, (error: unknown) => error instanceof HotlineError && error.code === 'too_large');
  await waitFor(() => client.state === 'open', 'the client to be back');
  const ok = await client.channel<Big>('history:huge').publish({ seq: 1, pad: '' });
  assert.ok(ok.offset >= 1);
  assert.deepEqual(closes, [1009]);
  assert.equal(connections, 2);
});
