/**
 * Compiles one of the benchmarks' C clients (bench/lib/*.c) with the system's `cc`, once per
 * run, into a directory of its own under the system's temporary directory.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/** The compiled binary's path, or why it could not be compiled (no `cc`, or its first error line). */
export function compileCClient(source: string): { binary: string } | { error: string } {
  const name = basename(source, '.c');
  const binary = join(mkdtempSync(join(tmpdir(), `hotline-${name}-`)), name);
  const built = spawnSync('cc', ['-O2', '-o', binary, source], { encoding: 'utf8' });
  if (built.status === 0) return { binary };
  return { error: built.error !== undefined ? built.error.message : built.stderr.trim().split('\n')[0] ?? `cc exited with ${built.status}` };
}
