// wss end to end with a certificate made at test time (openssl): serve({ tls }), hotline's
// Node WebSocket and the SDK over wss, verification on by default (1015 without the CA),
// and `hotline serve --tls-cert/--tls-key` from the built CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../src/client/index.js';
import { WebSocket } from '../src/node/client.js';
import type { CloseEvent } from '../src/node/events.js';
import { channelsEndpoint } from '../src/server/channels.js';
import { echoHandlers } from '../src/server/echo.js';
import { serve, type RunningServer } from '../src/server/serve.js';
import { CLI, requireBuiltCli } from './support/cli-server.js';
import { waitFor } from './support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'hotline-tls-'));
const certFile = join(dir, 'cert.pem');
const keyFile = join(dir, 'key.pem');
let cert: Buffer;
let key: Buffer;
let server: RunningServer;

before(async () => {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'ignore' });
  cert = readFileSync(certFile);
  key = readFileSync(keyFile);
  const channels = channelsEndpoint();
  await channels.ready;
  server = await serve({ port: 0, tls: { cert, key }, websocket: { '/echo': echoHandlers, '/ws': channels.server } });
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the Node WebSocket over wss: echoes with the CA, and 1015 without it', async () => {
  assert.equal(server.secure, true);
  const trusted = new WebSocket(`wss://127.0.0.1:${server.port}/echo`, [], { tls: { ca: cert } });
  await once(trusted, 'open');
  trusted.send('over tls');
  const [message] = (await once(trusted, 'message')) as [{ data: string }];
  assert.equal(message.data, 'over tls');
  trusted.close(1000);
  await once(trusted, 'close');

  const untrusted = new WebSocket(`wss://127.0.0.1:${server.port}/echo`);
  const [closed] = (await once(untrusted, 'close')) as [CloseEvent];
  assert.equal(closed.code, 1015);
  assert.equal(closed.wasClean, false);
});

test('the SDK over wss, with a WebSocket class that trusts the CA', async () => {
  class Trusted extends WebSocket {
    constructor(url: string, protocols: string | string[]) {
      super(url, protocols, { tls: { ca: cert } });
    }
  }
  const client = connect(`wss://127.0.0.1:${server.port}/ws`, { WebSocket: Trusted as never });
  try {
    const got: string[] = [];
    await client.channel<string>('secure').subscribe((text) => got.push(text));
    await client.channel<string>('secure').publish('hello');
    await waitFor(() => got.length > 0, 'the message');
    assert.deepEqual(got, ['hello']);
  } finally {
    client.close();
  }
});

test('hotline serve --tls-cert/--tls-key serves https and wss; an unreadable file is a clear error', async () => {
  requireBuiltCli();
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--tls-cert', certFile, '--tls-key', keyFile, '--log-level', 'silent'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      output += chunk;
      const match = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', () => reject(new Error(`exited: ${output}`)));
  });
  assert.match(output, /wss:\/\/127\.0\.0\.1:\d+\/echo/);
  const ws = new WebSocket(`wss://127.0.0.1:${port}/echo`, [], { tls: { ca: cert } });
  await once(ws, 'open');
  ws.close(1000);
  await once(ws, 'close');
  child.kill('SIGTERM');
  await once(child, 'exit');

  const missing = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--tls-cert', join(dir, 'nope.pem'), '--tls-key', keyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  missing.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(missing, 'exit')) as [number];
  assert.equal(code, 1);
  assert.match(stderr, /cannot read --tls-cert .*nope\.pem: ENOENT/);
});
