// The Redis engine in process, against a real redis-server started for this file: the
// shared Engine suite, then what only Redis has (the key layout, time windows in real time,
// several engines as nodes, password, outages, a Redis that stops answering).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { EngineUnavailableError, type ChannelMessage, type Engine } from '../src/channels/index.js';
import { RedisEngine, type RedisEngineOptions } from '../src/redis/index.js';
import { RedisLink } from '../src/redis/link.js';
import { COUNT, scriptsFor, SWEEP } from '../src/redis/scripts.js';
import { engineSuite, Recorder } from './support/engine-suite.js';
import { RedisServer, redisServerInstalled, skipWithoutRedis } from './support/redis-server.js';
import { freePort } from './support/ports.js';
import { quietWindow, waitFor } from './support/wait.js';

type Raw = ReturnType<typeof createClient>;

let server: RedisServer | null = null;
let raw: Raw | null = null;
let prefixes = 0;

/** The file's redis-server and a plain client to look inside it, started on first use. */
async function redis(): Promise<{ server: RedisServer; raw: Raw }> {
  if (server === null) {
    server = await RedisServer.start();
    raw = createClient({ url: server.url });
    raw.on('error', () => {});
    await raw.connect();
  }
  return { server, raw: raw! };
}

/** A key prefix no other test uses, so tests sharing the server never see each other's keys. */
function freshPrefix(): string {
  return `t${process.pid}x${prefixes++}:`;
}

after(async () => {
  if (raw !== null) await raw.close().catch(() => raw?.destroy());
  await server?.close();
});

/** Closes the connection with this client name from the server side (as a network fault would). */
async function killConnection(client: Raw, name: string): Promise<void> {
  const list = String(await client.sendCommand(['CLIENT', 'LIST']));
  const line = list.split('\n').find((l) => l.includes(` name=${name} `));
  assert.ok(line !== undefined, `a connection named ${name}`);
  const id = /\bid=(\d+)/.exec(line)![1]!;
  await client.sendCommand(['CLIENT', 'KILL', 'ID', id]);
}

/** Moves every TTL under `prefix` forward by `ms` (deleting what runs out): Redis's clock, advanced. */
async function advanceTtls(client: Raw, prefix: string, ms: number): Promise<void> {
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    for (const key of keys) {
      const ttl = await client.pTTL(key);
      if (ttl < 0) continue;
      if (ttl <= ms) await client.del(key);
      else await client.pExpire(key, ttl - ms);
    }
  }
}

if (redisServerInstalled()) {
  engineSuite('redis', async (options) => {
    const { server, raw } = await redis();
    const prefix = freshPrefix();
    let time = Date.now();
    const engine = new RedisEngine(server.url, { ...options, prefix, now: () => time });
    return {
      engine,
      cleanup: () => Promise.resolve(),
      async advance(ms: number) {
        time += ms;
        await advanceTtls(raw, prefix, ms);
      },
    };
  });
} else {
  test('engine: redis (the shared Engine suite)', (t) => {
    skipWithoutRedis(t);
  });
}

/** Engines made by a test, closed after it. */
class Nodes {
  readonly engines: Engine[] = [];
  constructor(readonly prefix = freshPrefix()) {}

  async start(options: RedisEngineOptions = {}): Promise<{ engine: RedisEngine; recorder: Listener }> {
    const { server } = await redis();
    const recorder = listener();
    const engine = new RedisEngine(server.url, { prefix: this.prefix, ...options });
    this.engines.push(engine);
    await engine.start(recorder);
    return { engine, recorder };
  }

  async close(): Promise<void> {
    await Promise.all(this.engines.map((engine) => engine.close()));
  }
}

type Listener = Recorder & { healthChanges: boolean[] };

/** A listener recording messages, presence events and health changes. */
function listener(): Listener {
  const recorder = new Recorder() as Recorder & { healthChanges: boolean[]; health(healthy: boolean): void };
  recorder.healthChanges = [];
  recorder.health = (healthy: boolean) => recorder.healthChanges.push(healthy);
  return recorder;
}

/** The channel's subscribers over every node, as a publish to it counts them. */
async function counted(engine: Engine, channel: string): Promise<number> {
  return (await engine.publish(channel, '"count"')).subscribers;
}

