import { Buffer } from 'node:buffer';
import type { DirectWriter } from './direct-writes.js';

/**
 * Frames written together up to this total size are joined into one buffer: one write,
 * one system call, and copying a few KiB costs less than Node's vectored-write path.
 */
export const JOIN_LIMIT = 8 * 1024;

/** Runs of frames below this size are joined even in a batch that is too big to join whole. */
const SMALL_CHUNK = 1024;

/**
 * Writes queued frames to a socket in as few writes as possible: one buffer when they are
 * small together, otherwise one vectored write in which big payloads go by reference and
 * runs of small frames are joined. `writer` writes them straight to the stream where it
 * can. Returns false once the socket's buffer is past its high-water mark.
 */
export function writeChunks(chunks: readonly Buffer[], writer: DirectWriter): boolean {
  if (chunks.length === 1) return writer.write(chunks[0]!);
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  if (total <= JOIN_LIMIT) return writer.write(joined(chunks, total));
  return writer.writev(vectored(chunks), total);
}

/**
 * What {@link writeChunks} would write for `chunks` (`total` bytes), made once for many
 * sockets: one buffer, or the chunks of one vectored write.
 */
export function planWrite(chunks: readonly Buffer[], total: number): Buffer | Buffer[] {
  if (chunks.length === 1) return chunks[0]!;
  return total <= JOIN_LIMIT ? Buffer.concat(chunks, total) : vectored(chunks);
}

/** Writes what {@link planWrite} made; returns what {@link writeChunks} returns. */
export function writePlanned(plan: Buffer | Buffer[], total: number, writer: DirectWriter): boolean {
  return Buffer.isBuffer(plan) ? writer.write(plan) : writer.writev(plan, total);
}

/** The chunks of one vectored write: big payloads by reference, runs of small frames joined. */
function vectored(chunks: readonly Buffer[]): Buffer[] {
  const batch: Buffer[] = [];
  let runStart = 0;
  let runLength = 0;
  for (let i = 0; i <= chunks.length; i++) {
    const chunk = chunks[i];
    if (chunk !== undefined && chunk.length < SMALL_CHUNK) {
      runLength += chunk.length;
      continue;
    }
    if (i - runStart === 1) batch.push(chunks[runStart]!);
    else if (i > runStart) batch.push(Buffer.concat(chunks.slice(runStart, i), runLength));
    if (chunk !== undefined) batch.push(chunk);
    runStart = i + 1;
    runLength = 0;
  }
  return batch;
}

// Subscribers of one topic usually have identical queues (the same frames, published to
// all of them): while shared joining is on, a queue made of exactly the buffers of the
// previous one reuses its joined copy instead of building another.
let sharing = false;
let lastChunks: readonly Buffer[] | null = null;
let lastJoined: Buffer | null = null;

function joined(chunks: readonly Buffer[], total: number): Buffer {
  if (sharing && lastChunks !== null && lastChunks.length === chunks.length) {
    let same = true;
    for (let i = 0; i < chunks.length; i++) {
      if (chunks[i] !== lastChunks[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastJoined!;
  }
  const out = Buffer.concat(chunks, total);
  if (sharing) {
    lastChunks = chunks;
    lastJoined = out;
  }
  return out;
}

/**
 * Runs `fn` with shared joining on. Only for a synchronous batch of flushes: buffers are
 * compared by identity, which says nothing once the application may have reused one.
 */
export function withSharedJoins(fn: () => void): void {
  sharing = true;
  try {
    fn();
  } finally {
    sharing = false;
    lastChunks = null;
    lastJoined = null;
  }
}
