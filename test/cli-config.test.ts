// `hotline serve --config FILE` and `hotline config check|init`, run as a user runs them
// (the built CLI in its own process): each bad file answers one line naming the file and the
// key, and exit 1, before anything listens; flags win over HOTLINE_* variables, which win
// over the file. `npm run build` first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, requireBuiltCli } from './support/cli-server.js';
import { freePort } from './support/ports.js';

requireBuiltCli();
const dir = mkdtempSync(join(tmpdir(), 'hotline-config-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI to its exit (a server that starts is killed: these runs must not start one). */
function run(args: string[], env: NodeJS.ProcessEnv = {}, cwd = dir): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, timeout: 15_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const BAD_FILES: Array<[what: string, name: string, text: string, line: string]> = [
  ['a value of the wrong type', 'type.json', '{ "idleTimeout": "30s" }', 'type.json: idleTimeout must be a whole number (got "30s")'],
  ['an unknown key, with the likely one', 'unknown.json', '{\n  "port": 0,\n  "heartbeatIntervall": 1000\n}', 'unknown.json: unknown key heartbeatIntervall (did you mean heartbeatInterval?)'],
  ['bad JSON, by line and column', 'syntax.json', '{\n  // a comment is fine\n  "port": 0\n  "host": "127.0.0.1"\n}', `syntax.json: line 4, column 3: expected ',' or '}', found "\\"host\\""`],
  [
    'a namespace value outside its choices',
    'namespace.json',
    '{ "namespaces": { "chat:*": { "subscribe": "anyone", "publish": "everyone" } } }',
    'namespace.json: namespaces."chat:*".publish must be one of anyone, authenticated, claim, token, server (got "everyone")',
  ],
  ['a number out of range', 'range.json', '{ "port": 70000 }', 'range.json: port must be a whole number from 0 to 65535 (got 70000)'],
  ['a rate in none of its forms', 'rate.json', '{ "publishRate": "fast" }', 'rate.json: publishRate must be requests per second (50), with a burst ("50:100"), or {"perSecond": 50, "burst": 100} (got "fast")'],
];

for (const [what, name, text, line] of BAD_FILES) {
  test(`hotline serve --config: ${what} is one line naming the file and the key, exit 1`, async () => {
    const path = file(name, text);
    const result = await run(['serve', '--config', path, '--port', '0'], {}, dir);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, '', 'nothing listened');
    assert.equal(result.stderr, `${join(dir, line.split(':')[0]!)}${line.slice(line.indexOf(':'))}\n`);
  });
}

test('hotline serve --config: a missing file is one line, exit 1; HOTLINE_CONFIG names the file too', async () => {
  const missing = join(dir, 'nope.json');
  const flag = await run(['serve', '--config', missing]);
  assert.equal(flag.code, 1);
  assert.equal(flag.stderr, `${missing}: cannot read the config file: no such file\n`);
  const variable = await run(['serve'], { HOTLINE_CONFIG: missing });
  assert.equal(variable.stderr, `${missing}: cannot read the config file: no such file\n`);
});

test('hotline config check: every problem of a file at once, one line each, exit 1', async () => {
  const path = file('many.json', '{ "prot": 1, "namespaces": { "chat:*": { "publish": "everyone" } }, "token": { "hmacSecret": "short" } }');
  const result = await run(['config', 'check', path]);
  assert.equal(result.code, 1);
  assert.deepEqual(result.stderr.trimEnd().split('\n').sort(), [
    `${path}: namespaces."chat:*".publish must be one of anyone, authenticated, claim, token, server (got "everyone")`,
    `${path}: token.hmacSecret must be at least 32 characters (try: openssl rand -hex 32)`,
    `${path}: unknown key prot (did you mean port?)`,
  ]);
});

test('hotline config init writes a commented starter that check accepts, and never overwrites', async () => {
  const init = await run(['config', 'init'], {}, dir);
  assert.equal(init.code, 0, init.stderr);
  const written = readFileSync(join(dir, 'hotline.json'), 'utf8');
  assert.match(written, /^\/\/ hotline serve --config hotline.json/);
  const check = await run(['config', 'check', 'hotline.json'], {}, dir);
  assert.equal(check.code, 0, check.stderr);
  assert.equal(check.stdout, 'hotline.json: ok (4 options, 3 namespaces)\n');
  writeFileSync(join(dir, 'hotline.json'), '{}');
  const again = await run(['config', 'init', 'hotline.json'], {}, dir);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, 'hotline: hotline.json: already exists; not overwritten\n');
  assert.equal(readFileSync(join(dir, 'hotline.json'), 'utf8'), '{}');
});

test('hotline config --help and serve --help tell of the file', async () => {
  const config = await run(['config', '--help']);
  assert.equal(config.code, 0);
  assert.match(config.stdout, /^usage: hotline config check FILE\n/);
  assert.match(config.stdout, /init \[FILE\]/);
  const serve = await run(['serve', '--help']);
  assert.match(serve.stdout, /--config FILE +a config file/);
  assert.match(serve.stdout, /--token-hmac-secret SECRET/);
  assert.match(serve.stdout, /--namespaces JSON/);
  const usage = await run(['config']);
  assert.equal(usage.code, 2);
});

/** Starts `hotline serve` with these args and env; resolves to the port it says it listens on. */
function listeningPort(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(output);
      if (match !== null) {
        child.kill('SIGTERM');
        resolve(Number(match[1]));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.once('exit', () => reject(new Error(`exited before listening: ${output}`)));
  });
}

test('a flag wins over HOTLINE_*, which wins over the file, which wins over the default', async () => {
  const ports = new Set<number>();
  while (ports.size < 3) ports.add(await freePort());
  const [fromFile, fromEnv, fromFlag] = [...ports] as [number, number, number];
  const path = file('ports.json', JSON.stringify({ port: fromFile, host: '127.0.0.1', logLevel: 'warn' }));
  assert.equal(await listeningPort(['--config', path], {}), fromFile);
  assert.equal(await listeningPort([], { HOTLINE_CONFIG: path, HOTLINE_PORT: String(fromEnv) }), fromEnv);
  assert.equal(await listeningPort(['--config', path, '--port', String(fromFlag)], { HOTLINE_PORT: String(fromEnv) }), fromFlag);
});
