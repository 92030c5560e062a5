/**
 * Codec micro-benchmark: hotline's sans-I/O frame codec against the `ws` package's own
 * Receiver and Sender, with ws's plain JavaScript masking and with bufferutil, side by side.
 *
 *   node --import tsx bench/codec.ts [--quick] [--rounds N] [--budget MS] [--only TEXT]
 *                                    [--samples] [--wall] [--system-malloc] [--gc]
 *
 * --quick          a short smoke run (fewer rounds, smaller inputs, 10 ms samples)
 * --only TEXT      only the scenarios whose "name size" contains TEXT, e.g. "decode text 1 KiB"
 * --samples        also print every round's value and page faults per MiB
 * --wall           rates per wall-clock second (default: per CPU second of this process,
 *                  which other processes competing for the CPU do not inflate)
 * --system-malloc  keep glibc's default allocator settings (see bench/lib/allocator.ts)
 * --gc             force a full garbage collection before every sample (off by default: it
 *                  resets V8's heap sizing and measurably slows the sample that follows)
 *
 * Rounds are interleaved: each round times every contender on every scenario, in an order
 * rotated per round and per scenario, so slow drifts of the machine hit all alike.
 *
 * decode: masked client frames fed to a server-role receiver in 64 KiB chunks, as socket
 *   reads would arrive, through to whole messages (text is UTF-8 validated). Both sides
 *   unmask in place, so each iteration gets a fresh copy of the input, made outside the
 *   timed region.
 * encode: one final frame per call, unmasked (server) or masked (client), binary from a
 *   Buffer and text from a string: hotline's encodeFrame/encodeTextFrame against ws's
 *   Sender.frame (called with the options ws.send would pass it).
 *
 * Every scenario is first checked for correctness against an independent reference
 * (bench/lib/frames.ts), and every timed iteration checks message counts, byte counts and
 * a checksum, so a broken codec fails loudly instead of looking fast.
 */
import { Buffer } from 'node:buffer';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import {
  encodeFrame,
  encodeTextFrame,
  maskInPlace,
  Opcode,
  WebSocketProtocol,
  type FrameOptions,
  type ProtocolHandler,
} from '../src/protocol/index.js';
import {
  binaryPayload,
  OPCODE_BINARY,
  OPCODE_TEXT,
  parseReferenceFrames,
  referenceHeaderSize,
  textPayload,
  writeReferenceFrame,
} from './lib/frames.js';
import { medianRatio, nowNs, rotate, sample, Samples, settle, type Sample } from './lib/stats.js';
import {
  columnsOf,
  formatCount,
  formatNumber,
  formatPercent,
  formatRatio,
  formatSize,
  formatTable,
} from './lib/table.js';
import { loadWsCodecs, type WsCodec, type WsFrameOptions } from './lib/ws-internals.js';
import { allocatorDescription, relaunchWithPinnedMalloc } from './lib/allocator.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZES = [32, KiB, 64 * KiB, MiB];
const READ_CHUNK = 64 * KiB;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    budget: { type: 'string' },
    only: { type: 'string' },
    samples: { type: 'boolean', default: false },
    wall: { type: 'boolean', default: false },
    'system-malloc': { type: 'boolean', default: false },
    gc: { type: 'boolean', default: false },
  },
});
const QUICK = args.quick === true;
const ROUNDS = args.rounds !== undefined ? Number(args.rounds) : QUICK ? 2 : 7;
const WARMUP_ROUNDS = 2;
/** Timed milliseconds per sample (one contender, one scenario, one round). */
const BUDGET_MS = args.budget !== undefined ? Number(args.budget) : QUICK ? 10 : 40;
/** Payload bytes per decode input and per encode iteration (smaller when quick). */
const DECODE_BYTES = QUICK ? 2 * MiB : 8 * MiB;
const ENCODE_BYTES = QUICK ? MiB : 8 * MiB;
/** Rates per wall-clock second instead of per CPU second of this process. */
const USE_WALL_CLOCK = args.wall === true;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error('--rounds must be a positive integer');
if (!(BUDGET_MS > 0)) throw new Error('--budget must be a positive number of milliseconds');

