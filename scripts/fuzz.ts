// Fuzzes hotline's parsers with random and mutated input: the frame decoder (through
// WebSocketProtocol in both roles, with and without permessage-deflate, input split at
// random points), the HTTP head parser with the handshake checks of both sides, the
// Sec-WebSocket-Extensions parser with permessage-deflate negotiation, and the hotline.v1
// request parser.
//
//   npm run fuzz [-- --seconds 60 --seed N --target NAME[,NAME] --jobs 2]
//   npm run fuzz -- --target NAME --replay HEX      (re-runs one reproducer)
//   npm run fuzz -- --list
//   npm run fuzz -- --stats                         (also prints what the inputs led to)
//
// Each target runs for --seconds in a worker thread, and a watchdog in the main thread
// terminates a worker whose current input has run for --hang-ms. An input is a finding
// when it makes a target throw anything but the documented typed errors, breaks an
// invariant (the close frame a ProtocolError queues carries the close code RFC 6455/7692
// give for its error; the same bytes split differently give the same events; a head
// parsed whole or in pieces is the same head; …), takes longer than --budget-ms, or hangs.
// A run whose heap (after GC) grew by more than --memory-mib between warm-up and the end
// is a finding too. Findings are minimized and printed with the seed, the iteration and a
// reproducer in hex; the exit status is 1 when there was one.
//
// Inputs are a function of (seed, iteration) alone, so `--seed S` reproduces a run.
// test/fuzz.test.ts runs every target for ~2 s with fixed seeds inside `npm test`.
import { Buffer } from 'node:buffer';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import {
  acceptDeflateResponse,
  CloseCode,
  deflateClientOffer,
  HandshakeError,
  isValidWireCloseCode,
  negotiateDeflateServer,
  ProtocolError,
  ProtocolState,
  WebSocketProtocol,
  type CloseInfo,
  type DeflateClientOptions,
  type DeflateParams,
  type DeflateServerOptions,
  type HandshakeErrorCode,
  type ProtocolErrorCode,
  type ProtocolHandler,
  type Role,
} from '../src/protocol/index.js';
import { formatExtensions, parseExtensions, type ExtensionOffer } from '../src/protocol/extensions-header.js';
import {
  buildRejectResponse,
  buildServerResponse,
  computeAccept,
  validateClientRequest,
  validateServerResponse,
  type ServerHandshakeOptions,
} from '../src/protocol/handshake.js';
import { HttpHeadParser, type HttpRequestHead, type HttpResponseHead } from '../src/protocol/http-head.js';
import { ZlibDeflateCodec } from '../src/node/deflate.js';
import {
  DEFAULT_WIRE_LIMITS,
  encodeErr,
  MAX_EPOCH_LENGTH,
  parseRequest,
  REQUEST_OPS,
  resolveWireLimits,
  validateChannelName,
  type WireLimits,
} from '../src/wire/index.js';

// ═══════════════════════════════════════════════════════════════════════════════════════
// The close code each ProtocolError must carry
// ═══════════════════════════════════════════════════════════════════════════════════════

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

/**
 * The status (and headers) each HandshakeError of the server side must answer with.
 * On the client side (validateServerResponse, acceptDeflateResponse) every error carries
 * the status of the server's response instead: `response` marks the codes only it raises.
 */
