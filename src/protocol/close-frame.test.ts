import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { encodeClosePayload, MAX_CLOSE_REASON_BYTES, parseClosePayload } from './close-frame.js';
import { CloseCode, isApplicationCloseCode, isValidWireCloseCode } from './close-code.js';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';

/** RFC 6455 §7.4.1/§7.4.2 and the IANA registry: the codes that may appear on the wire. */
function expectedValid(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

const codeBytes = (code: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return b;
};

function expectParseError(payload: Uint8Array, code: ProtocolErrorCode, closeCode: number): void {
  assert.throws(
    () => parseClosePayload(payload),
    (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, code);
      assert.equal(error.closeCode, closeCode);
      return true;
    },
  );
}

describe('parseClosePayload', () => {
  test('every code 0..5000 is accepted or rejected with 1002 per §7.4 and the IANA registry', () => {
    const accepted: number[] = [];
    for (let code = 0; code <= 5000; code++) {
      const payload = codeBytes(code);
      if (expectedValid(code)) {
        assert.deepEqual(parseClosePayload(payload), { code, reason: '' }, `code ${code}`);
        accepted.push(code);
      } else {
        expectParseError(payload, 'INVALID_CLOSE_CODE', 1002);
      }
    }
    assert.equal(accepted.length, 4 + 8 + 2000);
  });

  test('codes above 5000 (up to 65535) are rejected', () => {
    for (const code of [5000, 5001, 9999, 0x8000, 0xffff]) expectParseError(codeBytes(code), 'INVALID_CLOSE_CODE', 1002);
  });

  test('the locally reserved codes 1005, 1006, 1015 and the unassigned 1004, 1016 are rejected', () => {
    for (const code of [1004, 1005, 1006, 1015, 1016, 2999]) expectParseError(codeBytes(code), 'INVALID_CLOSE_CODE', 1002);
  });

  test('an empty payload means no status: 1005 with an empty reason', () => {
    assert.deepEqual(parseClosePayload(new Uint8Array(0)), { code: 1005, reason: '' });
  });

  test('a one-byte payload is a protocol error', () => {
    for (const b of [0x00, 0x03, 0xe8, 0xff]) expectParseError(Uint8Array.of(b), 'INVALID_CLOSE_PAYLOAD', 1002);
  });

  test('the reason is decoded as UTF-8', () => {
    const payload = Buffer.concat([codeBytes(1000), Buffer.from('bye ✓ 😀')]);
    assert.deepEqual(parseClosePayload(payload), { code: 1000, reason: 'bye ✓ 😀' });
    const long = 'é'.repeat(61) + 'x';
    assert.deepEqual(parseClosePayload(Buffer.concat([codeBytes(4999), Buffer.from(long)])), { code: 4999, reason: long });
  });

  test('a payload view into a larger buffer is read within its bounds', () => {
    const backing = Buffer.from('ZZ\x03\xe8okZZ', 'latin1');
    assert.deepEqual(parseClosePayload(backing.subarray(2, 6)), { code: 1000, reason: 'ok' });
  });

  test('an invalid UTF-8 reason is 1007, short or long', () => {
    for (const bad of ['ff', 'c0 80', 'ed a0 80', 'f4 90 80 80', 'e2 82', '61 80', 'c3']) {
      const reason = Buffer.from(bad.replace(/ /g, ''), 'hex');
      expectParseError(Buffer.concat([codeBytes(1000), reason]), 'INVALID_UTF8', 1007);
      // Long enough for the native validator.
      expectParseError(Buffer.concat([codeBytes(1000), Buffer.alloc(80, 0x61), reason]), 'INVALID_UTF8', 1007);
      expectParseError(Buffer.concat([codeBytes(1000), reason, Buffer.alloc(80, 0x61)]), 'INVALID_UTF8', 1007);
    }
  });

  test('an invalid code is reported before an invalid reason', () => {
    expectParseError(Buffer.from([0x03, 0xed, 0xff]), 'INVALID_CLOSE_CODE', 1002);
  });
});

describe('encodeClosePayload', () => {
  test('no code gives an empty payload; a reason without a code is a RangeError', () => {
    assert.equal(encodeClosePayload().length, 0);
    assert.equal(encodeClosePayload(undefined, '').length, 0);
    assert.throws(() => encodeClosePayload(undefined, 'why'), RangeError);
  });

  test('every code 0..5000 is encoded big-endian or refused with a RangeError', () => {
    for (let code = 0; code <= 5000; code++) {
      if (expectedValid(code)) {
        assert.equal(encodeClosePayload(code).toString('hex'), codeBytes(code).toString('hex'), `code ${code}`);
        assert.equal(isValidWireCloseCode(code), true);
      } else {
        assert.throws(() => encodeClosePayload(code), RangeError, `code ${code}`);
        assert.equal(isValidWireCloseCode(code), false);
      }
    }
  });

  test('out-of-range and non-finite codes are refused', () => {
    for (const code of [-1, -1000, 65536, 70000, Number.NaN, Infinity, -Infinity]) {
      assert.throws(() => encodeClosePayload(code), RangeError, String(code));
      assert.equal(isValidWireCloseCode(code), false, String(code));
    }
  });

  test('non-integer codes are refused in every range (not silently truncated)', () => {
    for (const code of [3000.5, 4999.5, 1000.5, 1002.25, 1013.9]) {
      assert.equal(isValidWireCloseCode(code), false, `isValidWireCloseCode(${code})`);
      assert.throws(() => encodeClosePayload(code), RangeError, `encodeClosePayload(${code})`);
    }
  });

  test('application codes (3000–4999) are sendable, apart from the registered ones', () => {
    for (const code of [3000, 4401, 4403, 4999]) {
      assert.equal(isApplicationCloseCode(code), true, String(code));
      assert.equal(isValidWireCloseCode(code), true, String(code));
      assert.equal(encodeClosePayload(code).readUInt16BE(0), code);
    }
    for (const code of Object.values(CloseCode)) assert.equal(isApplicationCloseCode(code), false, String(code));
    for (const code of [2999, 5000, 3000.5]) assert.equal(isApplicationCloseCode(code), false, String(code));
  });

  test('a reason of 123 bytes is fine, 124 bytes is a RangeError (counted in UTF-8 bytes)', () => {
    assert.equal(MAX_CLOSE_REASON_BYTES, 123);
    const ascii = encodeClosePayload(1000, 'a'.repeat(123));
    assert.equal(ascii.length, 125);
    assert.equal(ascii.subarray(0, 2).toString('hex'), '03e8');
    assert.equal(ascii.subarray(2).toString(), 'a'.repeat(123));
    assert.throws(() => encodeClosePayload(1000, 'a'.repeat(124)), RangeError);
    // 41 three-byte characters are 123 bytes; one more ASCII byte is too many.
    assert.equal(encodeClosePayload(4000, '€'.repeat(41)).length, 125);
    assert.throws(() => encodeClosePayload(4000, '€'.repeat(41) + 'a'), RangeError);
    // 62 two-byte characters are 124 bytes even though the string has 62 units.
    assert.throws(() => encodeClosePayload(1001, 'é'.repeat(62)), RangeError);
  });

  test('the encoded payload round-trips through parseClosePayload', () => {
    for (const [code, reason] of [
      [1000, ''],
      [1001, 'going away'],
      [1011, 'ünïcödé 😀'],
      [3000, 'x'.repeat(123)],
      [4999, '€'.repeat(41)],
    ] as const) {
      assert.deepEqual(parseClosePayload(encodeClosePayload(code, reason)), { code, reason });
    }
  });
});
