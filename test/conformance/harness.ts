/**
 * The fuzzing peer's engine: runs one case against one peer (the implementation under
 * test, reached through a {@link Link}), records everything the peer sends, and judges it
 * strictly against the case's expectation.
 *
 * Transports plug in through {@link Peer}: the server role uses a TCP connection to
 * hotline's echo server (fuzzing-client.ts), the client role an in-memory link to
 * hotline's sans-I/O client (memory-peer.ts), and the Node client a real TCP connection
 * to a listener that answers its handshake (tcp-client-peer.ts).
 */
import { Buffer, isUtf8 } from 'node:buffer';
import {
  DEFAULT_MAX_PAYLOAD,
  FAIL_FAST_DEADLINE_MS,
  SMALL_MAX_PAYLOAD,
  type Action,
  type ConformanceCase,
  type DeflateMessage,
  type DeflateSetup,
  type Echo,
  type FrameSpec,
  type Limit,
  type Role,
} from './model.js';
import { MessageDeflater, MessageInflater, judgeClientOffer, judgeServerResponse, type Negotiation } from './deflate.js';
import {
  FrameReader,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  describeBytes,
  describeFrame,
  describePayload,
  encodeFragmented,
  encodeFrames,
  encodedLength,
  materialize,
  opcodeName,
  payloadEquals,
  writeFrame,
  type ReadFrame,
} from './wire.js';
import { quietWindow } from '../support/wait.js';

/** Where the harness's transport delivers what the peer sends. */
export interface LinkListener {
  /** Bytes from the peer, in order. */
  data(bytes: Buffer): void;
  /** The peer closed the transport (TCP FIN or reset; the in-memory peer asked to close it). */
  end(): void;
}

/** The harness's end of one connection to the peer under test, after the opening handshake. */
export interface Link {
  /**
   * The opening handshake's Sec-WebSocket-Extensions: the server's response (server role)
   * or the client's request (client role); null when the field was absent. Left out by
   * transports without a handshake, where no extension can be negotiated.
   */
  readonly extensions?: string | null;
  /**
   * Delivers bytes as one write. Resolves once they are handed over (and, on TCP, flushed
   * to the kernel), so that the next write is a separate read on the peer's side as far as
   * the transport allows. Writes after the transport closed are dropped.
   */
  write(bytes: Buffer): Promise<void>;
  /** Closes the harness's side of the transport. Idempotent. */
  close(): void;
}

export interface ConnectOptions {
  /** The message size limit the peer must run with for this case. */
  limit: Limit;
  /**
   * The case's permessage-deflate: server role, what to offer (and which server to ask);
   * client role, what the client must be configured to offer and what to answer.
   */
  deflate?: DeflateSetup;
}

/** An implementation under test, in one role, that the harness can open connections to. */
export interface Peer {
  /** The role of the implementation under test. */
  readonly role: Role;
  /** Opens a fresh connection (opening handshake done) whose output goes to `listener`. */
  connect(listener: LinkListener, options: ConnectOptions): Promise<Link>;
}

/** The maximum payload each limit stands for; peers configure themselves from it. */
export function maxPayloadFor(limit: Limit): number {
  return limit === 'small' ? SMALL_MAX_PAYLOAD : DEFAULT_MAX_PAYLOAD;
}

/** What the peer did, as the harness saw it. */
export type Observed =
  | { readonly kind: 'text' | 'binary'; readonly data: Buffer }
  | { readonly kind: 'ping' | 'pong'; readonly data: Buffer }
  | { readonly kind: 'close'; readonly code: number | null; readonly reason: Buffer }
  | { readonly kind: 'violation'; readonly detail: string }
  | { readonly kind: 'eof' };

export interface CaseReport {
  readonly id: string;
  readonly role: Role;
  readonly passed: boolean;
  /** Why the case failed (empty when it passed). */
  readonly failures: readonly string[];
  /** What the harness sent, one line per action. */
  readonly sent: readonly string[];
  readonly observed: readonly Observed[];
  readonly elapsedMs: number;
}

