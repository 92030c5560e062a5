// A rolling deploy's first step, with real processes: two `hotline serve` nodes behind a TCP
// balancer, SDK clients spread over both, and one node told to stop (SIGTERM). Its clients
// must hear 1001 with the reconnect hint and come back through the balancer spread over the
// window the node asked for: not all at once, and none later than the window allows.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type HotlineClient } from '../src/client-node.js';
import { startCli, type CliServer } from './support/cli-server.js';
import { TcpBalancer } from './support/tcp-balancer.js';
import { waitFor } from './support/wait.js';

const CLIENTS = 40;
const WINDOW = 2_000;

interface Watched {
  client: HotlineClient;
  closes: Array<{ code: number; reason: string; at: number }>;
  opens: number[];
}

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

test('a stopping node asks its clients to spread their reconnects over its window, and they do', async () => {
  const nodes: CliServer[] = [];
  for (let i = 0; i < 2; i++) {
    const node = await startCli(0, ['--reconnect-window', String(WINDOW), '--log-level', 'warn']);
    cleanup.push(() => node.stop('SIGKILL'));
    nodes.push(node);
  }
  const balancer = await TcpBalancer.start(nodes.map((n) => n.port));
  cleanup.push(() => balancer.close());

  const watched: Watched[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    // A backoff far longer than the window: a reconnect inside the window is the hint's doing.
    const client = connect(`ws://127.0.0.1:${balancer.port}/ws`, { reconnect: { initial: 60_000, max: 60_000 } });
    const entry: Watched = { client, closes: [], opens: [] };
    client.on('close', (event) => entry.closes.push({ code: event.code, reason: event.reason, at: performance.now() }));
    client.on('state', (state) => {
      if (state === 'open') entry.opens.push(performance.now());
    });
    cleanup.push(async () => client.close());
    watched.push(entry);
  }
  await waitFor(() => watched.every((w) => w.opens.length === 1), 'every client open');

  const onStopped = balancer.connectionsTo(nodes[0]!.port);
  assert.ok(onStopped >= CLIENTS / 2 - 1 && onStopped <= CLIENTS / 2 + 1, `about half the clients are on the node to stop (${onStopped})`);
  const exit = await nodes[0]!.stop('SIGTERM');
  assert.equal(exit, 0, 'the node drained and exited cleanly');
  // The node's exit can reach this process before the closes its drain caused have.
  await waitFor(() => watched.filter((w) => w.closes.length > 0).length >= onStopped, "the stopped node's clients closed");
  const moved = watched.filter((w) => w.closes.length > 0);
  assert.equal(moved.length, onStopped, 'only the clients of the stopped node were closed');
  for (const w of moved) {
    assert.deepEqual(
      w.closes.map((c) => [c.code, c.reason]),
      [[1001, `server shutting down; reconnect within ${WINDOW} ms`]],
      'one close: 1001 with the hint',
    );
  }
  await waitFor(() => moved.every((w) => w.opens.length === 2), 'every moved client back, through the balancer, on the other node', { ms: WINDOW + 10_000 });

  const delays = moved.map((w) => w.opens[1]! - w.closes[0]!.at).sort((a, b) => a - b);
  const spread = delays[delays.length - 1]! - delays[0]!;
  // Uniform draws within the window: the chance that 20 of them fall within 400 ms of each other is about 1e-12.
  assert.ok(spread > WINDOW / 5, `reconnects spread over ${spread.toFixed(0)} ms, not bunched (delays ${delays.map((d) => d.toFixed(0)).join(', ')})`);
  // The handshake through the balancer adds a little to the drawn delay; the backoff (60 s) would add far more.
  assert.ok(delays[delays.length - 1]! < WINDOW + 1_000, `the last one came back within the window (${delays[delays.length - 1]!.toFixed(0)} ms)`);
  const stayed = watched.filter((w) => w.closes.length === 0);
  assert.ok(stayed.every((w) => w.opens.length === 1), 'the clients of the other node never noticed');
});

test('a client on the HTTP fallback hears the same 1001 with the hint, before the stopping node cuts its stream', async () => {
  const node = await startCli(0, ['--reconnect-window', String(WINDOW), '--log-level', 'warn']);
  cleanup.push(() => node.stop('SIGKILL'));
  const client = connect(`${node.ws}/ws`, { transports: ['sse'], reconnect: { initial: 60_000, max: 60_000 } });
  cleanup.push(async () => client.close());
  const closes: Array<[number, string]> = [];
  client.on('close', (event) => closes.push([event.code, event.reason]));
  await client.channel('drain:fallback').subscribe();
  assert.equal(client.transport, 'sse');

  assert.equal(await node.stop('SIGTERM'), 0, 'the node drained and exited cleanly');
  await waitFor(() => closes.length > 0, 'the close');
  // Later closes may be its attempts to reconnect to the stopped node.
  assert.deepEqual(closes[0], [1001, `server shutting down; reconnect within ${WINDOW} ms`]);
});
