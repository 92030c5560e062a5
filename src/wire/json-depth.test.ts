import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { exceedsJsonDepth } from './json-depth.js';

describe('exceedsJsonDepth', () => {
  test('counts the top-level container as level one', () => {
    assert.equal(exceedsJsonDepth('{}', 1), false);
    assert.equal(exceedsJsonDepth('{}', 0), true);
    assert.equal(exceedsJsonDepth('1', 0), false);
    assert.equal(exceedsJsonDepth('"x"', 0), false);
    assert.equal(exceedsJsonDepth('{"a":[1,{"b":[]}]}', 4), false);
    assert.equal(exceedsJsonDepth('{"a":[1,{"b":[]}]}', 3), true);
  });

  test('siblings do not add up: depth is the deepest path, not the count', () => {
    const wide = `[${'[],'.repeat(10_000)}[]]`;
    assert.equal(exceedsJsonDepth(wide, 2), false);
    assert.equal(exceedsJsonDepth(wide, 1), true);
  });

  test('brackets inside strings are not counted, escaped quotes do not end them', () => {
    assert.equal(exceedsJsonDepth('{"a":"[[[[{{{{"}', 1), false);
    assert.equal(exceedsJsonDepth('{"a\\"[[[":"\\"{{{{\\""}', 1), false);
    // An escaped backslash before a quote: the quote ends the string.
    assert.equal(exceedsJsonDepth('{"a":"\\\\","b":[[]]}', 2), true);
    assert.equal(exceedsJsonDepth('{"a":"\\\\\\"[[[[","b":[]}', 2), false);
    // A string that starts right after a backslash-quote pair elsewhere.
    assert.equal(exceedsJsonDepth('["\\\\\\\\",["x"]]', 1), true);
    assert.equal(exceedsJsonDepth('["\\u005b\\u007b"]', 1), false);
  });

  test('an unterminated string ends the scan without counting what follows', () => {
    assert.equal(exceedsJsonDepth('["abc[[[[[[', 1), false);
    assert.equal(exceedsJsonDepth('"\\"', 0), false);
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
