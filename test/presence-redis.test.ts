// Presence across two `hotline serve --redis` processes, as SDK users see it: anonymous
// clients on both nodes hold the same members (client ids span the nodes, none twice); a
// state set through node A arrives at node B's clients as an `update`; a client cut off
// from node A that reconnects to node B keeps its client id and is neither a leave nor a
// join; and a node killed with SIGKILL (no goodbye) has its members and their state leave
// the other node's clients within --redis-node-ttl plus one heartbeat (a third of it).
// Ephemeral messages cross with their publisher's client id, which the server sets.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Channel, Member } from '../src/client/index.js';
import { startCli, type CliServer } from './support/cli-server.js';
import { closeClients, sdk } from './support/delivery.js';
import { RedisServer, redisServerInstalled } from './support/redis-server.js';
import { CutProxy } from './support/sdk-proxy.js';
import { events, ids, joined } from './support/sdk-presence.js';
import { quietWindow, waitFor } from './support/wait.js';

const GRACE = 400;
/** Short, so that a killed node is forgotten in about two seconds; the heartbeat is a third of it. */
const NODE_TTL = 1_500;

const skip = !redisServerInstalled() && process.env.CI !== 'true';
if (skip) process.stderr.write('\n*** SKIPPED: redis-server not installed — presence across Redis nodes did not run ***\n\n');

