// What every attack test needs: a real `hotline serve` process to attack (its RSS read from
// /proc), and a well-behaved neighbour in a process of its own whose round trips show that
// the server still serves everyone else while it is attacked.
//
//   const fixture = attackFixture(() => startTarget(['--max-connections', '100'], { nodeArgs: ['--max-old-space-size=512'] }));
//   test('…', async () => {
//     const { target, neighbour } = fixture;
//     const peak = new RssSampler(target.pid);
//     … the attack …
//     const report = await neighbour.report();
//     assertServed(report);                        // no failure, round trips within bounds
//     assert.ok(peak.stop() < target.baseline + 64 * MiB);
//   });
import assert from 'node:assert/strict';
import { after, before, beforeEach } from 'node:test';
import { Buffer } from 'node:buffer';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ChildLines } from './child-lines.js';
import { startCli, type CliServer, type StartOptions } from './cli-server.js';
import type { NeighbourOptions, NeighbourReport } from './neighbour.js';
import { upgradeSocket } from './raw-upgrade.js';

export type { NeighbourReport } from './neighbour.js';

export const MiB = 1024 * 1024;

/** Resident memory of a process, in bytes (VmRSS from /proc/PID/status); 0 once it is gone. */
export function rssOf(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

export interface AttackTarget extends CliServer {
  readonly pid: number;
  /** RSS once it was listening and had served one neighbour, before the attack. */
  baseline: number;
  /** RSS now. */
  rss(): number;
  /** Whether the process is still running. */
  alive(): boolean;
  /** GET a path of the server (for /metrics, /healthz). */
  get(path: string): Promise<{ status: number; text: string }>;
}

/** Starts `hotline serve` with `args` in a process of its own. */
export async function startTarget(args: readonly string[] = [], options: StartOptions = {}): Promise<AttackTarget> {
  const server = await startCli(0, args, options);
  const pid = server.child.pid!;
  const target: AttackTarget = {
    ...server,
    pid,
    baseline: rssOf(pid),
    rss: () => rssOf(pid),
    alive: () => server.child.exitCode === null && server.child.signalCode === null,
    async get(path) {
      const response = await fetch(server.http + path);
      return { status: response.status, text: await response.text() };
    },
  };
  return target;
}

/** A process's CPU time so far (user + system), in ms, from /proc/PID/stat. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), counted from field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** Samples a process's RSS every `everyMs` until stopped; `peak` is the highest seen. */
export class RssSampler {
  peak: number;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly pid: number,
    everyMs = 50,
  ) {
    this.peak = rssOf(pid);
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, rssOf(this.pid));
    }, everyMs);
    this.timer.unref();
  }

  /** Stops sampling and returns the peak (with one last sample). */
  stop(): number {
    clearInterval(this.timer);
    this.peak = Math.max(this.peak, rssOf(this.pid));
    return this.peak;
  }
}

const NEIGHBOUR_SCRIPT = fileURLToPath(new URL('./neighbour.ts', import.meta.url));

/** What an attack runs against: a server process (`hotline serve`, or a script of test/support). */
export interface Attackable {
  readonly ws: string;
  /** RSS before the attack: in an `attackFixture`, taken again before each test. */
  baseline: number;
  rss(): number;
  stop(): Promise<unknown>;
}

/**
 * The setting of an attack file (or suite): before its tests, the target `start` gives, a
 * neighbour beside it and `prepare` (data the attack needs in place); before each test, the
 * target's baseline RSS; after them, both stopped. The tests read `fixture.target` and
 * `fixture.neighbour`.
 *
 * The baseline is taken per test because a bound on RSS is a bound on what that test's
 * attack grows: memory an earlier attack in the file left resident (the allocator keeps what
 * it freed, V8 keeps the heap it grew) is not this attack's, and counting it made a later
 * test fail by whatever the earlier one happened to leave.
 */
export function attackFixture<T extends Attackable>(start: () => Promise<T>, prepare?: (target: T) => Promise<void>): { readonly target: T; readonly neighbour: Neighbour } {
  let target: T | undefined;
  let neighbour: Neighbour | undefined;
  before(async () => {
    target = await start();
    neighbour = await Neighbour.start(target.ws);
    await prepare?.(target);
  });
  beforeEach(() => {
    if (target !== undefined) target.baseline = target.rss();
  });
  after(async () => {
    await neighbour?.stop();
    await target?.stop();
  });
  return {
    get target() {
      assert.ok(target !== undefined, 'the target did not start');
      return target;
    },
    get neighbour() {
      assert.ok(neighbour !== undefined, 'the neighbour did not start');
      return neighbour;
    },
  };
}

