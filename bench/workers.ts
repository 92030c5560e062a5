/**
 * Handshakes on `hotline serve --workers 2`: the C handshake client
 * (bench/lib/handshake-client.c: connect, upgrade on /echo, closing handshake, close) keeps
 * `--concurrency` connections going against the primary's port, which hands each to a
 * worker. The primary and its workers share CPU 0 (they inherit its pinning); the client
 * runs on CPU 1. Redis, which more than one worker needs, runs on CPU 1 too; a handshake on
 * /echo does not touch it.
 *
 *   node --import tsx bench/workers.ts [--quick] [--seconds S] [--rounds R] [--concurrency N] [--baseline DIR]
 *
 * --seconds S       the counted window of each round, after a 2 s warm-up (default 5; --quick: 2)
 * --rounds R        rounds per build, alternating (default 3; --quick: 1)
 * --concurrency N   connections in progress at once (default 16)
 * --baseline DIR    also run DIR's hotline (a checkout or `git worktree` with node_modules and
 *                   a built dist/), in the same rounds
 *
 * The figures, per round and their median: handshakes per second, handshakes per CPU-second
 * of the three server processes together (user + system, from /proc), and the primary's
 * and the workers' CPU per handshake. Against a baseline, the ratio is the median of the
 * rounds' ratios. Every handshake is checked by the client (the 101 and its accept key, the
 * close frame 1000, the server's FIN); one that is not fails the run.
 *
 * Each round starts once the host's TIME_WAIT table is back to 30,000 entries
 * (settleTimeWait), as in bench/reconnect.ts: the server closes first, and a table of
 * 100,000 doubled the CPU a connection costs.
 */
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { compileCClient } from './lib/c-client.js';
import { LineChild, checkTaskset } from './lib/children.js';
import { childrenOf, processCpuSeconds, settleTimeWait } from './lib/proc.js';
import { median, medianRatio } from './lib/stats.js';
import { churnArgs } from './lib/churn-args.js';
import { columnsOf, formatCount, formatNumber, formatRatio, formatTable } from './lib/table.js';
import { RedisServer, redisServerInstalled } from '../test/support/redis-server.js';

const { seconds: SECONDS, rounds: ROUNDS, concurrency: CONCURRENCY, baseline } = churnArgs();
const WORKERS = 2;
const WARM_UP_MS = 2_000;
const SERVER_CPU = 0;
const LOAD_CPU = 1;
const HERE = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** glibc's own allocator settings for the server, as a deployment has them. */
const SERVER_ENV: NodeJS.ProcessEnv = { ...process.env };
delete SERVER_ENV['GLIBC_TUNABLES'];

interface Round {
  perSecond: number;
  perServerCpuSecond: number;
  primaryCpuPerHandshake: number;
  workersCpuPerHandshake: number;
  handshakes: number;
}

/** The client's count of completed handshakes (`count N IDLE`). */
async function completed(client: LineChild): Promise<number> {
  client.send('count');
  const line = await client.nextLine(10_000, 'count');
  const match = /^count (\d+)/.exec(line);
  if (match === null) throw new Error(`handshake client: ${line}`);
  return Number(match[1]);
}

