// The limit flags of `hotline serve` reach what they limit: one process started with small
// values, and for each flag a client that runs into it and sees the documented answer.
// Bad values stop the command with one line; an open-file limit below --max-connections is
// reported at start.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { CLI, requireBuiltCli, startCli, type CliServer } from './support/cli-server.js';

requireBuiltCli();

interface Reply {
  op: string;
  id?: number;
  code?: string;
  message?: string;
}

/** A hotline.v1 connection whose requests resolve with their reply. */
async function channels(url: string): Promise<{ ws: WebSocket; request(body: object): Promise<Reply> }> {
  const ws = new WebSocket(`${url}/ws`, 'hotline.v1');
  const waiting = new Map<number, (reply: Reply) => void>();
  ws.on('message', (data: Buffer) => {
    const reply = JSON.parse(data.toString()) as Reply;
    // A request too deep to be read is answered without its id: it can only be the latest one.
    if (reply.op === 'ok' || reply.op === 'err') waiting.get(reply.id ?? Math.max(...waiting.keys()))?.(reply);
  });
  await once(ws, 'open');
  let id = 0;
  return {
    ws,
    request: (body) =>
      new Promise((resolve) => {
        const mine = ++id;
        waiting.set(mine, (reply) => {
          waiting.delete(mine);
          resolve(reply);
        });
        ws.send(JSON.stringify({ ...body, id: mine }));
      }),
  };
}

describe('hotline serve limit flags', { timeout: 60_000 }, () => {
  let server: CliServer;

  before(async () => {
    server = await startCli(0, [
      '--heartbeat-interval', '0',
      '--idle-timeout', '400',
      '--handshake-timeout', '300',
      '--max-payload', '2000',
      '--publish-rate', '0.1:2',
      '--max-subscriptions', '2',
      '--max-data-length', '20',
      '--max-json-depth', '4',
      '--abuse-limit', '3',
      '--abuse-window', '60000',
    ]);
  });

  after(async () => {
    await server?.stop();
  });

  test('--idle-timeout closes a silent connection with 1001; --max-payload closes with 1009', async () => {
    const idle = new WebSocket(`${server.ws}/echo`);
    await once(idle, 'open');
    const started = Date.now();
    const [code, reason] = (await once(idle, 'close')) as [number, Buffer];
    assert.deepEqual([code, reason.toString()], [1001, 'idle timeout']);
    assert.ok(Date.now() - started >= 350, 'not before the timeout');
    const big = new WebSocket(`${server.ws}/echo`);
    await once(big, 'open');
    big.send('x'.repeat(2001));
    assert.equal(((await once(big, 'close')) as [number])[0], 1009);
  });

  test('--handshake-timeout closes a connection that sends no request', async () => {
    const socket = connect({ host: '127.0.0.1', port: server.port });
    const started = Date.now();
    await once(socket, 'close');
    assert.ok(Date.now() - started >= 250, `closed after ${Date.now() - started} ms`);
  });

  test('--max-subscriptions, --max-data-length, --max-json-depth', async () => {
    const client = await channels(server.ws);
    assert.equal((await client.request({ op: 'sub', ch: 'a' })).op, 'ok');
    assert.equal((await client.request({ op: 'sub', ch: 'b' })).op, 'ok');
    const third = await client.request({ op: 'sub', ch: 'c' });
    assert.deepEqual([third.op, third.code, third.message], ['err', 'too_large', 'at most 2 subscriptions per connection']);
    const long = await client.request({ op: 'pub', ch: 'a', data: 'x'.repeat(30) });
    assert.deepEqual([long.code, long.message], ['too_large', 'data is 32 characters of JSON; the limit is 20']);
    const deep = await client.request({ op: 'pub', ch: 'a', data: [[[[1]]]] });
    assert.deepEqual([deep.op, deep.code], ['err', 'bad_request']);
    assert.match(deep.message!, /deeper than 4 levels/);
    client.ws.close();
  });

  test('--publish-rate (one per 10 s, burst 2) answers rate_limited past its burst; --abuse-limit closes with 1008 at the third strike', async () => {
    const client = await channels(server.ws);
    assert.equal((await client.request({ op: 'pub', ch: 'a', data: 1 })).op, 'ok');
    assert.equal((await client.request({ op: 'pub', ch: 'a', data: 2 })).op, 'ok');
    for (const data of [3, 4]) {
      const limited = await client.request({ op: 'pub', ch: 'a', data });
      assert.deepEqual([limited.code, limited.message], ['rate_limited', 'publishing too fast']);
    }
    const closed = once(client.ws, 'close');
    void client.request({ op: 'pub', ch: 'a', data: 5 });
    const [code, reason] = (await closed) as [number, Buffer];
    assert.deepEqual([code, reason.toString()], [1008, 'too many bad or rate-limited requests']);
  });
});

function hotline(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

test('a bad value stops hotline serve with one line that names the flag (exit 2)', async () => {
  const cases: Array<[string[], string]> = [
    [['--idle-timeout', '30s'], "hotline: --idle-timeout must be a whole number of milliseconds from 0 to 2147483647, not '30s'\n"],
    [['--max-connections', 'many'], "hotline: --max-connections must be a whole number from 0 to 2147483647, not 'many'\n"],
    [['--slow-consumer', 'kill'], "hotline: --slow-consumer must be one of drop, close, try-again-later, not 'kill'\n"],
    [['--origin', 'app.example'], "hotline: --origin: 'app.example' is not an origin: write scheme://host[:port], such as https://app.example, or '*'\n"],
    [['--max-conections', '5'], 'hotline: unknown option --max-conections (hotline serve --help lists the options)\n'],
  ];
  for (const [args, stderr] of cases) {
    const result = await hotline(['serve', '--port', '0', ...args]);
    assert.deepEqual([result.code, result.stderr, result.stdout], [2, stderr, ''], args.join(' '));
  }
});

test('an open-file limit below --max-connections (plus headroom) is reported at start', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const child = spawn('/bin/sh', ['-c', 'ulimit -n 1024; exec "$0" "$@"', process.execPath, CLI, 'serve', '--port', '0', '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout!, child.stderr!]) stream.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  while (!/warning: the open-file limit/.test(output) && child.exitCode === null) await once(child.stderr!, 'data');
  assert.match(
    output,
    /hotline: warning: the open-file limit \(1024\) is below --max-connections 10000 plus 256: past ~768 connections new ones fail without an answer; raise ulimit -n or lower --max-connections\n/,
  );
  child.kill('SIGTERM');
  await once(child, 'exit');
});
