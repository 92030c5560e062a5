// The Python backend of docs/serve/proxy.md, run as it is printed, as the backend of a real
// server process: each of its four hooks does what the page says it does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttackTarget } from './support/attack.js';
import { ChannelsClient, assertErr, ok, withoutClient } from './support/channels-client.js';
import { startScriptTarget } from './support/limits-target.js';
import { PythonBackend, pythonMissing, refusal } from './support/proxy-backend.js';


const APP = fileURLToPath(new URL('./support/app-server.ts', import.meta.url));
const PAGE = fileURLToPath(new URL('../docs/serve/proxy.md', import.meta.url));
const missing = pythonMissing();
if (missing !== null) console.warn(`SKIPPED serve-proxy-docs: ${missing}`);

/** The page's one ```python block. */
function pythonBlock(): string {
  const blocks = [...readFileSync(PAGE, 'utf8').matchAll(/^```python\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  assert.equal(blocks.length, 1, 'docs/serve/proxy.md has one Python block');
  return blocks[0]!;
}

describe('the Python backend of docs/serve/proxy.md', { skip: missing ?? false }, () => {
  let dir: string;
  let backend: PythonBackend;
  let server: AttackTarget;
  const clients: ChannelsClient[] = [];
  const connect = async (headers: Record<string, string> = {}): Promise<ChannelsClient> => {
    const client = await ChannelsClient.connect(`${server.ws}/ws`, { headers });
    clients.push(client);
    return client;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotline-proxy-docs-'));
    writeFileSync(join(dir, 'backend.py'), pythonBlock());
    backend = await PythonBackend.run(join(dir, 'backend.py'), ['0']);
    const url = (hook: string) => ({ url: `http://127.0.0.1:${backend.port}/${hook}` });
    server = await startScriptTarget(APP, { proxy: { connect: url('connect'), subscribe: url('subscribe'), publish: url('publish'), rpc: url('rpc') } });
  });
  after(async () => {
    for (const client of clients) client.ws.terminate();
    await server?.stop();
    await backend?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('connect: a known session is its user, an unknown one is refused 401, none is anonymous', async () => {
    const ada = await connect({ cookie: 'theme=dark; session=s3cr3t' });
    await ok(ada, 'sub', { ch: 'room:1' });
    assert.deepEqual(withoutClient((await ok(ada, 'presence', { ch: 'room:1' })).members), [{ id: 'ada', info: { name: 'Ada' } }]);
    const refused = await refusal(`${server.ws}/ws`, { cookie: 'session=stolen' });
    assert.equal(refused.status, 401);
    assert.match(refused.body, /unknown session/);
    const anonymous = await connect();
    const denied = await anonymous.request('sub', { ch: 'private:ada' });
    assert.equal(assertErr(denied, 'forbidden', denied.id), 'not your channel');
  });

  test('subscribe: only your own private channel', async () => {
    const ada = await connect({ cookie: 'session=s3cr3t' });
    await ok(ada, 'sub', { ch: 'private:ada' });
    const denied = await ada.request('sub', { ch: 'private:lin' });
    assert.equal(assertErr(denied, 'forbidden', denied.id), 'not your channel');
  });

  test('publish: every message signed with its author; data that is not an object refused', async () => {
    const ada = await connect({ cookie: 'session=s3cr3t' });
    const reader = await connect();
    await ok(reader, 'sub', { ch: 'chat:1' });
    await ok(ada, 'pub', { ch: 'chat:1', data: { text: 'hi' } });
    const message = await reader.waitFor((m) => m.op === 'msg' && m.ch === 'chat:1', 'the message', undefined, 0);
    assert.deepEqual(message.data, { text: 'hi', by: 'ada' });
    const refused = await ada.request('pub', { ch: 'chat:1', data: 5 });
    assert.equal(assertErr(refused, 'bad_request', refused.id), 'send an object');
  });

  test('rpc: time answered, other methods not_found', async () => {
    const ada = await connect({ cookie: 'session=s3cr3t' });
    const before = Date.now();
    const { result } = await ok(ada, 'rpc', { method: 'time' });
    assert.ok(typeof result === 'number' && result >= before - 1000 && result <= Date.now() + 1000, `the time: ${String(result)}`);
    const unknown = await ada.request('rpc', { method: 'nope' });
    assert.equal(assertErr(unknown, 'not_found', unknown.id), 'no method nope');
  });
});
