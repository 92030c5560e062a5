// Wire-level helpers for the permessage-deflate tests, written independently of src/ so
// that they can judge it: a streaming frame parser (for a proxy or a raw client), masked
// client frames, RFC 7692 compression with zlib, and a raw TCP client that writes its own
// opening handshake.
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { constants as zlib, deflateRawSync, inflateRawSync } from 'node:zlib';

export const Op = { Continuation: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

/** One frame as it crossed the wire. */
export interface WireFrame {
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  opcode: number;
  masked: boolean;
  /** Payload length on the wire (compressed, for a compressed message). */
  length: number;
  /** The (unmasked) payload, kept when it is at most the parser's keep limit; else null. */
  payload: Buffer | null;
}

export const isControl = (frame: WireFrame): boolean => frame.opcode >= 0x8;

/** One data message: its frames, RSV1 of its first frame, and its total wire length. */
export interface WireMessage {
  opcode: number;
  rsv1: boolean;
  frames: WireFrame[];
  length: number;
  /** The whole wire payload when every frame kept its own. */
  payload: Buffer | null;
}

/** Groups data frames into messages (control frames in between are left out). */
export function messagesOf(frames: readonly WireFrame[]): WireMessage[] {
  const out: WireMessage[] = [];
  let current: WireFrame[] | null = null;
  for (const frame of frames) {
    if (isControl(frame)) continue;
    if (frame.opcode !== Op.Continuation) current = [];
    if (current === null) throw new Error('a continuation frame outside a message');
    current.push(frame);
    if (frame.fin) {
      const parts = current;
      const payloads = parts.map((f) => f.payload);
      out.push({
        opcode: parts[0]!.opcode,
        rsv1: parts[0]!.rsv1,
        frames: parts,
        length: parts.reduce((n, f) => n + f.length, 0),
        payload: payloads.every((p) => p !== null) ? Buffer.concat(payloads as Buffer[]) : null,
      });
      current = null;
    }
  }
  return out;
}

/** The code of a close frame (1005 when it has none). */
export function closeCodeOf(frame: WireFrame): number {
  if (frame.opcode !== Op.Close) throw new Error(`not a close frame: opcode ${frame.opcode}`);
  if (frame.payload === null) throw new Error('close frame payload was not kept');
  return frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
}

/**
 * Parses a stream of frames incrementally, without copying payloads it does not keep (a
 * proxy forwarding megabytes stays cheap).
 */
export class FrameParser {
  private header = Buffer.alloc(0);
  private frame: WireFrame | null = null;
  private mask: Buffer | null = null;
  private remaining = 0;
  private received = 0;
  private pieces: Buffer[] = [];

  constructor(
    private readonly onFrame: (frame: WireFrame) => void,
    private readonly keepLimit = 64 * 1024,
  ) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.frame === null) {
        // Header bytes: at most 14; gather them until the whole header is there.
        const need = Math.min(14, chunk.length - at);
        this.header = Buffer.concat([this.header, chunk.subarray(at, at + need)]);
        at += need;
        const parsed = parseHeader(this.header);
        if (parsed === null) continue;
        // Give back what was read past the header.
        at -= this.header.length - parsed.size;
        this.header = Buffer.alloc(0);
        this.frame = parsed.frame;
        this.mask = parsed.mask;
        this.remaining = parsed.frame.length;
        this.received = 0;
        this.pieces = [];
        if (this.remaining === 0) this.finish();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      if (this.frame.length <= this.keepLimit) {
        const piece = Buffer.from(chunk.subarray(at, at + take));
        if (this.mask !== null) {
          for (let i = 0; i < piece.length; i++) piece[i]! ^= this.mask[(this.received + i) & 3]!;
        }
        this.pieces.push(piece);
      }
      this.received += take;
      this.remaining -= take;
      at += take;
      if (this.remaining === 0) this.finish();
    }
  }

  /** Bytes of a frame still in progress (0 when the stream ended on a frame boundary). */
  get pending(): number {
    return this.header.length + (this.frame === null ? 0 : this.received);
  }

  private finish(): void {
    const frame = this.frame!;
    if (frame.length <= this.keepLimit) frame.payload = Buffer.concat(this.pieces);
    this.frame = null;
    this.mask = null;
    this.pieces = [];
    this.onFrame(frame);
  }
}

