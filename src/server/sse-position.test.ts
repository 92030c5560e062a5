import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelListTag, decodePosition, encodePart, maxPositionLength } from './sse-position.js';

const CHANNELS = ['room:1', 'room:2', 'room:3'];

function idOf(channels: readonly string[], parts: Array<{ epoch: string; offset: number } | null>): string {
  return [channelListTag(channels), ...parts.map(encodePart)].join(',');
}

test('an id reads back as the positions it was written with, none included', () => {
  const parts = [{ epoch: 'mj4x8f2a01k2bz', offset: 47 }, null, { epoch: 'a', offset: 2 ** 53 - 1 }];
  const id = idOf(CHANNELS, parts);
  assert.equal(id.split(',')[1], 'mj4x8f2a01k2bz:1b');
  assert.deepEqual(decodePosition(id, CHANNELS), { ok: true, positions: parts });
});

test('epochs outside [0-9a-z] are percent-encoded, so separators in them do not split the id', () => {
  const parts = [{ epoch: 'a,b:c%', offset: 1 }, { epoch: 'é', offset: 0 }, null];
  assert.deepEqual(decodePosition(idOf(CHANNELS, parts), CHANNELS), { ok: true, positions: parts });
});

test('an id of another channel list (another order, one more) says nothing about these channels', () => {
  const id = idOf(CHANNELS, [null, null, null]);
  assert.deepEqual(decodePosition(id, ['room:2', 'room:1', 'room:3']), { ok: true, positions: null });
  assert.deepEqual(decodePosition(id, [...CHANNELS, 'room:4']), { ok: true, positions: null });
});

test('malformed ids are refused with the part that is wrong', () => {
  const tag = channelListTag(CHANNELS);
  for (const [text, message] of [
    ['', /not a stream position/],
    ['NOT!,a:1', /not a stream position/],
    [`${tag},a:1,b,c:1`, /part 2 .* is not epoch:offset/],
    [`${tag},:1,,`, /part 1/],
    [`${tag},a:-1,,`, /part 1/],
    [`${tag},a:zzzzzzzzzzzz,,`, /part 1/],
    [`${tag},${'e'.repeat(65)}:1,,`, /part 1/],
    [`${tag},%E0%A4%A:1,,`, /part 1/],
  ] as const) {
    const decoded = decodePosition(text, CHANNELS);
    assert.equal(decoded.ok, false, text);
    if (!decoded.ok) assert.match(decoded.message, message, text);
  }
});

test('the longest id is bounded by the channels; a longer text is refused before it is split', () => {
  const channels = Array.from({ length: 32 }, (_, i) => `c${i}`);
  const longest = idOf(
    channels,
    channels.map(() => ({ epoch: '\u20ac'.repeat(64), offset: 2 ** 53 - 1 })),
  );
  assert.ok(longest.length <= maxPositionLength(32), `${longest.length} > ${maxPositionLength(32)}`);
  const decoded = decodePosition('x'.repeat(maxPositionLength(32) + 1), channels);
  assert.equal(decoded.ok, false);
  if (!decoded.ok) assert.match(decoded.message, /more than 32 channels can need/);
});
