// `hotline serve --redis URL`, as a user runs it (from the sources, through tsx): two servers
// on one Redis share their channels, /healthz follows Redis, and a bad or unreachable URL
// ends the command with the reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChannelsClient } from './support/channels-client.js';
import { waitFor } from './support/wait.js';
import { RedisServer, redisServerInstalled } from './support/redis-server.js';
import { freePort } from './support/ports.js';
import { RedisCluster, skipWithoutCluster } from './support/redis-cluster.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const skip = !redisServerInstalled() && process.env.CI !== 'true';
if (skip) process.stderr.write('\n*** SKIPPED: redis-server not installed — the hotline serve --redis tests did not run ***\n\n');

interface Cli {
  child: ChildProcess;
  port: number;
  output: string[];
}

function run(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function serveCli(url: string, flag = '--redis', more: string[] = []): Promise<Cli> {
  const port = await freePort();
  const child = run(['serve', '--port', String(port), flag, url, '--log-level', 'silent', ...more]);
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hotline serve did not start within 60 s: ${output.join('\n')}`)), 60_000);
    lines.on('line', (line) => {
      output.push(line);
      // The last startup line.
      if (line.startsWith('  metrics ')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hotline serve exited with ${code}: ${output.join('\n')}`));
    });
  });
  return { child, port, output };
}

async function health(cli: Cli): Promise<number> {
  return (await fetch(`http://127.0.0.1:${cli.port}/healthz`)).status;
}

describe('hotline serve --redis', { skip: skip ? 'redis-server not installed' : false }, () => {
  let redis: RedisServer;
  let servers: Cli[] = [];
  const clients: ChannelsClient[] = [];

  before(async () => {
    if (!redisServerInstalled()) throw new Error('redis-server not installed: CI must run the Redis engine tests');
    redis = await RedisServer.start({ password: 'pw' });
    // Durable: the saved restart below keeps the channel's epoch (test/redis-engine.test.ts has the default).
    servers = await Promise.all([serveCli(redis.url, '--redis', ['--redis-durable']), serveCli(redis.url, '--redis', ['--redis-durable'])]);
  });

  after(async () => {
    for (const client of clients) client.terminate();
    for (const server of servers) server.child.kill('SIGKILL');
    await redis?.close();
  });

  test('the startup lines name the engine: the Redis URL, without its password', () => {
    for (const server of servers) {
      const line = server.output.find((l) => l.startsWith('  engine '));
      assert.equal(line, `  engine     redis ${redis.url.replace(':pw@', ':***@')}`);
      assert.ok(redis.url.includes(':pw@'), redis.url);
    }
  });

  test('two servers share channels; /healthz is 503 while Redis is down and 200 again after; --redis-durable: the saved stream goes on', async () => {
    const [a, b] = servers as [Cli, Cli];
    const subscriber = await ChannelsClient.connect(`ws://127.0.0.1:${a.port}/ws`);
    const publisher = await ChannelsClient.connect(`ws://127.0.0.1:${b.port}/ws`);
    clients.push(subscriber, publisher);
    assert.equal((await subscriber.request('sub', { ch: 'cli' })).op, 'ok');
    const answer = await publisher.request('pub', { ch: 'cli', data: { hello: 'across' } });
    assert.deepEqual([answer.op, answer.offset, answer.delivered], ['ok', 1, 1]);
    await subscriber.until(() => subscriber.messages('cli').length === 1, 'the message from the other server');
    assert.deepEqual(subscriber.messages('cli')[0]!.data, { hello: 'across' });
    assert.equal(await health(a), 200);

    await redis.stop({ save: true });
    await waitFor(async () => (await health(a)) === 503 && (await health(b)) === 503, '503 on both', 10_000);
    const refused = await publisher.request('pub', { ch: 'cli', data: 2 });
    assert.deepEqual([refused.op, refused.code], ['err', 'internal']);
    assert.match(refused.message ?? '', /^unavailable: /);
    assert.equal(subscriber.ws.readyState, subscriber.ws.OPEN, 'connections stay open');

    await redis.restart();
    await waitFor(async () => (await health(a)) === 200 && (await health(b)) === 200, '200 on both', 15_000);
    assert.equal((await publisher.request('pub', { ch: 'cli', data: 3 })).offset, 2);
    await subscriber.until(() => subscriber.messages('cli').length === 2, 'the message after the outage');
  });

  test('--history-size and --history-ttl, or their config keys, are what the Redis engine keeps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotline-redis-history-'));
    const file = join(dir, 'hotline.jsonc');
    writeFileSync(file, '{ "historySize": 2 }\n');
    const [flags, configured] = await Promise.all([serveCli(redis.url, '--redis', ['--history-size', '3', '--history-ttl', '1500']), serveCli(redis.url, '--redis', ['--config', file])]);
    servers.push(flags, configured);
    const offsetsOf = async (client: ChannelsClient, ch: string): Promise<number[]> => {
      const reply = await client.request('history', { ch, limit: 100 });
      assert.equal(reply.op, 'ok', JSON.stringify(reply));
      return (reply.messages as Array<{ offset: number }>).map((m) => m.offset);
    };
    for (const [server, ch, kept] of [
      [flags, 'kept-by-flag', [3, 4, 5]],
      [configured, 'kept-by-config', [4, 5]],
    ] as const) {
      const client = await ChannelsClient.connect(`ws://127.0.0.1:${server.port}/ws`);
      clients.push(client);
      for (let i = 1; i <= 5; i++) assert.equal((await client.request('pub', { ch, data: i })).offset, i);
      // Without them the engine kept its default of 100: all five.
      assert.deepEqual(await offsetsOf(client, ch), kept, ch);
      const { epoch } = await client.request('history', { ch, limit: 1 });
      const resumed = await client.request('sub', { ch, since: { epoch, offset: 1 } });
      assert.deepEqual([resumed.op, resumed.recovered], ['ok', false], `${ch}: offset 2 is gone, so recovering from 1 is not whole`);
    }
    // --history-ttl 1500: the messages go from history (the default keeps them 5 minutes).
    const client = clients.at(-2)!;
    // Asked every 200 ms: within the history request rate.
    await waitFor(async () => (await offsetsOf(client, 'kept-by-flag')).length === 0, 'history emptied by --history-ttl', { ms: 10_000, every: 200 });
  });

  test('a URL that is not redis:// is refused; an unreachable Redis ends the command with the reason', async () => {
    const port = await freePort();
    const outcome = async (args: string[]): Promise<{ code: number; stderr: string }> => {
      const child = run(args);
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const [code] = (await once(child, 'exit')) as [number];
      return { code, stderr };
    };
    const [bad, unreachable] = await Promise.all([
      outcome(['serve', '--port', '0', '--redis', 'http://localhost:6379']),
      outcome(['serve', '--port', '0', '--redis', `redis://:secret@127.0.0.1:${port}`]),
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--redis must be a redis:\/\/ or rediss:\/\/ URL/);
    assert.equal(unreachable.code, 1);
    const message = unreachable.stderr;
    assert.match(message, /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ within 10000 ms: connect ECONNREFUSED/);
    assert.doesNotMatch(message, /secret/);
  });
});

