// `hotline connect`, driven as a user would through its standard input and output (a child
// process with pipes: no terminal, so no colours), against `hotline serve`, both the built
// CLI. `npm test` builds first; to run this file alone, run `npm run build` before it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { echoHandlers } from '../src/server/echo.js';
import { serve, type RunningServer } from '../src/server/serve.js';
import { CLI, requireBuiltCli, startCli, type CliServer } from './support/cli-server.js';
import { freePort } from './support/ports.js';
import { makeCertificate } from './support/tls-certificate.js';

requireBuiltCli();

const certificate = makeCertificate('hotline connect over wss:// is');
const noOpenssl = certificate === null ? 'openssl is missing' : false;

/** A line the client prints: the time (HH:MM:SS.mmm), then what happened. */
const TIME = String.raw`\d\d:\d\d:\d\d\.\d{3}`;
/** `text` as a regular expression matching it and nothing else. */
const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Session {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Writes one line to the client's standard input. */
  type(line: string): void;
  /** Ends the standard input (Ctrl-D). */
  end(): void;
  /** Waits until the standard output matches. */
  waitFor(pattern: RegExp, what: string): Promise<RegExpExecArray>;
  /** Resolves to the exit code once the process exits. */
  exit: Promise<number | null>;
}

function connect(args: string[]): Session {
  const child = spawn(process.execPath, [CLI, 'connect', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const wake of [...waiters]) wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    type(line) {
      child.stdin!.write(`${line}\n`);
    },
    end() {
      child.stdin!.end();
    },
    waitFor(pattern, what) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(stdout);
          if (match === null) return;
          cleanup();
          resolve(match);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${what}; stdout so far:\n${stdout}\nstderr:\n${stderr}`));
        }, 15_000);
        const onExit = (): void => {
          // Let the last output arrive before giving up.
          setImmediate(() => {
            check();
            if (waiters.has(check)) {
              cleanup();
              reject(new Error(`the client exited before ${what}; stdout:\n${stdout}\nstderr:\n${stderr}`));
            }
          });
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off('exit', onExit);
        };
        waiters.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    exit,
  };
}

describe('hotline connect against a wss:// server whose certificate it does not trust', { skip: noOpenssl, timeout: 30_000 }, () => {
  let server: RunningServer;
  before(async () => {
    server = await serve({ port: 0, tls: { cert: certificate!.cert, key: certificate!.key }, websocket: { '/echo': echoHandlers } });
  });
  after(async () => {
    await server.close();
    rmSync(certificate!.dir, { recursive: true, force: true });
  });

  test("a TLS error with Node's code, and how to trust the certificate; trusted, it connects", async () => {
    const url = `wss://localhost:${server.port}/echo`;
    const refused = connect([url]);
    assert.equal(await refused.exit, 1);
    assert.equal(
      refused.stderr(),
      `hotline: ${url}: TLS error (DEPTH_ZERO_SELF_SIGNED_CERT): the certificate is not trusted (NODE_EXTRA_CA_CERTS=FILE adds a CA)\n`,
    );
    const withCa = spawn(process.execPath, [CLI, 'connect', url], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(certificate!.dir, 'cert.pem') },
    });
    let stdout = '';
    withCa.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    withCa.stdin!.end();
    const [code] = (await once(withCa, 'exit')) as [number | null];
    assert.match(stdout, /connected to wss:\/\/localhost:\d+\/echo/);
    assert.equal(code, 0);
  });
});