/** Close codes a peer may put on the wire (RFC 6455 §7.4, IANA registry). */
function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/**
 * Turns the peer's frames into {@link Observed} events, checking every rule RFC 6455 puts
 * on a sender in the peer's role: masking, RSV bits, opcodes, control frame limits,
 * fragmentation order, UTF-8 of text and close reasons, and silence after the close frame.
 *
 * With permessage-deflate agreed (an `inflater`), RSV1 is allowed on the first frame of a
 * data message and nowhere else (RFC 7692 §6), and a message with RSV1 is inflated with the
 * peer's context before it is recorded. Inflating is asynchronous (node:zlib streams), so
 * while a message is being inflated, everything after it (frames, the end of the
 * transport) waits in a queue: events are recorded in the order the peer sent them.
 */
class PeerOutput {
  private messageOpcode = 0;
  private messageCompressed = false;
  private parts: Buffer[] = [];
  private partsLength = 0;
  private closeSeen = false;
  private queued = 0;
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly senderRole: Role,
    private readonly record: (event: Observed) => void,
    private readonly inflater: MessageInflater | null,
  ) {}

  /** Records an event, after whatever is still queued. */
  emit(event: Observed): void {
    if (this.queued === 0) this.record(event);
    else this.enqueue(() => this.record(event));
  }

  /** Resolves once everything queued is recorded. */
  async idle(): Promise<void> {
    while (this.queued > 0) await this.tail;
  }

  private enqueue(task: () => void | Promise<void>): void {
    this.queued++;
    this.tail = this.tail.then(task).finally(() => {
      this.queued--;
    });
  }

  frame(f: ReadFrame): void {
    const violation = (detail: string): void => this.emit({ kind: 'violation', detail });
    if (this.closeSeen) {
      violation(`${opcodeName(f.opcode)} frame after the close frame`);
      return;
    }
    const mustMask = this.senderRole === 'client';
    if (f.masked !== mustMask) violation(`${this.senderRole} sent a ${f.masked ? 'masked' : 'unmasked'} ${opcodeName(f.opcode)} frame`);
    const op = f.opcode;
    const firstOfMessage = op === OP_TEXT || op === OP_BINARY;
    if (this.inflater === null) {
      if (f.rsv !== 0) violation(`RSV bits ${f.rsv} set on a ${opcodeName(op)} frame without a negotiated extension`);
    } else if ((f.rsv & ~(firstOfMessage ? 4 : 0)) !== 0) {
      violation(
        `RSV bits ${f.rsv} set on a ${opcodeName(op)} frame (permessage-deflate allows RSV1 on the first frame of a message only)`,
      );
    }
    if (op >= 0x8) {
      if (!f.fin) violation(`fragmented ${opcodeName(op)} frame`);
      if (f.payload.length > 125) violation(`${opcodeName(op)} frame with ${f.payload.length} payload bytes`);
    }
    switch (op) {
      case OP_TEXT:
      case OP_BINARY:
        if (this.messageOpcode !== 0) violation(`new ${opcodeName(op)} frame inside a fragmented message`);
        this.messageOpcode = op;
        this.messageCompressed = this.inflater !== null && (f.rsv & 4) !== 0;
        this.parts = [];
        this.partsLength = 0;
        this.addPart(f);
        return;
      case OP_CONTINUATION:
        if (this.messageOpcode === 0) {
          violation('continuation frame without a message to continue');
          return;
        }
        this.addPart(f);
        return;
      case OP_PING:
        this.emit({ kind: 'ping', data: f.payload });
        return;
      case OP_PONG:
        this.emit({ kind: 'pong', data: f.payload });
        return;
      case OP_CLOSE:
        this.closeSeen = true;
        this.close(f.payload);
        return;
      default:
        violation(`frame with reserved opcode 0x${op.toString(16)}`);
    }
  }

  private addPart(f: ReadFrame): void {
    this.parts.push(f.payload);
    this.partsLength += f.payload.length;
    if (!f.fin) return;
    const data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLength);
    const binary = this.messageOpcode === OP_BINARY;
    const compressed = this.messageCompressed;
    this.messageOpcode = 0;
    this.messageCompressed = false;
    this.parts = [];
    this.partsLength = 0;
    const deliver = (message: Buffer): void => {
      if (!binary && !isUtf8(message)) this.record({ kind: 'violation', detail: `text message that is not valid UTF-8: ${describeBytes(message)}` });
      this.record({ kind: binary ? 'binary' : 'text', data: message });
    };
    if (!compressed) {
      if (this.queued === 0) deliver(data);
      else this.enqueue(() => deliver(data));
      return;
    }
    const inflater = this.inflater!;
    this.enqueue(async () => {
      let inflated: Buffer;
      try {
        inflated = await inflater.inflate(data);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        this.record({
          kind: 'violation',
          detail: `compressed ${binary ? 'binary' : 'text'} message (${describeBytes(data)}) is not valid under the agreed permessage-deflate: ${why}`,
        });
        return;
      }
      deliver(inflated);
    });
  }

  private close(payload: Buffer): void {
    if (payload.length === 0) {
      this.emit({ kind: 'close', code: null, reason: payload });
      return;
    }
    if (payload.length === 1) {
      this.emit({ kind: 'violation', detail: 'close frame with a 1-byte payload' });
      this.emit({ kind: 'close', code: null, reason: payload });
      return;
    }
    const code = payload.readUInt16BE(0);
    const reason = payload.subarray(2);
    if (!isSendableCloseCode(code)) this.emit({ kind: 'violation', detail: `close frame with code ${code}, which may not be sent` });
    if (!isUtf8(reason)) this.emit({ kind: 'violation', detail: `close reason that is not valid UTF-8: ${describeBytes(reason)}` });
    this.emit({ kind: 'close', code, reason });
  }
}

