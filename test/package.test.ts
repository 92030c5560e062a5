// The package as a user installs it (`npm pack`, installed into a fresh project): the
// tarball carries dist/, built by prepack/prepare; `hotline/client` connects from Node with
// no `WebSocket` argument; `hotline/browser` is the bundle, and it connects from Chromium
// with the page's own WebSocket; `engines` and `devEngines` are what the dependencies need.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { packAndInstall, ROOT, type PackedProject } from './support/packed.js';

let project: PackedProject | undefined;
before(() => {
  project = packAndInstall();
});
after(() => project?.remove());

function packed(): PackedProject {
  assert.ok(project !== undefined, 'the package was not packed');
  return project;
}

test('the tarball carries dist/, built by the prepack and prepare scripts npm pack ran', () => {
  const { files, packLog } = packed();
  for (const file of ['dist/index.js', 'dist/index.d.ts', 'dist/client-node.js', 'dist/client/index.js', 'dist/hotline.js', 'dist/cli/main.js', 'dist/redis/index.js']) {
    assert.ok(files.includes(file), `${file} is not in the tarball`);
  }
  assert.ok(!files.some((f) => f.endsWith('.test.js')), 'unit tests are not shipped');
  assert.match(packLog, /> hotline@[\d.]+ prepack\n> node scripts\/build\.mjs --if-stale/);
  assert.match(packLog, /> hotline@[\d.]+ prepare\n> node scripts\/build\.mjs --if-stale/);
  assert.match(packLog, /dist\/ is up to date|building dist\//);
});

test('build.mjs --if-stale builds when dist/ is missing or its sources changed, and only then', () => {
  const copy = mkdtempSync(join(tmpdir(), 'hotline-build-'));
  try {
    for (const path of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs', 'scripts/build-sdk.mjs', 'src']) {
      cpSync(join(ROOT, path), join(copy, path), { recursive: true });
    }
    const check = (): { status: number | null; out: string } => {
      const result = spawnSync(process.execPath, [join(copy, 'scripts', 'build.mjs'), '--check'], { encoding: 'utf8' });
      return { status: result.status, out: result.stdout.trim() };
    };
    assert.deepEqual(check(), { status: 1, out: 'dist/ is stale: there is no dist/' });
    mkdirSync(join(copy, 'dist'));
    assert.deepEqual(check(), { status: 1, out: 'dist/ is stale: dist/ has no record of its sources' });
    // The record `npm run build` leaves: the checkout's dist/ was just built from these sources.
    cpSync(join(ROOT, 'dist', '.sources-digest'), join(copy, 'dist', '.sources-digest'));
    assert.deepEqual(check(), { status: 0, out: 'dist/ is up to date' });
    appendFileSync(join(copy, 'src', 'index.ts'), '\n// changed\n');
    assert.deepEqual(check(), { status: 1, out: 'dist/ is stale: the sources changed since dist/ was built' });
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

/** Starts `hotline serve` from the packed install; resolves with its port once it listens. */
async function hotlineServe(args: string[]): Promise<{ port: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [packed().bin, 'serve', '--port', '0', '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`hotline serve exited ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /hotline listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(line);
      if (match !== null) resolve(Number(match[1]));
    });
  });
  return {
    port,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

test("hotline/client in Node: no WebSocket argument, hotline's own is used; history() answers epoch, messages and more only", async () => {
  const server = await hotlineServe([]);
  try {
    const script = join(packed().dir, 'node-client.mjs');
    writeFileSync(
      script,
      `import { connect } from 'hotline/client';
const client = connect(process.argv[2]);
const room = client.channel('room:1');
const subscribed = await room.subscribe();
const published = await room.publish({ text: 'hello' });
const history = await room.history({ limit: 5 });
client.close();
console.log(JSON.stringify({
  resolved: import.meta.resolve('hotline/client').split('/node_modules/')[1],
  browser: import.meta.resolve('hotline/browser').split('/node_modules/')[1],
  first: subscribed.first,
  offset: published.offset,
  history,
}));
`,
    );
    const result = spawnSync(process.execPath, [script, `ws://127.0.0.1:${server.port}/ws`], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 0, result.stderr);
    const seen = JSON.parse(result.stdout) as { resolved: string; browser: string; first: boolean; offset: number; history: { epoch: string; messages: unknown[]; more: boolean } };
    assert.equal(seen.resolved, 'hotline/dist/client-node.js');
    assert.equal(seen.browser, 'hotline/dist/hotline.js');
    assert.equal(seen.first, true);
    assert.deepEqual(Object.keys(seen.history).sort(), ['epoch', 'messages', 'more']);
    assert.deepEqual(seen.history.messages, [{ offset: seen.offset, data: { text: 'hello' } }]);
    assert.equal(seen.history.more, false);
  } finally {
    await server.stop();
  }
});

test('hotline/browser in Chromium: the bundle the package exports connects with the page’s WebSocket', { skip: chromiumSkip() }, async () => {
  // A page of the app's own origin that imports the file `hotline/browser` resolves to.
  const app = join(packed().dir, 'browser-app.mjs');
  writeFileSync(
    app,
    `import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve, channelsEndpoint } from 'hotline';
const bundle = readFileSync(fileURLToPath(import.meta.resolve('hotline/browser')));
const page = '<!doctype html><script type="module">' +
  'import { connect } from "/app/hotline.js";' +
  'const client = connect("ws://" + location.host + "/ws");' +
  'const room = client.channel("room:1");' +
  'const subscribed = await room.subscribe();' +
  'const published = await room.publish({ text: "from the page" });' +
  'window.result = { first: subscribed.first, published, history: await room.history() };' +
  'client.close();' +
  '</script>';
const channels = channelsEndpoint();
const server = await serve({
  websocket: { '/ws': channels.server },
  request(req, res) {
    if (req.url === '/app/hotline.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(page);
  },
});
console.log('port ' + server.port);
process.on('SIGTERM', () => void server.close());
`,
  );
  const child = spawn(process.execPath, [app], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the app exited ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => /^port \d+$/.test(line) && resolve(Number(line.slice(5))));
  });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction('window.result !== undefined', undefined, { timeout: 20_000 });
    const result = (await page.evaluate('window.result')) as { first: boolean; published: { offset: number; delivered: number }; history: { epoch: string; messages: unknown[]; more: boolean } };
    assert.deepEqual(errors, []);
    assert.equal(result.first, true);
    assert.equal(result.published.delivered, 1);
    assert.deepEqual(Object.keys(result.history).sort(), ['epoch', 'messages', 'more']);
    assert.deepEqual(result.history.messages, [{ offset: result.published.offset, data: { text: 'from the page' } }]);
  } finally {
    await browser.close();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    // The app's only shutdown is server.close(): it must exit by itself.
    assert.equal(await exited, 0);
  }
});

