// The deployment guide's nginx configuration, run as written (ports and certificate files
// aside) by a real nginx in front of a real `hotline serve`: WebSocket upgrades pass through
// it over TLS, the page's origin is accepted through the forwarded Host and another site's
// refused, and X-Forwarded-For reaches hotline when it trusts one proxy.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { extractBlocks } from './support/docs-extract.js';
import { startCli } from './support/cli-server.js';
import { haveNginx, Nginx, testBlock } from './support/nginx.js';
import { makeCertificate } from './support/tls-certificate.js';
import { ROOT } from './support/packed.js';

const GUIDE = 'docs/guides/deployment.md';
const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

function nginxBlocks(): string[] {
  return extractBlocks(readFileSync(join(ROOT, GUIDE), 'utf8'), GUIDE)
    .filter((block) => block.lang === 'nginx')
    .map((block) => block.text);
}

/** Opens a WebSocket through nginx; resolves with it open, or with the refusal's status. */
function open(url: string, origin: string, protocol?: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket } | { status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocol === undefined ? [] : [protocol], { origin, headers: { host: 'chat.example', ...headers }, rejectUnauthorized: false });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
    });
    ws.once('error', reject);
  });
}

test('the guide has one nginx block, and nginx -t accepts it', (t) => {
  if (!haveNginx(t)) return;
  const blocks = nginxBlocks();
  assert.equal(blocks.length, 1);
  assert.equal(testBlock(blocks[0]!), null);
});

test("the guide's nginx block in front of hotline serve: upgrades over TLS, origins through the forwarded Host, the client's address", async (t) => {
  if (!haveNginx(t)) return;
  const certificate = makeCertificate('the nginx deployment test');
  if (certificate === null) return t.skip('openssl is missing');
  cleanup.push(async () => rmSync(certificate.dir, { recursive: true, force: true }));
  const server = await startCli(0, ['--trust-proxy', '1', '--log-level', 'debug']);
  cleanup.push(() => server.stop('SIGKILL'));
  const nginx = await Nginx.start(nginxBlocks()[0]!, { upstream: server.port, cert: join(certificate.dir, 'cert.pem'), key: join(certificate.dir, 'key.pem') });
  cleanup.push(() => nginx.stop());

  // A client that claims an address of its own: nginx appends the one it saw, and hotline,
  // trusting one proxy, believes only that.
  const echo = await open(`wss://127.0.0.1:${nginx.port}/echo`, 'https://chat.example', undefined, { 'x-forwarded-for': '203.0.113.9' });
  assert.ok('ws' in echo, `the upgrade passed through nginx (status ${'status' in echo ? echo.status : ''})`);
  const reply = new Promise<string>((resolve) => echo.ws.once('message', (data) => resolve(String(data))));
  echo.ws.send('through nginx');
  assert.equal(await reply, 'through nginx');
  echo.ws.close();

  const channels = await open(`wss://127.0.0.1:${nginx.port}/ws`, 'https://chat.example', 'hotline.v1');
  assert.ok('ws' in channels);
  assert.equal(channels.ws.protocol, 'hotline.v1', 'the subprotocol crossed the proxy');
  const pong = new Promise<string>((resolve) => channels.ws.once('message', (data) => resolve(String(data))));
  channels.ws.send('{"op":"ping","id":1}');
  assert.match(await pong, /"id":1/);
  channels.ws.close();

  const foreign = await open(`wss://127.0.0.1:${nginx.port}/ws`, 'https://evil.example', 'hotline.v1');
  assert.deepEqual('status' in foreign ? foreign.status : 'opened', 403, "another site's page is refused through nginx as without it");

  assert.match(server.output(), /"event":"open","endpoint":"\/echo","connection":1,"address":"127\.0\.0\.1"/, 'the address nginx saw, from X-Forwarded-For');
  assert.doesNotMatch(server.output(), /203\.0\.113\.9/, 'never the one the client claimed');
});
