// Namespaces enforced on /ws, over real connections: each access level (anyone,
// authenticated, claim, token, server) checked both ways for subscribe, publish, history and
// presence; a channel in no namespace refused; a namespace's data schema, history size,
// presence off and publish rate. The anonymous ones through `hotline serve --config` (the
// built CLI); those that need an identity through createApp with an app-level authenticate in
// a process of its own (test/support/namespaces-server.ts), until JWT connection tokens land.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChannelsClient, assertErr, ok, type WireMessage } from './support/channels-client.js';
import { ChildLines } from './support/child-lines.js';
import { startCli, type CliServer } from './support/cli-server.js';

const NAMESPACES = {
  'open:*': { subscribe: 'anyone', publish: 'anyone' },
  'members:*': { subscribe: 'authenticated', publish: 'authenticated' },
  'private:*': { subscribe: 'claim', publish: 'claim' },
  'secret:*': { subscribe: 'token', publish: 'token' },
  'news:*': { subscribe: 'anyone', publish: 'server', history: 'authenticated', presenceRead: 'authenticated' },
  'quiet:*': { subscribe: 'anyone', publish: 'anyone', presence: false },
  'short:*': { subscribe: 'anyone', publish: 'anyone', historySize: 2 },
  'typed:*': {
    subscribe: 'anyone',
    publish: 'anyone',
    schema: { type: 'object', properties: { text: { type: 'string', maxLength: 10 } }, required: ['text'], additionalProperties: false },
  },
  'slow:*': { subscribe: 'anyone', publish: 'anyone', publishRate: '1:2' },
};

let app: { child: ChildProcess; port: number };
let cli: CliServer;
const dir = mkdtempSync(join(tmpdir(), 'hotline-namespaces-'));
const clients: ChannelsClient[] = [];