/** A counting semaphore: at most `limit` holders at a time. */
export class Semaphore {
  private active = 0;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.active++;
    return () => {
      this.active--;
      this.queue.shift()?.();
    };
  }
}

/** Cases that move many megabytes run at most this many at a time (per process). */
const heavyGate = new Semaphore(2);

function closePayload(code: number | undefined, reason: string | Uint8Array | undefined): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const reasonBytes = reason === undefined ? Buffer.alloc(0) : typeof reason === 'string' ? Buffer.from(reason, 'utf8') : Buffer.from(reason);
  const out = Buffer.allocUnsafe(2 + reasonBytes.length);
  out.writeUInt16BE(code, 0);
  reasonBytes.copy(out, 2);
  return out;
}

/** Splits `bytes` into writes of `chop` bytes (or one write). */
function chopped(bytes: Buffer, chop: number | undefined): Buffer[] {
  if (chop === undefined || chop <= 0 || chop >= bytes.length) return [bytes];
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chop) out.push(bytes.subarray(i, i + chop));
  return out;
}

/** Renders an action for the report. */
export function describeAction(action: Action, defaultMasked: boolean): string {
  const chop = (n: number | undefined): string => (n === undefined ? '' : ` in writes of ${n} B`);
  switch (action.do) {
    case 'send': {
      const shown = action.frames.slice(0, 12).map((f) => describeFrame(f, defaultMasked));
      if (action.frames.length > shown.length) shown.push(`… ${action.frames.length - shown.length} more frames`);
      return `send ${shown.join(' + ')}${chop(action.chop)}`;
    }
    case 'fragmented':
      return `send ${opcodeName(action.opcode)} message ${describePayload(action.payload)} in frames of ${action.fragmentSize} B${chop(action.chop)}`;
    case 'pieces':
      return `send ${describeFrame(action.frame, defaultMasked)} in pieces cut at payload offsets [${action.cuts.join(', ')}]${
        action.failFastAfter === undefined ? '' : `, close required after piece ${action.failFastAfter}`
      }`;
    case 'raw':
      return `send raw bytes ${describeBytes(action.bytes, 32)}${chop(action.chop)}`;
    case 'sync':
      return `sync (wait for ${action.events} echoes/pongs)`;
    case 'awaitClose':
      return 'wait for the close frame (fail fast)';
    case 'deflate': {
      const shown = action.messages.slice(0, 6).map(describeDeflateMessage);
      if (action.messages.length > shown.length) shown.push(`… ${action.messages.length - shown.length} more messages`);
      return `send ${action.messages.length === 1 ? '' : `${action.messages.length} messages: `}${shown.join(' + ')}${chop(action.chop)}`;
    }
    case 'close': {
      if (action.code === undefined) return 'send close (empty payload)';
      const reason = action.reason === undefined ? '' : ` reason ${typeof action.reason === 'string' ? describeBytes(Buffer.from(action.reason)) : describeBytes(action.reason)}`;
      return `send close ${action.code}${reason}`;
    }
  }
}

