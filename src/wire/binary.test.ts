import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { binaryForm, bytesOfForm, formBytes, fromBase64, reviveBytes, stringifyWithBytes, toBase64 } from './binary.js';

describe('bytes in JSON: {"$bin": base64}', () => {
  test('base64 agrees with Node\'s for every length around the 3-byte groups, and reads back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const text = toBase64(bytes);
        assert.equal(text, Buffer.from(bytes).toString('base64'));
        assert.deepEqual(fromBase64(text), bytes);
      }),
      { numRuns: 500 },
    );
    const big = new Uint8Array(100_000).map((_, i) => (i * 7) & 255);
    assert.equal(toBase64(big), Buffer.from(big).toString('base64'));
  });

  test('only canonical base64 is bytes: no other alphabet, no missing padding, no stray padding bits', () => {
    assert.deepEqual(fromBase64(''), new Uint8Array(0));
    assert.deepEqual(fromBase64('AAEC'), new Uint8Array([0, 1, 2]));
    for (const bad of ['AAE', 'AA==AA==', 'AB==', 'AAF=', 'A-_A', 'AA A', 'é===', '====', 'A===']) {
      assert.equal(fromBase64(bad), null, bad);
    }
  });

  test('the form is an object with $bin alone and a canonical string; anything else is data', () => {
    assert.deepEqual(bytesOfForm({ $bin: 'AAEC' }), new Uint8Array([0, 1, 2]));
    assert.equal(bytesOfForm({ $bin: 'AAEC', x: 1 }), null);
    assert.equal(bytesOfForm({ $bin: 1 }), null);
    assert.equal(bytesOfForm({ $bin: 'not base64' }), null);
    assert.equal(bytesOfForm([{ $bin: 'AAEC' }]), null);
    assert.equal(bytesOfForm(Object.create({ $bin: 'AAEC' }) as object), null);
  });

  test('stringifyWithBytes writes Uint8Arrays, Buffers and other views as the form', () => {
    const text = stringifyWithBytes({ a: new Uint8Array([1, 2]), b: [Buffer.from('hi')], c: new Uint16Array([1]), d: 'x' });
    assert.equal(text, '{"a":{"$bin":"AQI="},"b":[{"$bin":"aGk="}],"c":{"$bin":"AQA="},"d":"x"}');
    assert.equal(stringifyWithBytes(new Uint8Array([255])), '{"$bin":"/w=="}');
  });

  test('reviveBytes and formBytes are inverse, at the top and nested in objects and arrays', () => {
    const json = '{"top":{"$bin":"AAEC"},"list":[1,{"$bin":""},{"keep":{"$bin":"AAEC","other":true}}]}';
    const revived = reviveBytes(JSON.parse(json)) as { top: Uint8Array; list: [number, Uint8Array, unknown] };
    assert.deepEqual(revived.top, new Uint8Array([0, 1, 2]));
    assert.deepEqual(revived.list[1], new Uint8Array(0));
    assert.deepEqual(revived.list[2], { keep: { $bin: 'AAEC', other: true } });
    assert.equal(JSON.stringify(formBytes(revived)), json);
    assert.deepEqual(reviveBytes(binaryForm(new Uint8Array([9]))), new Uint8Array([9]));
    assert.deepEqual(formBytes(new Uint8Array([9])), { $bin: 'CQ==' });
  });
});
