// The proxy hooks of `hotline serve` against a backend written in Python (standard library
// only, test/support/proxy-backend.py), over real /ws connections to a server process: what
// the backend is sent, its allow and deny reaching the client, a publish rewritten, rpc
// answered in Python, and a backend that is slow, down or answers wrongly, each answered
// with a clear error while the connection goes on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { ProxyConfig } from '../src/server/config/sections.js';
import type { AttackTarget } from './support/attack.js';
import { ChannelsClient, assertErr, ok, withoutClient } from './support/channels-client.js';
import { freePort } from './support/ports.js';
import { startScriptTarget } from './support/limits-target.js';
import { PythonBackend, pythonMissing, refusal } from './support/proxy-backend.js';
import { waitFor } from './support/wait.js';


const APP = fileURLToPath(new URL('./support/app-server.ts', import.meta.url));
const missing = pythonMissing();
if (missing !== null) console.warn(`SKIPPED serve-proxy: ${missing}`);
/** Long enough for a busy machine to answer, short enough to wait out: the backend's slow answers sleep 5 s. */
const TIMEOUT = 1_000;

function hooks(base: (hook: string) => string): ProxyConfig {
  const hook = (name: string) => ({ url: base(name), timeout: TIMEOUT });
  return { connect: hook('connect'), subscribe: hook('subscribe'), publish: hook('publish'), rpc: hook('rpc') };
}

/** The newest `proxy failed` log line of a hook and kind the server wrote. */
async function logged(server: AttackTarget, hook: string, kind: string): Promise<Record<string, unknown>> {
  const found = (): Record<string, unknown> | undefined =>
    server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === 'proxy failed' && l.hook === hook && l.kind === kind);
  // stderr may trail the answer the client saw by a moment: wait on the line's arrival.
  return waitFor(found, `the server to log the ${kind} ${hook}`, { state: () => server.output() });
}

