/**
 * The fuzzing peer's permessage-deflate (RFC 7692), independent of hotline's: its own
 * Sec-WebSocket-Extensions parser, the negotiation rules of §5 and §7.1 (to judge what the
 * peer under test offers or answers, and to learn what was agreed), and compression and
 * decompression with node:zlib *streaming* contexts flushed with Z_SYNC_FLUSH, one per
 * direction, kept across messages unless no context takeover was agreed. (hotline itself
 * compresses each message in one synchronous call with the history as a preset dictionary,
 * so the two sides of a conformance case never share an approach.)
 */
import { Buffer } from 'node:buffer';
import { constants as zlib, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import type { DeflateParamsSpec, Role } from './model.js';

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** The tail that RFC 7692 §7.2.1 removes from every compressed message and §7.2.2 puts back. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

// ───────────────────────────── the header ─────────────────────────────

/** One element of a Sec-WebSocket-Extensions list. */
export interface ExtensionElement {
  readonly name: string;
  /** `true` for a parameter without a value; quoted values are unquoted. */
  readonly params: ReadonlyArray<readonly [string, string | true]>;
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (const c of s) if (!TCHAR.test(c)) return false;
  return true;
}

/**
 * Parses a Sec-WebSocket-Extensions value (RFC 6455 §9.1: `1#extension`, `extension =
 * token *( ";" param )`, `param = token [ "=" (token | quoted-string) ]`, a quoted value
 * being a token once unquoted). Returns a description of the first problem instead of
 * throwing.
 */
export function parseExtensionHeader(value: string): ExtensionElement[] | string {
  const elements: ExtensionElement[] = [];
  let i = 0;
  const ows = (): void => {
    while (value[i] === ' ' || value[i] === '\t') i++;
  };
  const token = (): string => {
    const start = i;
    while (i < value.length && TCHAR.test(value[i]!)) i++;
    return value.slice(start, i);
  };
  while (true) {
    ows();
    if (i >= value.length) break;
    if (value[i] === ',') {
      i++;
      continue;
    }
    const name = token();
    if (name === '') return `expected an extension name at offset ${i} of ${JSON.stringify(value)}`;
    const params: Array<[string, string | true]> = [];
    ows();
    while (value[i] === ';') {
      i++;
      ows();
      const param = token();
      if (param === '') return `expected a parameter name at offset ${i} of ${JSON.stringify(value)}`;
      ows();
      let paramValue: string | true = true;
      if (value[i] === '=') {
        i++;
        ows();
        if (value[i] === '"') {
          let unquoted = '';
          i++;
          while (i < value.length && value[i] !== '"') {
            if (value[i] === '\\') i++;
            unquoted += value[i] ?? '';
            i++;
          }
          if (value[i] !== '"') return `unterminated quoted string in ${JSON.stringify(value)}`;
          i++;
          if (!isToken(unquoted)) return `quoted value ${JSON.stringify(unquoted)} of ${param} is not a token`;
          paramValue = unquoted;
        } else {
          paramValue = token();
          if (paramValue === '') return `expected a value for ${param} at offset ${i} of ${JSON.stringify(value)}`;
        }
        ows();
      }
      params.push([param, paramValue]);
    }
    elements.push({ name, params });
    if (i < value.length) {
      if (value[i] !== ',') return `unexpected ${JSON.stringify(value[i])} at offset ${i} of ${JSON.stringify(value)}`;
      i++;
    }
  }
  if (elements.length === 0) return `no extension in ${JSON.stringify(value)}`;
  return elements;
}

const WINDOW_BITS = /^(?:8|9|1[0-5])$/;

/**
 * The permessage-deflate parameters of one element, checked by the rules of RFC 7692
 * §7.1: only the four parameters, each at most once; the two no_context_takeover ones
 * without a value; window bits 8–15 written without leading zeros; client_max_window_bits
 * without a value only in an offer. Returns a description of the first problem otherwise.
 */
export function deflateSpecOf(element: ExtensionElement, kind: 'offer' | 'response'): DeflateParamsSpec | string {
  const spec: {
    serverNoContextTakeover?: boolean;
    clientNoContextTakeover?: boolean;
    serverMaxWindowBits?: number;
    clientMaxWindowBits?: number | true;
  } = {};
  const seen = new Set<string>();
  for (const [name, value] of element.params) {
    const shown = value === true ? name : `${name}=${value}`;
    if (seen.has(name)) return `parameter ${name} given twice`;
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        if (value !== true) return `${shown}: takes no value`;
        if (name === 'server_no_context_takeover') spec.serverNoContextTakeover = true;
        else spec.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
        if (value === true || !WINDOW_BITS.test(value)) return `${shown}: the value must be 8 to 15`;
        spec.serverMaxWindowBits = Number(value);
        break;
      case 'client_max_window_bits':
        if (value === true) {
          if (kind === 'response') return `${shown}: a response must give a value`;
          spec.clientMaxWindowBits = true;
        } else {
          if (!WINDOW_BITS.test(value)) return `${shown}: the value must be 8 to 15`;
          spec.clientMaxWindowBits = Number(value);
        }
        break;
      default:
        return `unknown parameter ${shown}`;
    }
  }
  return spec;
}

