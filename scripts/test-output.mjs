// Reads the spec reporter's output of `node --test`: both runners (run-tests.mjs and
// test-repeat.mjs) name the failed tests again at the end of what they print, so that the
// tail of a long log (all a CI summary may show) says what failed.
import { stripVTControlCharacters } from 'node:util';

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
