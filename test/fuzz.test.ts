// The fuzz targets of scripts/fuzz/targets/, seeded and short (~2 s each), inside `npm test`:
// random and mutated frames (also in many tiny fragments, dribbled, and compressed to
// inflate big), heads, extension headers and hotline.v1 requests must raise
// only the documented typed errors, keep every invariant (the RFC close code on each
// failure, the same outcome however the bytes are split, …), stay within a per-input time
// budget and keep the heap flat. The harness itself is tested too: planted exceptions,
// slow inputs, leaks and hangs must be caught, and exceptions minimized.
// For longer runs: `npm run fuzz -- --seconds 60`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProtocolErrorCode } from '../src/protocol/index.js';
import { decodeInput, type Target } from '../scripts/fuzz/driver/input.js';
import { formatFinding } from '../scripts/fuzz/driver/report.js';
import { evaluate } from '../scripts/fuzz/driver/evaluate.js';
import { runTarget } from '../scripts/fuzz/driver/run.js';
import { runInWorker } from '../scripts/fuzz/driver/worker.js';
import { CLOSE_CODE_SAMPLES, runCloseCodeSample } from '../scripts/fuzz/shared/close-code-samples.js';
import { RFC_CLOSE_CODES } from '../scripts/fuzz/shared/frame-oracle.js';
import { PUBLIC_TARGETS, TARGETS } from '../scripts/fuzz/targets/index.js';

/** Fixed seeds: a failure here reproduces with `npm run fuzz -- --target NAME --seed SEED`. */
const SEEDS: Readonly<Record<string, number>> = {
  'frame-server': 6455,
  'frame-client': 6456,
  'frame-server-deflate': 7692,
  'frame-client-deflate': 7693,
  'http-request': 7230,
  'http-response': 7231,
  extensions: 9110,
  'parse-request': 1001,
  'parse-msgpack': 1002,
  fragments: 6455_1,
  dribble: 6455_2,
  inflate: 7692_1,
};

const MS = 2_000;
/** Targets whose inputs are large (a message in ~100,000 frames, weighed after GC) get longer. */
const MS_OF: Readonly<Record<string, number>> = { fragments: 4_000 };
/** Executions a run must reach to count: a weighed message costs two full collections of this process. */
const MIN_EXECUTIONS_OF: Readonly<Record<string, number>> = { fragments: 5 };
/** Generous: the suite shares the machine with other test files. Per-input times are in the milliseconds. */
const BUDGET_MS = 5_000;
const MEMORY_BOUND = 32 * 1024 * 1024;

function target(name: string): Target {
  const t = TARGETS.get(name);
  assert.ok(t !== undefined, `no fuzz target ${name}`);
  return t;
}

describe('fuzz targets, seeded and short', { timeout: 120_000 }, () => {
  /** What the frame targets' inputs led to, to check the fuzzer reaches every peer error. */
  const frameOutcomes = new Set<string>();
  let frameExecutions = 0;

  test('every public target has a fixed seed here', () => {
    assert.deepEqual([...PUBLIC_TARGETS].sort(), Object.keys(SEEDS).sort());
  });

  for (const name of PUBLIC_TARGETS) {
    const ms = MS_OF[name] ?? MS;
    test(`${name}: no findings in ${ms / 1000} s (seed ${SEEDS[name] ?? '?'})`, async () => {
      const report = await runTarget(target(name), {
        seed: SEEDS[name] ?? 1,
        ms,
        budgetMs: BUDGET_MS,
        memoryBoundBytes: MEMORY_BOUND,
        minimizeMs: 3_000,
      });
      assert.ok(report.executions >= (MIN_EXECUTIONS_OF[name] ?? 20), `only ${report.executions} executions ran`);
      assert.deepEqual(report.findings.map(formatFinding), []);
      if (name.startsWith('frame-')) {
        frameExecutions += report.executions;
        for (const label of Object.keys(report.outcomes)) frameOutcomes.add(label);
      }
    });
  }

  test('the frame targets reached every error a peer can cause, and complete messages and closes', (t) => {
    // Each of these is 1% of inputs or more: thousands of executions reach all of them.
    if (frameExecutions < 2_000) {
      t.diagnostic(`only ${frameExecutions} frame executions ran (a busy machine): reach not checked`);
      return;
    }
    const expected = Object.entries(RFC_CLOSE_CODES)
      .filter(([, rule]) => rule.code !== null)
      .map(([code]) => `error ${code}`);
    assert.deepEqual([...expected, 'messages', 'peer close'].filter((label) => !frameOutcomes.has(label)), []);
  });
});

