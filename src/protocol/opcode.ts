/** Frame opcodes of RFC 6455 §5.2. 0x3–0x7 and 0xB–0xF are reserved. */
export const Opcode = {
  /** A later fragment of a message begun by a Text or Binary frame. */
  Continuation: 0x0,
  /** The first (or only) frame of a text message; its payload is UTF-8. */
  Text: 0x1,
  /** The first (or only) frame of a binary message. */
  Binary: 0x2,
  /** A close frame: an optional two-byte code and UTF-8 reason (see `CloseCode`). */
  Close: 0x8,
  /** A ping; the receiver answers with a pong carrying the same payload. */
  Ping: 0x9,
  /** A pong: the answer to a ping, or an unsolicited heartbeat. */
  Pong: 0xa,
} as const;

export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** The opcodes that begin a message (a message's type; continuations carry the rest). */
export type DataOpcode = typeof Opcode.Text | typeof Opcode.Binary;
/** The opcodes of control frames, which may arrive between the fragments of a message. */
export type ControlOpcode = typeof Opcode.Close | typeof Opcode.Ping | typeof Opcode.Pong;

/** Whether `opcode` is a control frame's (0x8–0xF, including the reserved ones): unfragmented, at most 125 bytes. */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/** The two sides of a connection: a server requires masked frames, a client forbids them. */
export type Role = 'server' | 'client';

/** The RSV1 bit, which permessage-deflate (RFC 7692) uses to mark a compressed message. */
export const RSV1 = 0x4;
/** The RSV2 bit. No extension hotline negotiates uses it: a frame with it set fails the connection with 1002 unless the decoder's `allowedRsv` permits it. */
export const RSV2 = 0x2;
/** The RSV3 bit; like {@link RSV2}, unused by hotline's extensions and refused with 1002 unless allowed. */
export const RSV3 = 0x1;

/** Largest payload a control frame may carry (RFC 6455 §5.5). */
export const MAX_CONTROL_PAYLOAD = 125;
