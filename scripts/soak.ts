/**
 * Soak test: many SDK clients subscribing, publishing and reconnecting at random against one
 * hotline server for a bounded time, then a full account of what was published and what
 * each subscriber received, and the server's memory and file descriptors against the
 * baseline it had before the clients came.
 *
 *   npm run soak [-- --minutes 10 --clients 2000 --channels 200 --seed 1]
 *
 * Every client subscribes to a few channels and publishes now and then (each publish
 * carries the client's id and a sequence number); now and then a client's connection is
 * cut (closed with 4000, which the SDK treats as a drop and recovers from), and now and
 * then a client unsubscribes and subscribes elsewhere. At the end the publishers' answers
 * (channel offsets) are compared with what every subscriber saw: nothing may be missing
 * from a subscription that reported recovered:true, nothing may arrive twice or out of order.
 * Exits non-zero on any loss, duplicate, leak past the bounds, or error.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, type HotlineClient, type SubscribedEvent } from '../src/client/index.js';
import { WebSocket } from '../src/node/client.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seconds: { type: 'string' },
    clients: { type: 'string', default: '2000' },
    channels: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
  },
});
const DURATION = values.seconds !== undefined ? Number(values.seconds) * 1000 : Number(values.minutes) * 60_000;
const CLIENTS = Number(values.clients);
const CHANNELS = Number(values.channels);
const SUBSCRIPTIONS_PER_CLIENT = 3;
/** Per client and second, on average. */
const PUBLISH_RATE = 0.5;
const DROP_RATE = 1 / 60;
const MOVE_RATE = 1 / 90;
/** Memory may end this much above the baseline (after GC) and still count as no leak. */
const RSS_SLACK = 24 * 1024 * 1024;

// A small seeded generator, so a failing run can be repeated.
let state = Number(values.seed) >>> 0 || 1;
function random(): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 0x100000000;
}
const pick = (n: number): number => Math.floor(random() * n);

interface Received {
  /** Offsets seen, in arrival order, for one subscription period (between (re)subscribes that lost history). */
  offsets: number[];
  epoch: string;
  /** The offset the subscription started after. */
  from: number;
  /** Set when a resubscription could not recover: what came before is not comparable. */
  gaps: number;
}

