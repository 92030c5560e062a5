// Presence as a user of the SDK sees it, on a real `hotline serve`: three anonymous clients
// see each other in `channel.presence`; one closes and is gone after the grace period; one
// is cut off at the TCP level (a reset, no close frame), reconnects through the proxy and
// resubscribes: nobody sees it leave or join, and its own map comes back exact (no ghost,
// no duplicate). Presence state follows a client across that reconnect. Ephemeral messages
// arrive as `ephemeral` events between channel messages without ever making the channel
// resync, and are in no history.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Channel } from '../src/client/index.js';
import { startCli, type CliServer } from './support/cli-server.js';
import { closeClients, sdk } from './support/delivery.js';
import { CutProxy } from './support/sdk-proxy.js';
import { events, ids, joined } from './support/sdk-presence.js';
import { quietWindow, waitFor } from './support/wait.js';

const GRACE = 400;
let server: CliServer;
let proxy: CutProxy;

before(async () => {
  server = await startCli(0, ['--presence-grace', String(GRACE)]);
  proxy = await CutProxy.start(server.port);
});
afterEach(() => closeClients());
after(async () => {
  await proxy?.close();
  await server?.stop();
});

describe('presence through the SDK', () => {
  test('three anonymous pages: one closes, one reconnects through a cut; the members are exact throughout', async () => {
    const name = `room:${process.pid}:1`;
    const a = await joined(sdk(`${server.ws}/ws`), name);
    const cutClient = sdk(`ws://127.0.0.1:${proxy.port}/ws`);
    const b = await joined(cutClient, name);
    const closing = sdk(`${server.ws}/ws`);
    const c = await joined(closing, name);
    const idOf = (channel: Channel<unknown>): string => channel.presence.clientId!;
    const all = [idOf(a), idOf(b), idOf(c)].sort();
    for (const channel of [a, b, c]) await waitFor(() => ids(channel).join() === all.join(), `three members in each map (${ids(channel).join()})`);
    const aEvents = events(a);
    const cId = idOf(c);

    // A client closes: it leaves after the grace period.
    closing.close();
    await waitFor(() => ids(a).length === 2 && ids(b).length === 2, 'the closed client gone from both maps');
    assert.deepEqual(aEvents, [['leave', cId]]);
    const remaining = [idOf(a), idOf(b)].sort();

    // b is cut without a close frame: it reconnects and resubscribes with the same client id.
    const bId = idOf(b);
    let resubscribed = false;
    b.on('subscribed', (event) => {
      if (!event.first) resubscribed = true;
    });
    assert.equal(proxy.cut(), 1);
    await waitFor(() => resubscribed && cutClient.state === 'open', 'b resubscribed');
    await waitFor(() => b.presence.clientId === bId, 'the same client id after the reconnect');
    await waitFor(() => ids(b).join() === remaining.join(), `b's map exact again (${ids(b).join()})`);
    assert.deepEqual(ids(a), remaining);
    // The grace period passes: b's old connection must not take b away.
    await a.presence.fetch();
    await quietWindow(GRACE * 2);
    assert.deepEqual((await a.presence.fetch()).members.map((m) => String(m['client'])).sort(), remaining, 'no ghost, no leave of b after the grace period');
    assert.deepEqual(aEvents, [['leave', cId]], 'a never saw b leave or join');
    assert.deepEqual(ids(b), remaining, 'no duplicate');
  });

  test('presence state reaches the others as updates and is entered again after a reconnect', async () => {
    const name = `doc:${process.pid}:2`;
    const watcher = await joined(sdk(`${server.ws}/ws`), name);
    const cutClient = sdk(`ws://127.0.0.1:${proxy.port}/ws`);
    const writer = await joined(cutClient, name);
    await writer.presence.enter({ cursor: { x: 1, y: 2 } });
    const stateOf = (): unknown => watcher.presence.get().find((m) => m['client'] === writer.presence.clientId)?.['state'];
    await waitFor(() => JSON.stringify(stateOf()) === '{"cursor":{"x":1,"y":2}}', 'the state at the watcher');
    await writer.presence.update({ cursor: { x: 3, y: 4 } });
    await waitFor(() => JSON.stringify(stateOf()) === '{"cursor":{"x":3,"y":4}}', 'the update at the watcher');
    let resubscribed = false;
    writer.on('subscribed', (event) => {
      if (!event.first) resubscribed = true;
    });
    const seen = events(watcher);
    proxy.cut();
    // The server keeps the member through the grace period, and the reconnect takes it over
    // without its state (an update); the SDK enters it again (another).
    await waitFor(() => resubscribed, 'the writer resubscribed');
    await waitFor(async () => {
      const members = (await watcher.presence.fetch()).members;
      return JSON.stringify(members.find((m) => m['client'] === writer.presence.clientId)?.['state']) === '{"cursor":{"x":3,"y":4}}';
    }, 'the state back after the reconnect');
    await waitFor(() => JSON.stringify(stateOf()) === '{"cursor":{"x":3,"y":4}}', 'in the live map too');
    assert.ok(
      seen.every(([kind]) => kind === 'update'),
      `no leave or join across the reconnect (${JSON.stringify(seen)})`,
    );
    await writer.presence.leave();
    await waitFor(() => stateOf() === undefined, 'cleared');
    assert.equal(watcher.presence.get().length, 2, 'leave() clears the state; the client stays a member while subscribed');
  });

  test("an ephemeral message carries its publisher's client id, set by the server: data claiming another's proves nothing", async () => {
    const name = `cursor:${process.pid}:4`;
    const reader = await joined(sdk(`${server.ws}/ws`), name);
    const victim = await joined(sdk(`${server.ws}/ws`), name);
    const liar = await joined(sdk(`${server.ws}/ws`), name);
    const got: Array<[unknown, string | undefined]> = [];
    reader.on('ephemeral', (data, meta) => got.push([data, meta.client]));
    await liar.publish({ c: victim.presence.clientId, x: 0.5 }, { ephemeral: true });
    await victim.publish({ x: 0.1 }, { ephemeral: true });
    await waitFor(() => got.length === 2, 'both ephemeral messages');
    assert.deepEqual(got, [
      [{ c: victim.presence.clientId, x: 0.5 }, liar.presence.clientId],
      [{ x: 0.1 }, victim.presence.clientId],
    ]);
    assert.notEqual(liar.presence.clientId, victim.presence.clientId);
  });

  test('ephemeral messages arrive between channel messages without a gap or a resync, and are in no history', async () => {
    const name = `cursor:${process.pid}:3`;
    const reader = sdk(`${server.ws}/ws`).channel(name) as Channel<unknown>;
    const states: string[] = [];
    reader.on('state', (state) => states.push(state));
    const got: Array<[string, unknown]> = [];
    reader.on('message', (data, meta) => got.push([`msg ${meta.offset}`, data]));
    reader.on('ephemeral', (data) => got.push(['ephemeral', data]));
    await reader.subscribe();
    const writer = sdk(`${server.ws}/ws`).channel(name) as Channel<unknown>;
    for (let n = 1; n <= 20; n++) {
      if (n % 4 === 0) assert.ok('offset' in (await writer.publish({ n })));
      else assert.deepEqual(Object.keys(await writer.publish({ n }, { ephemeral: true })), ['delivered']);
    }
    await waitFor(() => got.length === 20, 'all twenty');
    assert.deepEqual(
      got.filter(([kind]) => kind !== 'ephemeral').map(([kind]) => kind),
      ['msg 1', 'msg 2', 'msg 3', 'msg 4', 'msg 5'],
      'offsets 1 to 5: the ephemeral ones took none',
    );
    assert.ok(!states.includes('resyncing'), `the gap detector never fired (${states.join()})`);
    const history = await reader.history();
    assert.deepEqual(
      history.messages.map((m) => m.data),
      [4, 8, 12, 16, 20].map((n) => ({ n })),
    );
  });
});