describe('hotline connect against hotline serve', { timeout: 60_000 }, () => {
  let server: CliServer;
  const running: Session[] = [];
  const session = (args: string[]): Session => {
    const s = connect(args);
    running.push(s);
    return s;
  };

  before(async () => {
    server = await startCli();
  });

  after(async () => {
    for (const s of running) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await server?.stop();
  });

  test('lines typed are sent, and their echoes shown, each with the time and a direction', async () => {
    const s = session([`${server.ws}/echo`]);
    await s.waitFor(new RegExp(`^${TIME} connected to ws://127\\.0\\.0\\.1:${server.port}/echo \\(extensions permessage-deflate[^)]*\\)$`, 'm'), 'the connected line');
    s.type('hello from the terminal');
    await s.waitFor(new RegExp(`^${TIME} < hello from the terminal$`, 'm'), 'the echo');
    s.type('héllo, wörld ✓');
    await s.waitFor(new RegExp(`^${TIME} < héllo, wörld ✓$`, 'm'), 'the second echo');
    // The end of input closes politely once the replies are in.
    s.end();
    assert.equal(await s.exit, 0);
    const lines = s.stdout().trimEnd().split('\n');
    assert.deepEqual(
      lines.map((line) => line.replace(new RegExp(`^${TIME} `), 'T ')),
      [
        lines[0]!.replace(new RegExp(`^${TIME} `), 'T '),
        'T > hello from the terminal',
        'T < hello from the terminal',
        'T > héllo, wörld ✓',
        'T < héllo, wörld ✓',
        'T disconnected: code 1000',
      ],
    );
    assert.ok(!s.stdout().includes('\x1b['), 'no colours without a terminal');
    assert.equal(s.stderr(), '');
  });

  test('--json pretty-prints the hotline.v1 answers from /ws (--protocol hotline.v1)', async () => {
    const s = session([`${server.ws}/ws`, '--protocol', 'hotline.v1', '--json']);
    await s.waitFor(new RegExp(`^${TIME} connected to ws://127\\.0\\.0\\.1:${server.port}/ws \\(protocol hotline\\.v1; extensions permessage-deflate`, 'm'), 'the connected line');
    s.type('{"op":"sub","id":1,"ch":"cli:json"}');
    // The answer names the connection's presence member (`client`); its own join follows it.
    const answer = await s.waitFor(
      new RegExp(`^${TIME} < \\{\\n  "op": "ok",\\n  "id": 1,\\n  "epoch": "([^"]+)",\\n  "offset": 0,\\n  "recovered": false,\\n  "client": "([^"]+)"\\n\\}$`, 'm'),
      'the pretty-printed sub answer',
    );
    assert.ok(answer[1]!.length > 0);
    await s.waitFor(
      new RegExp(`^${TIME} < \\{\\n  "op": "join",\\n  "ch": "cli:json",\\n  "member": \\{\\n    "client": "${literal(answer[2]!)}"\\n  \\}\\n\\}$`, 'm'),
      'its own join, pretty-printed',
    );
    s.type('{"op":"pub","id":2,"ch":"cli:json","data":{"hello":["json",1]}}');
    await s.waitFor(
      new RegExp(`^${TIME} < \\{\\n  "op": "msg",\\n  "ch": "cli:json",\\n  "offset": 1,\\n  "data": \\{\\n    "hello": \\[\\n      "json",\\n      1\\n    \\]\\n  \\}\\n\\}$`, 'm'),
      'the pretty-printed message, nested',
    );
    await s.waitFor(/"op": "ok",\n {2}"id": 2,\n {2}"offset": 1,\n {2}"delivered": 1\n\}/, 'the pub answer');
    // A request that is not JSON is answered with an err; the connection stays open.
    s.type('not json');
    await s.waitFor(/"code": "bad_request"/, 'the err answer');
    s.type('/quit');
    assert.equal(await s.exit, 0);
    assert.match(s.stdout(), new RegExp(`^${TIME} disconnected: code 1000$`, 'm'));
  });

  test('--transport sse: the hotline.v1 conversation over the HTTP session; a wrong URL says the status', async () => {
    const s = session([`${server.ws}/ws`, '--transport', 'sse']);
    await s.waitFor(new RegExp(`^${TIME} connected to http://127\\.0\\.0\\.1:${server.port}/sse/session \\(HTTP session\\)$`, 'm'), 'the connected line');
    s.type('{"op":"sub","id":1,"ch":"cli:sse"}');
    const answer = await s.waitFor(new RegExp(`^${TIME} < \\{"op":"ok","id":1,"epoch":"[^"]+","offset":0,"recovered":false,"client":"([^"]+)"\\}$`, 'm'), 'the sub answer');
    await s.waitFor(new RegExp(`^${TIME} < \\{"op":"join","ch":"cli:sse","member":\\{"client":"${literal(answer[1]!)}"\\}\\}$`, 'm'), 'its own join');
    s.type('{"op":"pub","id":2,"ch":"cli:sse","data":"over http"}');
    await s.waitFor(new RegExp(`^${TIME} < \\{"op":"msg","ch":"cli:sse","offset":1,"data":"over http"\\}$`, 'm'), 'the message');
    await s.waitFor(new RegExp(`^${TIME} < \\{"op":"ok","id":2,"offset":1,"delivered":1\\}$`, 'm'), 'the pub answer');
    s.type('/ping');
    await s.waitFor(new RegExp(`^${TIME} < \\{"op":"pong","id":1\\}$`, 'm'), 'the pong');
    s.end();
    assert.equal(await s.exit, 0);
    assert.match(s.stdout(), new RegExp(`^${TIME} disconnected: code 1000$`, 'm'));
    assert.equal(s.stderr(), '');

    const wrong = session([`${server.http}/nowhere`, '--transport', 'sse']);
    assert.equal(await wrong.exit, 1);
    assert.equal(wrong.stderr(), `hotline: ${server.http}/nowhere: the server offers no session here (404)\n`);
  });

  test('--json leaves text that is not JSON as it came', async () => {
    const s = session([`${server.ws}/echo`, '--json']);
    await s.waitFor(/connected to/, 'the connected line');
    s.type('{"a":[1,{"b":null}]}');
    await s.waitFor(new RegExp(`^${TIME} < \\{\\n  "a": \\[\\n    1,\\n    \\{\\n      "b": null\\n    \\}\\n  \\]\\n\\}$`, 'm'), 'the echo, pretty-printed');
    s.type('just {text}');
    await s.waitFor(new RegExp(`^${TIME} < just \\{text\\}$`, 'm'), 'the plain echo');
    s.end();
    assert.equal(await s.exit, 0);
  });

  test('/ping shows the pong', async () => {
    const s = session([`${server.ws}/echo`]);
    await s.waitFor(/connected to/, 'the connected line');
    s.type('/ping are you there?');
    await s.waitFor(new RegExp(`^${TIME} pong are you there\\?$`, 'm'), 'the pong');
    s.type('/ping');
    await s.waitFor(new RegExp(`^${TIME} pong $`, 'm'), 'the empty pong');
    s.type('/quit');
    assert.equal(await s.exit, 0);
  });

  test('/close 4000 bye ends with "code 4000" and exit status 0', async () => {
    const s = session([`${server.ws}/echo`]);
    await s.waitFor(/connected to/, 'the connected line');
    s.type('one last thing');
    await s.waitFor(/< one last thing$/m, 'the echo');
    s.type('/close 4000 bye');
    await s.waitFor(new RegExp(`^${TIME} disconnected: code 4000$`, 'm'), 'the close');
    // The client's standard input is still open: the close alone ends it.
    assert.equal(await s.exit, 0);
  });

  /** Runs `hotline connect` to a URL that will not open: exit 1, and one line on stderr that names the URL. */
  async function failure(url: string, args: string[] = []): Promise<string> {
    const s = session([url, ...args]);
    // The standard input stays open, as in a terminal.
    assert.equal(await s.exit, 1);
    const message = s.stderr();
    assert.match(message, /^hotline: [^\n]+\n$/, 'one line');
    assert.ok(message.startsWith(`hotline: ${url}: `), message);
    assert.equal(s.stdout(), '');
    return message.slice(`hotline: ${url}: `.length, -1);
  }

  test('a closed port: connection refused', async () => {
    const port = await freePort();
    assert.equal(await failure(`ws://127.0.0.1:${port}/echo`), `connection refused: nothing listens on 127.0.0.1:${port}`);
  });

  test('a path with no endpoint: 404', async () => {
    assert.equal(await failure(`${server.ws}/nowhere`), '404 Not Found: no WebSocket endpoint at /nowhere (check the path)');
  });

  test('an Origin the server does not allow: 403', async () => {
    assert.equal(
      await failure(`${server.ws}/echo`, ['--header', 'Origin: https://evil.example']),
      "403 Forbidden: the server refused these credentials, or the Origin (--header 'Origin: URL' sets one)",
    );
  });

  test('credentials wanted: 401 (the inspector of a server with an admin secret), and the right ones connect', async () => {
    const secret = 'a'.repeat(32);
    const guarded = await startCli(0, [], { env: { ...process.env, HOTLINE_ADMIN_SECRET: secret } });
    try {
      assert.equal(
        await failure(`${guarded.ws}/inspect/ws`),
        "401 Unauthorized: the server wants credentials (such as --header 'Authorization: Bearer TOKEN')",
      );
      const s = session([`${guarded.ws}/inspect/ws`, '--header', `Authorization: Bearer ${secret}`]);
      await s.waitFor(/connected to/, 'the connected line');
      s.type('/quit');
      assert.equal(await s.exit, 0);
    } finally {
      await guarded.stop();
    }
  });

  test('a wss:// URL to a plain server: a TLS error that says so', async () => {
    const url = `wss://127.0.0.1:${server.port}/echo`;
    assert.match(await failure(url), /^TLS error \([^)]+\): is it a plain ws:\/\/ server\?$/);
  });

  test('bad usage exits 2 with the usage', async () => {
    const badFlag = session(['--bogus', `${server.ws}/echo`]);
    assert.equal(await badFlag.exit, 2);
    assert.match(badFlag.stderr(), /^hotline: Unknown option '--bogus'/);
    assert.match(badFlag.stderr(), /usage: hotline connect URL/);

    const noUrl = session([]);
    assert.equal(await noUrl.exit, 2);
    assert.match(noUrl.stderr(), /connect takes one URL/);

    const badHeader = session([`${server.ws}/echo`, '--header', 'no colon']);
    assert.equal(await badHeader.exit, 2);
    assert.match(badHeader.stderr(), /--header must look like 'Name: value'/);
  });
});
