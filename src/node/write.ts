import type { Socket } from 'node:net';
import { Buffer } from 'node:buffer';

/**
 * Frames written together up to this total size are joined into one buffer: one write,
 * one system call, and copying a few KiB costs less than Node's vectored-write path.
 */
export const JOIN_LIMIT = 8 * 1024;

/** Runs of frames below this size are joined even in a batch that is too big to join whole. */
const SMALL_CHUNK = 1024;

/**
 * Writes queued frames to a socket in as few writes as possible: one buffer when they are
 * small together, otherwise a corked batch (Node hands it to the kernel as one vectored
 * write) in which big payloads go by reference and runs of small frames are joined.
 * Returns what the last `socket.write` returned (false once the socket's buffer is past
 * its high-water mark).
 */
export function writeChunks(socket: Socket, chunks: readonly Buffer[]): boolean {
  if (chunks.length === 1) return socket.write(chunks[0]!);
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  if (total <= JOIN_LIMIT) return socket.write(joined(chunks, total));
  socket.cork();
  let ok = true;
  let runStart = 0;
  let runLength = 0;
  for (let i = 0; i <= chunks.length; i++) {
    const chunk = chunks[i];
    if (chunk !== undefined && chunk.length < SMALL_CHUNK) {
      runLength += chunk.length;
      continue;
    }
    if (i - runStart === 1) ok = socket.write(chunks[runStart]!);
    else if (i > runStart) ok = socket.write(Buffer.concat(chunks.slice(runStart, i), runLength));
    if (chunk !== undefined) ok = socket.write(chunk);
    runStart = i + 1;
    runLength = 0;
  }
  socket.uncork();
  return ok;
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
