// The headline: a backend in Python, standard library only
// (test/support/python-backend.py), drives a hotline server as an app's backend would. It
// mints an HS256 connection token with hmac/hashlib/base64; an SDK client connects with
// it and subscribes; the backend publishes through the HTTP API (urllib), reads presence
// and history, is refused with a wrong key, and disconnects the user. The test checks
// what the client saw and what the backend was answered.
//
// The server is `hotline serve --config FILE`, as an operator runs it: the file gives the
// token secret, the API key and the namespace the client may use (with namespaces, a
// channel in none is refused).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, type HotlineClient } from '../src/client/index.js';
import { WebSocket as HotlineWebSocket } from '../src/node/client.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTarget, type AttackTarget } from './support/attack.js';
import { ChildLines } from './support/child-lines.js';
import { within } from './support/wait.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./support/python-backend.py', import.meta.url));
const KEY = 'python-backend-api-key-0123';
const SECRET = 'python-backend-hmac-secret-0123456789abcdef';
const python = spawnSync(PYTHON, ['--version']).status === 0;
if (!python) process.stderr.write(`\n*** SKIPPED: ${PYTHON} not found — the Python backend test did not run ***\n\n`);

let server: AttackTarget;
let backend: ChildProcess | undefined;
let client: HotlineClient | undefined;
const dir = mkdtempSync(join(tmpdir(), 'hotline-python-backend-'));

before(async () => {
  if (!python) return;
  const config = join(dir, 'hotline.json');
  writeFileSync(
    config,
    JSON.stringify({
      token: { hmacSecret: SECRET },
      api: { key: KEY },
      namespaces: { 'chat:*': { subscribe: 'authenticated', publish: 'authenticated' } },
    }),
  );
  server = await startTarget(['--config', config]);
});
after(async () => {
  client?.close();
  backend?.kill();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a Python backend issues a token, publishes, reads presence and history, and disconnects the user', { skip: python ? false : `${PYTHON} not found` }, async () => {
  backend = spawn(PYTHON, [SCRIPT, server.http, KEY, SECRET, 'ada', 'chat:lobby'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = new ChildLines(backend);
  const said = async <T>(kind: string): Promise<T> => {
    const line = await lines.next((l) => l.startsWith(`${kind} `), `the backend's ${kind} line`, 15_000);
    return JSON.parse(line.slice(kind.length + 1)) as T;
  };

  const { token } = await said<{ token: string }>('token');
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a compact JWT');
  client = connect(`${server.ws}/ws?token=${token}`, { WebSocket: HotlineWebSocket, pingInterval: 0 });
  const closed = new Promise<{ code: number; reason: string; willRetry: boolean }>((resolve) => client!.on('close', resolve));
  const channel = client.channel<{ text: string }>('chat:lobby');
  const received: Array<{ text: string; offset: number }> = [];
  const first = new Promise<void>((resolve) =>
    channel.on('message', (data, meta) => {
      received.push({ ...data, offset: meta.offset });
      resolve();
    }),
  );
  await within(channel.subscribe(), 'the subscription');
  backend.stdin!.write('go\n');

  const published = await said<{ status: number; result: { epoch: string; offset: number; delivered: number } }>('publish');
  assert.equal(published.status, 200);
  assert.equal(published.result.delivered, 1);
  await within(first, 'the published message at the client');
  assert.deepEqual(received, [{ text: 'hello from python', offset: published.result.offset }]);

  const presence = await said<{ status: number; result: { members: Array<Record<string, unknown>>; count: number } }>('presence');
  // Each member carries the `client` id the server sets (random per run): a non-empty string.
  for (const member of presence.result?.members ?? []) assert.ok(typeof member['client'] === 'string' && member['client'] !== '', `a client id in ${JSON.stringify(member)}`);
  const members = presence.result?.members?.map(({ client: _client, ...rest }) => rest);
  assert.deepEqual({ ...presence, result: { ...presence.result, members } }, { status: 200, result: { members: [{ id: 'ada', info: { name: 'Ada' } }], count: 1 } });

  const history = await said<{ status: number; result: { epoch: string; messages: unknown[]; more: boolean } }>('history');
  assert.deepEqual(history, {
    status: 200,
    result: { epoch: published.result.epoch, messages: [{ offset: published.result.offset, data: { text: 'hello from python' } }], more: false },
  });

  const badKey = await said<{ status: number; error: { code: string } }>('bad-key');
  assert.equal(badKey.status, 401);
  assert.equal(badKey.error.code, 'unauthorized');

  const disconnected = await said<{ status: number; result: { disconnected: number } }>('disconnect');
  assert.deepEqual(disconnected, { status: 200, result: { disconnected: 1 } });
  assert.deepEqual(await within(closed, 'the close at the client'), { code: 4403, reason: 'logged out', willRetry: false });
  const code = await new Promise<number | null>((resolve) => (backend!.exitCode !== null ? resolve(backend!.exitCode) : backend!.once('exit', (exit: number | null) => resolve(exit))));
  assert.equal(code, 0, 'the backend finished cleanly');
});
