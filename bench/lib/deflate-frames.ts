/**
 * permessage-deflate (RFC 7692) for the load generator of bench/deflate.ts: the offer it
 * makes, the pre-encoded (compressed, masked) frames it sends, a check of the server's
 * answer, and a counter of the server's replies that reads only their headers (whatever
 * their length, compressed or not) and checks the first few of every connection in full.
 *
 * It uses node:zlib directly and shares no code with src/, so a bug there cannot hide
 * itself by also being in the check.
 */
import { Buffer } from 'node:buffer';
import { constants, createInflateRaw, deflateRawSync, inflateRawSync, type InflateRaw } from 'node:zlib';
import { clientFrame, type FrameSink } from './raw-client.js';

/**
 * What the load generator offers. client_no_context_takeover promises that every message
 * it sends is compressed on its own, so its pre-encoded frames stay valid however often
 * they are replayed; client_max_window_bits (no value) lets the server name a smaller
 * window for them, which it then must not (those frames use 32 KiB).
 */
export const DEFLATE_OFFER = 'permessage-deflate; client_no_context_takeover; client_max_window_bits';

/** The empty stored block's last bytes, removed from the end of every message (RFC 7692 §7.2.1). */
export const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

const OPCODE_TEXT = 0x1;
const RSV1 = 0x40;

/** Compresses a message on its own, as a client with client_no_context_takeover does (zlib level 6, 32 KiB window). */
export function deflateAlone(data: Buffer): Buffer {
  const out = deflateRawSync(data, { level: 6, memLevel: 8, windowBits: 15, finishFlush: constants.Z_SYNC_FLUSH });
  if (out.length < 4 || !out.subarray(out.length - 4).equals(TAIL)) throw new Error('deflateAlone: no sync-flush tail');
  const body = out.subarray(0, out.length - 4);
  if (!inflateAlone(body).equals(data)) throw new Error('deflateAlone: does not inflate back');
  return body;
}

/** Inflates one message compressed on its own. */
export function inflateAlone(body: Buffer): Buffer {
  return inflateRawSync(Buffer.concat([body, TAIL]), { windowBits: 15, finishFlush: constants.Z_SYNC_FLUSH });
}

/**
 * The frames a client sends: message i is frame i, compressed (RSV1 set) when it has at
 * least `threshold` bytes. `ring` holds frames 0..n-1 twice over, so that any run of up to
 * n consecutive messages (wrapping around) is one contiguous slice: frames k..k+c-1 are
 * `ring.subarray(offsets[k], offsets[k + c])` for k < n, c <= n.
 */
export interface ClientMessages {
  /** The messages as sent before compression. */
  payloads: readonly Buffer[];
  ring: Buffer;
  offsets: readonly number[];
  /** compressedBefore[k]: how many of ring frames 0..k-1 are compressed. */
  compressedBefore: readonly number[];
}

export function clientMessages(payloads: readonly Buffer[], threshold: number): ClientMessages {
  const frames = payloads.map((payload) => {
    if (payload.length < threshold) return { frame: clientFrame(OPCODE_TEXT, payload), compressed: false };
    const frame = clientFrame(OPCODE_TEXT, deflateAlone(payload));
    frame[0]! |= RSV1;
    return { frame, compressed: true };
  });
  const twice = [...frames, ...frames];
  const offsets = [0];
  const compressedBefore = [0];
  for (const { frame, compressed } of twice) {
    offsets.push(offsets[offsets.length - 1]! + frame.length);
    compressedBefore.push(compressedBefore[compressedBefore.length - 1]! + (compressed ? 1 : 0));
  }
  return { payloads, ring: Buffer.concat(twice.map((f) => f.frame)), offsets, compressedBefore };
}

