// Runs test files again and again, to catch a test that fails once in N runs before it lands:
//
//   npm run test:repeat -- FILE... [N] [--busy] [--name PATTERN]
//
// FILE is a path or a part of one (as for npm test); N runs (default 10), each a fresh
// `node --test` process. --busy keeps one core loaded with a CPU burner the whole time (on
// CPU 0 when `taskset` exists), since many races only show on a loaded machine. --name
// passes --test-name-pattern. Every failing run is reported with the names of its failed
// tests and the first lines of each error; the exit status is 1 when any run failed.
import { spawn, spawnSync } from 'node:child_process';
import { findTestFiles } from './test-files.mjs';
import { failedTests, runNodeTest } from './node-test.mjs';

const args = process.argv.slice(2);
let runs = 10;
let busy = false;
let namePattern;
const parts = [];
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--busy') busy = true;
  else if (arg === '--name') namePattern = args[++i];
  else if (/^\d+$/.test(arg)) runs = Number(arg);
  else if (arg === '--help' || arg === '-h') {
    process.stdout.write('usage: npm run test:repeat -- FILE... [N] [--busy] [--name PATTERN]\n');
    process.exit(0);
  } else parts.push(arg);
}
if (parts.length === 0) {
  process.stderr.write('usage: npm run test:repeat -- FILE... [N] [--busy] [--name PATTERN]\n');
  process.exit(2);
}
const files = findTestFiles().filter((file) => parts.some((part) => file.includes(part)));
if (files.length === 0) {
  process.stderr.write(`no test file matches ${parts.join(', ')}\n`);
  process.exit(2);
}

let burner = null;
if (busy) {
  const hasTaskset = spawnSync('taskset', ['--version']).status === 0;
  const burn = [process.execPath, '-e', 'for(;;);'];
  burner = hasTaskset ? spawn('taskset', ['-c', '0', ...burn], { stdio: 'ignore' }) : spawn(burn[0], burn.slice(1), { stdio: 'ignore' });
}
const stopBurner = () => burner?.kill('SIGKILL');
process.on('exit', stopBurner);
process.on('SIGINT', () => process.exit(130));

const failed = [];
const started = Date.now();
for (let run = 1; run <= runs; run++) {
  const t0 = Date.now();
  const nameArgs = namePattern === undefined ? [] : [`--test-name-pattern=${namePattern}`];
  const { status: code, output } = await runNodeTest([...nameArgs, ...files]);
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  if (code === 0) {
    process.stdout.write(`run ${run}/${runs}: passed (${seconds} s)\n`);
    continue;
  }
  const names = failedTests(output);
  failed.push({ run, names });
  process.stdout.write(`run ${run}/${runs}: FAILED (${seconds} s, exit ${code})\n`);
  for (const name of names.length > 0 ? names : ['(no test named; the tail of the output follows)\n' + output.slice(-2000)]) {
    process.stdout.write(`    ✖ ${name}\n`);
  }
}
const total = ((Date.now() - started) / 1000).toFixed(0);
process.stdout.write(`\n${files.join(' ')}: ${runs - failed.length} of ${runs} runs passed in ${total} s${busy ? ' (one core kept busy)' : ''}\n`);
process.exit(failed.length === 0 ? 0 : 1);
