/**
 * What Linux's /proc says about another process: the CPU time it used (all its threads:
 * the main thread, V8's GC helpers, libuv's pool) and its resident memory; and about the
 * host, the TIME_WAIT entries a benchmark's rounds wait out.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatCount } from './table.js';

let cachedTicks: number | undefined;

/** Clock ticks per second in /proc/<pid>/stat (USER_HZ, nearly always 100). */
export function clockTicksPerSecond(): number {
  if (cachedTicks !== undefined) return cachedTicks;
  let ticks = 100;
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(value) && value > 0) ticks = value;
  } catch {
    // getconf missing: Linux has used 100 on every common architecture for decades.
  }
  cachedTicks = ticks;
  return ticks;
}

/** CPU seconds (user + system) that process `pid` has used so far. */
export function processCpuSeconds(pid: number, ticksPerSecond = clockTicksPerSecond()): number {
  const { user, system } = processCpuTimes(pid, ticksPerSecond);
  return user + system;
}

/** User and system CPU seconds that process `pid` has used so far. */
export function processCpuTimes(pid: number, ticksPerSecond = clockTicksPerSecond()): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) is in parentheses and may hold spaces: fields count from after it.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot parse /proc/${pid}/stat`);
  return { user: utime / ticksPerSecond, system: stime / ticksPerSecond };
}

/** Resident set size of process `pid`, in bytes (VmRSS of /proc/<pid>/status). */
export function processRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export interface CpuShare {
  /** CPU time over wall time (1 = one core busy all along). */
  share: number;
  /** The part of `share` spent in the kernel. */
  systemShare: number;
  cpuSeconds: number;
  wallSeconds: number;
}

/** Measures a process's CPU share over an interval: call `stop()` at its end. */
export function cpuShareMeter(pid: number): { stop(): CpuShare } {
  const ticks = clockTicksPerSecond();
  const start = processCpuTimes(pid, ticks);
  const wallStart = process.hrtime.bigint();
  return {
    stop() {
      const end = processCpuTimes(pid, ticks);
      const wallSeconds = Number(process.hrtime.bigint() - wallStart) / 1e9;
      const system = end.system - start.system;
      const cpuSeconds = end.user - start.user + system;
      return { share: cpuSeconds / wallSeconds, systemShare: system / wallSeconds, cpuSeconds, wallSeconds };
    },
  };
}

/** Busy seconds (everything but idle and iowait) of CPU `cpu` since boot, from /proc/stat. */
export function cpuBusySeconds(cpu: number, ticksPerSecond = clockTicksPerSecond()): number {
  const stat = readFileSync('/proc/stat', 'latin1');
  const line = stat.split('\n').find((l) => l.startsWith(`cpu${cpu} `));
  if (line === undefined) throw new Error(`no cpu${cpu} in /proc/stat`);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / ticksPerSecond;
}

/** What the kernel did for a process: its read and write system calls and bytes, and its main thread's sleeps. */
export interface KernelCounters {
  /** read-type system calls (read, readv, recvmsg...) of all its threads (/proc/<pid>/io syscr). */
  reads: number;
  /** write-type system calls (write, writev, sendmsg...) (syscw). */
  writes: number;
  /** Bytes those calls returned and took (rchar, wchar). */
  readBytes: number;
  writtenBytes: number;
  /** Times its main thread gave up the CPU to wait (voluntary context switches: an epoll wait that slept). */
  sleeps: number;
  /** Times the scheduler took the CPU from it (nonvoluntary context switches). */
  preemptions: number;
  /** Minor page faults of all its threads: memory touched for the first time since it was mapped (the kernel's work, in its CPU). */
  pageFaults: number;
}

/** The kernel's counters of process `pid` so far (see {@link KernelCounters}). */
export function processKernelCounters(pid: number): KernelCounters {
  const io = readFileSync(`/proc/${pid}/io`, 'latin1');
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const field = (text: string, name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text);
    if (match === null) throw new Error(`no ${name} for process ${pid}`);
    return Number(match[1]);
  };
  return {
    reads: field(io, 'syscr'),
    writes: field(io, 'syscw'),
    readBytes: field(io, 'rchar'),
    writtenBytes: field(io, 'wchar'),
    sleeps: field(status, 'voluntary_ctxt_switches'),
    preemptions: field(status, 'nonvoluntary_ctxt_switches'),
    pageFaults: minorFaults(pid),
  };
}

/** Field 10 of /proc/<pid>/stat, counted after the parenthesised command name (which may hold spaces). */
function minorFaults(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

/** `end` less `start`, counter by counter. */
export function kernelCountersSince(start: KernelCounters, end: KernelCounters): KernelCounters {
  return {
    reads: end.reads - start.reads,
    writes: end.writes - start.writes,
    readBytes: end.readBytes - start.readBytes,
    writtenBytes: end.writtenBytes - start.writtenBytes,
    sleeps: end.sleeps - start.sleeps,
    preemptions: end.preemptions - start.preemptions,
    pageFaults: end.pageFaults - start.pageFaults,
  };
}

/** The pids of a process's children (a serve primary's workers), from /proc; none once it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** TCP connections in TIME_WAIT on this host, or null where /proc/net/sockstat is not readable. */
export function timeWaitCount(): number | null {
  try {
    const match = /^TCP:.* tw (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'));
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

/** TIME_WAIT entries a benchmark's round may start with: up to some 60,000 a connection costs the same. */
const TIME_WAIT_START = 30_000;
/** Longer than the kernel keeps a TIME_WAIT entry (60 s). */
const TIME_WAIT_MAX_WAIT_MS = 70_000;

/**
 * Waits (polling, bounded) until the host's TIME_WAIT table is down to TIME_WAIT_START
 * entries; says so when it had to wait. A server that closes first leaves one per
 * connection, and a large table makes each new connection dearer (bench/reconnect.ts).
 */
export async function settleTimeWait(): Promise<void> {
  const start = performance.now();
  let count = timeWaitCount();
  while (count !== null && count > TIME_WAIT_START && performance.now() - start < TIME_WAIT_MAX_WAIT_MS) {
    await sleep(1_000);
    count = timeWaitCount();
  }
  const waited = performance.now() - start;
  if (waited > 1_000) console.log(`  (waited ${(waited / 1000).toFixed(0)} s for TIME_WAIT entries to expire: ${count === null ? '?' : formatCount(count)} left)`);
}
