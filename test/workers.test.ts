// `hotline serve --workers N`, as an operator runs it: real processes, real Redis, SDK clients.
// Every message reaches every subscriber once and in order while a worker is killed and
// restarted under them; SIGTERM drains every worker; without Redis it refuses to start. A
// connection is handed over as its bare handle: the workers' sockets die young, and TLS
// works on the socket a worker makes.
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tcpConnect } from 'node:net';
import { childrenOf } from '../bench/lib/proc.js';
import { connect, type HotlineClient } from '../src/client-node.js';
import { WebSocket } from '../src/node/client.js';
import { CLI, requireBuiltCli, startCli, type CliServer } from './support/cli-server.js';
import { RedisServer, skipWithoutRedis } from './support/redis-server.js';
import { makeCertificate } from './support/tls-certificate.js';
import { churn, scavenges } from './support/upgrade-churn.js';
import { waitFor } from './support/wait.js';

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

test('--workers 2 without --redis refuses to start, saying what to add', () => {
  requireBuiltCli();
  const result = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--workers', '2'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /--workers 2 needs --redis/);
  assert.equal(result.stderr.trim().split('\n').length, 1, 'one line');
});

/** The pids of the workers that told the primary they are ready, from its `worker_ready` lines. */
function readyWorkers(server: CliServer): number[] {
  return [...server.output().matchAll(/"event":"worker_ready".*?"pid":(\d+)/g)].map((m) => Number(m[1]));
}

/** `hotline serve --workers 2` on Redis, once both workers are ready for connections. */
async function startWorkers(redis: RedisServer, args: string[] = [], nodeArgs: string[] = []): Promise<{ server: CliServer; primary: number; workers: number[] }> {
  // Three processes start: on a busy machine that takes a while.
  const server = await startCli(0, ['--workers', '2', '--redis', redis.url, ...args], { logLevel: 'info', startTimeout: 60_000, nodeArgs });
  cleanup.push(() => server.stop('SIGKILL'));
  assert.match(server.output(), /workers +2 processes share the port/);
  const workers = await waitFor(() => (readyWorkers(server).length === 2 ? readyWorkers(server) : null), 'two workers ready', 60_000);
  assert.deepEqual([...workers].sort(), childrenOf(server.child.pid!).sort(), 'the ready workers are the primary\'s children');
  return { server, primary: server.child.pid!, workers };
}

/** One plain HTTP request on its own connection: resolves to the answer's status line, or 'closed' when the connection closed without one. */
function healthz(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let answer = '';
    socket.on('connect', () => socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer === '' ? 'closed' : answer.split('\r\n')[0]!));
  });
}