describe('the close code of every ProtocolError', () => {
  test('each error a peer can cause has an RFC close code; the others have none', () => {
    const peerErrors = Object.entries(RFC_CLOSE_CODES).filter(([, rule]) => rule.code !== null).map(([code]) => code);
    assert.deepEqual(
      Object.entries(RFC_CLOSE_CODES).filter(([, rule]) => rule.code === null).map(([code]) => code).sort(),
      ['LOCAL_FAILURE', 'UNEXPECTED_EOF'],
    );
    for (const [code, rule] of Object.entries(RFC_CLOSE_CODES)) {
      if (rule.code !== null) assert.ok([1002, 1007, 1009].includes(rule.code), `${code}: ${rule.code}`);
    }
    // Every peer error is raised by at least one known input, so the table is exercised.
    const sampled = new Set(CLOSE_CODE_SAMPLES.map((s) => s.code));
    assert.deepEqual(peerErrors.filter((c) => !sampled.has(c as ProtocolErrorCode)), []);
  });

  for (const sample of CLOSE_CODE_SAMPLES) {
    test(`${sample.code} (${sample.role}${sample.deflate ? ', deflate' : ''}): close frame ${RFC_CLOSE_CODES[sample.code].code}`, () => {
      const { error, sentCode, problem } = runCloseCodeSample(sample);
      assert.equal(error?.code, sample.code);
      assert.equal(error?.closeCode, RFC_CLOSE_CODES[sample.code].code);
      assert.equal(sentCode, RFC_CLOSE_CODES[sample.code].code, 'the queued close frame carries the code');
      assert.equal(problem, null, problem?.message);
    });
  }
});

describe('the harness finds what it claims to find', { timeout: 180_000 }, () => {
  test('an unexpected exception, minimized to its cause, with a reproducer that replays', async () => {
    const report = await runTarget(target('selftest-exception'), { seed: 3, ms: 1_000, minimizeMs: 5_000 });
    assert.equal(report.findings.length, 1);
    const [finding] = report.findings;
    assert.equal(finding?.kind, 'exception');
    assert.match(finding?.message ?? '', /^RangeError: planted/);
    const small = decodeInput(finding?.minimized ?? '');
    assert.deepEqual({ data: small.data.toString('hex'), splits: small.splits }, { data: 'dead', splits: [] });
    assert.equal(evaluate(target('selftest-exception'), small)?.key, finding?.key);
    assert.match(formatFinding(finding!), /seed=3 iteration=\d+[\s\S]*replay: npm run fuzz -- --target selftest-exception --replay 00000000dead/);
  });

  test('a message assembled from fragments that pins the reads they came in (a planted bug)', async () => {
    // Not every input shows the bug (small messages hide in the slack): the run ends at the
    // first finding, and its time is only a cap, so a busy machine's fewer executions per
    // second do not make the self-test miss it.
    const report = await runTarget(target('selftest-fragments'), { seed: 3, ms: 30_000, minimizeMs: 1_000, maxFindings: 1 });
    assert.ok(report.findings.length >= 1, `no finding in ${report.executions} executions`);
    assert.equal(report.findings[0]?.key, 'assembly-memory');
    assert.match(report.findings[0]?.message ?? '', /bytes of a fragmented message held \d+ bytes after GC/);
  });

  test('a finding made in a worker reaches the report (and so the exit status)', async () => {
    const report = await runInWorker('selftest-exception', { seed: 3, ms: 1_000, minimizeMs: 2_000 });
    assert.deepEqual(report.findings.map((f) => f.kind), ['exception']);
  });

  test('a slow input', async () => {
    const report = await runTarget(target('selftest-slow'), { seed: 3, ms: 1_000, budgetMs: 50 });
    assert.deepEqual(report.findings.map((f) => f.kind), ['slow']);
    assert.equal(decodeInput(report.findings[0]?.input ?? '').data[0], 0x01);
  });

  test('a heap that keeps growing', async () => {
    const report = await runTarget(target('selftest-leak'), { seed: 3, ms: 1_000, memoryBoundBytes: 16 * 1024 * 1024 });
    assert.deepEqual(report.findings.map((f) => f.kind), ['memory']);
    assert.ok(report.heapGrowthBytes > 16 * 1024 * 1024);
  });

  test('a hang, in a worker thread that the watchdog terminates', async () => {
    const report = await runInWorker('selftest-hang', { seed: 3, ms: 30_000, hangMs: 1_000 });
    assert.deepEqual(report.findings.map((f) => f.kind), ['hang']);
    const finding = report.findings[0]!;
    assert.ok(finding.iteration !== null && finding.input !== null);
    assert.equal(decodeInput(finding.input).data[0], 0x00, 'the reported input is the one that hangs');
  });

  test('a worker run of a real target reports executions and no findings', async () => {
    const report = await runInWorker('extensions', { seed: 5, ms: 500, budgetMs: BUDGET_MS });
    assert.ok(report.executions > 0);
    assert.deepEqual(report.findings.map(formatFinding), []);
  });
});
