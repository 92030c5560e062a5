import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { HandshakeError, type HandshakeErrorCode } from './errors.js';
import { type ExtensionOffer } from './extensions-header.js';
import { HttpHeadParser, type HttpRequestHead, type HttpResponseHead } from './http-head.js';
import {
  WEBSOCKET_GUID,
  buildClientRequest,
  buildServerResponse,
  computeAccept,
  generateKey,
  validateClientRequest,
  validateServerResponse,
  type ServerHandshakeOptions,
} from './handshake.js';
import { buildRejectResponse } from './reject-response.js';
import { SAMPLE_KEY, SAMPLE_ACCEPT, SAMPLE_REQUEST } from '../../test/support/rfc6455-samples.js';


const SAMPLE_RESPONSE =
  'HTTP/1.1 101 Switching Protocols\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n' +
  'Sec-WebSocket-Protocol: chat\r\n' +
  '\r\n';

function parseRequest(text: string): HttpRequestHead {
  const head = new HttpHeadParser('request').push(Buffer.from(text, 'latin1'));
  assert.ok(head, 'incomplete request head');
  return head;
}

function parseResponse(text: string): HttpResponseHead {
  const head = new HttpHeadParser('response').push(Buffer.from(text, 'latin1'));
  assert.ok(head, 'incomplete response head');
  return head;
}

/** The sample request with fields replaced (by case-insensitive name), removed (null) or added. */
function request(
  changes: Record<string, string | null> = {},
  { startLine = 'GET /chat HTTP/1.1', extra = [] as Array<[string, string]> } = {},
): HttpRequestHead {
  const lines = SAMPLE_REQUEST.split('\r\n').filter((l) => l !== '');
  const fields = lines.slice(1).map((l) => l.split(': ', 2) as [string, string]);
  const out: Array<[string, string]> = [];
  for (const [name, value] of fields) {
    const key = Object.keys(changes).find((k) => k.toLowerCase() === name.toLowerCase());
    if (key === undefined) out.push([name, value]);
    else if (changes[key] !== null) out.push([name, changes[key]]);
  }
  for (const [name, value] of Object.entries(changes)) {
    if (value !== null && !fields.some(([n]) => n.toLowerCase() === name.toLowerCase())) out.push([name, value]);
  }
  out.push(...extra);
  return parseRequest(`${startLine}\r\n${out.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`);
}

function response(
  changes: Record<string, string | null> = {},
  statusLine = 'HTTP/1.1 101 Switching Protocols',
): HttpResponseHead {
  const fields: Record<string, string | null> = {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Accept': SAMPLE_ACCEPT,
    ...changes,
  };
  let text = `${statusLine}\r\n`;
  for (const [name, value] of Object.entries(fields)) if (value !== null) text += `${name}: ${value}\r\n`;
  return parseResponse(text + '\r\n');
}