async function scenario(t: TestContext, kill: boolean): Promise<void> {
  if (!skipWithoutRedis(t)) return;
  const redis = await RedisServer.start();
  cleanup.push(() => redis.stop());
  const { server, primary, workers } = await startWorkers(redis);

  const url = `${server.ws}/ws`;
  const subscribers: Array<{ client: HotlineClient; seen: number[]; closes: number; unrecovered: number }> = [];
  for (let i = 0; i < 16; i++) {
    const client = connect(url, { pingInterval: 0, reconnect: { initial: 50, max: 200 } });
    const entry = { client, seen: [] as number[], closes: 0, unrecovered: 0 };
    client.on('close', () => entry.closes++);
    const channel = client.channel('w');
    channel.on('subscribed', (event) => {
      if (!event.first && !event.recovered) entry.unrecovered++;
    });
    await channel.subscribe((data) => entry.seen.push((data as { seq: number }).seq));
    cleanup.push(async () => client.close());
    subscribers.push(entry);
  }
  const publisher = connect(url, { pingInterval: 0, reconnect: { initial: 50, max: 200 } });
  cleanup.push(async () => publisher.close());
  const TOTAL = 60;
  let killed = false;
  for (let seq = 1; seq <= TOTAL; seq++) {
    await publisher.channel('w').publish({ seq });
    if (kill && seq === TOTAL / 2) {
      // Mid-stream, one worker dies without a word; its clients reconnect to the other and recover.
      process.kill(workers[0]!, 'SIGKILL');
      killed = true;
    }
  }
  assert.equal(killed, kill);
  await waitFor(() => subscribers.every((s) => s.seen.length >= TOTAL), 'every subscriber has every message');
  const expected = Array.from({ length: TOTAL }, (_, i) => i + 1);
  for (const [i, s] of subscribers.entries()) {
    assert.deepEqual(s.seen, expected, `subscriber ${i}: every message once, in order`);
    assert.equal(s.unrecovered, 0, `subscriber ${i}: every resubscription recovered`);
  }
  let replaced = workers;
  if (kill) {
    assert.ok(subscribers.some((s) => s.closes > 0), 'some subscribers were on the killed worker');
    await waitFor(() => server.output().includes(`worker 1 (pid ${workers[0]}) exited (SIGKILL); restarting it`) || server.output().includes(`(pid ${workers[0]}) exited (SIGKILL); restarting it`), 'the primary said it restarts the worker');
    replaced = await waitFor(() => {
      const now = childrenOf(primary);
      return now.length === 2 && !now.includes(workers[0]!) ? now : null;
    }, 'a new worker in its place');
  }

  for (const s of subscribers) s.client.close();
  publisher.close();
  assert.equal(await server.stop('SIGTERM'), 0, 'SIGTERM drains every worker and the primary exits 0');
  for (const pid of replaced) assert.throws(() => process.kill(pid, 0), 'the workers are gone too');
}

test('--workers 2 with Redis: every message once and in order to every subscriber; SIGTERM drains every worker', (t) => scenario(t, false));

// Under Node's cluster port sharing this failed 2 runs in 12 on a busy machine: a client's
// connection handed to the worker as it died was never answered (connect timeout), and with
// one worker killed while the other was still starting the port closed and came back as
// another (port 0), so the publisher's publish ended in queue_timeout. The two tests after it
// pin each cause down.
test('--workers 2 with Redis: the same through a worker killed and restarted', (t) => scenario(t, true));

test('the port outlives its workers: with every worker killed, a connection made meanwhile waits and is served by their replacements', async (t) => {
  if (!skipWithoutRedis(t)) return;
  const redis = await RedisServer.start();
  cleanup.push(() => redis.stop());
  // A connection waits in the primary up to the handshake timeout: long, for replacements slow to start on a busy machine.
  const { server, workers } = await startWorkers(redis, ['--handshake-timeout', '60000']);
  for (const pid of workers) process.kill(pid, 'SIGKILL');
  await waitFor(() => workers.every((pid) => server.output().includes(`(pid ${pid}) exited (SIGKILL); restarting it`)), 'the primary saw both die');
  // Made before any replacement is ready: Node's cluster closed its shared port when the last
  // worker was gone (refused; with port 0 the replacements listened on another port).
  const answer = healthz(server.port);
  await waitFor(() => readyWorkers(server).length === 4, 'two replacement workers ready', 60_000);
  assert.equal(await answer, 'HTTP/1.1 200 OK');
  assert.equal(await healthz(server.port), 'HTTP/1.1 200 OK', 'the same port serves on');
});

