// Who may use the operator surfaces of a real `hotline serve` (the inspector, /metrics):
// open on a loopback-only server, off beyond loopback unless turned on, behind the admin
// secret once there is one (Bearer for tools, a sign-in form and its cookie for the
// inspector page), and the inspector's previews of message contents only when asked for.
// Servers bound to 0.0.0.0 are reached through 127.0.0.1 only.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { networkInterfaces } from 'node:os';
import WebSocket from 'ws';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { CLI, requireBuiltCli } from './support/cli-server.js';
import { upgradeRequest } from './support/raw-upgrade.js';

requireBuiltCli();

const SECRET = 'test-admin-secret-0123456789';

interface Server {
  child: ChildProcess;
  port: number;
  http: string;
  output(): string;
  /** Resolves once the server printed text matching `pattern` (stdout or stderr). */
  printed(pattern: RegExp): Promise<void>;
}

const running = new Set<ChildProcess>();

after(async () => {
  for (const child of running) {
    child.kill('SIGTERM');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
});

/** `hotline serve --port 0 ARGS` with `env` added; resolves once its startup lines are out. */
function serve(args: string[], env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOTLINE_ADMIN_SECRET: '', ...env },
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  const waiters = new Set<() => void>();
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      for (const wake of waiters) wake();
    });
  }
  const printed = (pattern: RegExp): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (pattern.test(output)) {
          waiters.delete(check);
          resolve();
        } else if (child.exitCode !== null) reject(new Error(`hotline serve exited (${child.exitCode}):\n${output}`));
      };
      waiters.add(check);
      child.once('exit', check);
      check();
    });
  return printed(/\n {2}metrics {4}.*\n/).then(() => {
    const port = Number(/listening on http:\/\/[^/]*:(\d+)\//.exec(output)![1]);
    return { child, port, http: `http://127.0.0.1:${port}`, output: () => output, printed };
  });
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(url, { headers, redirect: 'manual' });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

async function login(server: Server, token: string): Promise<Response> {
  return fetch(`${server.http}/inspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
    redirect: 'manual',
  });
}

/** The first snapshot whose frames satisfy `test`, read from an inspector WebSocket. */
function snapshotWith(ws: WebSocket, test: (frames: Array<{ preview: string | null; endpoint: string }>) => boolean): Promise<{ previews: boolean; frames: Array<{ preview: string | null }> }> {
  return new Promise((resolve) => {
    ws.on('message', (data: Buffer) => {
      const snapshot = JSON.parse(data.toString()) as { previews: boolean; frames: Array<{ preview: string | null; endpoint: string }> };
      if (test(snapshot.frames)) resolve(snapshot);
    });
  });
}

describe('the inspector and /metrics of hotline serve', { timeout: 120_000 }, () => {
  test('on loopback without a secret: open to a loopback Host, frames without their contents unless --inspector-previews', async () => {
    for (const previews of [false, true]) {
      const server = await serve(previews ? ['--inspector-previews'] : []);
      assert.match(server.output(), new RegExp(`\\n {2}inspect {4}http://127\\.0\\.0\\.1:${server.port}/inspect\\n {2}metrics {4}http://127\\.0\\.0\\.1:${server.port}/metrics\\n`));
      assert.equal((await get(`${server.http}/metrics`)).status, 200);
      assert.equal((await get(`${server.http}/inspect`)).status, 200);
      const inspector = new WebSocket(`ws://127.0.0.1:${server.port}/inspect/ws`);
      await once(inspector, 'open');
      const echo = new WebSocket(`ws://127.0.0.1:${server.port}/echo`);
      await once(echo, 'open');
      echo.send('card number 4111 1111 1111 1111');
      const snapshot = await snapshotWith(inspector, (frames) => frames.some((f) => f.endpoint === '/echo'));
      assert.equal(snapshot.previews, previews);
      assert.deepEqual(
        snapshot.frames.map((f) => f.preview),
        previews ? ['card number 4111 1111 1111 1111', 'card number 4111 1111 1111 1111'] : [null, null],
        'the message in and its echo',
      );
      echo.close();
      inspector.close();
      server.child.kill('SIGTERM');
      await once(server.child, 'exit');
    }
  });

  test('with an admin secret (HOTLINE_ADMIN_SECRET): /metrics wants Bearer, the inspector its sign-in, /healthz stays open', async () => {
    const server = await serve([], { HOTLINE_ADMIN_SECRET: SECRET });
    assert.match(server.output(), /\n {2}inspect {4}http:\/\/127\.0\.0\.1:\d+\/inspect \(admin secret required\)\n {2}metrics {4}http:\/\/127\.0\.0\.1:\d+\/metrics \(admin secret required\)\n/);
    assert.ok(!server.output().includes(SECRET), 'the secret is never printed');

    for (const headers of [{}, { authorization: 'Bearer wrong-secret-0123456789' }, { authorization: `Basic ${SECRET}` }] as Array<Record<string, string>>) {
      const refused = await get(`${server.http}/metrics`, headers);
      assert.equal(refused.status, 401);
      assert.equal(refused.headers.get('www-authenticate'), 'Bearer realm="hotline"');
      assert.equal(refused.text, 'the admin secret is required (Authorization: Bearer SECRET)\n');
    }
    const metrics = await get(`${server.http}/metrics`, { authorization: `Bearer ${SECRET}` });
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^# HELP hotline_connections /m);
    assert.equal((await get(`${server.http}/healthz`)).status, 200);

    // The inspector: a sign-in page, and no feed, without the secret.
    const page = await get(`${server.http}/inspect`);
    assert.equal(page.status, 401);
    assert.match(page.text, /<form id="login-form" class="row" method="post" action="\/inspect">/);
    const feed = await upgradeRequest(server.port, '/inspect/ws');
    assert.equal(feed.status, 401);
    assert.equal(feed.body, 'the admin secret is required (Authorization: Bearer SECRET)');
    const bearer = await upgradeRequest(server.port, '/inspect/ws', { headers: [`Authorization: Bearer ${SECRET}`] });
    assert.equal(bearer.status, 101, 'tools may use the bearer secret');
    bearer.socket.destroy();

    const wrong = await login(server, 'not-the-secret-0123456');
    assert.equal(wrong.status, 401);
    assert.match(await wrong.text(), /<p id="login-message" role="alert">That is not the admin secret\.<\/p>/);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const right = await login(server, SECRET);
    assert.equal(right.status, 303);
    assert.equal(right.headers.get('location'), '/inspect');
    const cookie = right.headers.get('set-cookie')!;
    assert.match(cookie, /^hotline_inspector=[\w-]+; Path=\/inspect; HttpOnly; SameSite=Strict$/);
    assert.ok(!cookie.includes(SECRET));
    const session = cookie.split(';')[0]!;
    assert.equal((await get(`${server.http}/inspect`, { cookie: session })).status, 200);
    const withCookie = await upgradeRequest(server.port, '/inspect/ws', { headers: [`Cookie: ${session}`] });
    assert.equal(withCookie.status, 101);
    withCookie.socket.destroy();
    assert.equal((await get(`${server.http}/metrics`, { cookie: session })).status, 401, "the inspector's cookie does not open /metrics");
    const huge = await login(server, 'x'.repeat(5000));
    assert.equal(huge.status, 413);
  });

  test('an admin secret that is too short is refused at start', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOTLINE_ADMIN_SECRET: 'hunter2' } });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 2);
    assert.equal(stderr, 'hotline: HOTLINE_ADMIN_SECRET must be at least 16 visible ASCII characters without spaces (try: openssl rand -hex 16)\n');
  });

  test('bound to 0.0.0.0 without a secret: both off, and the startup lines say why', async () => {
    const server = await serve(['--host', '0.0.0.0']);
    // The startup lines give URLs to open, never 0.0.0.0: this machine's address for other
    // machines (its first one beyond loopback, if any), and 127.0.0.1 for this one.
    const external = Object.values(networkInterfaces()).flat().find((i) => i !== undefined && !i.internal && i.family === 'IPv4')?.address;
    const local = `http://127.0.0.1:${server.port}/`;
    assert.match(server.output(), /^hotline listening on http:\/\/0\.0\.0\.0:\d+\/ \(every interface\)\n/);
    assert.ok(
      server.output().includes(
        external === undefined
          ? `\n  open       ${local} (no address beyond this machine was found)\n`
          : `\n  open       http://${external}:${server.port}/ from other machines, ${local} from this one\n`,
      ),
      server.output(),
    );
    assert.ok(server.output().includes(`\n  echo       ws://${external ?? '127.0.0.1'}:${server.port}/echo\n`), server.output());
    assert.match(server.output(), /\n {2}engine {5}memory: channels, history and presence live in this process and are lost on restart/);
    assert.equal((await get(`${local}healthz`)).status, 200);
    assert.match(server.output(), /\n {2}inspect {4}off: listening beyond loopback without an admin secret \(set HOTLINE_ADMIN_SECRET, or --inspector to open it to anyone\)\n/);
    assert.match(server.output(), /\n {2}metrics {4}off: listening beyond loopback without an admin secret \(set HOTLINE_ADMIN_SECRET, or --metrics to open it to anyone\)\n/);
    assert.deepEqual(await get(`${server.http}/metrics`).then((r) => [r.status, r.text]), [404, 'metrics are turned off\n']);
    assert.deepEqual(await get(`${server.http}/inspect`).then((r) => [r.status, r.text]), [404, 'the inspector is turned off\n']);
    assert.equal((await upgradeRequest(server.port, '/inspect/ws')).status, 404);
    // The rest is served as before.
    assert.equal((await get(`${server.http}/healthz`)).status, 200);
    const echo = await upgradeRequest(server.port, '/echo');
    assert.equal(echo.status, 101);
    echo.socket.destroy();
  });

  test('bound to 0.0.0.0 with a secret: both on, behind it', async () => {
    const server = await serve(['--host', '0.0.0.0', '--admin-secret', SECRET]);
    assert.match(server.output(), /\n {2}metrics {4}http:\/\/[\d.]+:\d+\/metrics \(admin secret required\)\n/);
    assert.doesNotMatch(server.output(), /\n {2}metrics {4}http:\/\/0\.0\.0\.0/);
    assert.equal((await get(`${server.http}/metrics`)).status, 401);
    assert.equal((await get(`${server.http}/metrics`, { authorization: `Bearer ${SECRET}` })).status, 200);
    assert.equal((await get(`${server.http}/inspect`)).status, 401);
  });

  test('bound to 0.0.0.0 and turned on without a secret: open to any Host, with a warning', async () => {
    const server = await serve(['--host', '0.0.0.0', '--inspector', '--metrics']);
    await server.printed(/hotline: warning: the inspector and \/metrics are open to anyone who can reach 0\.0\.0\.0:\d+: set HOTLINE_ADMIN_SECRET\n/);
    assert.equal((await get(`${server.http}/metrics`)).status, 200);
    const inspector = await upgradeRequest(server.port, '/inspect/ws', { host: `server.example:${server.port}` });
    assert.equal(inspector.status, 101);
    inspector.socket.destroy();
  });

  test('--no-inspector and --no-metrics turn them off on loopback too', async () => {
    const server = await serve(['--no-inspector', '--no-metrics']);
    assert.match(server.output(), /\n {2}inspect {4}off \(--no-inspector\)\n {2}metrics {4}off \(--no-metrics\)\n/);
    assert.equal((await get(`${server.http}/metrics`)).status, 404);
    assert.equal((await get(`${server.http}/inspect`)).status, 404);
    assert.equal((await upgradeRequest(server.port, '/inspect/ws')).status, 404);
  });

  test('in Chromium: the inspector asks for the secret, then shows the feed, with message contents hidden', { skip: chromiumSkip() }, async () => {
    const server = await serve([], { HOTLINE_ADMIN_SECRET: SECRET });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const response = await page.goto(`${server.http}/inspect`);
      assert.equal(response!.status(), 401);
      await page.locator('#token').fill('not-the-secret-0123456');
      await page.locator('#login-form button').click();
      await page.locator('#login-message', { hasText: 'That is not the admin secret.' }).waitFor();
      await page.locator('#token').fill(SECRET);
      await page.locator('#login-form button').click();
      await page.locator('#feed-state', { hasText: 'open' }).waitFor({ timeout: 20_000 });
      assert.equal(new URL(page.url()).pathname, '/inspect');

      const echo = new WebSocket(`ws://127.0.0.1:${server.port}/echo`);
      await once(echo, 'open');
      echo.send('a secret message');
      const row = page.locator('#frames tr[data-direction="in"]').first();
      await row.waitFor({ timeout: 20_000 });
      assert.equal(await row.locator('td.preview').textContent(), 'hidden');
      assert.equal(await page.getByText('a secret message').count(), 0);
      echo.close();
    } finally {
      await browser.close();
    }
  });
});
