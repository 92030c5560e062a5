/**
 * A deliberately thin WebSocket client for load generation, on raw `node:net` sockets:
 * it writes a fixed upgrade request, checks the 101 answer, and from then on only counts
 * the server's frames by their headers. It never decodes a message, so that the load
 * generator costs far less per message than the server it drives.
 *
 * Every socket reads into one shared buffer (net's `onread`), so reads allocate nothing.
 * Frames to send are encoded (and masked) once by the caller and written as they are.
 */
import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import { writeReferenceFrame } from './frames.js';

export const HOST = '127.0.0.1';

/** The sample key of RFC 6455 §1.3 and its accept value: any key will do for load. */
const UPGRADE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const UPGRADE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const ACCEPT_HEADER = /\r\nsec-websocket-accept:[ \t]*([^\r\n]*)/i;
const MAX_HEAD = 4096;

/** A fixed masking key: the server must unmask whatever key it gets. */
const MASK_KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** One read's worth of bytes, shared by every socket (each read is handled before the next). */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** The upgrade request; `extensions`, when given, is sent as Sec-WebSocket-Extensions. */
export function upgradeRequest(port: number, path: string, extensions?: string): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\n` +
      `Host: ${HOST}:${port}\r\n` +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${UPGRADE_KEY}\r\n` +
      (extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
      'Sec-WebSocket-Version: 13\r\n\r\n',
    'latin1',
  );
}

/** A final client frame (masked with the fixed key). */
export function clientFrame(opcode: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(payload.length + 14);
  return out.subarray(0, writeReferenceFrame(out, 0, opcode, payload, MASK_KEY));
}

/** A final server frame (unmasked): exactly the bytes a server must answer with. */
export function serverFrame(opcode: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(payload.length + 10);
  return out.subarray(0, writeReferenceFrame(out, 0, opcode, payload, null));
}

/** `frame` repeated `times` times, back to back: up to that many frames go out in one write. */
export function repeatFrame(frame: Buffer, times: number): Buffer {
  return Buffer.concat(Array.from({ length: times }, () => frame));
}

/** The close frame (1000) a client sends, and the one a server must answer with. */
export const CLIENT_CLOSE = clientFrame(0x8, Buffer.from([0x03, 0xe8]));
export const SERVER_CLOSE = serverFrame(0x8, Buffer.from([0x03, 0xe8]));

/** What counts a connection's server frames (FrameCounter, or others such as bench/lib/deflate-frames.ts's). */
export interface FrameSink {
  /** Frames completed so far. */
  readonly frames: number;
  /** Takes bytes `start`..`end` of `buffer` (valid only during the call); returns how many frames they completed. Throws on a bad frame. */
  feed(buffer: Buffer, start: number, end: number): number;
  /** Whether the stream stopped between frames. */
  readonly atBoundary: boolean;
}

/**
 * Counts a stream of server frames that must all equal `expected`. The first
 * `verifyFrames` frames are compared byte for byte (payload included); after that only
 * each frame's header bytes are compared (FIN, opcode, mask bit, length) and the payload
 * is skipped. Any difference throws.
 */
export class FrameCounter implements FrameSink {
  frames = 0;
  private readonly expected: Buffer;
  private readonly headerLength: number;
  private verifyLeft: number;
  /** How far into the current frame the stream is. */
  private at = 0;

