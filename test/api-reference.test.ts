// The API reference's coverage, enforced: every exported symbol of the package's entry points
// (typedoc.json) carries a doc comment, as `node scripts/api-reference.mjs --check` counts
// them. A second test plants a small project with undocumented exports beside documented ones,
// so that the check is seen to fail, and to name what it found, when a comment is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const script = join(root, 'scripts', 'api-reference.mjs');

/** Runs the coverage check (TypeDoc converts the whole project: seconds, not milliseconds). */
function check(args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [script, '--check', ...args], { cwd: root, timeout: 300_000 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

test('every exported symbol of the entry points has a doc comment', async () => {
  const { code, stdout, stderr } = await check();
  assert.equal(code, 0, `undocumented exports (write a comment that says what the reader needs):\n${stdout}${stderr}`);
  assert.match(stdout, /api reference: (\d+) of \1 exported symbols documented \(100\.0%\)/);
});

test('the check fails and names each export without a doc comment', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hotline-apidoc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'src'));
  writeFileSync(
    join(dir, 'src', 'index.ts'),
    [
      '/** Documented: adds one. */',
      'export function documented(n: number): number {',
      '  return n + 1;',
      '}',
      'export function planted(): void {}',
      '/** A shape with one member left bare. */',
      'export interface Shape {',
      '  /** Width in pixels. */',
      '  width: number;',
      '  height: number;',
      '}',
      '/** Documented through its interface: the implementation inherits the comment. */',
      'export class Box implements Shape {',
      '  width = 1;',
      '  height = 2;',
      '}',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', skipLibCheck: true }, include: ['src'] }),
  );
  writeFileSync(
    join(dir, 'typedoc.json'),
    JSON.stringify({ entryPoints: ['src/index.ts'], tsconfig: 'tsconfig.json', readme: 'none', disableGit: true, sourceLinkTemplate: 'https://example.invalid/{path}#L{line}' }),
  );

  const { code, stdout, stderr } = await check(['--options', join(dir, 'typedoc.json')]);
  assert.equal(code, 1, `the planted exports must fail the check:\n${stdout}${stderr}`);
  const undocumented = [...stdout.matchAll(/^ {2}undocumented: (.+)$/gm)].map((m) => m[1]).sort();
  // Box.height inherits nothing: Shape.height has no comment either, so both are named.
  assert.deepEqual(undocumented, ['Box.height', 'Shape.height', 'planted']);
  assert.match(stdout, /api reference: \d+ of \d+ exported symbols documented/);
});
