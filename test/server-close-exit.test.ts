// A process whose only shutdown is `await server.close()` exits by itself: the channel
// endpoint's hub and engine close with the server. With the Redis engine its connections
// used to keep the process alive until an undocumented `hub.close()`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { RedisServer, skipWithoutRedis } from './support/redis-server.js';

const SCRIPT = fileURLToPath(new URL('./support/close-exit-server.ts', import.meta.url));
/** How long the process may take to exit once `server.close()` resolved. */
const EXIT_WITHIN_MS = 5_000;

interface Outcome {
  lines: string[];
  /** The exit code, or 'alive' when it was still running EXIT_WITHIN_MS after `closed`. */
  exit: number | 'alive';
  stderr: string;
}

function runUntilExit(args: string[]): Promise<Outcome> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines: string[] = [];
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      if (line.startsWith('closed')) {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve({ lines, exit: 'alive', stderr });
        }, EXIT_WITHIN_MS);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ lines, exit: code ?? -1, stderr });
    });
  });
}

test('memory engine: the process exits by itself after server.close(); its client got 1001', async () => {
  const outcome = await runUntilExit([]);
  assert.deepEqual(outcome, { lines: ['subscribed', 'closed 1001'], exit: 0, stderr: '' });
});

let redis: RedisServer | undefined;
after(async () => redis?.stop());

test('Redis engine: the process exits by itself after server.close(), its Redis connections closed with it', async (t) => {
  if (!skipWithoutRedis(t)) return;
  redis = await RedisServer.start();
  const outcome = await runUntilExit([redis.url]);
  assert.deepEqual(outcome, { lines: ['subscribed', 'closed 1001'], exit: 0, stderr: '' });
  // Nothing of the node is left connected: the only client is the one asking.
  const clients = (await redis.command('CLIENT LIST')).split('\n').filter((line) => line.includes('addr='));
  assert.equal(clients.length, 1, `Redis still has the node's connections:\n${clients.join('\n')}`);
});
