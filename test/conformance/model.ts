/**
 * The data model of the conformance suite: what a case is made of. A case is plain data
 * (no functions), so the same list drives every role and every transport.
 *
 * The "fuzzing peer" is the harness: it plays the client when hotline is the server and
 * the server when hotline is the client, writes exactly the bytes a case prescribes, and
 * records everything the implementation under test (the "peer") sends back.
 */

/** The role of the implementation under test. */
export type Role = 'server' | 'client';

/**
 * Payload bytes: literal bytes, or `length` copies of the byte `fill` (large payloads are
 * only materialized when the case runs).
 */
export type Payload = Uint8Array | { readonly fill: number; readonly length: number };

/** One frame as the fuzzing peer writes it: every header field can be set, valid or not. */
export interface FrameSpec {
  /** 0x0–0xF, reserved ones included. */
  readonly opcode: number;
  readonly payload?: Payload;
  /** Default true. */
  readonly fin?: boolean;
  /** The three RSV bits as a number 0–7: RSV1 = 4, RSV2 = 2, RSV3 = 1. Default 0. */
  readonly rsv?: number;
  /**
   * Default: masked when the fuzzing peer is the client (peer role 'server'), unmasked
   * when it is the server. Set to break the masking rule on purpose.
   */
  readonly masked?: boolean;
  /**
   * The length written in the header when it differs from the payload's (a header that
   * announces more than is sent). Always encoded with the 64-bit length form.
   */
  readonly declaredLength?: number;
}

/** What the fuzzing peer does, in order. */
export type Action =
  /** Encodes the frames back to back and writes them in one write, or in writes of `chop` bytes. */
  | { readonly do: 'send'; readonly frames: readonly FrameSpec[]; readonly chop?: number }
  /**
   * One message split into frames of `fragmentSize` payload bytes (the first carries
   * `opcode`, the rest are continuations), written in one write or in writes of `chop`.
   * A table-sized way of saying what `send` would say with thousands of frames.
   */
  | {
      readonly do: 'fragmented';
      readonly opcode: number;
      readonly payload: Payload;
      readonly fragmentSize: number;
      readonly chop?: number;
    }
  /**
   * One frame written in pieces: piece 0 is the header plus payload bytes [0, cuts[0]),
   * piece i is payload bytes [cuts[i-1], cuts[i]), the last piece the rest. With
   * `failFastAfter: i`, the peer's close frame must arrive after piece i is written and
   * before piece i+1 is (deadline {@link FAIL_FAST_DEADLINE_MS}).
   */
  | {
      readonly do: 'pieces';
      readonly frame: FrameSpec;
      readonly cuts: readonly number[];
      readonly failFastAfter?: number;
    }
  /** Writes bytes exactly as given (no masking applied): role-specific cases only. */
  | { readonly do: 'raw'; readonly bytes: Uint8Array; readonly chop?: number }
  /**
   * Waits until the peer has sent `events` echoed messages and pongs in all (counted from
   * the start of the case), or has closed, or the case's deadline passes.
   */
  | { readonly do: 'sync'; readonly events: number }
  /**
   * Fail-fast check: the peer's close frame must arrive before the next action runs
   * (deadline {@link FAIL_FAST_DEADLINE_MS}); otherwise the case fails, and goes on.
   */
  | { readonly do: 'awaitClose' }
  /** Sends a close frame: no payload, a code, or a code with a reason (text or raw bytes). */
  | { readonly do: 'close'; readonly code?: number; readonly reason?: string | Uint8Array };

/** What the peer must send back before the close, in this order and nothing else. */
export type Echo =
  | { readonly type: 'text'; readonly data: Payload }
  | { readonly type: 'binary'; readonly data: Payload }
  | { readonly type: 'pong'; readonly data: Payload };

/**
 * How the connection must end.
 * - `close`: a clean closing handshake; the peer's close frame must carry one of `codes`
 *   (`null` stands for an empty close payload). A server must then close TCP.
 * - `fail`: the peer must fail the connection: a close frame with exactly `code`, then
 *   the transport closed by the peer.
 */
export type Outcome =
  | { readonly kind: 'close'; readonly codes: readonly (number | null)[] }
  | { readonly kind: 'fail'; readonly code: number };

export interface Expectation {
  readonly events: readonly Echo[];
  readonly outcome: Outcome;
}

/** Which limit the peer under test runs with: the suite's default or the small one. */
export type Limit = 'default' | 'small';

export interface ConformanceCase {
  /** Numbered after the industry testsuite's categories: `1.1.1`, `6.4.3`, … */
  readonly id: string;
  readonly description: string;
  /** The roles of the implementation under test this case applies to. */
  readonly roles: readonly Role[];
  readonly limit: Limit;
  /** Deadline of each wait (sync, final close), in milliseconds. */
  readonly timeoutMs: number;
  /** Moves many megabytes: the runner lets only a few such cases run at once. */
  readonly heavy: boolean;
  readonly actions: readonly Action[];
  readonly expect: Expectation;
}

/** The largest message the peer accepts in the suite's default configuration. */
export const DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;
/** The largest message the peer accepts in the `limit: 'small'` configuration (9.9.x). */
export const SMALL_MAX_PAYLOAD = 64 * 1024;
/** How long a fail-fast check waits for the peer's close frame. */
export const FAIL_FAST_DEADLINE_MS = 2_000;
/** Default deadline of each wait. */
export const DEFAULT_TIMEOUT_MS = 3_000;
