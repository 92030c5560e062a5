// The frame targets' oracle: runs bytes through a WebSocketProtocol and checks what it
// reported and queued against RFC 6455/7692 (the close code of each error, pongs, the
// closing handshake, maxPayload, UTF-8), independently of the protocol's own checks.
import { Buffer } from 'node:buffer';
import {
  CloseCode,
  isValidWireCloseCode,
  ProtocolError,
  ProtocolState,
  WebSocketProtocol,
  type CloseInfo,
  type ProtocolErrorCode,
  type ProtocolHandler,
  type Role,
} from '../../../src/protocol/index.js';
import { ZlibDeflateCodec } from '../../../src/node/deflate.js';
import { chunksOf, type FuzzInput, type Problem } from '../driver/input.js';
import { outcome } from '../driver/outcomes.js';
import { digest, isUtf8Independent, parseSent, type FrameVariant } from './frames.js';

/**
 * The close code RFC 6455 (and RFC 7692 for permessage-deflate) gives each error of
 * src/protocol/errors.ts, with where it says so. `null`: not a peer's error, so no fuzzed
 * input may produce it. A `Record` over the union, so a new error code fails to compile
 * until it is added here.
 */
export const RFC_CLOSE_CODES: Readonly<Record<ProtocolErrorCode, { code: number | null; rule: string }>> = {
  RESERVED_BITS: {
    code: 1002,
    rule: 'RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension defines them; RFC 7692 §6: RSV1 only on the first frame of a data message; §7.4.1: 1002',
  },
  RESERVED_OPCODE: { code: 1002, rule: 'RFC 6455 §5.2: a reserved opcode fails the connection; §7.4.1: 1002' },
  MASK_REQUIRED: { code: 1002, rule: 'RFC 6455 §5.1: a server closes on an unmasked frame; §7.4.1: 1002' },
  MASK_FORBIDDEN: { code: 1002, rule: 'RFC 6455 §5.1: a client closes on a masked frame; §7.4.1: 1002' },
  CONTROL_FRAME_TOO_LONG: { code: 1002, rule: 'RFC 6455 §5.5: control payloads are at most 125 bytes; §7.4.1: 1002' },
  CONTROL_FRAME_FRAGMENTED: { code: 1002, rule: 'RFC 6455 §5.5: control frames MUST NOT be fragmented; §7.4.1: 1002' },
  UNEXPECTED_CONTINUATION: { code: 1002, rule: 'RFC 6455 §5.4: a continuation without a message to continue; §7.4.1: 1002' },
  EXPECTED_CONTINUATION: { code: 1002, rule: 'RFC 6455 §5.4: fragments of one message are not interleaved with another; §7.4.1: 1002' },
  NON_MINIMAL_LENGTH: { code: 1002, rule: 'RFC 6455 §5.2: the minimal number of bytes MUST be used to encode the length; §7.4.1: 1002' },
  LENGTH_MSB_SET: { code: 1002, rule: 'RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0; §7.4.1: 1002' },
  MESSAGE_TOO_BIG: { code: 1009, rule: 'RFC 6455 §7.4.1: 1009, a message too big to process (also once inflated, RFC 7692 §8.1 bombs)' },
  INVALID_UTF8: { code: 1007, rule: 'RFC 6455 §8.1 and §5.5.1 (close reasons): invalid UTF-8 fails the connection; §7.4.1: 1007' },
  INVALID_COMPRESSED_DATA: {
    code: 1007,
    rule: 'RFC 7692 §6.2 leaves the code open; RFC 6455 §7.4.1: 1007, data inconsistent with the message type (as ws answers)',
  },
  INVALID_CLOSE_PAYLOAD: { code: 1002, rule: 'RFC 6455 §5.5.1: a close body is empty or starts with a 2-byte code; §7.4.1: 1002' },
  INVALID_CLOSE_CODE: { code: 1002, rule: 'RFC 6455 §7.4.1/§7.4.2: codes that may not be sent (1004-1006, 1015, <1000, 1016-2999, ≥5000); 1002' },
  UNEXPECTED_EOF: { code: null, rule: 'declared but never raised; a dropped connection is 1006, which is never sent' },
  LOCAL_FAILURE: { code: null, rule: 'our own failure (1011 when a handler throws), never the peer input' },
};

export interface FrameRun {
  events: string[];
  sent: string[];
  problem: Problem | null;
}

