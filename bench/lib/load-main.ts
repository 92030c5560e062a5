/**
 * The load generator of bench/server.ts, in a process of its own (pinned to its own core
 * by the parent). It reads jobs from stdin and writes results to stdout, one JSON object
 * per line (see load-jobs.ts), and exits when stdin closes or after MAX_LIFETIME_MS.
 *
 * It speaks WebSocket through raw-client.ts: pre-encoded masked frames out, replies
 * counted by their headers only. Every job checks what it counted (every echo came back
 * with the size and type it was sent with, every subscriber got every publish, every
 * handshake got its 101 and its close frame) and answers with an error otherwise.
 *
 * The server's CPU share over each counted window is read here, from /proc, at the same
 * instants the window's counts are taken.
 */
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { binaryPayload, textPayload } from './frames.js';
import {
  clientMessages,
  DEFLATE_OFFER,
  DeflateReplyCounter,
  NO_FRAMES,
  parseNegotiation,
  ReplyVerifier,
  type Negotiated,
  type WireTotals,
} from './deflate-frames.js';
import { deflatePayloads } from './deflate-payloads.js';
import type {
  CloseAllJob,
  DeflateEchoJob,
  DeflateOpenJob,
  DeflateOpenResult,
  DeflateRateResult,
  EchoJob,
  FanoutJob,
  HandshakeJob,
  JobAnswer,
  JobRequest,
  JobResult,
  LatencyJob,
  LatencyResult,
  OpenJob,
  OpenResult,
  RateResult,
  Timed,
  WindowEvent,
  WindowStats,
} from './load-jobs.js';
import { cpuBusySeconds, cpuShareMeter, kernelCountersSince, processKernelCounters } from './proc.js';
import {
  CLIENT_CLOSE,
  clientFrame,
  FrameCounter,
  RawClient,
  repeatFrame,
  SERVER_CLOSE,
  serverFrame,
  upgradeRequest,
  type ClientHandler,
  type FrameSink,
  readCount,
} from './raw-client.js';

const MAX_LIFETIME_MS = 30 * 60_000;
/** Time allowed for setting up connections, and for draining after a window. */
const SETUP_TIMEOUT_MS = 60_000;
const DRAIN_TIMEOUT_MS = 15_000;
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;

class JobFailure extends Error {}

/** What steps and handlers need of a job's run, whatever it resolves to. */
interface Failable {
  readonly done: boolean;
  fail(message: string): void;
  onEnd(cleanup: () => void): void;
}

/**
 * The state every job shares: a way to fail from any callback (the first failure wins and
 * ends the job), and a hard deadline.
 */
