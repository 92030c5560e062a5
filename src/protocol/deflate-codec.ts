import type { Buffer } from 'node:buffer';

/**
 * The compression work of permessage-deflate (RFC 7692 §7.2), which the sans-I/O core
 * leaves to whoever owns zlib. One codec serves one connection and keeps whatever context
 * the negotiated parameters require; the core calls it once per whole message.
 */
export interface DeflateCodec {
  /**
   * Compresses a whole message as RFC 7692 §7.2.1 says: deflate blocks ending in an
   * empty stored block whose trailing `00 00 ff ff` is removed. Returns null to send the
   * message uncompressed (for example when zlib cannot honour the negotiated window).
   */
  compress(data: Buffer): Buffer | null;
  /**
   * Decompresses a whole message's payload (the codec appends `00 00 ff ff` itself).
   * Returns null as soon as the output would pass `limit` bytes (0: no limit), without
   * inflating the rest: a small message that inflates past the limit is a compression
   * bomb. Throws when the data is not valid deflate.
   */
  decompress(data: Buffer, limit: number): Buffer | null;
}
