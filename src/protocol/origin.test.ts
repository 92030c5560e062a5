import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError } from './errors.js';
import { validateClientRequest } from './handshake.js';
import type { HttpRequestHead } from './http-head.js';
import { isSameOrigin, parseOrigin, sameOrigin } from './origin.js';

test('isSameOrigin compares the Origin host and port with the Host header, default ports filled in', () => {
  const cases: Array<[origin: string, host: string, same: boolean]> = [
    ['http://127.0.0.1:8080', '127.0.0.1:8080', true],
    ['http://example.com', 'example.com', true],
    ['http://example.com', 'example.com:80', true],
    ['http://example.com:80', 'example.com', true],
    ['https://example.com', 'example.com', true],
    ['https://example.com', 'example.com:443', true],
    ['https://EXAMPLE.com', 'example.COM', true],
    ['http://[::1]:8080', '[::1]:8080', true],
    // Behind a TLS-terminating proxy the scheme differs from the server's; host and port decide.
    ['https://app.example:8443', 'app.example:8443', true],
    ['http://evil.example', '127.0.0.1:8080', false],
    ['http://127.0.0.1:8081', '127.0.0.1:8080', false],
    ['http://127.0.0.1', '127.0.0.1:8080', false],
    ['https://example.com', 'example.com:80', false],
    ['http://example.com', 'example.com:443', false],
    ['http://localhost:8080', '127.0.0.1:8080', false],
    ['http://sub.example.com', 'example.com', false],
    ['null', '127.0.0.1:8080', false],
    ['file:///tmp/x.html', '127.0.0.1:8080', false],
    ['not an origin', '127.0.0.1:8080', false],
    ['http://example.com', 'example.com/path', false],
    ['http://example.com', 'user@example.com', false],
    ['http://example.com', '', false],
  ];
  for (const [origin, host, same] of cases) assert.equal(isSameOrigin(origin, host), same, `${origin} vs ${host}`);
});

test('parseOrigin normalizes an origin and says what is wrong with anything else', () => {
  assert.equal(parseOrigin('https://App.Example'), 'https://app.example');
  assert.equal(parseOrigin('https://app.example:443'), 'https://app.example');
  assert.equal(parseOrigin('http://app.example:8080/'), 'http://app.example:8080');
  assert.throws(() => parseOrigin('app.example'), { name: 'TypeError', message: /'app\.example' is not an origin: write scheme:\/\/host\[:port\]/ });
  assert.throws(() => parseOrigin('ftp://app.example'), /the scheme must be http or https/);
  assert.throws(() => parseOrigin('https://app.example/chat'), /no path, query or credentials \(did you mean 'https:\/\/app\.example'\?\)/);
  assert.throws(() => parseOrigin('https://app.example?x'), /no path/);
  assert.throws(() => parseOrigin('https://me@app.example'), /credentials/);
});

test("sameOrigin(): browsers from the server's own origin or the list, and clients without Origin", () => {
  const check = sameOrigin(['https://app.example', 'HTTP://Other.example:8080']);
  assert.equal(check(undefined, '127.0.0.1:8080'), true, 'no Origin: not a browser');
  assert.equal(check('http://127.0.0.1:8080', '127.0.0.1:8080'), true);
  assert.equal(check('https://app.example', '127.0.0.1:8080'), true);
  assert.equal(check('https://APP.example', '127.0.0.1:8080'), true);
  assert.equal(check('http://other.example:8080', '127.0.0.1:8080'), true);
  assert.equal(check('http://other.example', '127.0.0.1:8080'), false);
  assert.equal(check('http://evil.example', '127.0.0.1:8080'), false);
  assert.equal(check('null', '127.0.0.1:8080'), false);
  assert.equal(sameOrigin(['*'])('http://evil.example', '127.0.0.1:8080'), true);
  assert.throws(() => sameOrigin(['app.example']), TypeError);
});

function upgradeRequest(headers: Record<string, string>): HttpRequestHead {
  const all: Record<string, string> = {
    host: '127.0.0.1:8080',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'sec-websocket-version': '13',
    ...headers,
  };
  return { method: 'GET', target: '/ws', version: '1.1', headers: new Map(Object.entries(all)), rawHeaders: Object.entries(all) };
}

test('validateClientRequest with origins: sameOrigin() refuses another origin with 403 and accepts its own', () => {
  const options = { origins: sameOrigin() };
  assert.equal(validateClientRequest(upgradeRequest({ origin: 'http://127.0.0.1:8080' }), options).origin, 'http://127.0.0.1:8080');
  assert.equal(validateClientRequest(upgradeRequest({}), options).origin, undefined);
  assert.throws(
    () => validateClientRequest(upgradeRequest({ origin: 'http://evil.example' }), options),
    (error: unknown) => error instanceof HandshakeError && error.status === 403 && error.message === 'origin http://evil.example is not allowed',
  );
  // The predicate sees the Host of the request it judges.
  assert.throws(() => validateClientRequest(upgradeRequest({ origin: 'http://127.0.0.1:8080', host: '127.0.0.1:9090' }), options), HandshakeError);
});