type ImplId = 'hotline' | 'ws' | 'ws+bufferutil';
const IMPLS: readonly ImplId[] = ['hotline', 'ws', 'ws+bufferutil'];

/** One contender in one scenario: checked once, then timed over and over. */
interface Contender {
  verify(): void;
  measure(budgetMs: number): Sample;
}

interface Scenario {
  name: string;
  size: number;
  /** Frames (= messages) and payload bytes per timed iteration. */
  frames: number;
  payloadBytes: number;
  contenders: Record<ImplId, Contender>;
}

class BenchFailure extends Error {
  constructor(scenario: string, impl: string, message: string) {
    super(`[${impl}] ${scenario}: ${message}`);
    this.name = 'BenchFailure';
  }
}

// --------------------------------------------------------------------------------------
// decode

interface DecodeInput {
  binary: boolean;
  size: number;
  frames: number;
  /** The masked frames, back to back; never modified. */
  wire: Buffer;
  /** The payload every frame carries, except that its first byte varies per frame. */
  template: Buffer;
  firstByte(index: number): number;
  /** Sum over all messages of their first, middle and last bytes. */
  checksum: number;
}

function decodeFrameCount(size: number): number {
  return Math.max(4, Math.floor(DECODE_BYTES / size));
}

function decodeWireLength(size: number): number {
  return decodeFrameCount(size) * (referenceHeaderSize(size, true) + size);
}

function buildDecodeInput(binary: boolean, size: number): DecodeInput {
  const frames = decodeFrameCount(size);
  const template = binary ? binaryPayload(size) : Buffer.from(textPayload(size));
  // Text keeps its first byte ASCII so that every variant stays valid UTF-8.
  const firstByte = binary ? (i: number) => (i * 31 + 7) & 0xff : (i: number) => 0x41 + (i % 26);
  const wire = Buffer.allocUnsafe(decodeWireLength(size));
  const payload = Buffer.from(template);
  const keys = binaryPayload(frames * 4);
  let offset = 0;
  let checksum = 0;
  for (let i = 0; i < frames; i++) {
    payload[0] = firstByte(i);
    checksum += probe(payload);
    offset = writeReferenceFrame(wire, offset, binary ? OPCODE_BINARY : OPCODE_TEXT, payload, keys.subarray(i * 4, i * 4 + 4));
  }
  if (offset !== wire.length) throw new Error('decode input: size mismatch');
  return { binary, size, frames, wire, template, firstByte, checksum };
}

/**
 * A cheap fingerprint of a message, checked on every timed iteration: its first byte
 * varies per frame, and the middle and last bytes catch a payload left (partly) masked.
 */
function probe(data: Buffer): number {
  const n = data.length;
  return n === 0 ? 0 : data[0]! + data[n >>> 1]! + data[n - 1]!;
}

/** Counts what a receiver delivers, for the per-iteration check. */
class Tally {
  messages = 0;
  bytes = 0;
  checksum = 0;
  wrongType = 0;
  constructor(private readonly binary: boolean) {}

  readonly onMessage = (data: Buffer, isBinary: boolean): void => {
    this.messages++;
    this.bytes += data.length;
    this.checksum += probe(data);
    if (isBinary !== this.binary) this.wrongType++;
  };

  reset(): void {
    this.messages = 0;
    this.bytes = 0;
    this.checksum = 0;
    this.wrongType = 0;
  }

  check(input: DecodeInput, fail: (message: string) => never): void {
    if (this.wrongType !== 0) fail(`${this.wrongType} messages of the wrong type`);
    if (this.messages !== input.frames) fail(`decoded ${this.messages} messages, expected ${input.frames}`);
    if (this.bytes !== input.frames * input.size) fail(`decoded ${this.bytes} bytes, expected ${input.frames * input.size}`);
    if (this.checksum !== input.checksum) fail(`checksum ${this.checksum}, expected ${input.checksum} (not unmasked?)`);
  }
}

