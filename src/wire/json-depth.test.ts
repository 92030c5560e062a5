import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { exceedsJsonDepth } from './json-depth.js';

/**
 * The smallest maxDepth the text does not exceed: asserting it asserts both that the text
 * exceeds one level less and that it does not exceed its own depth.
 */
function depthOf(text: string): number {
  for (let depth = 0; depth <= 100; depth++) if (!exceedsJsonDepth(text, depth)) return depth;
  return Infinity;
}

describe('exceedsJsonDepth', () => {
  test('counts the top-level container as level one', () => {
    assert.deepEqual(['{}', '1', '"x"', '{"a":[1,{"b":[]}]}'].map(depthOf), [1, 0, 0, 4]);
  });

  test('siblings do not add up: depth is the deepest path, not the count', () => {
    const wide = `[${'[],'.repeat(10_000)}[]]`;
    assert.equal(exceedsJsonDepth(wide, 2), false);
    assert.equal(exceedsJsonDepth(wide, 1), true);
  });

  test('brackets inside strings are not counted, escaped quotes do not end them', () => {
    const depths: Array<[text: string, depth: number]> = [
      ['{"a":"[[[[{{{{"}', 1],
      ['{"a\\"[[[":"\\"{{{{\\""}', 1],
      // An escaped backslash before a quote: the quote ends the string.
      ['{"a":"\\\\","b":[[]]}', 3],
      ['{"a":"\\\\\\"[[[[","b":[]}', 2],
      // A string that starts right after a backslash-quote pair elsewhere.
      ['["\\\\\\\\",["x"]]', 2],
      ['["\\u005b\\u007b"]', 1],
    ];
    for (const [text, depth] of depths) assert.equal(depthOf(text), depth, text);
  });

  test('an unterminated string ends the scan without counting what follows', () => {
    assert.deepEqual(['["abc[[[[[[', '"\\"'].map(depthOf), [1, 0]);
  });

  test('100,000 levels are refused at once, without a stack and without throwing', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const started = performance.now();
    assert.equal(exceedsJsonDepth(deep, 64), true);
    assert.equal(exceedsJsonDepth('{"a":'.repeat(100_000), 64), true);
    assert.ok(performance.now() - started < 500);
  });

  test('a long run of backslashes and quotes is scanned in linear time', () => {
    const text = `["${'\\\\\\"'.repeat(200_000)}"]`;
    assert.doesNotThrow(() => JSON.parse(text));
    const started = performance.now();
    assert.equal(exceedsJsonDepth(text, 1), false);
    assert.equal(exceedsJsonDepth(text, 0), true);
    assert.ok(performance.now() - started < 500);
  });
});