const skipCluster = skipWithoutCluster('the hotline serve --redis-cluster tests');

describe('hotline serve --redis-cluster', { skip: skipCluster ? 'redis-server 7+ or redis-cli not installed' : false }, () => {
  test('two servers on a 3-shard cluster share channels on every shard; --redis with it, or a bad URL, is refused', async () => {
    const cluster = await RedisCluster.start();
    const servers: Cli[] = [];
    const clients: ChannelsClient[] = [];
    try {
      // One seed is enough: the rest of the cluster is found from it.
      const seed = cluster.url.split(',')[1]!;
      servers.push(...(await Promise.all([serveCli(seed, '--redis-cluster'), serveCli(cluster.url, '--redis-cluster')])));
      assert.equal(servers[0]!.output.find((l) => l.startsWith('  engine ')), `  engine     redis cluster ${seed}`);
      const [a, b] = servers as [Cli, Cli];
      const subscriber = await ChannelsClient.connect(`ws://127.0.0.1:${a.port}/ws`);
      const publisher = await ChannelsClient.connect(`ws://127.0.0.1:${b.port}/ws`);
      clients.push(subscriber, publisher);
      const channels = Array.from({ length: 12 }, (_, i) => `cli-cluster:${i}`);
      const shards = new Set(await Promise.all(channels.map((ch) => cluster.primaryOf(`hotline:{${ch}}`))));
      assert.equal(shards.size, 3, 'the channels fall on all three shards');
      for (const ch of channels) assert.equal((await subscriber.request('sub', { ch })).op, 'ok');
      for (const ch of channels) {
        const answer = await publisher.request('pub', { ch, data: ch });
        assert.deepEqual([answer.op, answer.offset, answer.delivered], ['ok', 1, 1], ch);
      }
      await subscriber.until(() => channels.every((ch) => subscriber.messages(ch).length === 1), 'a message on every channel, from the other server');
      for (const ch of channels) assert.equal(subscriber.messages(ch)[0]!.data, ch);
      assert.equal(await health(a), 200);

      const outcome = async (args: string[]): Promise<{ code: number; stderr: string }> => {
        const child = run(args);
        let stderr = '';
        child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const [code] = (await once(child, 'exit')) as [number];
        return { code, stderr };
      };
      const [both, bad] = await Promise.all([
        outcome(['serve', '--port', '0', '--redis', seed, '--redis-cluster', seed]),
        outcome(['serve', '--port', '0', '--redis-cluster', `${seed},http://x`]),
      ]);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /--redis and --redis-cluster: give one/);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--redis-cluster must be redis:\/\/ or rediss:\/\/ URLs of cluster nodes separated by commas/);
    } finally {
      for (const client of clients) client.terminate();
      for (const server of servers) server.child.kill('SIGKILL');
      await cluster.close();
    }
  });
});
