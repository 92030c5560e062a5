// The framework examples of docs/integration.md, run as the programs they are: each starts
// its framework's server with an HTTP route and hotline's /ws on the same port. Over real
// sockets the SDK subscribes and publishes through it, the route reads hotline's state, a
// path nobody serves gets 404, and SIGTERM closes every client with 1001 and ends the process.
// The docs show these files verbatim (checked below).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WsClient from 'ws';
import { connect, type HotlineClient } from '../src/client/index.js';
import { WebSocket } from '../src/node/client.js';
import { HandshakeError } from '../src/protocol/errors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLES = ['express', 'fastify', 'hono', 'node-http'] as const;
const example = (name: string): string => `docs/examples/${name}.ts`;

interface Program {
  child: ChildProcess;
  output(): string;
  exit: Promise<number | null>;
}

/** Runs a docs example (TypeScript, through tsx, importing 'hotline' as an app does). */
function run(name: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Program {
  const child = spawn(process.execPath, ['--import', 'tsx', example(name), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return { child, output: () => output, exit };
}

/** Starts an example server on a free port; resolves to its base URL once it says it listens. */
async function start(name: string): Promise<{ program: Program; http: string; ws: string }> {
  const program = run(name, [], { PORT: '0' });
  running.add(program);
  void program.exit.then(() => running.delete(program));
  const port = await new Promise<string>((resolve, reject) => {
    const check = (): void => {
      const match = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/m.exec(program.output());
      if (match !== null) resolve(match[1]!);
    };
    program.child.stdout!.on('data', check);
    void program.exit.then((code) => reject(new Error(`${name} exited (${code}) before listening:\n${program.output()}`)));
  });
  return { program, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}` };
}

const running = new Set<Program>();
const clients: HotlineClient[] = [];
after(() => {
  for (const client of clients) client.close();
  for (const program of running) program.child.kill('SIGKILL');
});

function client(url: string): HotlineClient {
  const made = connect(url, { WebSocket });
  clients.push(made);
  return made;
}

/** Resolves with the code of the client's first close. */
function firstClose(client: HotlineClient): Promise<number> {
  return new Promise((resolve) => {
    const off = client.on('close', ({ code }) => {
      off();
      resolve(code);
    });
  });
}

/** The status a plain upgrade to `url` is refused with. */
async function refusedWith(url: string): Promise<number> {
  const ws = new WebSocket(url);
  const [event] = (await once(ws, 'error')) as [{ error: unknown }];
  assert.ok(event.error instanceof HandshakeError, String(event.error));
  return event.error.status;
}

for (const name of EXAMPLES) {
  describe(`docs/examples/${name}.ts`, { timeout: 60_000 }, () => {
    test('the route and /ws share the port; the SDK exchanges messages; 404 elsewhere; SIGTERM: 1001, exit 0', async () => {
      const { program, http, ws } = await start(name);
      const reader = client(`${ws}/ws`);
      const writer = client(`${ws}/ws`);
      const room = reader.channel<{ text: string; from: string }>('room:1');
      let subscribed!: Promise<unknown>;
      const got = new Promise<{ text: string; from: string }>((resolve) => (subscribed = room.subscribe(resolve)));
      // Subscribed before the publish: a message published earlier is not the reader's to get.
      await subscribed;
      const { offset } = await writer.channel('room:1').publish({ text: 'hello', from: name });
      assert.equal(offset, 1);
      assert.deepEqual(await got, { text: 'hello', from: name });

      const online = await fetch(`${http}/online`);
      assert.equal(online.status, 200);
      assert.deepEqual(await online.json(), { connections: 2 });
      assert.equal(await refusedWith(`${ws}/nowhere`), 404);

      const closes = [firstClose(reader), firstClose(writer)];
      program.child.kill('SIGTERM');
      assert.deepEqual(await Promise.all(closes), [1001, 1001]);
      reader.close();
      writer.close();
      assert.equal(await program.exit, 0, program.output());
    });
  });
}

test('docs/examples/with-ws.ts: a ws server keeps its path beside hotline; behind the proxy, the forwarded address', { timeout: 60_000 }, async () => {
  const { program, http, ws } = await start('with-ws');
  const legacy = new WsClient(`${ws}/legacy`);
  await once(legacy, 'open');
  legacy.send('hi');
  const [reply] = (await once(legacy, 'message')) as [Buffer];
  assert.equal(String(reply), 'legacy: hi');

  // The test is the proxy on loopback, forwarding for a client at 198.51.100.7.
  const viaProxy = new WebSocket(`${ws}/ws`, 'hotline.v1', { headers: { 'X-Forwarded-For': '198.51.100.7' } });
  await once(viaProxy, 'open');
  assert.deepEqual(await (await fetch(`${http}/clients`)).json(), ['198.51.100.7']);

  const closed = [once(legacy, 'close'), once(viaProxy, 'close')];
  program.child.kill('SIGTERM');
  const [[legacyCode], [event]] = (await Promise.all(closed)) as [[number], [{ code: number }]];
  assert.deepEqual([legacyCode, event.code], [1001, 1001]);
  assert.equal(await program.exit, 0, program.output());
});

test('docs/examples/client.ts, the SDK program of the docs, against the Express example', { timeout: 60_000 }, async () => {
  const { program, ws } = await start('express');
  const sdk = run('client', [`${ws}/ws`]);
  assert.equal(await sdk.exit, 0, sdk.output());
  assert.equal(sdk.output(), 'received: hello through hotline\n');
  program.child.kill('SIGTERM');
  assert.equal(await program.exit, 0, program.output());
});

test('docs/integration.md shows each example verbatim', () => {
  const page = readFileSync(new URL('../docs/integration.md', import.meta.url), 'utf8');
  const blocks = [...page.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  for (const name of [...EXAMPLES, 'with-ws', 'client']) {
    const source = readFileSync(new URL(`../${example(name)}`, import.meta.url), 'utf8');
    assert.ok(blocks.includes(source), `docs/integration.md lacks ${example(name)} as it is`);
  }
});
