// `hotline serve` (what `npm start` runs), driven as a user would: start the built CLI,
// read its startup line, talk to /echo with the `ws` package, stop it with a signal.
// `npm test` builds first; to run this file alone, run `npm run build` before it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import WebSocket from 'ws';

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(cli)) throw new Error(`${cli} is missing: run 'npm run build' first`);

async function startServer(args: string[] = []): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8');
  // Keep draining stdout for the whole run: a closed pipe would fail the server's later writes.
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: string) => {
      output += chunk;
      const match = /listening on http:\/\/([\d.]+:\d+)/.exec(output);
      if (match) resolve({ child, base: match[1]! });
    });
    child.once('exit', () => reject(new Error(`server exited without a startup line: ${output}`)));
  });
}

function messages(ws: WebSocket, count: number): Promise<Array<{ data: Buffer; isBinary: boolean }>> {
  return new Promise((resolve, reject) => {
    const got: Array<{ data: Buffer; isBinary: boolean }> = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      got.push({ data, isBinary });
      if (got.length === count) resolve(got);
    });
    ws.once('error', reject);
  });
}

test('hotline serve echoes text as text and binary as binary on /echo', async () => {
  const { child, base } = await startServer();
  try {
    const ws = new WebSocket(`ws://${base}/echo`);
    await once(ws, 'open');
    const received = messages(ws, 4);
    const big = Buffer.alloc(200_000, 7);
    ws.send('héllo, wörld ✓');
    ws.send(Buffer.from([0, 1, 2, 255]));
    ws.send('');
    ws.send(big);
    const got = await received;
    assert.deepEqual(
      got.map((m) => [m.isBinary, m.isBinary ? m.data.length : m.data.toString()]),
      [
        [false, 'héllo, wörld ✓'],
        [true, 4],
        [false, ''],
        [true, 200_000],
      ],
    );
    assert.deepEqual([...got[1]!.data], [0, 1, 2, 255]);
    assert.ok(got[3]!.data.equals(big));
    ws.close(4001, 'bye');
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    assert.equal(code, 4001);
    assert.equal(reason.toString(), '');
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});

test('SIGTERM closes open connections with 1001 and exits 0', async () => {
  const { child, base } = await startServer();
  const ws = new WebSocket(`ws://${base}/echo`);
  await once(ws, 'open');
  const closed = once(ws, 'close');
  child.kill('SIGTERM');
  const [code] = (await closed) as [number];
  assert.equal(code, 1001);
  const [exitCode] = (await once(child, 'exit')) as [number];
  assert.equal(exitCode, 0);
});

test('a plain HTTP request to /echo is told to upgrade (426)', async () => {
  const { child, base } = await startServer();
  try {
    const response = await fetch(`http://${base}/echo`);
    assert.equal(response.status, 426);
    assert.equal(response.headers.get('sec-websocket-version'), '13');
    const missing = await fetch(`http://${base}/nowhere`, { headers: { connection: 'close' } });
    assert.equal(missing.status, 404);
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});

test('--max-payload is enforced with close code 1009', async () => {
  const { child, base } = await startServer(['--max-payload', '1000']);
  try {
    const ws = new WebSocket(`ws://${base}/echo`);
    await once(ws, 'open');
    ws.send(Buffer.alloc(1001));
    const [code] = (await once(ws, 'close')) as [number];
    assert.equal(code, 1009);
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});

test('a port in use is a clear error, not a stack trace', async () => {
  const { child, base } = await startServer();
  try {
    const port = base.split(':')[1]!;
    const second = spawn(process.execPath, [cli, 'serve', '--port', port], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    second.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const [exitCode] = (await once(second, 'exit')) as [number];
    assert.equal(exitCode, 1);
    assert.match(stderr, /already in use/);
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});
