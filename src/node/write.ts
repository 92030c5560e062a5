import type { Socket } from 'node:net';
import { Buffer } from 'node:buffer';

/** Frames written together below this total size are joined into one buffer: one write, one syscall. */
export const JOIN_LIMIT = 64 * 1024;

/**
 * Writes queued frames to a socket in as few writes as possible: one buffer when they are
 * small together, otherwise a corked batch that Node hands to the kernel as one vectored
 * write. Returns what the last `socket.write` returned (false once the socket's buffer
 * is past its high-water mark).
 */
export function writeChunks(socket: Socket, chunks: readonly Buffer[]): boolean {
  if (chunks.length === 1) return socket.write(chunks[0]!);
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  if (total <= JOIN_LIMIT) return socket.write(Buffer.concat(chunks, total));
  socket.cork();
  let ok = true;
  for (const chunk of chunks) ok = socket.write(chunk);
  socket.uncork();
  return ok;
}