export const HANDSHAKE_STATUS: Readonly<Record<HandshakeErrorCode, { status: number | 'response'; headers?: Record<string, string> }>> = {
  HEAD_TOO_LARGE: { status: 431 },
  MALFORMED_HTTP: { status: 400 },
  METHOD_NOT_ALLOWED: { status: 405, headers: { Allow: 'GET' } },
  HTTP_VERSION: { status: 400 },
  HTTP_VERSION_NOT_SUPPORTED: { status: 505 },
  MISSING_HOST: { status: 400 },
  NOT_UPGRADE: { status: 426, headers: { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' } },
  CONNECTION_NOT_UPGRADE: { status: 400 },
  BAD_KEY: { status: 400 },
  UNSUPPORTED_VERSION: { status: 426, headers: { 'Sec-WebSocket-Version': '13' } },
  BAD_PROTOCOL_HEADER: { status: 400 },
  BAD_EXTENSION_HEADER: { status: 400 },
  ORIGIN_FORBIDDEN: { status: 403 },
  UNEXPECTED_STATUS: { status: 'response' },
  BAD_ACCEPT: { status: 'response' },
  UNEXPECTED_PROTOCOL: { status: 'response' },
  UNEXPECTED_EXTENSION: { status: 'response' },
  BAD_EXTENSION_RESPONSE: { status: 'response' },
};

// ═══════════════════════════════════════════════════════════════════════════════════════
// Randomness: one small PRNG stream per (seed, iteration)
// ═══════════════════════════════════════════════════════════════════════════════════════

/** sfc32, seeded through splitmix32 from a seed and a stream number. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    let s = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) | 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) | 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  /** A size in [0, max], log-uniform: small sizes are as likely as large ones per octave. */
  size(max: number): number {
    if (max <= 0) return 0;
    return Math.min(max, Math.floor(Math.pow(max + 2, this.float())) - 1);
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

// ═══════════════════════════════════════════════════════════════════════════════════════
// Inputs, problems, targets
// ═══════════════════════════════════════════════════════════════════════════════════════

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

function hexPreview(data: Buffer, max = 256): string {
  const hex = data.subarray(0, max).toString('hex');
  return data.length > max ? `${hex}… (${data.length} bytes)` : hex;
}

export function describeInput(target: Target, input: FuzzInput, maxBytes = 256): string {
  return (
    `variant ${input.variant} (${target.describeVariant(input.variant)}), ` +
    `split at [${input.splits.join(', ')}], ${input.data.length} bytes: ${hexPreview(input.data, maxBytes)}`
  );
}

/** The chunks `data` is pushed in: views of one copy (the protocol unmasks in place). */
function chunksOf(data: Buffer, splits: readonly number[]): Buffer[] {
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

function chooseSplits(rng: Rng, length: number): number[] {
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

function concatBuffers(parts: readonly Buffer[]): Buffer {
  return Buffer.concat(parts as Buffer[]);
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7e, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x0d, 0x0a, 0x20, 0x22, 0x5c, 0x2c, 0x3b, 0x3d];
const INTERESTING_NUMBERS: readonly bigint[] = [
  0n, 1n, 125n, 126n, 127n, 128n, 255n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n, 0x7fffffffn, 0x80000000n, 0xffffffffn,
  0x100000000n, 0x1fffffffffffffn, 0x20000000000000n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn,
];

/** Byte-level mutations, stacked `rounds` times; the input is never modified. */
export function mutateBytes(rng: Rng, input: Buffer, pool: readonly Buffer[], dict: readonly Buffer[], rounds: number, maxLength = 1 << 20): Buffer {
  let data = input;
  for (let round = 0; round < rounds; round++) {
    const length = data.length;
    const at = rng.int(length + 1);
    switch (rng.int(12)) {
      case 0: {
        if (length === 0) break;
        data = Buffer.from(data);
        const i = rng.int(length);
        data[i] = (data[i] as number) ^ (1 << rng.int(8));
        break;
      }
      case 1: {
        if (length === 0) break;
        data = Buffer.from(data);
        data[rng.int(length)] = rng.pick(INTERESTING_BYTES);
        break;
      }
      case 2: {
        if (length === 0) break;
        data = Buffer.from(data);
        data[rng.int(length)] = rng.int(256);
        break;
      }
      case 3:
        data = data.subarray(0, at);
        break;
      case 4: {
        const n = 1 + rng.size(Math.max(0, Math.min(64, length - at) - 1));
        data = concatBuffers([data.subarray(0, at), data.subarray(at + n)]);
        break;
      }
      case 5: {
        // A repeated fragment.
        const n = 1 + rng.size(Math.max(0, Math.min(512, length - at) - 1));
        const piece = data.subarray(at, at + n);
        const times = 1 + rng.size(31);
        data = concatBuffers([data.subarray(0, at), ...Array<Buffer>(times).fill(piece), data.subarray(at)]);
        break;
      }
      case 6:
        data = concatBuffers([data.subarray(0, at), rng.bytes(1 + rng.size(63)), data.subarray(at)]);
        break;
      case 7: {
        const other = rng.pick(pool);
        const from = rng.int(other.length + 1);
        const piece = other.subarray(from, from + 1 + rng.size(Math.max(0, other.length - from - 1)));
        data = concatBuffers([data.subarray(0, at), piece, data.subarray(at)]);
        break;
      }
      case 8: {
        const other = rng.pick(pool);
        data = concatBuffers([data.subarray(0, at), other.subarray(rng.int(other.length + 1))]);
        break;
      }
      case 9:
        data = concatBuffers([data.subarray(0, at), rng.pick(dict), data.subarray(at)]);
        break;
      case 10: {
        const token = rng.pick(dict);
        data = concatBuffers([data.subarray(0, at), token, data.subarray(at + token.length)]);
        break;
      }
      case 11: {
        // An interesting number written big-endian over whatever was there (length fields).
        const width = rng.pick([1, 2, 4, 8]);
        if (length < width) break;
        const pos = rng.int(length - width + 1);
        const value = rng.pick(INTERESTING_NUMBERS) & ((1n << BigInt(8 * width)) - 1n);
        data = Buffer.from(data);
        for (let i = 0; i < width; i++) data[pos + i] = Number((value >> BigInt(8 * (width - 1 - i))) & 0xffn);
        break;
      }
    }
    if (data.length > maxLength) data = data.subarray(0, maxLength);
  }
  return data;
}

/** What inputs led to (an error code, an accepted head, …), counted while a run collects them. */
let outcomes: Map<string, number> | null = null;
function outcome(label: string): void {
  if (outcomes !== null) outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
}

function latin1(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

// ═══════════════════════════════════════════════════════════════════════════════════════
// Frames: WebSocketProtocol in both roles, with and without permessage-deflate
// ═══════════════════════════════════════════════════════════════════════════════════════

interface FrameSpec {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Buffer;
  mask: Buffer | null;
  /** Length encoding; by default the minimal one. */
  form?: 7 | 16 | 64;
  /** The length written in the header, when it should differ from the payload's. */
  declared?: bigint;
}

function encodeSpec(frame: FrameSpec): Buffer {
  const length = frame.declared ?? BigInt(frame.payload.length);
  const form = frame.form ?? (length < 126n ? 7 : length < 0x10000n ? 16 : 64);
  const header: number[] = [((frame.fin ? 0x80 : 0) | ((frame.rsv & 7) << 4) | (frame.opcode & 0xf)) & 0xff];
  const maskBit = frame.mask === null ? 0 : 0x80;
  if (form === 7) header.push(maskBit | Number(length & 0x7fn));
  else if (form === 16) header.push(maskBit | 126, Number((length >> 8n) & 0xffn), Number(length & 0xffn));
  else {
    header.push(maskBit | 127);
    for (let i = 7; i >= 0; i--) header.push(Number((length >> BigInt(8 * i)) & 0xffn));
  }
  if (frame.mask === null) return Buffer.concat([Buffer.from(header), frame.payload]);
  const body = Buffer.from(frame.payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (frame.mask[i & 3] as number);
  return Buffer.concat([Buffer.from(header), frame.mask, body]);
}

function closeBody(code: number, reason: Buffer | string = ''): Buffer {
  const text = typeof reason === 'string' ? Buffer.from(reason) : reason;
  const out = Buffer.alloc(2 + text.length);
  out.writeUInt16BE(code & 0xffff, 0);
  text.copy(out, 2);
  return out;
}

interface FrameVariant {
  maxPayload: number;
  /** The negotiated parameters (the same on both sides), or null without permessage-deflate. */
  deflate: DeflateParams | null;
  label: string;
}

function frameVariants(role: Role, deflate: boolean): FrameVariant[] {
  const out: FrameVariant[] = [];
  if (!deflate) {
    for (const maxPayload of [0, 125, 1024, 65536, 1 << 20]) out.push({ maxPayload, deflate: null, label: `maxPayload ${maxPayload}` });
    return out;
  }
  for (const noTakeover of [false, true]) {
    for (const bits of [15, 10, 9, 8]) {
      for (const maxPayload of [1024, 65536, 1 << 20]) {
        // What the fuzzed side receives is compressed by its peer, with the peer's window and takeover.
        const params: DeflateParams =
          role === 'server'
            ? { serverNoContextTakeover: true, clientNoContextTakeover: noTakeover, serverMaxWindowBits: 15, clientMaxWindowBits: bits }
            : { serverNoContextTakeover: noTakeover, clientNoContextTakeover: false, serverMaxWindowBits: bits, clientMaxWindowBits: 15 };
        out.push({
          maxPayload,
          deflate: params,
          label: `maxPayload ${maxPayload}, peer window ${bits}, ${noTakeover ? 'no context takeover' : 'context takeover'}`,
        });
      }
    }
  }
  return out;
}

const INVALID_UTF8: readonly Buffer[] = [
  [0x80], [0xc0, 0x80], [0xc2], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x8f, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], [0xf5], [0xff], [0xe2, 0x82],
].map((b) => Buffer.from(b));
const CLOSE_CODES = [0, 1, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012, 1014, 1015, 1016, 2999, 3000, 3999, 4000, 4999, 5000, 65535];

/** Valid (and a few deliberately invalid) frame sequences from the fuzzed side's peer. */
function buildFrameCorpus(role: Role, variant: FrameVariant, index: number): FrameSpec[][] {
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
    );
  }
  return items.map((build) => {
    fresh();
    return build();
  });
}

/** An independent check of UTF-8 (the protocol has its own validator). */
const fatalDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
function isUtf8Independent(bytes: Uint8Array): boolean {
  try {
    fatalDecoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function digest(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193);
  return (h >>> 0).toString(16);
}

interface SentFrame {
  opcode: number;
  payload: Buffer;
}

/** Parses what the fuzzed side queued: complete frames, masked exactly when it is a client. */
function parseSent(bytes: Buffer, role: Role): SentFrame[] | string {
  const frames: SentFrame[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 2) return 'a partial frame header';
    const b0 = bytes[at] as number;
    const b1 = bytes[at + 1] as number;
    if ((b0 & 0x80) === 0) return 'a fragmented frame';
    if ((b0 & 0x70) !== 0) return 'RSV bits on a frame we sent';
    const masked = (b1 & 0x80) !== 0;
    if (masked !== (role === 'client')) return role === 'client' ? 'an unmasked client frame' : 'a masked server frame';
    let length = b1 & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(offset));
      offset += 8;
    }
    let key: Buffer | null = null;
    if (masked) {
      key = bytes.subarray(offset, offset + 4);
      offset += 4;
    }
    if (offset + length > bytes.length) return 'a partial frame payload';
    const payload = Buffer.from(bytes.subarray(offset, offset + length));
    if (key !== null) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (key[i & 3] as number);
    frames.push({ opcode: b0 & 0x0f, payload });
    at = offset + length;
  }
  return frames;
}

interface FrameRun {
  events: string[];
  sent: string[];
  problem: Problem | null;
}

function runFrames(input: FuzzInput, role: Role, variant: FrameVariant, split: boolean): FrameRun {
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

function frameTarget(role: Role, deflate: boolean): Target {
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

  return {
    name: `frame-${role}${deflate ? '-deflate' : ''}`,
    description: `WebSocketProtocol as a ${role}${deflate ? ' with permessage-deflate (ZlibDeflateCodec)' : ''}: frames split at random points`,
    variants: variants.length,
    describeVariant: (v) => variants[v]?.label ?? '?',
    prepare() {
      for (let v = 0; v < variants.length; v++) corpusFor(v);
    },
    generate(rng) {
      const variant = rng.int(variants.length);
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
      return { variant, splits: chooseSplits(rng, data.length), data };
    },
    check(input) {
      const variant = variants[input.variant];
      if (variant === undefined) return null;
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
  };
}

/** Known inputs that raise each peer error, so the table above is exercised, not only declared. */
export const CLOSE_CODE_SAMPLES: ReadonlyArray<{ code: ProtocolErrorCode; role: Role; deflate: boolean; hex: string }> = (() => {
  const m = Buffer.from([1, 2, 3, 4]);
  const client = (f: Partial<FrameSpec> & { opcode: number }): FrameSpec => ({ fin: true, rsv: 0, payload: Buffer.alloc(0), mask: m, ...f });
  const enc = (...frames: FrameSpec[]): string => concatBuffers(frames.map(encodeSpec)).toString('hex');
  const garbage = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33]); // not deflate data
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

// ═══════════════════════════════════════════════════════════════════════════════════════
// HTTP heads: the request side (HttpHeadParser + validateClientRequest + the answer) and
// the response side (HttpHeadParser + validateServerResponse + acceptDeflateResponse)
// ═══════════════════════════════════════════════════════════════════════════════════════

const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

const HTTP_DICT: readonly Buffer[] = [
  '\r\n', '\n', '\r', '\r\n\r\n', ' ', '\t', ':', ',', ';', '=', '"', '\\', '\0', '\x7f', '\xff', '\xa0', '/',
  'websocket', 'WebSocket', 'Upgrade', 'upgrade', 'keep-alive, Upgrade', 'Connection', 'Sec-WebSocket-Key', '13', '8',
  'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Extensions: ', 'Sec-WebSocket-Protocol: ', 'permessage-deflate',
  'server_max_window_bits', 'client_max_window_bits', 'server_no_context_takeover', 'client_no_context_takeover',
  '=15', '=8', '=7', '=16', '="10"', '=010', 'Host: a', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'GET ', 'POST ', SAMPLE_KEY,
  SAMPLE_ACCEPT, 'hotline.v1', 'Origin: http://example.com', '101', '400', ' Switching Protocols', 'x'.repeat(300),
].map(latin1);

function mutateHttpLines(rng: Rng, text: string, pool: readonly string[]): string {
  const lines = text.split('\r\n');
  const fieldEnd = Math.max(1, lines.indexOf(''));
  const field = (): number => 1 + rng.int(Math.max(1, fieldEnd - 1));
  const values = ['', ' ', 'websocket', 'Upgrade', '13', SAMPLE_KEY, 'permessage-deflate; client_max_window_bits', 'a, b, , c', '"quoted"', 'x'.repeat(rng.size(2000)), '\x00', 'ü'];
  switch (rng.int(9)) {
    case 0:
      lines.splice(field(), 0, lines[field()] ?? '');
      break;
    case 1:
      if (fieldEnd > 1) lines.splice(field(), 1);
      break;
    case 2: {
      const i = field();
      const j = field();
      const t = lines[i] ?? '';
      lines[i] = lines[j] ?? '';
      lines[j] = t;
      break;
    }
    case 3: {
      const i = field();
      const line = lines[i] ?? '';
      const colon = line.indexOf(':');
      lines[i] = `${colon === -1 ? line : line.slice(0, colon)}: ${rng.pick(values)}`;
      break;
    }
    case 4: {
      const i = field();
      const line = lines[i] ?? '';
      lines[i] = rng.pick([line.toLowerCase(), line.toUpperCase(), line.replace(':', ' :'), line.replace(':', ''), ` ${line}`, `${line} `]);
      break;
    }
    case 5: {
      const other = rng.pick(pool).split('\r\n');
      lines.splice(field(), 0, other[1 + rng.int(Math.max(1, other.length - 3))] ?? '');
      break;
    }
    case 6:
      lines[0] = `${rng.pick(['GET', 'POST', 'get', 'G ET', ''])} ${rng.pick(['/', '/echo', '/ws?x=1', 'ws://h/echo', '*', '/\x7f', ''])} ${rng.pick(['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.2', 'HTTP/1.1 x', 'http/1.1'])}`;
      break;
    case 7:
      lines.splice(field(), 0, `X-Filler: ${'y'.repeat(rng.size(20_000))}`);
      break;
    case 8:
      lines.splice(field(), 0, `${rng.pick(['Host', 'Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Origin'])}: ${rng.pick(values)}`);
      break;
  }
  return lines.join('\r\n');
}

interface HeadOutcome<H> {
  head: H | null;
  error: HandshakeError | null;
  rest: Buffer | null;
  problem: Problem | null;
}

function parseHead<K extends 'request' | 'response'>(kind: K, input: FuzzInput, maxHead: number, split: boolean): HeadOutcome<K extends 'request' ? HttpRequestHead : HttpResponseHead> {
  type H = K extends 'request' ? HttpRequestHead : HttpResponseHead;
  const parser = new HttpHeadParser(kind, maxHead);
  let head: H | null = null;
  let error: HandshakeError | null = null;
  let problem: Problem | null = null;
  for (const chunk of chunksOf(input.data, split ? input.splits : [])) {
    try {
      const got = parser.push(chunk) as H | null;
      if (got !== null) {
        if (head !== null) problem ??= { key: 'head-twice', message: 'the parser returned a head twice' };
        head = got;
      }
    } catch (e) {
      if (!(e instanceof HandshakeError)) throw e;
      if (error !== null && e !== error) problem ??= { key: 'error-changed', message: 'a failed parser threw a different error on a later push' };
      error ??= e;
    }
  }
  if (error !== null) {
    const expected = error.code === 'HEAD_TOO_LARGE' ? 431 : error.code === 'MALFORMED_HTTP' ? 400 : null;
    if (expected === null || error.status !== expected) problem ??= { key: `head-error:${error.code}`, message: `the head parser threw ${error.code} with status ${error.status}` };
  }
  let rest: Buffer | null = null;
  if (head !== null) {
    rest = Buffer.from(parser.rest);
    const headLength = input.data.length - rest.length;
    if (headLength > maxHead) problem ??= { key: 'head-too-large', message: `a head of ${headLength} bytes passed the ${maxHead}-byte limit` };
    if (!input.data.subarray(headLength).equals(rest) || !input.data.subarray(0, headLength).toString('latin1').endsWith('\r\n\r\n')) {
      problem ??= { key: 'head-rest', message: 'the bytes after the head are not what followed CRLF CRLF' };
    }
    if ((head as HttpRequestHead | HttpResponseHead).headers.size > (head as HttpRequestHead | HttpResponseHead).rawHeaders.length) {
      problem ??= { key: 'head-fields', message: 'more header names than header lines' };
    }
  }
  return { head, error, rest, problem };
}

function sameHeadOutcome(a: HeadOutcome<unknown>, b: HeadOutcome<unknown>): Problem | null {
  const summary = (o: HeadOutcome<unknown>): string =>
    JSON.stringify({
      error: o.error === null ? null : [o.error.code, o.error.status, o.error.message],
      head: o.head === null ? null : { ...(o.head as object), headers: [...(o.head as HttpRequestHead).headers] },
      rest: o.rest?.toString('hex') ?? null,
    });
  const x = summary(a);
  const y = summary(b);
  return x === y ? null : { key: 'split-dependent', message: `the head parsed whole and split differ:\n  whole ${x.slice(0, 400)}\n  split ${y.slice(0, 400)}` };
}

/** A HandshakeError must carry the status (and headers) of its code. */
function checkHandshakeError(error: unknown, allowed: ReadonlySet<HandshakeErrorCode>, responseStatus: number | null, where: string): Problem | null {
  if (!(error instanceof HandshakeError)) throw error;
  if (!allowed.has(error.code)) return { key: `handshake-code:${where}:${error.code}`, message: `${where} threw ${error.code}, which it never should` };
  const rule = HANDSHAKE_STATUS[error.code];
  // On the client side every error carries the status of the server's response.
  const status = responseStatus ?? rule.status;
  if (error.status !== status) return { key: `handshake-status:${error.code}`, message: `${where}: ${error.code} answered ${error.status}, expected ${String(status)}` };
  if (responseStatus !== null) return null;
  for (const [name, value] of Object.entries(rule.headers ?? {})) {
    if (error.headers[name] !== value) return { key: `handshake-headers:${error.code}`, message: `${where}: ${error.code} lacks ${name}: ${value}` };
  }
  return null;
}

const SERVER_CODES: ReadonlySet<HandshakeErrorCode> = new Set([
  'METHOD_NOT_ALLOWED', 'HTTP_VERSION', 'HTTP_VERSION_NOT_SUPPORTED', 'MISSING_HOST', 'NOT_UPGRADE', 'CONNECTION_NOT_UPGRADE', 'BAD_KEY',
  'UNSUPPORTED_VERSION', 'BAD_PROTOCOL_HEADER', 'BAD_EXTENSION_HEADER', 'ORIGIN_FORBIDDEN',
]);
const CLIENT_CODES: ReadonlySet<HandshakeErrorCode> = new Set([
  'UNEXPECTED_STATUS', 'NOT_UPGRADE', 'CONNECTION_NOT_UPGRADE', 'BAD_ACCEPT', 'UNEXPECTED_PROTOCOL',
  'UNEXPECTED_EXTENSION', 'BAD_EXTENSION_HEADER', 'BAD_EXTENSION_RESPONSE',
]);

/** The refusal a server writes must be a well-formed response with the error's status. */
function checkRefusal(status: number, message: string, headers: Readonly<Record<string, string>>): Problem | null {
  let text: string;
  try {
    text = buildRejectResponse(status, message, headers);
  } catch (e) {
    return { key: 'refusal-throws', message: `buildRejectResponse(${status}) threw ${String(e)} for message ${JSON.stringify(message.slice(0, 200))}` };
  }
  const bytes = Buffer.from(text, 'utf8');
  const parser = new HttpHeadParser('response');
  let head: HttpResponseHead | null;
  try {
    head = parser.push(bytes);
  } catch (e) {
    return { key: 'refusal-malformed', message: `the refusal does not parse: ${String(e)}` };
  }
  if (head === null || head.status !== status) return { key: 'refusal-status', message: `the refusal does not carry status ${status}` };
  if (!/\bclose\b/i.test(head.headers.get('connection') ?? '')) return { key: 'refusal-connection', message: 'the refusal lacks Connection: close' };
  if (Number(head.headers.get('content-length')) !== parser.rest.length) return { key: 'refusal-length', message: 'the refusal Content-Length is not its body length' };
  return null;
}

interface RequestVariant {
  maxHead: number;
  options: ServerHandshakeOptions;
  deflate: DeflateServerOptions;
  label: string;
}

const REQUEST_VARIANTS: RequestVariant[] = (() => {
  const out: RequestVariant[] = [];
  const options: Array<[string, ServerHandshakeOptions]> = [
    ['no options', {}],
    ['protocols [hotline.v1, chat]', { protocols: ['hotline.v1', 'chat'] }],
    ['protocol chooser', { protocols: (offered) => offered[offered.length - 1] }],
    ['origins [http://example.com]', { origins: ['http://example.com'] }],
    ['origin predicate', { origins: (o) => o === undefined || o.startsWith('http://') }],
  ];
  const deflates: Array<[string, DeflateServerOptions]> = [
    ['deflate defaults', {}],
    ['deflate 10/9, client no takeover', { serverMaxWindowBits: 10, clientMaxWindowBits: 9, clientNoContextTakeover: true }],
  ];
  for (const maxHead of [16 * 1024, 300]) {
    for (const [ol, o] of options) for (const [dl, d] of deflates) out.push({ maxHead, options: o, deflate: d, label: `head ≤ ${maxHead}, ${ol}, ${dl}` });
  }
  return out;
})();

const REQUEST_CORPUS: readonly string[] = [
  'GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'GET /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n',
  'GET /ws?token=abc HTTP/1.1\r\nhost: localhost\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: hotline.v1\r\nuser-agent: fuzz\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12, permessage-deflate, x-webkit-deflate-frame\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits="9"; client_max_window_bits="15"\r\nSec-WebSocket-Extensions: foo; bar="b\\az"\r\n\r\n',
  'GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x85\x01\x02\x03\x04\x69\x67\x6f\x68\x6e',
  'GET ws://h/echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket/13, h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n',
  'GET /echo HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'POST /echo HTTP/1.1\r\nHost: h\r\nHost: h2\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short==\r\nSec-WebSocket-Version: 8\r\nContent-Length: 5\r\n\r\nhello',
  'GET /echo HTTP/1.1\nHost: h\nUpgrade: websocket\n\n',
  'GET /echo HTTP/1.1\r\nHost: h\r\n folded\r\nX:\tv\t\r\n\r\n',
];

function requestTarget(): Target {
  const pool = REQUEST_CORPUS.map(latin1);
  return {
    name: 'http-request',
    description: 'HttpHeadParser (request) split at random points, validateClientRequest, negotiateDeflateServer, and the 101 or refusal written back',
    variants: REQUEST_VARIANTS.length,
    describeVariant: (v) => REQUEST_VARIANTS[v]?.label ?? '?',
    generate(rng) {
      const variant = rng.int(REQUEST_VARIANTS.length);
      let data: Buffer;
      if (rng.chance(0.05)) data = rng.bytes(rng.size(600));
      else {
        let text = rng.pick(REQUEST_CORPUS);
        const rounds = rng.chance(0.2) ? 0 : 1 + rng.size(5);
        for (let i = 0; i < rounds; i++) text = mutateHttpLines(rng, text, REQUEST_CORPUS);
        data = latin1(text);
        if (rng.chance(0.4)) data = mutateBytes(rng, data, pool, HTTP_DICT, 1 + rng.size(5), 40_000);
      }
      return { variant, splits: chooseSplits(rng, data.length), data };
    },
    check(input) {
      const variant = REQUEST_VARIANTS[input.variant];
      if (variant === undefined) return null;
      const whole = parseHead('request', input, variant.maxHead, false);
      if (whole.problem !== null) return whole.problem;
      if (input.splits.length > 0) {
        const split = parseHead('request', input, variant.maxHead, true);
        if (split.problem !== null) return split.problem;
        const differ = sameHeadOutcome(whole, split);
        if (differ !== null) return differ;
      }
      outcome(whole.error !== null ? `head ${whole.error.code}` : whole.head === null ? 'incomplete head' : 'head parsed');
      if (whole.error !== null) return checkRefusal(whole.error.status, whole.error.message, whole.error.headers);
      // An incomplete head: the server waits for more (until its handshake timeout).
      if (whole.head === null) return null;
      const head = whole.head;
      let accepted;
      try {
        accepted = validateClientRequest(head, variant.options);
      } catch (e) {
        const p = checkHandshakeError(e, SERVER_CODES, null, 'validateClientRequest');
        if (p !== null) return p;
        outcome(`refused ${(e as HandshakeError).code}`);
        const error = e as HandshakeError;
        return checkRefusal(error.status, error.message, { ...error.headers });
      }
      if (accepted.accept !== computeAccept(accepted.key)) return { key: 'accept', message: 'the accept value is not derived from the key' };
      if (accepted.protocol !== undefined && !accepted.offeredProtocols.includes(accepted.protocol)) {
        return { key: 'protocol-not-offered', message: `selected subprotocol ${accepted.protocol} was not offered` };
      }
      const negotiated = negotiateDeflateServer(accepted.extensions, variant.deflate);
      outcome(negotiated === null ? 'accepted' : 'accepted with permessage-deflate');
      const extensions = negotiated === null ? undefined : [negotiated.response];
      let response: string;
      try {
        response = buildServerResponse({ accept: accepted.accept, protocol: accepted.protocol, extensions });
      } catch (e) {
        return { key: 'response-throws', message: `buildServerResponse threw ${String(e)} for an accepted request` };
      }
      // The client that sent this request must accept the answer.
      const parser = new HttpHeadParser('response');
      const responseHead = parser.push(Buffer.from(response, 'latin1'));
      if (responseHead === null) return { key: 'response-incomplete', message: 'the 101 response is not a complete head' };
      try {
        const result = validateServerResponse(responseHead, { key: accepted.key, protocols: accepted.offeredProtocols, extensions: accepted.extensions });
        if (result.protocol !== (accepted.protocol ?? '')) return { key: 'response-protocol', message: 'the 101 names another subprotocol' };
      } catch (e) {
        return { key: 'response-refused', message: `the client side refuses the server's own 101: ${String(e)}` };
      }
      return null;
    },
  };
}

interface ResponseVariant {
  maxHead: number;
  protocols: string[];
  deflate: DeflateClientOptions | null;
  label: string;
}

const RESPONSE_VARIANTS: ResponseVariant[] = (() => {
  const expectations: Array<[string, string[], DeflateClientOptions | null]> = [
    ['no protocols, no deflate', [], null],
    ['protocols [hotline.v1, chat], deflate defaults', ['hotline.v1', 'chat'], {}],
    ['protocols [chat], deflate server 10 + no takeover, client 12', ['chat'], { serverMaxWindowBits: 10, serverNoContextTakeover: true, clientMaxWindowBits: 12 }],
    ['no protocols, deflate without client_max_window_bits', [], { clientMaxWindowBits: false }],
  ];
  const out: ResponseVariant[] = [];
  for (const maxHead of [16 * 1024, 200]) for (const [label, protocols, deflate] of expectations) out.push({ maxHead, protocols, deflate, label: `head ≤ ${maxHead}, ${label}` });
  return out;
})();

const RESPONSE_CORPUS: readonly string[] = [
  buildServerResponse({ accept: SAMPLE_ACCEPT }),
  buildServerResponse({ accept: SAMPLE_ACCEPT, protocol: 'chat' }),
  buildServerResponse({ accept: SAMPLE_ACCEPT, protocol: 'hotline.v1', extensions: [{ name: 'permessage-deflate', params: [['server_no_context_takeover', true]] }] }),
  buildServerResponse({
    accept: SAMPLE_ACCEPT,
    extensions: [{ name: 'permessage-deflate', params: [['server_no_context_takeover', true], ['client_no_context_takeover', true], ['server_max_window_bits', '10'], ['client_max_window_bits', '12']] }],
  }),
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits="9", permessage-deflate\r\n\r\n\x81\x02hi',
  'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\n\r\nbad request',
  'HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n\r\n',
  'HTTP/1.0 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: wrongwrongwrongwrongwrong==\r\n\r\n',
];

function responseTarget(): Target {
  const pool = RESPONSE_CORPUS.map(latin1);
  return {
    name: 'http-response',
    description: 'HttpHeadParser (response) split at random points, validateServerResponse and acceptDeflateResponse',
    variants: RESPONSE_VARIANTS.length,
    describeVariant: (v) => RESPONSE_VARIANTS[v]?.label ?? '?',
    generate(rng) {
      const variant = rng.int(RESPONSE_VARIANTS.length);
      let text = rng.pick(RESPONSE_CORPUS);
      const rounds = rng.chance(0.2) ? 0 : 1 + rng.size(5);
      for (let i = 0; i < rounds; i++) {
        text = mutateHttpLines(rng, text, RESPONSE_CORPUS);
        // mutateHttpLines writes request lines; put a status line back most of the time.
        if (!text.startsWith('HTTP/') && rng.chance(0.8)) text = `HTTP/1.1 ${rng.pick(['101 Switching Protocols', '101', '200 OK', '101 \x01'])}${text.slice(text.indexOf('\r\n'))}`;
      }
      let data = latin1(text);
      if (rng.chance(0.4)) data = mutateBytes(rng, data, pool, HTTP_DICT, 1 + rng.size(5), 40_000);
      return { variant, splits: chooseSplits(rng, data.length), data };
    },
    check(input) {
      const variant = RESPONSE_VARIANTS[input.variant];
      if (variant === undefined) return null;
      const whole = parseHead('response', input, variant.maxHead, false);
      if (whole.problem !== null) return whole.problem;
      if (input.splits.length > 0) {
        const split = parseHead('response', input, variant.maxHead, true);
        if (split.problem !== null) return split.problem;
        const differ = sameHeadOutcome(whole, split);
        if (differ !== null) return differ;
      }
      outcome(whole.error !== null ? `head ${whole.error.code}` : whole.head === null ? 'incomplete head' : 'head parsed');
      if (whole.head === null) return null;
      const head = whole.head;
      const offer = variant.deflate === null ? undefined : [deflateClientOffer(variant.deflate)];
      let result;
      try {
        result = validateServerResponse(head, { key: SAMPLE_KEY, protocols: variant.protocols, extensions: offer });
      } catch (e) {
        outcome(`refused ${e instanceof HandshakeError ? e.code : '?'}`);
        return checkHandshakeError(e, CLIENT_CODES, head.status, 'validateServerResponse');
      }
      outcome('accepted');
      if (result.protocol !== '' && !variant.protocols.includes(result.protocol)) return { key: 'protocol-not-offered', message: `accepted subprotocol ${result.protocol}` };
      if (variant.deflate === null && result.extensions.length > 0) return { key: 'extension-not-offered', message: 'accepted an extension that was not offered' };
      if (variant.deflate === null) return null;
      return checkClientDeflate(result.extensions, variant.deflate, head.status);
    },
  };
}

/** acceptDeflateResponse may only refuse with BAD_EXTENSION_RESPONSE, and what it accepts keeps our requests. */
function checkClientDeflate(responses: ExtensionOffer[], offered: DeflateClientOptions | undefined, status: number): Problem | null {
  let params: DeflateParams | null;
  try {
    params = acceptDeflateResponse(responses, offered, status);
    outcome(params === null ? 'client: no permessage-deflate' : 'client accepts permessage-deflate');
  } catch (e) {
    outcome('client fails the response');
    return checkHandshakeError(e, new Set<HandshakeErrorCode>(['BAD_EXTENSION_RESPONSE']), status, 'acceptDeflateResponse');
  }
  if (params === null) return null;
  const o = offered ?? {};
  const inRange = (n: number): boolean => Number.isInteger(n) && n >= 8 && n <= 15;
  if (!inRange(params.serverMaxWindowBits) || !inRange(params.clientMaxWindowBits)) return { key: 'window-range', message: `window bits out of range: ${JSON.stringify(params)}` };
  if (o.serverMaxWindowBits !== undefined && params.serverMaxWindowBits > o.serverMaxWindowBits) return { key: 'server-window', message: 'accepted a server window above the one requested' };
  if (typeof o.clientMaxWindowBits === 'number' && params.clientMaxWindowBits > o.clientMaxWindowBits) return { key: 'client-window', message: 'uses a client window above the one promised' };
  if (o.serverNoContextTakeover === true && !params.serverNoContextTakeover) return { key: 'server-takeover', message: 'accepted without the requested server_no_context_takeover' };
  if (o.clientNoContextTakeover === true && !params.clientNoContextTakeover) return { key: 'client-takeover', message: 'dropped the announced client_no_context_takeover' };
  return null;
}

// ═══════════════════════════════════════════════════════════════════════════════════════
// Sec-WebSocket-Extensions: parseExtensions, negotiateDeflateServer, acceptDeflateResponse
// ═══════════════════════════════════════════════════════════════════════════════════════

const SERVER_DEFLATE_OPTIONS: readonly DeflateServerOptions[] = [
  {},
  { serverNoContextTakeover: false },
  { serverMaxWindowBits: 10, clientMaxWindowBits: 9 },
  { clientNoContextTakeover: true, serverMaxWindowBits: 8, serverNoContextTakeover: false },
];
const CLIENT_DEFLATE_OPTIONS: ReadonlyArray<DeflateClientOptions | undefined> = [
  undefined,
  { serverNoContextTakeover: true },
  { serverMaxWindowBits: 9 },
  { clientMaxWindowBits: false },
  { clientMaxWindowBits: 10, clientNoContextTakeover: true },
  { serverMaxWindowBits: 15, clientMaxWindowBits: 8 },
];

const EXTENSION_CORPUS: readonly string[] = [
  'permessage-deflate',
  'permessage-deflate; client_max_window_bits',
  'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12',
  'permessage-deflate; server_max_window_bits="9"; client_max_window_bits="15", permessage-deflate',
  'x-webkit-deflate-frame, permessage-deflate; client_max_window_bits; server_max_window_bits=15',
  'foo; bar="b\\az"; baz, permessage-deflate; server_no_context_takeover',
  ' , permessage-deflate ;client_max_window_bits = 8 ,',
  'permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=08, permessage-deflate; client_no_context_takeover=1, permessage-deflate; unknown',
  'permessage-deflate; server_max_window_bits=10; server_max_window_bits=11, permessage-deflate; client_max_window_bits=9',
  ...CLIENT_DEFLATE_OPTIONS.map((o) => formatExtensions([deflateClientOffer(o)])),
];
const EXTENSION_DICT: readonly Buffer[] = [
  ',', ';', '=', '"', '\\', ' ', '\t', '\0', '\x7f', '\xff', '\xe9', 'permessage-deflate', 'server_no_context_takeover', 'client_no_context_takeover',
  'server_max_window_bits', 'client_max_window_bits', '=8', '=9', '=15', '=16', '=7', '="10"', '="1\\0"', '=0', '=010', '= 10',
].map(latin1);

/** What a client that sent `offer` (a valid permessage-deflate element) asked for. */
function clientOptionsOf(offer: ExtensionOffer): DeflateClientOptions {
  const options: DeflateClientOptions = { clientMaxWindowBits: false };
  for (const [name, value] of offer.params) {
    if (name === 'server_no_context_takeover') options.serverNoContextTakeover = true;
    else if (name === 'client_no_context_takeover') options.clientNoContextTakeover = true;
    else if (name === 'server_max_window_bits') options.serverMaxWindowBits = Number(value);
    else if (name === 'client_max_window_bits') options.clientMaxWindowBits = value === true ? true : Number(value);
  }
  return options;
}

/** The two codecs a negotiation produced must understand each other, both ways, message after message. */
function checkCodecPair(server: DeflateParams, client: DeflateParams, rng: Rng): Problem | null {
  const serverCodec = new ZlibDeflateCodec(server, 'server', 'permessage-deflate');
  const clientCodec = new ZlibDeflateCodec(client, 'client', 'permessage-deflate');
  for (let i = 0; i < 3; i++) {
    const message = Buffer.from(`message ${i} ${'abcabc'.repeat(1 + rng.int(50))} ${rng.bytes(rng.int(64)).toString('hex')}`);
    for (const [from, to, name] of [[clientCodec, serverCodec, 'client to server'], [serverCodec, clientCodec, 'server to client']] as const) {
      const compressed = from.compress(message);
      if (compressed === null) continue;
      let inflated: Buffer | null;
      try {
        inflated = to.decompress(compressed, 0);
      } catch (e) {
        return { key: 'codec-pair', message: `${name}: message ${i} does not inflate (${String(e)}) with server ${JSON.stringify(server)} and client ${JSON.stringify(client)}` };
      }
      if (inflated === null || !inflated.equals(message)) return { key: 'codec-pair', message: `${name}: message ${i} inflates to other bytes` };
    }
  }
  return null;
}

function extensionsTarget(): Target {
  const pool = EXTENSION_CORPUS.map(latin1);
  const variants = SERVER_DEFLATE_OPTIONS.length * CLIENT_DEFLATE_OPTIONS.length;
  const optionsOf = (v: number): [DeflateServerOptions, DeflateClientOptions | undefined] => [
    SERVER_DEFLATE_OPTIONS[Math.floor(v / CLIENT_DEFLATE_OPTIONS.length)] ?? {},
    CLIENT_DEFLATE_OPTIONS[v % CLIENT_DEFLATE_OPTIONS.length],
  ];
  return {
    name: 'extensions',
    description: 'parseExtensions, then negotiateDeflateServer and acceptDeflateResponse on what it parsed; negotiated codecs must interoperate',
    variants,
    describeVariant(v) {
      const [s, c] = optionsOf(v);
      return `server ${JSON.stringify(s)}, client ${JSON.stringify(c ?? 'defaults')}`;
    },
    generate(rng) {
      const variant = rng.int(variants);
      let data: Buffer;
      if (rng.chance(0.05)) data = rng.bytes(rng.size(200));
      else {
        const parts = Array.from({ length: 1 + rng.size(3) }, () => rng.pick(EXTENSION_CORPUS));
        data = latin1(parts.join(rng.pick([', ', ',', ' , '])));
        if (rng.chance(0.8)) data = mutateBytes(rng, data, pool, EXTENSION_DICT, 1 + rng.size(7), 8192);
      }
      return { variant, splits: [], data };
    },
    check(input) {
      const [serverOptions, clientOptions] = optionsOf(input.variant);
      const header = input.data.toString('latin1');
      let offers: ExtensionOffer[];
      try {
        offers = parseExtensions(header);
      } catch (e) {
        outcome('header refused');
        return checkHandshakeError(e, new Set<HandshakeErrorCode>(['BAD_EXTENSION_HEADER']), null, 'parseExtensions');
      }
      if (offers.length === 0) return { key: 'empty-list', message: 'parseExtensions returned no offers without throwing' };
      let formatted: string;
      try {
        formatted = formatExtensions(offers);
      } catch (e) {
        return { key: 'format-throws', message: `formatExtensions threw on what parseExtensions returned: ${String(e)}` };
      }
      if (JSON.stringify(parseExtensions(formatted)) !== JSON.stringify(offers)) return { key: 'round-trip', message: `format/parse round trip changed ${JSON.stringify(offers)} into ${formatted}` };

      // Server side: never throws; picks the first acceptable offer.
      const negotiated = negotiateDeflateServer(offers, serverOptions);
      outcome(negotiated === null ? 'server declines' : 'server accepts');
      const firstAcceptable = offers.find((o) => negotiateDeflateServer([o], serverOptions) !== null);
      if ((negotiated === null) !== (firstAcceptable === undefined)) return { key: 'negotiation-choice', message: 'negotiateDeflateServer did not take the first acceptable offer' };
      if (negotiated !== null && firstAcceptable !== undefined) {
        const p = negotiated.params;
        const inRange = (n: number): boolean => Number.isInteger(n) && n >= 8 && n <= 15;
        if (!inRange(p.serverMaxWindowBits) || !inRange(p.clientMaxWindowBits)) return { key: 'window-range', message: `negotiated ${JSON.stringify(p)}` };
        if (p.serverMaxWindowBits > (serverOptions.serverMaxWindowBits ?? 15)) return { key: 'server-cap', message: 'the server window passes its own cap' };
        const asked = clientOptionsOf(firstAcceptable);
        if (asked.serverMaxWindowBits !== undefined && p.serverMaxWindowBits > asked.serverMaxWindowBits) return { key: 'server-window', message: 'the server window passes the one requested' };
        // The client that sent that offer must accept the answer, and agree on the parameters.
        let client: DeflateParams | null;
        try {
          client = acceptDeflateResponse([negotiated.response], asked);
        } catch (e) {
          return { key: 'client-refuses-server', message: `the client refuses the server's answer ${formatExtensions([negotiated.response])} to ${formatExtensions([firstAcceptable])}: ${String(e)}` };
        }
        if (client === null) return { key: 'client-refuses-server', message: 'the client ignores the server answer' };
        const same = { ...client, clientNoContextTakeover: p.clientNoContextTakeover };
        if (JSON.stringify(same) !== JSON.stringify(p) || (p.clientNoContextTakeover && !client.clientNoContextTakeover)) {
          return { key: 'sides-disagree', message: `server ${JSON.stringify(p)} vs client ${JSON.stringify(client)} for ${formatExtensions([firstAcceptable])}` };
        }
        const codecs = checkCodecPair(p, client, new Rng(input.data.length, input.variant));
        if (codecs !== null) return codecs;
      }
      // Client side: the parsed list read as a server response.
      return checkClientDeflate(offers, clientOptions, 101);
    },
  };
}

// ═══════════════════════════════════════════════════════════════════════════════════════
// hotline.v1 requests: parseRequest
// ═══════════════════════════════════════════════════════════════════════════════════════

const TIGHT_LIMITS: WireLimits = resolveWireLimits({ maxChannelNameLength: 8, maxKeyLength: 4, maxMethodLength: 4, maxTokenLength: 16, maxHistoryLimit: 5, maxJsonDepth: 3 });
const REQUEST_LIMITS: ReadonlyArray<[string, WireLimits]> = [
  ['default limits', DEFAULT_WIRE_LIMITS],
  ['tight limits', TIGHT_LIMITS],
];

const WIRE_CORPUS: readonly string[] = [
  '{"op":"sub","id":1,"ch":"room:1"}',
  '{"op":"sub","id":2,"ch":"room:1","since":{"epoch":"k3v9x","offset":41}}',
  '{"op":"unsub","id":3,"ch":"room:1"}',
  '{"op":"pub","id":4,"ch":"room:1","data":{"text":"hi","n":[1,2,{"deep":[true,null]}]},"key":"k-1"}',
  '{"op":"pub","id":5,"ch":"a","data":null}',
  '{"op":"history","id":6,"ch":"room:1","limit":2}',
  '{"op":"presence","id":7,"ch":"room:1"}',
  '{"op":"rpc","id":8,"method":"add","params":[1,2]}',
  '{"op":"ping","id":9}',
  '{"op":"auth","id":10,"token":"secret"}',
  '{"id":11,"op":"pub","ch":"x","data":"\\ud800 lone","key":null,"extra":{"__proto__":{"polluted":1}}}',
  '{"op":"sub","id":0,"ch":"user@example.com/orders=eu,1","since":null}',
  '[{"op":"ping","id":1}]',
  '{"op":"ping","id":1.5}',
  '{"op":"pub","id":12,"ch":"x","data":"[[[[[[{{{{ not nesting \\" \\\\"}',
];
const WIRE_VALUES: readonly string[] = [
  'null', 'true', '-1', '-0', '0.5', '1e21', '9007199254740991', '9007199254740992', '1e400', '""', '"x"', '[]', '{}',
  `"${'c'.repeat(201)}"`, '"room:1"', '"a b"', '"\\u0000"', '"\\ud83d\\ude00"', '{"epoch":"e","offset":-1}', '{"epoch":"","offset":0}',
  `{"epoch":"${'e'.repeat(65)}","offset":1}`, '"toString"', '"constructor"', '"__proto__"',
];
const WIRE_KEYS = ['op', 'id', 'ch', 'data', 'key', 'since', 'limit', 'method', 'params', 'token', '__proto__', 'constructor', 'hasOwnProperty', 'toString', ''];
const WIRE_DICT: readonly Buffer[] = ['{', '}', '[', ']', '"', '\\', ':', ',', '\\"', '\\\\', '\\u', 'null', '-', 'e9', '\u00e9', '\u{1F600}', '\ud7ff', '\ufeff'].map((s) => Buffer.from(s));

/**
 * Nesting depth of JSON text as written (duplicate keys that JSON.parse drops still count,
 * and malformed text has a depth too): brackets outside strings, found by a plain
 * tokenizer with an escape flag, independent of exceedsJsonDepth's backslash-run counting.
 */
function textDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c /* \ */) escaped = true;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) max = Math.max(max, ++depth);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return max;
}

function generateWireText(rng: Rng): string {
  const r = rng.float();
  if (r < 0.05) {
    // Big or deep monsters: linear-time checks must stay linear.
    const n = rng.size(1 << 20);
    return rng.pick([
      () => '['.repeat(n),
      () => `{"op":"pub","id":1,"ch":"x","data":${'['.repeat(n)}${']'.repeat(n)}}`,
      () => `{"op":"pub","id":1,"ch":"x","data":"${'\\'.repeat(n)}"}`,
      () => `{"op":"pub","id":1,"ch":"x","data":"${'\\"'.repeat(n >> 1)}"}`,
      () => `${'{"a":'.repeat(n >> 4)}1${'}'.repeat(n >> 4)}`,
      () => `"${'"'.repeat(n)}`,
      () => ' '.repeat(n) + '{"op":"ping","id":1}',
    ])();
  }
  if (r < 0.5) {
    // Structure-aware: fields of a corpus request replaced, dropped, added, nested.
    const base = JSON.parse(rng.pick(WIRE_CORPUS.slice(0, 12))) as Record<string, unknown>;
    const entries = Object.entries(base).map(([k, v]) => [k, JSON.stringify(v)] as [string, string]);
    const rounds = 1 + rng.size(4);
    for (let i = 0; i < rounds; i++) {
      const at = rng.int(entries.length + 1);
      switch (rng.int(5)) {
        case 0:
          if (entries[at]) entries[at][1] = rng.pick(WIRE_VALUES);
          break;
        case 1:
          entries.splice(at, 1);
          break;
        case 2:
          entries.splice(at, 0, [rng.pick(WIRE_KEYS), rng.pick(WIRE_VALUES)]);
          break;
        case 3:
          if (entries[at]) {
            const depth = rng.size(80);
            entries[at][1] = `${'['.repeat(depth)}${entries[at][1]}${']'.repeat(depth)}`;
          }
          break;
        case 4:
          if (entries[at]) entries.push([...entries[at]]);
          break;
      }
    }
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
  }
  const pool = WIRE_CORPUS.map((s) => Buffer.from(s));
  return mutateBytes(rng, rng.pick(pool), pool, WIRE_DICT, 1 + rng.size(7), 1 << 20).toString('utf8');
}

function wireTarget(): Target {
  return {
    name: 'parse-request',
    description: 'parseRequest (hotline.v1 requests): never throws, answers bad_request with the id when readable, enforces the nesting limit',
    variants: REQUEST_LIMITS.length,
    describeVariant: (v) => REQUEST_LIMITS[v]?.[0] ?? '?',
    generate(rng) {
      return { variant: rng.int(REQUEST_LIMITS.length), splits: [], data: Buffer.from(generateWireText(rng)) };
    },
    check(input) {
      const limits = REQUEST_LIMITS[input.variant]?.[1];
      if (limits === undefined) return null;
      // What a connection hands the hub: the text frame as a string.
      const text = input.data.toString('utf8');
      const result = parseRequest(text, limits);
      outcome(result.ok ? `ok ${result.request.op}` : /nests/.test(result.message) ? 'bad_request (depth)' : result.id === undefined ? 'bad_request without id' : 'bad_request with id');
      if (text.length < 65536 && JSON.stringify(parseRequest(text, limits)) !== JSON.stringify(result)) return { key: 'nondeterministic', message: 'two parses disagree' };
      // The nesting limit applies to the text as written, valid JSON or not (it is checked first).
      const depth = textDepth(text);
      const depthAnswer = !result.ok && /nests objects and arrays deeper/.test(result.message);
      if (depth > limits.maxJsonDepth && !depthAnswer) return { key: 'depth-missed', message: `a request nested ${depth} deep (limit ${limits.maxJsonDepth}) was not refused for it` };
      if (depth <= limits.maxJsonDepth && depthAnswer) return { key: 'depth-false-alarm', message: `a request nested ${depth} deep (limit ${limits.maxJsonDepth}) was refused as too deep` };
      let value: unknown;
      let json = !depthAnswer;
      if (json) {
        try {
          value = JSON.parse(text);
        } catch {
          json = false;
        }
      }
      if (!result.ok) {
        if (result.code !== 'bad_request' || typeof result.message !== 'string' || result.message.length === 0) return { key: 'error-shape', message: JSON.stringify(result) };
        if (result.id !== undefined && !(Number.isSafeInteger(result.id) && result.id >= 0)) return { key: 'error-id', message: `err carries id ${String(result.id)}` };
        // The id is answered whenever it was readable.
        if (json && !depthAnswer && typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, 'id')) {
          const id = (value as Record<string, unknown>)['id'];
          if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 && result.id !== (id === 0 ? 0 : id)) return { key: 'error-lost-id', message: `bad_request without the readable id ${id}` };
        }
        try {
          JSON.parse(encodeErr(result.id, result.code, result.message));
        } catch (e) {
          return { key: 'err-encoding', message: `encodeErr: ${String(e)}` };
        }
        return null;
      }
      if (!json) return { key: 'accepted-invalid-json', message: 'a request that is not JSON was accepted' };
      const request = result.request as unknown as Record<string, unknown>;
      const fields = value as Record<string, unknown>;
      if (!REQUEST_OPS.includes(request['op'] as (typeof REQUEST_OPS)[number])) return { key: 'op', message: `accepted op ${String(request['op'])}` };
      if (!(Number.isSafeInteger(request['id']) && (request['id'] as number) >= 0) || request['id'] !== fields['id']) return { key: 'id', message: `accepted id ${String(request['id'])}` };
      const ch = request['ch'];
      if (ch !== undefined && (typeof ch !== 'string' || validateChannelName(ch, limits.maxChannelNameLength) !== null)) return { key: 'channel', message: `accepted channel ${JSON.stringify(ch)}` };
      if (['sub', 'unsub', 'pub', 'history', 'presence'].includes(request['op'] as string) && ch === undefined) return { key: 'channel-missing', message: 'accepted without a channel' };
      const since = request['since'] as { epoch?: unknown; offset?: unknown } | undefined;
      if (since !== undefined && !(typeof since.epoch === 'string' && since.epoch.length >= 1 && since.epoch.length <= MAX_EPOCH_LENGTH && Number.isSafeInteger(since.offset) && (since.offset as number) >= 0)) {
        return { key: 'since', message: `accepted since ${JSON.stringify(since)}` };
      }
      const key = request['key'];
      if (key !== undefined && !(typeof key === 'string' && key.length >= 1 && key.length <= limits.maxKeyLength)) return { key: 'key', message: `accepted key ${JSON.stringify(key)}` };
      const limit = request['limit'];
      if (limit !== undefined && !(Number.isSafeInteger(limit) && (limit as number) >= 1 && (limit as number) <= limits.maxHistoryLimit)) return { key: 'limit', message: `accepted limit ${String(limit)}` };
      const method = request['method'];
      if (request['op'] === 'rpc' && !(typeof method === 'string' && method.length >= 1 && method.length <= limits.maxMethodLength)) return { key: 'method', message: `accepted method ${JSON.stringify(method)}` };
      const token = request['token'];
      if (request['op'] === 'auth' && !(typeof token === 'string' && token.length >= 1 && token.length <= limits.maxTokenLength)) return { key: 'token', message: 'accepted a bad token' };
      if (request['op'] === 'pub' && !Object.hasOwn(request, 'data')) return { key: 'data', message: 'accepted a pub without data' };
      return null;
    },
  };
}

