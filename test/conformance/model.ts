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
 * Payload bytes: literal bytes, `length` copies of the byte `fill`, or `length` bytes of a
 * deterministic pseudo-random pattern (large payloads are only materialized when the case
 * runs). The patterns compress the way real traffic does, with repeats near and far (up to
 * the 32 KiB of the largest LZ77 window and beyond), so that window sizes and context
 * takeover matter: `text` is valid UTF-8 (words, some of them multi-byte, and repeated
 * sentences), `binary` uses every byte value (random runs and copies of earlier runs).
 */
export type Payload =
  | Uint8Array
  | { readonly fill: number; readonly length: number }
  | { readonly pattern: 'text' | 'binary'; readonly seed: number; readonly length: number };

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

/**
 * One message of a `deflate` action. With permessage-deflate negotiated, the fuzzing peer
 * compresses it with its own compression context (RFC 7692 §7.2.1: the negotiated window,
 * the context kept or reset as negotiated), sets RSV1 on its first frame only, and splits
 * the compressed bytes into frames.
 */
export interface DeflateMessage {
  /** OP_TEXT or OP_BINARY. */
  readonly opcode: number;
  readonly payload: Payload;
  /**
   * Default true. False sends the payload as it is, RSV1 clear: an uncompressed message
   * between compressed ones, which must not enter either side's LZ77 window.
   */
  readonly compress?: boolean;
  /** Frames of at most this many (compressed) payload bytes; default one frame. */
  readonly fragmentSize?: number;
  /** An empty first frame (with RSV1 when compressed) before the frames with data. */
  readonly emptyFirst?: boolean;
  /** An empty last frame (a continuation with FIN) after the frames with data. */
  readonly emptyLast?: boolean;
  /** RSV bits of the first frame; default 4 (RSV1) when compressed, 0 when not. */
  readonly rsv?: number;
  /** RSV bits of the continuation frames; default 0. */
  readonly continuationRsv?: number;
  /** Control frames written after the message's frame number `after` (0-based), which must not be its last. */
  readonly interleave?: readonly { readonly after: number; readonly frame: FrameSpec }[];
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
  | { readonly do: 'close'; readonly code?: number; readonly reason?: string | Uint8Array }
  /**
   * Messages through the negotiated permessage-deflate (see {@link DeflateMessage}),
   * compressed in order with the fuzzing peer's context, encoded back to back and written
   * in one write or in writes of `chop` bytes. Only in cases with a {@link DeflateSetup}.
   */
  | { readonly do: 'deflate'; readonly messages: readonly DeflateMessage[]; readonly chop?: number };

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

/** permessage-deflate parameters (RFC 7692 §7.1) as an offer or a response states them. */
export interface DeflateParamsSpec {
  readonly serverNoContextTakeover?: boolean;
  readonly clientNoContextTakeover?: boolean;
  readonly serverMaxWindowBits?: number;
  /** `true`: the parameter without a value (offers only). */
  readonly clientMaxWindowBits?: number | true;
}

/**
 * How hotline's server is configured for permessage-deflate in the server role:
 * - `off`: no `perMessageDeflate` (every offer is declined);
 * - `default`: `perMessageDeflate: true`, hotline's defaults (server_no_context_takeover
 *   always answered, messages from 1 KiB on compressed);
 * - `takeover`: `{ serverNoContextTakeover: false }`: the server keeps its context unless
 *   asked not to, and compresses messages from 1 KiB on, so that its compressed messages
 *   and its uncompressed ones alternate while it keeps its context;
 * - `narrow`: `{ serverNoContextTakeover: false, clientNoContextTakeover: true,
 *   serverMaxWindowBits: 10, clientMaxWindowBits: 11, threshold: 0 }`: small windows,
 *   client_no_context_takeover answered when offered, every message compressed.
 */
export type DeflateServerConfig = 'off' | 'default' | 'takeover' | 'narrow';

/**
 * The permessage-deflate negotiation of a case (RFC 7692 §5, §7.1).
 *
 * Server role: the fuzzing client sends `offer` verbatim as Sec-WebSocket-Extensions (none
 * when empty) to a server configured as `server`; the response must be a valid acceptance
 * of one of the offers, with exactly the parameters of `response` (in any order), or no
 * permessage-deflate at all when `response` is null.
 *
 * Client role: hotline's client is configured to make `offer` (which must then be one
 * valid permessage-deflate offer), and must send exactly it; the fuzzing server answers
 * with `response` (no Sec-WebSocket-Extensions when null).
 *
 * Either way the fuzzing peer then compresses and decompresses with the parameters the
 * response agreed, and the peer's frames may carry RSV1 on the first frame of a message.
 */
export interface DeflateSetup {
  readonly offer: string;
  readonly response: DeflateParamsSpec | null;
  /** Server role only: the configuration of hotline's server. */
  readonly server: DeflateServerConfig;
}

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
  /**
   * permessage-deflate (categories 12 and 13). Without it the fuzzing client offers no
   * extension and the fuzzing server accepts none (hotline's client still offers its default).
   */
  readonly deflate?: DeflateSetup;
}

/** The largest message the peer accepts in the suite's default configuration. */
export const DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;
/** The largest message the peer accepts in the `limit: 'small'` configuration (9.9.x). */
export const SMALL_MAX_PAYLOAD = 64 * 1024;
/** How long a fail-fast check waits for the peer's close frame. */
export const FAIL_FAST_DEADLINE_MS = 2_000;
/** Default deadline of each wait. */
export const DEFAULT_TIMEOUT_MS = 3_000;