/** A hotline.v1 connection with `ws` (no compression), once it is open. */
export function openChannels(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['hotline.v1'], { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Round trips of each kind a neighbour's report waits for, and assertServed asks of it, by default. */
const MIN_TRIPS = 5;

/** The parent's side of ./neighbour.ts: start it, ask for reports, stop it. */
export class Neighbour {
  private readonly lines: ChildLines;

  private constructor(private readonly child: ChildProcess) {
    this.lines = new ChildLines(child);
    child.stderr!.resume();
  }

  /** Starts a neighbour on `url` (`ws://127.0.0.1:PORT`) and resolves once it is connected and subscribed. */
  static async start(url: string, options: Omit<NeighbourOptions, 'url'> = {}): Promise<Neighbour> {
    const child = spawn(process.execPath, ['--import', 'tsx', NEIGHBOUR_SCRIPT, JSON.stringify({ ...options, url })], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const neighbour = new Neighbour(child);
    const line = await neighbour.lines.next((l) => l === 'neighbour ready' || l.startsWith('neighbour failed'), 'the neighbour to start', 20_000);
    if (line !== 'neighbour ready') throw new Error(line);
    return neighbour;
  }

  /**
   * The round trips since the last report (or the start), once there are `trips` of each kind
   * (or a failure, or the neighbour's timeout passed): a short attack then still leaves a
   * number to judge by that does not depend on the machine's speed (see ./neighbour.ts).
   */
  async report(trips = MIN_TRIPS): Promise<NeighbourReport> {
    const from = this.lines.all.length;
    this.child.stdin!.write(`report ${trips}\n`);
    // The neighbour answers within twice its round-trip timeout (10 s by default).
    const line = await this.lines.next((l) => l.startsWith('neighbour report '), 'a report from the neighbour', 30_000, from);
    return JSON.parse(line.slice('neighbour report '.length)) as NeighbourReport;
  }

  /** Drops the round trips made so far, without waiting for any: the next report covers only what follows. */
  async forget(): Promise<void> {
    await this.report(0);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin!.end();
    await exited;
  }

}

export interface ServedBounds {
  /** The median round trip must stay under this (ms, default 50). */
  p50?: number;
  /** And the slowest under this (ms, default 2000): generous, the suite shares two cores. */
  max?: number;
  /** At least this many round trips of each kind it does (default 5). */
  count?: number;
}

/**
 * The neighbour was served throughout: no failure, enough round trips, and none slow. The
 * bounds are loose on purpose: they tell "served" from "starved" (an attack that starves
 * a server makes round trips take seconds or time out), not fast from slow.
 */
export function assertServed(report: NeighbourReport, bounds: ServedBounds = {}): void {
  const { p50 = 50, max = 2_000, count = MIN_TRIPS } = bounds;
  assert.deepEqual(report.failures, [], 'the neighbour saw no failure');
  for (const kind of ['echo', 'channel'] as const) {
    const trips = report[kind];
    if (trips.count === 0 && count === 0) continue;
    assert.ok(trips.count >= count, `the neighbour made ${trips.count} ${kind} round trips (at least ${count})`);
    assert.ok(trips.p50 < p50, `the neighbour's median ${kind} round trip took ${trips.p50.toFixed(1)} ms (under ${p50})`);
    assert.ok(trips.max < max, `the neighbour's slowest ${kind} round trip took ${trips.max.toFixed(1)} ms (under ${max})`);
  }
}

/**
 * Runs an attack sent from this test process at a lower CPU priority than the server and
 * the neighbour (both started earlier, so not affected). On two cores a flood's own client
 * work (building, masking and sending frames, parsing the answers) takes a core; at equal
 * priority it crowds the neighbour's process, whose round trips then measure the test
 * machine's scheduler rather than the server. A real attacker's CPU is not the server's.
 * (On Linux a priority is the calling thread's: this process's JavaScript thread.)
 */
export async function asAttacker<T>(attack: () => Promise<T>): Promise<T> {
  setPriority(10);
  try {
    return await attack();
  } finally {
    // Raising it back needs privilege (CI runs as root); unprivileged, the rest of the file stays polite.
    try {
      setPriority(0);
    } catch {
      // kept at 10
    }
  }
}

/** One line for a test's diagnostics: the neighbour's round trips. */
export function describeReport(report: NeighbourReport): string {
  const f = (t: { count: number; p50: number; p99: number; max: number }): string =>
    `${t.count} trips p50 ${t.p50.toFixed(2)} p99 ${t.p99.toFixed(2)} max ${t.max.toFixed(1)} ms`;
  return `echo ${f(report.echo)}; channel ${f(report.channel)}; failures ${report.failures.length}`;
}

// ───────────────────────────── raw peers ─────────────────────────────

/** A client frame (masked, with a zero mask key unless given), any opcode and FIN. */
export function clientFrame(opcode: number, payload: Uint8Array, fin = true, rsv1 = false, key = Buffer.alloc(4)): Buffer {
  const length = payload.length;
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.alloc(head + 4 + length);
  frame[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  key.copy(frame, head);
  for (let i = 0; i < length; i++) frame[head + 4 + i] = payload[i]! ^ key[i & 3]!;
  return frame;
}

/** A WebSocket connection made by hand over TCP: the upgrade done, the socket left to the test. */
export interface RawConnection {
  socket: Socket;
  /** Bytes that came after the 101's head, and everything after them. */
  received(): Buffer;
  /** Settles when the socket closes. */
  closed: Promise<void>;
}

/** Upgrades a TCP connection to `path` on 127.0.0.1:`port` (with extra header lines) and resolves after the 101. */
export async function rawConnect(port: number, path: string, headers: readonly string[] = []): Promise<RawConnection> {
  const { socket, rest } = await upgradeSocket(port, path, headers);
  let buffered = rest;
  const closed = new Promise<void>((done) => socket.once('close', () => done()));
  socket.on('data', (chunk: Buffer) => (buffered = Buffer.concat([buffered, chunk])));
  return { socket, received: () => buffered, closed };
}

/** The close frame's code in what a server sent (the first close frame), or null. */
export function closeCodeIn(bytes: Buffer): number | null {
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f;
    let length = bytes[at + 1]! & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(at + 2);
      offset += 2;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(at + 2));
      offset += 8;
    }
    if (offset + length > bytes.length) return null;
    if (opcode === 0x8) return length >= 2 ? bytes.readUInt16BE(offset) : 1005;
    at = offset + length;
  }
  return null;
}