/** The element as a header value, parameters in the order of RFC 7692 §7.1. */
export function formatDeflateSpec(spec: DeflateParamsSpec): string {
  let out = PERMESSAGE_DEFLATE;
  if (spec.serverNoContextTakeover === true) out += '; server_no_context_takeover';
  if (spec.clientNoContextTakeover === true) out += '; client_no_context_takeover';
  if (spec.serverMaxWindowBits !== undefined) out += `; server_max_window_bits=${spec.serverMaxWindowBits}`;
  if (spec.clientMaxWindowBits !== undefined) {
    out += spec.clientMaxWindowBits === true ? '; client_max_window_bits' : `; client_max_window_bits=${spec.clientMaxWindowBits}`;
  }
  return out;
}

export function sameDeflateSpec(a: DeflateParamsSpec, b: DeflateParamsSpec): boolean {
  return formatDeflateSpec(a) === formatDeflateSpec(b);
}

/**
 * Why `response` is not a valid acceptance of `offer` (RFC 7692 §7.1), or null when it is:
 * a requested server_no_context_takeover must be answered (§7.1.1.1); a requested
 * server_max_window_bits must be answered with the same or a smaller value (§7.1.2.1);
 * client_max_window_bits may only be answered when offered, and not above an offered value
 * (§7.1.2.2). The server may add server_no_context_takeover, client_no_context_takeover and
 * server_max_window_bits of its own.
 */
export function acceptanceProblem(offer: DeflateParamsSpec, response: DeflateParamsSpec): string | null {
  if (offer.serverNoContextTakeover === true && response.serverNoContextTakeover !== true) {
    return 'the offer requests server_no_context_takeover and the response does not answer it';
  }
  if (offer.serverMaxWindowBits !== undefined) {
    if (response.serverMaxWindowBits === undefined) {
      return `the offer requests server_max_window_bits=${offer.serverMaxWindowBits} and the response does not answer it`;
    }
    if (response.serverMaxWindowBits > offer.serverMaxWindowBits) {
      return `server_max_window_bits=${response.serverMaxWindowBits} is above the requested ${offer.serverMaxWindowBits}`;
    }
  }
  if (response.clientMaxWindowBits !== undefined) {
    if (offer.clientMaxWindowBits === undefined) return 'client_max_window_bits answered but not offered';
    if (typeof offer.clientMaxWindowBits === 'number' && response.clientMaxWindowBits !== true && response.clientMaxWindowBits > offer.clientMaxWindowBits) {
      return `client_max_window_bits=${response.clientMaxWindowBits} is above the offered ${offer.clientMaxWindowBits}`;
    }
  }
  return null;
}

