import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminGate, adminAccess, INSPECTOR_COOKIE, isLoopbackAddress, isLoopbackHostHeader } from './admin.js';

const SECRET = 'correct-horse-battery-staple';

test('isLoopbackAddress: 127.0.0.0/8, ::1 (mapped too) and localhost; everything else is beyond loopback', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST', 'app.localhost']) {
    assert.equal(isLoopbackAddress(host), true, host);
  }
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.10', '::ffff:10.0.0.1', 'example.com', 'localhost.example.com', '128.0.0.1']) {
    assert.equal(isLoopbackAddress(host), false, host);
  }
});

test('isLoopbackHostHeader reads the name of a Host header, with or without a port', () => {
  assert.equal(isLoopbackHostHeader('127.0.0.1:8080'), true);
  assert.equal(isLoopbackHostHeader('localhost'), true);
  assert.equal(isLoopbackHostHeader('[::1]:8080'), true);
  assert.equal(isLoopbackHostHeader('evil.example:8080'), false);
  assert.equal(isLoopbackHostHeader(undefined), false);
  assert.equal(isLoopbackHostHeader('bad host'), false);
});

test('adminAccess: a secret turns a surface on behind it; without one, loopback opens it and beyond loopback only an explicit yes', () => {
  assert.equal(adminAccess(undefined, SECRET, false), 'secret');
  assert.equal(adminAccess(undefined, SECRET, true), 'secret');
  assert.equal(adminAccess(true, SECRET, false), 'secret');
  assert.equal(adminAccess(false, SECRET, true), 'off');
  assert.equal(adminAccess(undefined, undefined, true), 'open');
  assert.equal(adminAccess(false, undefined, true), 'off');
  assert.equal(adminAccess(undefined, undefined, false), 'off');
  assert.equal(adminAccess(true, undefined, false), 'open');
});

test('AdminGate with a secret: the bearer secret, or the session cookie where asked; 401 otherwise', () => {
  const gate = new AdminGate(SECRET, true);
  assert.equal(gate.check({ authorization: `Bearer ${SECRET}` }, false), null);
  assert.equal(gate.check({ authorization: `bearer  ${SECRET} ` }, false), null);
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${SECRET}` }, { authorization: `Bearer ${SECRET}x` }]) {
    const refusal = gate.check(headers, false);
    assert.equal(refusal?.status, 401);
    assert.equal(refusal?.headers?.['WWW-Authenticate'], 'Bearer realm="hotline"');
  }
  const cookie = gate.sessionCookie(false);
  assert.match(cookie, new RegExp(`^${INSPECTOR_COOKIE}=[\\w-]+; Path=/inspect; HttpOnly; SameSite=Strict$`));
  assert.ok(!cookie.includes(SECRET), 'the cookie is not the secret');
  assert.match(gate.sessionCookie(true), /; Secure$/);
  const session = cookie.split(';')[0]!;
  assert.equal(gate.check({ cookie: `a=b; ${session}; c=d` }, true), null);
  assert.equal(gate.check({ cookie: session }, false)?.status, 401, 'the cookie does not open /metrics');
  assert.equal(gate.check({ cookie: `${INSPECTOR_COOKIE}=forged` }, true)?.status, 401);
  // A session cookie of another secret is worthless here.
  const other = new AdminGate('another-secret-of-16+', true).sessionCookie(false).split(';')[0]!;
  assert.equal(gate.check({ cookie: other }, true)?.status, 401);
  assert.equal(gate.isSecret(SECRET), true);
  assert.equal(gate.isSecret(''), false);
});

test('AdminGate without a secret: open, but on a loopback server only to a loopback Host (DNS rebinding)', () => {
  const local = new AdminGate(undefined, true);
  assert.equal(local.check({ host: '127.0.0.1:8080' }, true), null);
  assert.equal(local.check({ host: 'localhost:8080' }, false), null);
  const refusal = local.check({ host: 'evil.example:8080' }, true);
  assert.equal(refusal?.status, 403);
  assert.match(refusal!.message!, /listens on loopback only/);
  assert.equal(new AdminGate(undefined, false).check({ host: 'server.example:8080' }, true), null, 'beyond loopback and turned on: open');
  assert.equal(local.isSecret(''), false);
});
