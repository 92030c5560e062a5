import { Buffer } from 'node:buffer';
import { CloseCode, isValidWireCloseCode } from './close-code.js';
import { ProtocolError } from './errors.js';
import { isValidUtf8 } from './utf8.js';

/** A close reason may take what is left of a control frame's 125 bytes after the code. */
export const MAX_CLOSE_REASON_BYTES = 123;

/** A close frame's content, as {@link parseClosePayload} read it. */
export interface CloseInfo {
  /** The code in the frame, or 1005 (NoStatusReceived) when it had none. */
  code: number;
  /** The UTF-8 reason, at most 123 bytes; empty when the frame had none. */
  reason: string;
}

/** Parses a received close frame's payload (RFC 6455 §5.5.1, §7.4). */
export function parseClosePayload(payload: Uint8Array): CloseInfo {
  if (payload.length === 0) return { code: CloseCode.NoStatusReceived, reason: '' };
  if (payload.length === 1) {
    throw new ProtocolError(
      'INVALID_CLOSE_PAYLOAD',
      CloseCode.ProtocolError,
      'close frame payload of one byte',
    );
  }
  const code = (payload[0]! << 8) | payload[1]!;
  if (!isValidWireCloseCode(code)) {
    throw new ProtocolError('INVALID_CLOSE_CODE', CloseCode.ProtocolError, `invalid close code ${code}`);
  }
  // Most close frames carry a code alone (every closing handshake of a bench, most clients').
  if (payload.length === 2) return { code, reason: '' };
  const reasonBytes = payload.subarray(2);
  if (!isValidUtf8(reasonBytes)) {
    throw new ProtocolError('INVALID_UTF8', CloseCode.InvalidPayload, 'close reason is not valid UTF-8');
  }
  const reason = Buffer.from(reasonBytes.buffer, reasonBytes.byteOffset, reasonBytes.length).toString();
  return { code, reason };
}

/**
 * The payload of a close frame to send. Without a code the payload is empty. Throws a
 * RangeError for a code that may not be sent or a reason over 123 bytes of UTF-8.
 */
export function encodeClosePayload(code?: number, reason = ''): Buffer {
  if (code === undefined) {
    if (reason !== '') throw new RangeError('a close reason needs a close code');
    return Buffer.alloc(0);
  }
  if (!isValidWireCloseCode(code)) throw new RangeError(`close code ${code} may not be sent`);
  const reasonLength = Buffer.byteLength(reason);
  if (reasonLength > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(`close reason is ${reasonLength} bytes; the limit is ${MAX_CLOSE_REASON_BYTES}`);
  }
  const payload = Buffer.allocUnsafe(2 + reasonLength);
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
}
