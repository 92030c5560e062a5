// Runs test files with Node's test runner (Node 20's runner does not expand globs or know
// .ts, so the list is built here):
//
//   node scripts/run-tests.mjs [--unit | --integration] [PART...]
//
// --unit: the tests beside the sources (src/); --integration: those under test/; neither:
// both. PART keeps only files whose path contains it.
import { spawnSync } from 'node:child_process';
import { findTestFiles } from './test-files.mjs';

const args = process.argv.slice(2);
const roots = args.includes('--unit') ? ['src'] : args.includes('--integration') ? ['test'] : ['src', 'test'];
const filter = args.filter((arg) => !arg.startsWith('--'));
let files = findTestFiles(roots);
if (filter.length > 0) files = files.filter((f) => filter.some((part) => f.includes(part)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
