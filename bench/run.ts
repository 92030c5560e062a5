/**
 * Runs every benchmark in bench/ (each *.ts file here except this one), one after another,
 * each in a fresh Node process so that one benchmark's JIT state and heap cannot colour
 * the next. Arguments are passed to every benchmark (e.g. --quick); the first non-option
 * arguments, if any, select benchmarks by name:
 *
 *   node --import tsx bench/run.ts [NAME...] [--quick ...]
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinnedMallocEnv } from './lib/allocator.js';

const here = dirname(fileURLToPath(import.meta.url));
const self = basename(fileURLToPath(import.meta.url));

const args = process.argv.slice(2);
const names = args.filter((arg, i) => !arg.startsWith('-') && (i === 0 || !args[i - 1]!.startsWith('-')));
const passOn = args.filter((arg) => !names.includes(arg));

const all = readdirSync(here)
  .filter((file) => file.endsWith('.ts') && file !== self && !file.endsWith('.d.ts'))
  .sort();
const chosen = names.length === 0 ? all : all.filter((file) => names.some((name) => file.startsWith(name)));
if (chosen.length === 0) {
  console.error(`no benchmark matches ${names.join(', ')} (have: ${all.join(', ')})`);
  process.exit(1);
}

const failed: string[] = [];
for (const [index, file] of chosen.entries()) {
  if (index > 0) console.log('');
  console.log(`=== ${basename(file, '.ts')} ===`);
  // Benchmarks relaunch themselves with a pinned allocator when run alone; setting it here
  // saves them the extra process.
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(here, file), ...passOn], {
    stdio: 'inherit',
    env: passOn.includes('--system-malloc') ? process.env : pinnedMallocEnv(),
  });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0) failed.push(`${file} (exit ${result.status ?? result.signal})`);
}
if (failed.length > 0) {
  console.error(`\nfailed: ${failed.join(', ')}`);
  process.exit(1);
}
