/**
 * The conformance cases, as data. Numbering and categories follow the industry WebSocket
 * testsuite (1 framing, 2 pings/pongs, 3 reserved bits, 4 opcodes, 5 fragmentation,
 * 6 UTF-8, 7 closing handshake, 9 limits and performance, 10 miscellaneous,
 * 12 permessage-deflate, 13 permessage-deflate parameters); the cases themselves are
 * written for hotline from RFC 6455, RFC 3629 and RFC 7692, and every one is strict:
 * exact echoes in order, then the exact close code.
 *
 * Tables are generated: see each section. `casesFor(role)` gives the cases of one role.
 */
import { Buffer } from 'node:buffer';
import {
  DEFAULT_TIMEOUT_MS,
  SMALL_MAX_PAYLOAD,
  type Action,
  type ConformanceCase,
  type DeflateMessage,
  type DeflateParamsSpec,
  type DeflateServerConfig,
  type DeflateSetup,
  type Echo,
  type FrameSpec,
  type Limit,
  type Outcome,
  type Payload,
  type Role,
} from './model.js';
import { OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, materialize } from './wire.js';
import { formatDeflateSpec } from './deflate.js';

// ───────────────────────────── builders ─────────────────────────────

const KiB = 1024;
const MiB = 1024 * 1024;
/** Filler of text payloads: '*', as the industry suite uses. */
const TEXT_FILL = 0x2a;
/** Filler of binary payloads: 0xFE, a byte that is never valid UTF-8. */
const BINARY_FILL = 0xfe;

