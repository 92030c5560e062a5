// A namespace's presence options on a real `hotline serve` (the built CLI): `stateSchema`
// (from a config file) checks presence state, an invalid one answered `bad_request` naming
// the field and a valid one reaching the other subscribers; `joinLeave: false` stops the
// join and leave pushes while `presence` still answers the members and state updates still
// go out, and the `presence` answer says `joinLeave: false`, which the SDK's live map
// reads; and the server-wide `--no-join-leave` with a namespace turning it back on. The
// HTTP API's presence answers as a client's request does: bounded members, count, truncated,
// and the count alone where the member list is off.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelsClient, assertErr, ok, type WireMessage } from './support/channels-client.js';
import { apiResult } from './support/api-client.js';
import { closeClients, sdk } from './support/delivery.js';
import { ids, joined } from './support/sdk-presence.js';
import { startCli, type CliServer } from './support/cli-server.js';
import { waitFor } from './support/wait.js';

const CURSOR = {
  type: 'object',
  properties: { cursor: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' } }, required: ['x', 'y'] } },
  additionalProperties: false,
};
const NAMESPACES = {
  'room:*': { subscribe: 'anyone', publish: 'anyone', stateSchema: CURSOR },
  'crowd:*': { subscribe: 'anyone', publish: 'anyone', joinLeave: false },
  'chat:*': { subscribe: 'anyone', publish: 'anyone' },
};

const dir = mkdtempSync(join(tmpdir(), 'hotline-presence-ns-'));
let cli: CliServer;
/** `--no-join-leave` server-wide, one namespace turning it on again. */
let quiet: CliServer;
/** The HTTP API on, at most 2 members listed. */
let api: CliServer;
const KEY = 'presence-api-key-0123456789';
const clients: ChannelsClient[] = [];

before(async () => {
  const config = join(dir, 'hotline.json');
  writeFileSync(config, `// presence per namespace\n${JSON.stringify({ namespaces: NAMESPACES, presenceGrace: 0 })}`);
  const quietNamespaces = JSON.stringify({ 'loud:*': { subscribe: 'anyone', joinLeave: true }, '*': { subscribe: 'anyone' } });
  const apiNamespaces = JSON.stringify({ 'count:*': { subscribe: 'anyone', presence: false }, '*': { subscribe: 'anyone' } });
  [cli, quiet, api] = await Promise.all([
    startCli(0, ['--config', config]),
    startCli(0, ['--no-join-leave', '--presence-grace', '0', '--namespaces', quietNamespaces]),
    startCli(0, ['--api-key', KEY, '--max-presence-members', '2', '--namespaces', apiNamespaces]),
  ]);
});

after(async () => {
  for (const client of clients) client.terminate();
  await Promise.all([cli?.stop(), quiet?.stop(), api?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

async function connect(server: CliServer): Promise<ChannelsClient> {
  const client = await ChannelsClient.connect(`${server.ws}/ws`);
  clients.push(client);
  return client;
}

/** The presence pushes `client` got on `ch` so far, as [op, member's client id]. */
function pushes(client: ChannelsClient, ch: string): Array<[string, string]> {
  return client.log.filter((m: WireMessage) => m.ch === ch && ['join', 'update', 'leave'].includes(m.op)).map((m) => [m.op, String(m.member?.['client'])]);
}

describe("a namespace's stateSchema", () => {
  test('an invalid state is answered bad_request naming the field and reaches nobody; a valid one reaches the others', async () => {
    const ch = 'room:schema';
    const [setter, other] = [await connect(cli), await connect(cli)];
    await ok(setter, 'sub', { ch });
    await ok(other, 'sub', { ch });
    const id = setter.peekId();
    const message = assertErr(await setter.request('state', { ch, state: { cursor: { x: 'left', y: 2 } } }), 'bad_request', id);
    assert.match(message, /cursor\.x: must be number/, message);
    const extraId = setter.peekId();
    assert.match(assertErr(await setter.request('state', { ch, state: { cursor: { x: 1, y: 2 }, admin: true } }), 'bad_request', extraId), /additional properties/);
    await ok(setter, 'state', { ch, state: { cursor: { x: 1, y: 2 } } });
    const update = await other.waitFor((m) => m.op === 'update' && m.ch === ch, 'the valid state as an update', undefined, 0);
    assert.deepEqual(update.member?.['state'], { cursor: { x: 1, y: 2 } });
    assert.equal(other.ofOp('update', ch).length, 1, 'the invalid ones were never pushed');
    const answer = await ok(other, 'presence', { ch });
    assert.deepEqual(
      answer.members?.map((member) => member['state']).filter((state) => state !== undefined),
      [{ cursor: { x: 1, y: 2 } }],
    );
  });
});

describe('joinLeave', () => {
  /**
   * Three connections on `ch`: `first` sees `second` and `third` subscribe, `third` set a
   * state and close, then `second` set a state: a leave pushed for `third` would have come
   * before that last update (one connection's pushes keep their order).
   */
  async function crowd(server: CliServer, ch: string): Promise<{ seen: Array<[string, string]>; members: string[]; ids: Record<string, string> }> {
    const first = await connect(server);
    await ok(first, 'sub', { ch });
    const [second, third] = [await connect(server), await connect(server)];
    await ok(second, 'sub', { ch });
    await ok(third, 'sub', { ch });
    const listed = await ok(first, 'presence', { ch });
    const ids: Record<string, string> = {};
    for (const [name, client] of [['second', second], ['third', third]] as const) {
      await ok(client, 'state', { ch, state: { name } });
      const update = await first.waitFor((m) => m.op === 'update' && (m.member?.['state'] as { name?: string } | undefined)?.name === name, `${name}'s update`, undefined, 0);
      ids[name] = String(update.member?.['client']);
    }
    assert.equal(listed.members?.length, 3, `presence answers all three (${JSON.stringify(listed)})`);
    await third.close();
    await waitFor(async () => (await ok(first, 'presence', { ch })).members?.length === 2, 'the closed one gone from presence', { every: 100 });
    await ok(second, 'state', { ch, state: { name: 'second', last: true } });
    await first.waitFor((m) => m.op === 'update' && (m.member?.['state'] as { last?: boolean } | undefined)?.last === true, 'the last update', undefined, 0);
    const members = (await ok(first, 'presence', { ch })).members!.map((member) => String(member['client']));
    return { seen: pushes(first, ch), members, ids };
  }

  test('off in a namespace: no join or leave pushed, updates still are, and presence answers the members', async () => {
    const { seen, members, ids } = await crowd(cli, 'crowd:big');
    assert.deepEqual(seen, [
      ['update', ids['second']],
      ['update', ids['third']],
      ['update', ids['second']],
    ]);
    assert.equal(members.length, 2);
    assert.ok(members.includes(ids['second']!) && !members.includes(ids['third']!), 'the closed one gone from presence');
  });

  test('the presence answer says joinLeave: false where none are pushed, and nothing where they are', async () => {
    const client = await connect(cli);
    await ok(client, 'sub', { ch: 'crowd:told' });
    await ok(client, 'sub', { ch: 'chat:told' });
    assert.equal((await ok(client, 'presence', { ch: 'crowd:told' })).joinLeave, false);
    assert.equal('joinLeave' in (await ok(client, 'presence', { ch: 'chat:told' })), false);
  });

  test('on by default elsewhere: the same steps push joins and the leave', async () => {
    const { seen, ids } = await crowd(cli, 'chat:small');
    const joins = seen.filter(([op]) => op === 'join');
    assert.equal(joins.length, 3, `its own join and the two others' (${JSON.stringify(seen)})`);
    assert.deepEqual(
      seen.filter(([op]) => op !== 'join'),
      [
        ['update', ids['second']],
        ['update', ids['third']],
        ['leave', ids['third']],
        ['update', ids['second']],
      ],
    );
  });

  test('--no-join-leave server-wide; a namespace with joinLeave: true pushes them again', async () => {
    const off = await crowd(quiet, 'any:thing');
    assert.deepEqual(
      off.seen.map(([op]) => op),
      ['update', 'update', 'update'],
    );
    const on = await crowd(quiet, 'loud:thing');
    assert.deepEqual(
      on.seen.map(([op]) => op),
      ['join', 'join', 'join', 'update', 'update', 'leave', 'update'],
    );
  });
});

describe("the SDK's live map", () => {
  afterEach(() => closeClients());

  test('channel.presence.joinLeave is false where no joins and leaves are pushed, true where they are', async () => {
    const client = sdk(`${cli.ws}/ws`);
    const crowd = await joined(client, 'crowd:sdk');
    const chat = await joined(client, 'chat:sdk');
    await waitFor(() => ids(crowd).length === 1 && ids(chat).length === 1, 'both maps filled from the server');
    assert.equal(crowd.presence.joinLeave, false, 'the crowd channel pushes no joins or leaves: its map says it misses them');
    assert.equal(chat.presence.joinLeave, true);
  });
});

describe('the HTTP API presence', () => {
  test('the members a client would get: at most maxPresenceMembers, the count of all, truncated; a count alone where the list is off', async () => {
    const subscribers = [await connect(api), await connect(api), await connect(api)];
    for (const client of subscribers) {
      await ok(client, 'sub', { ch: 'list:a' });
      await ok(client, 'sub', { ch: 'count:a' });
    }
    await ok(subscribers[0]!, 'state', { ch: 'list:a', state: { typing: true } });
    const listed = await apiResult<{ members: Array<Record<string, unknown>>; count: number; truncated?: boolean }>(api.http, 'presence', { channel: 'list:a' }, KEY);
    assert.deepEqual(Object.keys(listed).sort(), ['count', 'members', 'truncated']);
    assert.equal(listed.count, 3);
    assert.equal(listed.truncated, true);
    assert.equal(listed.members.length, 2, 'maxPresenceMembers 2');
    const wire = await ok(subscribers[1]!, 'presence', { ch: 'list:a' });
    assert.deepEqual({ members: wire.members, count: wire.count, truncated: wire.truncated }, listed, "what a client's presence request gets");
    assert.deepEqual(await apiResult(api.http, 'presence', { channel: 'count:a' }, KEY), { count: 3 });
    assert.deepEqual(await apiResult(api.http, 'presence', { channel: 'list:nobody' }, KEY), { members: [], count: 0 });
  });
});