  constructor(expected: Buffer, verifyFrames: number) {
    this.expected = expected;
    const length7 = expected[1]! & 0x7f;
    this.headerLength = 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0);
    this.verifyLeft = verifyFrames;
  }

  /** Takes bytes `start`..`end` of `buffer`; returns how many frames they completed. */
  feed(buffer: Buffer, start: number, end: number): number {
    const expected = this.expected;
    const frameLength = expected.length;
    let done = 0;
    let i = start;
    while (i < end) {
      const at = this.at;
      let take: number;
      if (this.verifyLeft > 0) {
        take = Math.min(frameLength - at, end - i);
        if (buffer.compare(expected, at, at + take, i, i + take) !== 0) {
          let k = 0;
          while (buffer[i + k] === expected[at + k]) k++;
          throw new Error(
            `frame ${this.frames + done + 1} differs from the expected one at byte ${at + k}: ` +
              `got ${buffer.subarray(i + k, i + Math.min(take, k + 16)).toString('hex')}, ` +
              `expected ${expected.subarray(at + k, at + Math.min(take, k + 16)).toString('hex')}`,
          );
        }
      } else if (at < this.headerLength) {
        take = Math.min(this.headerLength - at, end - i);
        for (let k = 0; k < take; k++) {
          if (buffer[i + k] !== expected[at + k]) {
            throw new Error(
              `frame ${this.frames + done + 1} has header byte ${at + k} = 0x${buffer[i + k]!.toString(16)}, ` +
                `expected 0x${expected[at + k]!.toString(16)} (header ${expected.subarray(0, this.headerLength).toString('hex')})`,
            );
          }
        }
      } else {
        take = Math.min(frameLength - at, end - i);
      }
      i += take;
      if (at + take === frameLength) {
        this.at = 0;
        done++;
        if (this.verifyLeft > 0) this.verifyLeft--;
      } else {
        this.at = at + take;
      }
    }
    this.frames += done;
    return done;
  }

  /** Whether the stream stopped between frames. */
  get atBoundary(): boolean {
    return this.at === 0;
  }
}

/** Reads taken by every client so far: lets a spinning event loop tell busy turns from idle ones. */
export const readCount = { value: 0 };

/** What a job does with its clients' events. */
export interface ClientHandler {
  /** The 101 arrived and was checked. */
  open(client: RawClient): void;
  /** `count` more frames arrived, each as expected. */
  frames(client: RawClient, count: number): void;
  /** The server ended the connection (TCP FIN). */
  end(client: RawClient): void;
  /** The socket is closed. */
  closed(client: RawClient): void;
  error(client: RawClient, error: Error): void;
}

/** One raw WebSocket connection. Jobs keep their per-connection numbers in its public fields. */
export class RawClient {
  readonly socket: Socket;
  handler: ClientHandler;
  counter: FrameSink;
  upgraded = false;
  /** The server's 101 response head (status line and headers, no final empty line), once upgraded. */
  responseHead = '';
  ended = false;
  /** Free for the job: messages sent, frames received, a timestamp. */
  sent = 0;
  received = 0;
  stamp = 0n;
  private head = '';

  constructor(port: number, handler: ClientHandler, counter: FrameSink, request: Buffer) {
    this.handler = handler;
    this.counter = counter;
    this.socket = connect({
      host: HOST,
      port,
      onread: { buffer: READ_BUFFER, callback: (bytes, buffer) => this.onRead(bytes, buffer) },
    });
    this.socket.setNoDelay(true);
    this.socket.on('error', (error) => this.handler.error(this, error));
    this.socket.on('end', () => {
      this.ended = true;
      this.handler.end(this);
    });
    this.socket.on('close', () => this.handler.closed(this));
    this.socket.write(request);
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onRead(bytes: number, buffer: Uint8Array): boolean {
    readCount.value++;
    try {
      this.take(Buffer.isBuffer(buffer) ? buffer : Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength), bytes);
    } catch (error) {
      this.handler.error(this, error instanceof Error ? error : new Error(String(error)));
      this.socket.destroy();
    }
    return true;
  }

  private take(buffer: Buffer, bytes: number): void {
    let start = 0;
    if (!this.upgraded) {
      const before = this.head.length;
      this.head += buffer.toString('latin1', 0, bytes);
      const end = this.head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (this.head.length > MAX_HEAD) throw new Error(`no end of the response head in ${MAX_HEAD} bytes`);
        return;
      }
      const head = this.head.slice(0, end + 2);
      this.head = '';
      this.responseHead = head;
      if (!head.startsWith('HTTP/1.1 101 ')) throw new Error(`upgrade refused: ${head.split('\r\n')[0]}`);
      const accept = ACCEPT_HEADER.exec(head)?.[1]?.trim();
      if (accept !== UPGRADE_ACCEPT) throw new Error(`wrong Sec-WebSocket-Accept: ${accept ?? '(none)'}`);
      this.upgraded = true;
      start = end + 4 - before;
      this.handler.open(this);
    }
    if (start < bytes) {
      const done = this.counter.feed(buffer, start, bytes);
      if (done > 0) this.handler.frames(this, done);
    }
  }
}