// ═══════════════════════════════════════════════════════════════════════════════════════
// Self-tests of the harness (hidden): each plants one kind of finding
// ═══════════════════════════════════════════════════════════════════════════════════════

const leaked: unknown[] = [];
let leakStart = 0;

function selfTest(name: string, description: string, check: (input: FuzzInput) => Problem | null): Target {
  return {
    name,
    description,
    hidden: true,
    variants: 1,
    describeVariant: () => 'only',
    generate(rng) {
      let data = rng.bytes(rng.size(200));
      if (rng.chance(0.3)) {
        const at = rng.int(data.length + 1);
        data = Buffer.concat([data.subarray(0, at), Buffer.from([0xde, 0xad]), data.subarray(at)]);
      }
      return { variant: 0, splits: chooseSplits(rng, data.length), data };
    },
    check,
  };
}

const SELF_TESTS: Target[] = [
  selfTest('selftest-exception', 'throws a RangeError on any input holding de ad', (input) => {
    if (input.data.includes(Buffer.from([0xde, 0xad]))) throw new RangeError('planted');
    return null;
  }),
  selfTest('selftest-slow', 'busy for 100 ms on inputs that start with 01', (input) => {
    if (input.data[0] === 0x01) {
      const until = performance.now() + 100;
      while (performance.now() < until);
    }
    return null;
  }),
  selfTest('selftest-hang', 'never returns on inputs that start with 00', (input) => {
    // eslint-disable-next-line no-empty
    if (input.data[0] === 0x00) for (;;) {}
    return null;
  }),
  selfTest('selftest-leak', 'keeps 64 MiB per second of running (up to 192 MiB), however fast inputs run', () => {
    const now = performance.now();
    if (leakStart === 0) leakStart = now;
    // In 16 KiB arrays: 4 per millisecond.
    const due = Math.min(12_288, Math.floor((now - leakStart) * 4));
    while (leaked.length < due) leaked.push(new Array<number>(2048).fill(leaked.length));
    return null;
  }),
];

