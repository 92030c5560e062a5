// Starts ./limits-server.ts (the app's endpoints with options the CLI cannot set yet), or
// another server script such as ./app-server.ts, as an AttackTarget, the same shape
// startTarget gives for `hotline serve`.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { rssOf, type AttackTarget } from './attack.js';

const SCRIPT = fileURLToPath(new URL('./limits-server.ts', import.meta.url));

export function startLimitsTarget(options: Record<string, unknown>, nodeArgs: readonly string[] = []): Promise<AttackTarget> {
  return startScriptTarget(SCRIPT, options, nodeArgs);
}

/** Starts a server script of test/support that prints `listening on http://127.0.0.1:PORT/`, given its options as JSON. */
export async function startScriptTarget(script: string, options: Record<string, unknown>, nodeArgs: readonly string[] = []): Promise<AttackTarget> {
  const name = script.slice(script.lastIndexOf('/') + 1);
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = once(child, 'exit');
  exited.catch(() => {});
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} printed no startup line within 20 s:\n${output}`));
    }, 20_000);
    const onData = (): void => {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(output);
      if (match === null) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      resolve(Number(match[1]));
    };
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before its startup line:\n${output}`));
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
  const pid = child.pid!;
  const http = `http://127.0.0.1:${port}`;
  return {
    child,
    port,
    http,
    ws: `ws://127.0.0.1:${port}`,
    pid,
    baseline: rssOf(pid),
    output: () => output,
    rss: () => rssOf(pid),
    alive: () => child.exitCode === null && child.signalCode === null,
    async get(path) {
      const response = await fetch(http + path);
      return { status: response.status, text: await response.text() };
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}