/** Feeds chunks to a receiver and reports whether it is still healthy. */
interface DecodeTarget {
  feed(chunks: readonly Buffer[]): void;
  error(): Error | null;
}

function hotlineDecodeTarget(onMessage: (data: Buffer, binary: boolean) => void): DecodeTarget {
  let failure: Error | null = null;
  const handler: ProtocolHandler = {
    onMessage,
    onProtocolError: (error) => {
      failure = error;
    },
  };
  const protocol = new WebSocketProtocol(handler, { role: 'server', maxPayload: 0 });
  return {
    feed(chunks) {
      for (let i = 0; i < chunks.length; i++) protocol.receiveData(chunks[i]!);
    },
    error: () => failure,
  };
}

function wsDecodeTarget(codec: WsCodec, onMessage: (data: Buffer, binary: boolean) => void): DecodeTarget {
  const receiver = new codec.Receiver({ isServer: true, maxPayload: 0, skipUTF8Validation: false });
  let failure: Error | null = null;
  receiver.on('message', onMessage);
  receiver.on('error', (error) => {
    failure = error;
  });
  return {
    feed(chunks) {
      for (let i = 0; i < chunks.length; i++) receiver.write(chunks[i]!);
    },
    error: () => failure ?? receiver.errored,
  };
}

function decodeContender(
  name: string,
  impl: ImplId,
  input: DecodeInput,
  scratch: Buffer,
  makeTarget: (onMessage: (data: Buffer, binary: boolean) => void) => DecodeTarget,
): Contender {
  const fail = (message: string): never => {
    throw new BenchFailure(name, impl, message);
  };
  const work = scratch.subarray(0, input.wire.length);
  const chunks: Buffer[] = [];
  for (let at = 0; at < work.length; at += READ_CHUNK) chunks.push(work.subarray(at, at + READ_CHUNK));
  const prepare = (): void => {
    input.wire.copy(work);
  };

  return {
    verify() {
      // Every message, byte for byte, against the payload it was built from.
      const expected = Buffer.from(input.template);
      let index = 0;
      const target = makeTarget((data, isBinary) => {
        if (isBinary !== input.binary) fail(`message ${index} has the wrong type`);
        expected[0] = input.firstByte(index);
        if (!data.equals(expected)) fail(`message ${index} differs from what was sent`);
        index++;
      });
      prepare();
      target.feed(chunks);
      const error = target.error();
      if (error !== null) fail(`receiver failed: ${error.message}`);
      if (index !== input.frames) fail(`decoded ${index} messages, expected ${input.frames}`);
    },
    measure(budgetMs) {
      const tally = new Tally(input.binary);
      const target = makeTarget(tally.onMessage);
      return sample(
        () => {
          tally.reset();
          target.feed(chunks);
          // Inside the timed part, but a handful of comparisons per iteration.
          const error = target.error();
          if (error !== null) fail(`receiver failed: ${error.message}`);
          tally.check(input, fail);
        },
        { budgetMs, prepare },
      );
    },
  };
}

function decodeName(binary: boolean): string {
  return binary ? 'decode binary' : 'decode text';
}

function decodeScenario(binary: boolean, size: number, scratch: Buffer, ws: readonly [WsCodec, WsCodec]): Scenario {
  const name = decodeName(binary);
  const input = buildDecodeInput(binary, size);
  if (scratch.length < input.wire.length) throw new Error('scratch buffer too small');
  const [plain, native] = ws;
  return {
    name,
    size,
    frames: input.frames,
    payloadBytes: input.frames * size,
    contenders: {
      hotline: decodeContender(name, 'hotline', input, scratch, hotlineDecodeTarget),
      ws: decodeContender(name, 'ws', input, scratch, (onMessage) => wsDecodeTarget(plain, onMessage)),
      'ws+bufferutil': decodeContender(name, 'ws+bufferutil', input, scratch, (onMessage) =>
        wsDecodeTarget(native, onMessage),
      ),
    },
  };
}