/** The permessage-deflate offers of a header value, valid or not (others are left out). */
export function deflateOffersOf(header: string): Array<DeflateParamsSpec | string> {
  if (header === '') return [];
  const elements = parseExtensionHeader(header);
  if (typeof elements === 'string') return [];
  return elements.filter((e) => e.name === PERMESSAGE_DEFLATE).map((e) => deflateSpecOf(e, 'offer'));
}

// ───────────────────────────── what was agreed ─────────────────────────────

/** One direction of a connection: how its sender compresses and its receiver inflates. */
export interface Direction {
  /** The sender resets its context after every message. */
  readonly noContextTakeover: boolean;
  /** The sender's LZ77 window (log2). */
  readonly windowBits: number;
}

/** What the fuzzing peer uses: its own sending side and the peer's. */
export interface Agreement {
  readonly send: Direction;
  readonly receive: Direction;
}

function numeric(bits: number | true | undefined): number {
  return typeof bits === 'number' ? bits : 15;
}

/**
 * The directions for the fuzzing peer once `response` accepted `offer`, where `role` is the
 * role of the implementation under test. The fuzzing peer holds itself to its own offer
 * where RFC 7692 makes the offer a promise (client_no_context_takeover, a
 * client_max_window_bits value), and holds the peer to exactly what the response says: a
 * peer that agreed to reset its context is inflated with a fresh context per message, and
 * a window is inflated with exactly the agreed number of bits, so a peer that refers back
 * further than it may fails to inflate.
 */
export function agreement(role: Role, offer: DeflateParamsSpec, response: DeflateParamsSpec): Agreement {
  const server: Direction = {
    noContextTakeover: response.serverNoContextTakeover === true,
    windowBits: numeric(response.serverMaxWindowBits),
  };
  const clientBits = Math.min(numeric(response.clientMaxWindowBits), numeric(offer.clientMaxWindowBits));
  if (role === 'server') {
    // We are the client.
    return {
      send: { noContextTakeover: response.clientNoContextTakeover === true || offer.clientNoContextTakeover === true, windowBits: clientBits },
      receive: server,
    };
  }
  // We are the server: we can only rely on what we answered, and on a window value offered.
  return { send: server, receive: { noContextTakeover: response.clientNoContextTakeover === true, windowBits: clientBits } };
}

export interface Negotiation {
  /** Why the handshake does not satisfy the case (empty when it does). */
  readonly problems: string[];
  /** What was agreed, when permessage-deflate was accepted validly; null otherwise. */
  readonly agreed: Agreement | null;
}

/**
 * Server role: judges the server's Sec-WebSocket-Extensions (`received`, null when absent)
 * against what we offered (`offerHeader`) and what the case expects (`expected`, null:
 * declined).
 */
export function judgeServerResponse(offerHeader: string, received: string | null, expected: DeflateParamsSpec | null): Negotiation {
  const problems: string[] = [];
  const offers = deflateOffersOf(offerHeader).filter((o): o is DeflateParamsSpec => typeof o !== 'string');
  const expectedText = expected === null ? 'no permessage-deflate' : JSON.stringify(formatDeflateSpec(expected));
  if (received === null) {
    if (expected !== null) problems.push(`the server declined permessage-deflate (no Sec-WebSocket-Extensions); expected ${expectedText}`);
    return { problems, agreed: null };
  }
  const elements = parseExtensionHeader(received);
  if (typeof elements === 'string') {
    problems.push(`the server's Sec-WebSocket-Extensions is malformed: ${elements}`);
    return { problems, agreed: null };
  }
  const others = elements.filter((e) => e.name !== PERMESSAGE_DEFLATE);
  for (const e of others) problems.push(`the server accepted the extension ${JSON.stringify(e.name)}, which it does not implement`);
  const accepted = elements.filter((e) => e.name === PERMESSAGE_DEFLATE);
  if (accepted.length === 0) {
    if (expected !== null) problems.push(`the server declined permessage-deflate; expected ${expectedText}`);
    return { problems, agreed: null };
  }
  if (offers.length === 0) {
    problems.push(`the server answered ${JSON.stringify(received)} without a valid permessage-deflate offer to accept`);
    return { problems, agreed: null };
  }
  if (accepted.length > 1) {
    problems.push(`the server accepted permessage-deflate ${accepted.length} times: ${JSON.stringify(received)}`);
    return { problems, agreed: null };
  }
  const response = deflateSpecOf(accepted[0]!, 'response');
  if (typeof response === 'string') {
    problems.push(`the server's permessage-deflate response is invalid: ${response} (in ${JSON.stringify(received)})`);
    return { problems, agreed: null };
  }
  // §5: the response accepts one of the offers; the first it is valid for is the one.
  const offer = offers.find((o) => acceptanceProblem(o, response) === null);
  if (offer === undefined) {
    problems.push(`the server's ${JSON.stringify(received)} accepts none of the offers: ${acceptanceProblem(offers[0]!, response)}`);
    return { problems, agreed: null };
  }
  if (expected === null) {
    problems.push(`the server accepted ${JSON.stringify(received)}; expected it to decline`);
  } else if (!sameDeflateSpec(response, expected)) {
    problems.push(`the server answered ${JSON.stringify(formatDeflateSpec(response))}, expected ${expectedText}`);
  }
  return { problems, agreed: agreement('server', offer, response) };
}

