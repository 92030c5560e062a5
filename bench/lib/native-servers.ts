/**
 * The two native-code servers bench/server.ts measures beside hotline and ws, as a
 * performance-minded user would pick them instead: uWebSockets.js (a Node addon) and Bun
 * (its own runtime). Neither is a dependency of hotline; each runs only when it is there,
 * and the benchmark says so loudly when it is not.
 *
 * uWebSockets.js comes from `@trufflesuite/uws-js-unofficial` (v20.30, built for Node 20's
 * ABI and glibc ≤ 2.36; the upstream v20.57 build needs glibc 2.38). Its loader silently
 * falls back to a JavaScript imitation when the addon does not load, so the addon is
 * loaded by path here, never through the package's entry point. Bun is the `bun` binary
 * of `@oven/bun-linux-x64`, or the one BUN (environment) names.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** The path of uWebSockets.js's native addon for this Node, or null when the package is not installed. */
export function uwsAddonPath(): string | null {
  let dir: string;
  try {
    dir = dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
  } catch {
    return null;
  }
  return join(dir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
}

/** The bun executable to run, or null when there is none. */
export function bunExecutable(): string | null {
  const named = process.env['BUN'];
  if (named !== undefined && named !== '') return existsSync(named) ? named : null;
  try {
    const dir = dirname(require.resolve('@oven/bun-linux-x64/package.json'));
    const bin = join(dir, 'bin', 'bun');
    if (existsSync(bin)) return bin;
  } catch {
    // not installed as a package; try PATH
  }
  const which = spawnSync('sh', ['-c', 'command -v bun'], { encoding: 'utf8' });
  const found = which.stdout.trim();
  return which.status === 0 && found !== '' ? found : null;
}

export type Availability = { available: true; version: string } | { available: false; reason: string };

/** Whether uWebSockets.js's addon loads here (tried in a child process, so a crash cannot take the benchmark down). */
export function uwsAvailability(): Availability {
  const addon = uwsAddonPath();
  if (addon === null) return { available: false, reason: '@trufflesuite/uws-js-unofficial is not installed' };
  if (!existsSync(addon)) return { available: false, reason: `no uWebSockets.js build for this platform and Node ABI (${addon})` };
  const tried = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)}).App`], { encoding: 'utf8' });
  if (tried.status !== 0) {
    const line = tried.stderr.split('\n').find((l) => /Error/.test(l)) ?? tried.stderr.trim();
    return { available: false, reason: `its addon does not load: ${line}` };
  }
  const version = (require('@trufflesuite/uws-js-unofficial/package.json') as { version: string }).version;
  return { available: true, version: version.replace(/-unofficial.*$/, '') };
}

/** Whether a bun binary runs here. */
export function bunAvailability(): Availability {
  const bun = bunExecutable();
  if (bun === null) return { available: false, reason: 'no bun binary (@oven/bun-linux-x64, BUN=path, or bun on PATH)' };
  const tried = spawnSync(bun, ['--version'], { encoding: 'utf8' });
  if (tried.status !== 0) return { available: false, reason: `${bun} --version failed: ${(tried.stderr || String(tried.error)).trim()}` };
  return { available: true, version: tried.stdout.trim() };
}
