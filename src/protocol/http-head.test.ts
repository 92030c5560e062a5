import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { HandshakeError } from './errors.js';
import { HttpHeadParser, type HttpHeadKind, type HttpRequestHead, type HttpResponseHead } from './http-head.js';
import { SAMPLE_REQUEST } from '../../test/support/rfc6455-samples.js';

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

const SAMPLE_REQUEST_HEAD: HttpRequestHead = {
  method: 'GET',
  target: '/chat',
  version: '1.1',
  headers: new Map([
    ['host', 'server.example.com'],
    ['upgrade', 'websocket'],
    ['connection', 'Upgrade'],
    ['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ=='],
    ['origin', 'http://example.com'],
    ['sec-websocket-protocol', 'chat, superchat'],
    ['sec-websocket-version', '13'],
  ]),
  rawHeaders: [
    ['Host', 'server.example.com'],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
    ['Origin', 'http://example.com'],
    ['Sec-WebSocket-Protocol', 'chat, superchat'],
    ['Sec-WebSocket-Version', '13'],
  ],
};

/** Pushes `chunks` in turn; asserts that the head comes back exactly once, with the last chunk that completes it. */
function feed<K extends HttpHeadKind>(kind: K, chunks: Uint8Array[], max?: number) {
  const parser = new HttpHeadParser(kind, max);
  let head: ReturnType<typeof parser.push> = null;
  let at = -1;
  for (let i = 0; i < chunks.length; i++) {
    const result = parser.push(chunks[i]);
    if (result !== null) {
      assert.equal(head, null, 'head returned twice');
      head = result;
      at = i;
    }
  }
  return { head, at, rest: text(parser.rest), parser };
}

function splitAt(s: string, ...cuts: number[]): Uint8Array[] {
  const b = bytes(s);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const cut of cuts) {
    out.push(b.subarray(from, cut));
    from = cut;
  }
  out.push(b.subarray(from));
  return out;
}

function oneByteEach(s: string): Uint8Array[] {
  return [...bytes(s)].map((b) => Uint8Array.of(b));
}