function expectHandshakeError(
  fn: () => unknown,
  code: HandshakeErrorCode,
  status: number,
  headers: Record<string, string> = {},
): HandshakeError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof HandshakeError, `expected HandshakeError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.status, status);
  assert.deepEqual({ ...caught.headers }, headers);
  return caught;
}

describe('keys', () => {
  test('computeAccept matches RFC 6455 §1.3', () => {
    assert.equal(WEBSOCKET_GUID, '258EAFA5-E914-47DA-95CA-C5AB0DC85B11');
    assert.equal(computeAccept(SAMPLE_KEY), SAMPLE_ACCEPT);
  });

  test('generateKey gives base64 of 16 fresh random bytes', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const key = generateKey();
      assert.match(key, /^[A-Za-z0-9+/]{22}==$/);
      assert.equal(Buffer.from(key, 'base64').length, 16);
      assert.equal(Buffer.from(key, 'base64').toString('base64'), key);
      keys.add(key);
    }
    assert.equal(keys.size, 100);
  });
});

describe('RFC 6455 sample handshake', () => {
  test('buildClientRequest reproduces the sample request', () => {
    const { key, request: text } = buildClientRequest({
      host: 'server.example.com',
      path: '/chat',
      key: SAMPLE_KEY,
      origin: 'http://example.com',
      protocols: ['chat', 'superchat'],
    });
    assert.equal(key, SAMPLE_KEY);
    assert.equal(text, SAMPLE_REQUEST);
  });

  test('the server accepts the sample request and answers with the sample response', () => {
    const accepted = validateClientRequest(parseRequest(SAMPLE_REQUEST), {
      protocols: ['chat'],
      origins: ['http://example.com'],
    });
    assert.deepEqual(accepted, {
      key: SAMPLE_KEY,
      accept: SAMPLE_ACCEPT,
      protocol: 'chat',
      offeredProtocols: ['chat', 'superchat'],
      extensions: [],
      origin: 'http://example.com',
      host: 'server.example.com',
    });
    assert.equal(buildServerResponse({ accept: accepted.accept, protocol: accepted.protocol }), SAMPLE_RESPONSE);
  });

  test('the client accepts the sample response', () => {
    assert.deepEqual(
      validateServerResponse(parseResponse(SAMPLE_RESPONSE), { key: SAMPLE_KEY, protocols: ['chat', 'superchat'] }),
      { protocol: 'chat', extensions: [] },
    );
  });
});

describe('buildClientRequest', () => {
  const base = { host: 'example.com:8080', key: SAMPLE_KEY };

  test('minimal request: path defaults to "/", no optional fields', () => {
    const expected =
      'GET / HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    assert.equal(buildClientRequest(base).request, expected);
    assert.equal(buildClientRequest({ ...base, path: '' }).request, expected);
    assert.equal(buildClientRequest({ ...base, protocols: [], extensions: [] }).request, expected);
  });

  test('adds extensions and extra headers after the standard fields', () => {
    const { request: text } = buildClientRequest({
      ...base,
      path: '/a/b?c=d&e',
      extensions: [
        { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
        { name: 'permessage-deflate', params: [] },
      ],
      headers: { Authorization: 'Bearer abc', 'X-Empty': '' },
    });
    assert.equal(
      text,
      'GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n` +
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, permessage-deflate\r\n' +
        'Authorization: Bearer abc\r\nX-Empty: \r\n\r\n',
    );
  });

  test('generates a valid key when none is given', () => {
    const { key, request: text } = buildClientRequest({ host: 'h' });
    assert.match(key, /^[A-Za-z0-9+/]{22}==$/);
    assert.ok(text.includes(`\r\nSec-WebSocket-Key: ${key}\r\n`));
    assert.notEqual(buildClientRequest({ host: 'h' }).key, key);
  });

  const invalid: Array<[string, Parameters<typeof buildClientRequest>[0]]> = [
    ['a subprotocol with a space', { ...base, protocols: ['a b'] }],
    ['an empty subprotocol', { ...base, protocols: [''] }],
    ['a subprotocol with a comma', { ...base, protocols: ['a,b'] }],
    ['a non-ASCII subprotocol', { ...base, protocols: ['caf\u00e9'] }],
    ['a repeated subprotocol', { ...base, protocols: ['chat', 'superchat', 'chat'] }],
    ['CRLF in a header value', { ...base, headers: { 'X-A': 'a\r\nEvil: 1' } }],
    ['LF in a header value', { ...base, headers: { 'X-A': 'a\nb' } }],
    ['NUL in a header value', { ...base, headers: { 'X-A': 'a\u0000b' } }],
    ['a non-ASCII header value', { ...base, headers: { 'X-A': '\u00e9' } }],
    ['CRLF in a header name', { ...base, headers: { 'X-A\r\nEvil': '1' } }],
    ['a colon in a header name', { ...base, headers: { 'X-A:': '1' } }],
    ['an empty header name', { ...base, headers: { '': '1' } }],
    ['a handshake header in headers', { ...base, headers: { 'sec-websocket-key': SAMPLE_KEY } }],
    ['Host in headers', { ...base, headers: { HOST: 'other' } }],
    ['Content-Length in headers', { ...base, headers: { 'Content-Length': '5' } }],
    ['CRLF in the origin', { ...base, origin: 'http://a\r\nX: y' }],
    ['CRLF in the host', { ...base, host: 'a\r\nX: y' }],
    ['a space in the host', { ...base, host: 'a b' }],
    ['an empty host', { ...base, host: '' }],
    ['a path without a leading slash', { ...base, path: 'chat' }],
    ['a space in the path', { ...base, path: '/a b' }],
    ['CRLF in the path', { ...base, path: '/\r\n' }],
    ['a key of 15 bytes', { ...base, key: 'AAAAAAAAAAAAAAAAAAAA' }],
    ['a non-canonical key', { ...base, key: 'dGhlIHNhbXBsZSBub25jZR==' }],
    ['an extension name that is not a token', { ...base, extensions: [{ name: 'a b', params: [] }] }],
  ];
  for (const [name, options] of invalid) {
    test(`throws TypeError for ${name}`, () => {
      assert.throws(() => buildClientRequest(options), TypeError);
    });
  }
});

