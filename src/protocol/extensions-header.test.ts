import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HandshakeError } from './errors.js';
import { type ExtensionOffer, formatExtensions, parseExtensions, parseTokenList } from './extensions-header.js';

const TCHARS = [..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"];
const token = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 10 });
const offer: fc.Arbitrary<ExtensionOffer> = fc.record({
  name: token,
  params: fc.array(fc.tuple(token, fc.oneof(fc.constant<true>(true), token)), { maxLength: 4 }),
}, { noNullPrototype: true });
const offers = fc.array(offer, { minLength: 1, maxLength: 5 });

const valid: Array<[header: string, expected: ExtensionOffer[]]> = [
  ['permessage-deflate', [{ name: 'permessage-deflate', params: [] }]],
  [
    'permessage-deflate; client_max_window_bits',
    [{ name: 'permessage-deflate', params: [['client_max_window_bits', true]] }],
  ],
  [
    'permessage-deflate;client_max_window_bits=10;server_no_context_takeover',
    [{ name: 'permessage-deflate', params: [['client_max_window_bits', '10'], ['server_no_context_takeover', true]] }],
  ],
  ['permessage-deflate; client_max_window_bits="10"', [{ name: 'permessage-deflate', params: [['client_max_window_bits', '10']] }]],
  ['x; a="\\1\\0"', [{ name: 'x', params: [['a', '10']] }]],
  ['x; a="a\\-b"', [{ name: 'x', params: [['a', 'a-b']] }]],
  ['x; a="!#$%&\'*+-.^_`|~"', [{ name: 'x', params: [['a', "!#$%&'*+-.^_`|~"]] }]],
  ['x; a=!#$%&\'*+-.^_`|~', [{ name: 'x', params: [['a', "!#$%&'*+-.^_`|~"]] }]],
  [
    ' a ;b = 1 ; c ,, d ',
    [
      { name: 'a', params: [['b', '1'], ['c', true]] },
      { name: 'd', params: [] },
    ],
  ],
  ['a\t;\tb\t=\t"1"\t,\tc', [{ name: 'a', params: [['b', '1']] }, { name: 'c', params: [] }]],
  [', , a, , b ,', [{ name: 'a', params: [] }, { name: 'b', params: [] }]],
  [',a', [{ name: 'a', params: [] }]],
  ['a,', [{ name: 'a', params: [] }]],
  [
    'permessage-deflate; client_max_window_bits, permessage-deflate',
    [
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
      { name: 'permessage-deflate', params: [] },
    ],
  ],
  ['x; a=1; a=2; a', [{ name: 'x', params: [['a', '1'], ['a', '2'], ['a', true]] }]],
  ['PerMessage-Deflate; A=B', [{ name: 'PerMessage-Deflate', params: [['A', 'B']] }]],
  [
    'mux; max-channels=4; flow-control, deflate-stream',
    [
      { name: 'mux', params: [['max-channels', '4'], ['flow-control', true]] },
      { name: 'deflate-stream', params: [] },
    ],
  ],
];