describe('proxy hooks against a Python backend', { skip: missing ?? false }, () => {
  let backend: PythonBackend;
  let server: AttackTarget;
  const clients: ChannelsClient[] = [];
  const connect = async (headers: Record<string, string> = {}, path = '/ws'): Promise<ChannelsClient> => {
    const client = await ChannelsClient.connect(server.ws + path, { headers });
    clients.push(client);
    return client;
  };

  before(async () => {
    backend = await PythonBackend.start(5);
    server = await startScriptTarget(APP, { proxy: hooks((name) => backend.url(name)) });
  });
  after(async () => {
    for (const client of clients) client.ws.terminate();
    await server?.stop();
    await backend?.stop();
  });

  test('connect: the backend is told who is upgrading, and its identity is the connection’s', async () => {
    const from = backend.mark;
    const ada = await connect({ authorization: 'Bearer ada', cookie: 'session=1', 'x-other': 'not passed on' }, '/ws?room=7');
    const seen = await backend.next((r) => r.hook === 'connect', 'the connect request', from);
    assert.match(String(seen.body.client), /^[\w-]+\.\w+$/);
    assert.equal(seen.body.transport, 'websocket');
    assert.equal(seen.body.url, '/ws?room=7');
    assert.equal(seen.body.address, '127.0.0.1');
    assert.equal(seen.body.user, undefined, 'nobody proved a user before the hook');
    const headers = seen.body.headers as Record<string, string>;
    assert.equal(headers.authorization, 'Bearer ada');
    assert.equal(headers.cookie, 'session=1');
    assert.equal(headers['x-other'], undefined, 'only the listed headers');
    // The identity the backend gave: the user of later hooks, and the presence member.
    const who = await ok(ada, 'rpc', { method: 'whoami' });
    assert.deepEqual(who.result, { user: 'ada', cookie: 'session=1' });
    const rpcSeen = await backend.next((r) => r.hook === 'rpc' && r.body.method === 'whoami', 'the whoami request', from);
    assert.equal(rpcSeen.body.client, seen.body.client, 'the same client id at connect and later');
    await ok(ada, 'sub', { ch: 'room:7' });
    const members = await ok(ada, 'presence', { ch: 'room:7' });
    assert.deepEqual(withoutClient(members.members), [{ id: 'ada', info: { name: 'ada' } }]);
  });

  test('connect: a denial refuses the upgrade with its status and reason; none is anonymous', async () => {
    const refused = await refusal(`${server.ws}/ws`, { authorization: 'Bearer banned' });
    assert.equal(refused.status, 403);
    assert.match(refused.body, /banned/);
    const anonymous = await connect();
    assert.deepEqual((await ok(anonymous, 'rpc', { method: 'whoami' })).result, { user: null, cookie: null });
  });

  test('subscribe: allowed, or denied with the backend’s reason; the backend is told the channel and user', async () => {
    const ada = await connect({ authorization: 'Bearer ada' });
    const from = backend.mark;
    await ok(ada, 'sub', { ch: 'open:1' });
    const seen = await backend.next((r) => r.hook === 'subscribe', 'the subscribe request', from);
    assert.equal(seen.body.channel, 'open:1');
    assert.equal(seen.body.user, 'ada');
    const denied = await ada.request('sub', { ch: 'secret:1' });
    assert.equal(assertErr(denied, 'forbidden', denied.id), 'members only');
    // Refused, so not subscribed: a publish there reaches nobody on this connection.
    assert.equal((await ok(ada, 'presence', { ch: 'secret:1' })).members?.length, 0);
  });

  test('publish: allowed as sent, rewritten by the backend, or denied', async () => {
    const ada = await connect({ authorization: 'Bearer ada' });
    const lin = await connect({ authorization: 'Bearer lin' });
    await ok(lin, 'sub', { ch: 'rewrite:1' });
    await ok(lin, 'sub', { ch: 'open:2' });
    await ok(ada, 'pub', { ch: 'open:2', data: { text: 'as is' } });
    assert.deepEqual((await lin.waitFor((m) => m.op === 'msg' && m.ch === 'open:2', 'the message', undefined, 0)).data, { text: 'as is' });
    const published = await ok(ada, 'pub', { ch: 'rewrite:1', data: { text: 'hello' } });
    assert.equal(published.delivered, 1);
    assert.deepEqual((await lin.waitFor((m) => m.op === 'msg' && m.ch === 'rewrite:1', 'the rewritten message', undefined, 0)).data, { text: 'HELLO', by: 'ada' });
    // What history keeps is the rewrite too.
    const history = await ok(lin, 'history', { ch: 'rewrite:1' });
    assert.deepEqual(history.messages?.map((m) => m.data), [{ text: 'HELLO', by: 'ada' }]);
    const denied = await ada.request('pub', { ch: 'readonly:1', data: 1 });
    assert.equal(assertErr(denied, 'forbidden', denied.id), 'read-only channel');
  });

  test('rpc: answered by the backend, its errors passed on with their code', async () => {
    const ada = await connect({ authorization: 'Bearer ada' });
    const from = backend.mark;
    assert.equal((await ok(ada, 'rpc', { method: 'add', params: { a: 2, b: 3 } })).result, 5);
    const seen = await backend.next((r) => r.hook === 'rpc', 'the rpc request', from);
    assert.deepEqual(seen.body.params, { a: 2, b: 3 });
    assert.equal(seen.body.method, 'add');
    const failed = await ada.request('rpc', { method: 'fail' });
    assert.equal(assertErr(failed, 'forbidden', failed.id), 'not today');
    const unknown = await ada.request('rpc', { method: 'nope' });
    assert.equal(assertErr(unknown, 'not_found', unknown.id), 'no method nope');
  });

  test('a backend that does not answer in time: internal, saying so, and the connection goes on', async () => {
    const ada = await connect({ authorization: 'Bearer ada' });
    const started = Date.now();
    const slow = await ada.request('sub', { ch: 'slow:1' });
    assert.equal(assertErr(slow, 'internal', slow.id), `the backend did not answer subscribe within ${TIMEOUT} ms`);
    assert.ok(Date.now() - started < 4_000, 'answered at the timeout, not when the backend woke');
    await ok(ada, 'sub', { ch: 'open:3' });
    await logged(server, 'subscribe', 'timeout');
    const metrics = await server.get('/metrics');
    assert.match(metrics.text, /^hotline_proxy_failures_total\{hook="subscribe",kind="timeout"\} [1-9]/m);
    assert.match(metrics.text, /^hotline_proxy_calls_total\{hook="subscribe"\} [1-9]/m);
    const upgrade = await refusal(`${server.ws}/ws?slow`);
    assert.equal(upgrade.status, 503);
    assert.equal(upgrade.headers['retry-after'], '1');
    assert.match(upgrade.body, /did not answer connect within 1000 ms/);
  });

  test('a backend answering wrongly: internal to the client, 502 to an upgrade, and logged as its fault', async () => {
    const ada = await connect({ authorization: 'Bearer ada' });
    const bad = await ada.request('sub', { ch: 'bad:1' });
    assert.equal(assertErr(bad, 'internal', bad.id), "the backend's answer to subscribe was not valid");
    const line = await logged(server, 'subscribe', 'malformed');
    assert.equal(line.level, 'error');
    assert.match(String(line.detail), /`allow` must be true or false/);
    const huge = await ada.request('sub', { ch: 'huge:1' });
    assert.equal(assertErr(huge, 'internal', huge.id), "the backend's answer to subscribe was not valid");
    await logged(server, 'subscribe', 'too_large');
    const garbage = await refusal(`${server.ws}/ws?garbage`);
    assert.equal(garbage.status, 502);
    await ok(ada, 'sub', { ch: 'open:4' });
  });
});

describe('proxy hooks with the backend down', { skip: missing ?? false }, () => {
  let server: AttackTarget;

  before(async () => {
    // A port nothing listens on: every call is refused by the system (ECONNREFUSED).
    const port = await freePort();
    const base = (hook: string): string => `http://127.0.0.1:${port}/${hook}`;
    server = await startScriptTarget(APP, { proxy: { ...hooks(base), connect: undefined } });
  });
  after(async () => {
    await server?.stop();
  });

  test('each request is answered internal, saying the backend could not be reached', async () => {
    const client = await ChannelsClient.connect(`${server.ws}/ws`);
    try {
      for (const [op, fields, hook] of [
        ['sub', { ch: 'room:1' }, 'subscribe'],
        ['pub', { ch: 'room:1', data: 1 }, 'publish'],
        ['rpc', { method: 'add' }, 'rpc'],
      ] as const) {
        const answer = await client.request(op, fields);
        assert.equal(assertErr(answer, 'internal', answer.id), `the backend could not be reached for ${hook}`);
        await logged(server, hook, 'unreachable');
      }
      await ok(client, 'ping');
    } finally {
      client.ws.terminate();
    }
  });

  test('a connect hook that cannot reach the backend refuses the upgrade with 503', async () => {
    const port = await freePort();
    const down = await startScriptTarget(APP, { proxy: { connect: { url: `http://127.0.0.1:${port}/connect`, timeout: TIMEOUT } } });
    try {
      const refused = await refusal(`${down.ws}/ws`);
      assert.equal(refused.status, 503);
      assert.match(refused.body, /could not be reached for connect/);
    } finally {
      await down.stop();
    }
  });
});
