/**
 * What one message costs hotline's permessage-deflate codec (src/node/deflate.ts), part by
 * part, beside alternatives: a companion to bench/deflate.ts for reading its profiles.
 *
 *   node --import tsx bench/lib/deflate-costs.ts [--quick]
 *
 * Per message, in CPU time of this process (best of 5 runs; steadier than wall time on a
 * shared machine), with minor page faults and, for compression, the bytes produced:
 * - compress: with server_no_context_takeover (hotline's default), and with context
 *   takeover at several windows (the history passed as a preset dictionary, which zlib
 *   hashes in full on every message);
 * - decompress: with a receive window (what hotline keeps when it does not answer
 *   client_no_context_takeover) and without;
 * - Node's one-shot zlib calls with their default 16 KiB output chunks and with one chunk
 *   the size of the output;
 * - the floor: one native zlib context reused across messages (reset, then one write) through
 *   Node's internal zlib handle. That handle is not a public API: this only shows how much
 *   of a message's cost is making a zlib stream and context for it.
 *
 * The messages are bench/deflate.ts's (bench/lib/deflate-payloads.ts). Run it pinned to a
 * quiet core (taskset -c 1 ...) for stable figures.
 */
import { Buffer } from 'node:buffer';
import { parseArgs } from 'node:util';
import { constants, createDeflateRaw, createInflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import { ZlibDeflateCodec } from '../../src/node/deflate.js';
import type { DeflateParams } from '../../src/protocol/index.js';
import { deflateAlone, TAIL } from './deflate-frames.js';
import { chatMessages, jsonDocuments } from './deflate-payloads.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const QUICK = args.quick === true;

interface Row {
  name: string;
  micros: number;
  faults: number;
  bytes: number | null;
}

/** Best of 5 runs of `count` calls: CPU µs per call, page faults per call, and the mean of what `fn` returns. */
function measure(name: string, count: number, fn: (i: number) => number | null): Row {
  for (let i = 0; i < Math.min(count, 500); i++) fn(i);
  let best = { micros: Infinity, faults: 0, bytes: null as number | null };
  for (let run = 0; run < 5; run++) {
    let total = 0;
    let measured = true;
    const faults = process.resourceUsage().minorPageFault;
    const cpu = process.cpuUsage();
    for (let i = 0; i < count; i++) {
      const bytes = fn(i);
      if (bytes === null) measured = false;
      else total += bytes;
    }
    const used = process.cpuUsage(cpu);
    const micros = (used.user + used.system) / count;
    if (micros < best.micros) {
      best = { micros, faults: (process.resourceUsage().minorPageFault - faults) / count, bytes: measured ? total / count : null };
    }
  }
  return { name, ...best };
}

function params(serverNoContextTakeover: boolean, clientNoContextTakeover: boolean, serverBits = 15): DeflateParams {
  return { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits: serverBits, clientMaxWindowBits: 15 };
}

/** The internal handle of a Node zlib stream: one native context, written to synchronously. */
interface ZlibHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
  reset(): void;
}

/** One reused native context: reset, one synchronous write with a sync flush; returns the output length. */
function reusedContext(stream: unknown, outSize: number): (input: Buffer) => number {
  const handle = (stream as { _handle?: ZlibHandle })._handle;
  const state = (stream as { _writeState?: Uint32Array })._writeState;
  if (handle === undefined || state === undefined) throw new Error('this Node has no zlib _handle/_writeState');
  const out = Buffer.allocUnsafe(outSize);
  return (input) => {
    handle.reset();
    handle.writeSync(constants.Z_SYNC_FLUSH, input, 0, input.length, out, 0, out.length);
    if (state[1] !== 0) throw new Error('reusedContext: input left over');
    return out.length - state[0]!;
  };
}

function suite(label: string, messages: readonly Buffer[], count: number): Row[] {
  const n = messages.length;
  const packed = messages.map(deflateAlone);
  const packedWithTail = packed.map((p) => Buffer.concat([p, TAIL]));
  const largest = Math.max(...messages.map((m) => m.length));
  const rows: Row[] = [];
  const row = (name: string, fn: (i: number) => number | null): void => void rows.push(measure(`${label}: ${name}`, count, fn));

  const plain = new ZlibDeflateCodec(params(true, false), 'server', '');
  row('codec.compress, server_no_context_takeover (default)', (i) => plain.compress(messages[i % n]!)?.length ?? null);
  for (const bits of [15, 13, 11]) {
    const takeover = new ZlibDeflateCodec(params(false, false, bits), 'server', '');
    row(`codec.compress, context takeover, ${2 ** bits / 1024} KiB window`, (i) => takeover.compress(messages[i % n]!)?.length ?? null);
  }
  const keeping = new ZlibDeflateCodec(params(true, false), 'server', '');
  row('codec.decompress, receive window kept (default)', (i) => keeping.decompress(packed[i % n]!, 0)?.length ?? null);
  const hinted = new ZlibDeflateCodec(params(true, true), 'server', '');
  row('codec.decompress, client_no_context_takeover answered', (i) => hinted.decompress(packed[i % n]!, 0)?.length ?? null);
  row('deflateRawSync, fresh context (windowBits 15, memLevel 8)', (i) =>
    deflateRawSync(messages[i % n]!, { finishFlush: constants.Z_SYNC_FLUSH }).length,
  );
  row('inflateRawSync, 16 KiB output chunks (default)', (i) =>
    inflateRawSync(packedWithTail[i % n]!, { finishFlush: constants.Z_SYNC_FLUSH }).length,
  );
  const chunk = Math.max(16 * 1024, largest + 1024);
  row(`inflateRawSync, one ${Math.round(chunk / 1024)} KiB output chunk`, (i) =>
    inflateRawSync(packedWithTail[i % n]!, { finishFlush: constants.Z_SYNC_FLUSH, chunkSize: chunk }).length,
  );
  const deflater = reusedContext(createDeflateRaw({ windowBits: 15 }), largest + 1024);
  row('one reused native deflate context (internal handle)', (i) => deflater(messages[i % n]!) - 4);
  const inflater = reusedContext(createInflateRaw({ windowBits: 15 }), largest + 1024);
  row('one reused native inflate context (internal handle)', (i) => inflater(packedWithTail[i % n]!));
  return rows;
}

const rows = [
  ...suite('chat', chatMessages(512), QUICK ? 500 : 4_000),
  ...suite('64 KiB', jsonDocuments(8, 64 * 1024), QUICK ? 40 : 300),
];
const width = Math.max(...rows.map((r) => r.name.length));
console.log(`${'per message'.padEnd(width)}  CPU µs  faults  bytes out`);
for (const r of rows) {
  console.log(
    `${r.name.padEnd(width)}  ${r.micros.toFixed(1).padStart(6)}  ${r.faults.toFixed(1).padStart(6)}  ${r.bytes === null ? '' : r.bytes.toFixed(0).padStart(9)}`,
  );
}
