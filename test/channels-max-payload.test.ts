// The largest message /ws accepts by default: what the largest hotline.v1 request needs
// (maxDataLength of data, 3 bytes of UTF-8 at most per UTF-16 unit, plus the rest of the
// request), so anything larger is refused with 1009 from its frame header, before any of it
// is parsed. docs/reliability.md, "Huge JSON" and "Compressed requests".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CHANNELS_MAX_PAYLOAD } from '../src/server/channels.js';
import { withChannels } from './support/channels-server.js';

/** A string whose JSON is exactly `units` UTF-16 units long, 3 bytes of UTF-8 for each but its quotes. */
const widest = (units: number): string => '€'.repeat(units - 2);

test('the default is 256 KiB: the largest publish the hub allows passes, a larger message gets 1009', async () => {
  assert.equal(DEFAULT_CHANNELS_MAX_PAYLOAD, 256 * 1024);
  await withChannels({}, async (s) => {
    const client = await s.connect();
    const data = widest(64 * 1024);
    const request = { op: 'pub', id: 1, ch: `c${'h'.repeat(199)}`, key: 'k'.repeat(128), data };
    const bytes = Buffer.byteLength(JSON.stringify(request));
    assert.ok(bytes > 196_000 && bytes < DEFAULT_CHANNELS_MAX_PAYLOAD, `the request is ${bytes} bytes`);
    client.sendJson(request);
    const answer = await client.answer(1);
    assert.equal(answer.op, 'ok', JSON.stringify(answer).slice(0, 200));

    client.sendText(`{"op":"ping","id":2,"pad":"${'a'.repeat(DEFAULT_CHANNELS_MAX_PAYLOAD)}"}`);
    const closed = await client.closed;
    assert.deepEqual(closed, { code: 1009, reason: `message exceeds the limit of ${DEFAULT_CHANNELS_MAX_PAYLOAD} bytes` });
  });
});

test('a raised maxDataLength raises the default with it; maxPayload set by hand is kept', async () => {
  await withChannels({ maxDataLength: 128 * 1024 }, async (s) => {
    const client = await s.connect();
    client.sendJson({ op: 'pub', id: 1, ch: 'big', data: widest(128 * 1024) });
    assert.equal((await client.answer(1)).op, 'ok');
  });
  await withChannels({ maxPayload: 1024 * 1024 }, async (s) => {
    const client = await s.connect();
    // Past the hub's maxDataLength, within maxPayload: parsed, and answered too_large.
    client.sendJson({ op: 'pub', id: 1, ch: 'big', data: 'x'.repeat(500_000) });
    const answer = await client.answer(1);
    assert.equal(answer.op, 'err');
    assert.equal((answer as { code?: string }).code, 'too_large');
  });
});
