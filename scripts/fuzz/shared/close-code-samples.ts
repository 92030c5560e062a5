// Known inputs that raise each peer error, so the close-code table is exercised, not only
// declared (test/fuzz.test.ts runs each one).
import { Buffer } from 'node:buffer';
import { WebSocketProtocol, type ProtocolError, type ProtocolErrorCode, type Role } from '../../../src/protocol/index.js';
import { ZlibDeflateCodec } from '../../../src/node/deflate.js';
import { concatBuffers, type Problem } from '../driver/input.js';
import { finalBlock } from './frame-corpus.js';
import { runFrames } from './frame-oracle.js';
import { closeBody, encodeSpec, parseSent, type FrameSpec, type FrameVariant } from './frames.js';

/** One or more known inputs per peer error of RFC_CLOSE_CODES (frame-oracle.ts). */
export const CLOSE_CODE_SAMPLES: ReadonlyArray<{ code: ProtocolErrorCode; role: Role; deflate: boolean; hex: string }> = (() => {
  const m = Buffer.from([1, 2, 3, 4]);
  const client = (f: Partial<FrameSpec> & { opcode: number }): FrameSpec => ({ fin: true, rsv: 0, payload: Buffer.alloc(0), mask: m, ...f });
  const enc = (...frames: FrameSpec[]): string => concatBuffers(frames.map(encodeSpec)).toString('hex');
  const garbage = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33]); // not deflate data
  // A stored block (BFINAL 0, BTYPE 00) announcing 16 bytes, of which 4 arrive.
  const storedBlockCut = Buffer.from([0x00, 0x10, 0x00, 0xef, 0xff, 0x61, 0x62, 0x63, 0x64]);
  return [
    { code: 'RESERVED_BITS', role: 'server', deflate: false, hex: enc(client({ opcode: 1, rsv: 2, payload: Buffer.from('x') })) },
    { code: 'RESERVED_BITS', role: 'server', deflate: true, hex: enc(client({ opcode: 9, rsv: 4 })) },
    { code: 'RESERVED_OPCODE', role: 'server', deflate: false, hex: enc(client({ opcode: 3 })) },
    { code: 'MASK_REQUIRED', role: 'server', deflate: false, hex: enc(client({ opcode: 1, mask: null, payload: Buffer.from('x') })) },
    { code: 'MASK_FORBIDDEN', role: 'client', deflate: false, hex: enc(client({ opcode: 1, payload: Buffer.from('x') })) },
    { code: 'CONTROL_FRAME_TOO_LONG', role: 'server', deflate: false, hex: enc(client({ opcode: 9, payload: Buffer.alloc(126) })) },
    { code: 'CONTROL_FRAME_FRAGMENTED', role: 'server', deflate: false, hex: enc(client({ opcode: 9, fin: false })) },
    { code: 'UNEXPECTED_CONTINUATION', role: 'server', deflate: false, hex: enc(client({ opcode: 0, payload: Buffer.from('x') })) },
    { code: 'EXPECTED_CONTINUATION', role: 'server', deflate: false, hex: enc(client({ opcode: 1, fin: false, payload: Buffer.from('a') }), client({ opcode: 1 })) },
    { code: 'NON_MINIMAL_LENGTH', role: 'server', deflate: false, hex: enc(client({ opcode: 2, payload: Buffer.alloc(5), form: 16 })) },
    { code: 'NON_MINIMAL_LENGTH', role: 'server', deflate: false, hex: enc(client({ opcode: 2, payload: Buffer.alloc(5), form: 64 })) },
    { code: 'LENGTH_MSB_SET', role: 'server', deflate: false, hex: enc(client({ opcode: 2, declared: 0x8000000000000000n })) },
    { code: 'MESSAGE_TOO_BIG', role: 'server', deflate: false, hex: enc(client({ opcode: 2, declared: 0x20000000000000n })) },
    { code: 'MESSAGE_TOO_BIG', role: 'server', deflate: false, hex: enc(client({ opcode: 2, declared: 2n * 1024n * 1024n })) },
    { code: 'INVALID_UTF8', role: 'server', deflate: false, hex: enc(client({ opcode: 1, payload: Buffer.from([0x61, 0xff]) })) },
    { code: 'INVALID_UTF8', role: 'server', deflate: false, hex: enc(client({ opcode: 8, payload: closeBody(1000, Buffer.from([0xc0])) })) },
    { code: 'INVALID_COMPRESSED_DATA', role: 'server', deflate: true, hex: enc(client({ opcode: 2, rsv: 4, payload: garbage })) },
    // RFC 7692 §7.2.2: data after the final block; a stream cut inside a (stored) block.
    { code: 'INVALID_COMPRESSED_DATA', role: 'server', deflate: true, hex: enc(client({ opcode: 1, rsv: 4, payload: Buffer.concat([finalBlock('done'), Buffer.from('xy')]) })) },
    { code: 'INVALID_COMPRESSED_DATA', role: 'server', deflate: true, hex: enc(client({ opcode: 2, rsv: 4, payload: storedBlockCut })) },
    { code: 'INVALID_CLOSE_PAYLOAD', role: 'server', deflate: false, hex: enc(client({ opcode: 8, payload: Buffer.from([3]) })) },
    { code: 'INVALID_CLOSE_CODE', role: 'server', deflate: false, hex: enc(client({ opcode: 8, payload: closeBody(1005) })) },
  ];
})();

/** Runs a sample through the frame target's check; returns the ProtocolError it raised and the close code queued. */
export function runCloseCodeSample(sample: (typeof CLOSE_CODE_SAMPLES)[number]): { error: ProtocolError | null; sentCode: number | null; problem: Problem | null } {
  let error: ProtocolError | null = null;
  const variant: FrameVariant = sample.deflate
    ? { maxPayload: 1 << 20, deflate: { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, label: '' }
    : { maxPayload: 1 << 20, deflate: null, label: '' };
  const protocol = new WebSocketProtocol(
    { onMessage() {}, onProtocolError: (e) => (error = e) },
    { role: sample.role, maxPayload: variant.maxPayload, deflate: variant.deflate === null ? undefined : new ZlibDeflateCodec(variant.deflate, sample.role, '') },
  );
  protocol.receiveData(Buffer.from(sample.hex, 'hex'));
  const sent = parseSent(Buffer.concat(protocol.takeOutgoing()), sample.role);
  const close = typeof sent === 'string' ? undefined : sent.find((f) => f.opcode === 8);
  const run = runFrames({ variant: 0, splits: [], data: Buffer.from(sample.hex, 'hex') }, sample.role, variant, false);
  return { error, sentCode: close !== undefined && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : null, problem: run.problem };
}