function parseHeader(bytes: Buffer): { frame: WireFrame; mask: Buffer | null; size: number } | null {
  if (bytes.length < 2) return null;
  const b0 = bytes[0]!;
  const b1 = bytes[1]!;
  const masked = (b1 & 0x80) !== 0;
  let length = b1 & 0x7f;
  let size = 2;
  if (length === 126) {
    if (bytes.length < 4) return null;
    length = bytes.readUInt16BE(2);
    size = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return null;
    length = Number(bytes.readBigUInt64BE(2));
    size = 10;
  }
  let mask: Buffer | null = null;
  if (masked) {
    if (bytes.length < size + 4) return null;
    mask = Buffer.from(bytes.subarray(size, size + 4));
    size += 4;
  }
  return {
    frame: {
      fin: (b0 & 0x80) !== 0,
      rsv1: (b0 & 0x40) !== 0,
      rsv2: (b0 & 0x20) !== 0,
      rsv3: (b0 & 0x10) !== 0,
      opcode: b0 & 0x0f,
      masked,
      length,
      payload: null,
    },
    mask,
    size,
  };
}

/** A frame as a client sends it: masked with a random key. */
export function clientFrame(opcode: number, payload: Buffer, options: { fin?: boolean; rsv1?: boolean } = {}): Buffer {
  const fin = options.fin ?? true;
  const length = payload.length;
  const size = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const header = Buffer.alloc(size + 4);
  header[0] = (fin ? 0x80 : 0) | (options.rsv1 === true ? 0x40 : 0) | opcode;
  if (length < 126) {
    header[1] = 0x80 | length;
  } else if (length < 65536) {
    header[1] = 0x80 | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomBytes(4);
  mask.copy(header, size);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, body]);
}

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * RFC 7692 §7.2.1: one message deflated on its own, with the trailing 00 00 ff ff removed.
 * `memLevel` below 8 makes zlib's context smaller (cheaper to set up for many tiny messages).
 */
export function deflateForWire(data: Buffer, windowBits = 15, memLevel = 8): Buffer {
  const out = deflateRawSync(data, { windowBits, memLevel, finishFlush: zlib.Z_SYNC_FLUSH });
  if (!out.subarray(-4).equals(TAIL)) throw new Error('a sync flush did not end in 00 00 ff ff');
  return out.subarray(0, out.length - 4);
}

/** RFC 7692 §7.2.2: a message compressed on its own, inflated (no context). */
export function inflateFromWire(data: Buffer): Buffer {
  return inflateRawSync(Buffer.concat([data, TAIL]), { finishFlush: zlib.Z_SYNC_FLUSH });
}

export interface RawHandshake {
  socket: Socket;
  status: number;
  /** Response header fields, names lower-cased. */
  headers: Map<string, string>;
  /** Bytes that followed the response head in the same reads. */
  rest: Buffer;
}

/** Sends a hand-written upgrade request and reads the response head. */
export async function rawHandshake(port: number, path: string, extensions?: string): Promise<RawHandshake> {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\n` +
      `Host: 127.0.0.1:${port}\r\n` +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
      'Sec-WebSocket-Version: 13\r\n' +
      (extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
      '\r\n',
  );
  return readResponseHead(socket);
}

/** Reads an HTTP response head from `socket`; what follows it is returned as `rest`. */
export function readResponseHead(socket: Socket): Promise<RawHandshake> {
  return new Promise((resolve, reject) => {
    let seen = Buffer.alloc(0);
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('the connection closed before the response head'));
    };
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      const end = seen.indexOf('\r\n\r\n');
      if (end === -1) return;
      cleanup();
      socket.pause();
      const lines = seen.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0]!.split(' ')[1]);
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        const previous = headers.get(name);
        headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
      }
      resolve({ socket, status, headers, rest: seen.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

/**
 * Reads the server's frames from a raw socket after the handshake: `next()` gives frames
 * in order, `ended` resolves once the server ended the TCP connection.
 */
export class RawFrameReader {
  private readonly queue: WireFrame[] = [];
  private readonly waiters: Array<(frame: WireFrame | null) => void> = [];
  private done = false;
  readonly ended: Promise<void>;

  constructor(readonly socket: Socket, rest: Buffer) {
    const parser = new FrameParser((frame) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter(frame);
      else this.queue.push(frame);
    });
    socket.on('data', (chunk: Buffer) => parser.push(chunk));
    socket.on('error', () => {});
    this.ended = new Promise((resolve) => {
      const finish = (): void => {
        this.done = true;
        for (const waiter of this.waiters.splice(0)) waiter(null);
        resolve();
      };
      // 'end': the server closed its side; 'close' covers a reset.
      socket.once('end', finish);
      socket.once('close', finish);
    });
    if (rest.length > 0) parser.push(rest);
    socket.resume();
  }

  /** The next frame, or null when the connection ended first. */
  next(): Promise<WireFrame | null> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.done) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Every frame until the connection ends. */
  async rest(): Promise<WireFrame[]> {
    const frames: WireFrame[] = [];
    for (;;) {
      const frame = await this.next();
      if (frame === null) return frames;
      frames.push(frame);
    }
  }
}