export const TARGETS: ReadonlyMap<string, Target> = new Map(
  [
    frameTarget('server', false),
    frameTarget('client', false),
    frameTarget('server', true),
    frameTarget('client', true),
    requestTarget(),
    responseTarget(),
    extensionsTarget(),
    wireTarget(),
    ...SELF_TESTS,
  ].map((t) => [t.name, t]),
);

export const PUBLIC_TARGETS: readonly string[] = [...TARGETS.values()].filter((t) => t.hidden !== true).map((t) => t.name);

// ═══════════════════════════════════════════════════════════════════════════════════════
// Running: in-process loop, minimizer, worker with a watchdog
// ═══════════════════════════════════════════════════════════════════════════════════════

export type FindingKind = 'exception' | 'close-code' | 'invariant' | 'slow' | 'hang' | 'memory';

export interface Finding {
  target: string;
  kind: FindingKind;
  key: string;
  message: string;
  seed: number;
  /** The iteration whose input it is (inputs are a function of seed and iteration); null for memory. */
  iteration: number | null;
  /** encodeInput of the input as generated, and minimized. */
  input: string | null;
  minimized: string | null;
  description: string | null;
}

export interface TargetReport {
  target: string;
  seed: number;
  executions: number;
  elapsedMs: number;
  execsPerSecond: number;
  /** Heap (used + array buffers) after GC at the end of warm-up and at the end of the run. */
  heapBaselineBytes: number;
  heapFinalBytes: number;
  heapGrowthBytes: number;
  memoryBoundBytes: number;
  slowestMs: number;
  findings: Finding[];
  /** How many inputs led to each outcome (error codes, accepted heads, ok ops, …). */
  outcomes: Record<string, number>;
}

