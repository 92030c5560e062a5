// fragments: one message sent as many tiny fragments (mostly 1 byte: 7 bytes on the wire per
// byte of message), padded or not with unsolicited pongs and pings between them, read in
// reads of their own. Besides the frame oracle, the memory a server holds while it
// assembles such a message must follow the message's size, not the number of fragments or
// the size of the reads they came in (a Buffer per fragment cost ~130 bytes per byte sent;
// a fragment kept as a view pinned its whole read): after GC, at most twice what the message
// holds so far, plus slack (a message's first piece leaves its read when the read ends).
import { Buffer } from 'node:buffer';
import { WebSocketProtocol } from '../../../src/protocol/index.js';
import { gc } from '../driver/heap.js';
import { type FuzzInput, type Problem, type Target } from '../driver/input.js';
import { mutateBytes } from '../driver/mutate.js';
import { outcome } from '../driver/outcomes.js';
import type { Rng } from '../driver/rng.js';
import { runFrames } from '../shared/frame-oracle.js';
import { readStates, walkFrames } from '../shared/frame-walk.js';
import type { FrameVariant } from '../shared/frames.js';

const VARIANTS: readonly FrameVariant[] = [64 * 1024, 256 * 1024, 1 << 20].map((maxPayload) => ({ maxPayload, deflate: null, label: `maxPayload ${maxPayload}` }));
/** Largest message generated: past the smallest maxPayload, under the largest. */
const MAX_MESSAGE = 96 * 1024;
/** What GC leaves that is not the message (code, the run's own bookkeeping). */
const SLACK = 256 * 1024;
/** The smallest message in progress the oracle weighs. */
const MIN_WEIGHED = 4096;
/** The most reads one input is cut into (the --replay encoding counts splits in 16 bits). */
const MAX_READS = 60_000;

const MASK = [0x37, 0xfa, 0x21, 0x3d];
const DICT = [[0x80], [0x00], [0x01], [0x8a], [0x89], [0x88], [0x81]].map((b) => Buffer.from(b));

/** Writes one masked client frame at `at`; returns where it ends. */
function writeFrame(out: Buffer, at: number, fin: boolean, opcode: number, payload: Buffer, from: number, length: number): number {
  out[at++] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) out[at++] = 0x80 | length;
  else {
    out[at++] = 0x80 | 126;
    out.writeUInt16BE(length, at);
    at += 2;
  }
  for (let i = 0; i < 4; i++) out[at++] = MASK[i]!;
  for (let i = 0; i < length; i++) out[at + i] = payload[from + i]! ^ MASK[i & 3]!;
  return at + length;
}

/** The message, in fragments of 1 to `maxFragment` bytes, with control frames every `every` fragments. */
function fragmented(rng: Rng, message: Buffer, binary: boolean, maxFragment: number, every: number, padding: number): Buffer {
  const out = Buffer.allocUnsafe(message.length * 8 + 16 + (every > 0 ? Math.ceil(message.length / every) * (padding + 8) : 0) + 256);
  let at = 0;
  let from = 0;
  let fragments = 0;
  const pad = Buffer.alloc(padding, 0x70);
  do {
    const length = Math.min(message.length - from, maxFragment === 1 ? 1 : 1 + rng.int(maxFragment));
    const fin = from + length >= message.length;
    at = writeFrame(out, at, fin, from === 0 ? (binary ? 2 : 1) : 0, message, from, length);
    from += length;
    if (every > 0 && ++fragments % every === 0 && !fin) at = writeFrame(out, at, true, rng.chance(0.9) ? 0xa : 0x9, pad, 0, padding);
  } while (from < message.length);
  return out.subarray(0, at);
}

/** Read boundaries: a few large reads, or many reads of up to 64 KiB, never more than MAX_READS. */
function readSplits(rng: Rng, length: number, size: number): number[] {
  const splits: number[] = [];
  const mean = Math.max(Math.ceil(length / MAX_READS), size);
  for (let at = 1 + rng.int(mean); at < length && splits.length < MAX_READS; at += 1 + rng.int(2 * mean)) splits.push(at);
  return splits;
}

/**
 * The target; `plantPinning` (the hidden self-test `selftest-fragments`) keeps a 1-byte view
 * of every read beside the protocol, as fragments kept as views once did, to show the
 * memory oracle catches it.
 */
/** The self-test's inputs: large binary messages of 1-byte fragments in small reads, where pinning the reads shows. */
function pinningInput(rng: Rng): FuzzInput {
  const data = fragmented(rng, rng.bytes(MAX_MESSAGE / 2 + rng.int(MAX_MESSAGE / 2)), true, 1, 0, 0);
  return { variant: VARIANTS.length - 1, splits: readSplits(rng, data.length, 256), data };
}

