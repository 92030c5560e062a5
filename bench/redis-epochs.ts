/**
 * What the Redis engine's restart check costs Redis: its CPU per publish with the default
 * engine (each script reads `INFO replication` and ends an epoch begun under another
 * replication id) beside a `durable: true` engine (no check), on the same Redis, in
 * alternating rounds.
 *
 *   node --import tsx bench/redis-epochs.ts [--quick] [--publishes N]
 *
 * --quick          2 rounds of 5,000 publishes each (default: 6 rounds of 20,000)
 * --publishes N    publishes per engine per round
 *
 * Each engine publishes through 32 concurrent calls to 8 channels of its own prefix. Redis
 * CPU is redis-server's user and system time over the round (/proc/PID/stat); every publish
 * is checked: the offsets of each channel come back 1, 2, 3, … in one epoch.
 */
import { parseArgs } from 'node:util';
import type { EngineListener } from '../src/channels/index.js';
import { RedisEngine } from '../src/redis/index.js';
import { RedisServer, redisServerInstalled } from '../test/support/redis-server.js';
import { processCpuSeconds } from './lib/proc.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' }, publishes: { type: 'string' } } });
const ROUNDS = args.quick === true ? 2 : 6;
const PUBLISHES = Number(args.publishes ?? (args.quick === true ? 5_000 : 20_000));
const CONCURRENCY = 32;
const CHANNELS = 8;
/** Publishes `count` messages; returns the offsets each channel got, in the order they came back. */
async function publishAll(engine: RedisEngine, count: number): Promise<Map<string, { epochs: Set<string>; offsets: number[] }>> {
  const seen = new Map<string, { epochs: Set<string>; offsets: number[] }>();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const channel = `ch${next++ % CHANNELS}`;
        const { epoch, offset } = await engine.publish(channel, '"x"');
        const entry = seen.get(channel) ?? { epochs: new Set(), offsets: [] };
        entry.epochs.add(epoch);
        entry.offsets.push(offset);
        seen.set(channel, entry);
      }
    }),
  );
  return seen;
}

async function main(): Promise<void> {
  if (!redisServerInstalled()) {
    console.log('SKIPPED: redis-server not installed — the Redis epoch-check benchmark did not run (apt-get install redis-server)');
    return;
  }
  const redis = await RedisServer.start();
  const listener: EngineListener = { message() {}, presence() {} };
  const engines = [
    { name: 'default (checks the replication id)', engine: new RedisEngine(redis.url, { prefix: 'checked:' }), perPublish: [] as number[], rates: [] as number[], total: 0 },
    { name: 'durable: true', engine: new RedisEngine(redis.url, { prefix: 'durable:', durable: true }), perPublish: [] as number[], rates: [] as number[], total: 0 },
  ];
  try {
    for (const { engine } of engines) await engine.start(listener);
    console.log(`${ROUNDS} rounds of ${PUBLISHES.toLocaleString('en-US')} publishes per engine, ${CONCURRENCY} at a time over ${CHANNELS} channels, one Redis`);
    for (let round = 0; round < ROUNDS; round++) {
      for (const entry of engines) {
        const cpuBefore = processCpuSeconds(redis.pid!);
        const started = performance.now();
        const seen = await publishAll(entry.engine, PUBLISHES);
        const seconds = (performance.now() - started) / 1000;
        const cpu = processCpuSeconds(redis.pid!) - cpuBefore;
        for (const [channel, { epochs, offsets }] of seen) {
          const expected = Array.from({ length: offsets.length }, (_, i) => entry.total / CHANNELS + i + 1);
          const sorted = [...offsets].sort((a, b) => a - b);
          if (epochs.size !== 1 || sorted.some((offset, i) => offset !== expected[i])) {
            throw new Error(`${entry.name}: ${channel} got offsets ${sorted.slice(0, 5).join(', ')}… in ${epochs.size} epochs, not ${expected[0]}…${expected.at(-1)} in one`);
          }
        }
        entry.total += PUBLISHES;
        entry.perPublish.push((cpu * 1e6) / PUBLISHES);
        entry.rates.push(PUBLISHES / seconds);
      }
    }
  } finally {
    for (const { engine } of engines) await engine.close();
    await redis.close();
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const [checked, durable] = engines as [(typeof engines)[0], (typeof engines)[0]];
  console.log('engine                               Redis CPU per publish  publishes/s (one client process)');
  for (const entry of engines) {
    console.log(`${entry.name.padEnd(37)}${`${median(entry.perPublish).toFixed(1)} µs`.padStart(21)}  ${Math.round(median(entry.rates)).toLocaleString('en-US').padStart(12)}`);
  }
  console.log(`the check: ${(median(checked.perPublish) / median(durable.perPublish)).toFixed(2)}x Redis CPU per publish (medians over ${ROUNDS} rounds; /proc ticks are 10 ms, so short rounds are coarse)`);
  console.log(`  checked: every publish's offset, per channel 1, 2, 3, … in one epoch (${checked.total.toLocaleString('en-US')} and ${durable.total.toLocaleString('en-US')} publishes)`);
}

await main();