// --------------------------------------------------------------------------------------
// encode

/** Encodes one frame and returns the buffers to write. */
type EncodeOne = () => readonly (Buffer | string)[];

function encodeContender(
  name: string,
  impl: ImplId,
  frames: number,
  opcode: number,
  masked: boolean,
  expected: Buffer,
  original: Buffer | string,
  encodeOne: EncodeOne,
): Contender {
  const fail = (message: string): never => {
    throw new BenchFailure(name, impl, message);
  };
  const frameBytes = referenceHeaderSize(expected.length, masked) + expected.length;
  const snapshot = typeof original === 'string' ? original : Buffer.from(original);
  const unchanged = (): boolean =>
    typeof original === 'string' ? original === snapshot : original.equals(snapshot as Buffer);

  return {
    verify() {
      const parts: Buffer[] = [];
      for (let i = 0; i < 3; i++) {
        for (const part of encodeOne()) {
          if (typeof part === 'string') fail('returned a string instead of bytes');
          parts.push(Buffer.from(part as Buffer));
        }
      }
      const parsed = parseReferenceFrames(Buffer.concat(parts));
      if (parsed.length !== 3) fail(`encoded ${parsed.length} frames, expected 3`);
      const keys = new Set<string>();
      parsed.forEach((frame, i) => {
        if (!frame.fin || frame.rsv !== 0 || frame.opcode !== opcode) fail(`frame ${i} has a wrong header`);
        if (frame.masked !== masked) fail(`frame ${i} is ${frame.masked ? '' : 'not '}masked`);
        if (!frame.payload.equals(expected)) fail(`frame ${i} carries the wrong payload`);
      });
      if (masked) {
        // Fresh random keys: three frames with one key (or an all-zero one) would be suspect.
        for (const frame of parsed) keys.add(frame.maskKey?.toString('hex') ?? '');
        if (keys.size !== 3 || keys.has('00000000')) fail('masking keys are not fresh random values');
      }
      if (!unchanged()) fail("modified the caller's payload");
    },
    measure(budgetMs) {
      return sample(
        () => {
          let total = 0;
          for (let i = 0; i < frames; i++) {
            const out = encodeOne();
            for (let j = 0; j < out.length; j++) total += out[j]!.length;
          }
          if (total !== frames * frameBytes) fail(`produced ${total} bytes, expected ${frames * frameBytes}`);
        },
        { budgetMs },
      );
    },
  };
}

function encodeName(binary: boolean, masked: boolean): string {
  return `encode ${binary ? 'binary' : 'text'} ${masked ? '(client, masked)' : '(server)'}`;
}

function encodeScenario(binary: boolean, masked: boolean, size: number, ws: readonly [WsCodec, WsCodec]): Scenario {
  const name = encodeName(binary, masked);
  const frames = Math.min(65536, Math.max(8, Math.floor(ENCODE_BYTES / size)));
  const opcode = binary ? Opcode.Binary : Opcode.Text;
  const text = binary ? '' : textPayload(size);
  const bytes = binary ? binaryPayload(size) : Buffer.from(text);
  const data: Buffer | string = binary ? bytes : text;

  const hotlineOptions: FrameOptions = { mask: masked };
  const hotline: EncodeOne = binary
    ? () => encodeFrame(opcode, bytes, hotlineOptions)
    : () => encodeTextFrame(opcode, text, hotlineOptions);
  // What ws.send passes: readOnly for a caller's Buffer (masking then copies instead of
  // masking the caller's bytes), not for a string (ws converts it to a fresh Buffer).
  const wsOptions: WsFrameOptions = { fin: true, rsv1: false, opcode, mask: masked, readOnly: binary };
  const wsOne = (codec: WsCodec): EncodeOne => () => codec.Sender.frame(data, wsOptions);

  const [plain, native] = ws;
  const make = (impl: ImplId, one: EncodeOne): Contender =>
    encodeContender(name, impl, frames, opcode, masked, bytes, data, one);
  return {
    name,
    size,
    frames,
    payloadBytes: frames * size,
    contenders: {
      hotline: make('hotline', hotline),
      ws: make('ws', wsOne(plain)),
      'ws+bufferutil': make('ws+bufferutil', wsOne(native)),
    },
  };
}