export function runFrames(input: FuzzInput, role: Role, variant: FrameVariant, split: boolean): FrameRun {
  let problem: Problem | null = null;
  const note = (key: string, message: string): void => {
    problem ??= { key, message };
  };
  const events: string[] = [];
  const pings: Buffer[] = [];
  let error: ProtocolError | null = null;
  let closed: CloseInfo | null = null;
  const ended = (what: string): void => {
    if (error !== null || closed !== null) note('event-after-end', `${what} reported after ${error !== null ? `the failure ${error.code}` : 'the close frame'}`);
  };
  const handler: ProtocolHandler = {
    onMessage(data, binary) {
      ended('a message');
      if (variant.maxPayload > 0 && data.length > variant.maxPayload) {
        note('oversized-message', `a ${data.length}-byte message was delivered past maxPayload ${variant.maxPayload}`);
      }
      if (!binary && !isUtf8Independent(data)) note('invalid-utf8-delivered', 'a text message that is not UTF-8 was delivered');
      events.push(`message ${binary ? 'binary' : 'text'} ${data.length} ${digest(data)}`);
    },
    onPing(payload) {
      ended('a ping');
      if (payload.length > 125) note('long-ping', `a ping of ${payload.length} bytes was delivered`);
      pings.push(Buffer.from(payload));
      events.push(`ping ${payload.toString('hex')}`);
    },
    onPong(payload) {
      ended('a pong');
      events.push(`pong ${payload.toString('hex')}`);
    },
    onClose(info) {
      ended('a close frame');
      if (!(info.code === CloseCode.NoStatusReceived || isValidWireCloseCode(info.code))) {
        note('close-code-accepted', `a close frame with code ${info.code} was accepted`);
      }
      closed = info;
      events.push(`close ${info.code} ${JSON.stringify(info.reason)}`);
    },
    onProtocolError(e) {
      if (!(e instanceof ProtocolError)) note('untyped-error', `onProtocolError got ${String(e)}`);
      ended(`the failure ${e.code}`);
      error = e;
      events.push(`error ${e.code} ${e.closeCode}`);
    },
  };
  const codec = variant.deflate === null ? undefined : new ZlibDeflateCodec(variant.deflate, role, 'permessage-deflate');
  const protocol = new WebSocketProtocol(handler, { role, maxPayload: variant.maxPayload, deflate: codec });
  const out: Buffer[] = [];
  for (const chunk of chunksOf(input.data, split ? input.splits : [])) {
    protocol.receiveData(chunk);
    out.push(...protocol.takeOutgoing());
  }

  if (!split) {
    const f = error as ProtocolError | null;
    outcome(f !== null ? `error ${f.code}` : closed !== null ? 'peer close' : events.some((e) => e.startsWith('message')) ? 'messages' : 'nothing complete');
  }
  const parsed = parseSent(Buffer.concat(out), role);
  const sent: string[] = [];
  if (typeof parsed === 'string') {
    note('malformed-output', `the protocol queued ${parsed}`);
    return { events, sent, problem };
  }
  for (const f of parsed) sent.push(`${f.opcode} ${f.payload.toString('hex')}`);
  const pongs = parsed.filter((f) => f.opcode === 0xa);
  const closes = parsed.filter((f) => f.opcode === 0x8);
  if (parsed.some((f) => f.opcode !== 0xa && f.opcode !== 0x8)) note('unexpected-output', 'the protocol sent a frame other than a pong or a close');
  if (pongs.length !== pings.length || pongs.some((p, i) => !p.payload.equals(pings[i] as Buffer))) {
    note('pongs', `${pings.length} pings were answered by ${pongs.length} pongs, or with other payloads`);
  }
  if (closes.length > 1) note('two-closes', 'two close frames were queued');
  if (closes.length === 1 && parsed[parsed.length - 1]?.opcode !== 0x8) note('after-close', 'a frame was queued after the close frame');
  const closeFrame = closes[0];
  const failure = error as ProtocolError | null;
  const peerClose = closed as CloseInfo | null;
  if (failure !== null) {
    const rule = RFC_CLOSE_CODES[failure.code];
    if (rule === undefined || rule.code === null) {
      note(`unexpected-error:${failure.code}`, `peer input raised ${failure.code}, which is not a peer's error (${rule?.rule ?? 'unknown code'})`);
    } else if (failure.closeCode !== rule.code) {
      note(`close-code:${failure.code}`, `${failure.code} failed the connection with ${failure.closeCode}; ${rule.rule}`);
    }
    if (closeFrame === undefined) note(`no-close-frame:${failure.code}`, `${failure.code} queued no close frame`);
    else {
      const code = closeFrame.payload.length >= 2 ? closeFrame.payload.readUInt16BE(0) : null;
      if (code !== failure.closeCode) note(`close-frame:${failure.code}`, `${failure.code} (${failure.closeCode}) queued a close frame with ${String(code)}`);
      if (!isUtf8Independent(closeFrame.payload.subarray(2)) || closeFrame.payload.length > 125) note('close-reason', 'the close reason is not UTF-8 within 123 bytes');
    }
    if (!protocol.shouldCloseTransport || protocol.state !== ProtocolState.Closed) note('state-after-failure', 'a failed connection is not Closed, or keeps its transport');
  } else if (peerClose !== null) {
    if (closeFrame === undefined) note('close-unanswered', 'the peer close frame was not answered');
    else if (peerClose.code === CloseCode.NoStatusReceived ? closeFrame.payload.length !== 0 : closeFrame.payload.readUInt16BE(0) !== peerClose.code) {
      note('close-echo', `the answer to close ${peerClose.code} does not echo it`);
    }
    if (protocol.shouldCloseTransport !== (role === 'server')) note('close-transport', 'after the closing handshake, only the server closes TCP first (RFC 6455 §7.1.1)');
  } else if (closeFrame !== undefined) {
    note('spurious-close', 'a close frame was queued with neither a failure nor a peer close');
  }
  return { events, sent, problem };
}