export interface RunOptions {
  seed: number;
  /** How long to generate new inputs. */
  ms: number;
  /** An input that takes longer is a `slow` finding (default 2000 ms). */
  budgetMs?: number;
  /** Heap growth across the run that is a `memory` finding (default 32 MiB). */
  memoryBoundBytes?: number;
  /** Time for minimizing each finding (default 5000 ms). */
  minimizeMs?: number;
  /** Distinct findings after which the target stops (default 5). */
  maxFindings?: number;
  /** Called before every execution (the worker's heartbeat). */
  onExecute?(iteration: number, minimizing: boolean): void;
  onFinding?(finding: Finding): void;
}

let collect: (() => void) | null = null;
function gc(): void {
  if (collect === null) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed !== undefined) collect = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
  }
  collect();
  collect();
}

function heapNow(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function kindOf(key: string): FindingKind {
  if (key.startsWith('exception:')) return 'exception';
  if (key.startsWith('close-code:') || key.startsWith('close-frame:') || key.startsWith('no-close-frame:')) return 'close-code';
  return 'invariant';
}

function exceptionProblem(error: unknown): Problem {
  const e = error instanceof Error ? error : new Error(String(error));
  const frames = (e.stack ?? '').split('\n').filter((l) => l.trim().startsWith('at '));
  const where = (frames[0] ?? '').trim().replace(/:\d+\)?$/, '');
  const code = (e as { code?: unknown }).code;
  return { key: `exception:${e.name}:${typeof code === 'string' ? code : ''}:${where}`, message: `${e.name}: ${e.message}\n${frames.slice(0, 8).join('\n')}` };
}

