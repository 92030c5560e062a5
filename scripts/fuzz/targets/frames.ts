// frame-server, frame-client, frame-server-deflate, frame-client-deflate: WebSocketProtocol
// in either role, with and without permessage-deflate, fed corpus frame sequences mutated
// structurally and byte-wise, whole and split at random points (the same events either way).
import { Buffer } from 'node:buffer';
import type { Role } from '../../../src/protocol/index.js';
import { chooseSplits, concatBuffers, type Target, withVariants } from '../driver/input.js';
import { INTERESTING_NUMBERS, mutateBytes } from '../driver/mutate.js';
import type { Rng } from '../driver/rng.js';
import { buildFrameCorpus } from '../shared/frame-corpus.js';
import { runFrames } from '../shared/frame-oracle.js';
import { CLOSE_CODES, closeBody, encodeSpec, frameVariants, INVALID_UTF8, type FrameSpec, type FrameVariant } from '../shared/frames.js';

export function frameTarget(role: Role, deflate: boolean): Target {
  const variants = frameVariants(role, deflate);
  // The corpus depends on the deflate parameters only, not on maxPayload.
  const corpora = new Map<string, { specs: FrameSpec[][]; bytes: Buffer[] }>();
  const corpusFor = (v: number): { specs: FrameSpec[][]; bytes: Buffer[] } => {
    const variant = variants[v] as FrameVariant;
    const key = JSON.stringify(variant.deflate);
    let c = corpora.get(key);
    if (c === undefined) {
      const specs = buildFrameCorpus(role, variant, corpora.size);
      c = { specs, bytes: specs.map((s) => concatBuffers(s.map(encodeSpec))) };
      corpora.set(key, c);
    }
    return c;
  };
  const peerMasks = role === 'server';
  const dict = [[0x81], [0x82], [0x01], [0x00], [0x88], [0x89], [0x8a], [0xc1], [0x7e], [0x7f], [0xfe], [0xff], [0x80], [0x88, 0x80], [0x89, 0x80]].map((b) => Buffer.from(b));

  const randomSpec = (rng: Rng): FrameSpec => ({
    fin: rng.chance(0.8),
    rsv: rng.chance(0.8) ? 0 : rng.chance(0.6) ? 4 : rng.int(8),
    opcode: rng.pick([0, 1, 1, 2, 2, 8, 9, 10, 3, 11, rng.int(16)]),
    payload: rng.chance(0.3) ? rng.pick(INVALID_UTF8) : rng.bytes(rng.size(300)),
    mask: (rng.chance(0.9) ? peerMasks : !peerMasks) ? rng.bytes(4) : null,
  });

  const mutateSpecs = (rng: Rng, specs: FrameSpec[], corpus: FrameSpec[][]): FrameSpec[] => {
    if (specs.length === 0) return [randomSpec(rng)];
    const i = rng.int(specs.length);
    const f = { ...(specs[i] as FrameSpec) };
    switch (rng.int(14)) {
      case 0:
        f.fin = !f.fin;
        break;
      case 1:
        f.rsv = rng.chance(0.5) ? f.rsv ^ 4 : rng.int(8);
        break;
      case 2:
        f.opcode = rng.chance(0.7) ? rng.pick([0, 1, 2, 8, 9, 10]) : rng.int(16);
        break;
      case 3:
        f.mask = f.mask === null ? rng.bytes(4) : null;
        break;
      case 4:
        f.form = rng.pick([7, 16, 64] as const);
        break;
      case 5: {
        const n = BigInt(f.payload.length);
        const max = BigInt(rng.pick([125, 1024, 65536, 1 << 20]));
        f.declared = rng.chance(0.2)
          ? 0x8000000000000000n | (BigInt(rng.u32()) << 16n) // the most significant bit set
          : rng.pick([...INTERESTING_NUMBERS, n - 1n < 0n ? 0n : n - 1n, n + 1n, max, max + 1n, BigInt(rng.u32())]);
        break;
      }
      case 6: {
        // Payload bit flips before masking: what the receiver sees unmasked.
        const p = Buffer.from(f.payload);
        if (p.length > 0) {
          const at = rng.int(p.length);
          p[at] = (p[at] as number) ^ (1 << rng.int(8));
        }
        f.payload = p;
        break;
      }
      case 7: {
        const at = rng.int(f.payload.length + 1);
        f.payload = rng.chance(0.5) ? f.payload.subarray(0, at) : concatBuffers([f.payload.subarray(0, at), rng.pick(INVALID_UTF8), f.payload.subarray(at)]);
        break;
      }
      case 8: {
        // Repeated fragments.
        const copies = Array<FrameSpec>(1 + rng.size(15)).fill(f);
        return [...specs.slice(0, i), ...copies, ...specs.slice(i + 1)];
      }
      case 9:
        return [...specs.slice(0, i), ...specs.slice(i + 1)];
      case 10: {
        const j = rng.int(specs.length);
        const out = [...specs];
        out[i] = specs[j] as FrameSpec;
        out[j] = specs[i] as FrameSpec;
        return out;
      }
      case 11: {
        const other = rng.pick(corpus);
        const from = rng.int(other.length + 1);
        return [...specs.slice(0, i), ...other.slice(from, from + 1 + rng.int(3)), ...specs.slice(i)];
      }
      case 12: {
        const opcode = rng.pick([8, 9, 10]);
        const payload = opcode === 8 ? closeBody(rng.pick(CLOSE_CODES), rng.chance(0.3) ? rng.pick(INVALID_UTF8) : 'r'.repeat(rng.size(124))) : rng.bytes(rng.size(130));
        return [...specs.slice(0, i), { fin: rng.chance(0.9), rsv: 0, opcode, payload, mask: peerMasks ? rng.bytes(4) : null }, ...specs.slice(i)];
      }
      case 13: {
        // Close bodies: a code and a reason (valid or not), one byte, or nothing.
        const r = rng.float();
        f.payload = r < 0.6 ? closeBody(rng.pick(CLOSE_CODES), rng.chance(0.5) ? rng.pick(INVALID_UTF8) : '') : r < 0.8 ? rng.bytes(1) : Buffer.alloc(0);
        f.opcode = 8;
        break;
      }
    }
    const out = [...specs];
    out[i] = f;
    return out;
  };

  return withVariants(variants, {
    name: `frame-${role}${deflate ? '-deflate' : ''}`,
    description: `WebSocketProtocol as a ${role}${deflate ? ' with permessage-deflate (ZlibDeflateCodec)' : ''}: frames split at random points`,
    prepare() {
      for (let v = 0; v < variants.length; v++) corpusFor(v);
    },
    generate(rng, variant) {
      const corpus = corpusFor(variant);
      const r = rng.float();
      let data: Buffer;
      if (r < 0.08) {
        data = rng.bytes(rng.size(1024));
      } else {
        let specs: FrameSpec[];
        if (r < 0.2) specs = Array.from({ length: 1 + rng.int(6) }, () => randomSpec(rng));
        else {
          specs = [...rng.pick(corpus.specs)];
          if (rng.chance(0.2)) specs.push(...rng.pick(corpus.specs));
        }
        const rounds = rng.chance(0.3) ? 0 : 1 + rng.size(6);
        for (let i = 0; i < rounds; i++) specs = mutateSpecs(rng, specs, corpus.specs);
        data = concatBuffers(specs.map(encodeSpec));
        if (rng.chance(0.35)) data = mutateBytes(rng, data, corpus.bytes, dict, 1 + rng.size(7));
      }
      return { splits: chooseSplits(rng, data.length), data };
    },
    check(input, variant) {
      const whole = runFrames(input, role, variant, false);
      if (whole.problem !== null) return whole.problem;
      if (input.splits.length === 0) return null;
      const pieces = runFrames(input, role, variant, true);
      if (pieces.problem !== null) return pieces.problem;
      const a = [...whole.events, '|', ...whole.sent];
      const b = [...pieces.events, '|', ...pieces.sent];
      const n = Math.max(a.length, b.length);
      for (let i = 0; i < n; i++) {
        if (a[i] !== b[i]) {
          return { key: 'split-dependent', message: `split input gives a different outcome at event ${i}: whole "${a[i] ?? '(none)'}", split "${b[i] ?? '(none)'}"` };
        }
      }
      return null;
    },
  });
}