/**
 * Client role: judges the client's Sec-WebSocket-Extensions (`received`) against the offer
 * the case configured it to make (`expectedOffer`), and returns what our `response` agrees.
 */
export function judgeClientOffer(received: string | null, expectedOffer: string, response: DeflateParamsSpec | null): Negotiation {
  const problems: string[] = [];
  const expected = deflateOffersOf(expectedOffer);
  const want = expected.length === 1 && typeof expected[0] !== 'string' ? expected[0]! : null;
  if (want === null) {
    problems.push(`the case's offer ${JSON.stringify(expectedOffer)} is not one valid permessage-deflate offer`);
    return { problems, agreed: null };
  }
  if (received === null) {
    problems.push(`the client offered no extension; expected ${JSON.stringify(formatDeflateSpec(want))}`);
    return { problems, agreed: null };
  }
  const elements = parseExtensionHeader(received);
  if (typeof elements === 'string') {
    problems.push(`the client's Sec-WebSocket-Extensions is malformed: ${elements}`);
    return { problems, agreed: null };
  }
  const offers = elements.filter((e) => e.name === PERMESSAGE_DEFLATE);
  if (offers.length !== 1 || elements.length !== 1) {
    problems.push(`the client offered ${JSON.stringify(received)}; expected exactly ${JSON.stringify(formatDeflateSpec(want))}`);
  } else {
    const offer = deflateSpecOf(offers[0]!, 'offer');
    if (typeof offer === 'string') problems.push(`the client's permessage-deflate offer is invalid: ${offer} (in ${JSON.stringify(received)})`);
    else if (!sameDeflateSpec(offer, want)) {
      problems.push(`the client offered ${JSON.stringify(received)}; expected ${JSON.stringify(formatDeflateSpec(want))}`);
    }
  }
  if (response === null) return { problems, agreed: null };
  const problem = acceptanceProblem(want, response);
  if (problem !== null) problems.push(`the case's response ${JSON.stringify(formatDeflateSpec(response))} does not accept its offer: ${problem}`);
  return { problems, agreed: agreement('client', want, response) };
}

/**
 * The options that make hotline's client offer exactly `offer` (one valid
 * permessage-deflate offer), in the shape of its `perMessageDeflate` option.
 */
export function clientOptionsFor(offerHeader: string): {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits: number | boolean;
} {
  const offers = deflateOffersOf(offerHeader);
  const offer = offers[0];
  if (offers.length !== 1 || offer === undefined || typeof offer === 'string') {
    throw new Error(`offer ${JSON.stringify(offerHeader)} is not one valid permessage-deflate offer`);
  }
  return {
    serverNoContextTakeover: offer.serverNoContextTakeover === true,
    clientNoContextTakeover: offer.clientNoContextTakeover === true,
    ...(offer.serverMaxWindowBits === undefined ? {} : { serverMaxWindowBits: offer.serverMaxWindowBits }),
    clientMaxWindowBits: offer.clientMaxWindowBits ?? false,
  };
}