describe('validateClientRequest: errors', () => {
  const UPGRADE_REQUIRED = { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13' };
  const cases: Array<[string, () => HttpRequestHead, HandshakeErrorCode, number, Record<string, string>?, ServerHandshakeOptions?]> = [
    ['POST', () => request({}, { startLine: 'POST /chat HTTP/1.1' }), 'METHOD_NOT_ALLOWED', 405, { Allow: 'GET' }],
    ['lower-case get', () => request({}, { startLine: 'get /chat HTTP/1.1' }), 'METHOD_NOT_ALLOWED', 405, { Allow: 'GET' }],
    ['HTTP/1.0', () => request({}, { startLine: 'GET /chat HTTP/1.0' }), 'HTTP_VERSION', 400],
    ['HTTP/0.9', () => request({}, { startLine: 'GET /chat HTTP/0.9' }), 'HTTP_VERSION_NOT_SUPPORTED', 505],
    ['HTTP/2.0', () => request({}, { startLine: 'GET /chat HTTP/2.0' }), 'HTTP_VERSION_NOT_SUPPORTED', 505],
    ['HTTP/3.0', () => request({}, { startLine: 'GET /chat HTTP/3.0' }), 'HTTP_VERSION_NOT_SUPPORTED', 505],
    ['HTTP/9.9', () => request({}, { startLine: 'GET /chat HTTP/9.9' }), 'HTTP_VERSION_NOT_SUPPORTED', 505],
    ['no Host', () => request({ Host: null }), 'MISSING_HOST', 400],
    ['an empty Host', () => request({ Host: '' }), 'MISSING_HOST', 400],
    ['two Host fields', () => request({}, { extra: [['host', 'other.example']] }), 'MISSING_HOST', 400],
    ['no Upgrade', () => request({ Upgrade: null }), 'NOT_UPGRADE', 426, UPGRADE_REQUIRED],
    ['Upgrade: h2c', () => request({ Upgrade: 'h2c' }), 'NOT_UPGRADE', 426, UPGRADE_REQUIRED],
    ['Upgrade: web socket', () => request({ Upgrade: 'web socket' }), 'NOT_UPGRADE', 426, UPGRADE_REQUIRED],
    ['Upgrade: websockets', () => request({ Upgrade: 'websockets' }), 'NOT_UPGRADE', 426, UPGRADE_REQUIRED],
    ['no Connection', () => request({ Connection: null }), 'CONNECTION_NOT_UPGRADE', 400],
    ['Connection: keep-alive', () => request({ Connection: 'keep-alive' }), 'CONNECTION_NOT_UPGRADE', 400],
    ['Connection: Upgraded', () => request({ Connection: 'Upgraded' }), 'CONNECTION_NOT_UPGRADE', 400],
    ['Connection not a token list', () => request({ Connection: 'keep-alive; Upgrade' }), 'CONNECTION_NOT_UPGRADE', 400],
    ['no key', () => request({ 'Sec-WebSocket-Key': null }), 'BAD_KEY', 400],
    ['a short key', () => request({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ=' }), 'BAD_KEY', 400],
    ['a key without padding', () => request({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ' }), 'BAD_KEY', 400],
    ['a key of 17 bytes', () => request({ 'Sec-WebSocket-Key': 'AAAAAAAAAAAAAAAAAAAAAAA=' }), 'BAD_KEY', 400],
    ['a key of 18 bytes', () => request({ 'Sec-WebSocket-Key': 'AAAAAAAAAAAAAAAAAAAAAAAA' }), 'BAD_KEY', 400],
    ['a non-canonical key', () => request({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZR==' }), 'BAD_KEY', 400],
    ['a base64url key', () => request({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBs-_Bub25jZQ==' }), 'BAD_KEY', 400],
    ['a key with inner space', () => request({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBs ZSBub25jZQ==' }), 'BAD_KEY', 400],
    ['two keys', () => request({}, { extra: [['Sec-WebSocket-Key', SAMPLE_KEY]] }), 'BAD_KEY', 400],
    ['no version', () => request({ 'Sec-WebSocket-Version': null }), 'UNSUPPORTED_VERSION', 426, { 'Sec-WebSocket-Version': '13' }],
    ['version 8', () => request({ 'Sec-WebSocket-Version': '8' }), 'UNSUPPORTED_VERSION', 426, { 'Sec-WebSocket-Version': '13' }],
    ['version 013', () => request({ 'Sec-WebSocket-Version': '013' }), 'UNSUPPORTED_VERSION', 426, { 'Sec-WebSocket-Version': '13' }],
    ['two version fields', () => request({}, { extra: [['Sec-WebSocket-Version', '13']] }), 'UNSUPPORTED_VERSION', 426, { 'Sec-WebSocket-Version': '13' }],
    ['a protocol that is not a token', () => request({ 'Sec-WebSocket-Protocol': 'chat, super chat' }), 'BAD_PROTOCOL_HEADER', 400],
    ['a repeated protocol', () => request({ 'Sec-WebSocket-Protocol': 'chat, superchat, chat' }), 'BAD_PROTOCOL_HEADER', 400],
    ['a protocol repeated across fields', () => request({}, { extra: [['Sec-WebSocket-Protocol', 'chat']] }), 'BAD_PROTOCOL_HEADER', 400],
    ['an empty protocol list', () => request({ 'Sec-WebSocket-Protocol': ' , ' }), 'BAD_PROTOCOL_HEADER', 400],
    ['an unparsable extension list', () => request({ 'Sec-WebSocket-Extensions': 'permessage-deflate;' }), 'BAD_EXTENSION_HEADER', 400],
    ['an empty extension list', () => request({ 'Sec-WebSocket-Extensions': '' }), 'BAD_EXTENSION_HEADER', 400],
    ['a foreign origin', () => request(), 'ORIGIN_FORBIDDEN', 403, {}, { origins: ['https://good.example'] }],
    ['no origin with an allow-list', () => request({ Origin: null }), 'ORIGIN_FORBIDDEN', 403, {}, { origins: ['http://example.com'] }],
    ['an origin the predicate refuses', () => request(), 'ORIGIN_FORBIDDEN', 403, {}, { origins: () => false }],
    ['a subdomain of an allowed origin', () => request({ Origin: 'http://evil.example.com' }), 'ORIGIN_FORBIDDEN', 403, {}, { origins: ['http://example.com'] }],
  ];
  for (const [name, head, code, status, headers, options] of cases) {
    test(`${name} → ${code} ${status}`, () => {
      expectHandshakeError(() => validateClientRequest(head(), options), code, status, headers);
    });
  }
});

describe('validateClientRequest: accepted variants', () => {
  const accepts: Array<[string, () => HttpRequestHead, ServerHandshakeOptions?]> = [
    // RFC 9112 §2.3: a later minor version of HTTP/1 is read as HTTP/1.1.
    ['HTTP/1.2', () => request({}, { startLine: 'GET /chat HTTP/1.2' })],
    ['HTTP/1.9', () => request({}, { startLine: 'GET /chat HTTP/1.9' })],
    ['Upgrade in another case', () => request({ Upgrade: 'WebSocket' })],
    ['Upgrade as a list with versions', () => request({ Upgrade: 'HTTP/2.0, websocket' })],
    ['Connection as a list', () => request({ Connection: 'keep-alive, Upgrade' })],
    ['Connection in upper case', () => request({ Connection: 'UPGRADE' })],
    ['padding around the version', () => request({ 'Sec-WebSocket-Version': ' 13\t' })],
    ['an allowed origin in another case', () => request({ Origin: 'HTTP://Example.COM' }), { origins: ['http://example.com'] }],
    ['an origin the predicate allows', () => request(), { origins: (o) => o === 'http://example.com' }],
  ];
  for (const [name, head, options] of accepts) {
    test(`accepts ${name}`, () => {
      assert.equal(validateClientRequest(head(), options).accept, SAMPLE_ACCEPT);
    });
  }

  test('the origin predicate sees undefined when Origin is absent', () => {
    const seen: Array<string | undefined> = [];
    const accepted = validateClientRequest(request({ Origin: null }), {
      origins: (o) => {
        seen.push(o);
        return true;
      },
    });
    assert.deepEqual(seen, [undefined]);
    assert.equal(accepted.origin, undefined);
  });

  test('reports the offered extensions in order, untouched', () => {
    const accepted = validateClientRequest(
      request({ 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits, permessage-deflate, x-foo; a="1"' }),
    );
    const expected: ExtensionOffer[] = [
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
      { name: 'permessage-deflate', params: [] },
      { name: 'x-foo', params: [['a', '1']] },
    ];
    assert.deepEqual(accepted.extensions, expected);
  });

  test('extension fields repeated across lines are combined', () => {
    const accepted = validateClientRequest(
      request({ 'Sec-WebSocket-Extensions': 'a' }, { extra: [['Sec-WebSocket-Extensions', 'b; c']] }),
    );
    assert.deepEqual(accepted.extensions, [
      { name: 'a', params: [] },
      { name: 'b', params: [['c', true]] },
    ]);
  });
});

describe('subprotocol selection', () => {
  const offered = (value: string | null) => request({ 'Sec-WebSocket-Protocol': value });

  test('an array picks the first of the server’s list the client offered', () => {
    assert.equal(validateClientRequest(offered('a, b, c'), { protocols: ['c', 'b'] }).protocol, 'c');
    assert.equal(validateClientRequest(offered('a, b, c'), { protocols: ['x', 'b', 'a'] }).protocol, 'b');
    assert.equal(validateClientRequest(offered('a, b, c'), { protocols: ['x'] }).protocol, undefined);
    assert.equal(validateClientRequest(offered('a, b, c'), { protocols: [] }).protocol, undefined);
    assert.equal(validateClientRequest(offered('a, b, c')).protocol, undefined);
    assert.equal(validateClientRequest(offered('Chat'), { protocols: ['chat'] }).protocol, undefined, 'case-sensitive');
  });

  test('a chooser sees the offer in client order; answers the client did not offer are ignored', () => {
    let seen: readonly string[] = [];
    const pick = (answer: string | null | undefined) => (list: readonly string[]) => {
      seen = list;
      return answer;
    };
    assert.equal(validateClientRequest(offered('a, b,, c'), { protocols: pick('b') }).protocol, 'b');
    assert.deepEqual(seen, ['a', 'b', 'c']);
    assert.equal(validateClientRequest(offered('a, b'), { protocols: pick('z') }).protocol, undefined);
    assert.equal(validateClientRequest(offered('a, b'), { protocols: pick('') }).protocol, undefined);
    assert.equal(validateClientRequest(offered('a, b'), { protocols: pick(null) }).protocol, undefined);
    assert.equal(validateClientRequest(offered('a, b'), { protocols: pick(undefined) }).protocol, undefined);
  });

  test('without an offer there is no protocol and the chooser is not asked', () => {
    let called = false;
    const accepted = validateClientRequest(offered(null), {
      protocols: () => {
        called = true;
        return 'chat';
      },
    });
    assert.equal(called, false);
    assert.equal(accepted.protocol, undefined);
    assert.deepEqual(accepted.offeredProtocols, []);
  });

  test('no selected protocol means no Sec-WebSocket-Protocol in the response', () => {
    const response = buildServerResponse({ accept: SAMPLE_ACCEPT, protocol: undefined });
    assert.ok(!response.toLowerCase().includes('sec-websocket-protocol'));
  });
});

describe('buildServerResponse', () => {
  test('adds accepted extensions and extra headers', () => {
    assert.equal(
      buildServerResponse({
        accept: SAMPLE_ACCEPT,
        extensions: [{ name: 'permessage-deflate', params: [['server_no_context_takeover', true], ['client_max_window_bits', '10']] }],
        headers: { 'Set-Cookie': 'id=1; Path=/' },
      }),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n` +
        'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10\r\n' +
        'Set-Cookie: id=1; Path=/\r\n\r\n',
    );
    assert.equal(
      buildServerResponse({ accept: SAMPLE_ACCEPT, protocol: '', extensions: [] }),
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n\r\n`,
    );
  });

  test('refuses invalid input with TypeError', () => {
    assert.throws(() => buildServerResponse({ accept: 'x\r\nEvil: 1' }), TypeError);
    assert.throws(() => buildServerResponse({ accept: SAMPLE_KEY }), TypeError);
    assert.throws(() => buildServerResponse({ accept: SAMPLE_ACCEPT, protocol: 'a b' }), TypeError);
    assert.throws(() => buildServerResponse({ accept: SAMPLE_ACCEPT, headers: { 'X-A': 'a\rb' } }), TypeError);
    assert.throws(() => buildServerResponse({ accept: SAMPLE_ACCEPT, headers: { 'sec-websocket-accept': SAMPLE_ACCEPT } }), TypeError);
    assert.throws(() => buildServerResponse({ accept: SAMPLE_ACCEPT, headers: { Connection: 'close' } }), TypeError);
    assert.throws(() => buildServerResponse({ accept: SAMPLE_ACCEPT, extensions: [{ name: 'x', params: [['a', '']] }] }), TypeError);
  });
});

describe('buildRejectResponse', () => {
  test('a plain-text response with the reason phrase, UTF-8 byte length and Connection: close', () => {
    const message = 'Sec-WebSocket-Key is invalid: é';
    const text = buildRejectResponse(400, message);
    assert.equal(
      text,
      'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        `Content-Length: ${message.length + 1}\r\n\r\n${message}`,
    );
    const bytes = Buffer.from(text, 'utf8');
    const parser = new HttpHeadParser('response');
    const head = parser.push(bytes);
    assert.ok(head);
    assert.equal(head.status, 400);
    assert.equal(head.statusText, 'Bad Request');
    assert.equal(parser.rest.length, Number(head.headers.get('content-length')));
    assert.equal(Buffer.from(parser.rest).toString('utf8'), message);
  });

  test('turns each server-side HandshakeError into the right response', () => {
    const cases: Array<[HttpRequestHead, string]> = [
      [request({}, { startLine: 'PUT /chat HTTP/1.1' }), 'HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n'],
      [request({ Upgrade: null }), 'HTTP/1.1 426 Upgrade Required\r\nConnection: Upgrade, close\r\n'],
      [request({ 'Sec-WebSocket-Version': '8' }), 'HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\n'],
      [request({ Host: null }), 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n'],
      [request({}, { startLine: 'GET /chat HTTP/2.0' }), 'HTTP/1.1 505 HTTP Version Not Supported\r\nConnection: close\r\n'],
    ];
    for (const [head, start] of cases) {
      const err = expectHandshakeErrorAny(() => validateClientRequest(head));
      const text = buildRejectResponse(err.status, err.message, err.headers);
      assert.ok(text.startsWith(start), text);
      const parsed = parseResponse(text);
      for (const [name, value] of Object.entries(err.headers)) {
        if (name !== 'Connection') assert.equal(parsed.headers.get(name.toLowerCase()), value);
      }
    }
    const upgrade = parseResponse(buildRejectResponse(426, 'upgrade', { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13' }));
    assert.deepEqual(upgrade.rawHeaders, [
      ['Connection', 'Upgrade, close'],
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Length', '7'],
      ['Upgrade', 'websocket'],
      ['Sec-WebSocket-Version', '13'],
    ]);
    const allow = parseResponse(buildRejectResponse(405, '', { Allow: 'GET' }));
    assert.equal(allow.headers.get('allow'), 'GET');
    assert.equal(allow.headers.get('content-length'), '0');
  });

  test('reason phrases, including an empty one for unregistered codes', () => {
    assert.ok(buildRejectResponse(403, '').startsWith('HTTP/1.1 403 Forbidden\r\n'));
    assert.ok(buildRejectResponse(431, '').startsWith('HTTP/1.1 431 Request Header Fields Too Large\r\n'));
    assert.ok(buildRejectResponse(503, '').startsWith('HTTP/1.1 503 Service Unavailable\r\n'));
    assert.ok(buildRejectResponse(499, '').startsWith('HTTP/1.1 499 \r\n'));
    assert.equal(parseResponse(buildRejectResponse(499, '')).status, 499);
  });

  test('Content-Type may be replaced; Connection: close is not doubled', () => {
    const head = parseResponse(buildRejectResponse(401, '{}', { 'content-type': 'application/json', connection: 'Close' }));
    assert.equal(head.headers.get('content-type'), 'application/json');
    assert.equal(head.headers.get('connection'), 'Close');
    assert.equal(head.rawHeaders.length, 3);
  });

  test('refuses statuses without a body and computed or invalid headers', () => {
    for (const status of [101, 199, 204, 304, 600, 400.5, NaN]) {
      assert.throws(() => buildRejectResponse(status, 'x'), RangeError, String(status));
    }
    assert.throws(() => buildRejectResponse(400, 'x', { 'Content-Length': '1' }), TypeError);
    assert.throws(() => buildRejectResponse(400, 'x', { 'transfer-encoding': 'chunked' }), TypeError);
    assert.throws(() => buildRejectResponse(400, 'x', { 'X-A': 'a\r\nb' }), TypeError);
    assert.throws(() => buildRejectResponse(400, 'x', { Connection: 'a\r\nb' }), TypeError);
  });
});

function expectHandshakeErrorAny(fn: () => unknown): HandshakeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof HandshakeError) return err;
    throw err;
  }
  assert.fail('no HandshakeError');
}

describe('validateServerResponse', () => {
  const expected = { key: SAMPLE_KEY, protocols: ['chat', 'superchat'], extensions: [{ name: 'permessage-deflate', params: [] }] };

  test('accepts a minimal response; protocol is "" when none was selected', () => {
    assert.deepEqual(validateServerResponse(response(), expected), { protocol: '', extensions: [] });
    assert.deepEqual(validateServerResponse(response(), { key: SAMPLE_KEY }), { protocol: '', extensions: [] });
  });

  test('accepts case variants of Upgrade and Connection lists', () => {
    const head = response({ Upgrade: 'WebSocket', Connection: 'keep-alive, UPGRADE' });
    assert.deepEqual(validateServerResponse(head, expected), { protocol: '', extensions: [] });
  });

  test('returns the accepted extensions', () => {
    const head = response({ 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits=10' });
    assert.deepEqual(validateServerResponse(head, expected).extensions, [
      { name: 'permessage-deflate', params: [['client_max_window_bits', '10']] },
    ]);
  });

  const cases: Array<[string, () => HttpResponseHead, HandshakeErrorCode, number, Parameters<typeof validateServerResponse>[1]?]> = [
    ['status 200', () => response({}, 'HTTP/1.1 200 OK'), 'UNEXPECTED_STATUS', 200],
    ['status 403', () => response({}, 'HTTP/1.1 403 Forbidden'), 'UNEXPECTED_STATUS', 403],
    ['status 426', () => response({}, 'HTTP/1.1 426 Upgrade Required'), 'UNEXPECTED_STATUS', 426],
    ['no Upgrade', () => response({ Upgrade: null }), 'NOT_UPGRADE', 101],
    ['Upgrade: h2c', () => response({ Upgrade: 'h2c' }), 'NOT_UPGRADE', 101],
    ['Upgrade as a list', () => response({ Upgrade: 'websocket, h2c' }), 'NOT_UPGRADE', 101],
    ['no Connection', () => response({ Connection: null }), 'CONNECTION_NOT_UPGRADE', 101],
    ['Connection: close', () => response({ Connection: 'close' }), 'CONNECTION_NOT_UPGRADE', 101],
    ['no accept', () => response({ 'Sec-WebSocket-Accept': null }), 'BAD_ACCEPT', 101],
    ['a wrong accept', () => response({ 'Sec-WebSocket-Accept': computeAccept(generateKey()) }), 'BAD_ACCEPT', 101],
    ['the key echoed as accept', () => response({ 'Sec-WebSocket-Accept': SAMPLE_KEY }), 'BAD_ACCEPT', 101],
    ['accept in another case', () => response({ 'Sec-WebSocket-Accept': SAMPLE_ACCEPT.toLowerCase() }), 'BAD_ACCEPT', 101],
    ['a protocol not offered', () => response({ 'Sec-WebSocket-Protocol': 'other' }), 'UNEXPECTED_PROTOCOL', 101],
    ['a protocol in another case', () => response({ 'Sec-WebSocket-Protocol': 'Chat' }), 'UNEXPECTED_PROTOCOL', 101],
    ['a protocol list', () => response({ 'Sec-WebSocket-Protocol': 'chat, superchat' }), 'UNEXPECTED_PROTOCOL', 101],
    ['an empty protocol', () => response({ 'Sec-WebSocket-Protocol': '' }), 'UNEXPECTED_PROTOCOL', 101],
    ['a protocol when none was offered', () => response({ 'Sec-WebSocket-Protocol': 'chat' }), 'UNEXPECTED_PROTOCOL', 101, { key: SAMPLE_KEY }],
    ['an extension not offered', () => response({ 'Sec-WebSocket-Extensions': 'x-foo' }), 'UNEXPECTED_EXTENSION', 101],
    ['an offered and an unoffered extension', () => response({ 'Sec-WebSocket-Extensions': 'permessage-deflate, x-foo' }), 'UNEXPECTED_EXTENSION', 101],
    ['an extension when none was offered', () => response({ 'Sec-WebSocket-Extensions': 'permessage-deflate' }), 'UNEXPECTED_EXTENSION', 101, { key: SAMPLE_KEY }],
    ['an unparsable extension list', () => response({ 'Sec-WebSocket-Extensions': 'permessage-deflate; =' }), 'BAD_EXTENSION_HEADER', 101],
  ];
  for (const [name, head, code, status, exp] of cases) {
    test(`${name} → ${code} (status ${status})`, () => {
      expectHandshakeError(() => validateServerResponse(head(), exp ?? expected), code, status);
    });
  }
});

describe('round trip (property)', () => {
  const TCHARS = [..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"];
  const token = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 8 });
  const visible = (min: number) =>
    fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: min, maxLength: 20 });
  const fieldValue = fc.oneof(fc.constant(''), fc.tuple(visible(1), fc.string({ unit: fc.constantFrom(' ', '\t', 'a', ':') }), visible(1)).map((p) => p.join('')));
  const offer: fc.Arbitrary<ExtensionOffer> = fc.record(
    { name: token, params: fc.array(fc.tuple(token, fc.oneof(fc.constant<true>(true), token)), { maxLength: 3 }) },
    { noNullPrototype: true },
  );
  const reserved = new Set([
    'host', 'upgrade', 'connection', 'origin', 'sec-websocket-key', 'sec-websocket-version',
    'sec-websocket-protocol', 'sec-websocket-extensions', 'content-length', 'transfer-encoding',
  ]);
  const extraHeaders = fc
    .uniqueArray(fc.tuple(token.filter((n) => !reserved.has(n.toLowerCase()) && n !== '__proto__'), fieldValue), {
      selector: ([n]) => n.toLowerCase(),
      maxLength: 4,
    })
    .map((entries) => Object.fromEntries(entries));

  test('buildClientRequest → HttpHeadParser → validateClientRequest → buildServerResponse → validateServerResponse', () => {
    fc.assert(
      fc.property(
        fc.record({
          host: fc.tuple(visible(1), fc.option(fc.integer({ min: 1, max: 65535 }))).map(([h, p]) => (p === null ? h : `${h}:${p}`)),
          path: fc.option(visible(0).map((p) => '/' + p), { nil: undefined }),
          protocols: fc.uniqueArray(token, { maxLength: 4 }),
          extensions: fc.array(offer, { maxLength: 3 }),
          origin: fc.option(visible(1), { nil: undefined }),
          headers: extraHeaders,
          serverProtocols: fc.uniqueArray(token, { maxLength: 4 }),
          acceptMask: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
          cuts: fc.array(fc.nat(), { maxLength: 4 }),
        }),
        (o) => {
          // The server may also support some of what the client offers.
          const serverProtocols = [...o.serverProtocols, ...o.protocols.filter((_, i) => i % 2 === 1)];
          const built = buildClientRequest({
            host: o.host,
            path: o.path,
            protocols: o.protocols,
            extensions: o.extensions,
            origin: o.origin,
            headers: o.headers,
          });

          const bytes = Buffer.from(built.request, 'latin1');
          const parser = new HttpHeadParser('request');
          const cuts = [...new Set(o.cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          let head: HttpRequestHead | null = null;
          let from = 0;
          for (const cut of [...cuts, bytes.length]) {
            head = parser.push(bytes.subarray(from, cut)) ?? head;
            from = cut;
          }
          assert.ok(head);
          assert.equal(parser.rest.length, 0);
          assert.equal(head.target, o.path ?? '/');
          for (const [name, value] of Object.entries(o.headers)) {
            assert.equal(head.headers.get(name.toLowerCase()), value);
          }

          const accepted = validateClientRequest(head, {
            protocols: serverProtocols,
            origins: o.origin === undefined ? undefined : [o.origin.toUpperCase()],
          });
          const selected = serverProtocols.find((p) => o.protocols.includes(p));
          assert.deepEqual(accepted, {
            key: built.key,
            accept: computeAccept(built.key),
            protocol: selected,
            offeredProtocols: o.protocols,
            extensions: o.extensions,
            origin: o.origin,
            host: o.host,
          });

          const acceptedExtensions = accepted.extensions.filter((_, i) => o.acceptMask[i]);
          const responseText = buildServerResponse({
            accept: accepted.accept,
            protocol: accepted.protocol,
            extensions: acceptedExtensions,
          });
          const result = validateServerResponse(parseResponse(responseText), {
            key: built.key,
            protocols: o.protocols,
            extensions: o.extensions,
          });
          assert.deepEqual(result, { protocol: selected ?? '', extensions: acceptedExtensions });
        },
      ),
      { numRuns: 300 },
    );
  });
});
