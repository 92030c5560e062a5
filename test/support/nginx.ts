// A real nginx, started by a test on a free port of 127.0.0.1 with a server block taken
// from the docs, in front of a hotline process. The block is used as written, except for
// what only a deployment has: its listening port, its upstream's port and its certificate
// files are replaced by the test's. nginx runs in the foreground as one process (no
// daemon, no workers), with every file it writes in a temporary directory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export const NGINX = '/usr/sbin/nginx';

/** True when the test can go on; without nginx it is skipped loudly (under CI, it fails). */
export function haveNginx(t: TestContext): boolean {
  if (existsSync(NGINX)) return true;
  const message = 'nginx not installed';
  if (process.env.CI === 'true') throw new Error(`${message}: CI must run the nginx tests (.ci/run installs it)`);
  process.stderr.write(`\n*** SKIPPED: ${message} — apt-get install nginx ***\n\n`);
  t.skip(message);
  return false;
}

export interface Deployment {
  /** The port nginx listens on. */
  listen: number;
  /** The port of the upstream (hotline). */
  upstream: number;
  /** Certificate and key files for `ssl_certificate` lines. */
  cert?: string;
  key?: string;
}

/** The docs' block (the `map`, `upstream` and `server` blocks of an http context) made to run here. */
export function adaptBlock(block: string, at: Deployment): string {
  let text = block
    .replace(/\blisten\s+\d+/g, `listen 127.0.0.1:${at.listen}`)
    .replace(/\bserver\s+127\.0\.0\.1:\d+/g, `server 127.0.0.1:${at.upstream}`);
  if (at.cert !== undefined) text = text.replace(/(\bssl_certificate\s+)\S+;/g, `$1${at.cert};`);
  if (at.key !== undefined) text = text.replace(/(\bssl_certificate_key\s+)\S+;/g, `$1${at.key};`);
  return text;
}

/** A whole nginx.conf around an http-context block, with every file in `dir`. */
function configFile(dir: string, httpBlock: string): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${join(dir, kind)};`).join('\n');
  return `daemon off;\nmaster_process off;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'error.log')} warn;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n${temp}\n${httpBlock}\n}\n`;
}

/** `nginx -t` on the block: null when nginx accepts it, else what it said. */
export function testBlock(block: string): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'hotline-nginx-t-'));
  try {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    if (made.status !== 0) return 'openssl could not make a certificate for the check';
    writeFileSync(join(dir, 'nginx.conf'), configFile(dir, adaptBlock(block, { listen: 1, upstream: 2, cert, key })));
    const result = spawnSync(NGINX, ['-t', '-q', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
    return result.status === 0 ? null : (result.stderr.trim() || `nginx -t exited ${result.status}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export class Nginx {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly port: number,
  ) {}

  /** Starts nginx with `block` adapted to `upstream`; resolves once it accepts connections. */
  static async start(block: string, at: Omit<Deployment, 'listen'>): Promise<Nginx> {
    const dir = mkdtempSync(join(tmpdir(), 'hotline-nginx-'));
    const listen = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), configFile(dir, adaptBlock(block, { ...at, listen })));
    const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const nginx = new Nginx(child, dir, listen);
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}: ${stderr}`);
        return existsSync(join(dir, 'nginx.pid'));
      }, 'nginx to start');
    } catch (error) {
      await nginx.stop();
      throw error;
    }
    return nginx;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      await once(this.child, 'exit');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
