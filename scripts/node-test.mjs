// Runs `node --test` with the spec reporter and reads what it prints. Both runners use it
// (run-tests.mjs and test-repeat.mjs), and both name the failed tests again at the end of
// their output, so that the tail of a long log (all a CI summary may show) says what failed.
import { spawn } from 'node:child_process';
import { stripVTControlCharacters } from 'node:util';

/**
 * Runs `node --import tsx --test --test-reporter=spec ...args`. Resolves with its exit status
 * (1 when a signal ended it), the signal, and its output (stdout and stderr). With
 * `passThrough` the output also goes to this process's own as it comes, in colour on a
 * terminal (piped, the reporter would drop its colours unless asked).
 */
export function runNodeTest(args, { passThrough = false } = {}) {
  const env = passThrough && process.stdout.isTTY ? { ...process.env, FORCE_COLOR: '1' } : process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...args], {
    stdio: [passThrough ? 'inherit' : 'ignore', 'pipe', 'pipe'],
    env,
  });
  let output = '';
  const keep = (to) => (chunk) => {
    if (passThrough) to.write(chunk);
    output += chunk;
  };
  child.stdout.on('data', keep(process.stdout));
  child.stderr.on('data', keep(process.stderr));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ status: code ?? 1, signal, output })));
}

/** Names and first error lines of the failed tests in a spec reporter's output. */
export function failedTests(output) {
  const found = [];
  // Colours (a terminal's run) are dropped first: the reporter puts them around the marks.
  const lines = stripVTControlCharacters(output).split('\n');
  const start = lines.findIndex((line) => line.startsWith('✖ failing tests:'));
  const from = start === -1 ? 0 : start + 1;
  for (let i = from; i < lines.length; i++) {
    const match = /^\s*✖ (.+?)(?: \([\d.]+ms\))?$/.exec(lines[i]);
    if (match === null) continue;
    const detail = lines.slice(i + 1, i + 5).map((line) => line.trim()).filter(Boolean);
    found.push(`${match[1]}\n      ${detail.join('\n      ')}`);
  }
  return found;
}
