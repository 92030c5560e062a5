// The zlib codec against zlib's own streaming contexts: a message compressed with the
// history passed as a dictionary must inflate in a peer's long-lived inflater, and the
// other way round, for every window size and for histories far longer than the window.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import fc from 'fast-check';
import type { DeflateParams } from '../protocol/index.js';
import { SlidingWindow, ZlibDeflateCodec, deflateMessage } from './deflate.js';

const TAIL = Buffer.from([0, 0, 0xff, 0xff]);

/** Runs a zlib stream over one message with a sync flush, as a long-lived peer would. */
function through(stream: DeflateRaw | InflateRaw, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
    };
    stream.on('data', onData);
    stream.once('error', reject);
    stream.write(input);
    stream.flush(constants.Z_SYNC_FLUSH, () => {
      stream.off('data', onData);
      stream.off('error', reject);
      resolve(Buffer.concat(chunks));
    });
  });
}

function params(bits: number, noTakeover = false): DeflateParams {
  return {
    serverNoContextTakeover: noTakeover,
    clientNoContextTakeover: noTakeover,
    serverMaxWindowBits: bits,
    clientMaxWindowBits: bits,
  };
}

/** Messages with a lot of repetition between them, so back-references cross messages. */
const messages = fc.array(
  fc.oneof(
    fc.constantFrom('{"op":"msg","ch":"room:1","data":"hello"}', 'the quick brown fox jumps over the lazy dog '),
    fc.string({ maxLength: 300 }),
    fc.integer({ min: 1, max: 40_000 }).map((n) => 'abcdefgh'.repeat(Math.ceil(n / 8)).slice(0, n)),
    fc.uint8Array({ maxLength: 5_000 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
  ),
  { minLength: 1, maxLength: 40 },
);

describe('ZlibDeflateCodec with context takeover', () => {
  for (const bits of [9, 10, 12, 15]) {
    test(`compress: a long-lived inflater with a ${2 ** bits}-byte window reads every message`, async () => {
      await fc.assert(
        fc.asyncProperty(messages, async (texts) => {
          const codec = new ZlibDeflateCodec(params(bits), 'server', '');
          const inflater = createInflateRaw({ windowBits: bits });
          for (const text of texts) {
            const data = Buffer.from(text, 'latin1');
            const compressed = codec.compress(data)!;
            const out = await through(inflater, Buffer.concat([compressed, TAIL]));
            assert.equal(out.toString('latin1'), text);
          }
          inflater.close();
        }),
        { numRuns: 15 },
      );
    });

    test(`decompress: what a long-lived deflater with a ${2 ** bits}-byte window writes`, async () => {
      await fc.assert(
        fc.asyncProperty(messages, async (texts) => {
          const codec = new ZlibDeflateCodec(params(bits), 'server', '');
          const deflater = createDeflateRaw({ windowBits: bits === 8 ? 9 : bits });
          for (const text of texts) {
            const compressed = await through(deflater, Buffer.from(text, 'latin1'));
            assert.deepEqual(compressed.subarray(-4), TAIL);
            const out = codec.decompress(compressed.subarray(0, -4), 0)!;
            assert.equal(out.toString('latin1'), text);
          }
          deflater.close();
        }),
        { numRuns: 15 },
      );
    });
  }

  test('window bits 8: messages go uncompressed, and a peer using 8 bits is still read', () => {
    const codec = new ZlibDeflateCodec(params(8), 'server', '');
    assert.equal(codec.compress(Buffer.from('Hello Hello Hello')), null);
    assert.equal(codec.sharedWindowBits, null);
    const other = new ZlibDeflateCodec(params(9), 'client', '');
    assert.equal(codec.decompress(other.compress(Buffer.from('Hello Hello Hello'))!, 0)!.toString(), 'Hello Hello Hello');
  });

  test('without context takeover the compressed form is shareable and independent of history', () => {
    const codec = new ZlibDeflateCodec(params(15, true), 'server', '');
    assert.equal(codec.sharedWindowBits, 15);
    const first = codec.compress(Buffer.from('Hello'))!;
    assert.deepEqual(codec.compress(Buffer.from('Hello')), first);
    assert.deepEqual(deflateMessage(Buffer.from('Hello'), 15), first);
  });

  test('decompress stops at the limit instead of inflating everything', () => {
    const codec = new ZlibDeflateCodec(params(15), 'server', '');
    const bomb = deflateMessage(Buffer.alloc(64 * 1024 * 1024), 15)!;
    const started = process.hrtime.bigint();
    assert.equal(codec.decompress(bomb, 1024 * 1024), null);
    // Not a timing assertion: the reported figure shows inflation stopped near the limit.
    console.log(`bomb of ${bomb.length} bytes refused in ${Number(process.hrtime.bigint() - started) / 1e6} ms`);
  });
});

describe('SlidingWindow', () => {
  test('keeps exactly the last size bytes of everything appended', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 30 }), fc.integer({ min: 1, max: 1024 }), (pieces, size) => {
        const window = new SlidingWindow(size);
        let all = Buffer.alloc(0);
        for (const piece of pieces) {
          window.append(Buffer.from(piece));
          all = Buffer.concat([all, piece]);
          const expected = all.subarray(Math.max(0, all.length - size));
          assert.deepEqual(window.bytes ?? Buffer.alloc(0), expected);
        }
      }),
    );
  });
});
