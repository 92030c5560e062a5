// Runs the docs' snippets from their emitted JavaScript in the packed install.
//
// - A snippet that calls `serve(` or `.listen(` is a server: it runs until the harness stops
//   it (SIGTERM). It is up once its module finished evaluating (a line appended to it says
//   so); then each WebSocket path it serves (the keys of `websocket: {…}`, else `/`) must
//   complete an opening and a closing handshake.
// - A snippet that opens `ws://127.0.0.1:8080/PATH` is a client of the nearest server
//   snippet above it in its document that serves PATH (below it, if none above does), or else of `hotline serve` (the packed
//   `hotline` command) for /echo and /ws. It must exit 0 by itself (Node) or open every
//   WebSocket it makes without an uncaught error (Chromium).
// - Any other snippet must exit 0 by itself; so must one that serves on port 0 (a whole
//   program that starts a server, talks to it and closes it).
//
// The docs' port, 8080, is replaced by a free one in the emitted code; REDIS_URL points at
// a real redis-server when a snippet reads it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect as connectTcp } from 'node:net';
import { createInterface } from 'node:readline';
import type { Browser } from 'playwright-core';
import { WebSocket } from '../../src/node/client.js';
import type { CloseEvent } from '../../src/node/events.js';
import { launchChromium } from './chromium.js';
import type { SnippetFile } from './docs-project.js';
import type { PackedProject } from './packed.js';
import { RedisServer } from './redis-server.js';
import { freePort } from './ports.js';

const EVALUATED = 'hotline-docs: evaluated';
/** How long a snippet may take to start (a server) or to finish (anything else). */
const SNIPPET_TIMEOUT_MS = 20_000;
const HOTLINE_SERVE_PATHS = ['/echo', '/ws'];
/** Page script run before any other: each WebSocket made records whether it opened. */
const RECORD_SOCKETS = `
  window.__docSockets = [];
  const Platform = window.WebSocket;
  window.WebSocket = class extends Platform {
    constructor(url, protocols) {
      super(url, protocols);
      const record = { url: String(url), state: 'connecting' };
      window.__docSockets.push(record);
      this.addEventListener('open', () => { record.state = 'open'; });
      this.addEventListener('error', () => { if (record.state !== 'open') record.state = 'failed'; });
    }
  };
`;

export type RunKind = 'server' | 'client' | 'script' | 'browser';

export interface RunOutcome {
  kind: RunKind;
  /** What it ran against: a snippet's place, or 'hotline serve'. */
  against?: string;
  problems: string[];
}

/**
 * A snippet that serves on port 0 is a whole program (it finds its own port, talks to
 * itself and closes): it runs to its exit like any other.
 */
