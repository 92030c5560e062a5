// A channel's subscription retries on its own, against a real hotline server in a child
// process (test/support/sdk-server.ts): a channel whose permission check fails (`internal`,
// as when the service behind it is down) until the test lets it through, a burst of
// subscribes past the server's subscribe rate (`rate_limited`), and a channel refused for
// good (`forbidden`). Meanwhile the connection stays up and other channels keep flowing.
//
// Deterministic: the server refuses until told otherwise, and the tests wait for states and
// messages, never for a time.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Channel, ChannelState, HotlineClient, HotlineError } from '../src/client/index.js';
import { closeClients, sdk } from './support/delivery.js';
import { waitFor } from './support/wait.js';
import { killAll, startServer, stopServer, type ServerProcess } from './support/sdk-process.js';

const wsUrl = (port: number): string => `ws://127.0.0.1:${port}/ws`;

/** The states a channel went through, `retrying (code)` with the error that caused it. */
function recordStates(channel: Channel<unknown>): string[] {
  const states: string[] = [];
  channel.on('state', (state: ChannelState, error?: Error) => states.push(error === undefined ? state : `${state} (${(error as HotlineError).code})`));
  return states;
}

function recordCloses(client: HotlineClient): number[] {
  const closes: number[] = [];
  client.on('close', ({ code }) => closes.push(code));
  return closes;
}

/** The payloads a channel delivered, in order. */
function received(channel: Channel<number>): number[] {
  const got: number[] = [];
  channel.on('message', (data) => got.push(data));
  return got;
}

let server: ServerProcess;
/** Its own server: its subscribe rate would limit the other tests' retries too. */
let limited: ServerProcess;

before(async () => {
  [server, limited] = await Promise.all([
    startServer(0, { unavailable: ['flaky:feed'], forbidden: ['secret:feed'] }),
    startServer(0, { subscribeRate: { perSecond: 5, burst: 3 } }),
  ]);
});

afterEach(() => closeClients());

after(async () => {
  for (const child of [server, limited]) if (child !== undefined) await stopServer(child, 'SIGTERM');
  await killAll();
});

describe('a channel the server cannot subscribe for now', () => {
  test('internal: that channel retries with backoff while another keeps flowing on the same connection, and ends subscribed', async () => {
    const url = wsUrl(server.port);
    const client = sdk(url, { resubscribe: { initial: 20, max: 100 } });
    const closes = recordCloses(client);
    const steady = client.channel<number>('steady:feed');
    const steadyGot = received(steady);
    await steady.subscribe();

    const flaky = client.channel<number>('flaky:feed');
    const flakyStates = recordStates(flaky);
    const flakyGot = received(flaky);
    const errors: Error[] = [];
    flaky.on('error', (error) => errors.push(error));
    let outcome = 'pending';
    const subscribed = flaky.subscribe().then(
      (event) => {
        outcome = 'subscribed';
        return event;
      },
      (error: unknown) => {
        outcome = `rejected: ${String(error)}`;
        throw error;
      },
    );
    await waitFor(() => flakyStates.filter((s) => s === 'retrying (internal)').length >= 3, 'three refusals', { ms: 20_000, state: () => flakyStates.join(', ') });

    // While it keeps being refused, the other channel is served on the same connection.
    const publisher = sdk(url);
    const steadyOut = publisher.channel<number>('steady:feed');
    for (let n = 1; n <= 20; n++) await steadyOut.publish(n);
    await waitFor(() => steadyGot.length === 20, 'the steady channel’s 20 messages', { ms: 20_000, state: () => `${steadyGot.length}` });
    assert.deepEqual(steadyGot, Array.from({ length: 20 }, (_, i) => i + 1));
    assert.notEqual(flaky.state, 'subscribed');
    assert.equal(outcome, 'pending', 'subscribe() waits, it does not fail');

    // The service is back: the next retry subscribes.
    const refusals = await publisher.rpc<number>('allow', 'flaky:feed');
    const event = await subscribed;
    assert.equal(event.first, true);
    assert.equal(flaky.state, 'subscribed');
    await publisher.channel<number>('flaky:feed').publish(42);
    await waitFor(() => flakyGot.length === 1, 'a message on the channel once subscribed');
    assert.deepEqual(flakyGot, [42]);

    const retries = flakyStates.filter((s) => s === 'retrying (internal)').length;
    assert.equal(refusals, retries, 'every refusal was retried, once');
    assert.deepEqual(flakyStates, ['subscribing', ...Array.from({ length: retries }, () => ['retrying (internal)', 'subscribing']).flat(), 'subscribed']);
    assert.deepEqual(errors, [], 'no error event: the subscription never ended');
    assert.deepEqual(closes, [], 'the connection stayed up throughout');
    assert.equal(client.state, 'open');
    console.log(`# internal: ${refusals} refusals retried on one connection; the other channel got 20 of 20 meanwhile`);
  });

  test('rate_limited: a burst of subscribes past the server’s rate all end subscribed', async () => {
    // The server takes 3 subscribes at once, then 5 a second.
    const client = sdk(wsUrl(limited.port), { resubscribe: { initial: 200, max: 1000 } });
    const closes = recordCloses(client);
    const channels = Array.from({ length: 10 }, (_, i) => client.channel<number>(`burst:${i}`));
    const states = channels.map((channel) => recordStates(channel));
    const events = await Promise.all(channels.map((channel) => channel.subscribe()));
    assert.equal(events.length, 10);
    assert.ok(channels.every((channel) => channel.state === 'subscribed'));
    const overRate = states.filter((s) => s.includes('retrying (rate_limited)')).length;
    assert.ok(overRate >= 1, `some subscribes were over the rate and retried (${overRate})`);
    assert.deepEqual(closes, []);
    console.log(`# rate_limited: 10 subscribes at once, ${overRate} refusals over the rate, each retried; all subscribed`);
  });
});

test('forbidden ends the subscription for good: errored, an error event, subscribe() rejects; the connection carries on', async () => {
  const client = sdk(wsUrl(server.port), { resubscribe: { initial: 20, max: 20 } });
  const closes = recordCloses(client);
  const secret = client.channel('secret:feed');
  const states = recordStates(secret);
  const errors: Error[] = [];
  secret.on('error', (error) => errors.push(error));
  await assert.rejects(secret.subscribe(), (error: unknown) => (error as HotlineError).code === 'forbidden');
  assert.equal(secret.state, 'errored');
  assert.deepEqual(states, ['waiting', 'subscribing', 'errored (forbidden)'], 'made before the connection opened: waiting first');
  assert.equal(errors.length, 1);
  // The connection is still fine for everything else.
  assert.equal(await client.rpc('echo', 'still here'), 'still here');
  assert.equal(secret.state, 'errored', 'not retried');
  assert.deepEqual(closes, []);
});