interface SoakClient {
  client: HotlineClient;
  sockets: WebSocket[];
  subscribed: Map<string, Received>;
  published: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const failures: string[] = [];
const fail = (message: string): void => {
  if (failures.length < 50) failures.push(message);
};

async function main(): Promise<void> {
  const server = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'soak-server.ts')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: server.stdout });
  const waiters: Array<(line: string) => void> = [];
  lines.on('line', (line) => waiters.shift()?.(line));
  const next = (): Promise<string> => new Promise((resolve) => waiters.push(resolve));
  const ready = await next();
  const port = Number(/^ready (\d+)$/.exec(ready)?.[1]);
  const stats = async (): Promise<{ rss: number; heapUsed: number; fds: number; connections: number }> => {
    server.stdin.write('stats\n');
    const line = await next();
    return JSON.parse(line.slice('stats '.length)) as { rss: number; heapUsed: number; fds: number; connections: number };
  };
  // Warm-up: a few hundred connections come and go, so one-time costs are not counted.
  await runClients(port, Math.min(200, CLIENTS), 5_000, false);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const baseline = await stats();
  console.log(`baseline: RSS ${mib(baseline.rss)}, heap ${mib(baseline.heapUsed)}, ${baseline.fds} fds`);

  const started = Date.now();
  const result = await runClients(port, CLIENTS, DURATION, true);
  const loaded = result.peak;
  // Channel history and publish keys live 20 s in the soak server: wait until they are gone.
  await new Promise((resolve) => setTimeout(resolve, 35_000));
  const after = await stats();
  const seconds = (Date.now() - started) / 1000;

  console.log(`\n${CLIENTS} clients, ${CHANNELS} channels, ${(seconds / 60).toFixed(1)} minutes`);
  console.log(`published ${result.published} messages (acknowledged), ${result.errors} publish errors`);
  console.log(`deliveries checked: ${result.delivered}; lost: ${result.lost}; duplicated or out of order: ${result.duplicates}`);
  console.log(`connection drops: ${result.drops}; resubscriptions recovered: ${result.recovered}, not recovered: ${result.notRecovered}`);
  console.log(`server at peak: RSS ${mib(loaded.rss)}, ${loaded.connections} connections, ${loaded.fds} fds`);
  console.log(`server after:   RSS ${mib(after.rss)} (baseline ${mib(baseline.rss)}), heap ${mib(after.heapUsed)} (baseline ${mib(baseline.heapUsed)}), ${after.fds} fds (baseline ${baseline.fds}), ${after.connections} connections`);
  if (after.connections !== 0) fail(`${after.connections} connections still open on the server`);
  if (after.fds > baseline.fds + 5) fail(`file descriptors: ${after.fds} after, ${baseline.fds} at baseline`);
  if (after.rss > baseline.rss + RSS_SLACK) fail(`RSS ${mib(after.rss)} after, ${mib(baseline.rss)} at baseline (slack ${mib(RSS_SLACK)})`);
  if (result.lost > 0) fail(`${result.lost} messages lost`);
  if (result.duplicates > 0) fail(`${result.duplicates} messages duplicated or out of order`);
  server.stdin.end();
  await once(server, 'exit');
  if (failures.length > 0) {
    console.log(`\nFAILED:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  } else {
    console.log('\nok: no loss, no duplicate, memory and descriptors back to baseline');
  }

  async function runClients(port: number, count: number, duration: number, check: boolean) {
    const url = `ws://127.0.0.1:${port}/ws`;
    const clients: SoakClient[] = [];
    /** Acknowledged offsets per channel. */
    const acked = new Map<string, Set<number>>();
    const totals = { published: 0, errors: 0, drops: 0, recovered: 0, notRecovered: 0 };
    const finished: Array<{ channel: string; received: Received }> = [];
    let closing = false;
    const subscribe = (soak: SoakClient, channel: string): void => {
      const ch = soak.client.channel<{ from: number; n: number }>(channel);
      const received: Received = { offsets: [], epoch: '', from: 0, gaps: 0 };
      soak.subscribed.set(channel, received);
      ch.on('subscribed', (event: SubscribedEvent) => {
        if (soak.subscribed.get(channel) !== received) return;
        if (event.first || received.epoch === '') {
          received.epoch = event.epoch;
          received.from = event.offset;
        } else if (event.recovered) {
          totals.recovered++;
        } else {
          totals.notRecovered++;
          // What was missed is gone; compare from here on.
          received.gaps++;
          finished.push({ channel, received: { ...received, offsets: [...received.offsets] } });
          received.offsets = [];
          received.epoch = event.epoch;
          received.from = event.offset;
        }
      });
      ch.on('message', (_data, meta) => {
        if (soak.subscribed.get(channel) === received) received.offsets.push(meta.offset);
      });
      ch.subscribe().catch((error: unknown) => {
        if (!closing) fail(`subscribe ${channel}: ${String(error)}`);
      });
    };
    for (let i = 0; i < count; i++) {
      const sockets: WebSocket[] = [];
      // Keeps hold of each socket the SDK opens, so the soak can cut it.
      class Tracked extends WebSocket {
        constructor(u: string, p: string | string[]) {
          super(u, p);
          sockets.push(this);
          if (sockets.length > 4) sockets.shift();
        }
      }
      const soak: SoakClient = {
        client: connect(url, { WebSocket: Tracked as never, reconnect: { initial: 500, max: 5_000 }, queueSize: 1000 }),
        sockets,
        subscribed: new Map(),
        published: 0,
      };
      clients.push(soak);
      for (let s = 0; s < SUBSCRIPTIONS_PER_CLIENT; s++) {
        const channel = `soak:${pick(CHANNELS)}`;
        if (!soak.subscribed.has(channel)) subscribe(soak, channel);
      }
      if (i % 200 === 199) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    let peak = { rss: 0, heapUsed: 0, fds: 0, connections: 0 };
    const tick = 100;
    const end = Date.now() + duration;
    let lastReport = Date.now();
    const pending: Array<Promise<unknown>> = [];
    while (Date.now() < end) {
      for (const soak of clients) {
        if (random() < (PUBLISH_RATE * tick) / 1000) {
          const channel = `soak:${pick(CHANNELS)}`;
          const n = soak.published++;
          pending.push(
            soak.client
              .channel(channel)
              .publish({ from: clients.indexOf(soak), n })
              .then(
                (answer) => {
                  totals.published++;
                  let set = acked.get(channel);
                  if (set === undefined) acked.set(channel, (set = new Set()));
                  set.add(answer.offset);
                },
                () => {
                  totals.errors++;
                },
              ),
          );
        }
        if (random() < (DROP_RATE * tick) / 1000) {
          const socket = soak.sockets.at(-1);
          if (socket !== undefined && socket.readyState === WebSocket.OPEN) {
            totals.drops++;
            socket.close(4000, 'soak: drop');
          }
        }
        if (random() < (MOVE_RATE * tick) / 1000 && soak.subscribed.size > 0) {
          const [channel, received] = [...soak.subscribed][pick(soak.subscribed.size)]!;
          soak.client.channel(channel).unsubscribe();
          soak.subscribed.delete(channel);
          finished.push({ channel, received });
          const next = `soak:${pick(CHANNELS)}`;
          if (!soak.subscribed.has(next)) subscribe(soak, next);
        }
      }
      if (pending.length > 5_000) await Promise.all(pending.splice(0));
      await new Promise((resolve) => setTimeout(resolve, tick));
      if (check && Date.now() - lastReport > 30_000) {
        lastReport = Date.now();
        const s = await stats();
        if (s.rss > peak.rss) peak = s;
        console.log(`  ${Math.round((Date.now() - (end - duration)) / 1000)} s: ${totals.published} published, ${totals.drops} drops, server RSS ${mib(s.rss)}, ${s.connections} connections`);
      }
    }
    await Promise.all(pending);
    if (peak.rss === 0) peak = await stats();
    // Let the last messages arrive.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    closing = true;
    for (const soak of clients) {
      for (const [channel, received] of soak.subscribed) finished.push({ channel, received });
      soak.client.close();
    }
    let delivered = 0;
    let lost = 0;
    let duplicates = 0;
    if (check) {
      for (const { channel, received } of finished) {
        if (received.epoch === '') continue;
        const offsets = received.offsets;
        delivered += offsets.length;
        for (let i = 1; i < offsets.length; i++) if (offsets[i]! <= offsets[i - 1]!) duplicates++;
        // Everything acknowledged on the channel between the subscription's start and the last
        // offset it saw must be there.
        const last = offsets.at(-1) ?? received.from;
        const seen = new Set(offsets);
        for (const offset of acked.get(channel) ?? []) {
          if (offset > received.from && offset <= last && !seen.has(offset)) {
            lost++;
            fail(`${channel}: offset ${offset} missing from a subscription that started after ${received.from}`);
          }
        }
      }
    }
    return { ...totals, delivered, lost, duplicates, peak };
  }
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

await main();