// ───────────────────────────── compression ─────────────────────────────

type ZlibStream = DeflateRaw | InflateRaw;

/**
 * A zlib stream used one message at a time: each write is flushed with Z_SYNC_FLUSH (the
 * stream's default flush), and its whole output is collected when the write completes.
 * After an error the stream is replaced (the case has failed by then anyway).
 */
class ZlibContext {
  private stream: ZlibStream;
  private chunks: Buffer[] = [];

  constructor(private readonly create: () => ZlibStream) {
    this.stream = this.open();
  }

  private open(): ZlibStream {
    const stream = this.create();
    // Paused mode: output waits in the stream until read, and reading lets zlib go on.
    stream.on('readable', () => this.drain(stream));
    stream.on('error', () => {});
    return stream;
  }

  private drain(stream: ZlibStream): void {
    if (stream !== this.stream) return;
    let chunk: Buffer | null;
    while ((chunk = stream.read() as Buffer | null) !== null) this.chunks.push(chunk);
  }

  run(input: Buffer): Promise<Buffer> {
    const stream = this.stream;
    this.chunks = [];
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (error: Error | null | undefined): void => {
        if (done) return;
        done = true;
        stream.off('error', finish);
        if (error) {
          this.stream = this.open();
          stream.destroy();
          reject(error);
          return;
        }
        this.drain(stream);
        const out = Buffer.concat(this.chunks);
        this.chunks = [];
        resolve(out);
      };
      stream.once('error', finish);
      stream.write(input, finish);
    });
  }

  /** Forgets the history: the next message starts from an empty window. */
  reset(): void {
    this.stream.reset();
  }

  close(): void {
    this.stream.destroy();
  }
}

/** The fuzzing peer's sending side. */
export class MessageDeflater {
  private readonly context: ZlibContext;

  constructor(private readonly direction: Direction) {
    if (direction.windowBits < 9) throw new Error(`cannot compress with a ${direction.windowBits}-bit window (zlib's minimum is 9)`);
    this.context = new ZlibContext(() =>
      createDeflateRaw({ windowBits: direction.windowBits, memLevel: 8, level: zlib.Z_DEFAULT_COMPRESSION, flush: zlib.Z_SYNC_FLUSH }),
    );
  }

  /** One message's payload as RFC 7692 §7.2.1 sends it: sync-flushed, without the 4-byte tail. */
  async compress(data: Buffer): Promise<Buffer> {
    // zlib does nothing for an empty write; an empty message is one empty stored block,
    // 00 00 00 ff ff, which leaves the window as it is and ends on a byte boundary (§7.2.3.6).
    if (data.length === 0) return Buffer.from([0x00]);
    const out = await this.context.run(data);
    if (this.direction.noContextTakeover) this.context.reset();
    if (out.length < 4 || !out.subarray(out.length - 4).equals(TAIL)) {
      throw new Error(`zlib's sync flush did not end with 00 00 ff ff (${out.length} bytes)`);
    }
    return out.subarray(0, out.length - 4);
  }

  close(): void {
    this.context.close();
  }
}

/**
 * The fuzzing peer's receiving side: inflates the peer's compressed messages (§7.2.2) with
 * a context of the agreed window, reset after each message when the peer agreed to reset
 * its own (so a reference into an earlier message fails), and, for windows below 15 bits,
 * checks that no reference reaches further back than the window.
 */
export class MessageInflater {
  private readonly context: ZlibContext;

  constructor(private readonly direction: Direction) {
    this.context = new ZlibContext(() => createInflateRaw({ windowBits: direction.windowBits, flush: zlib.Z_SYNC_FLUSH }));
  }

