/**
 * Soak test: many SDK clients subscribing, publishing and reconnecting at random against one
 * hotline server for a bounded time, then a full account of what was published and what
 * each subscriber received, and the server's memory and file descriptors against the
 * baseline it had before the clients came.
 *
 *   npm run soak [-- --minutes 10 --clients 2000 --channels 200 --seed 1 --attack all]
 *
 * Every client subscribes to a few channels and publishes now and then (each publish
 * carries the client's id and a sequence number); now and then a client's connection is
 * cut (closed with 4000, which the SDK treats as a drop and recovers from), and now and
 * then a client unsubscribes and subscribes elsewhere. At the end the publishers' answers
 * (channel offsets) are compared with what every subscriber saw: nothing may be missing
 * from a subscription that reported recovered:true, nothing may arrive twice or out of order.
 * Exits non-zero on any loss, duplicate, leak past the bounds, or error.
 *
 * `--attack fragments,compression,channel-flood,queue-flood,identity-switch` (or `all`) runs
 * attackers (scripts/soak/attackers.ts) beside the clients for the whole run; the account
 * of the well-behaved clients must stay exact, and each attacker's outcome (closes by
 * code, `err` answers by code, what it was served) is reported with the server's RSS
 * sampled every half second against its baseline.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RssSampler } from '../test/support/attack.js';
import { connect, type HotlineClient, type SubscribedEvent } from '../src/client/index.js';
import { WebSocket } from '../src/node/client.js';
import { parseAttacks } from './soak/attackers.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seconds: { type: 'string' },
    clients: { type: 'string', default: '2000' },
    channels: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    attack: { type: 'string' },
  },
});
const ATTACKS = (() => {
  try {
    return parseAttacks(values.attack);
  } catch (error) {
    console.error(`soak: ${(error as Error).message}`);
    process.exit(2);
  }
})();
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
/**
 * With attackers, RSS after the run may end higher: inflating and compressing 1 MiB messages
 * leaves freed pages with the allocator (the heap is back within RSS_SLACK; a leak shows there).
 */
