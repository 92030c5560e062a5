/**
 * The jobs bench/server.ts hands its load generator (bench/lib/load-main.ts), and what
 * comes back: one JSON object per line each way.
 */
import type { KernelCounters } from './proc.js';

interface Target {
  port: number;
  /** The WebSocket path to upgrade on. */
  path: string;
}

export interface Timed {
  /** The CPU the server is pinned to, whose total use is read from /proc/stat. */
  serverCore: number;
  /** Running, but not counted yet (connections are open and checked before this starts). */
  warmupMs: number;
  /** The counted window. */
  measureMs: number;
  /** The server's pid, whose CPU time over the window is read from /proc. */
  serverPid: number;
  /** The CPU the load generator is pinned to. */
  loadCore: number;
  /**
   * Keep the load generator's event loop polling (setImmediate) instead of sleeping in
   * epoll between events, so it answers the server without a wake-up.
   */
  spin: boolean;
}

/** Echo: `connections` connections, each keeping `inFlight` messages outstanding. */
export interface EchoJob extends Target, Timed {
  type: 'echo';
  connections: number;
  inFlight: number;
  binary: boolean;
  size: number;
}

/** Round trips of one message at a time on one connection. */
export interface LatencyJob extends Target, Timed {
  type: 'latency';
  size: number;
}

/**
 * Topic fan-out: `subscribers` connections read and count; one more connection (also
 * subscribed, connected last) publishes, keeping `inFlight` publishes outstanding: a
 * publish stops being outstanding when the publisher receives its own copy. It also
 * stops publishing while the slowest subscriber is `lagLimit` messages behind.
 */
export interface FanoutJob extends Target, Timed {
  type: 'fanout';
  subscribers: number;
  inFlight: number;
  size: number;
  lagLimit: number;
  /**
   * bench/lib/fanout-client.c compiled: it opens the connections and publishes instead of
   * the load generator's own sockets (see that file for why), on the load generator's core.
   */
  client?: string;
}

/** Connect, upgrade, close (closing handshake), `concurrency` at a time, over and over. */
export interface HandshakeJob extends Target, Timed {
  type: 'handshake';
  concurrency: number;
  /**
   * bench/lib/handshake-client.c compiled: it opens the connections instead of the load
   * generator's own sockets (see that file for why), on the load generator's core.
   */
  client?: string;
}

/**
 * Opens `connections` connections (`concurrency` handshakes at a time). With `echoOnce`
 * each sends one 32 B text message and waits for it to come back. With `hold` they stay
 * open (idle) until a `closeAll` job; otherwise they are closed (closing handshake) first.
 */
export interface OpenJob extends Target {
  type: 'open';
  connections: number;
  concurrency: number;
  echoOnce: boolean;
  hold: boolean;
}

/** Destroys every connection an `open` job held. */
export interface CloseAllJob {
  type: 'closeAll';
}

/**
 * permessage-deflate (bench/deflate.ts): the load generator offers DEFLATE_OFFER (see
 * deflate-frames.ts), fails unless the server accepts it, and sends text messages from a
 * cycle of `variety` distinct ones (deflate-payloads.ts), pre-encoded: compressed on their
 * own (RSV1) when at least `clientThreshold` bytes, as is otherwise.
 */
export interface DeflateMessages {
  payload: 'chat' | 'document';
  /** Document size in bytes (ignored for chat). */
  size: number;
  variety: number;
  clientThreshold: number;
  /** Replies per connection checked in full (inflated when compressed); the rest are counted by their headers. */
  verifyReplies: number;
}

/** Echo with permessage-deflate: `connections` connections, each keeping `inFlight` messages outstanding. */
export interface DeflateEchoJob extends Target, Timed, DeflateMessages {
  type: 'deflateEcho';
  connections: number;
  inFlight: number;
}

/**
 * Opens `connections` connections with permessage-deflate (`concurrency` handshakes at a
 * time); each sends one message and checks its echo. With `hold` they stay open until a
 * `closeAll` job; otherwise they are closed (closing handshake) first.
 */
export interface DeflateOpenJob extends Target, DeflateMessages {
  type: 'deflateOpen';
  connections: number;
  concurrency: number;
  hold: boolean;
}

export type Job = EchoJob | LatencyJob | FanoutJob | HandshakeJob | OpenJob | CloseAllJob | DeflateEchoJob | DeflateOpenJob;

/** CPU shares are fractions of one core over the counted window. */
export interface WindowStats {
  seconds: number;
  serverCpu: number;
  /** The part of serverCpu spent in the kernel. */
  serverSystem: number;
  loadCpu: number;
  /** How busy the server's CPU was in all (the server, other processes, interrupts). */
  serverCoreBusy: number;
  /** How busy the load generator's CPU was in all. */
  loadCoreBusy: number;
  /** The share of the window a spinning load generator spent polling with nothing to read. */
  loadSpinIdle: number;
  /** The server's system calls, bytes and sleeps over the window. */
  serverKernel: KernelCounters;
}

export interface RateResult extends WindowStats {
  type: 'rate';
  /** Messages (echo), deliveries at subscribers (fan-out) or completed connections (handshake). */
  count: number;
  /** Everything the job checked after the window, for the report (e.g. messages echoed in all). */
  checked: string;
}

export interface LatencyResult extends WindowStats {
  type: 'latency';
  roundTrips: number;
  p50Us: number;
  p99Us: number;
  checked: string;
}

export interface OpenResult {
  type: 'opened';
  connections: number;
  held: number;
}

export interface ClosedResult {
  type: 'closed';
  destroyed: number;
}

export interface DeflateRateResult extends WindowStats {
  type: 'deflateRate';
  /** Messages echoed in the counted window. */
  count: number;
  /** Over the window, per message: frame bytes (headers and payload) the client sent and the server sent back. */
  sentBytesPerMessage: number;
  receivedBytesPerMessage: number;
  /** Over the window, the share of messages sent compressed, and of replies that came back compressed. */
  sentCompressed: number;
  receivedCompressed: number;
  /** The server's Sec-WebSocket-Extensions (the same on every connection). */
  negotiated: string;
  checked: string;
}

export interface DeflateOpenResult {
  type: 'deflateOpened';
  connections: number;
  held: number;
  negotiated: string;
  /** Replies that came back compressed (one per connection). */
  compressedReplies: number;
  checked: string;
}

export interface ErrorResult {
  type: 'error';
  message: string;
}

export type JobResult =
  | RateResult
  | LatencyResult
  | OpenResult
  | ClosedResult
  | ErrorResult
  | DeflateRateResult
  | DeflateOpenResult;

/** Printed (with the job's id) when a job's counted window starts and ends, before its answer. */
export interface WindowEvent {
  type: 'window';
  phase: 'start' | 'end';
  id: number;
}

/** A job as sent, with the id its answer carries. */
export type JobRequest = Job & { id: number };
export type JobAnswer = JobResult & { id: number };
