/**
 * The `id` of an SSE event: where a stream stands in each of its channels, so that a
 * reconnect (the browser's `Last-Event-ID`, or `since=` from curl) resumes each one exactly
 * through the hub's recovery. A browser remembers only the last id it saw, so every id holds
 * the whole position, not only the channel of its event; it is plain text, so any node that
 * shares the engine can resume it, with no state kept on the server.
 *
 *   id      = tag "," part *( "," part )     one part per `ch` of the URL, in its order
 *   part    = epoch ":" offset / ""          "" while the stream has no position there
 *   tag     = the channel list's hash (FNV-1a, 32 bits, base 36): an id is only read
 *             against the channel list it was written for
 *   epoch   = the channel's epoch, percent-encoded (engines' epochs are [0-9a-z] and pass as they are)
 *   offset  = base 36
 *
 * e.g. `1k2dq9f,mj4x8f2a01k2bz:1b,mj4x8g0b02q7cc:0` for two channels. Its length is bounded
 * by the channels a stream may hold: at most {@link maxPositionLength}.
 */

/** A channel's position: its epoch and the last offset the stream carried. */
export interface ChannelPosition {
  epoch: string;
  offset: number;
}

/** The longest epoch hotline.v1 accepts in `since` (see docs/protocol.md, Limits). */
const MAX_EPOCH = 64;
/** 2^53 − 1 in base 36. */
const MAX_OFFSET_DIGITS = 11;

/**
 * The longest id a stream of `channels` channels can have: percent-encoding writes a UTF-16
 * unit as at most 9 characters (3 bytes of UTF-8). Engines' epochs take 1 each.
 */
export function maxPositionLength(channels: number): number {
  return 7 + channels * (1 + 9 * MAX_EPOCH + 1 + MAX_OFFSET_DIGITS);
}

/** The tag of a channel list: FNV-1a over the names joined by a newline (which no name holds). */
export function channelListTag(channels: readonly string[]): string {
  let hash = 0x811c9dc5;
  const text = channels.join('\n');
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(36);
}

/** One part of an id: a channel's position, or "" for none. */
export function encodePart(position: ChannelPosition | null): string {
  return position === null ? '' : `${encodeURIComponent(position.epoch)}:${position.offset.toString(36)}`;
}

/** What a resumed id says, read against the stream's channel list. */
export type ResumeFrom =
  | { ok: true; positions: Array<ChannelPosition | null> }
  /** Written for another channel list: it says nothing about where these channels stood. */
  | { ok: true; positions: null }
  | { ok: false; message: string };

const OFFSET = /^[0-9a-z]{1,11}$/;
const TAG = /^[0-9a-z]{1,7}$/;

/** Reads an id (`Last-Event-ID` or `since`) for the stream of `channels`. */
export function decodePosition(text: string, channels: readonly string[]): ResumeFrom {
  if (text.length > maxPositionLength(channels.length)) {
    return { ok: false, message: `the position is ${text.length} characters long, more than ${channels.length} channels can need` };
  }
  const parts = text.split(',');
  if (!TAG.test(parts[0]!)) return { ok: false, message: `${JSON.stringify(text.slice(0, 100))} is not a stream position (an event id of /sse)` };
  const positions: Array<ChannelPosition | null> = [];
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '') {
      positions.push(null);
      continue;
    }
    const colon = part.lastIndexOf(':');
    const offsetText = part.slice(colon + 1);
    let epoch: string;
    try {
      epoch = decodeURIComponent(part.slice(0, colon));
    } catch {
      epoch = '';
    }
    const offset = parseInt(offsetText, 36);
    if (colon < 1 || epoch.length === 0 || epoch.length > MAX_EPOCH || !OFFSET.test(offsetText) || !Number.isSafeInteger(offset)) {
      return { ok: false, message: `part ${i} of the position (${JSON.stringify(part.slice(0, 100))}) is not epoch:offset` };
    }
    positions.push({ epoch, offset });
  }
  // Well formed, but written for another channel list.
  if (parts[0] !== channelListTag(channels) || positions.length !== channels.length) return { ok: true, positions: null };
  return { ok: true, positions };
}
