// The frame targets' corpus: valid (and a few deliberately invalid) frame sequences from
// the fuzzed side's peer, compressed by a peer codec when permessage-deflate is on.
import { Buffer } from 'node:buffer';
import type { Role } from '../../../src/protocol/index.js';
import { constants as zlib, deflateRawSync } from 'node:zlib';
import { ZlibDeflateCodec } from '../../../src/node/deflate.js';
import { Rng } from '../driver/rng.js';
import { closeBody, type FrameSpec, type FrameVariant } from './frames.js';

/** Valid (and a few deliberately invalid) frame sequences from the fuzzed side's peer. */
export function buildFrameCorpus(role: Role, variant: FrameVariant, index: number): FrameSpec[][] {
  const rng = new Rng(0x5eed, index);
  const peerMasks = role === 'server';
  const mask = (): Buffer | null => (peerMasks ? rng.bytes(4) : null);
  const peerRole: Role = role === 'server' ? 'client' : 'server';
  let codec: ZlibDeflateCodec | null = null;
  const fresh = (): void => {
    codec = variant.deflate === null ? null : new ZlibDeflateCodec(variant.deflate, peerRole, 'permessage-deflate');
  };
  const control = (opcode: number, payload: Buffer): FrameSpec => ({ fin: true, rsv: 0, opcode, payload, mask: mask() });
  const message = (opcode: number, bytes: Buffer, pieces = 1, compress = false): FrameSpec[] => {
    let body = bytes;
    let rsv = 0;
    if (compress && codec !== null) {
      const compressed = (codec as ZlibDeflateCodec).compress(bytes);
      if (compressed !== null) {
        body = compressed;
        rsv = 4;
      } else if (body.length > 70_000) {
        // A window of 8 cannot compress: keep the bomb's uncompressed form small.
        body = body.subarray(0, 70_000);
      }
    }
    const frames: FrameSpec[] = [];
    const size = Math.max(1, Math.ceil(body.length / pieces));
    for (let i = 0; i < pieces; i++) {
      const part = body.subarray(i * size, (i + 1) * size);
      frames.push({ fin: i === pieces - 1, rsv: i === 0 ? rsv : 0, opcode: i === 0 ? opcode : 0, payload: Buffer.from(part), mask: mask() });
    }
    return frames;
  };
  const text = (s: string, pieces = 1, compress = false): FrameSpec[] => message(1, Buffer.from(s), pieces, compress);
  const items: Array<() => FrameSpec[]> = [
    () => text('Hello, hotline'),
    () => message(2, Buffer.from(Array.from({ length: 256 }, (_, i) => i))),
    () => text(''),
    () => message(2, Buffer.alloc(0)),
    () => text('fragmented message', 3),
    () => [...text('one', 1), control(0x9, Buffer.from('ping')), ...text('two')],
    () => {
      const [a, b] = text('interleaved control', 2);
      return [a as FrameSpec, control(0x9, Buffer.from('mid')), control(0xa, Buffer.alloc(0)), b as FrameSpec];
    },
    () => message(1, Buffer.from('€ and 𝄞 and ü, split inside characters'), 7),
    () => [control(0x9, Buffer.alloc(0)), control(0x9, Buffer.alloc(125, 0x70)), control(0xa, Buffer.from('pong'))],
    () => [control(0x8, closeBody(1000, 'bye'))],
    () => [control(0x8, Buffer.alloc(0))],
    () => [...text('before close'), control(0x8, closeBody(4000, 'ä reason')), ...text('after close')],
    () => message(2, Buffer.alloc(300, 0x42)),
    () => message(2, rng.bytes(66_000)),
    () => [...text('a'), ...message(2, Buffer.from([1, 2, 3])), control(0x9, Buffer.from('x')), ...text('b'), control(0x8, closeBody(1001))],
    () => [{ fin: true, rsv: 0, opcode: 1, payload: Buffer.from('non-minimal'), mask: mask(), form: 16 }],
    () => message(1, Buffer.from('x'.repeat(1030))),
    () => message(1, Buffer.concat([Buffer.from('bad utf-8: '), Buffer.from([0xed, 0xa0, 0x80])])),
  ];
  if (variant.deflate !== null) {
    items.push(
      () => text('Hello hello hello hello hello', 1, true),
      () => message(2, Buffer.from(Array.from({ length: 2000 }, (_, i) => i % 7)), 1, true),
      () => text('', 1, true),
      () => text('a'.repeat(200_000), 1, true), // inflates past every maxPayload but the largest: a bomb
      () => text('b'.repeat(1_100_000), 1, true), // a bomb past all of them
      () => text('compressed and fragmented, '.repeat(20), 3, true),
      () => [...text('context one two three', 1, true), ...text('context one two three four', 1, true), ...text('plain'), ...text('context one two three four five', 1, true)],
      () => message(1, Buffer.concat([Buffer.from('inflates to bad utf-8 '.repeat(5)), Buffer.from([0xff])]), 1, true),
      () => {
        const [first, second] = text('a ping between the fragments of a compressed message', 2, true);
        return [first as FrameSpec, control(0x9, Buffer.from('p')), second as FrameSpec];
      },
      // Deflate streams that end wrongly (1007): data after a final block of the message's
      // own, and a message cut inside a block; then one whose final block is followed only
      // by the empty stored block's header bits RFC 7692 §7.2.3.4 allows.
      () => [{ fin: true, rsv: 4, opcode: 1, payload: Buffer.concat([finalBlock('complete stream, then more'), Buffer.from('more')]), mask: mask() }],
      () => [{ fin: true, rsv: 4, opcode: 1, payload: Buffer.concat([finalBlock('two final blocks'), finalBlock('two final blocks')]), mask: mask() }],
      () => {
        const [frame] = message(2, rng.bytes(400), 1, true);
        return [{ ...(frame as FrameSpec), payload: (frame as FrameSpec).payload.subarray(0, -3) }];
      },
      () => [{ fin: true, rsv: 4, opcode: 1, payload: Buffer.concat([finalBlock('final, then an empty header'), Buffer.from([0x00])]), mask: mask() }],
    );
  }
  return items.map((build) => {
    fresh();
    return build();
  });
}

/** A complete raw deflate stream of `text`: its last block has BFINAL set. */
export function finalBlock(text: string): Buffer {
  return deflateRawSync(Buffer.from(text), { finishFlush: zlib.Z_FINISH });
}
