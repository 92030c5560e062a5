import { isUtf8 } from 'node:buffer';

/** Below this many bytes the byte-wise automaton beats a call into the native validator. */
const NATIVE_THRESHOLD = 64;

/**
 * An incremental UTF-8 validator (RFC 3629: no overlongs, no surrogates, nothing above
 * U+10FFFF) that fails at the first byte after which no continuation could make the
 * stream valid. It is fed a text message piece by piece as its bytes arrive, so a
 * connection can be failed with 1007 mid-frame rather than once the message is complete.
 */
export class Utf8Validator {
  /** Continuation bytes still expected for the current code point. */
  private pending = 0;
  /** Allowed range of the next continuation byte (narrowed after E0, ED, F0, F4). */
  private low = 0x80;
  private high = 0xbf;
  private failed = false;

  /** Whether the bytes so far end on a code point boundary (and were valid). */
  get complete(): boolean {
    return this.pending === 0 && !this.failed;
  }

  /** Starts over for a new message, forgetting a partial code point and an earlier failure. */
  reset(): void {
    this.pending = 0;
    this.low = 0x80;
    this.high = 0xbf;
    this.failed = false;
  }

  /** Feeds `bytes[start, end)`. Returns false once the stream so far cannot be valid. */
  feed(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    if (this.failed) return false;
    let i = start;
    // Finish a code point that an earlier piece began.
    while (this.pending > 0 && i < end) {
      const b = bytes[i++]!;
      if (b < this.low || b > this.high) return this.fail();
      this.low = 0x80;
      this.high = 0xbf;
      this.pending--;
    }
    if (end - i >= NATIVE_THRESHOLD) {
      const boundary = lastBoundary(bytes, i, end);
      if (!isUtf8(bytes.subarray(i, boundary))) return this.fail();
      i = boundary;
    }
    return this.scan(bytes, i, end);
  }

  private scan(bytes: Uint8Array, start: number, end: number): boolean {
    let pending = this.pending;
    let low = this.low;
    let high = this.high;
    for (let i = start; i < end; i++) {
      const b = bytes[i]!;
      if (pending === 0) {
        if (b < 0x80) continue;
        if (b < 0xc2) return this.fail();
        if (b < 0xe0) {
          pending = 1;
        } else if (b < 0xf0) {
          pending = 2;
          if (b === 0xe0) low = 0xa0;
          else if (b === 0xed) high = 0x9f;
        } else if (b < 0xf5) {
          pending = 3;
          if (b === 0xf0) low = 0x90;
          else if (b === 0xf4) high = 0x8f;
        } else {
          return this.fail();
        }
      } else {
        if (b < low || b > high) return this.fail();
        low = 0x80;
        high = 0xbf;
        pending--;
      }
    }
    this.pending = pending;
    this.low = low;
    this.high = high;
    return true;
  }

  private fail(): false {
    this.failed = true;
    return false;
  }
}

/**
 * The index where a trailing, possibly unfinished code point begins in `bytes[start, end)`,
 * or `end` when the range ends on a boundary. A lead byte that is itself invalid counts as
 * complete, so the native validator sees and rejects it.
 */
function lastBoundary(bytes: Uint8Array, start: number, end: number): number {
  const stop = Math.max(start, end - 3);
  for (let i = end - 1; i >= stop; i--) {
    const b = bytes[i]!;
    if ((b & 0xc0) === 0x80) continue;
    const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return i + length > end ? i : end;
  }
  return end;
}

/** Whether `bytes` is, as a whole, valid UTF-8. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  if (bytes.length >= NATIVE_THRESHOLD) return isUtf8(bytes);
  const validator = new Utf8Validator();
  return validator.feed(bytes) && validator.complete;
}
