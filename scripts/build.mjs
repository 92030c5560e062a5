// Builds dist/: the library, its types and the CLI (tsc), then the browser SDK bundle
// (build-sdk.mjs), and records a digest of the sources it was built from.
//
//   node scripts/build.mjs              build (dist/ is emptied first: no output of a deleted source ships)
//   node scripts/build.mjs --if-stale   build only when dist/ is missing or was built from other sources
//   node scripts/build.mjs --check      say whether it is; exit 0 when up to date, 1 when not
//
// `--if-stale` is the prepack and prepare scripts: `npm pack` and `npm publish` run prepack
// then prepare, and npm builds a package installed from git with prepare alone (yarn and
// pnpm with prepack), so every path to a tarball carries a dist/ built from its sources,
// built once.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const stamp = join(dist, '.sources-digest');
/** What dist/ is made from, besides the sources under src/. */
const BUILD_FILES = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs', 'scripts/build-sdk.mjs'];

function sourceFiles(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

/** A digest of every input's path and contents. */
function digest() {
  const hash = createHash('sha256');
  for (const file of [...BUILD_FILES.map((f) => join(root, f)), ...sourceFiles(join(root, 'src'))]) {
    hash.update(`${relative(root, file)}\0`).update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

/** Why dist/ must be built, or null when it is up to date. */
function staleness() {
  if (!existsSync(stamp)) return existsSync(dist) ? 'dist/ has no record of its sources' : 'there is no dist/';
  return readFileSync(stamp, 'utf8').trim() === digest() ? null : 'the sources changed since dist/ was built';
}

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const mode = process.argv[2];
if (mode !== undefined && mode !== '--if-stale' && mode !== '--check') {
  console.error(`usage: node scripts/build.mjs [--if-stale | --check]`);
  process.exit(2);
}
const reason = mode === undefined ? 'asked to' : staleness();
if (mode === '--check') {
  console.log(reason === null ? 'dist/ is up to date' : `dist/ is stale: ${reason}`);
  process.exit(reason === null ? 0 : 1);
}
if (reason === null) {
  console.log('dist/ is up to date: not building');
} else {
  if (mode !== undefined) console.log(`building dist/: ${reason}`);
  const sources = digest();
  rmSync(dist, { recursive: true, force: true });
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json']);
  run(process.execPath, [join(root, 'scripts', 'build-sdk.mjs')]);
  writeFileSync(stamp, `${sources}\n`);
}