class Run<R> implements Failable {
  readonly promise: Promise<R>;
  private settled = false;
  private resolveFn!: (value: R) => void;
  private rejectFn!: (error: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private readonly cleanups: Array<() => void> = [];

  constructor(limitMs: number, what: string) {
    this.promise = new Promise<R>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    this.timer = setTimeout(() => this.fail(`${what}: not done after ${limitMs} ms`), limitMs);
  }

  get done(): boolean {
    return this.settled;
  }

  onEnd(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  fail(message: string): void {
    this.settle(() => this.rejectFn(new JobFailure(message)));
  }

  finish(value: R): void {
    this.settle(() => this.resolveFn(value));
  }

  private settle(action: () => void): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    for (const cleanup of this.cleanups) {
      try {
        cleanup();
      } catch {
        // cleanup is best effort
      }
    }
    action();
  }
}

/**
 * Runs a job's steps: the job answers through `run` (its promise settles on success,
 * failure or timeout), so steps left waiting after a failure are simply abandoned.
 */
function drive<R>(run: Run<R>, steps: () => Promise<void>): Promise<R> {
  steps().catch((error: unknown) => run.fail(error instanceof Error ? error.message : String(error)));
  return run.promise;
}

/** A handler whose every event fails the run unless the job overrides it. */
function strictHandler(run: Failable, what: string, overrides: Partial<ClientHandler>): ClientHandler {
  return {
    open: () => run.fail(`${what}: unexpected open`),
    frames: (_client, count) => run.fail(`${what}: ${count} unexpected frames`),
    end: () => run.fail(`${what}: the server ended a connection`),
    closed: (client) => {
      if (!run.done && !client.ended) run.fail(`${what}: a connection closed`);
    },
    error: (_client, error) => run.fail(`${what}: ${error.message}`),
    ...overrides,
  };
}

/**
 * Opens `count` connections, `concurrency` handshakes at a time, each with its own counter
 * for the frames `expected`; resolves once every one has its 101. `request` is the upgrade
 * request (by default a plain one for `path`).
 */
function openClients(
  run: Failable,
  port: number,
  path: string,
  count: number,
  concurrency: number,
  makeCounter: () => FrameSink,
  handler: ClientHandler,
  request: Buffer = upgradeRequest(port, path),
): Promise<RawClient[]> {
  const clients: RawClient[] = [];
  run.onEnd(() => {
    for (const client of clients) client.destroy();
  });
  return new Promise((resolve) => {
    let opened = 0;
    const opening: ClientHandler = {
      ...handler,
      open(client) {
        client.handler = handler;
        opened++;
        if (clients.length < count) launch();
        else if (opened === count) resolve(clients);
      },
    };
    const launch = (): void => {
      clients.push(new RawClient(port, opening, makeCounter(), request));
    };
    if (count === 0) resolve(clients);
    for (let i = 0; i < Math.min(concurrency, count); i++) launch();
  });
}

/** Takes the counted window's start and, later, its end. */
/** The job being run: its window events carry its id. */
let currentJobId = 0;

function windowMeter(job: { serverPid: number; serverCore: number; loadCore: number; spin: boolean }): {
  stop(): WindowStats;
} {
  process.stdout.write(`${JSON.stringify({ type: 'window', phase: 'start', id: currentJobId } satisfies WindowEvent)}\n`);
  const coreStart = cpuBusySeconds(job.serverCore);
  const loadCoreStart = cpuBusySeconds(job.loadCore);
  const server = cpuShareMeter(job.serverPid);
  const kernelStart = processKernelCounters(job.serverPid);
  const cpuStart = process.cpuUsage();
  const idleStart = spinning.idleSeconds;
  return {
    stop() {
      const { share, systemShare, wallSeconds } = server.stop();
      const serverKernel = kernelCountersSince(kernelStart, processKernelCounters(job.serverPid));
      process.stdout.write(`${JSON.stringify({ type: 'window', phase: 'end', id: currentJobId } satisfies WindowEvent)}\n`);
      const cpu = process.cpuUsage(cpuStart);
      return {
        seconds: wallSeconds,
        serverCpu: share,
        serverSystem: systemShare,
        loadCpu: (cpu.user + cpu.system) / 1e6 / wallSeconds,
        serverCoreBusy: (cpuBusySeconds(job.serverCore) - coreStart) / wallSeconds,
        loadCoreBusy: (cpuBusySeconds(job.loadCore) - loadCoreStart) / wallSeconds,
        loadSpinIdle: job.spin ? (spinning.idleSeconds - idleStart) / wallSeconds : 0,
        serverKernel,
      };
    },
  };
}

/**
 * Time a spinning event loop spent finding nothing to read: the intervals between two
 * consecutive turns with no read in between. While it spins, its CPU time is ~100%, so
 * this is what tells how much room it had left.
 */
const spinning = { idleSeconds: 0 };

/** With `spin`, keeps the event loop polling until the run ends (see Timed.spin). */
function spinUntilDone(spin: boolean, run: Failable): void {
  if (!spin) return;
  let seen = readCount.value;
  let last = process.hrtime.bigint();
  const turn = (): void => {
    const now = process.hrtime.bigint();
    if (readCount.value === seen) spinning.idleSeconds += Number(now - last) / 1e9;
    else seen = readCount.value;
    last = now;
    if (!run.done) setImmediate(turn);
  };
  setImmediate(turn);
}

/**
 * The timed part of a job: the event loop kept spinning when asked, the warm-up (and what
 * `warmedUp` says must settle first), then the counted window. `mark` reads the job's
 * counts at the window's start and end. Null when the run ended meanwhile.
 */
async function countedWindow<M>(
  job: { serverPid: number; serverCore: number; loadCore: number; spin: boolean; warmupMs: number; measureMs: number },
  run: Failable,
  mark: (edge: 'start' | 'end') => M,
  warmedUp?: () => Promise<unknown>,
): Promise<{ stats: WindowStats; from: M; to: M } | null> {
  spinUntilDone(job.spin, run);
  await delay(job.warmupMs);
  if (warmedUp !== undefined) await warmedUp();
  if (run.done) return null;
  const meter = windowMeter(job);
  const from = mark('start');
  await delay(job.measureMs);
  if (run.done) return null;
  const stats = meter.stop();
  return { stats, from, to: mark('end') };
}

function payloadFor(binary: boolean, size: number): Buffer {
  return binary ? binaryPayload(size) : Buffer.from(textPayload(size));
}

// --------------------------------------------------------------------------------------
// echo: connections x in-flight messages, counted as they come back

function runEcho(job: EchoJob): Promise<RateResult> {
  const what = `echo ${job.size} B x${job.inFlight}`;
  const run = new Run<RateResult>(SETUP_TIMEOUT_MS + job.warmupMs + job.measureMs + DRAIN_TIMEOUT_MS, what);
  const opcode = job.binary ? OPCODE_BINARY : OPCODE_TEXT;
  const payload = payloadFor(job.binary, job.size);
  const frame = clientFrame(opcode, payload);
  const reply = serverFrame(opcode, payload);
  const burst = repeatFrame(frame, job.inFlight);
  let sending = true;
  let sent = 0;
  let received = 0;

  const finish = (stats: WindowStats, counted: number): void => {
    for (const client of clients) {
      if (client.sent !== client.received) return run.fail(`${what}: a connection sent ${client.sent}, got ${client.received} back`);
      if (!client.counter.atBoundary) return run.fail(`${what}: a connection stopped inside a frame`);
    }
    run.finish({
      type: 'rate',
      count: counted,
      ...stats,
      checked: `${received} echoes of ${sent} sent, first on each connection byte for byte, all sizes and types`,
    });
  };
  let windowDone: (() => void) | null = null;

  const handler = strictHandler(run, what, {
    frames(client, count) {
      client.received += count;
      received += count;
      if (client.received > client.sent) return run.fail(`${what}: more echoes than messages sent`);
      if (sending) {
        client.write(count === job.inFlight ? burst : burst.subarray(0, count * frame.length));
        client.sent += count;
        sent += count;
      } else if (received === sent) {
        windowDone?.();
      }
    },
  });
  let clients: RawClient[] = [];
  return drive(run, async () => {
    clients = await openClients(run, job.port, job.path, job.connections, 64, () => new FrameCounter(reply, 1), handler);
    if (run.done) return;
    for (const client of clients) {
      client.write(burst);
      client.sent = job.inFlight;
      sent += job.inFlight;
    }
    const window = await countedWindow(job, run, () => received);
    if (window === null) return;
    const counted = window.to - window.from;
    sending = false;
    if (received === sent) finish(window.stats, counted);
    else windowDone = () => finish(window.stats, counted);
  });
}

// --------------------------------------------------------------------------------------
// latency: one message at a time on one connection

function runLatency(job: LatencyJob): Promise<LatencyResult> {
  const what = `latency ${job.size} B`;
  const run = new Run<LatencyResult>(SETUP_TIMEOUT_MS + job.warmupMs + job.measureMs + DRAIN_TIMEOUT_MS, what);
  const payload = payloadFor(false, job.size);
  const frame = clientFrame(OPCODE_TEXT, payload);
  const reply = serverFrame(OPCODE_TEXT, payload);
  const samples = new Float64Array(4_000_000);
  let recorded = 0;
  let recording = false;
  let sending = true;
  let windowDone: (() => void) | null = null;

  const handler = strictHandler(run, what, {
    frames(client, count) {
      const now = process.hrtime.bigint();
      client.received += count;
      if (count !== 1 || client.received !== client.sent) return run.fail(`${what}: ${count} replies to one message`);
      if (recording && recorded < samples.length) samples[recorded++] = Number(now - client.stamp) / 1e3;
      if (sending) {
        client.stamp = process.hrtime.bigint();
        client.write(frame);
        client.sent++;
      } else {
        windowDone?.();
      }
    },
  });
  return drive(run, async () => {
    const [client] = await openClients(run, job.port, job.path, 1, 1, () => new FrameCounter(reply, 1), handler);
    if (run.done || client === undefined) return;
    client.stamp = process.hrtime.bigint();
    client.write(frame);
    client.sent = 1;
    // Round trips are recorded within the window only.
    const window = await countedWindow(job, run, (edge) => {
      recording = edge === 'start';
    });
    if (window === null) return;
    const stats = window.stats;
    sending = false;
    const finish = (): void => {
      if (recorded < 100) return run.fail(`${what}: only ${recorded} round trips`);
      const sorted = samples.subarray(0, recorded).sort();
      run.finish({
        type: 'latency',
        ...stats,
        roundTrips: recorded,
        p50Us: sorted[Math.floor(recorded * 0.5)]!,
        p99Us: sorted[Math.min(recorded - 1, Math.floor(recorded * 0.99))]!,
        checked: `${client.received} round trips, the first byte for byte, all sizes and types`,
      });
    };
    if (client.received === client.sent) finish();
    else windowDone = finish;
  });
}

// --------------------------------------------------------------------------------------
// fan-out: one publisher, many subscribers, deliveries counted at the subscribers

/**
 * Publishes are numbered from 0. `reached[j % RING]` counts the subscribers that have
 * received publish j; since every subscriber receives publishes in order, publish j has
 * reached everyone once its count equals the number of subscribers. The ring must be
 * longer than the most publishes that can be outstanding (lagLimit).
 */
const RING = 4096;

function runFanout(job: FanoutJob): Promise<RateResult> {
  // The C client's frames are all one length: payloads under 126 bytes.
  if (job.client !== undefined && job.size < 126) return runClientFanout(job, job.client);
  const what = `fan-out to ${job.subscribers}`;
  if (job.lagLimit >= RING || job.inFlight > job.lagLimit) return Promise.reject(new JobFailure(`${what}: bad lagLimit`));
  const run = new Run<RateResult>(SETUP_TIMEOUT_MS + job.warmupMs + job.measureMs + DRAIN_TIMEOUT_MS, what);
  const payload = payloadFor(false, job.size);
  const frame = clientFrame(OPCODE_TEXT, payload);
  const delivery = serverFrame(OPCODE_TEXT, payload);
  const burst = repeatFrame(frame, job.inFlight);
  const reached = new Int32Array(RING);
  const subscriberCount = job.subscribers;
  let published = 0;
  /** Publishes that reached every subscriber. */
  let complete = 0;
  /** Copies the publisher got back: the server handled that many publishes. */
  let echoed = 0;
  let deliveries = 0;
  let publishing = false;
  let publisher: RawClient | null = null;
  let windowDone: (() => void) | null = null;

  const pump = (): void => {
    if (!publishing || publisher === null) return;
    const room = Math.min(job.inFlight - (published - echoed), job.lagLimit - (published - complete));
    if (room <= 0) return;
    for (let j = published; j < published + room; j++) reached[j % RING] = 0;
    publisher.write(room === job.inFlight ? burst : burst.subarray(0, room * frame.length));
    published += room;
  };
  const settled = (): boolean => complete === published && echoed === published;

  const subscriberHandler = strictHandler(run, what, {
    frames(client, count) {
      const first = client.received;
      const last = first + count;
      if (last > published) return run.fail(`${what}: a subscriber got ${last} messages of ${published} published`);
      client.received = last;
      deliveries += count;
      let advanced = false;
      for (let j = first; j < last; j++) {
        if (++reached[j % RING] === subscriberCount) {
          complete = j + 1;
          advanced = true;
        }
      }
      if (!advanced) return;
      if (publishing) pump();
      else if (settled()) windowDone?.();
    },
  });
  const publisherHandler = strictHandler(run, what, {
    frames(_client, count) {
      echoed += count;
      if (echoed > published) return run.fail(`${what}: the publisher got ${echoed} copies of ${published} publishes`);
      if (publishing) pump();
      else if (settled()) windowDone?.();
    },
  });
  let subscribers: RawClient[] = [];
  return drive(run, async () => {
    subscribers = await openClients(
      run,
      job.port,
      job.path,
      subscriberCount,
      128,
      () => new FrameCounter(delivery, 1),
      subscriberHandler,
    );
    if (run.done) return;
    // The publisher connects last, so that it comes last in the server's loop over subscribers.
    const [pub] = await openClients(run, job.port, job.path, 1, 1, () => new FrameCounter(delivery, 1), publisherHandler);
    if (run.done || pub === undefined) return;
    publisher = pub;
    publishing = true;
    pump();

    const window = await countedWindow(job, run, () => deliveries);
    if (window === null) return;
    const { stats } = window;
    const counted = window.to - window.from;
    publishing = false;

    const finish = (): void => {
      for (const client of subscribers) {
        if (client.received !== published) return run.fail(`${what}: a subscriber got ${client.received} of ${published}`);
        if (!client.counter.atBoundary) return run.fail(`${what}: a subscriber stopped inside a frame`);
      }
      if (deliveries !== published * subscriberCount) {
        return run.fail(`${what}: ${deliveries} deliveries, expected ${published} x ${subscriberCount}`);
      }
      run.finish({
        type: 'rate',
        count: counted,
        ...stats,
        checked: `${published} publishes, each to all ${subscriberCount} subscribers (${deliveries} deliveries) and back to the publisher`,
      });
    };
    if (settled()) finish();
    else windowDone = finish;
  });
}

// --------------------------------------------------------------------------------------
// handshakes: connect, upgrade, closing handshake, over and over

function runHandshakes(job: HandshakeJob): Promise<RateResult> {
  if (job.client !== undefined) return runClientHandshakes(job, job.client);
  const what = 'handshakes';
  const run = new Run<RateResult>(SETUP_TIMEOUT_MS + job.warmupMs + job.measureMs + DRAIN_TIMEOUT_MS, what);
  const request = upgradeRequest(job.port, job.path);
  const live = new Set<RawClient>();
  run.onEnd(() => {
    for (const client of live) client.destroy();
  });
  let launching = true;
  let completed = 0;
  let windowDone: (() => void) | null = null;

  const handler = strictHandler(run, what, {
    open(client) {
      client.write(CLIENT_CLOSE);
    },
    frames(client, count) {
      client.received += count;
      if (client.received > 1) run.fail(`${what}: more than one close frame`);
    },
    // The server's FIN: net answers with ours (allowHalfOpen is off), then 'close' follows.
    // (Destroying the socket here instead turned out to slow every server down.)
    end() {},
    closed(client) {
      live.delete(client);
      if (run.done) return;
      if (!client.upgraded || client.received !== 1 || !client.ended) {
        return run.fail(`${what}: a connection closed before completing (upgraded ${client.upgraded}, close frames ${client.received}, server ended ${client.ended})`);
      }
      completed++;
      if (launching) launch();
      else if (live.size === 0) windowDone?.();
    },
  });
  const launch = (): void => {
    live.add(new RawClient(job.port, handler, new FrameCounter(SERVER_CLOSE, Infinity), request));
  };
  return drive(run, async () => {
    for (let i = 0; i < job.concurrency; i++) launch();
    const window = await countedWindow(job, run, () => completed);
    if (window === null) return;
    const { stats } = window;
    const counted = window.to - window.from;
    launching = false;
    const finish = (): void =>
      run.finish({
        type: 'rate',
        count: counted,
        ...stats,
        checked: `${completed} connections, each with its 101, accept key, close frame 1000 and the server's FIN`,
      });
    if (live.size === 0) finish();
    else windowDone = finish;
  });
}

/**
 * The same job through bench/lib/handshake-client.c (`client`, compiled): see
 * {@link runClientJob}.
 */
function runClientHandshakes(job: HandshakeJob, client: string): Promise<RateResult> {
  return runClientJob(job, 'handshakes (C client)', client, [String(job.port), job.path, String(job.concurrency)], false, (done) => ({
    checked: `${done[0]} connections (C client), each with its 101, accept key, close frame 1000 and the server's FIN`,
  }));
}

/** The same job through bench/lib/fanout-client.c (`client`, compiled): see {@link runClientJob}. */
function runClientFanout(job: FanoutJob, client: string): Promise<RateResult> {
  const payload = Buffer.from(textPayload(job.size)).toString('hex');
  const args = [String(job.port), job.path, String(job.subscribers), String(job.inFlight), String(job.lagLimit), payload];
  return runClientJob(job, `fan-out to ${job.subscribers} (C client)`, client, args, true, ([published, deliveries]) => ({
    checked: `${published} publishes, each to all ${job.subscribers} subscribers (${deliveries} deliveries) and back to the publisher (C client)`,
  }));
}

/**
 * Runs a job through one of the C clients (`client`, compiled, with `args`), which inherits
 * this process's core: this process waits on its answers instead of spinning, and the
 * window's load CPU and idle spinning are the client's. The client answers `count` with
 * its count so far and seconds of idle spinning, and `stop` with `done` and what it checked
 * (`checked` words it); with `announces`, it says `ready` once its connections are open,
 * and the warm-up starts then. A `fail` line fails the run.
 */
function runClientJob(
  job: Timed & { port: number },
  what: string,
  client: string,
  args: readonly string[],
  announces: boolean,
  checked: (done: string[]) => { checked: string },
): Promise<RateResult> {
  const run = new Run<RateResult>(SETUP_TIMEOUT_MS + job.warmupMs + job.measureMs + DRAIN_TIMEOUT_MS, what);
  const child = spawn(client, [...args, ...(job.spin ? ['--spin'] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  run.onEnd(() => child.kill());
  child.on('error', (error) => run.fail(`${what}: ${error.message}`));
  child.on('exit', (code) => run.fail(`${what}: the client exited (status ${code})`));
  // A client that exited reports it through 'exit'; a command written to it then fails here.
  child.stdin.on('error', () => {});
  const answers: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith('fail ')) run.fail(`${what}: ${line.slice(5)}`);
    else answers.shift()?.(line);
  });
  const answer = (): Promise<string[]> => new Promise((resolve) => answers.push((line) => resolve(line.split(' '))));
  const ask = (command: string): Promise<string[]> => {
    const answered = answer();
    child.stdin.write(`${command}\n`);
    return answered;
  };
  const progress = async (): Promise<{ count: number; idle: number }> => {
    const [, count, idle] = await ask('count');
    return { count: Number(count), idle: Number(idle) };
  };
  const ready = announces ? answer() : Promise.resolve([]);
  return drive(run, async () => {
    await ready;
    await delay(job.warmupMs);
    if (run.done) return;
    const meter = windowMeter({ ...job, spin: false });
    const clientCpu = cpuShareMeter(child.pid!);
    const from = await progress();
    await delay(job.measureMs);
    const to = await progress();
    const stats = meter.stop();
    const { share } = clientCpu.stop();
    const [, ...done] = await ask('stop');
    run.finish({
      type: 'rate',
      count: to.count - from.count,
      ...stats,
      loadCpu: stats.loadCpu + share,
      loadSpinIdle: (to.idle - from.idle) / stats.seconds,
      ...checked(done),
    });
  });
}

// --------------------------------------------------------------------------------------
// open (and hold) idle connections, for the memory measurement

let held: RawClient[] = [];

/** How {@link openEchoOnce} opens one kind of connection. */
interface OpenOnce<R> {
  request: Buffer;
  /** The frame counter a new connection starts with. */
  counter(): FrameSink;
  /** A connection opened: send its one message (and set `client.sent = 1`), or call `noMessage`. */
  open(client: RawClient, noMessage: () => void): void;
  /** Every connection is in: what must still settle before the job answers (the checks of replies). */
  pending?(): Promise<unknown>;
  /** What the job answers, once every connection is in (and held, with `hold`). */
  result(ready: number): R;
}

/**
 * Opens `job.connections` connections, `job.concurrency` at a time; each echoes one message
 * (or none), then is closed with a closing handshake, or held idle (`job.hold`) until a
 * `closeAll` job. Anything else the server does fails the run.
 */
function openEchoOnce<R>(
  run: Run<R>,
  what: string,
  job: { port: number; connections: number; concurrency: number; hold: boolean },
  how: OpenOnce<R>,
): void {
  const clients = new Set<RawClient>();
  const kept: RawClient[] = [];
  let succeeded = false;
  run.onEnd(() => {
    if (!succeeded) for (const client of clients) client.destroy();
  });
  let started = 0;
  let ready = 0;

  const complete = (): void => {
    if (run.done) return;
    held.push(...kept);
    succeeded = true;
    run.finish(how.result(ready));
  };
  const settle = (client: RawClient): void => {
    ready++;
    if (job.hold) kept.push(client);
    if (started < job.connections) return launch();
    if (ready !== job.connections) return;
    if (how.pending === undefined) complete();
    else void how.pending().then(complete);
  };
  const afterEcho = (client: RawClient): void => {
    if (job.hold) {
      client.handler = heldHandler;
      return settle(client);
    }
    // Closing handshake: our close frame, the server's, then its FIN.
    client.counter = new FrameCounter(SERVER_CLOSE, Infinity);
    client.received = 0;
    client.write(CLIENT_CLOSE);
  };
  const handler = strictHandler(run, what, {
    open: (client) => how.open(client, () => afterEcho(client)),
    frames(client, count) {
      client.received += count;
      if (client.sent === 1) {
        client.sent = 0;
        if (count !== 1) return run.fail(`${what}: ${count} replies to one message`);
        afterEcho(client);
      } else if (client.received > 1) {
        run.fail(`${what}: more than one close frame`);
      }
    },
    end() {},
    closed(client) {
      clients.delete(client);
      if (run.done) return;
      if (job.hold || !client.ended || client.received !== 1) return run.fail(`${what}: a connection closed early`);
      settle(client);
    },
  });
  const launch = (): void => {
    started++;
    clients.add(new RawClient(job.port, handler, how.counter(), how.request));
  };
  for (let i = 0; i < Math.min(job.concurrency, job.connections); i++) launch();
}

function runOpen(job: OpenJob): Promise<OpenResult> {
  const what = `open ${job.connections}`;
  const run = new Run<OpenResult>(SETUP_TIMEOUT_MS + DRAIN_TIMEOUT_MS, what);
  const payload = payloadFor(false, 32);
  const frame = clientFrame(OPCODE_TEXT, payload);
  const reply = serverFrame(OPCODE_TEXT, payload);
  openEchoOnce<OpenResult>(run, what, job, {
    request: upgradeRequest(job.port, job.path),
    counter: () => new FrameCounter(job.echoOnce ? reply : SERVER_CLOSE, Infinity),
    open(client, noMessage) {
      if (!job.echoOnce) return noMessage();
      client.write(frame);
      client.sent = 1;
    },
    result: (ready) => ({ type: 'opened', connections: ready, held: held.length }),
  });
  if (job.connections === 0) run.finish({ type: 'opened', connections: 0, held: held.length });
  return run.promise;
}

/** Held connections must stay quiet; anything they see is reported when they are closed. */
const heldProblems: string[] = [];
const heldHandler: ClientHandler = {
  open() {},
  frames: (_client, count) => void heldProblems.push(`${count} unexpected frames`),
  end: () => void heldProblems.push('the server ended a held connection'),
  closed() {},
  error: (_client, error) => void heldProblems.push(error.message),
};

function runCloseAll(_job: CloseAllJob): JobResult {
  const destroyed = held.length;
  for (const client of held) client.destroy();
  held = [];
  const problems = heldProblems.splice(0);
  if (problems.length > 0) return { type: 'error', message: `held connections: ${problems.slice(0, 3).join('; ')}` };
  return { type: 'closed', destroyed };
}

// --------------------------------------------------------------------------------------
// permessage-deflate (bench/deflate.ts): pre-encoded compressed frames out, replies of any
// length counted by their headers, the first ones of every connection checked in full

/** Checks each connection's answer to DEFLATE_OFFER; all must have agreed to the same. */
function agreedNegotiation(clients: readonly RawClient[], what: string): Negotiated {
  let agreed: Negotiated | null = null;
  for (const client of clients) {
    let negotiated: Negotiated;
    try {
      negotiated = parseNegotiation(client.responseHead);
    } catch (error) {
      throw new JobFailure(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (agreed !== null && negotiated.header !== agreed.header) {
      throw new JobFailure(`${what}: connections negotiated '${agreed.header}' and '${negotiated.header}'`);
    }
    agreed = negotiated;
  }
  if (agreed === null) throw new JobFailure(`${what}: no connections`);
  return agreed;
}

function verifiedHow(agreed: Negotiated): string {
  return agreed.serverNoContextTakeover
    ? 'compressed ones each inflated on its own (server_no_context_takeover)'
    : 'compressed ones inflated in one streaming inflater per connection (context takeover)';
}

function runDeflateEcho(job: DeflateEchoJob): Promise<DeflateRateResult> {
  const what = `deflate echo ${job.payload} x${job.inFlight}`;
  const run = new Run<DeflateRateResult>(SETUP_TIMEOUT_MS + job.warmupMs + job.measureMs + DRAIN_TIMEOUT_MS, what);
  const messages = clientMessages(deflatePayloads(job), job.clientThreshold);
  const n = messages.payloads.length;
  if (job.inFlight > n) return Promise.reject(new JobFailure(`${what}: more messages in flight than distinct ones`));
  const received: WireTotals = { frames: 0, bytes: 0, compressed: 0 };
  const sent: WireTotals = { frames: 0, bytes: 0, compressed: 0 };
  const verifiers: ReplyVerifier[] = [];
  const checks: Array<Promise<void>> = [];
  run.onEnd(() => {
    for (const verifier of verifiers) verifier.close();
  });
  let sending = true;
  let windowDone: (() => void) | null = null;

  /** Sends a connection's next `count` messages of the cycle, in one write. */
  const send = (client: RawClient, count: number): void => {
    const at = ((client.counter as DeflateReplyCounter).start + client.sent) % n;
    const from = messages.offsets[at]!;
    const to = messages.offsets[at + count]!;
    client.write(messages.ring.subarray(from, to));
    client.sent += count;
    sent.frames += count;
    sent.bytes += to - from;
    sent.compressed += messages.compressedBefore[at + count]! - messages.compressedBefore[at]!;
  };
  const handler = strictHandler(run, what, {
    frames(client, count) {
      client.received += count;
      if (client.received > client.sent) return run.fail(`${what}: more echoes than messages sent`);
      if (sending) send(client, count);
      else if (received.frames === sent.frames) windowDone?.();
    },
  });
  let clients: RawClient[] = [];
  return drive(run, async () => {
    const request = upgradeRequest(job.port, job.path, DEFLATE_OFFER);
    clients = await openClients(run, job.port, job.path, job.connections, 64, () => NO_FRAMES, handler, request);
    if (run.done) return;
    const agreed = agreedNegotiation(clients, what);
    for (const [index, client] of clients.entries()) {
      const start = (index * 7) % n;
      const verifier = new ReplyVerifier(
        job.verifyReplies,
        !agreed.serverNoContextTakeover,
        (reply) => messages.payloads[(start + reply) % n]!,
        (message) => run.fail(`${what}: ${message}`),
        checks,
      );
      verifiers.push(verifier);
      client.counter = new DeflateReplyCounter(received, verifier, start);
    }
    for (const client of clients) send(client, job.inFlight);
    // The full checks of the first replies (some asynchronous) happen in the warm-up: they
    // end before the window starts.
    const window = await countedWindow(job, run, () => ({ received: { ...received }, sent: { ...sent } }), () => Promise.all(checks));
    if (window === null) return;
    const { stats, from, to } = window;
    sending = false;

    const finish = (): void => {
      void Promise.all(checks).then(() => {
        if (run.done) return;
        for (const client of clients) {
          if (client.sent !== client.received) return run.fail(`${what}: a connection sent ${client.sent}, got ${client.received} back`);
          if (!client.counter.atBoundary) return run.fail(`${what}: a connection stopped inside a frame`);
        }
        for (const [index, client] of clients.entries()) {
          const checked = verifiers[index]!.checked;
          if (checked !== Math.min(job.verifyReplies, client.received)) {
            return run.fail(`${what}: a connection had ${checked} of its ${client.received} replies checked`);
          }
        }
        const count = to.received.frames - from.received.frames;
        const sentCount = to.sent.frames - from.sent.frames;
        run.finish({
          type: 'deflateRate',
          count,
          ...stats,
          sentBytesPerMessage: (to.sent.bytes - from.sent.bytes) / sentCount,
          receivedBytesPerMessage: (to.received.bytes - from.received.bytes) / count,
          sentCompressed: (to.sent.compressed - from.sent.compressed) / sentCount,
          receivedCompressed: (to.received.compressed - from.received.compressed) / count,
          negotiated: agreed.header,
          checked:
            `${received.frames} echoes of ${sent.frames} sent (${received.compressed} compressed), all final text frames; ` +
            `the first ${job.verifyReplies} (or all, if fewer) on each of ${clients.length} connections checked in full, ${verifiedHow(agreed)}`,
        });
      });
    };
    if (received.frames === sent.frames) finish();
    else windowDone = finish;
  });
}

function runDeflateOpen(job: DeflateOpenJob): Promise<DeflateOpenResult> {
  const what = `deflate open ${job.connections}`;
  // Every connection also compresses and inflates a message on both sides: allow more time.
  const run = new Run<DeflateOpenResult>(2 * SETUP_TIMEOUT_MS + DRAIN_TIMEOUT_MS, what);
  const messages = clientMessages(deflatePayloads(job), job.clientThreshold);
  const n = messages.payloads.length;
  const received: WireTotals = { frames: 0, bytes: 0, compressed: 0 };
  const verifiers = new Set<ReplyVerifier>();
  const checks: Array<Promise<void>> = [];
  run.onEnd(() => {
    for (const verifier of verifiers) verifier.close();
  });
  let agreed: Negotiated | null = null;
  let opened = 0;
  openEchoOnce<DeflateOpenResult>(run, what, job, {
    request: upgradeRequest(job.port, job.path, DEFLATE_OFFER),
    counter: () => NO_FRAMES,
    open(client) {
      let negotiated: Negotiated;
      try {
        negotiated = agreedNegotiation([client], what);
      } catch (error) {
        return run.fail(error instanceof Error ? error.message : String(error));
      }
      if (agreed !== null && negotiated.header !== agreed.header) {
        return run.fail(`${what}: connections negotiated '${agreed.header}' and '${negotiated.header}'`);
      }
      agreed = negotiated;
      const start = opened++ % n;
      const verifier = new ReplyVerifier(
        1,
        !negotiated.serverNoContextTakeover,
        () => messages.payloads[start]!,
        (message) => run.fail(`${what}: ${message}`),
        checks,
      );
      verifiers.add(verifier);
      client.counter = new DeflateReplyCounter(received, verifier, start);
      client.write(messages.ring.subarray(messages.offsets[start]!, messages.offsets[start + 1]!));
      client.sent = 1;
    },
    pending: () => Promise.all(checks),
    result: (ready) => ({
      type: 'deflateOpened',
      connections: ready,
      held: held.length,
      negotiated: agreed?.header ?? '',
      compressedReplies: received.compressed,
      checked:
        `${ready} connections, each echoed one message (${received.compressed} replies compressed), every reply checked in full, ` +
        `${agreed === null ? '' : verifiedHow(agreed)}`,
    }),
  });
  if (job.connections === 0) {
    run.finish({ type: 'deflateOpened', connections: 0, held: held.length, negotiated: '', compressedReplies: 0, checked: 'nothing' });
  }
  return run.promise;
}

// --------------------------------------------------------------------------------------

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function runJob(job: JobRequest): Promise<JobResult> {
  switch (job.type) {
    case 'echo':
      return runEcho(job);
    case 'latency':
      return runLatency(job);
    case 'fanout':
      return runFanout(job);
    case 'handshake':
      return runHandshakes(job);
    case 'open':
      return runOpen(job);
    case 'closeAll':
      return runCloseAll(job);
    case 'deflateEcho':
      return runDeflateEcho(job);
    case 'deflateOpen':
      return runDeflateOpen(job);
  }
}

function answer(result: JobAnswer): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const lifetime = setTimeout(() => {
  process.stderr.write(`load-main: still running after ${MAX_LIFETIME_MS} ms; exiting\n`);
  process.exit(3);
}, MAX_LIFETIME_MS);
lifetime.unref();

// One job at a time, in order.
let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  const job = JSON.parse(line) as JobRequest;
  queue = queue.then(async () => {
    currentJobId = job.id;
    try {
      answer({ ...(await runJob(job)), id: job.id });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      answer({ type: 'error', message, id: job.id });
    }
  });
});
lines.on('close', () => {
  for (const client of held) client.destroy();
  process.exit(0);
});
process.stdout.write('ready\n');