function expectError(fn: () => unknown, code: string, status: number): HandshakeError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof HandshakeError, `expected HandshakeError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.status, status);
  return caught;
}

describe('HttpHeadParser: requests', () => {
  test('parses the RFC 6455 §1.2 sample request in one chunk', () => {
    const { head, rest } = feed('request', [bytes(SAMPLE_REQUEST)]);
    assert.deepEqual(head, SAMPLE_REQUEST_HEAD);
    assert.equal(rest, '');
  });

  test('lower-cases names, joins repeated fields with ", " and keeps raw order and case', () => {
    const { head } = feed('request', [
      bytes('GET / HTTP/1.1\r\nX-A: 1\r\nHost: h\r\nx-a: 2\r\nX-A:3\r\n\r\n'),
    ]);
    assert.ok(head);
    assert.equal(head.headers.get('x-a'), '1, 2, 3');
    assert.deepEqual(head.rawHeaders, [
      ['X-A', '1'],
      ['Host', 'h'],
      ['x-a', '2'],
      ['X-A', '3'],
    ]);
  });

  test('trims SP and HTAB around values but nothing else, and keeps obs-text as Latin-1', () => {
    const { head } = feed('request', [
      bytes('GET / HTTP/1.1\r\nA: \t x  y \t\r\nB:\xa0z\xa0\r\nC:\r\nD: \xe9t\xe9\r\n\r\n'),
    ]);
    assert.ok(head);
    assert.equal(head.headers.get('a'), 'x  y');
    assert.equal(head.headers.get('b'), '\u00a0z\u00a0');
    assert.equal(head.headers.get('c'), '');
    assert.equal(head.headers.get('d'), 'été');
  });

  test('accepts other methods, versions and absolute targets (validation is the handshake’s job)', () => {
    const { head } = feed('request', [bytes('POST http://a.example/x?y=1 HTTP/1.0\r\n\r\n')]);
    assert.deepEqual(head, {
      method: 'POST',
      target: 'http://a.example/x?y=1',
      version: '1.0',
      headers: new Map(),
      rawHeaders: [],
    });
  });

  test('keeps the bytes after the head in rest, and appends later pushes to it', () => {
    const { head, rest, parser } = feed('request', [bytes(SAMPLE_REQUEST + '\x81\x05hello')]);
    assert.deepEqual(head, SAMPLE_REQUEST_HEAD);
    assert.equal(rest, '\x81\x05hello');
    assert.equal(parser.push(bytes('\x88\x00')), null);
    assert.equal(text(parser.rest), '\x81\x05hello\x88\x00');
  });

  test('every split into two chunks gives the same head and rest', () => {
    const input = SAMPLE_REQUEST + 'tail';
    for (let cut = 0; cut <= input.length; cut++) {
      const { head, rest, at } = feed('request', splitAt(input, cut));
      assert.deepEqual(head, SAMPLE_REQUEST_HEAD, `cut at ${cut}`);
      // Bytes after the head in the completing chunk, then every later chunk.
      assert.equal(rest, 'tail', `cut at ${cut}`);
      assert.equal(at, cut >= SAMPLE_REQUEST.length ? 0 : 1, `cut at ${cut}`);
    }
  });

  test('every split into three chunks gives the same head', () => {
    const input = 'GET /a HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n!';
    for (let a = 0; a <= input.length; a++) {
      for (let b = a; b <= input.length; b++) {
        const { head, rest } = feed('request', splitAt(input, a, b));
        assert.ok(head, `cuts at ${a}, ${b}`);
        assert.equal(head.target, '/a');
        assert.deepEqual(head.rawHeaders, [
          ['Host', 'h'],
          ['X', 'y'],
        ]);
        // Whatever followed the head in the completing chunk is rest; later chunks are appended.
        assert.equal(rest, '!');
      }
    }
  });

  test('one byte at a time: the head arrives with the final LF, nothing earlier', () => {
    const input = SAMPLE_REQUEST + 'ab';
    const { head, at, rest } = feed('request', oneByteEach(input));
    assert.deepEqual(head, SAMPLE_REQUEST_HEAD);
    assert.equal(at, SAMPLE_REQUEST.length - 1);
    assert.equal(rest, 'ab');
  });

  test('any chunking of head plus trailing bytes gives the same head and rest (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.array(fc.nat({ max: SAMPLE_REQUEST.length + 40 }), { maxLength: 8 }),
        (tail, rawCuts) => {
          const all = new Uint8Array([...bytes(SAMPLE_REQUEST), ...tail]);
          const cuts = [...new Set(rawCuts.filter((c) => c <= all.length))].sort((x, y) => x - y);
          const chunks: Uint8Array[] = [];
          let from = 0;
          for (const c of [...cuts, all.length]) {
            chunks.push(all.subarray(from, c));
            from = c;
          }
          const { head, rest } = feed('request', chunks);
          assert.deepEqual(head, SAMPLE_REQUEST_HEAD);
          assert.equal(rest, text(tail));
        },
      ),
    );
  });

  test('pushing empty chunks is harmless', () => {
    const parser = new HttpHeadParser('request');
    assert.equal(parser.push(new Uint8Array(0)), null);
    assert.equal(parser.push(bytes('GET / HTTP/1.1\r\n')), null);
    assert.equal(parser.push(new Uint8Array(0)), null);
    assert.ok(parser.push(bytes('\r\n')));
    assert.equal(parser.rest.length, 0);
  });
});

describe('HttpHeadParser: responses', () => {
  test('parses a status line and headers', () => {
    const { head } = feed('response', [
      bytes('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
    ]);
    const expected: HttpResponseHead = {
      version: '1.1',
      status: 101,
      statusText: 'Switching Protocols',
      headers: new Map([
        ['upgrade', 'websocket'],
        ['connection', 'Upgrade'],
      ]),
      rawHeaders: [
        ['Upgrade', 'websocket'],
        ['Connection', 'Upgrade'],
      ],
    };
    assert.deepEqual(head, expected);
  });

  test('accepts an empty or missing reason phrase and obs-text in it', () => {
    assert.equal(feed('response', [bytes('HTTP/1.1 404 \r\n\r\n')]).head?.statusText, '');
    assert.equal(feed('response', [bytes('HTTP/1.1 404\r\n\r\n')]).head?.statusText, '');
    assert.equal(feed('response', [bytes('HTTP/1.0 200 \xc7a va\r\n\r\n')]).head?.statusText, 'Ça va');
  });

  test('every split position and one byte at a time', () => {
    const input = 'HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\nbody';
    const reference = feed('response', [bytes(input)]).head;
    assert.ok(reference);
    assert.equal(reference.status, 426);
    for (let cut = 0; cut <= input.length; cut++) {
      assert.deepEqual(feed('response', splitAt(input, cut)).head, reference, `cut at ${cut}`);
    }
    const { head, rest } = feed('response', oneByteEach(input));
    assert.deepEqual(head, reference);
    assert.equal(rest, 'body');
  });

  const badStatusLines = [
    'HTTP/1.1 1010 Too Many Digits',
    'HTTP/1.1 10 Short',
    'HTTP/1.1 abc Letters',
    'HTTP/1.1  101 Double space',
    'HTTP/11 101 Bad version',
    'http/1.1 101 Lower case',
    'HTTP/1.1 101 Bell\x07',
    'ICY 200 OK',
    '',
  ];
  for (const line of badStatusLines) {
    test(`rejects status line ${JSON.stringify(line)}`, () => {
      expectError(() => new HttpHeadParser('response').push(bytes(`${line}\r\nA: b\r\n\r\n`)), 'MALFORMED_HTTP', 400);
    });
  }
});

describe('HttpHeadParser: malformed requests', () => {
  const cases: Array<[string, string]> = [
    ['empty request line (leading CRLF)', '\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n'],
    ['double space', 'GET  / HTTP/1.1\r\n\r\n'],
    ['space in target', 'GET /a b HTTP/1.1\r\n\r\n'],
    ['trailing space', 'GET / HTTP/1.1 \r\n\r\n'],
    ['missing version', 'GET /\r\n\r\n'],
    ['only a method', 'GET\r\n\r\n'],
    ['empty method', ' / HTTP/1.1\r\n\r\n'],
    ['method not a token', 'G(T / HTTP/1.1\r\n\r\n'],
    ['empty target', 'GET  HTTP/1.1\r\n\r\n'],
    ['non-ASCII target', 'GET /caf\xe9 HTTP/1.1\r\n\r\n'],
    ['control in target', 'GET /\x01 HTTP/1.1\r\n\r\n'],
    ['version without dot', 'GET / HTTP/11\r\n\r\n'],
    ['two-digit version', 'GET / HTTP/1.10\r\n\r\n'],
    ['lower-case protocol name', 'GET / http/1.1\r\n\r\n'],
    ['tab as separator', 'GET\t/ HTTP/1.1\r\n\r\n'],
    ['header without colon', 'GET / HTTP/1.1\r\nHost h\r\n\r\n'],
    ['empty header name', 'GET / HTTP/1.1\r\n: value\r\n\r\n'],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : h\r\n\r\n'],
    ['space inside name', 'GET / HTTP/1.1\r\nHo st: h\r\n\r\n'],
    ['separator in name', 'GET / HTTP/1.1\r\nHo/st: h\r\n\r\n'],
    ['non-ASCII name', 'GET / HTTP/1.1\r\nH\xf6st: h\r\n\r\n'],
    ['obsolete line folding (SP)', 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n'],
    ['obsolete line folding (HTAB)', 'GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n'],
    ['whitespace before the first field', 'GET / HTTP/1.1\r\n Host: h\r\n\r\n'],
    ['NUL in value', 'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n'],
    ['DEL in value', 'GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n'],
    ['other control in value', 'GET / HTTP/1.1\r\nX: a\x1bb\r\n\r\n'],
    ['bare CR in value', 'GET / HTTP/1.1\r\nX: a\rb\r\n\r\n'],
    ['bare CR at end of value', 'GET / HTTP/1.1\r\nX: a\r\r\n\r\n'],
    ['bare CR in request line', 'GET /\r HTTP/1.1\r\n\r\n'],
    ['bare LF in value', 'GET / HTTP/1.1\r\nX: a\nb\r\n\r\n'],
    ['bare LF line ending', 'GET / HTTP/1.1\r\nX: a\n\r\n'],
    ['LF-only head', 'GET / HTTP/1.1\nHost: h\n\n'],
  ];
  for (const [name, input] of cases) {
    test(`rejects ${name}, whole and one byte at a time`, () => {
      expectError(() => new HttpHeadParser('request').push(bytes(input)), 'MALFORMED_HTTP', 400);
      const parser = new HttpHeadParser('request');
      expectError(() => {
        for (const chunk of oneByteEach(input)) parser.push(chunk);
      }, 'MALFORMED_HTTP', 400);
    });
  }

  test('names the problem in the message', () => {
    const message = (input: string) => expectError(() => new HttpHeadParser('request').push(bytes(input)), 'MALFORMED_HTTP', 400).message;
    assert.match(message('GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n'), /obsolete line folding/);
    assert.match(message('GET / HTTP/1.1\r\nX: a\nb\r\n\r\n'), /bare LF/);
    assert.match(message('GET / HTTP/1.1\r\nX: a\rb\r\n\r\n'), /bare CR/);
    assert.match(message('GET / HTTP/1.1\r\nHost h\r\n\r\n'), /without a colon/);
    assert.match(message('GET / HTTP/1.1\r\nHo st: h\r\n\r\n'), /invalid header name "Ho st"/);
    assert.match(message('GET / HTTP/1.1\r\nX: \x00\r\n\r\n'), /control character in the value of X/);
  });

  test('rejects a bare LF as soon as it arrives, without waiting for the end of the head', () => {
    const parser = new HttpHeadParser('request');
    assert.equal(parser.push(bytes('GET / HTTP/1.1\r')), null);
    expectError(() => parser.push(bytes('\nHost: h\n')), 'MALFORMED_HTTP', 400);
    const lone = new HttpHeadParser('request');
    expectError(() => lone.push(bytes('\n')), 'MALFORMED_HTTP', 400);
  });

  test('stays failed: later pushes throw the same error', () => {
    const parser = new HttpHeadParser('request');
    const first = expectError(() => parser.push(bytes('GET / HTTP/1.1\nHost')), 'MALFORMED_HTTP', 400);
    assert.throws(() => parser.push(bytes('\r\n\r\n')), (err) => err === first);
  });
});

describe('HttpHeadParser: size limit', () => {
  const head = (size: number): string => {
    const prefix = 'GET / HTTP/1.1\r\nX: ';
    return prefix + 'a'.repeat(size - prefix.length - 4) + '\r\n\r\n';
  };

  test('defaults to 16 KiB', () => {
    assert.ok(new HttpHeadParser('request').push(bytes(head(16 * 1024))));
    expectError(() => new HttpHeadParser('request').push(bytes(head(16 * 1024 + 1))), 'HEAD_TOO_LARGE', 431);
  });

  test('a head of exactly the limit passes, one byte more fails, whole or byte by byte', () => {
    const ok = feed('request', [bytes(head(100) + 'frames')], 100);
    assert.equal(ok.head?.headers.get('x')?.length, 100 - 23);
    assert.equal(ok.rest, 'frames');
    assert.ok(feed('request', oneByteEach(head(100)), 100).head);
    expectError(() => feed('request', [bytes(head(101))], 100), 'HEAD_TOO_LARGE', 431);
    expectError(() => feed('request', oneByteEach(head(101)), 100), 'HEAD_TOO_LARGE', 431);
  });

  test('throws once the limit is reached without the terminator, before more bytes arrive', () => {
    const parser = new HttpHeadParser('request', 64);
    assert.equal(parser.push(bytes('GET / HTTP/1.1\r\nX: ' + 'a'.repeat(63 - 19))), null);
    expectError(() => parser.push(bytes('a')), 'HEAD_TOO_LARGE', 431);

    // A single huge chunk is rejected without scanning or copying all of it.
    const flood = new Uint8Array(10_000_000).fill(0x61);
    expectError(() => new HttpHeadParser('request', 64).push(flood), 'HEAD_TOO_LARGE', 431);
  });

  test('a small head followed by a large payload is fine: the limit covers the head only', () => {
    const payload = 'p'.repeat(100_000);
    const result = feed('request', [bytes(head(50) + payload)], 64);
    assert.ok(result.head);
    const rest = result.rest;
    assert.equal(rest.length, payload.length);
  });

  test('rejects a non-positive or fractional limit', () => {
    assert.throws(() => new HttpHeadParser('request', 0), RangeError);
    assert.throws(() => new HttpHeadParser('request', 1.5), RangeError);
  });
});