/** Runs one input and turns anything thrown into a problem. */
export function evaluate(target: Target, input: FuzzInput): Problem | null {
  try {
    return target.check(input);
  } catch (error) {
    return exceptionProblem(error);
  }
}

function withData(input: FuzzInput, data: Buffer): FuzzInput {
  return { variant: input.variant, splits: input.splits.filter((s) => s > 0 && s < data.length), data };
}

/** Shrinks an input while it still produces the problem `key`: splits first, then chunks of bytes. */
export function minimize(target: Target, input: FuzzInput, key: string, ms: number, beat?: () => void): FuzzInput {
  const deadline = performance.now() + ms;
  const still = (candidate: FuzzInput): boolean => {
    beat?.();
    return evaluate(target, candidate)?.key === key;
  };
  let best = input;
  if (best.splits.length > 0 && still({ ...best, splits: [] })) best = { ...best, splits: [] };
  let chunk = Math.max(1, 2 ** Math.floor(Math.log2(Math.max(1, best.data.length / 2))));
  while (chunk >= 1 && performance.now() < deadline) {
    let progressed = false;
    for (let at = 0; at < best.data.length && performance.now() < deadline; ) {
      const candidate = withData(best, Buffer.concat([best.data.subarray(0, at), best.data.subarray(at + chunk)]));
      if (still(candidate)) {
        best = candidate;
        progressed = true;
      } else at += chunk;
    }
    if (!progressed) chunk = chunk === 1 ? 0 : chunk >> 1;
  }
  for (let i = best.splits.length - 1; i >= 0 && performance.now() < deadline; i--) {
    const candidate = { ...best, splits: best.splits.filter((_, j) => j !== i) };
    if (still(candidate)) best = candidate;
  }
  return best;
}

