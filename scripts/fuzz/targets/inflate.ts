// inflate: compressed messages that inflate big, sent at full speed to a server whose codec
// takes every inflated message from an inflate budget (inflateRate), on a clock that only
// moves while the server pauses reading, as a connection does. The corpus holds bombs at
// and past maxPayload, runs of messages that overdraw the budget, fragmented bombs, and
// deflate streams that end wrongly (data after the final block, a cut inside a block).
// Besides the frame oracle:
//   - no message inflates past maxPayload (1009 instead), so no message takes more than
//     maxPayload from the budget;
//   - nothing is inflated while the budget is in debt: before each message, what was
//     inflated is within the burst plus the rate times the time reading was paused;
//   - pausing changes nothing the application sees: the same messages, in the same order,
//     and the same failure as without a budget.
import { Buffer } from 'node:buffer';
import { constants as zlib, deflateRawSync } from 'node:zlib';
import type { ProtocolError} from '../../../src/protocol/index.js';
import { WebSocketProtocol, type DeflateParams } from '../../../src/protocol/index.js';
import { ZlibDeflateCodec } from '../../../src/node/deflate.js';
import { InflateBudget } from '../../../src/node/inflate-budget.js';
import { chooseSplits, chunksOf, concatBuffers, type FuzzInput, type Problem, type Target, withVariants } from '../driver/input.js';
import { mutateBytes } from '../driver/mutate.js';
import { outcome } from '../driver/outcomes.js';
import { Rng } from '../driver/rng.js';
import { runFrames } from '../shared/frame-oracle.js';
import { digest, encodeSpec, type FrameSpec, type FrameVariant } from '../shared/frames.js';

interface InflateVariant extends FrameVariant {
  deflate: DeflateParams;
  /** inflateRate, bytes per second. */
  rate: number;
}

const RATES = [16 * 1024, 1 << 20];
const MAX_RATE = Math.max(...RATES);

const VARIANTS: readonly InflateVariant[] = (() => {
  const out: InflateVariant[] = [];
  for (const noTakeover of [true, false]) {
    for (const maxPayload of [4096, 65536, 262144]) {
      for (const rate of RATES) {
        out.push({
          maxPayload,
          rate,
          deflate: { serverNoContextTakeover: true, clientNoContextTakeover: noTakeover, serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
          label: `maxPayload ${maxPayload}, inflateRate ${rate}/s, ${noTakeover ? 'no context takeover' : 'context takeover'}`,
        });
      }
    }
  }
  return out;
})();

const DICT = [[0xc1], [0xc2], [0x80], [0x00], [0x01], [0x03], [0xff], [0x00, 0x00, 0xff, 0xff]].map((b) => Buffer.from(b));

/** Compressible text of `n` bytes. */
function text(n: number, seed: string): Buffer {
  return Buffer.from(seed.repeat(Math.ceil(n / seed.length) + 1)).subarray(0, n);
}

/** The corpus of one configuration: message sequences as a client with that configuration sends them. */
function buildCorpus(variant: InflateVariant, index: number): FrameSpec[][] {
  const rng = new Rng(0x1f1a7e, index);
  const max = variant.maxPayload;
  let codec = new ZlibDeflateCodec(variant.deflate, 'client', 'permessage-deflate');
  const frame = (opcode: number, payload: Buffer, rsv = 0, fin = true): FrameSpec => ({ fin, rsv, opcode, payload, mask: rng.bytes(4) });
  const compressed = (data: Buffer, opcode = 1): FrameSpec => frame(opcode, codec.compress(data)!, 4);
  const fragmentedBomb = (data: Buffer, pieces: number): FrameSpec[] => {
    const body = codec.compress(data)!;
    const size = Math.max(1, Math.ceil(body.length / pieces));
    const out: FrameSpec[] = [];
    for (let from = 0; from < body.length; from += size) out.push(frame(from === 0 ? 1 : 0, body.subarray(from, from + size), from === 0 ? 4 : 0, from + size >= body.length));
    return out;
  };
  // A complete deflate stream (its last block final) followed by more data.
  const afterFinal = (data: Buffer, extra: Buffer): FrameSpec => frame(1, Buffer.concat([deflateRawSync(data, { finishFlush: zlib.Z_FINISH }), extra]), 4);
  const cutInsideBlock = (data: Buffer, cut: number): FrameSpec => {
    const body = codec.compress(data)!;
    return frame(1, body.subarray(0, Math.max(1, body.length - cut)), 4);
  };
  const items: Array<() => FrameSpec[]> = [
    () => [compressed(text(max - 1, 'a'))],
    () => [compressed(text(max, 'ab'))],
    () => [compressed(text(max + 1, 'abc'))],
    () => [compressed(text(4 * max, 'z'))],
    () => Array.from({ length: 8 }, (_, i) => compressed(text(max >> 1, `message ${i} `))),
    () => Array.from({ length: 24 }, () => compressed(text(max >> 3, 'q'), 2)),
    // Twice the largest burst (one second at the fastest rate, or one maxPayload) in messages just under maxPayload.
    () => Array.from({ length: 2 + Math.ceil((2 * Math.max(MAX_RATE, max)) / (max - 1)) }, (_, i) => compressed(text(max - 1, i % 2 === 0 ? 'x' : 'y'))),
    () => fragmentedBomb(text(2 * max, 'bomb '), 4),
    () => fragmentedBomb(text(max >> 1, 'half '), 16),
    () => [compressed(text(300, 'hello hotline ')), frame(1, Buffer.from('plain')), compressed(text(300, 'hello hotline '))],
    () => [afterFinal(text(200, 'final '), Buffer.from([0x00]))],
    () => [afterFinal(text(200, 'final '), Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]))],
    () => [afterFinal(text(200, 'final '), deflateRawSync(text(50, 'second stream '), { finishFlush: zlib.Z_FINISH }))],
    () => [afterFinal(text(max + 10, 'final bomb '), Buffer.from('trailing'))],
    () => [cutInsideBlock(rng.bytes(400), 1 + rng.int(4))],
    () => [cutInsideBlock(text(max >> 2, 'cut me '), 1)],
    () => [compressed(text(1000, 'ok ')), cutInsideBlock(text(1000, 'cut '), 2), compressed(text(1000, 'never read '))],
  ];
  return items.map((build) => {
    codec = new ZlibDeflateCodec(variant.deflate, 'client', 'permessage-deflate');
    return build();
  });
}