function describeDeflateMessage(m: DeflateMessage): string {
  const compress = m.compress ?? true;
  const parts = [compress ? 'compressed' : 'uncompressed'];
  if (m.fragmentSize !== undefined) parts.push(`in frames of ${m.fragmentSize} B`);
  if (m.emptyFirst === true) parts.push('empty first frame');
  if (m.emptyLast === true) parts.push('empty last frame');
  if (m.rsv !== undefined) parts.push(`first frame rsv=${m.rsv}`);
  if (m.continuationRsv !== undefined) parts.push(`continuation rsv=${m.continuationRsv}`);
  for (const x of m.interleave ?? []) parts.push(`${describeFrame(x.frame, true).replace(/\(.*/, '')} after frame ${x.after + 1}`);
  return `${opcodeName(m.opcode)} ${describePayload(m.payload)} (${parts.join(', ')})`;
}

/**
 * Encodes `messages` as a `deflate` action prescribes, compressing in order with `deflater`
 * (the fuzzing peer's sending context).
 */
async function encodeDeflateMessages(messages: readonly DeflateMessage[], deflater: MessageDeflater | null, masked: boolean): Promise<Buffer> {
  const frames: FrameSpec[] = [];
  for (const m of messages) {
    const compress = m.compress ?? true;
    const data = materialize(m.payload);
    let body = data;
    if (compress) {
      if (deflater === null) throw new Error('a compressed message, but permessage-deflate was not agreed');
      body = await deflater.compress(data);
    }
    const pieces: Buffer[] = [];
    if (m.emptyFirst === true) pieces.push(Buffer.alloc(0));
    const size = m.fragmentSize ?? Math.max(1, body.length);
    for (let i = 0; i < body.length; i += size) pieces.push(body.subarray(i, i + size));
    if (pieces.length === 0) pieces.push(body);
    if (m.emptyLast === true) pieces.push(Buffer.alloc(0));
    pieces.forEach((piece, i) => {
      frames.push({
        opcode: i === 0 ? m.opcode : OP_CONTINUATION,
        payload: piece,
        fin: i === pieces.length - 1,
        rsv: i === 0 ? (m.rsv ?? (compress ? 4 : 0)) : (m.continuationRsv ?? 0),
      });
      for (const x of m.interleave ?? []) if (x.after === i && i < pieces.length - 1) frames.push(x.frame);
    });
  }
  return encodeFrames(frames, masked);
}

/** The extension negotiation of a case, as the harness judges it from the link. */
function negotiate(role: Role, c: ConformanceCase, link: Link): Negotiation {
  const received = link.extensions;
  const setup = c.deflate;
  if (role === 'server') {
    // A server that answers an extension nobody offered is wrong in every case.
    if (received === undefined) return { problems: setup === undefined ? [] : ['the transport has no opening handshake to negotiate permessage-deflate'], agreed: null };
    return judgeServerResponse(setup?.offer ?? '', received, setup?.response ?? null);
  }
  // Client role: without a setup the client offers what it offers by default, and we decline.
  if (setup === undefined) return { problems: [], agreed: null };
  if (received === undefined) return { problems: ['the transport has no opening handshake to negotiate permessage-deflate'], agreed: null };
  return judgeClientOffer(received, setup.offer, setup.response);
}