/**
 * Lets the event loop turn. Node releases some resources on a later tick (a zlib
 * handle whose sync call threw is destroyed with process.nextTick), as it would between
 * two reads of a real socket; a loop that never yields would count them as a leak.
 */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Fuzzes one target in this thread for `options.ms`, yielding to the event loop every ~20 ms. */
export async function runTarget(target: Target, options: RunOptions): Promise<TargetReport> {
  const budgetMs = options.budgetMs ?? 2000;
  const memoryBoundBytes = options.memoryBoundBytes ?? 32 * 1024 * 1024;
  const minimizeMs = options.minimizeMs ?? 5000;
  const maxFindings = options.maxFindings ?? 5;
  const findings: Finding[] = [];
  const seen = new Set<string>();
  target.prepare?.();
  const counted = new Map<string, number>();
  const start = performance.now();
  const warmup = Math.min(options.ms * 0.2, 3000);
  let baseline: number | null = null;
  let executions = 0;
  let slowest = 0;
  let fuzzing = 0;
  let lastTurn = performance.now();

  const record = (finding: Finding): void => {
    findings.push(finding);
    options.onFinding?.(finding);
  };

  for (let iteration = 0; findings.length < maxFindings; iteration++) {
    const now = performance.now();
    if (fuzzing >= options.ms || now - start >= options.ms + 60_000) break;
    if (now - lastTurn > 20) {
      await turn();
      lastTurn = performance.now();
    }
    if (baseline === null && fuzzing >= warmup) {
      await turn();
      gc();
      baseline = heapNow();
    }
    const before = performance.now();
    const input = target.generate(new Rng(options.seed, iteration));
    options.onExecute?.(iteration, false);
    const t0 = performance.now();
    outcomes = counted;
    const problem = evaluate(target, input);
    outcomes = null;
    const took = performance.now() - t0;
    executions++;
    if (took > slowest) slowest = took;
    if (problem !== null && !seen.has(problem.key)) {
      seen.add(problem.key);
      const small = minimize(target, input, problem.key, minimizeMs, () => options.onExecute?.(iteration, true));
      record({
        target: target.name,
        kind: kindOf(problem.key),
        key: problem.key,
        message: evaluate(target, small)?.message ?? problem.message,
        seed: options.seed,
        iteration,
        input: encodeInput(input),
        minimized: encodeInput(small),
        description: describeInput(target, small, 512),
      });
    } else if (problem === null && took > budgetMs && !seen.has('slow')) {
      // Wall time on a busy machine includes other processes and GC: slow only if it is slow three times.
      let fastest = took;
      for (let i = 0; i < 2 && fastest > budgetMs; i++) {
        options.onExecute?.(iteration, true);
        const r0 = performance.now();
        evaluate(target, input);
        fastest = Math.min(fastest, performance.now() - r0);
      }
      if (fastest > budgetMs) {
        seen.add('slow');
        record({
          target: target.name,
          kind: 'slow',
          key: 'slow',
          message: `one input took ${fastest.toFixed(0)} ms at best of 3 runs (budget ${budgetMs} ms)`,
          seed: options.seed,
          iteration,
          input: encodeInput(input),
          minimized: null,
          description: describeInput(target, input, 512),
        });
      }
    }
    // Time spent minimizing and re-running does not count against fuzzing.
    fuzzing += problem === null ? t0 - before + took : took;
  }
  await turn();
  await turn();
  gc();
  const final = heapNow();
  const base = baseline ?? final;
  if (final - base > memoryBoundBytes) {
    record({
      target: target.name,
      kind: 'memory',
      key: 'memory',
      message: `the heap after GC grew by ${mib(final - base)} during the run (bound ${mib(memoryBoundBytes)})`,
      seed: options.seed,
      iteration: null,
      input: null,
      minimized: null,
      description: null,
    });
  }
  const elapsedMs = performance.now() - start;
  return {
    target: target.name,
    seed: options.seed,
    executions,
    elapsedMs,
    execsPerSecond: executions / (Math.max(1, fuzzing) / 1000),
    heapBaselineBytes: base,
    heapFinalBytes: final,
    heapGrowthBytes: final - base,
    memoryBoundBytes,
    slowestMs: slowest,
    findings,
    outcomes: Object.fromEntries([...counted].sort((a, b) => b[1] - a[1])),
  };
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export interface WorkerRunOptions extends Omit<RunOptions, 'onExecute'> {
  /** How long one input may run before the worker is terminated (default 10000 ms). */
  hangMs?: number;
  /** Allowance for the worker to load before its first input (default 120000 ms). */
  startupMs?: number;
}

interface WorkerData {
  hotlineFuzz: true;
  target: string;
  options: Omit<RunOptions, 'onExecute' | 'onFinding'>;
  beats: SharedArrayBuffer;
}

type WorkerMessage = { type: 'finding'; finding: Finding } | { type: 'done'; report: TargetReport };

/**
 * Fuzzes one target in a worker thread, with a watchdog: a heartbeat in shared memory
 * moves before every execution, and a worker whose heartbeat stands still for `hangMs`
 * is terminated and its input (regenerated here from seed and iteration) reported.
 */
export function runInWorker(targetName: string, options: WorkerRunOptions): Promise<TargetReport> {
  const target = TARGETS.get(targetName);
  if (target === undefined) return Promise.reject(new Error(`no target ${targetName}`));
  const hangMs = options.hangMs ?? 10_000;
  const startupMs = options.startupMs ?? 120_000;
  const beats = new SharedArrayBuffer(12);
  const view = new Int32Array(beats);
  const self = pathToFileURL(fileURLToPath(import.meta.url)).href;
  const api = import.meta.resolve('tsx/esm/api');
  // The worker loads this file through tsx, whatever loader the main thread has.
  const code = `import(${JSON.stringify(api)}).then((api) => api.tsImport(${JSON.stringify(self)}, ${JSON.stringify(self)}))`;
  const { onFinding, ...runOptions } = options;
  const data: WorkerData = { hotlineFuzz: true, target: targetName, options: runOptions, beats };
  const worker = new Worker(code, { eval: true, workerData: data, resourceLimits: { maxOldGenerationSizeMb: 2048 }, stdout: false, stderr: false });
  const findings: Finding[] = [];
  const started = performance.now();
  const partial = (finding: Finding): TargetReport => ({
    target: targetName,
    seed: options.seed,
    executions: Atomics.load(view, 0),
    elapsedMs: performance.now() - started,
    execsPerSecond: NaN,
    heapBaselineBytes: NaN,
    heapFinalBytes: NaN,
    heapGrowthBytes: NaN,
    memoryBoundBytes: options.memoryBoundBytes ?? NaN,
    slowestMs: NaN,
    findings: [...findings, finding],
    outcomes: {},
  });
  return new Promise((resolveReport) => {
    let settled = false;
    let lastBeat = -1;
    let lastChange = performance.now();
    const settle = (report: TargetReport): void => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      resolveReport(report);
    };
    const watchdog = setInterval(() => {
      const beat = Atomics.load(view, 0);
      if (beat !== lastBeat) {
        lastBeat = beat;
        lastChange = performance.now();
        return;
      }
      if (performance.now() - lastChange < (beat === 0 ? startupMs : hangMs)) return;
      const iteration = Atomics.load(view, 1);
      const minimizing = Atomics.load(view, 2) === 1;
      let input: FuzzInput | null = null;
      if (beat > 0 && !minimizing) input = target.generate(new Rng(options.seed, iteration));
      const finding: Finding = {
        target: targetName,
        kind: 'hang',
        key: 'hang',
        message:
          beat === 0
            ? `the worker did not start within ${startupMs} ms`
            : `an input ran for over ${hangMs} ms${minimizing ? ' while minimizing the finding of this iteration' : ''}; the worker was terminated`,
        seed: options.seed,
        iteration: beat === 0 ? null : iteration,
        input: input === null ? null : encodeInput(input),
        minimized: null,
        description: input === null ? null : describeInput(target, input, 512),
      };
      onFinding?.(finding);
      void worker.terminate();
      settle(partial(finding));
    }, 50);
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'finding') {
        findings.push(message.finding);
        onFinding?.(message.finding);
      } else settle(message.report);
    });
    worker.on('error', (error: Error) => {
      const finding: Finding = {
        target: targetName,
        kind: /memory/i.test(error.message) ? 'memory' : 'exception',
        key: 'worker-error',
        message: `the worker died: ${error.name}: ${error.message}`,
        seed: options.seed,
        iteration: Atomics.load(view, 1),
        input: null,
        minimized: null,
        description: null,
      };
      onFinding?.(finding);
      settle(partial(finding));
    });
    worker.on('exit', (code) => {
      if (settled) return;
      const finding: Finding = {
        target: targetName,
        kind: 'exception',
        key: 'worker-exit',
        message: `the worker exited with code ${code} before reporting`,
        seed: options.seed,
        iteration: null,
        input: null,
        minimized: null,
        description: null,
      };
      onFinding?.(finding);
      settle(partial(finding));
    });
  });
}