/** What the server agreed to, from its 101's Sec-WebSocket-Extensions. */
export interface Negotiated {
  /** The header's value as sent. */
  header: string;
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

/**
 * Reads the server's answer to DEFLATE_OFFER from its response head; throws unless it
 * accepted permessage-deflate, once, with valid parameters, and with a client window our
 * frames fit.
 */
export function parseNegotiation(responseHead: string): Negotiated {
  const values: string[] = [];
  for (const line of responseHead.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === 'sec-websocket-extensions') {
      values.push(line.slice(colon + 1).trim());
    }
  }
  const header = values.join(', ');
  if (header === '') throw new Error('the server did not accept permessage-deflate (no Sec-WebSocket-Extensions in its 101)');
  const elements = header.split(',').map((element) => element.split(';').map((part) => part.trim()));
  if (elements.length !== 1 || elements[0]![0] !== 'permessage-deflate') {
    throw new Error(`unexpected Sec-WebSocket-Extensions: ${header}`);
  }
  const result: Negotiated = {
    header,
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
  };
  const seen = new Set<string>();
  for (const param of elements[0]!.slice(1)) {
    const [name = '', value] = param.split('=').map((s) => s.trim().replace(/^"(.*)"$/, '$1'));
    if (seen.has(name)) throw new Error(`${name} given twice in ${header}`);
    seen.add(name);
    const bits = Number(value);
    const validBits = value !== undefined && /^(?:8|9|1[0-5])$/.test(value);
    if (name === 'server_no_context_takeover' && value === undefined) result.serverNoContextTakeover = true;
    else if (name === 'client_no_context_takeover' && value === undefined) result.clientNoContextTakeover = true;
    else if (name === 'server_max_window_bits' && validBits) result.serverMaxWindowBits = bits;
    else if (name === 'client_max_window_bits' && validBits) result.clientMaxWindowBits = bits;
    else throw new Error(`invalid parameter '${param}' in ${header}`);
  }
  if (result.clientMaxWindowBits < 15) {
    throw new Error(`the server asks for client_max_window_bits=${result.clientMaxWindowBits}; the pre-encoded frames use 15`);
  }
  return result;
}

/** Totals over every connection of a job. */
export interface WireTotals {
  frames: number;
  /** Frame bytes: headers and payloads (not TCP/IP). */
  bytes: number;
  /** Frames with RSV1 set. */
  compressed: number;
}

/** A stand-in counter for connections that must not receive anything yet. */
export const NO_FRAMES: FrameSink = {
  frames: 0,
  feed(): number {
    throw new Error('a frame arrived before any message was sent');
  },
  atBoundary: true,
};

/**
 * Checks the first `count` replies of one connection in full against what was sent: an
 * uncompressed one byte for byte, a compressed one after inflating it. With
 * `contextTakeover` (the server did not answer server_no_context_takeover) the replies go
 * through one long-lived streaming inflater, as a browser's would; otherwise each must
 * inflate on its own. Failures go to `fail`; `pending` collects the asynchronous checks.
 */
export class ReplyVerifier {
  /** Replies checked so far (including ones whose asynchronous check is still running). */
  checked = 0;
  private inflater: InflateRaw | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly count: number,
    private readonly contextTakeover: boolean,
    private readonly expected: (reply: number) => Buffer,
    private readonly fail: (message: string) => void,
    private readonly pending: Array<Promise<void>>,
  ) {}

  get wanted(): boolean {
    return this.checked < this.count;
  }

  check(compressed: boolean, payload: Buffer): void {
    const reply = this.checked++;
    const expected = this.expected(reply);
    const compare = (got: Buffer, how: string): void => {
      if (got.equals(expected)) return;
      let at = 0;
      while (at < got.length && got[at] === expected[at]) at++;
      this.fail(
        `reply ${reply + 1} (${how}) differs from message sent at byte ${at} (${got.length} B, expected ${expected.length} B): ` +
          `got ${JSON.stringify(got.subarray(at, at + 24).toString('latin1'))}, ` +
          `expected ${JSON.stringify(expected.subarray(at, at + 24).toString('latin1'))}`,
      );
    };
    if (!compressed) {
      compare(payload, 'uncompressed');
    } else if (!this.contextTakeover) {
      let inflated: Buffer;
      try {
        inflated = inflateAlone(payload);
      } catch (error) {
        return this.fail(`reply ${reply + 1} does not inflate on its own: ${error instanceof Error ? error.message : String(error)}`);
      }
      compare(inflated, 'inflated on its own');
    } else {
      const last = this.checked === this.count;
      this.chain = this.chain
        .then(() => this.inflateStreaming(payload))
        .then(
          (inflated) => compare(inflated, 'inflated in a streaming context'),
          (error: unknown) =>
            this.fail(`reply ${reply + 1} does not inflate in context: ${error instanceof Error ? error.message : String(error)}`),
        )
        .finally(() => {
          if (last) this.close();
        });
      this.pending.push(this.chain);
    }
  }

  close(): void {
    this.inflater?.close();
    this.inflater = null;
  }

  private inflateStreaming(payload: Buffer): Promise<Buffer> {
    const inflater = (this.inflater ??= createInflateRaw({ windowBits: 15 }));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const onData = (chunk: Buffer): void => void chunks.push(chunk);
      inflater.on('data', onData);
      inflater.once('error', reject);
      inflater.write(payload);
      inflater.write(TAIL);
      inflater.flush(constants.Z_SYNC_FLUSH, () => {
        inflater.off('data', onData);
        inflater.off('error', reject);
        resolve(Buffer.concat(chunks));
      });
    });
  }
}

