// Nagle off with one system call per listening socket (src/node/no-delay.ts): serve()'s
// listener has TCP_NODELAY, its connections inherit it from the kernel and make no
// setsockopt of their own. Seen from the TCP handles' setNoDelay calls, and the kernel's
// inheritance itself checked with getsockopt from Python.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { serve } from '../src/index.js';

interface TcpHandle {
  setNoDelay(enable: boolean): number;
}

/** The prototype every TCP handle of this process shares, listening or connected. */
async function tcpHandlePrototype(): Promise<TcpHandle> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const handle = (probe as unknown as { _handle: TcpHandle })._handle;
  probe.close();
  return Object.getPrototypeOf(handle) as TcpHandle;
}

const INHERITS = `
import socket
listener = socket.socket()
listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
listener.bind(('127.0.0.1', 0))
listener.listen()
client = socket.create_connection(listener.getsockname())
accepted, _ = listener.accept()
print(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
`;

describe('Nagle off from the listener', { skip: process.platform !== 'linux' && 'Linux only: elsewhere each connection sets TCP_NODELAY itself' }, () => {
  test("the kernel gives an accepted socket its listener's TCP_NODELAY", async (t) => {
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)('python3', ['-c', INHERITS], { timeout: 30_000 }));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return t.skip('SKIPPED: python3 is not installed');
      throw error;
    }
    assert.notEqual(Number(stdout.trim()), 0, 'TCP_NODELAY on the accepted socket');
  });

  test('serve() sets TCP_NODELAY once, on its listener; connections echo with no setsockopt of their own', async () => {
    const prototype = await tcpHandlePrototype();
    const setNoDelay = prototype.setNoDelay;
    const calls: Array<{ handle: TcpHandle; enable: boolean }> = [];
    prototype.setNoDelay = function (this: TcpHandle, enable: boolean) {
      calls.push({ handle: this, enable });
      return setNoDelay.call(this, enable);
    };
    try {
      const app = await serve({ websocket: { '/echo': { message: (conn, message) => conn.send(message) } } });
      try {
        assert.equal(calls.length, 1, 'one setNoDelay, before any connection');
        assert.equal(calls[0]!.enable, true);
        const listener = calls[0]!.handle;
        const clients = await Promise.all(
          [1, 2, 3].map(async (n) => {
            const ws = new WebSocket(`ws://127.0.0.1:${app.port}/echo`, { perMessageDeflate: false });
            await once(ws, 'open');
            ws.send(`hello ${n}`);
            const [reply] = (await once(ws, 'message')) as [Buffer];
            assert.equal(reply.toString(), `hello ${n}`);
            return ws;
          }),
        );
        // The clients' own sockets (ws sets Nagle off on them) are the only other callers.
        const clientHandles = new Set(clients.map((ws) => (Reflect.get(ws, '_socket') as Socket & { _handle: TcpHandle })._handle));
        const others = calls.slice(1).filter((call) => !clientHandles.has(call.handle));
        assert.deepEqual(others, [], 'no accepted socket set TCP_NODELAY itself');
        assert.ok(!clientHandles.has(listener));
        for (const ws of clients) ws.close();
        await Promise.all(clients.map((ws) => once(ws, 'close')));
      } finally {
        await app.close();
      }
    } finally {
      prototype.setNoDelay = setNoDelay;
    }
  });
});