async function workerMain(data: WorkerData): Promise<void> {
  const target = TARGETS.get(data.target);
  const port = parentPort;
  if (target === undefined || port === null) throw new Error(`no target ${data.target}`);
  const view = new Int32Array(data.beats);
  const report = await runTarget(target, {
    ...data.options,
    onExecute(iteration, minimizing) {
      Atomics.store(view, 1, iteration);
      Atomics.store(view, 2, minimizing ? 1 : 0);
      Atomics.add(view, 0, 1);
    },
    onFinding(finding) {
      port.postMessage({ type: 'finding', finding } satisfies WorkerMessage);
    },
  });
  // Findings were sent as they came.
  port.postMessage({ type: 'done', report: { ...report, findings: [] } } satisfies WorkerMessage);
}

if (!isMainThread && (workerData as Partial<WorkerData> | null)?.hotlineFuzz === true) {
  // A rejection here is unhandled, which ends the worker with an 'error' the main thread reports.
  void workerMain(workerData as WorkerData);
}

// ═══════════════════════════════════════════════════════════════════════════════════════
// Command line
// ═══════════════════════════════════════════════════════════════════════════════════════

export function formatFinding(f: Finding): string {
  const lines = [`FINDING ${f.target} [${f.kind}] seed=${f.seed} iteration=${f.iteration ?? '-'}`, ...f.message.split('\n').map((l) => `  ${l}`)];
  if (f.description !== null) lines.push(`  reproducer${f.minimized !== null ? ' (minimized)' : ''}: ${f.description}`);
  const replay = f.minimized ?? f.input;
  if (replay !== null) lines.push(`  replay: npm run fuzz -- --target ${f.target} --replay ${replay}`);
  return lines.join('\n');
}

interface Args {
  seconds: number;
  seed: number;
  targets: string[];
  jobs: number;
  budgetMs: number;
  hangMs: number;
  memoryMib: number;
  replay: string | null;
  list: boolean;
  stats: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    seconds: 30,
    seed: Date.now() % 0x7fffffff,
    targets: [],
    jobs: 0,
    budgetMs: 2000,
    hangMs: 10_000,
    memoryMib: 32,
    replay: null,
    list: false,
    stats: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const number = (): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) throw new Error(`${flag} needs a non-negative number`);
      return v;
    };
    if (flag === '--seconds') args.seconds = number();
    else if (flag === '--seed') args.seed = Math.floor(number());
    else if (flag === '--target') args.targets.push(...value().split(',').filter((t) => t !== ''));
    else if (flag === '--jobs') args.jobs = Math.floor(number());
    else if (flag === '--budget-ms') args.budgetMs = number();
    else if (flag === '--hang-ms') args.hangMs = number();
    else if (flag === '--memory-mib') args.memoryMib = number();
    else if (flag === '--replay') args.replay = value();
    else if (flag === '--list') args.list = true;
    else if (flag === '--stats') args.stats = true;
    else throw new Error(`unknown option ${flag}`);
  }
  for (const t of args.targets) if (!TARGETS.has(t)) throw new Error(`unknown target ${t}; --list shows them`);
  return args;
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`fuzz: ${(error as Error).message}`);
    console.error('usage: npm run fuzz -- [--seconds 30] [--seed N] [--target NAME[,NAME]] [--jobs N] [--budget-ms 2000] [--hang-ms 10000] [--memory-mib 32] [--replay HEX] [--list] [--stats]');
    return 2;
  }
  if (args.list) {
    for (const t of TARGETS.values()) console.log(`${t.name.padEnd(22)} ${t.hidden === true ? '(self-test) ' : ''}${t.description}; ${t.variants} variants`);
    return 0;
  }
  if (args.replay !== null) {
    const name = args.targets[0];
    const target = name === undefined ? undefined : TARGETS.get(name);
    if (target === undefined) {
      console.error('fuzz: --replay needs --target NAME');
      return 2;
    }
    const input = decodeInput(args.replay);
    console.log(`replaying on ${target.name}: ${describeInput(target, input, 4096)}`);
    const t0 = performance.now();
    const problem = evaluate(target, input);
    console.log(problem === null ? `no problem (${(performance.now() - t0).toFixed(1)} ms)` : `${problem.key}\n${problem.message}`);
    return problem === null ? 0 : 1;
  }
  const names = args.targets.length > 0 ? args.targets : [...PUBLIC_TARGETS];
  const jobs = Math.max(1, Math.min(names.length, args.jobs > 0 ? args.jobs : availableParallelism()));
  console.log(`fuzzing ${names.length} targets for ${args.seconds} s each, seed ${args.seed}, ${jobs} at a time`);
  const reports: TargetReport[] = [];
  const queue = [...names];
  const runNext = async (): Promise<void> => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const report = await runInWorker(name, {
        seed: args.seed,
        ms: args.seconds * 1000,
        budgetMs: args.budgetMs,
        hangMs: args.hangMs,
        memoryBoundBytes: args.memoryMib * 1024 * 1024,
        onFinding: (f) => console.log(`\n${formatFinding(f)}\n`),
      });
      reports.push(report);
      console.log(
        `  ${report.target.padEnd(22)} ${String(report.executions).padStart(9)} execs ${report.execsPerSecond.toFixed(0).padStart(7)}/s  ` +
          `heap ${report.heapGrowthBytes >= 0 ? '+' : ''}${mib(report.heapGrowthBytes)}  slowest ${report.slowestMs.toFixed(0)} ms  ${report.findings.length} findings`,
      );
      if (args.stats) {
        for (const [label, n] of Object.entries(report.outcomes)) console.log(`      ${String(n).padStart(9)}  ${label}`);
      }
    }
  };
  await Promise.all(Array.from({ length: jobs }, () => runNext()));
  reports.sort((a, b) => names.indexOf(a.target) - names.indexOf(b.target));
  console.log(`\n${'target'.padEnd(22)} ${'execs'.padStart(9)} ${'execs/s'.padStart(9)} ${'heap growth'.padStart(12)} ${'slowest'.padStart(9)}  findings`);
  for (const r of reports) {
    console.log(
      `${r.target.padEnd(22)} ${String(r.executions).padStart(9)} ${r.execsPerSecond.toFixed(0).padStart(9)} ${mib(r.heapGrowthBytes).padStart(12)} ${`${r.slowestMs.toFixed(0)} ms`.padStart(9)}  ${r.findings.length}`,
    );
  }
  const total = reports.reduce((n, r) => n + r.findings.length, 0);
  console.log(total === 0 ? `\nno findings (seed ${args.seed})` : `\n${total} findings (seed ${args.seed}); each is printed above with its reproducer`);
  return total === 0 ? 0 : 1;
}

if (isMainThread && process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(2);
    },
  );
}