const invalid: Array<[header: string, problem: RegExp]> = [
  ['', /no extension listed/],
  [' , ,\t', /no extension listed/],
  [';a', /expected an extension name, found ";" at offset 0/],
  ['a, ;b', /expected an extension name, found ";" at offset 3/],
  ['=a', /expected an extension name/],
  ['a;', /expected a parameter name, found end of header/],
  ['a; ', /expected a parameter name, found end of header/],
  ['foo;;bar', /expected a parameter name, found ";" at offset 4/],
  ['a; =1', /expected a parameter name, found "=" at offset 3/],
  ['a; b=', /expected a value for b, found end of header/],
  ['a; b= , c', /expected a value for b, found "," at offset 6/],
  ['a; b==1', /expected a value for b, found "="/],
  ['a=1', /expected ",", ";" or "=", found "=" at offset 1/],
  ['a; b="1', /unterminated quoted string starting at offset 5/],
  ['a; b="1\\"', /unterminated quoted string/],
  ['a; b="1\\', /unterminated quoted string/],
  ['a; b=""', /quoted value of b at offset 5 is not a token/],
  ['a; b="1 2"', /quoted value of b .* is not a token/],
  ['a; b="x,y"', /quoted value of b .* is not a token/],
  ['a; b="\\ "', /quoted value of b .* is not a token/],
  ['x; a="\\\\"', /quoted value of a .* is not a token/],
  ['a; b="\x01"', /invalid character in quoted string at offset 6/],
  ['a; b="\\\x01"', /invalid escaped character at offset 7/],
  ['a; b="x"y', /expected ",", ";" or "=", found "y"/],
  ['a; b=1"', /found "\\""/],
  ['per message', /expected ",", ";" or "=", found "m" at offset 4/],
  ['a; b c', /found "c"/],
  ['a; b=1 2', /found "2"/],
  ['a "b"', /found "\\""/],
  ['a/b', /found "\/"/],
  ['caf\u00e9', /found "é"/],
  ['\u00e9', /expected an extension name/],
  ['a; b=\x00', /expected a value for b/],
  ['a\r\n; b', /found "\\r"/],
];

describe('parseExtensions', () => {
  for (const [header, expected] of valid) {
    test(`accepts ${JSON.stringify(header)}`, () => {
      assert.deepEqual(parseExtensions(header), expected);
    });
  }

  for (const [header, problem] of invalid) {
    test(`rejects ${JSON.stringify(header)}`, () => {
      assert.throws(
        () => parseExtensions(header),
        (err) =>
          err instanceof HandshakeError &&
          err.code === 'BAD_EXTENSION_HEADER' &&
          err.status === 400 &&
          err.message.startsWith('Sec-WebSocket-Extensions: ') &&
          problem.test(err.message),
      );
    });
  }

  test('whitespace, empty elements, quoting and escaping do not change the result (property)', () => {
    fc.assert(
      fc.property(offers, fc.gen(), (list, g) => {
        const ows = (): string => g(fc.constantFrom, '', '', ' ', '\t', ' \t ');
        const empties = (): string => ','.repeat(g(fc.nat, 2)) + ows();
        let header = ows() + empties();
        list.forEach((o, i) => {
          if (i > 0) header += ows() + ',' + ows() + empties();
          header += o.name;
          for (const [name, value] of o.params) {
            header += ows() + ';' + ows() + name;
            if (value === true) continue;
            header += ows() + '=' + ows();
            if (g(fc.boolean)) {
              header += '"' + [...value].map((c) => (g(fc.boolean) ? '\\' + c : c)).join('') + '"';
            } else {
              header += value;
            }
          }
        });
        header += ows() + empties();
        assert.deepEqual(parseExtensions(header), list);
      }),
    );
  });
});

describe('formatExtensions', () => {
  test('formats offers in order with "; " and ", "', () => {
    assert.equal(
      formatExtensions([
        { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
        { name: 'x-foo', params: [['a', '1']] },
      ]),
      'permessage-deflate; client_max_window_bits, x-foo; a=1',
    );
    assert.equal(
      formatExtensions([{ name: 'x', params: [['a', '1'], ['a', true], ['b', '2']] }, { name: 'x', params: [] }]),
      'x; a=1; a; b=2, x',
    );
    assert.equal(formatExtensions([]), '');
  });

  test('refuses names and values that are not tokens', () => {
    assert.throws(() => formatExtensions([{ name: '', params: [] }]), TypeError);
    assert.throws(() => formatExtensions([{ name: 'a b', params: [] }]), TypeError);
    assert.throws(() => formatExtensions([{ name: 'a', params: [['b;c', true]] }]), TypeError);
    assert.throws(() => formatExtensions([{ name: 'a', params: [['b', '']] }]), TypeError);
    assert.throws(() => formatExtensions([{ name: 'a', params: [['b', '1, c']] }]), TypeError);
    assert.throws(() => formatExtensions([{ name: 'a', params: [['b', '"1"']] }]), TypeError);
  });

  test('parseExtensions inverts formatExtensions (property)', () => {
    fc.assert(
      fc.property(offers, (list) => {
        assert.deepEqual(parseExtensions(formatExtensions(list)), list);
      }),
    );
  });
});

describe('parseTokenList', () => {
  const cases: Array<[string, string[] | null]> = [
    ['websocket', ['websocket']],
    ['keep-alive, Upgrade', ['keep-alive', 'Upgrade']],
    [' , chat ,, superchat , ', ['chat', 'superchat']],
    ['a\t,\tb', ['a', 'b']],
    ['', []],
    [' , ', []],
    ['a b', null],
    ['a, "b"', null],
    ['websocket/13', null],
    ['a;b', null],
    ['\u00a0a', null],
  ];
  for (const [value, expected] of cases) {
    test(`${JSON.stringify(value)} → ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(parseTokenList(value), expected);
    });
  }
});
