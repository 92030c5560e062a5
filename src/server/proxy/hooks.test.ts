// The connect hook composed with what ran before it (a token's check): the backend may
// refuse, keep or amend the identity, and is not asked about what was refused already.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChannelIdentity } from '../../channels/index.js';
import type { UpgradeRequest } from '../../node/server.js';
import { Logger } from '../log.js';
import { ProxyHooks, type Authenticate } from './hooks.js';

let server: Server;
let url: string;
/** What the backend answers next, and the bodies it was sent. */
let answer: unknown = { allow: true };
const sent: Array<Record<string, unknown>> = [];

before(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      sent.push(JSON.parse(text) as Record<string, unknown>);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/connect`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const req: UpgradeRequest = { url: '/ws?x=1', headers: { authorization: 'Bearer t', 'x-secret': 'no' }, socket: { remoteAddress: '10.0.0.7' } };
const token: ChannelIdentity<unknown> = {
  auth: { sub: 'ada', info: { name: 'Ada' }, channels: ['room:*'] },
  user: 'ada',
  member: { id: 'ada', info: { name: 'Ada' } },
  expiresAt: 2_000_000_000_000,
};

async function withHooks(body: (hooks: ProxyHooks) => Promise<void>): Promise<void> {
  const hooks = new ProxyHooks({ connect: { url, headers: ['Authorization'] } }, new Logger('silent'));
  try {
    await body(hooks);
  } finally {
    hooks.close();
  }
}

test('after a token: the backend is told the user, an allow keeps the identity, named fields replace it', async () => {
  await withHooks(async (hooks) => {
    const authenticate = hooks.authenticate(async () => token)!;
    answer = { allow: true };
    sent.length = 0;
    assert.deepEqual(await authenticate(req, 'n.1'), token);
    assert.deepEqual(sent, [{ client: 'n.1', transport: 'websocket', user: 'ada', headers: { authorization: 'Bearer t' }, url: '/ws?x=1', address: '10.0.0.7' }]);
    answer = { allow: true, info: { name: 'Ada L.' }, expiresAt: 1_900_000_000_000 };
    assert.deepEqual(await authenticate(req, 'n.2'), {
      auth: { sub: 'ada', info: { name: 'Ada L.' }, channels: ['room:*'], exp: 1_900_000_000 },
      user: 'ada',
      member: { id: 'ada', info: { name: 'Ada L.' } },
      expiresAt: 1_900_000_000_000,
    });
  });
});

test('behind trusted proxies the backend is told the client address they forwarded, not the proxy’s', async () => {
  await withHooks(async (hooks) => {
    const authenticate = hooks.authenticate()!;
    answer = { allow: true };
    sent.length = 0;
    await authenticate({ ...req, clientAddress: '203.0.113.9' }, 'n.3');
    assert.equal(sent[0]?.['address'], '203.0.113.9');
  });
});

test('a refusal before the hook is final and costs the backend nothing; the backend’s own refusal has its status', async () => {
  await withHooks(async (hooks) => {
    const refusing: Authenticate = async () => ({ reject: { status: 401, message: 'bad token' } });
    sent.length = 0;
    assert.deepEqual(await hooks.authenticate(refusing)!(req, 'n.3'), { reject: { status: 401, message: 'bad token' } });
    assert.equal(sent.length, 0);
    answer = { allow: false, reason: 'banned' };
    assert.deepEqual(await hooks.authenticate()!(req, 'n.4'), { reject: { status: 403, message: 'banned' } });
    answer = { allow: true, user: 'lin' };
    assert.deepEqual(await hooks.authenticate()!(req, 'n.5'), { auth: { sub: 'lin' }, user: 'lin', member: { id: 'lin' } });
    answer = { allow: true };
    assert.deepEqual(await hooks.authenticate()!(req, 'n.6'), { auth: undefined });
  });
});

test('without a connect hook, what ran before is the whole decision', () => {
  const hooks = new ProxyHooks({ rpc: { url } }, new Logger('silent'));
  try {
    const before: Authenticate = async () => token;
    assert.equal(hooks.authenticate(before), before);
    assert.equal(hooks.authenticate(), undefined);
    assert.deepEqual(hooks.keepHeaders, ['cookie', 'authorization', 'origin', 'user-agent']);
    assert.throws(() => new ProxyHooks({ rpc: { url: 'ftp://x/rpc' } }, new Logger('silent')), /must be an http: or https: URL/);
  } finally {
    hooks.close();
  }
});
