// Executable docs: every code block of README.md and docs/**/*.md is checked against the
// package a user installs (`npm pack`, installed into a fresh project: ./support/packed.ts).
// TypeScript and JavaScript are type-checked as modules of one strict nodenext project and
// run (servers against probes and their clients, clients against those servers or `hotline
// serve`, page code in Chromium); shell blocks must name real scripts, files and flags; wire
// messages must pass the validators; plain blocks must name real paths. A block opts out
// only with a marker in the Markdown (./support/docs-extract.ts), and the reasons are listed.
//
// A planted document with drifted blocks goes through the same pipeline and must fail in
// each of the ways that matter, so a green run means the checks can fail.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { extractBlocks, projectBlocks, where, type CodeBlock } from './support/docs-extract.js';
import { checkBlocks, type Verdict } from './support/docs-check.js';
import { packAndInstall, ROOT, type PackedProject } from './support/packed.js';

const PLANTED = `# Planted drift

The control, which must pass: a server the failing client below runs against.

\`\`\`ts
import { serve } from 'hotline';

await serve({ port: 8080, websocket: { '/echo': { message(conn, message) { conn.send(message); } } } });
\`\`\`

\`\`\`ts
import { serve } from 'hotline';

await serve({ port: 8080, websockets: { '/echo': {} } });
\`\`\`

\`\`\`ts
import { validateClientRequest } from 'hotline';

console.log(validateClientRequest);
\`\`\`

\`\`\`ts
import { WebSocket } from 'hotline';

const ws = new WebSocket('ws://127.0.0.1:8080/echo', 'not a token');
ws.onopen = () => ws.close();
\`\`\`

\`\`\`sh
npx hotline serve --no-such-flag
npm run no-such-script
\`\`\`

\`\`\`json
{"op":"sub","id":1}
\`\`\`

\`\`\`jsonc
// a hotline serve config file
{ "prot": 8080 }
\`\`\`

\`\`\`
A diagram of src/nowhere/ and src/wire/.
\`\`\`

\`\`\`
Words with nothing to check.
\`\`\`

<!-- not-checked: -->
\`\`\`ts
const x: number = 'a';
\`\`\`
`;

/** What each planted block must be told, in order; [] for the control. */
const PLANTED_FAILURES: RegExp[][] = [
  [],
  [/TS2561: .*'websockets'/],
  [/TS2305: Module '"hotline"' has no exported member 'validateClientRequest'/],
  [/exited 1:[\s\S]*SyntaxError/],
  [/hotline serve has no flag --no-such-flag/, /npm run no-such-script: package.json has no such script/],
  [/neither a valid request \("ch" is required\) nor a server message/],
  [/the config block: unknown key prot \(did you mean port\?\)/],
  [/names src\/nowhere\/, which does not exist/],
  [/nothing to check in this block/],
  [/needs a reason/],
];

const blocks = projectBlocks(ROOT);
const planted = extractBlocks(PLANTED, 'planted/drift.md');
let project: PackedProject | undefined;
let verdicts: Map<CodeBlock, Verdict> | undefined;

before(async () => {
  project = packAndInstall();
  verdicts = await checkBlocks([...blocks, ...planted], project);
});
after(() => project?.remove());

function describeVerdict(verdict: Verdict): string {
  if (verdict.optedOut !== undefined) return `not checked: ${verdict.optedOut}`;
  if (verdict.checked !== 'typescript') return `checked: ${verdict.checked ?? 'no checker'}`;
  if (verdict.ran === undefined) return `type-checked, not run: ${verdict.notRun ?? ''}`;
  return `type-checked, ran as ${verdict.ran}${verdict.against === undefined ? '' : ` against ${verdict.against}`}`;
}

function verdictOf(block: CodeBlock): Verdict {
  assert.ok(verdicts !== undefined, 'the docs were not checked');
  return verdicts.get(block)!;
}

describe('every code block of the docs checks out against the packed package', () => {
  for (const block of blocks) {
    test(`${where(block)} \`\`\`${block.lang}`, (t) => {
      const verdict = verdictOf(block);
      t.diagnostic(describeVerdict(verdict));
      assert.deepEqual(verdict.problems, []);
      assert.ok(verdict.checked !== null || verdict.optedOut !== undefined, 'neither checked nor opted out');
    });
  }
});

test('the count: blocks checked, programs type-checked and run, and every opt-out with its reason', (t) => {
  const all = blocks.map(verdictOf);
  const optedOut = blocks.filter((b) => verdictOf(b).optedOut !== undefined);
  const typed = all.filter((v) => v.checked === 'typescript');
  const ran = all.filter((v) => v.ran !== undefined);
  const notRun = blocks.filter((b) => verdictOf(b).checked === 'typescript' && verdictOf(b).ran === undefined);
  t.diagnostic(`${blocks.length} code blocks: ${blocks.length - optedOut.length} checked (${typed.length} type-checked, ${ran.length} of them run; ` +
    `${all.filter((v) => v.checked === 'shell').length} shell, ${all.filter((v) => v.checked === 'wire').length} wire, ${all.filter((v) => v.checked === 'config').length} config, ${all.filter((v) => v.checked === 'text').length} text, ${all.filter((v) => v.checked === 'nginx').length} nginx), ${optedOut.length} opted out`);
  for (const block of optedOut) t.diagnostic(`opted out: ${where(block)}: ${block.notChecked!}`);
  for (const block of notRun) t.diagnostic(`type-checked, not run: ${where(block)}: ${verdictOf(block).notRun ?? ''}`);
  assert.equal(ran.length + notRun.length, typed.length);
  assert.ok(typed.length > 0 && ran.length > 0, 'the docs have programs and they ran');
});

describe('a planted document that drifted from the code fails, block by block', () => {
  test('the planted document has the blocks the expectations are for', () => {
    assert.equal(planted.length, PLANTED_FAILURES.length);
  });
  planted.forEach((block, i) => {
    const expected = PLANTED_FAILURES[i]!;
    test(`${where(block)}: ${expected.length === 0 ? 'the control passes, run as a server' : expected.map(String).join(', ')}`, () => {
      const verdict = verdictOf(block);
      if (expected.length === 0) {
        assert.deepEqual(verdict.problems, []);
        assert.equal(verdict.ran, 'server');
        return;
      }
      for (const pattern of expected) {
        assert.ok(verdict.problems.some((p) => pattern.test(p)), `no problem matches ${String(pattern)}; got:\n${verdict.problems.join('\n')}`);
      }
    });
  });
});
