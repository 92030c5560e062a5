// The curl examples of docs/serve/http-api.md, run as written against a real `hotline serve
// --api-key KEY` (the port replaced, HOTLINE_API_KEY in the environment), each answer
// compared with the JSON block after it: equal, but for what differs from run to run
// (epochs, node ids, uptime: compared by type). They run in the document's order, on a
// fresh server, so offsets and counts are those shown.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startCli, type CliServer } from './support/cli-server.js';
import { extractBlocks } from './support/docs-extract.js';

const DOC = 'docs/serve/http-api.md';
const KEY = 'docs-example-api-key-0123456789';
/** Fields whose values change from run to run. */
const VARYING = new Set(['epoch', 'node', 'uptime']);

const blocks = extractBlocks(readFileSync(new URL(`../${DOC}`, import.meta.url), 'utf8'), DOC);
const examples: Array<{ line: number; command: string; answer: unknown }> = [];
for (const [i, block] of blocks.entries()) {
  if (block.lang !== 'sh' || !block.text.includes('curl ')) continue;
  const next = blocks[i + 1];
  assert.ok(next?.lang === 'json', `${DOC}:${block.line}: a curl example is followed by its answer`);
  examples.push({ line: block.line, command: block.text, answer: JSON.parse(next.text) });
}

/** `actual` as `expected`, the varying fields compared by type only. */
function like(actual: unknown, expected: unknown, path = ''): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: an array`);
    assert.equal(actual.length, expected.length, `${path}: ${expected.length} items`);
    expected.forEach((item, i) => like(actual[i], item, `${path}[${i}]`));
  } else if (typeof expected === 'object' && expected !== null) {
    assert.ok(typeof actual === 'object' && actual !== null, `${path}: an object`);
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `${path}: the same fields`);
    for (const [key, value] of Object.entries(expected)) {
      const field: unknown = (actual as Record<string, unknown>)[key];
      if (VARYING.has(key)) assert.equal(typeof field, typeof value, `${path}.${key}: a ${typeof value}`);
      else like(field, value, `${path}.${key}`);
    }
  } else assert.equal(actual, expected, path);
}

let server: CliServer;
before(async () => {
  server = await startCli(0, ['--api-key', KEY]);
});
after(async () => {
  await server?.stop();
});

test(`${DOC} has its examples`, () => {
  assert.ok(examples.length >= 9, `${examples.length} curl examples`);
});

for (const example of examples) {
  test(`${DOC}:${example.line}: ${/\/api\/(\w+)/.exec(example.command)?.[1]} answers as documented`, async () => {
    const command = example.command.replaceAll('127.0.0.1:8080', `127.0.0.1:${server.port}`);
    const { stdout } = await promisify(execFile)('sh', ['-c', command], { env: { ...process.env, HOTLINE_API_KEY: KEY } });
    like(JSON.parse(stdout), example.answer);
  });
}