/** The lowest Node version a range admits (">=20", "^20.19.0 || ^22.13.0 || >=24"). */
function lowest(range: string): number[] {
  const versions = [...range.matchAll(/(\d+)(?:\.(\d+))?(?:\.(\d+))?/g)].map((m) => [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)]);
  return versions.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!)[0]!;
}
const atLeast = (a: number[], b: number[]): boolean => a[0]! > b[0]! || (a[0] === b[0] && (a[1]! > b[1]! || (a[1] === b[1] && a[2]! >= b[2]!)));

test('engines: the Node that the runtime peers need; devEngines: the Node that building and testing need', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    engines: { node: string };
    devEngines: { runtime: { name: string; version: string } };
    peerDependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  const engineOf = (name: string): string | undefined =>
    (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { engines?: { node?: string } }).engines?.node;
  const runtime = lowest(pkg.engines.node);
  // Global Web Crypto (the SDK's unguessable sender ids in Node) arrived in Node 19; the line before it is 18.
  assert.ok(atLeast(runtime, [19, 0, 0]), `engines.node ${pkg.engines.node} admits a Node without globalThis.crypto`);
  for (const peer of Object.keys(pkg.peerDependencies)) {
    const needs = engineOf(peer);
    if (needs !== undefined) assert.ok(atLeast(runtime, lowest(needs)), `${peer} needs Node ${needs}; engines.node says ${pkg.engines.node}`);
  }
  assert.equal(pkg.devEngines.runtime.name, 'node');
  const dev = lowest(pkg.devEngines.runtime.version);
  for (const name of Object.keys(pkg.devDependencies)) {
    const needs = engineOf(name);
    if (needs !== undefined) assert.ok(atLeast(dev, lowest(needs)), `${name} needs Node ${needs}; devEngines says ${pkg.devEngines.runtime.version}`);
  }
  assert.ok(atLeast(lowest(process.versions.node), dev), `this Node, ${process.versions.node}, is older than devEngines`);
});
