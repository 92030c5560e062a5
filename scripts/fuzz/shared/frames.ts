// WebSocket frames as the frame targets build and read them: a frame spec with every field
// a mutation may break (FIN, RSV, opcode, mask, length form, declared length), its
// encoding, close bodies, the configurations a frame target runs in, a parser for what the
// fuzzed side queued, and an independent UTF-8 check and digest for the oracles.
import { Buffer } from 'node:buffer';
import type { DeflateParams, Role } from '../../../src/protocol/index.js';

export interface FrameSpec {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Buffer;
  mask: Buffer | null;
  /** Length encoding; by default the minimal one. */
  form?: 7 | 16 | 64;
  /** The length written in the header, when it should differ from the payload's. */
  declared?: bigint;
}

export function encodeSpec(frame: FrameSpec): Buffer {
  const length = frame.declared ?? BigInt(frame.payload.length);
  const form = frame.form ?? (length < 126n ? 7 : length < 0x10000n ? 16 : 64);
  const header: number[] = [((frame.fin ? 0x80 : 0) | ((frame.rsv & 7) << 4) | (frame.opcode & 0xf)) & 0xff];
  const maskBit = frame.mask === null ? 0 : 0x80;
  if (form === 7) header.push(maskBit | Number(length & 0x7fn));
  else if (form === 16) header.push(maskBit | 126, Number((length >> 8n) & 0xffn), Number(length & 0xffn));
  else {
    header.push(maskBit | 127);
    for (let i = 7; i >= 0; i--) header.push(Number((length >> BigInt(8 * i)) & 0xffn));
  }
  if (frame.mask === null) return Buffer.concat([Buffer.from(header), frame.payload]);
  const body = Buffer.from(frame.payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (frame.mask[i & 3] as number);
  return Buffer.concat([Buffer.from(header), frame.mask, body]);
}

export function closeBody(code: number, reason: Buffer | string = ''): Buffer {
  const text = typeof reason === 'string' ? Buffer.from(reason) : reason;
  const out = Buffer.alloc(2 + text.length);
  out.writeUInt16BE(code & 0xffff, 0);
  text.copy(out, 2);
  return out;
}

export interface FrameVariant {
  maxPayload: number;
  /** The negotiated parameters (the same on both sides), or null without permessage-deflate. */
  deflate: DeflateParams | null;
  label: string;
}

export function frameVariants(role: Role, deflate: boolean): FrameVariant[] {
  const out: FrameVariant[] = [];
  if (!deflate) {
    for (const maxPayload of [0, 125, 1024, 65536, 1 << 20]) out.push({ maxPayload, deflate: null, label: `maxPayload ${maxPayload}` });
    return out;
  }
  for (const noTakeover of [false, true]) {
    for (const bits of [15, 10, 9, 8]) {
      for (const maxPayload of [1024, 65536, 1 << 20]) {
        // What the fuzzed side receives is compressed by its peer, with the peer's window and takeover.
        const params: DeflateParams =
          role === 'server'
            ? { serverNoContextTakeover: true, clientNoContextTakeover: noTakeover, serverMaxWindowBits: 15, clientMaxWindowBits: bits }
            : { serverNoContextTakeover: noTakeover, clientNoContextTakeover: false, serverMaxWindowBits: bits, clientMaxWindowBits: 15 };
        out.push({
          maxPayload,
          deflate: params,
          label: `maxPayload ${maxPayload}, peer window ${bits}, ${noTakeover ? 'no context takeover' : 'context takeover'}`,
        });
      }
    }
  }
  return out;
}

export const INVALID_UTF8: readonly Buffer[] = [
  [0x80], [0xc0, 0x80], [0xc2], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x8f, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], [0xf5], [0xff], [0xe2, 0x82],
].map((b) => Buffer.from(b));
export const CLOSE_CODES = [0, 1, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012, 1014, 1015, 1016, 2999, 3000, 3999, 4000, 4999, 5000, 65535];

/** An independent check of UTF-8 (the protocol has its own validator). */
const fatalDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
export function isUtf8Independent(bytes: Uint8Array): boolean {
  try {
    fatalDecoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

export function digest(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193);
  return (h >>> 0).toString(16);
}

export interface SentFrame {
  opcode: number;
  payload: Buffer;
}

/** Parses what the fuzzed side queued: complete frames, masked exactly when it is a client. */
export function parseSent(bytes: Buffer, role: Role): SentFrame[] | string {
  const frames: SentFrame[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 2) return 'a partial frame header';
    const b0 = bytes[at] as number;
    const b1 = bytes[at + 1] as number;
    if ((b0 & 0x80) === 0) return 'a fragmented frame';
    if ((b0 & 0x70) !== 0) return 'RSV bits on a frame we sent';
    const masked = (b1 & 0x80) !== 0;
    if (masked !== (role === 'client')) return role === 'client' ? 'an unmasked client frame' : 'a masked server frame';
    let length = b1 & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(offset));
      offset += 8;
    }
    let key: Buffer | null = null;
    if (masked) {
      key = bytes.subarray(offset, offset + 4);
      offset += 4;
    }
    if (offset + length > bytes.length) return 'a partial frame payload';
    const payload = Buffer.from(bytes.subarray(offset, offset + length));
    if (key !== null) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (key[i & 3] as number);
    frames.push({ opcode: b0 & 0x0f, payload });
    at = offset + length;
  }
  return frames;
}
