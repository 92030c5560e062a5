// Runs test files with Node's test runner (Node 20's runner does not expand globs or know
// .ts, so the list is built here):
//
//   node scripts/run-tests.mjs [--unit | --integration] [--concurrency N] [PART...]
//
// --unit: the tests beside the sources (src/); --integration: those under test/; neither:
// both. PART keeps only files whose path contains it. The files run in two groups, one after
// the other (scripts/test-files.mjs says which file goes where): the serial group one file
// at a time with the machine to itself, since its tests measure RSS, a neighbour's latency
// or work done in a time budget; then the rest, N files at a time (default 3 on two cores:
// most of them wait on sockets and child processes more than they compute).
//
// A test file that hangs (a promise that never settles, a wait with no deadline) fails after
// TEST_TIMEOUT_MS instead of holding the run until CI's limit. Node's runner applies the
// timeout to each file as a whole: the longest, test/docs-snippets.test.ts, took 82 s with
// three files at a time, so the limit leaves it about three times that. (Not --test-force-exit:
// it ends a file's process before its last results reach the runner, which then counts
// fewer tests and no failure.)
//
// Each group's output passes straight through, and the failed tests of both groups are named
// again on the last lines, so the tail of a CI log says what failed in the serial group too.
import { findTestFiles, groupTestFiles } from './test-files.mjs';
import { failedTests, runNodeTest } from './node-test.mjs';

const args = process.argv.slice(2);
const roots = args.includes('--unit') ? ['src'] : args.includes('--integration') ? ['test'] : ['src', 'test'];
let concurrency = 3;
const filter = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--concurrency') concurrency = Number(args[++i]);
  else if (!args[i].startsWith('--')) filter.push(args[i]);
}
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error('--concurrency takes a whole number of files, 1 or more');
  process.exit(2);
}
let files = findTestFiles(roots);
if (filter.length > 0) files = files.filter((f) => filter.some((part) => f.includes(part)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

const { serial, concurrent } = groupTestFiles(files);
const TEST_TIMEOUT_MS = 240_000;

let status = 0;
const took = [];
const failed = [];
for (const [name, group, n] of [
  ['serial', serial, 1],
  ['concurrent', concurrent, concurrency],
]) {
  if (group.length === 0) continue;
  const started = Date.now();
  const result = await runNodeTest([`--test-concurrency=${n}`, `--test-timeout=${TEST_TIMEOUT_MS}`, ...group], { passThrough: true });
  if (result.status !== 0) {
    status = result.status;
    const names = failedTests(result.output);
    const why = result.signal === null ? `exit ${result.status}` : `killed by ${result.signal}`;
    failed.push(`${name} group failed (${why})${names.length > 0 ? ':' : ', no test named'}`);
    for (const test of names) failed.push(`  ✖ ${test}`);
  }
  took.push(`${name}: ${group.length} files in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
console.log(`\n${took.join('; ')}`);
if (failed.length > 0) console.log(failed.join('\n'));
process.exit(status);