  /** Rejects with the reason when the data does not inflate, or breaks the agreed window. */
  async inflate(data: Buffer): Promise<Buffer> {
    const stream = Buffer.concat([data, TAIL]);
    const out = await this.context.run(stream);
    if (this.direction.noContextTakeover) this.context.reset();
    if (this.direction.windowBits < 15) {
      const window = 1 << this.direction.windowBits;
      const scan = scanDeflate(stream);
      if (scan.farthest > window) {
        throw new Error(`it refers ${scan.farthest} bytes back, beyond the agreed window of ${window} bytes (${this.direction.windowBits} bits)`);
      }
      if (scan.length !== out.length) throw new Error(`zlib inflated ${out.length} bytes where the DEFLATE data holds ${scan.length}`);
    }
    return out;
  }

  close(): void {
    this.context.close();
  }
}

// ───────────────────────────── window check ─────────────────────────────
// zlib's inflater does not hold a stream to its window: a distance is only refused when it
// reaches before everything zlib still has (its window plus the output of the current
// call), so data compressed with 32 KiB distances inflates fine with `windowBits: 9`. To
// hold a peer to the window it agreed (RFC 7692 §7.1.2), the fuzzing peer reads the
// DEFLATE stream (RFC 1951) itself and finds the farthest back-reference.

const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/**
 * A canonical Huffman code (RFC 1951 §3.2.2) as a lookup table indexed by the next
 * `maxLength` input bits: each entry is symbol << 4 | code length (0: no such code).
 */
interface Huffman {
  readonly table: Uint32Array;
  readonly maxLength: number;
}

function huffman(lengths: ArrayLike<number>): Huffman {
  const counts = new Uint16Array(16);
  let maxLength = 1;
  for (let i = 0; i < lengths.length; i++) {
    counts[lengths[i]!]!++;
    if (lengths[i]! > maxLength) maxLength = lengths[i]!;
  }
  counts[0] = 0;
  const next = new Uint16Array(16);
  let code = 0;
  for (let len = 1; len <= 15; len++) {
    code = (code + counts[len - 1]!) << 1;
    next[len] = code;
  }
  const table = new Uint32Array(1 << maxLength);
  for (let symbol = 0; symbol < lengths.length; symbol++) {
    const len = lengths[symbol]!;
    if (len === 0) continue;
    const c = next[len]!++;
    // Codes are sent most significant bit first into a stream read least significant first.
    let reversed = 0;
    for (let b = 0; b < len; b++) reversed |= ((c >> b) & 1) << (len - 1 - b);
    for (let k = reversed; k < table.length; k += 1 << len) table[k] = (symbol << 4) | len;
  }
  return { table, maxLength };
}

let fixedCodes: { lit: Huffman; dist: Huffman } | null = null;

function fixed(): { lit: Huffman; dist: Huffman } {
  if (fixedCodes === null) {
    const lengths = new Uint8Array(288);
    lengths.fill(8, 0, 144);
    lengths.fill(9, 144, 256);
    lengths.fill(7, 256, 280);
    lengths.fill(8, 280, 288);
    fixedCodes = { lit: huffman(lengths), dist: huffman(new Uint8Array(30).fill(5)) };
  }
  return fixedCodes;
}

class BitReader {
  private pos = 0;
  private bitBuffer = 0;
  private bitCount = 0;

  constructor(private readonly data: Buffer) {}

  get exhausted(): boolean {
    return this.pos >= this.data.length && this.bitCount === 0;
  }

  private fill(n: number): void {
    while (this.bitCount < n && this.pos < this.data.length) {
      this.bitBuffer |= this.data[this.pos++]! << this.bitCount;
      this.bitCount += 8;
    }
  }

  bits(n: number): number {
    if (n === 0) return 0;
    this.fill(n);
    if (this.bitCount < n) throw new Error('the DEFLATE data ends in the middle of a block');
    const out = this.bitBuffer & ((1 << n) - 1);
    this.bitBuffer >>>= n;
    this.bitCount -= n;
    return out;
  }