describe('presence across two hotline serve --redis nodes', { skip: skip ? 'redis-server not installed' : false }, () => {
  let redis: RedisServer;
  const nodes: CliServer[] = [];
  let a: CliServer;
  let b: CliServer;

  const startNode = async (): Promise<CliServer> => {
    const node = await startCli(0, ['--redis', redis.url, '--redis-node-ttl', String(NODE_TTL), '--presence-grace', String(GRACE)], { startTimeout: 30_000 });
    nodes.push(node);
    return node;
  };

  before(async () => {
    if (!redisServerInstalled()) throw new Error('redis-server not installed: CI must run the Redis engine tests');
    redis = await RedisServer.start();
    [a, b] = await Promise.all([startNode(), startNode()]);
  });
  afterEach(() => closeClients());
  after(async () => {
    closeClients();
    await Promise.all(nodes.map((node) => node.stop('SIGKILL')));
    await redis?.close();
  });

  test('members are exact on both nodes: client ids span them, none twice; a state set on A is an update on B', async () => {
    const name = `room:${process.pid}:1`;
    const channels = [
      await joined(sdk(`${a.ws}/ws`), name),
      await joined(sdk(`${a.ws}/ws`), name),
      await joined(sdk(`${b.ws}/ws`), name),
      await joined(sdk(`${b.ws}/ws`), name),
    ];
    const all = channels.map((channel) => channel.presence.clientId!).sort();
    assert.equal(new Set(all).size, 4, 'four distinct client ids');
    for (const [i, channel] of channels.entries()) {
      await waitFor(() => ids(channel).join() === all.join(), `client ${i} (node ${i < 2 ? 'A' : 'B'}) to hold the four members (${ids(channel).join()})`);
    }
    for (const [i, channel] of channels.entries()) {
      const fetched = (await channel.presence.fetch()).members.map((member) => String(member['client'])).sort();
      assert.deepEqual(fetched, all, `the presence answer of node ${i < 2 ? 'A' : 'B'} lists the four, each once`);
    }

    const [writer, , watcher] = channels;
    const seen = events(watcher!);
    await writer!.presence.enter({ typing: true });
    const stateAtB = (): unknown => watcher!.presence.get().find((member) => member['client'] === writer!.presence.clientId)?.['state'];
    await waitFor(() => JSON.stringify(stateAtB()) === '{"typing":true}', 'the state set on A at a client of B');
    assert.deepEqual(seen, [['update', writer!.presence.clientId]], 'one update, no leave or join');
    assert.deepEqual(ids(watcher!), all, 'still the four, none twice');

    // An ephemeral message crosses too, with its publisher's client id stamped by node A.
    const got: Array<[unknown, string | undefined]> = [];
    watcher!.on('ephemeral', (data, meta) => got.push([data, meta.client]));
    await writer!.publish({ c: watcher!.presence.clientId, x: 1 }, { ephemeral: true });
    await waitFor(() => got.length === 1, 'the ephemeral message at node B');
    assert.deepEqual(got, [[{ c: watcher!.presence.clientId, x: 1 }, writer!.presence.clientId]]);
  });

  test('a client cut off from node A reconnects to node B with its client id: neither a leave nor a join, no ghost, no duplicate', async () => {
    const name = `doc:${process.pid}:2`;
    const proxy = await CutProxy.start(a.port);
    try {
      const onA = await joined(sdk(`${a.ws}/ws`), name);
      const onB = await joined(sdk(`${b.ws}/ws`), name);
      const movingClient = sdk(`ws://127.0.0.1:${proxy.port}/ws`);
      const moving = await joined(movingClient, name);
      const id = moving.presence.clientId!;
      await moving.presence.enter({ cursor: { x: 1, y: 2 } });
      const all = [onA, onB, moving].map((channel) => channel.presence.clientId!).sort();
      const stateAt = (channel: Channel<unknown>): string => JSON.stringify(channel.presence.get().find((member) => member['client'] === id)?.['state']);
      for (const channel of [onA, onB, moving]) {
        await waitFor(() => ids(channel).join() === all.join() && stateAt(channel) === '{"cursor":{"x":1,"y":2}}', 'three members and the state everywhere');
      }
      const seenA = events(onA);
      const seenB = events(onB);
      let resubscribed = false;
      moving.on('subscribed', (event) => {
        if (!event.first) resubscribed = true;
      });

      // The next connection goes to node B; the one open now is reset (no close frame).
      proxy.target = b.port;
      assert.equal(proxy.cut(), 1);
      await waitFor(() => resubscribed && movingClient.state === 'open', 'the cut client resubscribed, on node B');
      assert.equal(moving.presence.clientId, id, 'the same client id after the reconnect');
      // Node B takes the member over without its state (an update), the SDK enters it again (another).
      for (const channel of [onA, onB, moving]) await waitFor(() => stateAt(channel) === '{"cursor":{"x":1,"y":2}}', 'the state back everywhere');
      // Node A's grace period passes: its late leave must not take the member from node B.
      await quietWindow(GRACE * 2 + NODE_TTL / 3);
      for (const channel of [onA, onB, moving]) {
        assert.deepEqual(ids(channel), all, 'no ghost, no duplicate, in every map');
        const fetched = (await channel.presence.fetch()).members.map((member) => String(member['client'])).sort();
        assert.deepEqual(fetched, all, 'and in every node’s presence answer');
      }
      for (const seen of [seenA, seenB]) {
        assert.ok(
          seen.every(([kind, client]) => kind === 'update' && client === id),
          `only updates of the moved client, no leave or join (${JSON.stringify(seen)})`,
        );
      }
    } finally {
      await proxy.close();
    }
  });

  test('a node killed with SIGKILL: its members and their state leave the other node’s clients within the node TTL and a heartbeat', async (t) => {
    const name = `game:${process.pid}:3`;
    const doomed = await startNode();
    const watcher = await joined(sdk(`${a.ws}/ws`), name);
    const survivor = await joined(sdk(`${b.ws}/ws`), name);
    const victims = [await joined(sdk(`${doomed.ws}/ws`), name), await joined(sdk(`${doomed.ws}/ws`), name)];
    for (const victim of victims) await victim.presence.enter({ score: 7 });
    const victimIds = victims.map((victim) => victim.presence.clientId!);
    const all = [watcher, survivor, ...victims].map((channel) => channel.presence.clientId!).sort();
    for (const channel of [watcher, survivor]) {
      await waitFor(
        () => ids(channel).join() === all.join() && channel.presence.get().filter((member) => JSON.stringify(member['state']) === '{"score":7}').length === 2,
        'the four members, two with a state, on A and on B',
      );
    }
    const left: Array<[string, number]> = [];
    watcher.on('leave', (member: Member) => left.push([String(member['client']), Date.now()]));

    const killed = Date.now();
    await doomed.stop('SIGKILL');
    const remaining = [watcher, survivor].map((channel) => channel.presence.clientId!).sort();
    // The bound: the last refresh was at most a heartbeat before the kill, its members expire
    // NODE_TTL after it, and a sweep (every heartbeat) finds them. Slack for a busy machine.
    const bound = NODE_TTL + NODE_TTL / 3;
    for (const channel of [watcher, survivor]) {
      await waitFor(() => ids(channel).join() === remaining.join(), `the killed node's members gone (${ids(channel).join()})`, bound + 5_000);
    }
    assert.deepEqual(left.map(([client]) => client).sort(), [...victimIds].sort(), 'one leave for each member of the killed node');
    const latest = Math.max(...left.map(([, at]) => at)) - killed;
    t.diagnostic(`the last leave came ${latest} ms after the kill (TTL ${NODE_TTL} ms, bound ${bound} ms)`);
    assert.ok(latest >= NODE_TTL - NODE_TTL / 3, `not before their expiry (${latest} ms)`);
    assert.ok(latest <= bound + 1_000, `within the node TTL and a heartbeat, ${bound} ms, and a second of slack (${latest} ms)`);
    for (const channel of [watcher, survivor]) {
      const answer = await channel.presence.fetch();
      assert.deepEqual(answer.members.map((member) => String(member['client'])).sort(), remaining, 'the presence answers agree');
      assert.ok(answer.members.every((member) => member['state'] === undefined), 'no state of theirs is left');
    }
  });
});
