// An independent reading of a peer's frames, for the oracles that need to know where each
// frame and message begins and ends in the bytes (partial-frame state, the size of the
// message being assembled, what a compressed message held): RFC 6455 §5.2 read plainly,
// without the protocol's decoder. It stops at the first frame it cannot read; the
// protocol fails there too, or earlier, and the oracles compare only before a failure.
import { Buffer } from 'node:buffer';

export interface WalkedFrame {
  start: number;
  /** Where the payload begins (after the length and the mask key). */
  payloadStart: number;
  end: number;
  fin: boolean;
  rsv: number;
  opcode: number;
  /** Unmasked. */
  payload: Buffer;
}

/** A data message as its frames carry it: the payloads joined, in the order sent. */
export interface WalkedMessage {
  opcode: number;
  compressed: boolean;
  payload: Buffer;
  /** The offset of the byte that completes it. */
  end: number;
}

export interface Walk {
  frames: WalkedFrame[];
  /** Complete data messages, in order. */
  messages: WalkedMessage[];
}

/** Reads complete frames from the start of `data`; a frame cut off at the end is left out. */
export function walkFrames(data: Buffer): Walk {
  const frames: WalkedFrame[] = [];
  const messages: WalkedMessage[] = [];
  let pending: { opcode: number; compressed: boolean; parts: Buffer[] } | null = null;
  let at = 0;
  while (at + 2 <= data.length) {
    const b0 = data[at]!;
    const b1 = data[at + 1]!;
    let length = b1 & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      if (offset + 2 > data.length) break;
      length = data.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      if (offset + 8 > data.length) break;
      const long = data.readBigUInt64BE(offset);
      if (long > BigInt(data.length)) break;
      length = Number(long);
      offset += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? data.subarray(offset, offset + 4) : null;
    if (masked) offset += 4;
    if (offset + length > data.length) break;
    const payload = Buffer.from(data.subarray(offset, offset + length));
    if (key !== null) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i & 3]!;
    const frame: WalkedFrame = { start: at, payloadStart: offset, end: offset + length, fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, payload };
    frames.push(frame);
    at = frame.end;
    if (frame.opcode >= 8) continue;
    if (frame.opcode !== 0) pending = { opcode: frame.opcode, compressed: (frame.rsv & 4) !== 0, parts: [] };
    if (pending === null) break;
    pending.parts.push(payload);
    if (frame.fin) {
      messages.push({ opcode: pending.opcode, compressed: pending.compressed, payload: Buffer.concat(pending.parts), end: frame.end });
      pending = null;
    }
  }
  return { frames, messages };
}

/**
 * What the receiver's state should be once it has read `position` bytes: whether it holds
 * part of a frame or of a fragmented message, how many messages and control frames outside
 * a message it completed, and the payload bytes of the message it is assembling.
 */
export interface ReadState {
  partial: boolean;
  completed: number;
  assembling: number;
}

/**
 * The state after each byte count, from a walk of the whole input. Bytes past the last
 * frame the walk read are the start of a frame (cut off, or one the receiver fails on).
 */
export function readStates(walk: Walk, length: number): (position: number) => ReadState | null {
  // Frame ends in order, with the state after each.
  const after: Array<{ end: number; inMessage: boolean; completed: number; assembling: number }> = [];
  let inMessage = false;
  let completed = 0;
  let assembling = 0;
  for (const f of walk.frames) {
    if (f.opcode >= 8) {
      if (!inMessage) completed++;
    } else {
      assembling += f.payload.length;
      if (f.fin) {
        inMessage = false;
        assembling = 0;
        completed++;
      } else inMessage = true;
    }
    after.push({ end: f.end, inMessage, completed, assembling });
  }
  return (position) => {
    if (position > length) return null;
    let i = -1;
    for (let lo = 0, hi = after.length - 1; lo <= hi; ) {
      const mid = (lo + hi) >> 1;
      if (after[mid]!.end <= position) {
        i = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const last = i >= 0 ? after[i]! : { end: 0, inMessage: false, completed: 0, assembling: 0 };
    const inFrame = position > last.end;
    return { partial: inFrame || last.inMessage, completed: last.completed, assembling: last.assembling };
  };
}
