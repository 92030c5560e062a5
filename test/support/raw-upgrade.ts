// A WebSocket upgrade request written by hand over TCP, for tests that look at the exact
// answer (the status line, the headers and the body of a refusal, or the 101), or that take
// the upgraded socket and write frames by hand.
import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';

export interface UpgradeAnswer {
  socket: Socket;
  /** The response as received: the head, and for a refusal its body (the server closes after it). */
  response: string;
  /** The status code of the response. */
  status: number;
  /** The body of a refusal ('' for a 101). */
  body: string;
}

export interface UpgradeOptions {
  /** Extra header lines ('Origin: http://x'). */
  headers?: readonly string[];
  /** The Host header (default 127.0.0.1:PORT). */
  host?: string;
  /** The local address to connect from (any of 127.0.0.0/8 on Linux), so a test can be several clients. */
  localAddress?: string;
  /** Once a 101 arrived: what to do before resolving (write frames, wait for answers); it gets the bytes so far on every read. */
  afterUpgrade?: (socket: Socket, received: () => Buffer) => boolean;
}

/**
 * Sends an upgrade request for `path` to 127.0.0.1:`port` and resolves with the answer: at
 * once for a 101 (or when `afterUpgrade` says it is done), after the server closed for
 * anything else.
 */
export function upgradeRequest(port: number, path: string, options: UpgradeOptions = {}): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: options.localAddress });
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      const response = received.toString('latin1');
      const end = response.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(response)?.[1] ?? 0);
      resolve({ socket, response, status, body: status === 101 || end === -1 ? '' : response.slice(end + 4) });
    };
    socket.on('error', (error) => {
      if (!settled) reject(error);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const text = received.toString('latin1');
      if (!text.startsWith('HTTP/1.1 101 ') || !text.includes('\r\n\r\n')) return;
      const after = received.subarray(text.indexOf('\r\n\r\n') + 4);
      if (options.afterUpgrade === undefined || options.afterUpgrade(socket, () => after)) finish();
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.write(upgradeHead(path, options.host ?? `127.0.0.1:${port}`, options.headers));
  });
}

/** The request of an upgrade to `path`, with extra header lines. */
export function upgradeHead(path: string, host: string, headers: readonly string[] = []): string {
  return [`GET ${path} HTTP/1.1`, `Host: ${host}`, 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', ...headers, '', ''].join('\r\n');
}

export interface UpgradedSocket {
  socket: Socket;
  /** The 101's head, without its empty line. */
  head: string;
  /** What came after the head in the same read (frames the server sent at once). */
  rest: Buffer;
}

/**
 * Upgrades a TCP connection to `path` on 127.0.0.1:`port` by hand and resolves once the 101
 * is in; from then on the socket's data is the caller's (nothing here reads it any more),
 * and so is noticing its end (errors are swallowed: a reset shows as 'close'). A refusal
 * rejects with its status line.
 */
export function upgradeSocket(port: number, path: string, headers: readonly string[] = []): Promise<UpgradedSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.off('error', reject);
      // A peer that resets later shows as the socket closing; an unheard 'error' would end the test process.
      socket.on('error', () => {});
      const head = received.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101 ')) {
        socket.destroy();
        reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        return;
      }
      resolve({ socket, head, rest: received.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.write(upgradeHead(path, `127.0.0.1:${port}`, headers));
  });
}