/**
 * Counts one connection's server frames, which must all be final unmasked text frames
 * (RSV1 set or not), by their headers: it adds frames, wire bytes and compressed frames to
 * `totals` and skips payloads, except for the replies `verifier` still wants, whose
 * payloads it gathers (the read buffer is shared, so they are copied) and hands over.
 */
export class DeflateReplyCounter implements FrameSink {
  frames = 0;
  private readonly header = Buffer.alloc(14);
  private have = 0;
  private need = 2;
  private inPayload = false;
  private left = 0;
  private length = 0;
  private compressed = false;
  private chunks: Buffer[] | null = null;

  constructor(
    private readonly totals: WireTotals,
    private readonly verifier: ReplyVerifier | null,
    /** Where this connection starts in the message cycle (the job's to use). */
    readonly start: number,
  ) {}

  get atBoundary(): boolean {
    return !this.inPayload && this.have === 0;
  }

  feed(buffer: Buffer, start: number, end: number): number {
    let done = 0;
    let i = start;
    while (i < end) {
      if (!this.inPayload) {
        const take = Math.min(this.need - this.have, end - i);
        buffer.copy(this.header, this.have, i, i + take);
        this.have += take;
        i += take;
        if (this.have < this.need) continue;
        if (this.need === 2) {
          const length7 = this.header[1]! & 0x7f;
          const extra = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
          if (extra > 0) {
            this.need += extra;
            continue;
          }
        }
        this.startPayload();
      } else {
        const take = Math.min(this.left, end - i);
        if (this.chunks !== null) this.chunks.push(Buffer.from(buffer.subarray(i, i + take)));
        this.left -= take;
        i += take;
      }
      if (this.inPayload && this.left === 0) {
        this.endFrame();
        done++;
      }
    }
    this.frames += done;
    return done;
  }

  private startPayload(): void {
    const b0 = this.header[0]!;
    const b1 = this.header[1]!;
    const length7 = b1 & 0x7f;
    if ((b0 & 0x80) === 0 || (b0 & 0x30) !== 0 || (b0 & 0x0f) !== OPCODE_TEXT || (b1 & 0x80) !== 0) {
      throw new Error(
        `frame ${this.frames + 1}: header ${this.header.subarray(0, this.need).toString('hex')} is not a final unmasked text frame`,
      );
    }
    let length = length7;
    if (length7 === 126) length = this.header.readUInt16BE(2);
    else if (length7 === 127) length = this.header.readUInt32BE(2) * 2 ** 32 + this.header.readUInt32BE(6);
    this.length = length;
    this.left = length;
    this.compressed = (b0 & RSV1) !== 0;
    this.inPayload = true;
    this.chunks = this.verifier?.wanted === true ? [] : null;
  }

  private endFrame(): void {
    const totals = this.totals;
    totals.frames++;
    totals.bytes += this.need + this.length;
    if (this.compressed) totals.compressed++;
    if (this.chunks !== null) {
      this.verifier!.check(this.compressed, Buffer.concat(this.chunks));
      this.chunks = null;
    }
    this.inPayload = false;
    this.have = 0;
    this.need = 2;
  }
}
