// `hotline bench` against `hotline serve` (both the built CLI): every scenario runs, checks
// what comes back, and ends with a summary table; a wrong endpoint or URL is a clear error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { CLI, requireBuiltCli, startCli, type CliServer } from './support/cli-server.js';

let server: CliServer;
before(async () => {
  requireBuiltCli();
  // Its handshakes all come from 127.0.0.1, faster than a client address may connect by default.
  server = await startCli(0, ['--connection-rate-per-address', '0']);
});
after(async () => {
  await server.stop();
});

function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'bench', ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

test('every scenario against /echo, with a summary table', async () => {
  const { code, stdout, stderr } = await bench([`ws://127.0.0.1:${server.port}/echo`, '--seconds', '1', '--connections', '4', '--size', '64', '--binary']);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /scenario\s+result/);
  assert.match(stdout, /echo 64 B binary, 4 conns x 8 in flight\s+[\d,]+ messages\/s/);
  assert.match(stdout, /round trip 64 B, 1 in flight\s+p50 \d+ µs, p99 \d+ µs/);
  assert.match(stdout, /connect, upgrade, close; 4 at a time\s+[\d,]+ handshakes\/s/);
});

test('an endpoint that does not echo is reported, with exit status 1', async () => {
  const { code, stderr } = await bench([`ws://127.0.0.1:${server.port}/ws`, '--scenario', 'echo', '--seconds', '1', '--connections', '1', '--protocol', 'hotline.v1']);
  assert.equal(code, 1);
  assert.match(stderr, /is this an echo endpoint\?/);
});

test('a server that limits new connections per address: the handshakes fail with a 429 and say which option', async () => {
  const limited = await startCli(0, ['--connection-rate-per-address', '1:3']);
  try {
    const { code, stderr } = await bench([`ws://127.0.0.1:${limited.port}/echo`, '--scenario', 'handshakes', '--seconds', '1', '--connections', '4']);
    assert.equal(code, 1);
    assert.match(stderr, /handshakes failed against .*: expected status 101, got 429 Too Many Requests \(the server limits connections per client address: start `hotline serve` with --connection-rate-per-address 0/);
  } finally {
    await limited.stop();
  }
});

test('bad usage exits 2', async () => {
  assert.equal((await bench(['http://example.test/'])).code, 2);
  assert.equal((await bench([`ws://127.0.0.1:${server.port}/echo`, '--scenario', 'nope'])).code, 2);
  assert.equal((await bench([`ws://127.0.0.1:${server.port}/echo`, '--seconds', '0'])).code, 2);
});