// --------------------------------------------------------------------------------------
// a sanity line: raw in-place masking of 1 MiB

function maskThroughput(unmask: (buffer: Buffer, key: Buffer) => void): number {
  const buffer = binaryPayload(MiB);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  for (let i = 0; i < 20; i++) unmask(buffer, key);
  const s = sample(() => unmask(buffer, key), { budgetMs: QUICK ? 10 : 50 });
  return (s.iterations * MiB) / s.seconds / 1e9;
}

// --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (args['system-malloc'] !== true) {
    const status = relaunchWithPinnedMalloc();
    if (status !== null) {
      process.exitCode = status;
      return;
    }
  }
  const started = nowNs();
  const loadStart = loadavg()[0]!;
  const wsCodecs = loadWsCodecs();
  const ws = [wsCodecs.plain, wsCodecs.native] as const;

  // One working copy shared by every decode scenario (each iteration refills it).
  const scratch = Buffer.alloc(Math.max(...SIZES.map(decodeWireLength)));
  scratch.fill(0); // touch every page now, not in the first sample
  // Scenarios are built only once selected (building a decode input takes a while).
  const planned: { label: string; build: () => Scenario }[] = [];
  for (const binary of [true, false]) {
    for (const size of SIZES) {
      planned.push({
        label: `${decodeName(binary)} ${formatSize(size)}`,
        build: () => decodeScenario(binary, size, scratch, ws),
      });
    }
  }
  for (const masked of [false, true]) {
    for (const binary of [true, false]) {
      for (const size of SIZES) {
        planned.push({
          label: `${encodeName(binary, masked)} ${formatSize(size)}`,
          build: () => encodeScenario(binary, masked, size, ws),
        });
      }
    }
  }
  const only = args.only;
  const selected = only === undefined ? planned : planned.filter((p) => p.label.includes(only));
  if (selected.length === 0) throw new Error(`--only ${only}: no scenario matches`);
  const scenarios = selected.map((p) => p.build());

  for (const scenario of scenarios) {
    for (const impl of IMPLS) scenario.contenders[impl].verify();
  }

  const maskRates = {
    hotline: maskThroughput((buffer, key) => void maskInPlace(buffer, key)),
    ws: maskThroughput((buffer, key) => wsCodecs.plain.bufferUtil.unmask(buffer, key)),
    'ws+bufferutil': maskThroughput((buffer, key) => wsCodecs.native.bufferUtil.unmask(buffer, key)),
  };

  /** MB/s per sample, by the chosen clock. */
  const mbps = new Samples();
  /** Minor page faults per MiB of payload, per sample. */
  const faults = new Samples();
  let wallSeconds = 0;
  let cpuSeconds = 0;
  let totalFaults = 0;
  let totalPayloadMiB = 0;
  const key = (scenario: Scenario, impl: ImplId): string => `${scenario.name}|${scenario.size}|${impl}`;
  for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round++) {
    const record = round >= WARMUP_ROUNDS;
    for (const [index, scenario] of scenarios.entries()) {
      for (const impl of rotate(IMPLS, round + index)) {
        await settle(args.gc === true);
        const s = scenario.contenders[impl].measure(BUDGET_MS);
        if (!record) continue;
        const payloadMiB = (s.iterations * scenario.payloadBytes) / MiB;
        const seconds = USE_WALL_CLOCK ? s.seconds : s.cpuSeconds;
        mbps.add(key(scenario, impl), (s.iterations * scenario.payloadBytes) / seconds / 1e6);
        faults.add(key(scenario, impl), s.pageFaults / payloadMiB);
        wallSeconds += s.seconds;
        cpuSeconds += s.cpuSeconds;
        totalFaults += s.pageFaults;
        totalPayloadMiB += payloadMiB;
      }
    }
  }

  const columns = columnsOf('scenario', 'size', 'hotline MB/s', 'ws MB/s', 'ws+bu MB/s', 'hotline/ws', 'hotline/ws+bu', 'hotline frames/s', 'ws frames/s', 'ws+bu frames/s');
  const rows: string[][] = [];
  let worstSpread = { value: 0, where: '' };
  for (const scenario of scenarios) {
    const m = (impl: ImplId): number => mbps.median(key(scenario, impl));
    const ratio = (other: ImplId): number =>
      medianRatio(mbps.get(key(scenario, 'hotline')), mbps.get(key(scenario, other)));
    const fps = (impl: ImplId): string => formatCount((m(impl) * 1e6) / scenario.size);
    rows.push([
      scenario.name,
      formatSize(scenario.size),
      formatNumber(m('hotline')),
      formatNumber(m('ws')),
      formatNumber(m('ws+bufferutil')),
      formatRatio(ratio('ws')),
      formatRatio(ratio('ws+bufferutil')),
      fps('hotline'),
      fps('ws'),
      fps('ws+bufferutil'),
    ]);
    for (const impl of IMPLS) {
      const spread = mbps.spread(key(scenario, impl));
      if (spread > worstSpread.value) {
        worstSpread = { value: spread, where: `${impl}, ${scenario.name} ${formatSize(scenario.size)}` };
      }
    }
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `codec: hotline vs ws Receiver/Sender, MB/s of payload per ${USE_WALL_CLOCK ? 'wall-clock' : 'CPU'} second ` +
      '(median of rounds; ratios are medians of per-round ratios; higher is better)',
  );
  console.log(
    `node ${process.version}, ws ${wsCodecs.version}, ${cpu} x${cpus().length}, ${allocatorDescription()}; ` +
      `${ROUNDS} rounds + ${WARMUP_ROUNDS} warm-up, ${BUDGET_MS} ms per sample; decode fed in ${READ_CHUNK / KiB} KiB chunks` +
      (QUICK ? ' [quick]' : ''),
  );
  console.log(
    `in-place masking of 1 MiB: hotline ${maskRates.hotline.toFixed(2)} GB/s, ` +
      `ws ${maskRates.ws.toFixed(2)} GB/s, ws+bufferutil ${maskRates['ws+bufferutil'].toFixed(2)} GB/s`,
  );
  console.log('');
  console.log(formatTable(columns, rows));
  if (args.samples === true) {
    console.log('');
    console.log(`per-round MB/s (${USE_WALL_CLOCK ? 'wall clock' : 'CPU time'}) and page faults per MiB:`);
    for (const scenario of scenarios) {
      for (const impl of IMPLS) {
        const values = mbps.get(key(scenario, impl)).map((v) => formatNumber(v));
        const perMiB = faults.get(key(scenario, impl)).map((v) => formatNumber(v));
        console.log(`  ${scenario.name} ${formatSize(scenario.size)} ${impl}: ${values.join(' ')}  (faults: ${perMiB.join(' ')})`);
      }
    }
  }
  console.log('');
  console.log(
    `notes: neither codec copies an unmasked binary payload (both return [header, payload]), so MB/s there only\n` +
      '  reflects per-frame cost. ws text is timed through Sender.frame(string), which converts the string to a Buffer; ws.send on a\n' +
      '  server instead hands the string to socket.write, which converts it.',
  );
  console.log(
    `all scenarios verified against a reference framer; largest spread between rounds: ` +
      `${formatPercent(worstSpread.value)} (${worstSpread.where})`,
  );
  console.log(
    `timed parts: ${wallSeconds.toFixed(1)} s wall, ${cpuSeconds.toFixed(1)} s CPU ` +
      `(wall/CPU ${(wallSeconds / cpuSeconds).toFixed(2)}; well above 1 means other processes competed for the CPU); ` +
      `${formatNumber(totalFaults / totalPayloadMiB)} page faults per MiB; ` +
      `load average ${loadStart.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}; took ${((nowNs() - started) / 1e9).toFixed(1)} s`,
  );
}

await main();