async function round(checkout: string, redisUrl: string, clientBinary: string): Promise<Round> {
  const cli = join(checkout, 'dist', 'cli', 'main.js');
  // Every connection comes from 127.0.0.1: no per-address cap or rate.
  const server = new LineChild('hotline serve --workers', SERVER_CPU, [cli, 'serve', '--host', '127.0.0.1', '--port', '0', '--workers', String(WORKERS), '--redis', redisUrl, '--log-level', 'warn', '--max-connections-per-address', '0', '--connection-rate-per-address', '0'], SERVER_ENV);
  let client: LineChild | null = null;
  try {
    // Worker 1 prints the banner once it serves; both are forked by then.
    let port = 0;
    while (port === 0) {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(await server.nextLine(60_000, 'the banner'));
      if (match !== null) port = Number(match[1]);
    }
    const primary = server.pid;
    client = new LineChild('handshake client', LOAD_CPU, [String(port), '/echo', String(CONCURRENCY)], process.env, clientBinary);
    await sleep(WARM_UP_MS);
    const workers = childrenOf(primary);
    if (workers.length !== WORKERS) throw new Error(`${workers.length} workers running, not ${WORKERS}`);
    const cpuOf = (pids: number[]): number => pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
    const startCount = await completed(client);
    const start = { at: performance.now(), primary: cpuOf([primary]), workers: cpuOf(workers) };
    await sleep(SECONDS * 1_000);
    const endCount = await completed(client);
    const end = { at: performance.now(), primary: cpuOf([primary]), workers: cpuOf(workers) };
    const handshakes = endCount - startCount;
    const primaryCpu = end.primary - start.primary;
    const workersCpu = end.workers - start.workers;
    client.send('stop');
    const done = await client.nextLine(30_000, 'stop');
    if (!done.startsWith('done ')) throw new Error(`handshake client: ${done}`);
    return {
      perSecond: handshakes / ((end.at - start.at) / 1_000),
      perServerCpuSecond: handshakes / (primaryCpu + workersCpu),
      primaryCpuPerHandshake: primaryCpu / handshakes,
      workersCpuPerHandshake: workersCpu / handshakes,
      handshakes,
    };
  } finally {
    await client?.stop(null, 2_000);
    // SIGTERM: the primary drains its workers and exits once they have.
    if (server.running) server.process.kill('SIGTERM');
    await server.stop(null, 10_000);
  }
}

if (!redisServerInstalled()) {
  console.log('SKIPPED: redis-server not installed — the workers benchmark did not run (apt-get install redis-server)');
  process.exit(0);
}
const compiled = compileCClient(join(HERE, 'bench', 'lib', 'handshake-client.c'));
if ('error' in compiled) {
  console.log(`SKIPPED: the handshake client did not compile (${compiled.error}) — the workers benchmark did not run`);
  process.exit(0);
}
checkTaskset([SERVER_CPU, LOAD_CPU]);
const redis = await RedisServer.start({ cpu: LOAD_CPU });
const builds: Array<[string, string]> = [['hotline', HERE]];
if (baseline !== undefined) builds.push(['baseline', resolve(baseline)]);
const results = new Map<string, Round[]>(builds.map(([name]) => [name, []]));
const loadStart = loadavg()[0]!;
try {
  for (let r = 1; r <= ROUNDS; r++) {
    for (const [name, checkout] of r % 2 === 1 ? builds : [...builds].reverse()) {
      await settleTimeWait();
      const result = await round(checkout, redis.url, compiled.binary);
      results.get(name)!.push(result);
      console.log(
        `  r${r} ${name.padEnd(8)} ${formatCount(result.perSecond)} handshakes/s, ${formatCount(result.perServerCpuSecond)} per server CPU-second; ` +
          `per handshake: primary ${formatNumber(result.primaryCpuPerHandshake * 1e6)} µs, workers ${formatNumber(result.workersCpuPerHandshake * 1e6)} µs; ${formatCount(result.handshakes)} checked`,
      );
    }
  }
} finally {
  await redis.stop();
}

const ours = results.get('hotline')!;
const rows = builds.map(([name]) => {
  const rounds = results.get(name)!;
  return [
    name,
    `${formatCount(median(rounds.map((s) => s.perSecond)))}/s`,
    formatCount(median(rounds.map((s) => s.perServerCpuSecond))),
    `${formatNumber(median(rounds.map((s) => s.primaryCpuPerHandshake)) * 1e6)} µs`,
    `${formatNumber(median(rounds.map((s) => s.workersCpuPerHandshake)) * 1e6)} µs`,
    name === 'hotline' ? '' : formatRatio(medianRatio(ours.map((s) => s.perServerCpuSecond), rounds.map((s) => s.perServerCpuSecond))),
  ];
});
console.log(`\nhotline serve --workers ${WORKERS}: connect, upgrade on /echo, close; ${CONCURRENCY} at a time, ${SECONDS} s windows, median of ${ROUNDS} round(s)`);
console.log(formatTable(columnsOf('build', 'handshakes', 'per server CPU-s', 'primary CPU each', 'workers CPU each', 'hotline/baseline'), rows));
console.log(`load average ${loadStart.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}; server CPU: the primary and its workers added up, all on CPU ${SERVER_CPU}`);