  /** Drops the bits up to the next byte boundary. */
  align(): void {
    const drop = this.bitCount & 7;
    this.bitBuffer >>>= drop;
    this.bitCount -= drop;
  }

  /** Skips `n` whole bytes (after `align`). */
  skipBytes(n: number): void {
    const buffered = Math.min(n, this.bitCount >> 3);
    this.bitBuffer = buffered * 8 >= 32 ? 0 : this.bitBuffer >>> (buffered * 8);
    this.bitCount -= buffered * 8;
    const rest = n - buffered;
    if (this.pos + rest > this.data.length) throw new Error('a stored block runs past the end of the data');
    this.pos += rest;
  }

  decode(h: Huffman): number {
    this.fill(h.maxLength);
    const entry = h.table[this.bitBuffer & ((1 << h.maxLength) - 1)]!;
    const len = entry & 15;
    if (len === 0 || len > this.bitCount) {
      throw new Error(len === 0 ? 'an invalid Huffman code' : 'the DEFLATE data ends in the middle of a block');
    }
    this.bitBuffer >>>= len;
    this.bitCount -= len;
    return entry >>> 4;
  }
}

/**
 * Reads a raw DEFLATE stream up to its end or its final block, without inflating it: the
 * farthest back-reference in bytes, and the length of what it inflates to. Throws for data
 * that is not DEFLATE.
 */
export function scanDeflate(data: Buffer): { farthest: number; length: number } {
  const r = new BitReader(data);
  let farthest = 0;
  let length = 0;
  while (!r.exhausted) {
    const final = r.bits(1);
    const type = r.bits(2);
    if (type === 0) {
      r.align();
      const len = r.bits(16);
      if ((len ^ 0xffff) !== r.bits(16)) throw new Error('a stored block whose LEN and NLEN disagree');
      r.skipBytes(len);
      length += len;
    } else if (type === 3) {
      throw new Error('a block of the reserved type 3');
    } else {
      let lit: Huffman;
      let dist: Huffman;
      if (type === 1) {
        ({ lit, dist } = fixed());
      } else {
        const hlit = r.bits(5) + 257;
        const hdist = r.bits(5) + 1;
        const hclen = r.bits(4) + 4;
        const codeLengths = new Uint8Array(19);
        for (let i = 0; i < hclen; i++) codeLengths[CODE_LENGTH_ORDER[i]!] = r.bits(3);
        const lengthCode = huffman(codeLengths);
        const lengths = new Uint8Array(hlit + hdist);
        for (let i = 0; i < lengths.length; ) {
          const symbol = r.decode(lengthCode);
          if (symbol < 16) {
            lengths[i++] = symbol;
            continue;
          }
          let repeat: number;
          let value = 0;
          if (symbol === 16) {
            if (i === 0) throw new Error('a repeated code length with nothing to repeat');
            value = lengths[i - 1]!;
            repeat = 3 + r.bits(2);
          } else if (symbol === 17) {
            repeat = 3 + r.bits(3);
          } else {
            repeat = 11 + r.bits(7);
          }
          if (i + repeat > lengths.length) throw new Error('code lengths run past their count');
          lengths.fill(value, i, i + repeat);
          i += repeat;
        }
        lit = huffman(lengths.subarray(0, hlit));
        dist = huffman(lengths.subarray(hlit));
      }
      while (true) {
        const symbol = r.decode(lit);
        if (symbol < 256) {
          length++;
          continue;
        }
        if (symbol === 256) break;
        const l = symbol - 257;
        if (l >= 29) throw new Error('an invalid length symbol');
        length += LENGTH_BASE[l]! + r.bits(LENGTH_EXTRA[l]!);
        const d = r.decode(dist);
        if (d >= 30) throw new Error('an invalid distance symbol');
        const distance = DIST_BASE[d]! + r.bits(DIST_EXTRA[d]!);
        if (distance > farthest) farthest = distance;
      }
    }
    if (final === 1) break;
  }
  return { farthest, length };
}