export function isServer(file: SnippetFile): boolean {
  return !file.browser && /\bserve\(|\.listen\(/.test(file.block.text) && !/\bport:\s*0\b/.test(file.block.text);
}

export function servedPaths(file: SnippetFile): string[] {
  const keys = [...file.block.text.matchAll(/['"](\/[\w/.-]*)['"]\s*:/g)].map((m) => m[1]!);
  return keys.length > 0 ? keys : ['/'];
}

export function neededPaths(file: SnippetFile): string[] {
  return [...new Set([...file.block.text.matchAll(/wss?:\/\/127\.0\.0\.1:8080(\/[^'"`\s?#]*)/g)].map((m) => m[1]!))];
}

/** Which server each client runs against: a server snippet, 'hotline serve', or a problem. */
export function pairClients(files: readonly SnippetFile[]): Map<SnippetFile, SnippetFile | 'hotline serve' | string> {
  const servers = files.filter(isServer);
  const pairs = new Map<SnippetFile, SnippetFile | 'hotline serve' | string>();
  for (const file of files) {
    const needs = neededPaths(file);
    if (isServer(file) || needs.length === 0) continue;
    const candidates = servers
      .filter((s) => s.block.file === file.block.file && needs.every((p) => servedPaths(s).includes(p)))
      // A document reads downwards: a client is for the server shown above it, the nearest
      // one; a server below it only when none above serves its paths.
      .sort((a, b) => Number(a.block.line > file.block.line) - Number(b.block.line > file.block.line) || Math.abs(a.block.line - file.block.line) - Math.abs(b.block.line - file.block.line));
    if (candidates[0] !== undefined) pairs.set(file, candidates[0]);
    else if (needs.every((p) => HOTLINE_SERVE_PATHS.includes(p))) pairs.set(file, 'hotline serve');
    else pairs.set(file, `no server snippet in ${file.block.file} serves ${needs.join(', ')}, nor does hotline serve`);
  }
  return pairs;
}

/** A running child: its output, and waits on its lines and its exit. */
class Child {
  output = '';
  private readonly exited: Promise<number | null>;
  exitCode: number | null | undefined;

  constructor(readonly process: ChildProcess) {
    process.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    process.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.exited = once(process, 'exit').then(([code]) => (this.exitCode = code as number | null));
  }

  /** Resolves true when a line matches, false when the process exits or the time is up first. */
  waitForLine(pattern: RegExp, timeout = SNIPPET_TIMEOUT_MS): Promise<boolean> {
    return new Promise((resolve) => {
      const lines = createInterface({ input: this.process.stdout! });
      const finish = (value: boolean): void => {
        clearTimeout(timer);
        lines.close();
        resolve(value);
      };
      const timer = setTimeout(() => finish(false), timeout);
      lines.on('line', (line) => pattern.test(line) && finish(true));
      void this.exited.then(() => finish(false));
    });
  }

  /** The exit code, or 'timeout' (then it is killed). */
  async waitForExit(timeout = SNIPPET_TIMEOUT_MS): Promise<number | null | 'timeout'> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeout)));
    const result = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (result === 'timeout') await this.stop();
    return result;
  }

  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.process.kill('SIGTERM');
    const late = setTimeout(() => this.process.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(late);
  }

  tail(): string {
    return this.output.trim().split('\n').slice(-15).join('\n');
  }
}

/** One WebSocket to `url` that must open and close cleanly. */
async function handshake(url: string): Promise<string | null> {
  const ws = new WebSocket(url);
  const result = await new Promise<string | null>((resolve) => {
    ws.onopen = () => ws.close(1000, 'probe');
    ws.onerror = () => undefined;
    ws.onclose = (event: CloseEvent) => resolve(event.wasClean && event.code === 1000 ? null : `${url}: closed ${event.code} ${event.reason} (clean: ${event.wasClean})`);
  });
  return result;
}

export class SnippetRunner {
  private redis: RedisServer | undefined;
  private browser: Browser | undefined;
  readonly outcomes = new Map<SnippetFile, RunOutcome>();

  constructor(private readonly project: PackedProject) {}

  private async env(files: readonly SnippetFile[]): Promise<NodeJS.ProcessEnv> {
    if (files.some((f) => f.block.text.includes('REDIS_URL')) && this.redis === undefined) this.redis = await RedisServer.start();
    return { ...process.env, ...(this.redis === undefined ? {} : { REDIS_URL: this.redis.url }) };
  }

  /** The emitted JavaScript with the docs' port replaced; `sentinel` appends the evaluated line. */
  private prepare(file: SnippetFile, port: number, sentinel: boolean): string {
    const code = readFileSync(file.output, 'utf8').replace(/\b8080\b/g, String(port));
    const path = file.output.replace(/\.js$/, '.run.mjs');
    writeFileSync(path, sentinel ? `${code}\nconsole.log(${JSON.stringify(EVALUATED)});\n` : code);
    return path;
  }

  private async spawnSnippet(file: SnippetFile, port: number, sentinel: boolean): Promise<Child> {
    const path = this.prepare(file, port, sentinel);
    return new Child(spawn(process.execPath, [path], { cwd: this.project.dir, env: await this.env([file]), stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** A snippet that must exit 0 by itself. */
  private async runToExit(file: SnippetFile, port: number, kind: RunKind, against?: string): Promise<void> {
    const child = await this.spawnSnippet(file, port, false);
    const code = await child.waitForExit();
    const problems = code === 0 ? [] : [`${code === 'timeout' ? `still running after ${SNIPPET_TIMEOUT_MS} ms` : `exited ${code}`}:\n${child.tail()}`];
    this.outcomes.set(file, { kind, against, problems });
  }

  private async runInChromium(file: SnippetFile, port: number, against: string): Promise<void> {
    this.browser ??= await launchChromium();
    const page = await this.browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`uncaught in the page: ${error.message}`));
    // Every WebSocket the snippet makes records whether it opened.
    await page.addInitScript({ content: RECORD_SOCKETS });
    const code = readFileSync(file.output, 'utf8').replace(/\b8080\b/g, String(port));
    // A page of the server's own origin, so that its origin checks see what a page of the app would send.
    const site = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>docs</title>'));
    site.listen(0, '127.0.0.1');
    await once(site, 'listening');
    try {
      await page.goto(`http://127.0.0.1:${port}/`).catch(() => page.goto(`http://127.0.0.1:${(site.address() as { port: number }).port}/`));
      await page.addScriptTag({ type: 'module', content: `${code}\nwindow.__docEvaluated = true;\n` });
      await page.waitForFunction(`window.__docEvaluated === true && window.__docSockets.every((s) => s.state !== 'connecting')`, undefined, {
        timeout: SNIPPET_TIMEOUT_MS,
      });
      const sockets = (await page.evaluate('window.__docSockets')) as Array<{ url: string; state: string }>;
      for (const socket of sockets) if (socket.state !== 'open') problems.push(`${socket.url} did not open`);
    } catch (error) {
      problems.push(`in Chromium: ${(error as Error).message.split('\n')[0]!}`);
    } finally {
      await page.close();
      site.close();
    }
    this.outcomes.set(file, { kind: 'browser', against, problems });
  }

  private async runClients(clients: readonly SnippetFile[], port: number, against: string): Promise<void> {
    for (const client of clients) {
      if (client.browser) await this.runInChromium(client, port, against);
      else await this.runToExit(client, port, 'client', against);
    }
  }

  /** Starts a server snippet, probes it, runs its clients, stops it. */
  async runServer(server: SnippetFile, clients: readonly SnippetFile[]): Promise<void> {
    const port = await freePort();
    const child = await this.spawnSnippet(server, port, true);
    const problems: string[] = [];
    if (!(await child.waitForLine(new RegExp(EVALUATED)))) {
      problems.push(`did not come up (${child.exitCode === undefined ? 'no evaluated line' : `exited ${child.exitCode}`}):\n${child.tail()}`);
    } else if (!(await acceptsConnections(port))) {
      problems.push(`never listened on its port:\n${child.tail()}`);
    } else {
      for (const path of servedPaths(server)) {
        const failed = await handshake(`ws://127.0.0.1:${port}${path}`);
        if (failed !== null) problems.push(`its endpoint ${failed}`);
      }
      await this.runClients(clients, port, `${server.block.file}:${server.block.line}`);
      if (child.exitCode !== undefined) problems.push(`exited ${child.exitCode} before it was stopped:\n${child.tail()}`);
    }
    await child.stop();
    this.outcomes.set(server, { kind: 'server', problems });
  }

  /** Runs clients against `hotline serve` from the packed install. */
  async runAgainstHotlineServe(clients: readonly SnippetFile[]): Promise<void> {
    if (clients.length === 0) return;
    const port = await freePort();
    const child = new Child(spawn(process.execPath, [this.project.bin, 'serve', '--port', String(port), '--log-level', 'warn'], { cwd: this.project.dir, stdio: ['ignore', 'pipe', 'pipe'] }));
    if (!(await child.waitForLine(/hotline listening on/))) {
      for (const client of clients) this.outcomes.set(client, { kind: 'client', against: 'hotline serve', problems: [`hotline serve did not start:\n${child.tail()}`] });
    } else await this.runClients(clients, port, 'hotline serve');
    await child.stop();
  }

  async runScript(file: SnippetFile): Promise<void> {
    await this.runToExit(file, await freePort(), 'script');
  }

  async close(): Promise<void> {
    await this.browser?.close();
    await this.redis?.stop();
  }
}

/**
 * Whether the port takes a TCP connection within 10 s. A snippet's module may finish
 * evaluating before its server listens (`.listen()` is not awaited): each refused attempt
 * is retried at once, since the next one is what tells.
 */
async function acceptsConnections(port: number): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connectTcp(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (accepted) return true;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return false;
}

/** Runs every runnable snippet; the pairs decide which server each client needs. */
export async function runSnippets(project: PackedProject, files: readonly SnippetFile[]): Promise<Map<SnippetFile, RunOutcome>> {
  const runner = new SnippetRunner(project);
  const pairs = pairClients(files);
  try {
    for (const server of files.filter(isServer)) {
      await runner.runServer(server, files.filter((f) => pairs.get(f) === server));
    }
    await runner.runAgainstHotlineServe(files.filter((f) => pairs.get(f) === 'hotline serve'));
    for (const [file, pair] of pairs) {
      if (typeof pair === 'string' && pair !== 'hotline serve') runner.outcomes.set(file, { kind: file.browser ? 'browser' : 'client', problems: [pair] });
    }
    for (const file of files) {
      if (isServer(file) || pairs.has(file)) continue;
      if (file.browser) await runner.runAgainstHotlineServe([file]);
      else await runner.runScript(file);
    }
  } finally {
    await runner.close();
  }
  return runner.outcomes;
}

