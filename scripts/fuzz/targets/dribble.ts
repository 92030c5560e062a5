// dribble: frames and fragmented messages dribbled across many reads (a byte, or a few, at
// a time), as a slowloris peer sends them. A server's messageTimeout rests on the
// protocol's partial-frame state: `receivingPartial` must be true exactly while part of a
// frame or of a fragmented message has arrived (however the bytes were cut), and
// `receivedCount` must change exactly when a message or a control frame outside a message
// completes, or a dribbling peer would be timed out wrongly, or never. Both are compared,
// after every read, with an independent reading of the bytes (shared/frame-walk.ts).
import { Buffer } from 'node:buffer';
import { WebSocketProtocol } from '../../../src/protocol/index.js';
import { concatBuffers, type FuzzInput, type Problem, type Target, withVariants } from '../driver/input.js';
import { mutateBytes } from '../driver/mutate.js';
import { outcome } from '../driver/outcomes.js';
import type { Rng } from '../driver/rng.js';
import { buildFrameCorpus } from '../shared/frame-corpus.js';
import { runFrames } from '../shared/frame-oracle.js';
import { readStates, walkFrames } from '../shared/frame-walk.js';
import { encodeSpec, type FrameSpec, type FrameVariant } from '../shared/frames.js';

const VARIANTS: readonly FrameVariant[] = [0, 125, 65536].map((maxPayload) => ({ maxPayload, deflate: null, label: `maxPayload ${maxPayload}` }));
/** Inputs stay small: each byte may be a read of its own. */
const MAX_INPUT = 8192;
const DICT = [[0x81], [0x01], [0x00], [0x80], [0x88], [0x89], [0x8a], [0xfe], [0x7e]].map((b) => Buffer.from(b));

/** A data message cut into `pieces` fragments, with a ping or pong after some of them. */
function refragment(rng: Rng, payload: Buffer, opcode: number, pieces: number): FrameSpec[] {
  const out: FrameSpec[] = [];
  const size = Math.max(1, Math.ceil(payload.length / pieces));
  for (let i = 0, from = 0; from < payload.length || i === 0; i++, from += size) {
    const fin = from + size >= payload.length;
    out.push({ fin, rsv: 0, opcode: i === 0 ? opcode : 0, payload: payload.subarray(from, from + size), mask: rng.bytes(4) });
    if (!fin && rng.chance(0.3)) out.push({ fin: true, rsv: 0, opcode: rng.pick([0x9, 0xa]), payload: rng.bytes(rng.size(20)), mask: rng.bytes(4) });
  }
  return out;
}

function dribbleSplits(rng: Rng, length: number): number[] {
  const step = rng.chance(0.6) ? 1 : 1 + rng.int(rng.pick([3, 16]));
  const splits: number[] = [];
  for (let at = step; at < length; at += rng.chance(0.9) ? step : 1 + rng.int(64)) splits.push(at);
  return splits;
}

export function dribbleTarget(): Target {
  const corpus = buildFrameCorpus('server', VARIANTS[0]!, 0);
  const pool = corpus.map((specs) => concatBuffers(specs.map(encodeSpec)));
  return withVariants(VARIANTS, {
    name: 'dribble',
    description: 'frames and fragmented messages dribbled a byte or a few at a time: receivingPartial and receivedCount after every read match an independent reading',
    generate(rng) {
      const specs: FrameSpec[] = [];
      for (let n = 1 + rng.int(4); n > 0; n--) {
        if (rng.chance(0.6)) specs.push(...rng.pick(corpus));
        else if (rng.chance(0.5)) specs.push(...refragment(rng, rng.bytes(rng.size(300)), 2, 1 + rng.size(40)));
        else specs.push(...refragment(rng, Buffer.from('dribbled é€ text '.repeat(1 + rng.int(12))), 1, 1 + rng.size(40)));
      }
      let data = concatBuffers(specs.map(encodeSpec));
      if (rng.chance(0.3)) data = mutateBytes(rng, data, pool, DICT, 1 + rng.size(4), MAX_INPUT);
      // An unfinished frame or message at the end: the state a dribbling peer leaves.
      if (rng.chance(0.5)) data = data.subarray(0, data.length - rng.int(Math.min(data.length, 12)));
      if (data.length > MAX_INPUT) data = data.subarray(0, MAX_INPUT);
      return { splits: dribbleSplits(rng, data.length), data };
    },
    check(input, variant) {
      const whole = runFrames(input, 'server', variant, false);
      if (whole.problem !== null) return whole.problem;
      return checkPartialState(input, variant);
    },
  });
}

function checkPartialState(input: FuzzInput, variant: FrameVariant): Problem | null {
  const data = input.data;
  const states = readStates(walkFrames(data), data.length);
  let stopped = false;
  const protocol = new WebSocketProtocol(
    { onMessage() {}, onClose: () => (stopped = true), onProtocolError: () => (stopped = true) },
    { role: 'server', maxPayload: variant.maxPayload },
  );
  const copy = Buffer.from(data);
  let from = 0;
  let lastCount = 0;
  let partialReads = 0;
  for (const to of [...input.splits.filter((s) => s > from && s < data.length), data.length]) {
    if (to <= from) continue;
    protocol.receiveData(copy.subarray(from, to));
    protocol.takeOutgoing();
    from = to;
    if (stopped) break;
    const expected = states(from);
    if (expected === null) break;
    const count = protocol.receivedCount;
    if (count < lastCount) return { key: 'count-decreased', message: `receivedCount went from ${lastCount} to ${count} after ${from} bytes` };
    lastCount = count;
    if (protocol.receivingPartial !== expected.partial) {
      return {
        key: 'partial-state',
        message: `after ${from} bytes receivingPartial is ${protocol.receivingPartial}, but ${expected.partial ? 'part of a frame or fragmented message has' : 'nothing unfinished has'} arrived`,
      };
    }
    if (count !== expected.completed) return { key: 'received-count', message: `after ${from} bytes receivedCount is ${count}; ${expected.completed} messages and control frames outside a message completed` };
    if (expected.partial) partialReads++;
  }
  outcome(partialReads > 0 ? 'reads ending inside a frame or message' : 'no partial reads');
  return null;
}
