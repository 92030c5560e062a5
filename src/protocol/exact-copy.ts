import { Buffer } from 'node:buffer';

/**
 * `first` (then `second`) copied into a store of exactly their size. What a connection keeps
 * past the read it came in (an unfinished message, bytes held while paused) is copied so:
 * the transport may hand several reads out of one slab, and a peer's few bytes must not
 * keep a slab alive.
 */
export function exactCopy(first: Uint8Array, second?: Uint8Array): Buffer {
  const length = first.length + (second?.length ?? 0);
  const copy = Buffer.allocUnsafeSlow(length);
  copy.set(first, 0);
  if (second !== undefined) copy.set(second, first.length);
  return copy;
}