test('a worker killed with connections handed to it and not yet taken: each of them closes at once (its client retries), none is left unanswered', async (t) => {
  if (!skipWithoutRedis(t)) return;
  const redis = await RedisServer.start();
  cleanup.push(() => redis.stop());
  const { server, workers } = await startWorkers(redis);
  // Stopped, the worker takes nothing from its channel: what the primary hands it waits there.
  process.kill(workers[0]!, 'SIGSTOP');
  const CONNECTIONS = 10;
  const outcomes: string[] = [];
  const answers = Array.from({ length: CONNECTIONS }, () => healthz(server.port).then((outcome) => outcomes.push(outcome)));
  // The primary hands connections out in turn: the running worker answers its half.
  await waitFor(() => outcomes.length === CONNECTIONS / 2, 'the running worker answered its half');
  assert.ok(outcomes.every((o) => o === 'HTTP/1.1 200 OK'));
  process.kill(workers[0]!, 'SIGKILL');
  // Under Node's cluster port sharing the primary kept these open for good, answered by nobody.
  await Promise.all(answers);
  assert.deepEqual(outcomes.slice(CONNECTIONS / 2), Array(CONNECTIONS / 2).fill('closed'), 'the other half closed without an answer');
  assert.equal(await healthz(server.port), 'HTTP/1.1 200 OK', 'a client that retries is served');
});

test('connections handed to the workers leave little to their old generation', async (t) => {
  if (!skipWithoutRedis(t)) return;
  const redis = await RedisServer.start();
  cleanup.push(() => redis.stop());
  // The workers run with the primary's node flags: each prints its own collections.
  // Every connection comes from 127.0.0.1: no per-address cap or rate.
  const limits = ['--connection-rate-per-address', '0', '--max-connections-per-address', '0'];
  const { server, workers } = await startWorkers(redis, limits, ['--trace-gc-nvp']);
  // A first churn compiles what the measured one runs, and takes the workers' startup
  // through the collections that promote it.
  await churn(server.port, 2_000);
  const from = server.output().length;
  const CONNECTIONS = 6_000;
  await churn(server.port, CONNECTIONS);
  const during = scavenges(server.output().slice(from).split('\n')).filter((s) => workers.includes(s.pid));
  // A worker's first collections also promote what it made at startup (1-2 MB once): the
  // median collection is the churn's own rate.
  const sizes = during.map((s) => s.promoted).sort((a, b) => a - b);
  const median = sizes[Math.floor(sizes.length / 2)] ?? 0;
  const perConnection = (median * during.length) / CONNECTIONS;
  t.diagnostic(`promoted by the workers' collections: ${during.map((s) => s.promoted).join(', ')} B; ${perConnection.toFixed(0)} B per connection at the median's rate`);
  assert.ok(during.length >= 3, `the churn ran through the workers' young collections (${during.length})`);
  // A socket made by Node's child_process around a handed connection has a hidden class of
  // its own (src/node/accept.ts) and outlives its first collection: 550-600 B per
  // connection; made by the worker from the bare handle, 25-50 B.
  assert.ok(perConnection < 200, `the workers promoted ${perConnection.toFixed(0)} B per connection`);
});

test('--workers 2 with TLS: each worker makes the TLS socket around the connection it is handed', async (t) => {
  if (!skipWithoutRedis(t)) return;
  const certificate = makeCertificate('--workers 2 with TLS');
  if (certificate === null) return t.skip('openssl is missing');
  cleanup.push(async () => rmSync(certificate.dir, { recursive: true, force: true }));
  const redis = await RedisServer.start();
  cleanup.push(() => redis.stop());
  const { server } = await startWorkers(redis, ['--tls-cert', join(certificate.dir, 'cert.pem'), '--tls-key', join(certificate.dir, 'key.pem')]);
  assert.match(server.output(), /listening on https:/);
  // Handed out in turn, so both workers take some of them.
  const echoes = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const ws = new WebSocket(`wss://127.0.0.1:${server.port}/echo`, [], { tls: { ca: certificate.cert } });
      await once(ws, 'open');
      ws.send(`over tls ${i}`);
      const [message] = (await once(ws, 'message')) as [{ data: string }];
      ws.close(1000);
      await once(ws, 'close');
      return message.data;
    }),
  );
  assert.deepEqual(echoes, Array.from({ length: 8 }, (_, i) => `over tls ${i}`));
  assert.equal(await server.stop('SIGTERM'), 0);
});