function utf8(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

function filled(fill: number, length: number): Payload {
  return { fill, length };
}

function concat(...parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

type PayloadLike = Payload | string;

function toPayload(p: PayloadLike | undefined): Payload {
  if (p === undefined) return Buffer.alloc(0);
  return typeof p === 'string' ? utf8(p) : p;
}

interface FrameOptions {
  fin?: boolean;
  rsv?: number;
  masked?: boolean;
  declaredLength?: number;
}

function frame(opcode: number, payload?: PayloadLike, options: FrameOptions = {}): FrameSpec {
  return { opcode, payload: toPayload(payload), ...options };
}

const text = (p?: PayloadLike, o?: FrameOptions): FrameSpec => frame(OP_TEXT, p, o);
const binary = (p?: PayloadLike, o?: FrameOptions): FrameSpec => frame(OP_BINARY, p, o);
const cont = (p?: PayloadLike, o?: FrameOptions): FrameSpec => frame(OP_CONTINUATION, p, o);
const ping = (p?: PayloadLike, o?: FrameOptions): FrameSpec => frame(OP_PING, p, o);
const pong = (p?: PayloadLike, o?: FrameOptions): FrameSpec => frame(OP_PONG, p, o);

function closePayloadOf(code: number, reason: Uint8Array = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(2 + reason.length);
  out.writeUInt16BE(code, 0);
  out.set(reason, 2);
  return out;
}

const echoText = (p: PayloadLike): Echo => ({ type: 'text', data: toPayload(p) });
const echoBinary = (p: PayloadLike): Echo => ({ type: 'binary', data: toPayload(p) });
const echoPong = (p?: PayloadLike): Echo => ({ type: 'pong', data: toPayload(p) });

/** Splits a message into one frame per `size` payload bytes (literal payloads). */
function fragments(opcode: number, bytes: Uint8Array, size: number): FrameSpec[] {
  const out: FrameSpec[] = [];
  const count = Math.max(1, Math.ceil(bytes.length / size));
  for (let i = 0; i < count; i++) {
    out.push({
      opcode: i === 0 ? opcode : OP_CONTINUATION,
      payload: Buffer.from(bytes.subarray(i * size, (i + 1) * size)),
      fin: i === count - 1,
    });
  }
  return out;
}

/**
 * A case's script: actions and expected echoes side by side, so that `sync` knows how
 * many echoes are due by then.
 */
class Script {
  readonly actions: Action[] = [];
  readonly events: Echo[] = [];

  /** Frames back to back in one write. */
  send(...frames: FrameSpec[]): this {
    this.actions.push({ do: 'send', frames });
    return this;
  }

  /** Each frame in its own write. */
  sendEach(...frames: FrameSpec[]): this {
    for (const f of frames) this.send(f);
    return this;
  }

  /** Frames back to back, written in pieces of `chop` bytes. */
  chop(chop: number, ...frames: FrameSpec[]): this {
    this.actions.push({ do: 'send', frames, chop });
    return this;
  }

  fragmented(opcode: number, payload: Payload, fragmentSize: number, chop?: number): this {
    this.actions.push({ do: 'fragmented', opcode, payload, fragmentSize, chop });
    return this;
  }

  pieces(f: FrameSpec, cuts: number[], failFastAfter?: number): this {
    this.actions.push({ do: 'pieces', frame: f, cuts, failFastAfter });
    return this;
  }

  raw(bytes: Uint8Array, chop?: number): this {
    this.actions.push({ do: 'raw', bytes, chop });
    return this;
  }

  /** Messages through the negotiated permessage-deflate, in one write (or writes of `chop`). */
  deflate(messages: DeflateMessage[], chop?: number): this {
    this.actions.push({ do: 'deflate', messages, chop });
    return this;
  }

  expect(...events: Echo[]): this {
    this.events.push(...events);
    return this;
  }

  sync(): this {
    this.actions.push({ do: 'sync', events: this.events.length });
    return this;
  }

  awaitClose(): this {
    this.actions.push({ do: 'awaitClose' });
    return this;
  }

  close(code?: number, reason?: string | Uint8Array): this {
    this.actions.push({ do: 'close', code, reason });
    return this;
  }

  /** Ends normally: wait for the echoes, close with 1000, expect 1000 back. */
  closeNormally(): Outcome {
    this.sync().close(1000);
    return { kind: 'close', codes: [1000] };
  }

  /** The peer must fail the connection with `code`. */
  fails(code: number): Outcome {
    return { kind: 'fail', code };
  }
}

interface CaseOptions {
  roles?: readonly Role[];
  limit?: Limit;
  timeoutMs?: number;
  heavy?: boolean;
  deflate?: DeflateSetup;
}

const BOTH: readonly Role[] = ['server', 'client'];

function defineCase(id: string, description: string, build: (s: Script) => Outcome, options: CaseOptions = {}): ConformanceCase {
  const s = new Script();
  const outcome = build(s);
  return {
    id,
    description,
    roles: options.roles ?? BOTH,
    limit: options.limit ?? 'default',
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    heavy: options.heavy ?? false,
    actions: s.actions,
    expect: { events: s.events, outcome },
    ...(options.deflate === undefined ? {} : { deflate: options.deflate }),
  };
}

function sizeName(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} B`;
}

// ───────────────────────────── 1. Framing ─────────────────────────────
// Text (1.1) and binary (1.2) messages of every length-encoding boundary: 7-bit (0, 125),
// 16-bit (126, 127, 128, 65535) and 64-bit (65536); then the same written in pieces.

function framingCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  const lengths = [0, 125, 126, 127, 128, 65535, 65536];
  const kinds = [
    { section: '1.1', name: 'text', opcode: OP_TEXT, fill: TEXT_FILL, echo: echoText },
    { section: '1.2', name: 'binary', opcode: OP_BINARY, fill: BINARY_FILL, echo: echoBinary },
  ];
  for (const k of kinds) {
    let n = 1;
    for (const length of lengths) {
      const payload = filled(k.fill, length);
      out.push(
        defineCase(`${k.section}.${n++}`, `${k.name} message of ${length} bytes in one frame`, (s) =>
          s.send(frame(k.opcode, payload)).expect(k.echo(payload)).closeNormally(),
        ),
      );
    }
    // 65536 in 997-byte writes first, matching the industry suite's numbering.
    const chopsFor = [
      [65536, 997],
      [0, 1],
      [125, 1],
      [126, 1],
      [127, 1],
      [128, 1],
      [65535, 997],
    ] as const;
    for (const [length, chop] of chopsFor) {
      const payload = filled(k.fill, length);
      out.push(
        defineCase(`${k.section}.${n++}`, `${k.name} message of ${length} bytes in one frame, written in ${chop}-byte pieces`, (s) =>
          s.chop(chop, frame(k.opcode, payload)).expect(k.echo(payload)).closeNormally(),
        ),
      );
    }
  }
  return out;
}

// ───────────────────────────── 2. Pings and pongs ─────────────────────────────

function pingCases(): ConformanceCase[] {
  const binaryPayload = hex('00 ff fe fd fc fb 00 ff');
  const max = filled(BINARY_FILL, 125);
  const tooLong = filled(BINARY_FILL, 126);
  const tenPings = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
  return [
    defineCase('2.1', 'ping without payload', (s) => s.send(ping()).expect(echoPong()).closeNormally()),
    defineCase('2.2', 'ping with a small text payload', (s) => s.send(ping('Hello, world!')).expect(echoPong('Hello, world!')).closeNormally()),
    defineCase('2.3', 'ping with a small binary payload', (s) => s.send(ping(binaryPayload)).expect(echoPong(binaryPayload)).closeNormally()),
    defineCase('2.4', 'ping with a 125-byte payload (the control frame maximum)', (s) => s.send(ping(max)).expect(echoPong(max)).closeNormally()),
    defineCase('2.5', 'ping with a 126-byte payload → 1002', (s) => s.send(ping(tooLong)).fails(1002)),
    defineCase('2.6', 'ping with a 125-byte payload, written in 1-byte pieces', (s) => s.chop(1, ping(max)).expect(echoPong(max)).closeNormally()),
    defineCase('2.7', 'unsolicited pong without payload is ignored', (s) => s.send(pong()).closeNormally()),
    defineCase('2.8', 'unsolicited pong with payload is ignored', (s) => s.send(pong('unsolicited pong payload')).closeNormally()),
    defineCase('2.9', 'unsolicited pong, then ping: only the ping is answered', (s) =>
      s.send(pong('unsolicited pong payload'), ping('ping payload')).expect(echoPong('ping payload')).closeNormally(),
    ),
    defineCase('2.10', '10 pings in one write: 10 pongs in order', (s) =>
      s.send(...tenPings.map((p) => ping(p))).expect(...tenPings.map((p) => echoPong(p))).closeNormally(),
    ),
    defineCase('2.11', '10 pings, each in its own write after the previous pong', (s) => {
      for (const p of tenPings) s.send(ping(p)).expect(echoPong(p)).sync();
      return s.closeNormally();
    }),
    defineCase('2.12', 'ping whose payload is not UTF-8 is answered byte for byte', (s) =>
      s.send(ping(hex('ff fe c0 80 ed a0 80'))).expect(echoPong(hex('ff fe c0 80 ed a0 80'))).closeNormally(),
    ),
    defineCase('2.13', 'pong with a 126-byte payload → 1002', (s) => s.send(pong(tooLong)).fails(1002)),
    defineCase('2.14', 'ping announcing 65536 bytes with a 64-bit length → 1002', (s) => s.send(ping(filled(BINARY_FILL, 65536))).fails(1002)),
    defineCase('2.15', 'ping with a 126-byte payload after a text message → echo, then 1002', (s) =>
      s.send(text('Hello')).expect(echoText('Hello')).sync().send(ping(tooLong)).fails(1002),
    ),
  ];
}

// ───────────────────────────── 3. Reserved bits ─────────────────────────────
// Every RSV combination 1–7 (no extension is negotiated) on every kind of frame, alone and
// between valid frames: what came before is echoed, nothing after is answered.

function reservedBitCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  const hello = 'Hello, world!';
  const variants: Array<{ section: string; what: string; build: (s: Script, rsv: number) => Outcome }> = [
    { section: '3.1', what: 'text frame', build: (s, rsv) => s.send(text(hello, { rsv })).fails(1002) },
    {
      section: '3.2',
      what: 'text frame after an echoed text message, then a ping',
      build: (s, rsv) => s.send(text(hello)).expect(echoText(hello)).sync().send(text(hello, { rsv }), ping('ping')).fails(1002),
    },
    {
      section: '3.3',
      what: 'text frame between a text message and a ping, all in one write',
      build: (s, rsv) => s.send(text(hello), text(hello, { rsv }), ping('ping')).expect(echoText(hello)).fails(1002),
    },
    {
      section: '3.4',
      what: 'text frame between a text message and a ping, written in 1-byte pieces',
      build: (s, rsv) => s.chop(1, text(hello), text(hello, { rsv }), ping('ping')).expect(echoText(hello)).fails(1002),
    },
    { section: '3.5', what: 'binary frame', build: (s, rsv) => s.send(binary(hex('00 ff fe fd'), { rsv })).fails(1002) },
    { section: '3.6', what: 'ping frame', build: (s, rsv) => s.send(ping('ping', { rsv })).fails(1002) },
    { section: '3.7', what: 'close frame', build: (s, rsv) => s.send(frame(OP_CLOSE, closePayloadOf(1000), { rsv })).fails(1002) },
    { section: '3.8', what: 'pong frame', build: (s, rsv) => s.send(pong('pong', { rsv })).fails(1002) },
    {
      section: '3.9',
      what: 'continuation frame of a fragmented text message',
      build: (s, rsv) => s.send(text('fragment1', { fin: false }), cont('fragment2', { rsv })).fails(1002),
    },
  ];
  for (const v of variants) {
    for (let rsv = 1; rsv <= 7; rsv++) {
      out.push(defineCase(`${v.section}.${rsv}`, `RSV=${rsv} on a ${v.what} → 1002`, (s) => v.build(s, rsv)));
    }
  }
  return out;
}

// ───────────────────────────── 4. Reserved opcodes ─────────────────────────────
// 4.1: reserved data opcodes 3–7; 4.2: reserved control opcodes B–F. Six variants each.

function reservedOpcodeCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  const hello = 'Hello, world!';
  const variants: Array<{ what: string; build: (s: Script, op: number) => Outcome }> = [
    { what: 'without payload', build: (s, op) => s.send(frame(op)).fails(1002) },
    { what: 'with payload', build: (s, op) => s.send(frame(op, 'reserved payload')).fails(1002) },
    {
      what: 'after an echoed text message, then a ping',
      build: (s, op) => s.send(text(hello)).expect(echoText(hello)).sync().send(frame(op, 'reserved payload'), ping('ping')).fails(1002),
    },
    {
      what: 'between a text message and a ping, in one write',
      build: (s, op) => s.send(text(hello), frame(op), ping('ping')).expect(echoText(hello)).fails(1002),
    },
    {
      what: 'between a text message and a ping, written in 1-byte pieces',
      build: (s, op) => s.chop(1, text(hello), frame(op, 'reserved payload'), ping('ping')).expect(echoText(hello)).fails(1002),
    },
    {
      what: 'inside a fragmented text message',
      build: (s, op) => s.send(text('fragment1', { fin: false }), frame(op, 'reserved payload'), cont('fragment2')).fails(1002),
    },
  ];
  const groups = [
    { section: '4.1', opcodes: [0x3, 0x4, 0x5, 0x6, 0x7] },
    { section: '4.2', opcodes: [0xb, 0xc, 0xd, 0xe, 0xf] },
  ];
  for (const g of groups) {
    let n = 1;
    for (const op of g.opcodes) {
      for (const v of variants) {
        out.push(
          defineCase(`${g.section}.${n++}`, `reserved opcode 0x${op.toString(16).toUpperCase()} ${v.what} → 1002`, (s) => v.build(s, op)),
        );
      }
    }
  }
  return out;
}

// ───────────────────────────── 5. Fragmentation ─────────────────────────────

function fragmentationCases(): ConformanceCase[] {
  const f1 = 'fragment1';
  const f2 = 'fragment2';
  const twoFrags = [text(f1, { fin: false }), cont(f2)];
  const withPing = [text(f1, { fin: false }), ping('pongme!'), cont(f2)];
  const kosme = hex('ce ba e1 bd b9 cf 83 ce bc ce b5');
  const cases: ConformanceCase[] = [
    defineCase('5.1', 'ping in 2 fragments → 1002', (s) => s.send(ping(f1, { fin: false }), cont(f2)).fails(1002)),
    defineCase('5.2', 'pong in 2 fragments → 1002', (s) => s.send(pong(f1, { fin: false }), cont(f2)).fails(1002)),
    defineCase('5.3', 'text message in 2 fragments, one write', (s) => s.send(...twoFrags).expect(echoText(f1 + f2)).closeNormally()),
    defineCase('5.4', 'text message in 2 fragments, one write per frame', (s) => s.sendEach(...twoFrags).expect(echoText(f1 + f2)).closeNormally()),
    defineCase('5.5', 'text message in 2 fragments, written in 1-byte pieces', (s) => s.chop(1, ...twoFrags).expect(echoText(f1 + f2)).closeNormally()),
    defineCase('5.6', 'text message in 2 fragments with a ping between them, one write', (s) =>
      s.send(...withPing).expect(echoPong('pongme!'), echoText(f1 + f2)).closeNormally(),
    ),
    defineCase('5.7', 'text message in 2 fragments with a ping between them, one write per frame', (s) =>
      s.sendEach(...withPing).expect(echoPong('pongme!'), echoText(f1 + f2)).closeNormally(),
    ),
    defineCase('5.8', 'text message in 2 fragments with a ping between them, written in 1-byte pieces', (s) =>
      s.chop(1, ...withPing).expect(echoPong('pongme!'), echoText(f1 + f2)).closeNormally(),
    ),
  ];
  // 5.9–5.14: a continuation frame with nothing to continue, then a text message.
  const orphan = [
    { ids: ['5.9', '5.10', '5.11'], fin: true },
    { ids: ['5.12', '5.13', '5.14'], fin: false },
  ];
  for (const o of orphan) {
    const frames = [cont('non-continuation payload', { fin: o.fin }), text('Hello, world!')];
    const what = `continuation frame (FIN=${o.fin ? 1 : 0}) with nothing to continue, then a text message`;
    cases.push(
      defineCase(o.ids[0]!, `${what}, one write → 1002`, (s) => s.send(...frames).fails(1002)),
      defineCase(o.ids[1]!, `${what}, one write per frame → 1002`, (s) => s.sendEach(...frames).fails(1002)),
      defineCase(o.ids[2]!, `${what}, written in 1-byte pieces → 1002`, (s) => s.chop(1, ...frames).fails(1002)),
    );
  }
  const fiveFrags = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'];
  cases.push(
    defineCase('5.15', 'text in 2 fragments, then a continuation (FIN=0) with nothing to continue, then a text message, one write → echo, then 1002', (s) =>
      s.send(text(f1, { fin: false }), cont(f2), cont('fragment3', { fin: false }), text('fragment4')).expect(echoText(f1 + f2)).fails(1002),
    ),
    defineCase('5.16', 'twice: continuation (FIN=0) with nothing to continue, then text in 2 fragments → 1002', (s) =>
      s.send(cont(f1, { fin: false }), text(f2, { fin: false }), cont('fragment3'), cont(f1, { fin: false }), text(f2, { fin: false }), cont('fragment3')).fails(1002),
    ),
    defineCase('5.17', 'twice: continuation (FIN=1) with nothing to continue, then text in 2 fragments → 1002', (s) =>
      s.send(cont(f1), text(f2, { fin: false }), cont('fragment3'), cont(f1), text(f2, { fin: false }), cont('fragment3')).fails(1002),
    ),
    defineCase('5.18', 'text in 2 fragments where the second also has the text opcode → 1002', (s) =>
      s.send(text(f1, { fin: false }), text(f2)).fails(1002),
    ),
    defineCase('5.19', 'text in 5 fragments with pings after the 2nd and 4th, written frame by frame with syncs', (s) => {
      s.send(text(fiveFrags[0], { fin: false })).send(cont(fiveFrags[1], { fin: false }));
      s.send(ping('pongme 1!')).expect(echoPong('pongme 1!')).sync();
      s.send(cont(fiveFrags[2], { fin: false })).send(cont(fiveFrags[3], { fin: false }));
      s.send(ping('pongme 2!')).expect(echoPong('pongme 2!')).sync();
      s.send(cont(fiveFrags[4])).expect(echoText(fiveFrags.join('')));
      return s.closeNormally();
    }),
    defineCase('5.20', 'text in 5 fragments with pings after the 2nd and 4th, one write', (s) =>
      s
        .send(
          text(fiveFrags[0], { fin: false }),
          cont(fiveFrags[1], { fin: false }),
          ping('pongme 1!'),
          cont(fiveFrags[2], { fin: false }),
          cont(fiveFrags[3], { fin: false }),
          ping('pongme 2!'),
          cont(fiveFrags[4]),
        )
        .expect(echoPong('pongme 1!'), echoPong('pongme 2!'), echoText(fiveFrags.join('')))
        .closeNormally(),
    ),
    defineCase('5.21', 'text message whose first fragment is empty', (s) =>
      s.send(text('', { fin: false }), cont('Hello')).expect(echoText('Hello')).closeNormally(),
    ),
    defineCase('5.22', 'text message with empty middle fragments', (s) =>
      s.send(text('Hel', { fin: false }), cont('', { fin: false }), cont('', { fin: false }), cont('lo')).expect(echoText('Hello')).closeNormally(),
    ),
    defineCase('5.23', 'empty text message in 3 empty fragments', (s) =>
      s.send(text('', { fin: false }), cont('', { fin: false }), cont('')).expect(echoText('')).closeNormally(),
    ),
    defineCase('5.24', 'binary message whose last fragment is empty', (s) =>
      s.send(binary(hex('01 02 03'), { fin: false }), cont('')).expect(echoBinary(hex('01 02 03'))).closeNormally(),
    ),
    defineCase('5.25', 'text message in 1-byte fragments', (s) =>
      s.send(...fragments(OP_TEXT, utf8('Hello, world!'), 1)).expect(echoText('Hello, world!')).closeNormally(),
    ),
    defineCase('5.26', 'binary message in 1-byte fragments', (s) => {
      const bytes = Buffer.from(Array.from({ length: 16 }, (_, i) => (i * 37) & 0xff));
      return s.send(...fragments(OP_BINARY, bytes, 1)).expect(echoBinary(bytes)).closeNormally();
    }),
    defineCase('5.27', 'text message in 1-byte fragments that split multi-byte characters', (s) =>
      s.send(...fragments(OP_TEXT, kosme, 1)).expect(echoText(kosme)).closeNormally(),
    ),
    defineCase('5.28', 'text message in 1-byte fragments with a ping after each but the last, one write', (s) => {
      const letters = 'abcdefgh';
      const frames: FrameSpec[] = [];
      fragments(OP_TEXT, utf8(letters), 1).forEach((f, i) => {
        frames.push(f);
        if (f.fin === true) return;
        frames.push(ping(`ping ${i}`));
        s.expect(echoPong(`ping ${i}`));
      });
      return s.send(...frames).expect(echoText(letters)).closeNormally();
    }),
    defineCase('5.29', 'close in the middle of a fragmented text message: no message, close 1000 answered', (s) => {
      s.send(text(f1, { fin: false })).close(1000);
      return { kind: 'close', codes: [1000] };
    }),
    defineCase('5.30', 'binary start (FIN=0), then a text frame → 1002', (s) => s.send(binary(f1, { fin: false }), text(f2)).fails(1002)),
    defineCase('5.31', 'text start (FIN=0), then a binary frame → 1002', (s) => s.send(text(f1, { fin: false }), binary(f2)).fails(1002)),
    defineCase('5.32', 'complete text message, then a continuation (FIN=1) → echo, then 1002', (s) =>
      s.send(text('Hello')).expect(echoText('Hello')).sync().send(cont('again')).fails(1002),
    ),
    defineCase('5.33', 'complete binary message, then a continuation (FIN=0) → echo, then 1002', (s) =>
      s.send(binary(hex('0a0b0c')), cont('again', { fin: false })).expect(echoBinary(hex('0a0b0c'))).fails(1002),
    ),
    defineCase('5.34', 'unsolicited pong between the fragments of a text message is ignored', (s) =>
      s.send(text(f1, { fin: false }), pong('unsolicited'), cont(f2)).expect(echoText(f1 + f2)).closeNormally(),
    ),
    defineCase('5.35', 'empty ping with FIN=0 → 1002', (s) => s.send(ping('', { fin: false })).fails(1002)),
    defineCase('5.36', 'text in 100 fragments of 10 bytes with a ping after every 10th (9 pings), one write', (s) => {
      const message = Buffer.alloc(1000);
      for (let i = 0; i < message.length; i++) message[i] = 0x41 + (i % 26);
      const frames: FrameSpec[] = [];
      fragments(OP_TEXT, message, 10).forEach((f, i) => {
        frames.push(f);
        if (i % 10 === 9 && f.fin !== true) {
          frames.push(ping(`ping ${i}`));
          s.expect(echoPong(`ping ${i}`));
        }
      });
      return s.send(...frames).expect(echoText(message)).closeNormally();
    }),
    defineCase('5.37', 'two fragmented messages back to back (text, then binary), one write', (s) =>
      s
        .send(text('ab', { fin: false }), cont('cd'), binary(hex('01'), { fin: false }), cont(hex('02')))
        .expect(echoText('abcd'), echoBinary(hex('0102')))
        .closeNormally(),
    ),
  );
  return cases;
}

// ───────────────────────────── 6. UTF-8 ─────────────────────────────
// 6.1–6.4 are hand-written; 6.5–6.23 are a table of byte sequences in the spirit of
// Markus Kuhn's UTF-8 decoder stress test. Each table entry gives three cases: entries
// 1..n send the sequence as one text frame, n+1..2n as one frame written in 1-byte pieces,
// 2n+1..3n as a message fragmented into 1-byte frames. Valid ones are echoed; invalid
// ones fail with 1007.

interface Utf8Entry {
  readonly bytes: Buffer;
  readonly valid: boolean;
  readonly what: string;
}

const KOSME = hex('ce ba e1 bd b9 cf 83 ce bc ce b5');

function v(bytes: Buffer, what: string): Utf8Entry {
  return { bytes, valid: true, what };
}

function x(bytes: Buffer, what: string): Utf8Entry {
  return { bytes, valid: false, what };
}

function codePoint(cp: number): Buffer {
  return utf8(String.fromCodePoint(cp));
}

function cpName(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

function utf8Table(): Array<{ group: number; title: string; entries: Utf8Entry[] }> {
  const lonely = (from: number, to: number): Buffer => {
    const out: number[] = [];
    for (let b = from; b <= to; b++) out.push(b, 0x20);
    return Buffer.from(out);
  };
  const range = (from: number, to: number): Buffer => Buffer.from(Array.from({ length: to - from + 1 }, (_, i) => from + i));
  const missingLast = [
    x(hex('c0'), '2-byte sequence C0 without its continuation byte'),
    x(hex('e0 80'), '3-byte sequence E0 80 missing its last byte'),
    x(hex('f0 80 80'), '4-byte sequence F0 80 80 missing its last byte'),
    x(hex('f8 80 80 80'), '5-byte sequence F8 80 80 80 missing its last byte'),
    x(hex('fc 80 80 80 80'), '6-byte sequence FC 80 80 80 80 missing its last byte'),
    x(hex('df'), '2-byte sequence DF (last of U+07FF) without its continuation byte'),
    x(hex('ef bf'), '3-byte sequence EF BF (U+FFFF) missing its last byte'),
    x(hex('f7 bf bf'), '4-byte sequence F7 BF BF missing its last byte'),
    x(hex('fb bf bf bf'), '5-byte sequence FB BF BF BF missing its last byte'),
    x(hex('fd bf bf bf bf'), '6-byte sequence FD BF BF BF BF missing its last byte'),
    x(hex('c2'), 'valid 2-byte lead C2 at the end of the message'),
    x(hex('e0 a0'), 'valid 3-byte prefix E0 A0 at the end of the message'),
    x(hex('f0 90 80'), 'valid 4-byte prefix F0 90 80 at the end of the message'),
    x(hex('e1 80'), 'valid 3-byte prefix E1 80 at the end of the message'),
    x(hex('f4 8f bf'), 'valid 4-byte prefix F4 8F BF at the end of the message'),
  ];
  const nonCharacters: Utf8Entry[] = [v(codePoint(0xfffe), 'noncharacter U+FFFE'), v(codePoint(0xffff), 'noncharacter U+FFFF')];
  for (let plane = 1; plane <= 16; plane++) {
    for (const low of [0xfffe, 0xffff]) {
      const cp = plane * 0x10000 + low;
      nonCharacters.push(v(codePoint(cp), `noncharacter ${cpName(cp)}`));
    }
  }
  nonCharacters.push(v(codePoint(0xfdd0), 'noncharacter U+FDD0'), v(codePoint(0xfdef), 'noncharacter U+FDEF'));
  const surrogates = [0xd800, 0xdb7f, 0xdb80, 0xdbff, 0xdc00, 0xdf80, 0xdfff];
  const surrogateBytes = (cp: number): Buffer => Buffer.from([0xed, 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)]);
  const pairs: Utf8Entry[] = [];
  for (const high of [0xd800, 0xdb7f, 0xdb80, 0xdbff]) {
    for (const low of [0xdc00, 0xdfff]) {
      pairs.push(x(concat(surrogateBytes(high), surrogateBytes(low)), `paired surrogates ${cpName(high)} ${cpName(low)}`));
    }
  }
  const kosmePrefixes: Utf8Entry[] = [];
  for (let n = 1; n <= KOSME.length; n++) {
    const bytes = Buffer.from(KOSME.subarray(0, n));
    const valid = [2, 5, 7, 9, 11].includes(n);
    kosmePrefixes.push({ bytes, valid, what: `first ${n} of the 11 bytes of "κόσμε"${valid ? '' : ' (ends inside a character)'}` });
  }
  return [
    {
      group: 5,
      title: 'valid text',
      entries: [
        v(KOSME, 'the Greek word "κόσμε"'),
        v(utf8('Hello'), 'ASCII "Hello"'),
        v(hex('e6 97 a5 e6 9c ac e8 aa 9e'), 'CJK "日本語" (3-byte characters)'),
        v(hex('f0 9f 98 80'), 'emoji U+1F600 (4 bytes)'),
        v(hex('61 c3 a9 e2 82 ac f0 9d 84 9e'), '1-, 2-, 3- and 4-byte characters in a row'),
      ],
    },
    { group: 6, title: 'prefixes of "κόσμε"', entries: kosmePrefixes },
    {
      group: 7,
      title: 'first code point of each length',
      entries: [
        v(hex('00'), 'U+0000 (1 byte)'),
        v(hex('c2 80'), 'U+0080 (first 2-byte)'),
        v(hex('e0 a0 80'), 'U+0800 (first 3-byte)'),
        v(hex('f0 90 80 80'), 'U+10000 (first 4-byte)'),
      ],
    },
    {
      group: 8,
      title: 'first 5- and 6-byte forms',
      entries: [x(hex('f8 88 80 80 80'), 'first 5-byte form F8 88 80 80 80'), x(hex('fc 84 80 80 80 80'), 'first 6-byte form FC 84 80 80 80 80')],
    },
    {
      group: 9,
      title: 'last code point of each length',
      entries: [
        v(hex('7f'), 'U+007F (last 1-byte)'),
        v(hex('df bf'), 'U+07FF (last 2-byte)'),
        v(hex('ef bf bf'), 'U+FFFF (last 3-byte)'),
        v(hex('f4 8f bf bf'), 'U+10FFFF (last code point)'),
      ],
    },
    {
      group: 10,
      title: 'beyond the last code point',
      entries: [
        x(hex('f7 bf bf bf'), '4-byte form of U+1FFFFF'),
        x(hex('fb bf bf bf bf'), 'last 5-byte form FB BF BF BF BF'),
        x(hex('fd bf bf bf bf bf'), 'last 6-byte form FD BF BF BF BF BF'),
      ],
    },
    {
      group: 11,
      title: 'other boundaries',
      entries: [
        v(hex('ed 9f bf'), 'U+D7FF (just below the surrogates)'),
        v(hex('ee 80 80'), 'U+E000 (just above the surrogates)'),
        v(hex('ef bf bd'), 'U+FFFD'),
        v(hex('f4 8f bf bf'), 'U+10FFFF'),
        x(hex('f4 90 80 80'), 'U+110000 (above the last code point)'),
      ],
    },
    {
      group: 12,
      title: 'unexpected continuation bytes',
      entries: [
        x(hex('80'), 'lone continuation byte 80'),
        x(hex('bf'), 'lone continuation byte BF'),
        x(hex('80 bf'), '2 continuation bytes'),
        x(hex('80 bf 80'), '3 continuation bytes'),
        x(hex('80 bf 80 bf'), '4 continuation bytes'),
        x(hex('80 bf 80 bf 80'), '5 continuation bytes'),
        x(hex('80 bf 80 bf 80 bf'), '6 continuation bytes'),
        x(range(0x80, 0xbf), 'all 64 continuation bytes 80–BF'),
      ],
    },
    {
      group: 13,
      title: 'lonely start bytes',
      entries: [
        x(lonely(0xc0, 0xdf), 'each 2-byte lead C0–DF followed by a space'),
        x(lonely(0xe0, 0xef), 'each 3-byte lead E0–EF followed by a space'),
        x(lonely(0xf0, 0xf7), 'each 4-byte lead F0–F7 followed by a space'),
        x(lonely(0xf8, 0xfb), 'each 5-byte lead F8–FB followed by a space'),
        x(lonely(0xfc, 0xfd), 'each 6-byte lead FC–FD followed by a space'),
      ],
    },
    { group: 14, title: 'sequences with the last continuation byte missing', entries: missingLast },
    {
      group: 15,
      title: 'concatenated incomplete sequences',
      entries: [x(concat(...missingLast.slice(0, 10).map((e) => e.bytes)), 'the ten incomplete sequences of 6.14.1–10 in a row')],
    },
    {
      group: 16,
      title: 'impossible bytes',
      entries: [x(hex('fe'), 'byte FE'), x(hex('ff'), 'byte FF'), x(hex('fe fe ff ff'), 'bytes FE FE FF FF')],
    },
    {
      group: 17,
      title: 'overlong "/"',
      entries: [
        x(hex('c0 af'), '"/" in 2 bytes'),
        x(hex('e0 80 af'), '"/" in 3 bytes'),
        x(hex('f0 80 80 af'), '"/" in 4 bytes'),
        x(hex('f8 80 80 80 af'), '"/" in 5 bytes'),
        x(hex('fc 80 80 80 80 af'), '"/" in 6 bytes'),
      ],
    },
    {
      group: 18,
      title: 'maximum overlong sequences',
      entries: [
        x(hex('c1 bf'), 'U+007F in 2 bytes'),
        x(hex('e0 9f bf'), 'U+07FF in 3 bytes'),
        x(hex('f0 8f bf bf'), 'U+FFFF in 4 bytes'),
        x(hex('f8 87 bf bf bf'), 'U+1FFFFF in 5 bytes'),
        x(hex('fc 83 bf bf bf bf'), 'U+3FFFFFF in 6 bytes'),
      ],
    },
    {
      group: 19,
      title: 'overlong NUL',
      entries: [
        x(hex('c0 80'), 'NUL in 2 bytes'),
        x(hex('e0 80 80'), 'NUL in 3 bytes'),
        x(hex('f0 80 80 80'), 'NUL in 4 bytes'),
        x(hex('f8 80 80 80 80'), 'NUL in 5 bytes'),
        x(hex('fc 80 80 80 80 80'), 'NUL in 6 bytes'),
      ],
    },
    { group: 20, title: 'single UTF-16 surrogates', entries: surrogates.map((cp) => x(surrogateBytes(cp), `surrogate ${cpName(cp)}`)) },
    { group: 21, title: 'paired UTF-16 surrogates', entries: pairs },
    { group: 22, title: 'noncharacters (valid UTF-8)', entries: nonCharacters },
    {
      group: 23,
      title: 'further sequences',
      entries: [
        v(hex('ef bb bf'), 'byte order mark U+FEFF alone'),
        v(concat(hex('ef bb bf'), KOSME), 'byte order mark before "κόσμε"'),
        v(hex('61 00 62'), 'NUL between two letters'),
        v(hex('c2 a0'), 'no-break space U+00A0'),
        v(hex('e2 80 a8'), 'line separator U+2028'),
        v(hex('f4 8f bf bf 41'), 'U+10FFFF followed by "A"'),
        x(hex('ed a0 bd ed b8 80'), 'U+1F600 as a CESU-8 surrogate pair'),
        x(hex('f5 80 80 80'), 'lead byte F5 (would encode above U+10FFFF)'),
        x(hex('c1 81'), 'overlong "A" in 2 bytes'),
        x(concat(utf8('Hello'), hex('ff'), utf8('world')), 'byte FF between valid text'),
      ],
    },
  ];
}

function utf8Cases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  const hello = utf8('Hello-µ@ßöäüàá-UTF-8!!');
  // 6.1: empty text.
  out.push(
    defineCase('6.1.1', 'empty text message in one frame', (s) => s.send(text('')).expect(echoText('')).closeNormally()),
    defineCase('6.1.2', 'empty text message in 3 empty fragments', (s) =>
      s.send(text('', { fin: false }), cont('', { fin: false }), cont('')).expect(echoText('')).closeNormally(),
    ),
    defineCase('6.1.3', 'text message in 3 fragments, the first and last empty', (s) =>
      s.send(text('', { fin: false }), cont('middle', { fin: false }), cont('')).expect(echoText('middle')).closeNormally(),
    ),
  );
  // 6.2: valid text, whole and fragmented.
  out.push(
    defineCase('6.2.1', 'valid UTF-8 text with 2-byte characters in one frame', (s) => s.send(text(hello)).expect(echoText(hello)).closeNormally()),
    defineCase('6.2.2', 'valid UTF-8 text in 2 fragments split at a character boundary', (s) =>
      s.send(text(hello.subarray(0, 14), { fin: false }), cont(hello.subarray(14))).expect(echoText(hello)).closeNormally(),
    ),
    defineCase('6.2.3', 'valid UTF-8 text in 1-byte fragments', (s) => s.send(...fragments(OP_TEXT, hello, 1)).expect(echoText(hello)).closeNormally()),
    defineCase('6.2.4', '"κόσμε" in 1-byte fragments', (s) => s.send(...fragments(OP_TEXT, KOSME, 1)).expect(echoText(KOSME)).closeNormally()),
  );
  // 6.3: invalid text, whole and fragmented.
  const invalidLong = concat(KOSME, hex('ed a0 80'), utf8('edited'));
  out.push(
    defineCase('6.3.1', '"κόσμε", a surrogate, "edited" in one frame → 1007', (s) => s.send(text(invalidLong)).fails(1007)),
    defineCase('6.3.2', '"κόσμε", a surrogate, "edited" in 1-byte fragments → 1007', (s) => s.send(...fragments(OP_TEXT, invalidLong, 1)).fails(1007)),
  );
  out.push(...failFastCases());

  for (const { group, title, entries } of utf8Table()) {
    const n = entries.length;
    entries.forEach((entry, i) => {
      const label = `${title}: ${entry.what}`;
      const verdict = entry.valid ? 'echoed' : '1007';
      const outcome = (s: Script): Outcome => (entry.valid ? s.expect(echoText(entry.bytes)).closeNormally() : s.fails(1007));
      out.push(
        defineCase(`6.${group}.${i + 1}`, `${label}; one frame → ${verdict}`, (s) => outcome(s.send(text(entry.bytes)))),
        defineCase(`6.${group}.${n + i + 1}`, `${label}; one frame in 1-byte pieces → ${verdict}`, (s) => outcome(s.chop(1, text(entry.bytes)))),
        defineCase(`6.${group}.${2 * n + i + 1}`, `${label}; 1-byte fragments → ${verdict}`, (s) =>
          outcome(s.send(...fragments(OP_TEXT, entry.bytes, 1))),
        ),
      );
    });
  }
  return out.sort((a, b) => compareIds(a.id, b.id));
}

/**
 * 6.4: fail fast. The part that makes the text invalid is sent, and the peer must close
 * with 1007 before the rest is sent: as a later fragment, or as a later piece of one frame
 * (so the peer must validate a frame's payload as it arrives).
 */
function failFastCases(): ConformanceCase[] {
  const edited = utf8('edited');
  const inserts: Array<{ bytes: Buffer; what: string; tail?: Buffer }> = [
    { bytes: hex('f4 90 80 80'), what: 'U+110000 (F4 90 80 80)' },
    // F4 is a valid lead on its own; the next byte 90 is what makes it invalid.
    { bytes: hex('90'), what: 'the byte 90 after a lead F4 that ended the previous part', tail: hex('80 80') },
    { bytes: hex('ed a0 80'), what: 'a surrogate (ED A0 80)' },
    { bytes: hex('c0 af'), what: 'an overlong "/" (C0 AF)' },
    { bytes: hex('ff'), what: 'the impossible byte FF' },
    { bytes: hex('80'), what: 'a lone continuation byte 80' },
    { bytes: hex('f8 88 80 80 80'), what: 'a 5-byte form (F8 88 80 80 80)' },
  ];
  const out: ConformanceCase[] = [];
  const ids = { fragment: [1, 2, 5, 7, 9, 11, 13], pieces: [3, 4, 6, 8, 10, 12, 14] };
  inserts.forEach((insert, i) => {
    const part1 = insert.tail === undefined ? KOSME : concat(KOSME, hex('f4'));
    const part3 = insert.tail === undefined ? edited : concat(insert.tail, edited);
    out.push(
      defineCase(
        `6.4.${ids.fragment[i]}`,
        `text in 3 fragments: valid "κόσμε", then ${insert.what}, then the rest; 1007 required before the 3rd fragment`,
        (s) =>
          s
            .send(text(part1, { fin: false }))
            .send(cont(insert.bytes, { fin: false }))
            .awaitClose()
            .send(cont(part3))
            .fails(1007),
      ),
      defineCase(
        `6.4.${ids.pieces[i]}`,
        `one text frame in 3 pieces: valid "κόσμε", then ${insert.what}, then the rest; 1007 required before the 3rd piece`,
        (s) => s.pieces(text(concat(part1, insert.bytes, part3)), [part1.length, part1.length + insert.bytes.length], 1).fails(1007),
      ),
    );
  });
  // Large frames: the invalid byte is in the first KiB of 64 KiB; the rest must not be awaited.
  const big = Buffer.alloc(64 * KiB, TEXT_FILL);
  big[1000] = 0xff;
  out.push(
    defineCase('6.4.15', '64 KiB text frame with the byte FF in its first KiB; 1007 required before the other 63 KiB are sent', (s) =>
      s.pieces(text(big), [KiB], 0).fails(1007),
    ),
    defineCase('6.4.16', 'text in 2 fragments of 32 KiB, the second with FF in its first KiB; 1007 required before the rest is sent', (s) =>
      s
        .send(text(filled(TEXT_FILL, 32 * KiB), { fin: false }))
        .pieces(cont(concat(Buffer.alloc(999, TEXT_FILL), hex('ff'), Buffer.alloc(32 * KiB - 1000, TEXT_FILL))), [KiB], 0)
        .fails(1007),
    ),
  );
  return out;
}

// ───────────────────────────── 7. Closing handshake ─────────────────────────────

function closeCases(): ConformanceCase[] {
  const hello = 'Hello, world!';
  const normal: Outcome = { kind: 'close', codes: [1000] };
  const validCodes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
  const invalidCodes = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
  const out: ConformanceCase[] = [
    defineCase('7.1.1', 'text message, then close 1000 → echo, then close 1000', (s) => s.send(text(hello)).expect(echoText(hello)).closeNormally()),
    defineCase('7.1.2', 'close 1000 twice: the second is ignored', (s) => {
      s.close(1000).close(1000);
      return normal;
    }),
    defineCase('7.1.3', 'close, then a ping: no pong', (s) => {
      s.close(1000).send(ping(hello));
      return normal;
    }),
    defineCase('7.1.4', 'close, then a text message: no echo', (s) => {
      s.close(1000).send(text(hello));
      return normal;
    }),
    defineCase('7.1.5', 'text start (FIN=0), close, then the last fragment: no message', (s) => {
      s.send(text('fragment1', { fin: false })).close(1000).send(cont('fragment2'));
      return normal;
    }),
    defineCase('7.1.6', '256 KiB text message, close and a ping in one write → echo, close 1000, no pong', (s) => {
      const big = filled(TEXT_FILL, 256 * KiB);
      s.send(text(big), frame(OP_CLOSE, closePayloadOf(1000)), ping(hello)).expect(echoText(big));
      return normal;
    }),
    defineCase('7.1.7', 'ping and close in one write → pong, then close 1000', (s) => {
      s.send(ping(hello), frame(OP_CLOSE, closePayloadOf(1000))).expect(echoPong(hello));
      return normal;
    }),
    defineCase('7.3.1', 'close with an empty payload → empty close or 1000', (s) => {
      s.close();
      return { kind: 'close', codes: [null, 1000] };
    }),
    defineCase('7.3.2', 'close with a 1-byte payload → 1002', (s) => s.send(frame(OP_CLOSE, hex('03'))).fails(1002)),
    defineCase('7.3.3', 'close 1000 without reason', (s) => {
      s.close(1000);
      return normal;
    }),
    defineCase('7.3.4', 'close 1000 with a short reason', (s) => {
      s.close(1000, 'Hello World!');
      return normal;
    }),
    defineCase('7.3.5', 'close 1000 with a 123-byte reason (125-byte payload, the maximum)', (s) => {
      s.close(1000, '*'.repeat(123));
      return normal;
    }),
    defineCase('7.3.6', 'close 1000 with a 124-byte reason (126-byte payload) → 1002', (s) =>
      s.send(frame(OP_CLOSE, closePayloadOf(1000, Buffer.alloc(124, TEXT_FILL)))).fails(1002),
    ),
    defineCase('7.3.7', 'close 1000 with a reason of multi-byte characters', (s) => {
      s.close(1000, KOSME);
      return normal;
    }),
    defineCase('7.3.8', 'close 1000 with a 123-byte reason, written in 1-byte pieces', (s) => {
      s.chop(1, frame(OP_CLOSE, closePayloadOf(1000, Buffer.alloc(123, TEXT_FILL))));
      return normal;
    }),
    defineCase('7.5.1', 'close 1000 with a reason that is not UTF-8 → 1007', (s) => s.close(1000, concat(KOSME, hex('ed a0 80'), utf8('edited'))).fails(1007)),
    defineCase('7.5.2', 'close 1000 with a reason that ends inside a character → 1007', (s) => s.close(1000, hex('ce')).fails(1007)),
    defineCase('7.5.3', 'close 1000 with an overlong "/" in its reason → 1007', (s) => s.close(1000, hex('c0 af')).fails(1007)),
  ];
  validCodes.forEach((code, i) => {
    out.push(
      defineCase(`7.7.${i + 1}`, `close with the valid code ${code} → ${code} echoed`, (s) => {
        s.close(code);
        return { kind: 'close', codes: [code] };
      }),
    );
  });
  invalidCodes.forEach((code, i) => {
    out.push(
      defineCase(`7.9.${i + 1}`, `close with the invalid code ${code} → 1002`, (s) => s.send(frame(OP_CLOSE, closePayloadOf(code))).fails(1002)),
    );
  });
  return out;
}

// ───────────────────────────── 9. Limits and large messages ─────────────────────────────

function limitCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  const sizes = [64 * KiB, 256 * KiB, MiB, 4 * MiB, 16 * MiB];
  const fragmentSizes = [64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB];
  const timeoutFor = (size: number): number => (size >= 4 * MiB ? 30_000 : 10_000);
  const kinds = [
    { name: 'text', opcode: OP_TEXT, fill: TEXT_FILL, echo: echoText, single: '9.1', fragmented: '9.3', chopped: '9.5' },
    { name: 'binary', opcode: OP_BINARY, fill: BINARY_FILL, echo: echoBinary, single: '9.2', fragmented: '9.4', chopped: '9.6' },
  ];
  for (const k of kinds) {
    sizes.forEach((size, i) => {
      const payload = filled(k.fill, size);
      out.push(
        defineCase(`${k.single}.${i + 1}`, `${k.name} message of ${sizeName(size)} in one frame`, (s) => s.send(frame(k.opcode, payload)).expect(k.echo(payload)).closeNormally(), {
          timeoutMs: timeoutFor(size),
          heavy: size >= MiB,
        }),
      );
    });
    let n = 1;
    for (const size of sizes) {
      for (const fragmentSize of fragmentSizes) {
        const payload = filled(k.fill, size);
        out.push(
          defineCase(
            `${k.fragmented}.${n++}`,
            `${k.name} message of ${sizeName(size)} in fragments of ${sizeName(fragmentSize)}`,
            (s) => s.fragmented(k.opcode, payload, fragmentSize).expect(k.echo(payload)).closeNormally(),
            { timeoutMs: timeoutFor(size), heavy: size >= MiB },
          ),
        );
      }
    }
    [64, 128, 256, 512, 1024, 2048].forEach((chop, i) => {
      const payload = filled(k.fill, MiB);
      out.push(
        defineCase(`${k.chopped}.${i + 1}`, `${k.name} message of 1 MiB in one frame, written in ${chop}-byte pieces`, (s) =>
          s.chop(chop, frame(k.opcode, payload)).expect(k.echo(payload)).closeNormally(),
          { timeoutMs: 20_000 },
        ),
      );
    });
  }

  // 9.7: pipelining: many messages in one write, answered in order.
  const hundred = Array.from({ length: 100 }, (_, i) => `message ${i}`);
  out.push(
    defineCase('9.7.1', '100 small text messages in one write', (s) =>
      s.send(...hundred.map((m) => text(m))).expect(...hundred.map((m) => echoText(m))).closeNormally(),
    ),
    defineCase('9.7.2', '100 small binary messages in one write', (s) => {
      const messages = hundred.map((_, i) => Buffer.from([i, 0xff - i, 0x00, 0xfe]));
      return s.send(...messages.map((m) => binary(m))).expect(...messages.map((m) => echoBinary(m))).closeNormally();
    }),
    defineCase('9.7.3', '1000 empty text messages in one write', (s) =>
      s
        .send(...Array.from({ length: 1000 }, () => text('')))
        .expect(...Array.from({ length: 1000 }, () => echoText('')))
        .closeNormally(),
    ),
    defineCase('9.7.4', '100 pings in one write: 100 pongs in order', (s) =>
      s.send(...hundred.map((m) => ping(m))).expect(...hundred.map((m) => echoPong(m))).closeNormally(),
    ),
    defineCase('9.7.5', '100 text messages, each in 3 fragments, in one write', (s) =>
      s
        .send(...hundred.flatMap((m) => [text(`${m}:`, { fin: false }), cont('-', { fin: false }), cont('end')]))
        .expect(...hundred.map((m) => echoText(`${m}:-end`)))
        .closeNormally(),
    ),
    defineCase('9.7.6', '100 messages alternating text, binary and ping in one write', (s) => {
      const frames: FrameSpec[] = [];
      hundred.forEach((m, i) => {
        const kind = i % 3;
        frames.push(kind === 0 ? text(m) : kind === 1 ? binary(m) : ping(m));
        s.expect(kind === 0 ? echoText(m) : kind === 1 ? echoBinary(m) : echoPong(m));
      });
      return s.send(...frames).closeNormally();
    }),
    defineCase('9.7.7', '100 small text messages in one write, written in 7-byte pieces', (s) =>
      s.chop(7, ...hundred.map((m) => text(m))).expect(...hundred.map((m) => echoText(m))).closeNormally(),
    ),
  );

  // 9.9: the peer's message size limit. The peer must answer 1009 as soon as a header
  // announces too much, without waiting for the payload.
  const small = { limit: 'small' as const };
  const limitName = sizeName(SMALL_MAX_PAYLOAD);
  out.push(
    defineCase('9.9.1', `text message of exactly the limit (${limitName}) in one frame → echoed`, (s) => {
      const p = filled(TEXT_FILL, SMALL_MAX_PAYLOAD);
      return s.send(text(p)).expect(echoText(p)).closeNormally();
    }, small),
    defineCase('9.9.2', `binary message of exactly the limit (${limitName}) in 4 fragments → echoed`, (s) => {
      const p = filled(BINARY_FILL, SMALL_MAX_PAYLOAD);
      return s.fragmented(OP_BINARY, p, SMALL_MAX_PAYLOAD / 4).expect(echoBinary(p)).closeNormally();
    }, small),
    defineCase('9.9.3', `text frame of the limit + 1 byte: 1009 required after the header and 1 KiB`, (s) =>
      s.pieces(text(filled(TEXT_FILL, SMALL_MAX_PAYLOAD + 1)), [KiB], 0).fails(1009), small),
    defineCase('9.9.4', `binary frame of the limit + 1 byte: 1009 required after the header and 1 KiB`, (s) =>
      s.pieces(binary(filled(BINARY_FILL, SMALL_MAX_PAYLOAD + 1)), [KiB], 0).fails(1009), small),
    defineCase('9.9.5', 'text message whose 2nd fragment takes it 1 byte over the limit: 1009 required after that header', (s) =>
      s
        .send(text(filled(TEXT_FILL, SMALL_MAX_PAYLOAD), { fin: false }))
        .pieces(cont(filled(TEXT_FILL, 1)), [0], 0)
        .fails(1009), small),
    defineCase('9.9.6', 'binary message over the limit in 16 KiB fragments → 1009', (s) =>
      s.fragmented(OP_BINARY, filled(BINARY_FILL, SMALL_MAX_PAYLOAD + 16 * KiB), 16 * KiB).fails(1009), small),
    defineCase('9.9.7', 'text frame announcing 16 MiB: 1009 required after the header and 1 KiB', (s) =>
      s.pieces(text(filled(TEXT_FILL, 16 * MiB)), [KiB], 0).fails(1009), { ...small, heavy: true, timeoutMs: 10_000 }),
    defineCase('9.9.8', 'frame header announcing 2^40 bytes, with 16 bytes sent → 1009', (s) =>
      s.send(binary(filled(BINARY_FILL, 16), { declaredLength: 2 ** 40 })).fails(1009)),
    defineCase('9.9.9', 'text message over the limit after an echoed message → echo, then 1009', (s) =>
      s.send(text('Hello')).expect(echoText('Hello')).sync().pieces(text(filled(TEXT_FILL, SMALL_MAX_PAYLOAD + 1)), [0], 0).fails(1009), small),
  );
  return out;
}

// ───────────────────────────── 10. Miscellaneous and masking ─────────────────────────────

function miscCases(): ConformanceCase[] {
  const hello = 'Hello';
  const server = { roles: ['server'] as const };
  const client = { roles: ['client'] as const };
  return [
    defineCase('10.1.1', 'text message of 64 KiB in fragments of 1300 bytes', (s) => {
      const p = filled(TEXT_FILL, 64 * KiB);
      return s.fragmented(OP_TEXT, p, 1300).expect(echoText(p)).closeNormally();
    }),
    // 10.2: a server must reject unmasked client frames (RFC 6455 §5.1).
    defineCase('10.2.1', 'server role: unmasked text frame "Hello" (81 05 48 65 6c 6c 6f) → 1002', (s) => s.raw(hex('81 05 48 65 6c 6c 6f')).fails(1002), server),
    defineCase('10.2.2', 'server role: unmasked ping → 1002', (s) => s.send(ping('ping', { masked: false })).fails(1002), server),
    defineCase('10.2.3', 'server role: unmasked close 1000 → 1002', (s) => s.send(frame(OP_CLOSE, closePayloadOf(1000), { masked: false })).fails(1002), server),
    defineCase('10.2.4', 'server role: masked text message, then an unmasked one → echo, then 1002', (s) =>
      s.send(text(hello), text(hello, { masked: false })).expect(echoText(hello)).fails(1002), server),
    defineCase('10.2.5', 'server role: masked text start, then an unmasked continuation → 1002', (s) =>
      s.send(text('fragment1', { fin: false }), cont('fragment2', { masked: false })).fails(1002), server),
    defineCase('10.2.6', 'server role: text frame masked with the all-zero key (RFC 6455 §5.7 "Hello") is valid', (s) =>
      s.raw(hex('81 85 00 00 00 00 48 65 6c 6c 6f')).expect(echoText(hello)).closeNormally(), server),
    defineCase('10.2.7', 'server role: the masked "Hello" of RFC 6455 §5.7 (key 37 fa 21 3d)', (s) =>
      s.raw(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58')).expect(echoText(hello)).closeNormally(), server),
    // 10.3: a client must reject masked server frames (RFC 6455 §5.1).
    defineCase('10.3.1', 'client role: masked text frame "Hello" of RFC 6455 §5.7 → 1002', (s) => s.raw(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58')).fails(1002), client),
    defineCase('10.3.2', 'client role: masked ping → 1002', (s) => s.send(ping('ping', { masked: true })).fails(1002), client),
    defineCase('10.3.3', 'client role: masked close 1000 → 1002', (s) => s.send(frame(OP_CLOSE, closePayloadOf(1000), { masked: true })).fails(1002), client),
    defineCase('10.3.4', 'client role: unmasked text message, then a masked one → echo, then 1002', (s) =>
      s.send(text(hello), text(hello, { masked: true })).expect(echoText(hello)).fails(1002), client),
    defineCase('10.3.5', 'client role: unmasked text start, then a masked continuation → 1002', (s) =>
      s.send(text('fragment1', { fin: false }), cont('fragment2', { masked: true })).fails(1002), client),
    defineCase('10.3.6', 'client role: the unmasked "Hello" of RFC 6455 §5.7 (81 05 48 65 6c 6c 6f)', (s) =>
      s.raw(hex('81 05 48 65 6c 6c 6f')).expect(echoText(hello)).closeNormally(), client),
  ];
}

// ───────────────────────────── 12. / 13. Compression ─────────────────────────────
// permessage-deflate (RFC 7692). The fuzzing peer negotiates the extension as the case
// says (model.ts, DeflateSetup), compresses what it sends with its own zlib stream context
// and inflates what the peer sends with the context the response agreed (deflate.ts).
//
// 12: the default offer (`permessage-deflate; client_max_window_bits`, what browsers and
// hotline's client send). 12.1 text and 12.2 binary messages of 16 B to 128 KiB, many of
// each (1000 of the small ones), in one frame and compressed-then-fragmented; 12.3 larger
// messages (up to 4 MiB of patterned data and 16 MiB of one byte); 12.4 compressed and
// uncompressed messages mixed, control frames inside compressed messages, empty frames and
// messages, 1-byte writes; 12.5 the examples of RFC 7692 §7.2.3 byte for byte; 12.6 what
// must fail: RSV1 where it may not be, data that does not inflate, inflated text that is
// not UTF-8, a message that inflates past the size limit, RSV1 without the extension.
//
// 13: one section per offer (13.1–13.11 both roles; 13.12–13.14 several offers in one
// header, or an unknown extension and quoted values: server role only), each against the
// three deflate configurations of hotline's server (13.x.1–2 `default`, 13.x.3–4
// `takeover`, 13.x.5–6 `narrow`, see model.ts), whose exact responses are tabled below,
// with two loads: 64 text and binary messages of 512 B–2 KiB (every 8th uncompressed),
// and 8 text messages of 64 KiB compressed and split into frames of 1 KiB. Client role:
// hotline's client is configured to make the section's offer, and the fuzzing server
// answers with the response of the same table.

/** What browsers and hotline's client offer by default. */
const DEFAULT_OFFER = 'permessage-deflate; client_max_window_bits';

type Kind = 'text' | 'binary';

/** `length` bytes of the text or binary pattern `seed` (see model.ts). */
function pattern(kind: Kind, seed: number, length: number): Payload {
  return { pattern: kind, seed, length };
}

function opcodeOf(kind: Kind): number {
  return kind === 'text' ? OP_TEXT : OP_BINARY;
}

function message(kind: Kind, payload: PayloadLike, options: Omit<DeflateMessage, 'opcode' | 'payload'> = {}): DeflateMessage {
  return { opcode: opcodeOf(kind), payload: toPayload(payload), ...options };
}

function echoOf(m: DeflateMessage): Echo {
  return { type: m.opcode === OP_BINARY ? 'binary' : 'text', data: m.payload };
}

/** Seeds of patterned messages: each message of the suite gets its own. */
let nextSeed = 1;

interface Load {
  readonly kind: Kind | 'mixed';
  readonly count: number;
  readonly size: number;
  /** Messages at these positions (i % every === every - 1) go uncompressed. */
  readonly uncompressedEvery?: number;
  readonly fragmentSize?: number;
  /** Messages per write; each write is followed by a sync. */
  readonly batch: number;
  /** Vary each message's size between size/4 and size. */
  readonly varied?: boolean;
}

function loadMessages(load: Load): DeflateMessage[] {
  const out: DeflateMessage[] = [];
  for (let i = 0; i < load.count; i++) {
    const kind: Kind = load.kind === 'mixed' ? (i % 2 === 0 ? 'text' : 'binary') : load.kind;
    const size = load.varied === true ? load.size / 4 + Math.floor(((i * 7919) % 17) * ((3 * load.size) / 4 / 16)) : load.size;
    const uncompressed = load.uncompressedEvery !== undefined && i % load.uncompressedEvery === load.uncompressedEvery - 1;
    out.push(
      message(kind, pattern(kind, nextSeed++, size), {
        ...(uncompressed ? { compress: false } : {}),
        ...(load.fragmentSize === undefined ? {} : { fragmentSize: load.fragmentSize }),
      }),
    );
  }
  return out;
}

/** Sends the messages in writes of `batch`, each followed by a sync, then closes normally. */
function runMessages(s: Script, messages: DeflateMessage[], batch: number, chop?: number): Outcome {
  for (let i = 0; i < messages.length; i += batch) {
    const part = messages.slice(i, i + batch);
    s.deflate(part, chop).expect(...part.map(echoOf)).sync();
  }
  return s.closeNormally();
}

function loadDescription(load: Load): string {
  const kind = load.kind === 'mixed' ? 'text and binary' : load.kind;
  let out = `${load.count} ${kind} message${load.count === 1 ? '' : 's'} of ${load.varied === true ? `${sizeName(load.size / 4)}–` : ''}${sizeName(load.size)}`;
  if (load.fragmentSize !== undefined) out += `, compressed and split into frames of ${sizeName(load.fragmentSize)}`;
  if (load.uncompressedEvery !== undefined) out += `, every ${ordinal(load.uncompressedEvery)} uncompressed`;
  return out;
}

function ordinal(n: number): string {
  return n === 2 ? '2nd' : n === 3 ? '3rd' : `${n}th`;
}

/** Bytes a load moves one way, to choose deadlines. */
function loadBytes(load: Load): number {
  return load.count * load.size;
}

function setup(offer: string, response: DeflateParamsSpec | null, server: DeflateServerConfig): DeflateSetup {
  return { offer, response, server };
}

// Responses, shortest first.
const NONE: DeflateParamsSpec = {};
const SNCT: DeflateParamsSpec = { serverNoContextTakeover: true };

/** hotline's default answer to the default offer (server_no_context_takeover is always answered). */
const DEFAULT_SETUP = setup(DEFAULT_OFFER, SNCT, 'default');
/** Context takeover both ways: the `takeover` server's answer to the default offer. */
const TAKEOVER_SETUP = setup(DEFAULT_OFFER, NONE, 'takeover');

function timeoutFor(bytes: number): number {
  return bytes >= 8 * MiB ? 30_000 : bytes >= MiB ? 15_000 : 10_000;
}

function compressionCases(): ConformanceCase[] {
  return [...compressionEchoCases(), ...compressionMixedCases(), ...rfc7692ExampleCases(), ...compressionFailureCases(), ...compressionParameterCases()];
}

/** 12.1 text, 12.2 binary, 12.3 larger messages: the default offer. */
function compressionEchoCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  const single: Array<[number, number]> = [
    [16, 1000],
    [64, 1000],
    [256, 500],
    [KiB, 250],
    [4 * KiB, 100],
    [8 * KiB, 64],
    [16 * KiB, 32],
    [32 * KiB, 16],
    [64 * KiB, 8],
    [128 * KiB, 4],
  ];
  const fragmented: Array<[number, number, number]> = [
    [KiB, 100, 256],
    [4 * KiB, 50, 256],
    [16 * KiB, 16, 256],
    [64 * KiB, 8, 256],
    [128 * KiB, 4, 256],
    [256, 100, 1],
    [16 * KiB, 16, 4 * KiB],
  ];
  for (const kind of ['text', 'binary'] as const) {
    const section = kind === 'text' ? '12.1' : '12.2';
    let n = 1;
    for (const [size, count] of single) {
      const load: Load = { kind, count, size, batch: Math.max(1, Math.min(100, Math.floor((256 * KiB) / size))) };
      out.push(
        defineCase(`${section}.${n++}`, `${loadDescription(load)}, one frame each`, (s) => runMessages(s, loadMessages(load), load.batch), {
          deflate: DEFAULT_SETUP,
          timeoutMs: timeoutFor(loadBytes(load)),
        }),
      );
    }
    for (const [size, count, fragmentSize] of fragmented) {
      const load: Load = { kind, count, size, fragmentSize, batch: Math.max(1, Math.min(50, Math.floor((256 * KiB) / size))) };
      out.push(
        defineCase(`${section}.${n++}`, loadDescription(load), (s) => runMessages(s, loadMessages(load), load.batch), {
          deflate: DEFAULT_SETUP,
          timeoutMs: timeoutFor(loadBytes(load)),
        }),
      );
    }
    // Control frames between the frames of compressed messages, and chopped writes.
    out.push(
      defineCase(`${section}.${n++}`, `4 ${kind} messages of 64 KiB, compressed and split into frames of 2 KiB, a ping after the 1st frame of each`, (s) => {
        const messages = loadMessages({ kind, count: 4, size: 64 * KiB, batch: 1 }).map((m, i) => ({
          ...m,
          fragmentSize: 2 * KiB,
          interleave: [{ after: 0, frame: ping(`ping ${i}`) }],
        }));
        for (const [i, m] of messages.entries()) s.deflate([m]).expect(echoPong(`ping ${i}`), echoOf(m)).sync();
        return s.closeNormally();
      }, { deflate: DEFAULT_SETUP, timeoutMs: 10_000 }),
      defineCase(`${section}.${n}`, `16 ${kind} messages of 4 KiB, compressed, in one write of 100-byte pieces`, (s) =>
        runMessages(s, loadMessages({ kind, count: 16, size: 4 * KiB, batch: 16 }), 16, 100), { deflate: DEFAULT_SETUP, timeoutMs: 10_000 }),
    );
  }

  const large: Array<[Kind | 'fill', number, number, Partial<DeflateMessage>, string]> = [
    ['text', 256 * KiB, 4, {}, ''],
    ['text', MiB, 2, {}, ''],
    ['text', 4 * MiB, 1, {}, ''],
    ['binary', 256 * KiB, 4, {}, ''],
    ['binary', MiB, 2, {}, ''],
    ['binary', 4 * MiB, 1, {}, ''],
    ['text', MiB, 2, { fragmentSize: KiB }, ', compressed and split into frames of 1 KiB'],
    ['binary', MiB, 2, { fragmentSize: 64 * KiB }, ', compressed and split into frames of 64 KiB'],
  ];
  let n = 1;
  for (const [kind, size, count, extra, what] of large) {
    out.push(
      defineCase(`12.3.${n++}`, `${count} ${kind} message${count === 1 ? '' : 's'} of ${sizeName(size)}${what}`, (s) => {
        const messages = loadMessages({ kind: kind as Kind, count, size, batch: 1 }).map((m) => ({ ...m, ...extra }));
        return runMessages(s, messages, 1);
      }, { deflate: DEFAULT_SETUP, timeoutMs: timeoutFor(size * count), heavy: size * count >= 4 * MiB }),
    );
  }
  out.push(
    defineCase('12.3.9', 'text message of 1 MiB of "*" (compresses a thousandfold), twice', (s) =>
      runMessages(s, [message('text', filled(TEXT_FILL, MiB)), message('text', filled(TEXT_FILL, MiB))], 1), { deflate: DEFAULT_SETUP, timeoutMs: 10_000 }),
    defineCase('12.3.10', 'binary message of 1 MiB of 0xFE, compressed, written in 997-byte pieces', (s) =>
      runMessages(s, [message('binary', filled(BINARY_FILL, MiB))], 1, 997), { deflate: DEFAULT_SETUP, timeoutMs: 10_000 }),
    defineCase('12.3.11', 'text message of 16 MiB of "*" (16 KiB compressed)', (s) =>
      runMessages(s, [message('text', filled(TEXT_FILL, 16 * MiB))], 1), { deflate: DEFAULT_SETUP, timeoutMs: 30_000, heavy: true }),
    defineCase('12.3.12', 'binary message of 256 KiB, compressed, written in 1300-byte pieces', (s) =>
      runMessages(s, loadMessages({ kind: 'binary', count: 1, size: 256 * KiB, batch: 1 }), 1, 1300), { deflate: DEFAULT_SETUP, timeoutMs: 15_000 }),
  );
  return out;
}

/**
 * 12.4: compressed and uncompressed messages mixed, control frames inside compressed
 * messages, empty frames and messages. Against the `takeover` server (context takeover
 * both ways, echoes from 1 KiB on compressed), so that an uncompressed message between
 * compressed ones must stay out of both contexts.
 */
function compressionMixedCases(): ConformanceCase[] {
  const options = { deflate: TAKEOVER_SETUP, timeoutMs: 10_000 };
  const repeated = pattern('text', nextSeed++, 4 * KiB);
  const cases: Array<[string, (s: Script) => Outcome]> = [
    ['30 text messages of 256 B–1 KiB, every 3rd uncompressed (RSV1 clear), in one write', (s) => {
      const messages = loadMessages({ kind: 'text', count: 30, size: KiB, varied: true, uncompressedEvery: 3, batch: 30 });
      return runMessages(s, messages, 30);
    }],
    ['30 binary messages of 512 B–2 KiB, every 2nd uncompressed, one write and sync each', (s) => {
      const messages = loadMessages({ kind: 'binary', count: 30, size: 2 * KiB, varied: true, uncompressedEvery: 2, batch: 1 });
      return runMessages(s, messages, 1);
    }],
    ['100 messages alternating text and binary of 256 B–1 KiB, every 3rd uncompressed, in one write', (s) => {
      const messages = loadMessages({ kind: 'mixed', count: 100, size: KiB, varied: true, uncompressedEvery: 3, batch: 100 });
      return runMessages(s, messages, 100);
    }],
    ['the same 4 KiB text 10 times, compressed (each copy refers to the one before)', (s) =>
      runMessages(s, Array.from({ length: 10 }, () => message('text', repeated)), 10)],
    ['the same 4 KiB text compressed 5 times, a different 4 KiB text uncompressed after each (it must stay out of both contexts)', (s) =>
      runMessages(s, Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? message('text', repeated) : message('text', pattern('text', nextSeed++, 4 * KiB), { compress: false }))), 10)],
    ['compressed text of 8 KiB in frames of 64 B, pings after the 2nd and 5th frames', (s) => {
      const m = message('text', pattern('text', nextSeed++, 8 * KiB), {
        fragmentSize: 64,
        interleave: [
          { after: 1, frame: ping('ping 1') },
          { after: 4, frame: ping('ping 2') },
        ],
      });
      return s.deflate([m]).expect(echoPong('ping 1'), echoPong('ping 2'), echoOf(m)).closeNormally();
    }],
    ['compressed binary of 4 KiB in frames of 256 B, an unsolicited pong after the 1st frame', (s) => {
      const m = message('binary', pattern('binary', nextSeed++, 4 * KiB), { fragmentSize: 256, interleave: [{ after: 0, frame: pong('unsolicited') }] });
      return s.deflate([m]).expect(echoOf(m)).closeNormally();
    }],
    ['compressed text whose first frame is empty (RSV1 on the empty frame)', (s) => {
      const m = message('text', pattern('text', nextSeed++, 2 * KiB), { emptyFirst: true });
      return s.deflate([m]).expect(echoOf(m)).closeNormally();
    }],
    ['compressed text whose last frame is an empty continuation', (s) => {
      const m = message('text', pattern('text', nextSeed++, 2 * KiB), { fragmentSize: 512, emptyLast: true });
      return s.deflate([m]).expect(echoOf(m)).closeNormally();
    }],
    ['compressed binary between an empty first and an empty last frame', (s) => {
      const m = message('binary', pattern('binary', nextSeed++, 2 * KiB), { emptyFirst: true, emptyLast: true });
      return s.deflate([m]).expect(echoOf(m)).closeNormally();
    }],
    ['empty messages, compressed (00), text and binary, between non-empty ones', (s) => {
      const messages: DeflateMessage[] = [];
      for (let i = 0; i < 6; i++) {
        const kind: Kind = i % 2 === 0 ? 'text' : 'binary';
        messages.push(message(kind, ''), message(kind, pattern(kind, nextSeed++, 1500)));
      }
      return runMessages(s, messages, messages.length);
    }],
    ['empty uncompressed messages between compressed ones', (s) => {
      const messages: DeflateMessage[] = [];
      for (let i = 0; i < 6; i++) messages.push(message('text', '', { compress: false }), message('binary', pattern('binary', nextSeed++, 1200)));
      return runMessages(s, messages, messages.length);
    }],
    ['an uncompressed text in 3 fragments between two compressed ones', (s) => {
      const a = message('text', pattern('text', nextSeed++, 2 * KiB));
      const b = message('text', pattern('text', nextSeed++, 3 * KiB), { compress: false, fragmentSize: KiB });
      const c = message('text', pattern('text', nextSeed++, 2 * KiB));
      return runMessages(s, [a, b, c], 3);
    }],
    ['20 compressed text messages of 32–128 B, written in 1-byte pieces', (s) =>
      runMessages(s, loadMessages({ kind: 'text', count: 20, size: 128, varied: true, batch: 20 }), 20, 1)],
    ['a compressed text of 64 KiB in frames of 1 KiB, written in 1000-byte pieces (frame boundaries inside writes)', (s) => {
      const m = message('text', pattern('text', nextSeed++, 64 * KiB), { fragmentSize: KiB });
      return s.deflate([m], 1000).expect(echoOf(m)).closeNormally();
    }],
  ];
  return cases.map(([description, build], i) => defineCase(`12.4.${i + 1}`, description, build, options));
}

/**
 * 12.5: the compressed payloads of RFC 7692 §7.2.3, sent as they are printed there (with
 * context takeover agreed both ways, for §7.2.3.2).
 */
function rfc7692ExampleCases(): ConformanceCase[] {
  const options = { deflate: TAKEOVER_SETUP };
  const hello = 'Hello';
  /** A text frame with RSV1 and the payload printed in hex. */
  const compressedText = (bytes: string, o: FrameOptions = {}): FrameSpec => text(hex(bytes), { rsv: 4, ...o });
  return [
    defineCase('12.5.1', '§7.2.3.1 "Hello" in one compressed frame (f2 48 cd c9 c9 07 00)', (s) =>
      s.send(compressedText('f2 48 cd c9 c9 07 00')).expect(echoText(hello)).closeNormally(), options),
    defineCase('12.5.2', '§7.2.3.1 "Hello" compressed, in 2 frames (RSV1 on the first only)', (s) =>
      s.send(compressedText('f2 48 cd', { fin: false }), cont(hex('c9 c9 07 00'))).expect(echoText(hello)).closeNormally(), options),
    defineCase('12.5.3', '§7.2.3.2 "Hello" twice, the second (f2 00 11 00 00) referring to the first', (s) =>
      s.send(compressedText('f2 48 cd c9 c9 07 00')).expect(echoText(hello)).sync().send(compressedText('f2 00 11 00 00')).expect(echoText(hello)).closeNormally(), options),
    defineCase('12.5.4', '§7.2.3.3 "Hello" in a stored (uncompressed) block', (s) =>
      s.send(compressedText('00 05 00 fa ff 48 65 6c 6c 6f 00')).expect(echoText(hello)).closeNormally(), options),
    defineCase('12.5.5', '§7.2.3.4 "Hello" in a block with BFINAL set', (s) =>
      s.send(compressedText('f3 48 cd c9 c9 07 00 00')).expect(echoText(hello)).closeNormally(), options),
    defineCase('12.5.6', '§7.2.3.5 "Hello" in two deflate blocks', (s) =>
      s.send(compressedText('f2 48 05 00 00 00 ff ff ca c9 c9 07 00')).expect(echoText(hello)).closeNormally(), options),
    defineCase('12.5.7', '§7.2.3.6 an empty text message compressed as one 00 byte', (s) =>
      s.send(compressedText('00')).expect(echoText('')).closeNormally(), options),
    defineCase('12.5.8', '§7.2.3.1 "Hello" as a compressed binary message', (s) =>
      s.send(binary(hex('f2 48 cd c9 c9 07 00'), { rsv: 4 })).expect(echoBinary(hello)).closeNormally(), options),
    defineCase('12.5.9', '§7.2.3.1 "Hello" compressed in 7 frames of 1 byte', (s) =>
      s
        .send(...fragments(OP_TEXT, hex('f2 48 cd c9 c9 07 00'), 1).map((f, i) => (i === 0 ? { ...f, rsv: 4 } : f)))
        .expect(echoText(hello))
        .closeNormally(), options),
  ];
}

/** 12.6: what must fail the connection, and the size limit on inflated messages. */
function compressionFailureCases(): ConformanceCase[] {
  const options = { deflate: DEFAULT_SETUP };
  const small = { deflate: DEFAULT_SETUP, limit: 'small' as const };
  const hello = hex('f2 48 cd c9 c9 07 00');
  const serverOnly = { roles: ['server'] as const };
  const invalidLong = concat(KOSME, hex('ed a0 80'), utf8('edited'));
  const limitName = sizeName(SMALL_MAX_PAYLOAD);
  const textWithFF = concat(generatePatternBytes('text', SMALL_MAX_PAYLOAD - 1), hex('ff'));
  return [
    defineCase('12.6.1', 'RSV1 on the continuation of a compressed message → 1002', (s) =>
      s.send(text(hello.subarray(0, 3), { rsv: 4, fin: false }), cont(hello.subarray(3), { rsv: 4 })).fails(1002), options),
    defineCase('12.6.2', 'RSV1 on the continuation of an uncompressed message → 1002', (s) =>
      s.send(text('Hel', { fin: false }), cont('lo', { rsv: 4 })).fails(1002), options),
    defineCase('12.6.3', 'RSV1 on a ping → 1002', (s) => s.send(ping('ping', { rsv: 4 })).fails(1002), options),
    defineCase('12.6.4', 'RSV1 on a pong → 1002', (s) => s.send(pong('pong', { rsv: 4 })).fails(1002), options),
    defineCase('12.6.5', 'RSV1 on a close 1000 → 1002', (s) => s.send(frame(OP_CLOSE, closePayloadOf(1000), { rsv: 4 })).fails(1002), options),
    defineCase('12.6.6', 'RSV1 on a ping between the frames of a compressed message → 1002', (s) =>
      s.send(text(hello.subarray(0, 3), { rsv: 4, fin: false }), ping('ping', { rsv: 4 }), cont(hello.subarray(3))).fails(1002), options),
    defineCase('12.6.7', 'RSV1 and RSV2 on a compressed text frame → 1002', (s) => s.send(text(hello, { rsv: 6 })).fails(1002), options),
    defineCase('12.6.8', 'RSV1 and RSV3 on the first frame of a compressed binary message → 1002', (s) =>
      s.deflate([message('binary', pattern('binary', nextSeed++, KiB), { rsv: 5 })]).fails(1002), options),
    defineCase('12.6.9', 'compressed text in frames of 16 B with RSV1 on every frame → 1002', (s) =>
      s.deflate([message('text', pattern('text', nextSeed++, KiB), { fragmentSize: 16, continuationRsv: 4 })]).fails(1002), options),
    defineCase('12.6.10', 'compressed data with the reserved block type 3 (ff ff ff ff) → 1007', (s) => s.send(text(hex('ff ff ff ff'), { rsv: 4 })).fails(1007), options),
    defineCase('12.6.11', 'a stored block whose LEN and NLEN disagree → 1007', (s) => s.send(text(hex('00 05 00 05 00 48 65 6c 6c 6f'), { rsv: 4 })).fails(1007), options),
    defineCase('12.6.12', 'the first message refers back before the start of the stream (f2 00 11 00 00) → 1007', (s) =>
      s.send(text(hex('f2 00 11 00 00'), { rsv: 4 })).fails(1007), options),
    defineCase('12.6.13', 'compressed binary with the reserved block type 3 → 1007', (s) => s.send(binary(hex('07 00 00'), { rsv: 4 })).fails(1007), options),
    defineCase('12.6.14', 'a compressed message echoed, then one that does not inflate → echo, then 1007', (s) =>
      s.send(text(hello, { rsv: 4 })).expect(echoText('Hello')).sync().send(text(hex('ff ff ff ff'), { rsv: 4 })).fails(1007), options),
    defineCase('12.6.15', 'compressed text that inflates to invalid UTF-8 (a surrogate in "κόσμε…edited") → 1007', (s) =>
      s.deflate([message('text', invalidLong)]).fails(1007), options),
    defineCase('12.6.16', 'compressed text that inflates to text ending inside a character → 1007', (s) =>
      s.deflate([message('text', concat(utf8('Hello'), hex('ce')))]).fails(1007), options),
    defineCase('12.6.17', `compressed text of ${limitName} with FF as its last byte, in frames of 1 KiB → 1007`, (s) =>
      s.deflate([message('text', textWithFF, { fragmentSize: KiB })]).fails(1007), options),
    defineCase('12.6.18', 'compressed binary that is not UTF-8 is echoed', (s) => {
      const m = message('binary', concat(invalidLong, hex('ff fe fd')));
      return s.deflate([m]).expect(echoOf(m)).closeNormally();
    }, options),
    defineCase('12.6.19', `compressed text that inflates to exactly the limit (${limitName}) is echoed`, (s) => {
      const m = message('text', pattern('text', nextSeed++, SMALL_MAX_PAYLOAD));
      return s.deflate([m]).expect(echoOf(m)).closeNormally();
    }, small),
    defineCase('12.6.20', 'compressed text that inflates to the limit + 1 byte → 1009', (s) =>
      s.deflate([message('text', pattern('text', nextSeed++, SMALL_MAX_PAYLOAD + 1))]).fails(1009), small),
    defineCase('12.6.21', 'compressed binary of 1 KiB that inflates to 1 MiB (a compression bomb) → 1009', (s) =>
      s.deflate([message('binary', filled(BINARY_FILL, MiB))]).fails(1009), small),
    defineCase('12.6.22', 'compressed text that inflates to the limit + 1 byte, in frames of 16 B → 1009', (s) =>
      s.deflate([message('text', filled(TEXT_FILL, SMALL_MAX_PAYLOAD + 1), { fragmentSize: 16 })]).fails(1009), small),
    defineCase('12.6.23', 'a compressed message echoed, then one that inflates past the limit → echo, then 1009', (s) => {
      const m = message('text', pattern('text', nextSeed++, KiB));
      return s.deflate([m]).expect(echoOf(m)).sync().deflate([message('text', filled(TEXT_FILL, 4 * SMALL_MAX_PAYLOAD))]).fails(1009);
    }, small),
    defineCase('12.6.24', 'server role: an invalid offer (server_max_window_bits=7) is declined; then RSV1 → 1002', (s) =>
      s.send(text(hello, { rsv: 4 })).fails(1002), { ...serverOnly, deflate: setup('permessage-deflate; server_max_window_bits=7', null, 'default') }),
    defineCase('12.6.25', 'server role: an offer with an unknown parameter is declined; then RSV1 → 1002', (s) =>
      s.send(text(hello, { rsv: 4 })).fails(1002), { ...serverOnly, deflate: setup('permessage-deflate; x_hotline_unknown', null, 'default') }),
    defineCase('12.6.26', 'server role: a server with permessage-deflate, no offer; then RSV1 → 1002', (s) =>
      s.send(text(hello, { rsv: 4 })).fails(1002), { ...serverOnly, deflate: setup('', null, 'default') }),
    defineCase('12.6.27', 'the default offer declined; then RSV1 on a text frame → 1002', (s) =>
      s.send(text(hello, { rsv: 4 })).fails(1002), { deflate: setup(DEFAULT_OFFER, null, 'off') }),
    defineCase('12.6.28', 'the default offer declined; an uncompressed message is echoed, then RSV1 on a binary frame → 1002', (s) =>
      s.send(text('Hello')).expect(echoText('Hello')).sync().send(binary(hello, { rsv: 4 })).fails(1002), { deflate: setup(DEFAULT_OFFER, null, 'off') }),
  ];
}

/** Materialized pattern bytes, for payloads built from them. */
function generatePatternBytes(kind: Kind, length: number): Buffer {
  return materialize(pattern(kind, nextSeed++, length));
}

/**
 * 13: the offers. Each section is one offer, run against the three configurations of
 * hotline's server (the exact responses are the table's) with two loads each.
 */
function compressionParameterCases(): ConformanceCase[] {
  const r = (spec: DeflateParamsSpec): DeflateParamsSpec => spec;
  const sections: Array<{ offer: string; what: string; serverOnly?: boolean; responses: Record<'default' | 'takeover' | 'narrow', DeflateParamsSpec> }> = [
    { offer: 'permessage-deflate', what: 'no parameters', responses: { default: SNCT, takeover: NONE, narrow: r({ serverMaxWindowBits: 10 }) } },
    {
      offer: 'permessage-deflate; client_no_context_takeover',
      what: 'client_no_context_takeover',
      responses: { default: SNCT, takeover: NONE, narrow: r({ clientNoContextTakeover: true, serverMaxWindowBits: 10 }) },
    },
    {
      offer: 'permessage-deflate; server_no_context_takeover',
      what: 'server_no_context_takeover',
      responses: { default: SNCT, takeover: SNCT, narrow: r({ serverNoContextTakeover: true, serverMaxWindowBits: 10 }) },
    },
    {
      offer: 'permessage-deflate; client_max_window_bits',
      what: 'client_max_window_bits without a value',
      responses: { default: SNCT, takeover: NONE, narrow: r({ serverMaxWindowBits: 10, clientMaxWindowBits: 11 }) },
    },
    {
      offer: 'permessage-deflate; client_max_window_bits=9',
      what: 'client_max_window_bits=9',
      responses: {
        default: r({ serverNoContextTakeover: true, clientMaxWindowBits: 9 }),
        takeover: r({ clientMaxWindowBits: 9 }),
        narrow: r({ serverMaxWindowBits: 10, clientMaxWindowBits: 9 }),
      },
    },
    {
      offer: 'permessage-deflate; client_max_window_bits=15',
      what: 'client_max_window_bits=15',
      responses: {
        default: r({ serverNoContextTakeover: true, clientMaxWindowBits: 15 }),
        takeover: r({ clientMaxWindowBits: 15 }),
        narrow: r({ serverMaxWindowBits: 10, clientMaxWindowBits: 11 }),
      },
    },
    {
      offer: 'permessage-deflate; server_max_window_bits=9',
      what: 'server_max_window_bits=9',
      responses: {
        default: r({ serverNoContextTakeover: true, serverMaxWindowBits: 9 }),
        takeover: r({ serverMaxWindowBits: 9 }),
        narrow: r({ serverMaxWindowBits: 9 }),
      },
    },
    {
      offer: 'permessage-deflate; server_max_window_bits=15',
      what: 'server_max_window_bits=15',
      responses: {
        default: r({ serverNoContextTakeover: true, serverMaxWindowBits: 15 }),
        takeover: r({ serverMaxWindowBits: 15 }),
        narrow: r({ serverMaxWindowBits: 10 }),
      },
    },
    {
      offer: 'permessage-deflate; client_no_context_takeover; server_no_context_takeover',
      what: 'client_no_context_takeover and server_no_context_takeover',
      responses: { default: SNCT, takeover: SNCT, narrow: r({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10 }) },
    },
    {
      offer: 'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9',
      what: 'server_max_window_bits=9 and client_max_window_bits=9',
      responses: {
        default: r({ serverNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9 }),
        takeover: r({ serverMaxWindowBits: 9, clientMaxWindowBits: 9 }),
        narrow: r({ serverMaxWindowBits: 9, clientMaxWindowBits: 9 }),
      },
    },
    {
      offer: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9',
      what: 'all four parameters, windows of 9 bits',
      responses: {
        default: r({ serverNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9 }),
        takeover: r({ serverNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9 }),
        narrow: r({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9 }),
      },
    },
    {
      offer: 'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9, permessage-deflate; client_max_window_bits, permessage-deflate',
      what: 'three offers in one header: the first is accepted',
      serverOnly: true,
      responses: {
        default: r({ serverNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9 }),
        takeover: r({ serverMaxWindowBits: 9, clientMaxWindowBits: 9 }),
        narrow: r({ serverMaxWindowBits: 9, clientMaxWindowBits: 9 }),
      },
    },
    {
      offer: 'permessage-deflate; server_max_window_bits=16, permessage-deflate; client_no_context_takeover; client_max_window_bits=10',
      what: 'two offers, the first invalid (server_max_window_bits=16): the second is accepted',
      serverOnly: true,
      responses: {
        default: r({ serverNoContextTakeover: true, clientMaxWindowBits: 10 }),
        takeover: r({ clientMaxWindowBits: 10 }),
        narrow: r({ clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 10 }),
      },
    },
    {
      offer: 'x-hotline-unknown; mode=1, permessage-deflate; client_max_window_bits="10"; server_max_window_bits="12"',
      what: 'an unknown extension first, then quoted window bits',
      serverOnly: true,
      responses: {
        default: r({ serverNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 10 }),
        takeover: r({ serverMaxWindowBits: 12, clientMaxWindowBits: 10 }),
        narrow: r({ serverMaxWindowBits: 10, clientMaxWindowBits: 10 }),
      },
    },
  ];
  const loads: Load[] = [
    { kind: 'mixed', count: 64, size: 2 * KiB, varied: true, uncompressedEvery: 8, batch: 16 },
    { kind: 'text', count: 8, size: 64 * KiB, fragmentSize: KiB, batch: 4 },
  ];
  const out: ConformanceCase[] = [];
  sections.forEach((section, i) => {
    let n = 1;
    for (const config of ['default', 'takeover', 'narrow'] as const) {
      const response = section.responses[config];
      for (const load of loads) {
        out.push(
          defineCase(
            `13.${i + 1}.${n++}`,
            `offer ${section.what}, ${config} server (answer ${JSON.stringify(formatDeflateSpec(response))}): ${loadDescription(load)}`,
            (s) => runMessages(s, loadMessages(load), load.batch),
            {
              ...(section.serverOnly === true ? { roles: ['server'] as const } : {}),
              deflate: setup(section.offer, response, config),
              timeoutMs: 10_000,
            },
          ),
        );
      }
    }
  });
  return out;
}

// ───────────────────────────── the list ─────────────────────────────

/** Orders ids numerically part by part: 6.9.2 < 6.10.1. */
export function compareIds(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** The categories, by their first number, for reports and the docs. */
export const CATEGORIES: Readonly<Record<string, string>> = {
  '1': 'Framing (text and binary messages)',
  '2': 'Pings and pongs',
  '3': 'Reserved bits',
  '4': 'Reserved opcodes',
  '5': 'Fragmentation',
  '6': 'UTF-8 handling',
  '7': 'Closing handshake',
  '9': 'Limits and large messages',
  '10': 'Miscellaneous and masking',
  '12': 'Compression (permessage-deflate, the default offer)',
  '13': 'Compression parameters (permessage-deflate offers and answers)',
};

export const ALL_CASES: readonly ConformanceCase[] = [
  ...framingCases(),
  ...pingCases(),
  ...reservedBitCases(),
  ...reservedOpcodeCases(),
  ...fragmentationCases(),
  ...utf8Cases(),
  ...closeCases(),
  ...limitCases(),
  ...miscCases(),
  ...compressionCases(),
];

export function casesFor(role: Role): ConformanceCase[] {
  return ALL_CASES.filter((c) => c.roles.includes(role));
}
