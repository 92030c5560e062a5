// Attack: every request through a proxy hook costs an HTTP call to the app's backend, so a
// client flooding rpc or subscribe requests would flood the backend. What caps it: calls in
// flight server-wide (`maxInFlight`, past it refused without calling), per connection
// (`maxInFlightPerConnection`: more wait within their timeout; subscribes run one at a
// time anyway), and the timeout of each. The backend (Python, test/support/proxy-backend.py)
// counts the requests it answers at once; a well-behaved neighbour beside the attack is
// still served, its own rpc calls included while the server-wide cap has room.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { assertServed, attackFixture, describeReport, MiB, RssSampler } from './support/attack.js';
import { ChannelsClient, assertErr, ok, type WireMessage } from './support/channels-client.js';
import { startScriptTarget } from './support/limits-target.js';
import { PythonBackend, pythonMissing } from './support/proxy-backend.js';

const APP = fileURLToPath(new URL('./support/app-server.ts', import.meta.url));
const missing = pythonMissing();
if (missing !== null) console.warn(`SKIPPED attack-proxy: ${missing}`);

const MAX_IN_FLIGHT = 8;
const PER_CONNECTION = 3;
/** The backend's `hold` answers take 1 s: within the 3 s timeout, so every call it takes is one it finishes. */
const HOLD = 1;
const TIMEOUT = 3_000;
/** Under the rpc burst (100): the flood is refused by the caps under test, not by the rate limit. */
const FLOOD = 60;

let backend: PythonBackend | undefined;
const fixture = attackFixture(async () => {
  backend = await PythonBackend.start(HOLD);
  const url = (hook: string): string => backend!.url(hook);
  return startScriptTarget(
    APP,
    {
      proxy: {
        subscribe: { url: url('subscribe'), timeout: TIMEOUT },
        rpc: { url: url('rpc'), timeout: TIMEOUT },
        maxInFlight: MAX_IN_FLIGHT,
        maxInFlightPerConnection: PER_CONNECTION,
      },
    },
    ['--max-old-space-size=256'],
  );
});

/** Sends `count` requests without waiting, then every answer. */
async function flood(client: ChannelsClient, count: number, request: (i: number) => Record<string, unknown>, op: string): Promise<WireMessage[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => client.request(op, request(i))));
}

describe('attack: flooding the backend through proxy hooks', { skip: missing ?? false }, () => {
  const clients: ChannelsClient[] = [];
  after(async () => {
    for (const client of clients) client.ws.terminate();
    await backend?.stop();
  });
  const connect = async (): Promise<ChannelsClient> => {
    const client = await ChannelsClient.connect(`${fixture.target.ws}/ws`, { timeout: 20_000 });
    clients.push(client);
    return client;
  };

  test(`one connection's ${FLOOD} slow rpc calls: at most ${PER_CONNECTION} reach the backend at once, the rest wait or time out, a neighbour's calls still answered`, { timeout: 60_000 }, async () => {
    const { target, neighbour } = fixture;
    const peak = new RssSampler(target.pid);
    const attacker = await connect();
    const polite = await connect();
    const flooding = flood(attacker, FLOOD, () => ({ method: 'hold' }), 'rpc');
    // While the attacker holds its share, another connection's calls go through.
    await backend!.next((r) => r.body.method === 'hold', 'the first held call');
    const started = Date.now();
    assert.equal((await ok(polite, 'rpc', { method: 'add', params: { a: 1, b: 2 } })).result, 3);
    const politeMs = Date.now() - started;
    const answers = await flooding;
    const held = answers.filter((a) => a.op === 'ok' && a.result === 'held').length;
    const timedOut = answers.filter((a) => a.op === 'err' && a.code === 'internal' && /did not answer rpc within 3000 ms/.test(a.message!)).length;
    assert.equal(held + timedOut, FLOOD, `every call answered, held or timed out: ${JSON.stringify(answers.find((a) => a.op === 'err' && a.code !== 'internal'))}`);
    assert.ok(held >= PER_CONNECTION, `${held} calls answered by the backend`);
    const backendPeak = await backend!.maxInFlight();
    assert.ok(backendPeak <= PER_CONNECTION + 1, `the backend answered at most ${PER_CONNECTION} of the attacker's and 1 of the neighbour's at once (saw ${backendPeak})`);
    const report = await neighbour.report();
    const rss = peak.stop();
    process.stdout.write(
      `proxy rpc flood: ${held} held, ${timedOut} timed out; backend peak ${backendPeak} in flight; polite rpc ${politeMs} ms; RSS ${(target.baseline / MiB).toFixed(1)} → ${(rss / MiB).toFixed(1)} MiB; neighbour ${describeReport(report)}\n`,
    );
    assert.ok(politeMs < 2_000, `the polite call took ${politeMs} ms`);
    assert.ok(target.alive());
    assert.ok(rss - target.baseline < 64 * MiB);
    assertServed(report);
  });

  test(`connections together past maxInFlight (${MAX_IN_FLIGHT}): refused at once without calling, the backend never sees more`, { timeout: 60_000 }, async () => {
    const { target, neighbour } = fixture;
    const before = backend!.requests.length;
    const attackers = await Promise.all(Array.from({ length: 5 }, () => connect()));
    const answers = (await Promise.all(attackers.map((a) => flood(a, 10, () => ({ method: 'hold' }), 'rpc')))).flat();
    const busy = answers.filter((a) => a.op === 'err' && a.code === 'internal' && /the backend is busy/.test(a.message!));
    const held = answers.filter((a) => a.op === 'ok').length;
    assert.ok(busy.length > 0, 'some were refused as busy');
    for (const refusal of busy) assertErr(refusal, 'internal', refusal.id);
    assert.equal(busy.length + held + answers.filter((a) => a.op === 'err' && /did not answer/.test(a.message!)).length, answers.length, 'every call answered');
    const called = backend!.requests.length - before;
    assert.ok(called >= held && called <= answers.length - busy.length, `the refused calls never reached the backend (${called} calls, ${held} held)`);
    const backendPeak = await backend!.maxInFlight();
    assert.ok(backendPeak <= MAX_IN_FLIGHT, `the backend saw at most ${MAX_IN_FLIGHT} at once (saw ${backendPeak})`);
    const report = await neighbour.report();
    process.stdout.write(`proxy rpc flood from 5 connections: ${held} held, ${busy.length} busy; backend peak ${backendPeak}; neighbour ${describeReport(report)}\n`);
    assert.ok(target.alive());
    assertServed(report);
  });

  test('a flood of slow subscribes: they reach the backend one at a time', { timeout: 60_000 }, async () => {
    const { neighbour } = fixture;
    const attacker = await connect();
    const started = Date.now();
    // Each takes the backend HOLD s: the connection's subscribes reach it one after another.
    const answers = await flood(attacker, 4, (i) => ({ ch: `slow:${i}` }), 'sub');
    for (const answer of answers) assert.equal(answer.op, 'ok');
    const subscribes = backend!.requests.filter((r) => r.hook === 'subscribe' && String(r.body.channel).startsWith('slow:'));
    assert.equal(subscribes.length, 4);
    assert.ok(subscribes.every((r) => r.inFlight === 1), `one at a time: ${subscribes.map((r) => r.inFlight).join(',')}`);
    assert.ok(Date.now() - started >= 4 * HOLD * 1000 - 100, 'in turn, not side by side');
    assertServed(await neighbour.report());
  });
});
