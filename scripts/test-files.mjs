// The test files of the project: every *.test.ts under src/ (unit tests, beside the code) and
// test/ (integration, conformance and end-to-end tests), sorted.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

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
