// What a fuzz target is and what it is fed: an input (bytes, the points they are split at,
// a configuration number), its --replay encoding, and how a run splits the bytes into reads.
import { Buffer } from 'node:buffer';
import type { Rng } from './rng.js';

/** One input: the bytes, where they are cut into separate pushes, and the target's configuration. */
export interface FuzzInput {
  variant: number;
  /** Offsets in (0, data.length) at which the data is split into chunks. */
  splits: number[];
  data: Buffer;
}

/** What a check found wrong. Inputs with the same `key` are the same finding. */
export interface Problem {
  key: string;
  message: string;
}

export interface Target {
  name: string;
  description: string;
  /** Harness self-tests: run only when named. */
  hidden?: boolean;
  variants: number;
  describeVariant(variant: number): string;
  /** Builds what generate() needs (corpora), before the clock and the heap baseline start. */
  prepare?(): void;
  generate(rng: Rng): FuzzInput;
  /** Runs one input; returns the first problem, or null. Anything thrown is a finding. */
  check(input: FuzzInput): Problem | null;
}

/** What a target over labelled variants defines; {@link withVariants} makes it a {@link Target}. */
export interface VariantTarget<V> extends Omit<Target, 'variants' | 'describeVariant' | 'generate' | 'check'> {
  /** An input for the variant numbered `variant` (drawn before anything else). */
  generate(rng: Rng, variant: number): Omit<FuzzInput, 'variant'>;
  check(input: FuzzInput, variant: V): Problem | null;
}

/**
 * A target over a list of labelled variants: each input's variant is drawn first (so a seed
 * gives the same inputs as before), and an input whose variant is not in the list (a
 * hand-made --replay) checks nothing.
 */
export function withVariants<V extends { label: string }>(variants: readonly V[], target: VariantTarget<V>): Target {
  const { generate, check, ...rest } = target;
  return {
    ...rest,
    variants: variants.length,
    describeVariant: (v) => variants[v]?.label ?? '?',
    generate(rng) {
      const variant = rng.int(variants.length);
      return { variant, ...generate(rng, variant) };
    },
    check(input) {
      const variant = variants[input.variant];
      return variant === undefined ? null : check(input, variant);
    },
  };
}

/** Serialized form of an input, for --replay: variant (u16), split count (u16), splits (u32 each), data. */
export function encodeInput(input: FuzzInput): string {
  const head = Buffer.alloc(4 + 4 * input.splits.length);
  head.writeUInt16BE(input.variant, 0);
  head.writeUInt16BE(input.splits.length, 2);
  input.splits.forEach((s, i) => head.writeUInt32BE(s, 4 + 4 * i));
  return Buffer.concat([head, input.data]).toString('hex');
}

export function decodeInput(hex: string): FuzzInput {
  const bytes = Buffer.from(hex, 'hex');
  const variant = bytes.readUInt16BE(0);
  const count = bytes.readUInt16BE(2);
  const splits: number[] = [];
  for (let i = 0; i < count; i++) splits.push(bytes.readUInt32BE(4 + 4 * i));
  return { variant, splits, data: Buffer.from(bytes.subarray(4 + 4 * count)) };
}

export function hexPreview(data: Buffer, max = 256): string {
  const hex = data.subarray(0, max).toString('hex');
  return data.length > max ? `${hex}… (${data.length} bytes)` : hex;
}

/** The split points, the first 32 of them when there are more (the reproducer has them all). */
function splitPreview(splits: readonly number[]): string {
  return splits.length > 32 ? `${splits.slice(0, 32).join(', ')}, … (${splits.length} splits)` : splits.join(', ');
}

export function describeInput(target: Target, input: FuzzInput, maxBytes = 256): string {
  return (
    `variant ${input.variant} (${target.describeVariant(input.variant)}), ` +
    `split at [${splitPreview(input.splits)}], ${input.data.length} bytes: ${hexPreview(input.data, maxBytes)}`
  );
}

/** The chunks `data` is pushed in: views of one copy (the protocol unmasks in place). */
export function chunksOf(data: Buffer, splits: readonly number[]): Buffer[] {
  const copy = Buffer.from(data);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const at of splits) {
    if (at <= from || at >= copy.length) continue;
    chunks.push(copy.subarray(from, at));
    from = at;
  }
  chunks.push(copy.subarray(from));
  return chunks;
}

export function chooseSplits(rng: Rng, length: number): number[] {
  if (length < 2) return [];
  const r = rng.float();
  if (r < 0.15) return [];
  if (r < 0.25) {
    // Everything in small steps: every gathering path of a parser.
    const step = length <= 2048 ? 1 + rng.int(3) : Math.ceil(length / 2048);
    const out: number[] = [];
    for (let at = step; at < length; at += step) out.push(at);
    return out;
  }
  const set = new Set<number>();
  const count = 1 + rng.int(8);
  for (let i = 0; i < count; i++) {
    // Half near the start, where headers are.
    const at = rng.chance(0.5) ? 1 + rng.int(Math.min(length - 1, 16)) : 1 + rng.int(length - 1);
    set.add(at);
  }
  return [...set].sort((a, b) => a - b);
}

export function concatBuffers(parts: readonly Buffer[]): Buffer {
  return Buffer.concat(parts as Buffer[]);
}

export function latin1(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}