const RSS_SLACK_ATTACKED = 64 * 1024 * 1024;

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
  const stats = async (): Promise<ServerStats> => {
    server.stdin.write('stats\n');
    const line = await next();
    return JSON.parse(line.slice('stats '.length)) as ServerStats;
  };
  // Warm-up: a few hundred connections come and go, so one-time costs are not counted.
  await runClients(port, Math.min(200, CLIENTS), 5_000, false);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const baseline = await stats();
  console.log(`baseline: RSS ${mib(baseline.rss)}, heap ${mib(baseline.heapUsed)}, ${baseline.fds} fds`);

  const started = Date.now();
  // Every half second, no GC first: what the machine pays.
  const sampler = new RssSampler(server.pid!, 500);
  const attack = ATTACKS.length > 0 ? await startAttackers(port) : null;
  let attackers: AttackReport = {};
  const result = await runClients(port, CLIENTS, DURATION, true, async () => {
    if (attack !== null) attackers = await attack.stop();
  });
  const sampledPeak = sampler.stop();
  const loaded = result.peak;
  // Channel history and publish keys live 20 s in the soak server: wait until they are gone.
  await new Promise((resolve) => setTimeout(resolve, 35_000));
  const after = await stats();
  const seconds = (Date.now() - started) / 1000;

  console.log(`\n${CLIENTS} clients, ${CHANNELS} channels, ${(seconds / 60).toFixed(1)} minutes`);
  const why = (counts: Map<string, number>): string =>
    counts.size === 0 ? '' : ` (${[...counts].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${n} × ${reason}`).join('; ')})`;
  console.log(`published ${result.published} messages (acknowledged), ${result.errors} publish errors${why(result.errorReasons)}`);
  console.log(`deliveries checked: ${result.delivered}; lost: ${result.lost}; duplicated or out of order: ${result.duplicates}`);
  console.log(`connection drops: ${result.drops}; resubscriptions recovered: ${result.recovered}, not recovered: ${result.notRecovered}${why(result.notRecoveredReasons)}`);
  console.log(`server at peak: RSS ${mib(loaded.rss)}, ${loaded.connections} connections, ${loaded.fds} fds (after GC, every 30 s)`);
  console.log(`server event loop late by: p99 ${result.loop.p99.toFixed(0)} ms, max ${result.loop.max.toFixed(0)} ms (worst 30-second window)`);
  console.log(`server RSS sampled every 0.5 s: peak ${mib(sampledPeak)}, baseline ${mib(baseline.rss)} (+${mib(sampledPeak - baseline.rss)})`);
  for (const [name, report] of Object.entries(attackers)) {
    const outcomes = Object.entries(report.outcomes).sort((a, b) => b[1] - a[1]).map(([label, n]) => `${n} × ${label}`);
    console.log(`attacker ${name}: ${outcomes.join('; ') || 'nothing'}`);
    for (const v of report.violations) fail(`${name}: ${v}`);
  }
  if (attack !== null) {
    const counters = Object.entries(after.counters).map(([name, n]) => `${name} ${n - (baseline.counters[name] ?? 0)}`);
    console.log(`server counters during the run: ${counters.join(', ')}`);
  }
  console.log(`server after:   RSS ${mib(after.rss)} (baseline ${mib(baseline.rss)}), heap ${mib(after.heapUsed)} (baseline ${mib(baseline.heapUsed)}), ${after.fds} fds (baseline ${baseline.fds}), ${after.connections} connections`);
  if (after.connections !== 0) fail(`${after.connections} connections still open on the server`);
  if (after.fds > baseline.fds + 5) fail(`file descriptors: ${after.fds} after, ${baseline.fds} at baseline`);
  const rssSlack = attack === null ? RSS_SLACK : RSS_SLACK_ATTACKED;
  if (after.rss > baseline.rss + rssSlack) fail(`RSS ${mib(after.rss)} after, ${mib(baseline.rss)} at baseline (slack ${mib(rssSlack)})`);
  if (after.heapUsed > baseline.heapUsed + RSS_SLACK) fail(`heap ${mib(after.heapUsed)} after, ${mib(baseline.heapUsed)} at baseline (slack ${mib(RSS_SLACK)})`);
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

  /** `beforeCheck` runs when the clients stop publishing, before the last messages are awaited. */
  async function runClients(port: number, count: number, duration: number, check: boolean, beforeCheck?: () => Promise<void>) {
    const url = `ws://127.0.0.1:${port}/ws`;
    const clients: SoakClient[] = [];
    /** Acknowledged offsets per channel. */
    const acked = new Map<string, Set<number>>();
    const totals = { published: 0, errors: 0, drops: 0, recovered: 0, notRecovered: 0 };
    const errorReasons = new Map<string, number>();
    const notRecoveredReasons = new Map<string, number>();
    const tally = (counts: Map<string, number>, reason: string): void => void counts.set(reason, (counts.get(reason) ?? 0) + 1);
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
          tally(notRecoveredReasons, event.epoch !== received.epoch ? 'the channel started a new epoch' : 'part of the gap no longer kept');
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
        // A subscribe the soak itself took back (a move) before it was answered is no failure.
        if (!closing && soak.subscribed.get(channel) === received) fail(`subscribe ${channel}: ${String(error)}`);
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
    const loop = { p99: 0, max: 0 };
    const noteLoop = (s: ServerStats): void => {
      loop.p99 = Math.max(loop.p99, s.loop.p99);
      loop.max = Math.max(loop.max, s.loop.max);
    };
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
                (error: unknown) => {
                  totals.errors++;
                  tally(errorReasons, error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error));
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
        noteLoop(s);
        if (s.rss > peak.rss) peak = s;
        console.log(
          `  ${Math.round((Date.now() - (end - duration)) / 1000)} s: ${totals.published} published, ${totals.drops} drops, server RSS ${mib(s.rss)}, ` +
            `${s.connections} connections, event loop late by p99 ${s.loop.p99.toFixed(0)} ms, max ${s.loop.max.toFixed(0)} ms`,
        );
      }
    }
    await Promise.all(pending);
    await beforeCheck?.();
    const last = await stats();
    noteLoop(last);
    if (peak.rss === 0) peak = last;
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
    return { ...totals, errorReasons, notRecoveredReasons, delivered, lost, duplicates, peak, loop };
  }
}

type AttackReport = Record<string, { outcomes: Record<string, number>; violations: string[] }>;

/** Starts scripts/soak/attack-main.ts against the server; `stop` ends the attack and returns what each attacker saw. */
async function startAttackers(port: number): Promise<{ stop(): Promise<AttackReport> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'soak', 'attack-main.ts'), String(port), ATTACKS.join(',')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const line = (prefix: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const onLine = (text: string): void => {
        if (!text.startsWith(prefix)) return;
        lines.off('line', onLine);
        resolve(text.slice(prefix.length));
      };
      lines.on('line', onLine);
      child.once('exit', (code) => reject(new Error(`the attackers exited (${code}) before printing ${prefix}`)));
    });
  await line('attacking');
  return {
    async stop() {
      const report = line('outcomes ');
      child.stdin.end();
      return JSON.parse(await report) as AttackReport;
    },
  };
}

interface ServerStats {
  rss: number;
  heapUsed: number;
  fds: number;
  connections: number;
  /** The app's counters (and the /hooks hub's), summed over their labels. */
  counters: Record<string, number>;
  /** Event-loop delay since the previous stats (ms). */
  loop: { p99: number; max: number };
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

await main();
