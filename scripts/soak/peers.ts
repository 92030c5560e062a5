// The two kinds of peer the soak's attackers are made of: a raw WebSocket over TCP that
// writes frames exactly as an attacker shapes them (test/support/attack.ts's clientFrame) (1-byte fragments, compressed frames
// that inflate big) and only counts the server's frames, and a hotline.v1 peer over
// hotline's Node WebSocket that sends requests and matches their answers.
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { WebSocket } from '../../src/node/client.js';

/** A message as 1-byte fragments: 7 bytes on the wire per byte of message. */
export function oneByteFragments(opcode: number, message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(7 * message.length);
  for (let i = 0; i < message.length; i++) {
    const at = 7 * i;
    out[at] = (i === message.length - 1 ? 0x80 : 0) | (i === 0 ? opcode : 0);
    out[at + 1] = 0x81;
    out.writeUInt32BE(0, at + 2);
    out[at + 6] = message[i]!;
  }
  return out;
}

/** A WebSocket made by hand over TCP: frames written as given, the server's frames counted (never inflated). */
export class RawPeer {
  /** The close code of the server's close frame; 1006 when the connection ended without one. */
  readonly closed: Promise<number>;
  private buffered: Buffer = Buffer.alloc(0);
  private closeCode: number | null = null;
  private listener: ((opcode: number, payload: Buffer) => void) | null = null;

  private constructor(private readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve(this.closeCode ?? 1006)));
    socket.on('data', (chunk: Buffer) => this.read(chunk));
  }

  /** Upgrades a connection to `path` (extra header lines allowed); rejects unless the answer is 101. */
  static connect(port: number, path: string, headers: readonly string[] = []): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port });
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        socket.off('error', reject);
        const status = head.subarray(0, end).toString('latin1').split('\r\n')[0] ?? '';
        if (!status.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${status}`));
          return;
        }
        socket.on('error', () => {});
        const peer = new RawPeer(socket);
        resolve(peer);
        if (head.length > end + 4) peer.read(head.subarray(end + 4));
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.write(
        [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', ...headers, '', ''].join('\r\n'),
      );
    });
  }

  /** Called with each complete data or control frame of the server's (payloads as sent, compressed or not). */
  onFrame(listener: (opcode: number, payload: Buffer) => void): void {
    this.listener = listener;
  }

  get open(): boolean {
    return !this.socket.destroyed && this.closeCode === null;
  }

  /** Writes, and waits for the socket to drain when its buffer is full (so a paused server slows the writer). */
  async write(bytes: Buffer): Promise<void> {
    if (!this.open) return;
    if (!this.socket.write(bytes)) await Promise.race([once(this.socket, 'drain'), this.closed]);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const b = this.buffered;
      if (b.length < 2) return;
      let length = b[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b.length < offset + length) return;
      const opcode = b[0]! & 0x0f;
      const payload = b.subarray(offset, offset + length);
      this.buffered = b.subarray(offset + length);
      if (opcode === 0x8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.socket.end();
      }
      this.listener?.(opcode, payload);
    }
  }
}

/** A message the server sent a hotline.v1 peer: an answer (`ok`, `err`, `pong`) or a push. */
export interface Incoming {
  op: string;
  id?: number;
  ch?: string;
  code?: string;
}

/** A hotline.v1 connection with requests matched to their answers by id. */
export class ChannelPeer {
  readonly closed: Promise<number>;
  private nextId = 1;
  private readonly waiting = new Map<number, (answer: Incoming) => void>();
  private pushListener: ((push: Incoming) => void) | null = null;

  private constructor(private readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.addEventListener('close', (event) => {
        for (const settle of this.waiting.values()) settle({ op: 'closed' });
        this.waiting.clear();
        resolve(event.code);
      }),
    );
    ws.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as Incoming;
      const settle = message.id === undefined ? undefined : this.waiting.get(message.id);
      if (settle !== undefined && (message.op === 'ok' || message.op === 'err' || message.op === 'pong')) {
        this.waiting.delete(message.id!);
        settle(message);
      } else this.pushListener?.(message);
    });
  }

  static connect(port: number, path: string): Promise<ChannelPeer> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, 'hotline.v1', { perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      ws.addEventListener('open', () => resolve(new ChannelPeer(ws)));
      ws.addEventListener('error', () => reject(new Error(`could not connect to ${path}`)));
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** What this side wrote and the server has not read yet. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Pushes (and answers to requests sent with `send`) go here. */
  onPush(listener: (push: Incoming) => void): void {
    this.pushListener = listener;
  }

  /** Sends a request and resolves with its answer (`{ op: 'closed' }` if the connection closes first). */
  request(fields: Record<string, unknown>): Promise<Incoming> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      if (!this.open) {
        resolve({ op: 'closed' });
        return;
      }
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ ...fields, id }));
    });
  }

  close(): void {
    this.ws.close();
  }
}