function offsets(messages: readonly ChannelMessage[]): number[] {
  return messages.map((m) => m.offset);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('redis engine', { skip: !redisServerInstalled() && process.env.CI !== 'true' ? 'redis-server not installed' : false }, () => {
  before(async () => {
    if (!redisServerInstalled()) throw new Error('redis-server not installed: CI must run the Redis engine tests');
    await redis();
  });

  test('keys: one hash tag per channel, stream ids are offsets, fields d and t, windows as TTLs', async () => {
    const { server, raw } = await redis();
    const prefix = freshPrefix();
    const engine = new RedisEngine(server.url, { prefix, historyTtl: 60_000, idempotencyWindow: 30_000 });
    await engine.start(listener());
    try {
      const before = Date.now();
      await engine.publish('room:1', '{"a":1}');
      await engine.publish('room:1', '"b"', { key: 'k1' });
      await engine.join('room:1', 'c1', { id: 'u1' });
      const keys = (await raw.keys(`${prefix}*`)).sort();
      assert.deepEqual(keys.filter((k) => k.includes('room')), [
        `${prefix}{room:1}:key:k1`,
        `${prefix}{room:1}:log`,
        `${prefix}{room:1}:meta`,
        `${prefix}{room:1}:presence`,
      ]);
      const meta = await raw.hGetAll(`${prefix}{room:1}:meta`);
      assert.equal(meta['offset'], '2');
      assert.match(meta['epoch']!, /^[0-9a-z]{8,40}$/);
      const entries = (await raw.xRange(`${prefix}{room:1}:log`, '-', '+')) ?? [];
      assert.deepEqual(
        entries.map((e) => [e.id, e.message['d']]),
        [
          ['1-0', '{"a":1}'],
          ['2-0', '"b"'],
        ],
      );
      const t = Number(entries[0]!.message['t']);
      assert.ok(t >= before && t <= Date.now(), 't is the publish time in ms');
      assert.match((await raw.get(`${prefix}{room:1}:key:k1`)) ?? '', /^2,[\w-]{27}$/, 'the offset and a digest of the data');
      const keyTtl = await raw.pTTL(`${prefix}{room:1}:key:k1`);
      assert.ok(keyTtl > 25_000 && keyTtl <= 30_000, `key TTL ${keyTtl}`);
      for (const suffix of ['meta', 'log']) {
        const ttl = await raw.pTTL(`${prefix}{room:1}:${suffix}`);
        assert.ok(ttl > 55_000 && ttl <= 60_000, `${suffix} TTL ${ttl}: max(historyTtl, window)`);
      }
      const presence = await raw.hGetAll(`${prefix}{room:1}:presence`);
      assert.match(presence['c1']!, new RegExp(`^${engine.nodeId},\\d+,\\{"id":"u1"\\}$`));
    } finally {
      await engine.close();
    }
  });

  test('history: MAXLEN ~ keeps extra entries in Redis, but history holds exactly historySize', async () => {
    const nodes = new Nodes();
    try {
      const { engine } = await nodes.start({ historySize: 10 });
      for (let n = 1; n <= 250; n++) await engine.publish('big', String(n));
      const { raw } = await redis();
      const stored = await raw.xLen(`${nodes.prefix}{big}:log`);
      assert.ok(stored >= 10 && stored < 250, `the stream is trimmed approximately (${stored} entries)`);
      const result = await engine.history('big', { limit: 1000 });
      assert.deepEqual(offsets(result.messages), range(241, 250));
      const { epoch } = result.position;
      assert.equal((await engine.history('big', { since: { epoch, offset: 239 } })).recovered, false);
      const kept = await engine.history('big', { since: { epoch, offset: 240 } });
      assert.equal(kept.recovered, true);
      assert.deepEqual(offsets(kept.messages), range(241, 250));
      const limited = await engine.history('big', { since: { epoch, offset: 240 }, limit: 5 });
      assert.deepEqual([limited.recovered, limited.messages.length], [false, 0], 'recovery is all or nothing');
    } finally {
      await nodes.close();
    }
  });

  test('history: messages older than historyTtl are trimmed from the front; recovery follows', async () => {
    const nodes = new Nodes();
    let time = Date.now();
    try {
      const { engine } = await nodes.start({ historyTtl: 1_000, now: () => time });
      await engine.publish('ttl', '1');
      await engine.publish('ttl', '2');
      await engine.publish('ttl', '3');
      time += 600;
      await engine.publish('ttl', '4');
      await engine.publish('ttl', '5');
      const { epoch } = (await engine.history('ttl')).position;
      time += 400; // 1, 2, 3 are 1000 ms old now: gone
      const read = await engine.history('ttl');
      assert.deepEqual(offsets(read.messages), [4, 5]);
      assert.equal((await engine.history('ttl', { since: { epoch, offset: 2 } })).recovered, false);
      const ok = await engine.history('ttl', { since: { epoch, offset: 3 } });
      assert.deepEqual([ok.recovered, offsets(ok.messages)], [true, [4, 5]]);
      // A publish trims the stream itself.
      await engine.publish('ttl', '6');
      const { raw } = await redis();
      assert.deepEqual(
        ((await raw.xRange(`${nodes.prefix}{ttl}:log`, '-', '+')) ?? []).map((e) => e.id),
        ['4-0', '5-0', '6-0'],
      );
    } finally {
      await nodes.close();
    }
  });

  test('idempotency keys are forgotten after the window, in real time', async () => {
    const nodes = new Nodes();
    try {
      const { engine } = await nodes.start({ idempotencyWindow: 150 });
      assert.deepEqual(await engine.publish('idem', '1', { key: 'k' }), { epoch: (await engine.history('idem')).position.epoch, offset: 1, duplicate: false, subscribers: 0 });
      assert.equal((await engine.publish('idem', '1', { key: 'k' })).duplicate, true);
      const { raw } = await redis();
      await waitFor(async () => (await raw.exists(`${nodes.prefix}{idem}:key:k`)) === 0, 'Redis to expire the idempotency key');
      const again = await engine.publish('idem', '1', { key: 'k' });
      assert.deepEqual([again.offset, again.duplicate], [2, false]);
    } finally {
      await nodes.close();
    }
  });

  test('an idle channel vanishes after max(historyTtl, window) and comes back with a new epoch; a subscribed one keeps its epoch', async () => {
    const nodes = new Nodes();
    try {
      const { engine } = await nodes.start({ historyTtl: 1_000, idempotencyWindow: 100, nodeTtl: 150 });
      await engine.subscribe('kept');
      const kept = await engine.publish('kept', '1');
      // Published last, so by the time Redis expires it, the kept channel's first expiry has passed too.
      const idle = await engine.publish('idle', '1');
      const { raw } = await redis();
      await waitFor(async () => (await raw.exists(`${nodes.prefix}{idle}:meta`)) === 0, 'Redis to expire the idle channel');
      const after = await engine.history('idle', { since: { epoch: idle.epoch, offset: 1 } });
      assert.equal(after.recovered, false);
      assert.notEqual(after.position.epoch, idle.epoch);
      assert.equal(after.position.offset, 0);
      const next = await engine.publish('idle', '2');
      assert.deepEqual([next.epoch, next.offset], [after.position.epoch, 1]);
      // The heartbeat kept the subscribed channel's meta: same epoch, offsets carry on.
      const keptNext = await engine.publish('kept', '2');
      assert.deepEqual([keptNext.epoch, keptNext.offset], [kept.epoch, 2]);
    } finally {
      await nodes.close();
    }
  });

  test('two nodes: messages cross in order, counts add up, presence events reach both', async () => {
    const nodes = new Nodes();
    try {
      const a = await nodes.start({ nodeTtl: 3_000 });
      const b = await nodes.start({ nodeTtl: 3_000 });
      await a.engine.subscribe('x');
      await b.engine.subscribe('x');
      // Counted on a channel of their own, so that the offsets of 'x' below start at 1.
      a.engine.setLocalSubscriberCount('n', 2);
      b.engine.setLocalSubscriberCount('n', 3);
      await waitFor(async () => (await counted(a.engine, 'n')) === 5, 'the sum of both nodes');
      await Promise.all(range(1, 50).map((n) => (n % 2 === 0 ? a : b).engine.publish('x', String(n))));
      await waitFor(() => a.recorder.on('x').length === 50 && b.recorder.on('x').length === 50, 'both nodes get all 50');
      assert.deepEqual(offsets(a.recorder.on('x')), range(1, 50));
      assert.deepEqual(offsets(b.recorder.on('x')), range(1, 50));
      await b.engine.join('x', 'cb', { id: 'ub' });
      await waitFor(() => a.recorder.presenceOn('x').length === 1, 'the join on the other node');
      assert.deepEqual(a.recorder.presenceOn('x')[0], { channel: 'x', kind: 'join', client: 'cb', member: { id: 'ub' } });
      assert.deepEqual(await a.engine.members('x'), [{ id: 'ub' }]);
      // A node that closes takes its counts and members with it.
      await b.engine.close();
      assert.equal(await counted(a.engine, 'n'), 2);
      assert.deepEqual(await a.engine.members('x'), []);
      await waitFor(() => a.recorder.presenceOn('x').some((e) => e.kind === 'leave' && e.client === 'cb'), 'the leave');
    } finally {
      await nodes.close();
    }
  });

  test('history of a subscribed channel answers only once the live stream has delivered up to what it read', async () => {
    const nodes = new Nodes();
    try {
      const a = await nodes.start();
      const b = await nodes.start();
      await a.engine.subscribe('race');
      let behind = 0;
      for (let n = 1; n <= 300; n++) {
        // b publishes while a reads: the read can overtake the pub/sub message.
        const [, { position }] = await Promise.all([b.engine.publish('race', String(n)), a.engine.history('race', { limit: 0 })]);
        const delivered = a.recorder.on('race').at(-1)?.offset ?? 0;
        if (delivered < position.offset) behind++;
      }
      assert.equal(behind, 0, 'every read found its messages already delivered');
      assert.deepEqual(offsets(a.recorder.on('race')), range(1, 300));
    } finally {
      await nodes.close();
    }
  });

  test('a node that stops heartbeating: its counts drop out and its members expire with leaves', async () => {
    const nodes = new Nodes();
    try {
      const a = await nodes.start({ nodeTtl: 300 });
      const b = await nodes.start({ nodeTtl: 300 });
      await a.engine.subscribe('hb');
      a.engine.setLocalSubscriberCount('hb', 1);
      b.engine.setLocalSubscriberCount('hb', 4);
      await b.engine.join('hb', 'cb', { id: 'ub' });
      await waitFor(async () => (await counted(a.engine, 'hb')) === 5, 'both counts');
      // b freezes: no more heartbeats, as if the process hung or died.
      clearInterval((b.engine as unknown as { heartbeat: ReturnType<typeof setInterval> }).heartbeat);
      const frozen = Date.now();
      await waitFor(async () => (await counted(a.engine, 'hb')) === 1, 'b counted no more', 2_000);
      await waitFor(() => a.recorder.presenceOn('hb').some((e) => e.kind === 'leave' && e.client === 'cb'), 'b member leave', 2_000);
      assert.deepEqual(await a.engine.members('hb'), []);
      assert.ok(Date.now() - frozen < 2_000, `gone within about the node TTL and a heartbeat (${Date.now() - frozen} ms)`);
    } finally {
      await nodes.close();
    }
  });

  test("subscriber counts live in the channel's own slot: the publish adds up live entries, and the sweep drops expired ones", async () => {
    const { raw } = await redis();
    const nodes = new Nodes();
    try {
      const a = await nodes.start({ heartbeatInterval: 50 });
      const b = await nodes.start({ heartbeatInterval: 50 });
      await a.engine.subscribe('c');
      a.engine.setLocalSubscriberCount('c', 2);
      b.engine.setLocalSubscriberCount('c', 3);
      await waitFor(async () => (await counted(a.engine, 'c')) === 5, 'both nodes counted');
      const subs = `${nodes.prefix}{c}:subs`;
      assert.deepEqual(Object.keys(await raw.hGetAll(subs)).sort(), [a.engine.nodeId, b.engine.nodeId].sort(), 'one entry per node, under the channel’s hash tag');
      // A node that stopped beating long ago: its entry's expiry has passed.
      await raw.hSet(subs, 'gone-node', `7,${Date.now() - 1}`);
      assert.equal((await a.engine.publish('c', '"x"')).subscribers, 5, 'an expired entry is not counted');
      await waitFor(async () => !(await raw.hExists(subs, 'gone-node')), "a heartbeat's sweep removed it");
      a.engine.setLocalSubscriberCount('c', 0);
      await waitFor(async () => (await counted(a.engine, 'c')) === 3, "a node at 0 takes its entry out");
    } finally {
      await nodes.close();
    }
  });

  test('scripts are loaded at start and after Redis restarts; a write retried after NOSCRIPT carries the newest subscriber count', async () => {
    const own = await RedisServer.start();
    const looker = createClient({ url: own.url });
    looker.on('error', () => {});
    const shas = Object.values(scriptsFor(false)).map((script) => script.sha);
    const loaded = async (): Promise<number[]> => (await looker.sendCommand(['SCRIPT', 'EXISTS', ...shas])) as number[];
    const engine = new RedisEngine(own.url, { prefix: freshPrefix() });
    const link = new RedisLink(own.url, 'link-test', { commandTimeout: 2_000, connectTimeout: 5_000, maxQueuedCommands: 100 });
    try {
      await engine.start(listener());
      await looker.connect();
      assert.deepEqual(await loaded(), shas.map(() => 1), 'every script in the cache before the first call');
      await own.stop({ save: false });
      await waitFor(() => !engine.healthy, 'unhealthy');
      await own.restart();
      await waitFor(() => engine.healthy, 'healthy again');
      if (!looker.isReady) await waitFor(() => looker.isReady, 'the looking client back');
      assert.deepEqual(await loaded(), shas.map(() => 1), 'loaded again into the restarted Redis');

      // A cache flushed while connected: the sweep goes out first with a count of 2 and
      // meets NOSCRIPT; a count of 3 (its script in the cache) is sent behind it and runs.
      // The sweep's retry reaches Redis last, and must not put 2 back.
      await link.connect({ lost: () => {}, regained: () => {} });
      await looker.sendCommand(['SCRIPT', 'FLUSH']);
      await looker.sendCommand(['SCRIPT', 'LOAD', COUNT.source]);
      const keys = ['r{c}:meta', 'r{c}:presence', 'r{c}:subs'];
      let entry = `2,${Date.now() + 60_000}`;
      const sweep = link.run(SWEEP, keys, () => [String(Date.now()), 'r{c}', '0', 'n1', entry, '120000']);
      entry = `3,${Date.now() + 60_000}`;
      const count = link.run(COUNT, ['r{c}:subs'], () => ['n1', entry, '120000']);
      await Promise.all([sweep, count]);
      assert.equal(await looker.hGet('r{c}:subs', 'n1'), entry, 'the newest count stays');
    } finally {
      await link.close();
      await engine.close();
      await looker.close().catch(() => looker.destroy());
      await own.close();
    }
  });

  test('a password in the URL (requirepass); a wrong one fails start() with the reason', async () => {
    const secured = await RedisServer.start({ password: 's3cret' });
    try {
      const engine = new RedisEngine(secured.url, { prefix: freshPrefix() });
      await engine.start(listener());
      assert.equal(engine.healthy, true);
      assert.equal((await engine.publish('pw', '1')).offset, 1);
      await engine.close();
      const wrong = new RedisEngine(`redis://:nope@127.0.0.1:${secured.port}`, { connectTimeout: 1_000 });
      const started = Date.now();
      await assert.rejects(wrong.start(listener()), (error: Error) => {
        assert.ok(error instanceof EngineUnavailableError);
        assert.match(error.message, /WRONGPASS|invalid username-password/i);
        assert.doesNotMatch(error.message, /nope/, 'the password is not repeated');
        return true;
      });
      assert.ok(Date.now() - started < 2_500);
      const none = new RedisEngine(`redis://127.0.0.1:${secured.port}`, { connectTimeout: 1_000 });
      await assert.rejects(none.start(listener()), EngineUnavailableError);
    } finally {
      await secured.close();
    }
  });

  test('TLS: a rediss:// URL with the server\'s CA; without it, start() fails on the certificate', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hotline-tls-'));
    const made = spawnSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
    if (made.error !== undefined || made.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      t.skip('openssl is not installed: cannot make a certificate');
      return;
    }
    const tlsPort = await freePort();
    const secure = await RedisServer.start({
      args: [
        '--tls-port', String(tlsPort), '--tls-cert-file', join(dir, 'cert.pem'), '--tls-key-file', join(dir, 'key.pem'),
        '--tls-ca-cert-file', join(dir, 'cert.pem'), '--tls-auth-clients', 'no',
      ],
    });
    try {
      const url = `rediss://127.0.0.1:${tlsPort}`;
      const engine = new RedisEngine(url, { prefix: freshPrefix(), client: { socket: { tls: true, ca: [readFileSync(join(dir, 'cert.pem'))] } } });
      await engine.start(listener());
      await engine.subscribe('tls');
      assert.equal((await engine.publish('tls', '"secret"')).offset, 1);
      await engine.close();
      const untrusting = new RedisEngine(url, { connectTimeout: 1_000 });
      await assert.rejects(untrusting.start(listener()), (error: Error) => {
        assert.ok(error instanceof EngineUnavailableError);
        assert.match(error.message, /certificate/i);
        return true;
      });
    } finally {
      await secure.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Redis down: calls fail at once as unavailable, health false then true, and (durable) the saved stream goes on', async () => {
    const own = await RedisServer.start();
    const engine = new RedisEngine(own.url, { prefix: freshPrefix(), durable: true });
    const recorder = listener();
    await engine.start(recorder);
    try {
      await engine.subscribe('down');
      await engine.join('down', 'c1', { id: 'u1' });
      const first = await engine.publish('down', '1');
      await waitFor(() => recorder.on('down').length === 1, 'the first message');
      await own.stop({ save: true });
      await waitFor(() => !engine.healthy, 'unhealthy');
      assert.deepEqual(recorder.healthChanges, [false]);
      for (const call of [
        () => engine.publish('down', '2'),
        () => engine.history('down'),
        () => engine.subscribe('other'),
        () => engine.members('down'),
        () => engine.join('down', 'c2', { id: 'u2' }),
      ]) {
        const started = Date.now();
        await assert.rejects(call(), EngineUnavailableError);
        assert.ok(Date.now() - started < 500, `promptly (${Date.now() - started} ms), not after the 2000 ms command timeout`);
      }
      await own.restart();
      await waitFor(() => engine.healthy, 'healthy again');
      assert.deepEqual(recorder.healthChanges, [false, true]);
      const second = await engine.publish('down', '2');
      assert.deepEqual([second.epoch, second.offset], [first.epoch, 2], 'the saved stream goes on');
      await waitFor(() => recorder.on('down').length === 2, 'the live message after the outage');
      // The member that joined while Redis was down was added when it came back.
      await waitFor(async () => (await engine.members('down')).length === 2, 'both members');
    } finally {
      await engine.close();
      await own.close();
    }
  });

  test('not durable (the default): Redis back from a snapshot older than its newest messages ends the epoch; no position in it is recovered, not even once the channel is past it', async () => {
    const own = await RedisServer.start();
    const engine = new RedisEngine(own.url, { prefix: freshPrefix() });
    await engine.start(listener());
    try {
      for (let n = 1; n <= 3; n++) await engine.publish('snap', String(n));
      assert.match(await own.command('SAVE'), /^\+OK/);
      let seen = { epoch: '', offset: 0 };
      for (let n = 4; n <= 6; n++) {
        const { epoch, offset } = await engine.publish('snap', String(n));
        seen = { epoch, offset };
      }
      // A crash: Redis comes back from its snapshot, which ends at offset 3.
      await own.kill();
      await waitFor(() => !engine.healthy, 'unhealthy');
      await own.restart();
      await waitFor(() => engine.healthy, 'healthy again');
      const published: Array<{ epoch: string; offset: number }> = [];
      for (let n = 1; n <= 5; n++) published.push(await engine.publish('snap', `after ${n}`));
      assert.notEqual(published[0]!.epoch, seen.epoch, 'a new epoch, not offsets 4 to 6 given out again');
      assert.deepEqual(published.map((p) => [p.epoch, p.offset]), [1, 2, 3, 4, 5].map((offset) => [published[0]!.epoch, offset]));
      // A client that saw offset 6 before the crash, back now that the channel is past 6.
      const resumed = await engine.history('snap', { since: seen });
      assert.equal(resumed.recovered, false, `told, not handed ${JSON.stringify(resumed.messages.map((m) => m.data))} as what followed 6`);
      assert.equal(resumed.position.epoch, published[0]!.epoch);
    } finally {
      await engine.close();
      await own.close();
    }
  });

  test('a Redis that will not tell its replication id (INFO renamed away, as some hosted servers do) is not checked: publishes go on in one epoch', async () => {
    const own = await RedisServer.start({ args: ['--rename-command', 'INFO', ''] });
    const prefix = freshPrefix();
    const engine = new RedisEngine(own.url, { prefix });
    await engine.start(listener());
    try {
      // A channel stored under an id while INFO still answered keeps its epoch too.
      assert.match(await own.command(`HSET ${prefix}{stored}:meta epoch e1 offset 0 replid 0123abc`), /^:3/);
      const stored = [await engine.publish('stored', '1'), await engine.publish('stored', '2')];
      assert.deepEqual(stored.map((p) => [p.epoch, p.offset]), [['e1', 1], ['e1', 2]]);
      const published: Array<{ epoch: string; offset: number }> = [];
      for (let n = 1; n <= 3; n++) published.push(await engine.publish('untold', String(n)));
      assert.deepEqual(published.map((p) => [p.epoch, p.offset]), [1, 2, 3].map((offset) => [published[0]!.epoch, offset]));
      const read = await engine.history('untold', { since: { epoch: published[0]!.epoch, offset: 1 } });
      assert.equal(read.recovered, true);
      assert.deepEqual(read.messages.map((m) => m.offset), [2, 3]);
    } finally {
      await engine.close();
      await own.close();
    }
  });

  test('a channel made by a durable engine is checked from its first use by a default one: a restart then ends its epoch', async () => {
    const own = await RedisServer.start();
    const prefix = freshPrefix();
    const durable = new RedisEngine(own.url, { prefix, durable: true });
    const checking = new RedisEngine(own.url, { prefix });
    await durable.start(listener());
    await checking.start(listener());
    try {
      const made = await durable.publish('legacy', '1');
      assert.equal((await checking.publish('legacy', '2')).epoch, made.epoch, 'the same epoch before the restart');
      assert.match(await own.command('SAVE'), /^\+OK/);
      await own.kill();
      await waitFor(() => !checking.healthy, 'unhealthy');
      await own.restart();
      await waitFor(() => checking.healthy, 'healthy again');
      const after = await checking.publish('legacy', '3');
      assert.notEqual(after.epoch, made.epoch);
      assert.equal(after.offset, 1);
    } finally {
      await durable.close();
      await checking.close();
      await own.close();
    }
  });

  test('messages published while a node was cut off are delivered from history, in order, once', async () => {
    const nodes = new Nodes();
    try {
      // a reconnects slowly, so b's publishes certainly fall in its gap.
      const a = await nodes.start({ client: { socket: { reconnectStrategy: () => 400 } } });
      const b = await nodes.start();
      await a.engine.subscribe('gap');
      for (let n = 1; n <= 5; n++) await b.engine.publish('gap', String(n));
      await waitFor(() => a.recorder.on('gap').length === 5, 'the first five');
      const { raw } = await redis();
      await killConnection(raw, `hotline:${a.engine.nodeId}:sub`);
      // (a may be back within milliseconds: its health changes are recorded, not polled.)
      await waitFor(() => a.recorder.healthChanges.includes(false), 'a notices');
      for (let n = 6; n <= 25; n++) await b.engine.publish('gap', String(n));
      await waitFor(() => a.recorder.healthChanges.includes(true), 'a is back');
      await b.engine.publish('gap', '26');
      // A last message after the replay: whatever came twice would stand before it.
      await b.engine.publish('gap', '27');
      await waitFor(() => a.recorder.on('gap').some((m) => m.data === '27'), 'all 27 on a');
      assert.deepEqual(offsets(a.recorder.on('gap')), range(1, 27));
      assert.deepEqual(
        a.recorder.on('gap').map((m) => m.data),
        range(1, 27).map(String),
      );
      assert.deepEqual(a.recorder.healthChanges, [false, true]);
    } finally {
      await nodes.close();
    }
  });

  test('an epoch lost under a live subscription: nothing of the new epoch is delivered, the listener is asked to resync', async () => {
    const { server, raw } = await redis();
    const prefix = freshPrefix();
    const a = new RedisEngine(server.url, { prefix });
    const b = new RedisEngine(server.url, { prefix });
    const recorder = listener();
    await a.start(recorder);
    await b.start(listener());
    try {
      await a.subscribe('lost');
      await a.subscribe('fresh');
      const old = await b.publish('lost', '1');
      await waitFor(() => recorder.on('lost').length === 1, 'the first message');
      // Redis loses the channels (as a restart without persistence would).
      await raw.del([`${prefix}{lost}:meta`, `${prefix}{lost}:log`, `${prefix}{fresh}:meta`]);
      const renewed = await b.publish('lost', '2');
      assert.notEqual(renewed.epoch, old.epoch);
      await waitFor(() => recorder.healthChanges.includes(true), 'a resync request');
      // A channel that had delivered nothing simply goes on in the new epoch.
      const fresh = await b.publish('fresh', '1');
      await waitFor(() => recorder.on('fresh').length === 1, 'the fresh channel message');
      assert.equal(recorder.on('fresh')[0]!.epoch, fresh.epoch);
      // A message of the new epoch would have arrived in this window (none may).
      await quietWindow(50);
      assert.deepEqual(recorder.on('lost').map((m) => m.epoch), [old.epoch], 'no message of the new epoch');
      // Subscribing again starts over in the new epoch.
      await a.unsubscribe('lost');
      await a.subscribe('lost');
      await b.publish('lost', '3');
      await waitFor(() => recorder.on('lost').length === 2, 'the new subscription');
      assert.deepEqual([recorder.on('lost')[1]!.epoch, recorder.on('lost')[1]!.offset], [renewed.epoch, 2]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a Redis that stops answering: calls fail within the command timeout, the queue is bounded, health false then true', async () => {
    const own = await RedisServer.start();
    const engine = new RedisEngine(own.url, { prefix: freshPrefix(), commandTimeout: 300, maxQueuedCommands: 20, nodeTtl: 900 });
    const recorder = listener();
    await engine.start(recorder);
    try {
      await engine.publish('stuck', '1');
      process.kill(own.pid!, 'SIGSTOP');
      try {
        const started = Date.now();
        const calls = Array.from({ length: 30 }, (_, n) => engine.publish('stuck', String(n)));
        const results = await Promise.allSettled(calls);
        const elapsed = Date.now() - started;
        assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof EngineUnavailableError));
        const messages = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : ''));
        assert.ok(messages.filter((m) => /queue is full/.test(m)).length >= 10, 'past 20 waiting, refused at once');
        assert.ok(messages.some((m) => /within 300 ms/.test(m)), 'the rest time out');
        assert.ok(elapsed < 1_500, `all settled within ${elapsed} ms`);
        // The heartbeat (every 300 ms) times out too: the engine reports itself unhealthy.
        await waitFor(() => !engine.healthy, 'unhealthy while Redis does not answer', 5_000);
        assert.deepEqual(recorder.healthChanges, [false]);
      } finally {
        process.kill(own.pid!, 'SIGCONT');
      }
      await waitFor(async () => {
        try {
          return (await engine.publish('stuck', '"after"')).offset > 1;
        } catch {
          return false;
        }
      }, 'working again');
      await waitFor(() => engine.healthy, 'healthy again', 10_000);
      assert.deepEqual(recorder.healthChanges, [false, true]);
    } finally {
      await engine.close();
      await own.close();
    }
  });

  test('options are checked', () => {
    assert.throws(() => new RedisEngine('redis://x', { prefix: 'a{b}' }), RangeError);
    assert.throws(() => new RedisEngine('redis://x', { historySize: -1 }), RangeError);
    assert.throws(() => new RedisEngine('redis://x', { nodeTtl: 0 }), RangeError);
  });
});