before(async () => {
  const script = fileURLToPath(new URL('./support/namespaces-server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(NAMESPACES)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new ChildLines(child).next((l) => l.startsWith('namespaces-server ready'), 'the ready line', 20_000);
  app = { child, port: Number(/port=(\d+)/.exec(line)![1]) };
  const config = join(dir, 'hotline.json');
  writeFileSync(config, `// the anonymous namespaces\n${JSON.stringify({ namespaces: NAMESPACES })}`);
  cli = await startCli(0, ['--config', config]);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  app?.child.stdin!.end();
  await cli?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A connection to the app server as `user` (anonymous without), whose claim lists `channels`. */
async function as(user?: string, channels: string[] = []): Promise<ChannelsClient> {
  const query = user === undefined ? '' : `?user=${user}&channels=${channels.join(',')}`;
  const client = await ChannelsClient.connect(`ws://127.0.0.1:${app.port}/ws${query}`);
  clients.push(client);
  return client;
}

async function anonymousCli(): Promise<ChannelsClient> {
  const client = await ChannelsClient.connect(`${cli.ws}/ws`);
  clients.push(client);
  return client;
}

/** Each of the four requests on `channel`, answered as the connection may. */
async function requests(client: ChannelsClient, channel: string, token?: string): Promise<Record<'sub' | 'pub' | 'history' | 'presence', WireMessage>> {
  return {
    sub: await client.request('sub', token === undefined ? { ch: channel } : { ch: channel, token }),
    pub: await client.request('pub', { ch: channel, data: { text: 'hi' } }),
    history: await client.request('history', { ch: channel }),
    presence: await client.request('presence', { ch: channel }),
  };
}

function allowed(answers: Record<string, WireMessage>, ops: string[]): void {
  for (const op of ops) assert.equal(answers[op]!.op, 'ok', `${op}: ${JSON.stringify(answers[op])}`);
}

function refused(answers: Record<string, WireMessage>, ops: string[], code: string): void {
  for (const op of ops) assertErr(answers[op]!, code, answers[op]!.id);
}

test('anyone: an anonymous connection subscribes, publishes, reads history and presence', async () => {
  allowed(await requests(await anonymousCli(), 'open:1'), ['sub', 'pub', 'history', 'presence']);
});

test('a channel in no namespace is refused forbidden, for every request', async () => {
  const answers = await requests(await anonymousCli(), 'elsewhere');
  refused(answers, ['sub', 'pub', 'history', 'presence'], 'forbidden');
  assert.match(answers.sub.message!, /elsewhere is in no namespace/);
});

test('authenticated: anonymous refused unauthorized; a user allowed', async () => {
  refused(await requests(await as(), 'members:1'), ['sub', 'pub', 'history', 'presence'], 'unauthorized');
  allowed(await requests(await as('ada'), 'members:1'), ['sub', 'pub', 'history', 'presence']);
});

test("claim: a user whose channels claim lists the channel (by name or prefix) is allowed; one without, forbidden; anonymous, unauthorized", async () => {
  allowed(await requests(await as('ada', ['private:ada']), 'private:ada'), ['sub', 'pub', 'history', 'presence']);
  allowed(await requests(await as('ada', ['private:a*']), 'private:ab'), ['sub', 'pub', 'history', 'presence']);
  const other = await requests(await as('lin', ['private:lin']), 'private:ada');
  refused(other, ['sub', 'pub', 'history', 'presence'], 'forbidden');
  assert.match(other.sub.message!, /claim does not list private:ada/);
  refused(await requests(await as(), 'private:ada'), ['sub', 'pub', 'history', 'presence'], 'unauthorized');
});

test('token: a sub with a valid subscription token is allowed and then reads and publishes; without one, or for another user, refused', async () => {
  allowed(await requests(await as('ada'), 'secret:1', 'sub|secret:1|ada'), ['sub', 'pub', 'history', 'presence']);
  const none = await requests(await as('ada'), 'secret:1');
  assertErr(none.sub, 'unauthorized', none.sub.id);
  assert.match(none.sub.message!, /needs a subscription token/);
  // Not subscribed, so the rest is refused too.
  refused(none, ['pub', 'history', 'presence'], 'forbidden');
  const stolen = await requests(await as('lin'), 'secret:1', 'sub|secret:1|ada');
  refused(stolen, ['sub'], 'forbidden');
  const garbage = await (await as('lin')).request('sub', { ch: 'secret:1', token: 'nonsense' });
  assertErr(garbage, 'unauthorized', garbage.id);
  // A claim lets in without a token.
  allowed(await requests(await as('max', ['secret:*']), 'secret:1'), ['sub', 'pub', 'history', 'presence']);
});

test('server: clients may not publish (forbidden), whatever they are; reading follows its own levels', async () => {
  const anonymous = await requests(await anonymousCli(), 'news:1');
  allowed(anonymous, ['sub']);
  refused(anonymous, ['pub'], 'forbidden');
  assert.match(anonymous.pub.message!, /only the server may publish to news:1/);
  refused(anonymous, ['history', 'presence'], 'unauthorized');
  const user = await requests(await as('ada', ['news:*']), 'news:1');
  allowed(user, ['sub', 'history', 'presence']);
  refused(user, ['pub'], 'forbidden');
});

test("a namespace's schema: data outside it is bad_request and never delivered; data inside it is", async () => {
  const subscriber = await anonymousCli();
  await ok(subscriber, 'sub', { ch: 'typed:1' });
  const publisher = await anonymousCli();
  for (const data of [{ text: 'far too long for it' }, { text: 1 }, { other: 'x' }, 'text']) {
    const answer = await publisher.request('pub', { ch: 'typed:1', data });
    assert.match(assertErr(answer, 'bad_request', answer.id), /^invalid data for typed:1: /);
  }
  await ok(publisher, 'pub', { ch: 'typed:1', data: { text: 'fits' } });
  const delivered = await subscriber.waitFor((m) => m.op === 'msg', 'the valid message', undefined, 0);
  assert.deepEqual(delivered.data, { text: 'fits' });
  assert.equal(subscriber.log.filter((m) => m.op === 'msg').length, 1, 'only the valid one');
});

test("a namespace's historySize: history keeps that many; recovering from before them is not recovered", async () => {
  const client = await anonymousCli();
  for (let n = 1; n <= 5; n++) await ok(client, 'pub', { ch: 'short:1', data: n });
  const history = await ok(client, 'history', { ch: 'short:1' });
  assert.deepEqual(history.messages!.map((m) => m.data), [4, 5]);
  const open = await ok(client, 'history', { ch: 'open:h' });
  assert.deepEqual(open.messages, [], 'other namespaces are unaffected');
  const sub = await ok(client, 'sub', { ch: 'short:1', since: { epoch: history.epoch, offset: 1 } });
  assert.equal(sub.recovered, false);
});

test('presence off: no member list (presence answers the subscriber count alone), and no join or leave events', async () => {
  const watcher = await as('ada');
  await ok(watcher, 'sub', { ch: 'quiet:1' });
  const joiner = await as('lin');
  await ok(joiner, 'sub', { ch: 'quiet:1' });
  const answer = await ok(watcher, 'presence', { ch: 'quiet:1' });
  assert.deepEqual({ ...answer, id: 0 }, { op: 'ok', id: 0, count: 2 });
  await joiner.close();
  // A message published after the join and the leave arrives after any event they caused.
  const publisher = await as('max');
  await ok(publisher, 'pub', { ch: 'quiet:1', data: 'after' });
  await watcher.waitFor((m) => m.op === 'msg' && m.ch === 'quiet:1', 'the message after', undefined, 0);
  assert.deepEqual(watcher.log.filter((m) => m.op === 'join' || m.op === 'leave'), []);
  // Where presence is on, the same sequence shows the member.
  await ok(watcher, 'sub', { ch: 'open:p' });
  const other = await as('lin');
  await ok(other, 'sub', { ch: 'open:p' });
  const members = await ok(watcher, 'presence', { ch: 'open:p' });
  assert.deepEqual(
    members.members!.map((member) => member['id']),
    ['ada', 'lin'],
  );
});

test("a namespace's publishRate replaces the server's for its channels", async () => {
  const client = await anonymousCli();
  await ok(client, 'pub', { ch: 'slow:1', data: 1 });
  await ok(client, 'pub', { ch: 'slow:1', data: 2 });
  const third = await client.request('pub', { ch: 'slow:1', data: 3 });
  assertErr(third, 'rate_limited', third.id);
  // The server-wide bucket is another: open channels are not slowed.
  for (let n = 0; n < 5; n++) await ok(client, 'pub', { ch: 'open:r', data: n });
});
