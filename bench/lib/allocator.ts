/**
 * Keeps the C allocator from handing memory back to the kernel between iterations.
 *
 * Node allocates Buffer memory with malloc. By default glibc serves large blocks with fresh
 * mmap()s and trims freed memory back to the kernel, so a benchmark that allocates a 1 MiB
 * message per iteration page-faults on every 4 KiB page of it, every time. On some virtual
 * machines a page fault costs around 10 µs, which then swamps the codec being measured
 * (throughput drops 5-10x and varies with heap layout). Pinning glibc's mmap and trim
 * thresholds (GLIBC_TUNABLES) makes freed memory get reused instead, so allocation costs
 * what it costs on a warmed-up server. Only environment variables read at process start
 * can do this, hence the relaunch.
 */
import { spawnSync } from 'node:child_process';

/** Blocks up to 32 MiB (glibc's ceiling for this setting) come from the heap, which keeps up to 1 GiB free. */
export const PINNED_MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824';

interface ReportHeader {
  header?: { glibcVersionRuntime?: string };
}

function usesGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  const report = process.report?.getReport() as ReportHeader | undefined;
  return typeof report?.header?.glibcVersionRuntime === 'string';
}

/** How this process's allocator is set up, for the report header. */
export function allocatorDescription(): string {
  if (!usesGlibc()) return 'malloc: system default';
  const tunables = process.env.GLIBC_TUNABLES ?? '';
  if (tunables.includes(PINNED_MALLOC_TUNABLES)) return 'malloc: glibc, mmap/trim thresholds pinned';
  if (tunables.includes('glibc.malloc.')) return `malloc: glibc, GLIBC_TUNABLES=${tunables}`;
  return 'malloc: glibc defaults (memory returned to the kernel; page faults may dominate large sizes)';
}

/** The environment for a child process that should run with the allocator pinned. */
export function pinnedMallocEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const current = env.GLIBC_TUNABLES;
  if (current !== undefined && current.includes('glibc.malloc.')) return env;
  return { ...env, GLIBC_TUNABLES: current ? `${current}:${PINNED_MALLOC_TUNABLES}` : PINNED_MALLOC_TUNABLES };
}

/**
 * Re-runs the current script, with the same Node options and arguments, in a child whose
 * allocator is pinned, and returns the child's exit code. Returns null when there is
 * nothing to do (not glibc, or malloc tunables are already set): the caller then runs
 * the benchmark itself.
 */
export function relaunchWithPinnedMalloc(): number | null {
  if (!usesGlibc()) return null;
  const env = pinnedMallocEnv();
  if (env === process.env) return null;
  const result = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env,
  });
  if (result.error !== undefined) throw result.error;
  return result.status ?? 1;
}