export function describeObserved(o: Observed): string {
  switch (o.kind) {
    case 'text':
    case 'binary':
    case 'ping':
    case 'pong':
      return `${o.kind} ${describeBytes(o.data)}`;
    case 'close':
      return `close ${o.code === null ? '(empty)' : o.code}${o.reason.length > 0 ? ` reason ${describeBytes(o.reason)}` : ''}`;
    case 'violation':
      return `VIOLATION ${o.detail}`;
    case 'eof':
      return 'transport closed by peer';
  }
}

function describeEcho(e: Echo): string {
  return `${e.type} ${describePayload(e.data)}`;
}

function matches(expected: Echo, actual: Observed): boolean {
  if (expected.type !== actual.kind) return false;
  if (actual.kind !== 'text' && actual.kind !== 'binary' && actual.kind !== 'pong') return false;
  return payloadEquals(expected.data, actual.data);
}

/** Runs one case against `peer` and judges it. Never throws for a misbehaving peer. */
export async function runCase(peer: Peer, c: ConformanceCase): Promise<CaseReport> {
  const release = c.heavy ? await heavyGate.acquire() : null;
  try {
    return await runCaseInner(peer, c);
  } finally {
    release?.();
  }
}

async function runCaseInner(peer: Peer, c: ConformanceCase): Promise<CaseReport> {
  const started = Date.now();
  const masked = peer.role === 'server';
  const observed: Observed[] = [];
  const failures: string[] = [];
  const sent: string[] = [];
  const waiters = new Set<() => void>();
  let echoCount = 0;
  let closeSeen = false;
  let eofSeen = false;

  const record = (event: Observed): void => {
    observed.push(event);
    if (event.kind === 'text' || event.kind === 'binary' || event.kind === 'pong' || event.kind === 'ping') echoCount++;
    if (event.kind === 'close') closeSeen = true;
    if (event.kind === 'eof') eofSeen = true;
    for (const wake of [...waiters]) wake();
  };
  // The peer's output is held back until the extension negotiation is judged, since how
  // it is read (RSV1, inflating) depends on what was agreed.
  let output: PeerOutput | null = null;
  let reader: FrameReader | null = null;
  let early: Buffer[] = [];
  let earlyEnd = false;
  const startReading = (inflater: MessageInflater | null): void => {
    const out = new PeerOutput(peer.role, record, inflater);
    output = out;
    reader = new FrameReader(
      (frame) => out.frame(frame),
      (detail) => out.emit({ kind: 'violation', detail }),
    );
    for (const chunk of early) reader.push(chunk);
    early = [];
    if (earlyEnd && !eofSeen) out.emit({ kind: 'eof' });
  };

  const waitFor = (predicate: () => boolean, ms: number): Promise<boolean> => {
    if (predicate()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = (): void => {
        if (!predicate()) return;
        cleanup();
        resolve(true);
      };
      const timer = setTimeout(() => {
        cleanup();
        resolve(false);
      }, ms);
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(wake);
      };
      waiters.add(wake);
    });
  };

  let link: Link;
  let eofEmitted = false;
  try {
    link = await peer.connect(
      {
        data: (bytes) => {
          if (reader === null) early.push(bytes);
          else reader.push(bytes);
        },
        end: () => {
          if (output === null) earlyEnd = true;
          else if (!eofEmitted) {
            eofEmitted = true;
            output.emit({ kind: 'eof' });
          }
        },
      },
      { limit: c.limit, deflate: c.deflate },
    );
  } catch (error) {
    return {
      id: c.id,
      role: peer.role,
      passed: false,
      failures: [`could not connect: ${error instanceof Error ? error.message : String(error)}`],
      sent,
      observed,
      elapsedMs: Date.now() - started,
    };
  }

  const negotiation = negotiate(peer.role, c, link);
  for (const problem of negotiation.problems) failures.push(`handshake: ${problem}`);
  const agreed = negotiation.agreed;
  if (c.deflate !== undefined && c.deflate.response !== null && agreed === null) {
    // Nothing the case does means anything without the extension it is about.
    link.close();
    return { id: c.id, role: peer.role, passed: false, failures, sent, observed, elapsedMs: Date.now() - started };
  }
  let deflater: MessageDeflater | null = null;
  let inflater: MessageInflater | null = null;
  try {
    deflater = agreed === null || agreed.send.windowBits < 9 ? null : new MessageDeflater(agreed.send);
    inflater = agreed === null ? null : new MessageInflater(agreed.receive);
  } catch (error) {
    failures.push(`harness error: ${error instanceof Error ? error.message : String(error)}`);
  }
  startReading(inflater);
  if (earlyEnd) eofEmitted = true;

  const write = async (bytes: Buffer, chop?: number): Promise<void> => {
    for (const piece of chopped(bytes, chop)) {
      if (eofSeen) return;
      await link.write(piece);
    }
  };

  try {
    for (const action of c.actions) {
      sent.push(describeAction(action, masked));
      switch (action.do) {
        case 'send':
          await write(encodeFrames(action.frames, masked), action.chop);
          break;
        case 'fragmented':
          await write(encodeFragmented(action.opcode, action.payload, action.fragmentSize, masked), action.chop);
          break;
        case 'raw':
          await write(Buffer.from(action.bytes), action.chop);
          break;
        case 'pieces':
          await sendPieces(action.frame, action.cuts, action.failFastAfter);
          break;
        case 'sync':
          if (!(await waitFor(() => echoCount >= action.events || closeSeen || eofSeen, c.timeoutMs))) {
            sent.push(`  (sync timed out after ${c.timeoutMs} ms with ${echoCount} of ${action.events} events)`);
          }
          break;
        case 'awaitClose':
          await failFast('the close frame did not arrive before the next frame was due');
          break;
        case 'close':
          await write(
            encodeFrames([{ opcode: OP_CLOSE, payload: closePayload(action.code, action.reason) }], masked),
          );
          break;
        case 'deflate':
          await write(await encodeDeflateMessages(action.messages, deflater, masked), action.chop);
          break;
      }
    }

    // The ending: the peer's close frame, then the transport closed by whoever must close it.
    await waitFor(() => closeSeen || eofSeen, c.timeoutMs);
    const closeByHarness = peer.role === 'client' && c.expect.outcome.kind === 'close';
    if (closeByHarness) {
      // We play the server, which closes TCP once the closing handshake is done (§7.1.1).
      link.close();
    } else {
      await waitFor(() => eofSeen, c.timeoutMs);
    }
    // Let anything already in flight arrive, so that a frame after the close is seen.
    if (!eofSeen) await quietWindow(10);
  } catch (error) {
    failures.push(`harness error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    link.close();
  }
  await (output as PeerOutput | null)?.idle();
  deflater?.close();
  inflater?.close();

  const pending = (reader as FrameReader | null)?.pending ?? 0;
  if (pending > 0) failures.push(`peer left ${pending} bytes that do not form a whole frame`);
  judge(peer.role, c, observed, failures);
  return {
    id: c.id,
    role: peer.role,
    passed: failures.length === 0,
    failures,
    sent,
    observed,
    elapsedMs: Date.now() - started,
  };

  async function failFast(message: string): Promise<void> {
    if (!(await waitFor(() => closeSeen || eofSeen, FAIL_FAST_DEADLINE_MS))) {
      failures.push(`fail-fast: ${message} (waited ${FAIL_FAST_DEADLINE_MS} ms)`);
    }
  }

  async function sendPieces(frame: FrameSpec, cuts: readonly number[], failFastAfter: number | undefined): Promise<void> {
    const source = materialize(frame.payload);
    const bytes = Buffer.allocUnsafe(encodedLength(frame, masked));
    writeFrame(
      bytes,
      0,
      { opcode: frame.opcode, fin: frame.fin ?? true, rsv: frame.rsv ?? 0, masked: frame.masked ?? masked, declaredLength: frame.declaredLength },
      source,
    );
    const headerLength = bytes.length - source.length;
    const bounds = [0, ...cuts.map((cut) => headerLength + cut), bytes.length];
    for (let i = 0; i + 1 < bounds.length; i++) {
      if (eofSeen) return;
      await link.write(bytes.subarray(bounds[i], bounds[i + 1]));
      if (i === failFastAfter) {
        await failFast(`no close frame after piece ${i} (${bounds[i + 1]! - headerLength} of ${source.length} payload bytes sent)`);
      }
    }
  }
}

/** Compares what was observed with what the case expects, appending to `failures`. */
function judge(role: Role, c: ConformanceCase, observed: readonly Observed[], failures: string[]): void {
  for (const o of observed) if (o.kind === 'violation') failures.push(`peer broke the protocol: ${o.detail}`);
  const stream = observed.filter((o) => o.kind !== 'violation');
  const closeIndex = stream.findIndex((o) => o.kind === 'close' || o.kind === 'eof');
  const before = closeIndex === -1 ? stream : stream.slice(0, closeIndex);
  const expected = c.expect.events;

  const n = Math.max(before.length, expected.length);
  for (let i = 0; i < n; i++) {
    const e = expected[i];
    const o = before[i];
    if (e !== undefined && o !== undefined && matches(e, o)) continue;
    if (e === undefined) failures.push(`unexpected ${describeObserved(o!)} (event ${i + 1}; ${expected.length} expected)`);
    else if (o === undefined) failures.push(`missing ${describeEcho(e)} (event ${i + 1} of ${expected.length})`);
    else failures.push(`event ${i + 1}: expected ${describeEcho(e)}, got ${describeObserved(o)}`);
    break;
  }

  const outcome = c.expect.outcome;
  const expectedClose = outcome.kind === 'close' ? outcome.codes.map((code) => (code === null ? '(empty)' : String(code))).join(' or ') : String(outcome.code);
  const end = closeIndex === -1 ? undefined : stream[closeIndex];
  if (end === undefined) {
    failures.push(`no close frame from the peer (expected ${outcome.kind === 'fail' ? 'failure with' : 'close'} ${expectedClose}); the connection stayed open`);
    return;
  }
  if (end.kind === 'eof') {
    failures.push(`peer closed the transport without a close frame (expected ${outcome.kind === 'fail' ? 'failure with' : 'close'} ${expectedClose})`);
    return;
  }
  if (end.kind !== 'close') return;
  const codeOk = outcome.kind === 'close' ? outcome.codes.includes(end.code) : end.code === outcome.code;
  if (!codeOk) {
    failures.push(`close code ${end.code === null ? '(empty)' : end.code}, expected ${expectedClose}`);
  }
  const after = stream.slice(closeIndex + 1);
  const extra = after.filter((o) => o.kind !== 'eof');
  for (const o of extra) failures.push(`after the close frame: ${describeObserved(o)}`);
  const mustSeeEof = outcome.kind === 'fail' || role === 'server';
  if (mustSeeEof && !after.some((o) => o.kind === 'eof')) {
    failures.push(
      outcome.kind === 'fail'
        ? 'peer sent its close frame but did not close the transport (failing the connection closes it)'
        : 'server did not close the TCP connection after the closing handshake (RFC 6455 §7.1.1)',
    );
  }
}

/** A failure report for an assertion message. */
export function formatReport(report: CaseReport): string {
  const lines = [`case ${report.id} (${report.role} role) failed after ${report.elapsedMs} ms:`];
  for (const f of report.failures) lines.push(`  ✗ ${f}`);
  lines.push('  sent:');
  for (const s of report.sent) lines.push(`    ${s}`);
  lines.push('  observed:');
  if (report.observed.length === 0) lines.push('    (nothing)');
  const shown = report.observed.slice(0, 40);
  for (const o of shown) lines.push(`    ${describeObserved(o)}`);
  if (report.observed.length > shown.length) lines.push(`    … ${report.observed.length - shown.length} more`);
  return lines.join('\n');
}
