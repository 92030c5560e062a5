import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CHANNEL_NAME_PUNCTUATION, isValidChannelName, validateChannelName } from './channel-name.js';

describe('validateChannelName', () => {
  test('letters, digits and the documented punctuation are accepted', () => {
    for (const name of ['a', 'Z', '0', 'room:1', 'user@example.com', 'a/b/c', 'k=v,k2=v2', '_-:.@/=,', 'ABCxyz789']) {
      assert.equal(validateChannelName(name), null, name);
      assert.equal(isValidChannelName(name), true, name);
    }
    assert.equal(CHANNEL_NAME_PUNCTUATION, '_-:.@/=,');
  });

  test('every ASCII character outside the set is refused, with its index', () => {
    const allowed = /^[A-Za-z0-9_\-:.@/=,]$/;
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      const problem = validateChannelName(`ab${ch}`);
      if (allowed.test(ch)) assert.equal(problem, null, `code ${c}`);
      else assert.match(problem ?? '', /^character .+ at index 2 is not allowed \(use A-Z, a-z, 0-9 and _ - : \. @ \/ = ,\)$/, `code ${c}`);
    }
  });

  test('the empty name is refused', () => {
    assert.equal(validateChannelName(''), 'it is empty');
    assert.equal(isValidChannelName(''), false);
  });

  test('200 characters is the default limit; another limit can be given', () => {
    assert.equal(validateChannelName('a'.repeat(200)), null);
    assert.equal(validateChannelName('a'.repeat(201)), 'it is 201 characters long; the limit is 200');
    assert.equal(validateChannelName('a'.repeat(11), 10), 'it is 11 characters long; the limit is 10');
    assert.equal(validateChannelName('a'.repeat(300), 300), null);
    assert.equal(isValidChannelName('a'.repeat(201)), false);
    assert.equal(isValidChannelName('a'.repeat(201), 201), true);
  });

  test('whitespace anywhere is refused, shown as a code point', () => {
    assert.match(validateChannelName(' room') ?? '', /^character U\+0020 at index 0 /);
    assert.match(validateChannelName('room ') ?? '', /^character U\+0020 at index 4 /);
    assert.match(validateChannelName('ro\tom') ?? '', /^character U\+0009 at index 2 /);
    assert.match(validateChannelName('room\n') ?? '', /^character U\+000A at index 4 /);
    assert.match(validateChannelName('\u00a0') ?? '', /^character U\+00A0 at index 0 /);
  });

  test('visible ASCII is quoted; non-ASCII, emoji and lone surrogates are named by code point', () => {
    assert.match(validateChannelName('a"b') ?? '', /^character """ at index 1 /);
    assert.match(validateChannelName('a*') ?? '', /^character "\*" at index 1 /);
    assert.match(validateChannelName('café') ?? '', /^character U\+00E9 at index 3 /);
    assert.match(validateChannelName('x😀') ?? '', /^character U\+1F600 at index 1 /);
    assert.match(validateChannelName('x\ud800') ?? '', /^character U\+D800 at index 1 /);
    assert.match(validateChannelName('\u0000') ?? '', /^character U\+0000 at index 0 /);
    assert.match(validateChannelName('ａ') ?? '', /^character U\+FF41 at index 0 /);
  });

  test('the length is checked before the characters, so a huge name costs nothing', () => {
    assert.equal(validateChannelName(' '.repeat(1_000_000)), 'it is 1000000 characters long; the limit is 200');
  });

  test('isValidChannelName refuses what is not a string', () => {
    for (const value of [undefined, null, 1, ['a'], { a: 1 }, true]) assert.equal(isValidChannelName(value), false);
  });
});