export function fragmentsTarget(plantPinning = false): Target {
  return {
    name: plantPinning ? 'selftest-fragments' : 'fragments',
    hidden: plantPinning,
    description: plantPinning
      ? 'the fragments target with a planted bug: a view of every read is kept'
      : 'one message in many tiny fragments (with control frames between them) read in reads of their own: assembly memory follows the message, not the fragments',
    variants: VARIANTS.length,
    describeVariant: (v) => VARIANTS[v]?.label ?? '?',
    generate(rng) {
      if (plantPinning) return pinningInput(rng);
      const variant = rng.int(VARIANTS.length);
      const size = rng.size(MAX_MESSAGE);
      const binary = rng.chance(0.5);
      // Text of 1- to 4-byte characters, so 1-byte fragments cut inside them.
      const message = binary ? rng.bytes(size) : Buffer.from('aé€𝄞'.repeat(Math.ceil(size / 10) + 1)).subarray(0, size);
      const maxFragment = rng.chance(0.7) ? 1 : 1 + rng.size(16);
      const every = rng.chance(0.5) ? 0 : 1 + rng.size(64);
      let data = fragmented(rng, message, binary, maxFragment, every, rng.size(125));
      // Text cut on a character boundary or not; a few bytes broken now and then.
      if (!binary && rng.chance(0.3)) data = Buffer.concat([data, Buffer.from([0x80, 0x80, 0x80 | 1, 0xe2])]);
      if (rng.chance(0.15)) data = mutateBytes(rng, data, [data], DICT, 1 + rng.size(3), 4 << 20);
      return { variant, splits: readSplits(rng, data.length, rng.pick([64, 1024, 16 * 1024, 65536])), data };
    },
    check(input) {
      const variant = VARIANTS[input.variant];
      if (variant === undefined) return null;
      const whole = runFrames(input, 'server', variant, false);
      if (whole.problem !== null) return whole.problem;
      // Memory is measured in a process that also compiles code and runs other work: a
      // finding must hold three times in a row (as a slow input must), at its smallest.
      let smallest: (Problem & { held: number }) | null = null;
      for (let i = 0; i < 3; i++) {
        const problem = checkAssemblyMemory(input, variant, plantPinning);
        if (problem === null) return null;
        smallest = smallest === null || problem.held < smallest.held ? problem : smallest;
      }
      return smallest;
    },
  };
}

/** Pushes every read but the last (each read a buffer of its own), then weighs what the protocol holds. */
function checkAssemblyMemory(input: FuzzInput, variant: FrameVariant, plantPinning: boolean): (Problem & { held: number }) | null {
  const data = input.data;
  const bounds = [...input.splits.filter((s) => s > 0 && s < data.length), data.length];
  if (bounds.length < 2) return null;
  const states = readStates(walkFrames(data), data.length);
  // Below a few KiB per-fragment costs hide in the slack: only larger messages are weighed
  // (and only they pay for the two collections).
  const cut = bounds[bounds.length - 2]!;
  if ((states(cut)?.assembling ?? 0) < MIN_WEIGHED) return null;
  let failed = false;
  let closed = false;
  const protocol = new WebSocketProtocol(
    {
      onMessage() {},
      onClose: () => (closed = true),
      onProtocolError: () => (failed = true),
    },
    { role: 'server', maxPayload: variant.maxPayload },
  );
  gc(1);
  const before = process.memoryUsage();
  let from = 0;
  const pinned: Buffer[] = [];
  for (const to of bounds.slice(0, -1)) {
    // A read of its own (not from Node's shared pool), as a socket hands it over.
    const read = Buffer.allocUnsafeSlow(to - from);
    data.copy(read, 0, from, to);
    if (plantPinning) pinned.push(read.subarray(0, 1));
    protocol.receiveData(read);
    protocol.takeOutgoing();
    from = to;
    if (failed || closed) return null;
  }
  const state = states(from);
  if (state === null || !state.partial) return null;
  const bound = 2 * state.assembling + SLACK;
  gc(1);
  let after = process.memoryUsage();
  // One collection is cheap but may leave the reads' backing stores to a sweep still under
  // way; over the bound, a second one settles what is truly held before anything is said.
  if (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers > bound) {
    gc(1);
    after = process.memoryUsage();
  }
  const heapDelta = after.heapUsed - before.heapUsed;
  const buffersDelta = after.arrayBuffers - before.arrayBuffers;
  const held = heapDelta + buffersDelta;
  pinned.length = 0;
  outcome(held > state.assembling ? 'assembling (more than the message)' : 'assembling');
  if (held > bound) {
    return {
      key: 'assembly-memory',
      held,
      message:
        `${state.assembling} bytes of a fragmented message held ${held} bytes after GC (heap ${heapDelta}, buffers ${buffersDelta}; ` +
        `bound ${bound}: twice the message, ${SLACK} slack)`,
    };
  }
  return null;
}