export function inflateTarget(): Target {
  // The corpus depends on maxPayload and takeover only, not on the rate.
  const corpora = new Map<string, { specs: FrameSpec[][]; bytes: Buffer[] }>();
  const corpusFor = (v: number): { specs: FrameSpec[][]; bytes: Buffer[] } => {
    const variant = VARIANTS[v]!;
    const key = `${variant.maxPayload} ${variant.deflate.clientNoContextTakeover}`;
    let c = corpora.get(key);
    if (c === undefined) {
      const specs = buildCorpus(variant, corpora.size);
      c = { specs, bytes: specs.map((s) => concatBuffers(s.map(encodeSpec))) };
      corpora.set(key, c);
    }
    return c;
  };
  return withVariants(VARIANTS, {
    name: 'inflate',
    description: 'compressed messages that inflate big, at full speed, through an inflate budget on a paused-time clock: 1009 past maxPayload, no inflating in debt, pauses change nothing delivered',
    prepare() {
      for (let v = 0; v < VARIANTS.length; v++) corpusFor(v);
    },
    generate(rng, variant) {
      const corpus = corpusFor(variant);
      let specs = [...rng.pick(corpus.specs)];
      if (rng.chance(0.3)) specs = [...specs, ...rng.pick(corpus.specs)];
      let data = concatBuffers(specs.map(encodeSpec));
      if (rng.chance(0.3)) data = mutateBytes(rng, data, corpus.bytes, DICT, 1 + rng.size(4), 4 << 20);
      return { splits: chooseSplits(rng, data.length), data };
    },
    check(input, variant) {
      const whole = runFrames(input, 'server', variant, false);
      if (whole.problem !== null) return whole.problem;
      return checkBudget(input, variant, whole.events);
    },
  });
}

/** An inflate budget whose clock is the time reading was paused; it records what each message took. */
class PausedClockBudget extends InflateBudget {
  now = 0;
  spent = 0;
  problem: Problem | null = null;

  constructor(
    private readonly perSecond: number,
    private readonly burstBytes: number,
    private readonly maxPayload: number,
  ) {
    super(perSecond, burstBytes, 0);
  }

  override spend(bytes: number): void {
    const allowance = this.burstBytes + (this.perSecond * this.now) / 1000;
    if (bytes > this.maxPayload) this.problem ??= { key: 'inflated-past-max', message: `one message took ${bytes} bytes from the budget, past maxPayload ${this.maxPayload}` };
    if (this.spent > allowance + 1) {
      this.problem ??= { key: 'inflated-in-debt', message: `a message was inflated with ${this.spent} bytes inflated in ${this.now} ms of pauses (allowance ${Math.floor(allowance)}: burst ${this.burstBytes} + ${this.perSecond}/s)` };
    }
    this.spent += bytes;
    super.spend(bytes, this.now);
  }
}

function checkBudget(input: FuzzInput, variant: InflateVariant, unpaced: readonly string[]): Problem | null {
  const budget = new PausedClockBudget(variant.rate, Math.max(variant.rate, variant.maxPayload), variant.maxPayload);
  const events: string[] = [];
  let pauses = 0;
  const protocol = new WebSocketProtocol(
    {
      onMessage(data, binary) {
        events.push(`message ${binary ? 'binary' : 'text'} ${data.length} ${digest(data)}`);
        // As a connection does: a message that overdrew the budget pauses reading after it.
        const ms = budget.takePause();
        if (ms > 0) {
          pauses++;
          budget.now += ms;
          protocol.pause();
        }
      },
      onProtocolError: (e: ProtocolError) => events.push(`error ${e.code} ${e.closeCode}`),
      onClose: (info) => events.push(`close ${info.code} ${JSON.stringify(info.reason)}`),
    },
    { role: 'server', maxPayload: variant.maxPayload, deflate: new ZlibDeflateCodec(variant.deflate, 'server', 'permessage-deflate', {}, budget) },
  );
  for (const chunk of chunksOf(input.data, input.splits)) {
    protocol.receiveData(chunk);
    // The pause is over (the clock moved when it was taken): read what was kept, which may pause again.
    while (protocol.paused) protocol.resume();
    protocol.takeOutgoing();
  }
  if (budget.problem !== null) return budget.problem;
  outcome(pauses > 0 ? 'paused for the inflate budget' : 'within the inflate budget');
  const expected = unpaced.filter((e) => !e.startsWith('ping') && !e.startsWith('pong'));
  for (let i = 0; i < Math.max(expected.length, events.length); i++) {
    if (expected[i] !== events[i]) {
      return { key: 'budget-changes-delivery', message: `with the inflate budget, event ${i} is "${events[i] ?? '(none)'}"; without it "${expected[i] ?? '(none)'}"` };
    }
  }
  return null;
}
