// The test files of the project: every *.test.ts under src/ (unit tests, beside the code) and
// test/ (integration, conformance and end-to-end tests), sorted; and the two groups the
// runner makes of them.
import { readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

function find(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) find(path, out);
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

/** Test files under the given roots (default: src and test). */
export function findTestFiles(roots = ['src', 'test']) {
  return roots.flatMap((root) => find(root, [])).sort();
}

/**
 * Files whose figures are only honest with the machine to themselves, so they run one at a
 * time with nothing beside them: the attacks (RSS of a real server, a neighbour's round
 * trips), memory per connection (deflate-limits), thousands of connections against a
 * deadline (server-many), fuzzing on a time budget that counts executions (fuzz), and the
 * CLI's own load generator (cli-bench). Everything else runs several files at a time: the
 * conformance suite too, whose verdicts are bytes on the wire (its fail-fast deadline of
 * 2 s is a cap, three orders of magnitude above what a close takes; it passes with a core
 * kept busy).
 */
const SERIAL = [/^test\/attack-/, /^test\/deflate-limits\./, /^test\/server-many\./, /^test\/fuzz\./, /^test\/cli-bench\./];

/**
 * Attacks that measure nothing: pass or fail does not depend on what runs beside them. A
 * browser refused with 403 (attack-origin), an identity's subscriptions ended by an auth or
 * an expiry (attack-identity-switch).
 */
const NOT_SERIAL = [/^test\/attack-origin\./, /^test\/attack-identity-switch\./];

/** Whether a file belongs to the serial group. */
export function isSerial(file) {
  const path = file.split(sep).join('/');
  return SERIAL.some((pattern) => pattern.test(path)) && !NOT_SERIAL.some((pattern) => pattern.test(path));
}

/** The files split into the serial group and the concurrent one, each still sorted. */
export function groupTestFiles(files) {
  return { serial: files.filter(isSerial), concurrent: files.filter((file) => !isSerial(file)) };
}
