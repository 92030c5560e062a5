import type { Socket } from 'node:net';
import { Buffer } from 'node:buffer';
import {
  CloseCode,
  ProtocolState,
  WebSocketProtocol,
  type CloseInfo,
  type ProtocolError,
  type ProtocolHandler,
} from '../protocol/index.js';
import { DEFAULT_DEFLATE_THRESHOLD, type ZlibDeflateCodec } from './deflate.js';
import { DEFAULT_INFLATE_RATE } from './inflate-budget.js';
import type { TopicRegistry } from './topics.js';
import { withSharedJoins, writeChunks } from './write.js';

/** What a connection's owner is told. Every handler is optional but `message`. */
export interface ConnectionHandlers<T = unknown> {
  open?(conn: WebSocketConnection<T>): void;
  /** Text arrives as a string, binary as a Buffer. */
  message(conn: WebSocketConnection<T>, message: string | Buffer): void;
  close?(conn: WebSocketConnection<T>, code: number, reason: string): void;
  /** The connection's buffered bytes fell back under the limit after a send returned -1. */
  drain?(conn: WebSocketConnection<T>): void;
  ping?(conn: WebSocketConnection<T>, payload: Buffer): void;
  pong?(conn: WebSocketConnection<T>, payload: Buffer): void;
  /** A handler threw: the connection is failed with 1011 and this is told once. */
  error?(conn: WebSocketConnection<T>, error: unknown): void;
}

/**
 * What to do with a send while a connection's buffered bytes exceed `backpressureLimit`:
 * 'drop' discards it; 'close' closes with 1008 (policy violation: the peer should not come
 * back as it is); 'try-again-later' closes with 1013 (try again later: the peer reconnects,
 * and a hotline.v1 client resubscribes and recovers what it missed).
 */
export type SlowConsumerPolicy = 'drop' | 'close' | 'try-again-later';

export interface ConnectionOptions {
  /** Largest incoming message, in bytes (default 1 MiB). */
  maxPayload?: number;
  /** How long to wait for the peer's close frame, and then for it to close TCP (ms, default 5000). */
  closeTimeout?: number;
  /**
   * Buffered outgoing bytes past which the connection is a slow consumer (default 1 MiB):
   * reading from it pauses until it drains, and sends follow `slowConsumer`.
   */
  backpressureLimit?: number;
  /** 'drop' (default) discards sends past the limit; 'close' closes with 1008, 'try-again-later' with 1013. */
  slowConsumer?: SlowConsumerPolicy;
  /**
   * Bytes per second a connection may inflate with permessage-deflate (default 4 MiB/s,
   * with a burst of one second's worth or `maxPayload`, whichever is more; 0 = no limit).
   * Past it, reading from the connection pauses until the budget refills: the peer is
   * slowed, and nothing it sent is lost.
   */
  inflateRate?: number;
}

/** Counters a server keeps across its connections (for metrics). */
export interface ConnectionCounters {
  droppedMessages: number;
  slowConsumerCloses: number;
  handlerErrors: number;
  /** Times reading from a connection paused because it inflated more than `inflateRate` allows. */
  inflatePauses: number;
  /** Messages received, and their payload bytes (after decompression). */
  messagesIn: number;
  bytesIn: number;
  /** Messages queued to send, and the bytes of their frames. */
  messagesOut: number;
  bytesOut: number;
}

/** Sees every message a server's connections receive and send (an inspector); off unless set. */
export type MessageTap = (conn: WebSocketConnection<unknown>, direction: 'in' | 'out', data: string | Buffer) => void;

export type SendData = string | ArrayBuffer | ArrayBufferView | Blob;

export interface ConnectionSendOptions {
  /** Send a string as binary, or bytes as text (they must be UTF-8). */
  binary?: boolean;
  /**
   * With permessage-deflate negotiated, `false` sends this message uncompressed. By
   * default messages at or above the threshold are compressed.
   */
  compress?: boolean;
  /**
   * Queue the message even past `backpressureLimit`: the slow-consumer policy does not
   * apply. For messages that must not be lost (answers to requests) whose sender bounds
   * them itself, by waiting for `drain` before it sends more.
   */
  force?: boolean;
}

export const DEFAULT_CLOSE_TIMEOUT = 5_000;
export const DEFAULT_BACKPRESSURE_LIMIT = 1024 * 1024;

/** Send results, as Bun reports them: bytes written, or one of these. */
export const SendResult = {
  /** The message was discarded (slow consumer, or the connection is closing). */
  Dropped: 0,
  /** The message is queued behind others: the peer is not keeping up. */
  Backpressure: -1,
} as const;

/** The connection a socket belongs to, so that one set of listener functions serves all sockets. */
const kConnection = Symbol('hotline.connection');
type OwnedSocket = Socket & { [kConnection]?: WebSocketConnection<unknown> };

// Connections with frames queued outside a read, written together in one tick: a publish
// to 10,000 subscribers schedules one callback, not 10,000.
const flushQueue: Array<WebSocketConnection<unknown>> = [];
let flushQueued = false;

function flushQueuedConnections(): void {
  withSharedJoins(() => {
    // A flush may queue another connection (a close handler that sends): it joins this pass.
    for (let i = 0; i < flushQueue.length; i++) flushQueue[i]!.flushNow();
  });
  flushQueue.length = 0;
  flushQueued = false;
}

/**
 * What every connection of one server shares, resolved once and referenced by each
 * connection rather than copied into it (10,000 idle connections, 10,000 copies).
 */
export class ConnectionContext<T = unknown> {
  readonly maxPayload: number | undefined;
  readonly closeTimeout: number;
  readonly backpressureLimit: number;
  readonly slowConsumer: SlowConsumerPolicy;
  /** Bytes per second each connection may inflate; 0 for no limit. */
  readonly inflateRate: number;
  /** Smallest message compressed when a connection negotiated permessage-deflate. */
  readonly deflateThreshold: number;
  /** Set while something inspects the server's messages. */
  tap: MessageTap | null = null;

  constructor(
    readonly handlers: ConnectionHandlers<T>,
    options: ConnectionOptions = {},
    readonly counters?: ConnectionCounters,
    readonly topics?: TopicRegistry<T>,
    deflateThreshold = DEFAULT_DEFLATE_THRESHOLD,
  ) {
    this.deflateThreshold = deflateThreshold;
    this.maxPayload = options.maxPayload;
    this.closeTimeout = options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
    this.backpressureLimit = options.backpressureLimit ?? DEFAULT_BACKPRESSURE_LIMIT;
    this.slowConsumer = options.slowConsumer ?? 'drop';
    this.inflateRate = options.inflateRate ?? DEFAULT_INFLATE_RATE;
    if (!(this.inflateRate >= 0 && Number.isFinite(this.inflateRate))) {
      throw new RangeError(`inflateRate must be a non-negative number of bytes per second, not ${String(options.inflateRate)}`);
    }
  }
}

function toBytes(data: ArrayBuffer | ArrayBufferView): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/**
 * A server-side WebSocket connection on a Node socket: it feeds the socket's bytes to the
 * sans-I/O protocol, writes what the protocol queues (everything queued during one read or
 * one tick goes out in one write), applies backpressure both ways, and runs the timers of
 * the closing handshake.
 */
export class WebSocketConnection<T = unknown> implements ProtocolHandler {
  /** Per-connection application data, decided at upgrade time. */
  data: T;
  readonly protocol: string;
  /** When bytes last arrived (ms since the epoch); the server's heartbeat reads it. */
  lastReceivedAt = Date.now();
  /** Set when a heartbeat ping went out, cleared by any incoming bytes. */
  awaitingPong = false;
  /**
   * When the frame or fragmented message now partly received began to arrive (ms since
   * the epoch, less any time reading was paused by this side), or 0 for none; the
   * server's sweep reads it to enforce `messageTimeout`.
   */
  partialSince = 0;

  private readonly socket: Socket;
  private readonly context: ConnectionContext<T>;
  private readonly engine: WebSocketProtocol;
  /** Set when permessage-deflate was negotiated. */
  private readonly codec: ZlibDeflateCodec | null;
  /** Created on the first subscribe: most connections of an echo or RPC server have none. */
  private topicSet: Set<string> | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  private flushScheduled = false;
  /** Inside a read: frames queued now are written when it ends, with no flush scheduled. */
  private reading = false;
  private address: string | undefined = undefined;
  private closed = false;
  /** Reading paused for backpressure: the peer does not read what is sent to it. */
  private readPaused = false;
  /** Reading paused until the inflate budget refills. */
  private throttle: NodeJS.Timeout | null = null;
  /** Paused by the application (pause()), apart from read backpressure and the budget. */
  private userPaused = false;
  /** When reading was paused, for any reason (0 while reading). */
  private pausedAt = 0;
  /** The protocol's received count when `partialSince` was set. */
  private partialCount = 0;
  private drainWanted = false;
  /** Sends waiting behind a Blob being read, to keep their order. */
  private pendingSends: Array<() => void> | null = null;

  constructor(
    socket: Socket,
    context: ConnectionContext<T>,
    data: T,
    protocol: string,
    codec: ZlibDeflateCodec | null = null,
  ) {
    this.socket = socket;
    this.context = context;
    this.data = data;
    this.protocol = protocol;
    this.codec = codec;
    this.engine = new WebSocketProtocol(this, {
      role: 'server',
      maxPayload: context.maxPayload,
      deflate: codec ?? undefined,
    });

    socket.setNoDelay(true);
    socket.setTimeout(0);
    (socket as OwnedSocket)[kConnection] = this as WebSocketConnection<unknown>;
    socket.on('data', WebSocketConnection.onSocketData);
    socket.on('end', WebSocketConnection.onSocketEnd);
    socket.on('drain', WebSocketConnection.onSocketDrain);
    socket.on('close', WebSocketConnection.onSocketClose);
    // A socket error is followed by 'close', which reports the abnormal closure.
    socket.on('error', ignoreError);
    // The socket may have been paused while its upgrade request was read.
    socket.resume();
  }

  /** Starts the connection once the handshake response is written; `head` holds early frames. */
  start(head: Buffer): void {
    this.call(() => this.context.handlers.open?.(this));
    if (head.length > 0) this.onData(head);
  }

  /**
   * Stops reading from the peer, as `ws`'s `pause()`: what was already read is still
   * delivered, then nothing more until `resume()` (the peer's writes stall in TCP).
   */
  pause(): void {
    if (this.userPaused || this.closed) return;
    this.userPaused = true;
    this.pauseReading(Date.now());
  }

  resume(): void {
    if (!this.userPaused) return;
    this.userPaused = false;
    if (!this.closed) this.resumeReading();
  }

  /** Whether `pause()` is in effect. */
  get isPaused(): boolean {
    return this.userPaused;
  }

  /** Bytes read from and written to the socket so far, framing included. */
  get bytesReceived(): number {
    return this.socket.bytesRead;
  }

  get bytesSent(): number {
    return this.socket.bytesWritten;
  }

  /** The peer's IP address (looked up on first use: most applications never ask). */
  get remoteAddress(): string {
    this.address ??= this.socket.remoteAddress ?? '';
    return this.address;
  }

  /** The negotiated extensions, as the response header named them ('' for none). */
  get extensions(): string {
    return this.codec?.extension ?? '';
  }

  /**
   * How a publish reaches this connection compressed: undefined without
   * permessage-deflate, a window size when any message compressed on its own will do (so
   * one compression serves every such subscriber), null when it must be compressed here.
   */
  get deflateShare(): number | null | undefined {
    return this.codec === null ? undefined : this.codec.sharedWindowBits;
  }

  /** Whether this side stopped reading from the peer (backpressure, the inflate budget or pause()). */
  get readingPaused(): boolean {
    return this.pausedAt !== 0;
  }

  get readyState(): number {
    return this.closed ? ProtocolState.Closed : this.engine.state;
  }

  /** Bytes handed to the socket and not yet written out, plus those still queued here. */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.engine.bufferedAmount;
  }

  /** Buffered bytes past which the connection is a slow consumer (its server's option). */
  get backpressureLimit(): number {
    return this.context.backpressureLimit;
  }

  /**
   * Sends a message: a string as text, bytes or a Blob as binary (unless `binary` says
   * otherwise). Returns the bytes queued, {@link SendResult.Backpressure} (-1) when they
   * wait behind a backlog, or {@link SendResult.Dropped} (0) when the connection is closing
   * or is a slow consumer under the 'drop' policy.
   */
  send(data: SendData, options: ConnectionSendOptions = {}): number {
    if (this.closed || !this.engine.canSend) return SendResult.Dropped;
    if (this.pendingSends !== null || data instanceof Blob) {
      this.sendLater(data, options);
      return SendResult.Backpressure;
    }
    if (options.force !== true && this.overLimit()) return SendResult.Dropped;
    const before = this.engine.bufferedAmount;
    if (typeof data === 'string') {
      const compress = this.codec !== null && this.shouldCompress(Buffer.byteLength(data), options);
      this.engine.send(data, { binary: options.binary, compress });
    } else {
      const bytes = toBytes(data);
      const compress = this.codec !== null && this.shouldCompress(bytes.length, options);
      this.engine.send(bytes, { binary: options.binary ?? true, compress });
    }
    const bytes = this.engine.bufferedAmount - before;
    this.sent(bytes, data);
    return this.queued(bytes);
  }

  /**
   * Queues a frame encoded once for many connections (a publish). `message`, what the
   * frame carries, is only for a tap to show. Returns what `send` returns.
   */
  sendEncoded(frame: Buffer, message?: Exclude<SendData, Blob>): number {
    if (this.closed || !this.engine.canSend || this.pendingSends !== null) return SendResult.Dropped;
    if (this.overLimit()) return SendResult.Dropped;
    this.engine.sendEncoded(frame);
    this.sent(frame.length, message ?? frame);
    return this.queued(frame.length);
  }

  ping(payload?: string | Uint8Array): void {
    if (this.closed || !this.engine.canSend) return;
    this.engine.ping(payload);
    this.scheduleFlush();
  }

  /** Starts the closing handshake; the connection ends when the peer answers or the timeout passes. */
  close(code?: number, reason?: string): void {
    if (this.closed || !this.engine.canSend) return;
    this.engine.close(code, reason);
    this.flush();
    this.armCloseTimer();
  }

  /**
   * Fails the connection (RFC 6455 §7.1.7): a close frame with `code` and `reason`, then
   * TCP is closed without waiting for the peer's answer. For a peer that broke a rule.
   */
  fail(code: number, reason = ''): void {
    if (this.closed) return;
    this.engine.fail(code, reason);
    this.flush();
  }

  /** Destroys the socket at once, without a closing handshake. */
  terminate(): void {
    this.socket.destroy();
  }

  subscribe(topic: string): void {
    if (this.context.topics === undefined || this.closed) return;
    this.topicSet ??= new Set();
    if (this.topicSet.has(topic)) return;
    this.topicSet.add(topic);
    this.context.topics.add(topic, this);
  }

  unsubscribe(topic: string): void {
    if (this.context.topics === undefined || this.topicSet === null || !this.topicSet.delete(topic)) return;
    this.context.topics.remove(topic, this);
  }

  isSubscribed(topic: string): boolean {
    return this.topicSet?.has(topic) ?? false;
  }

  get subscriptions(): string[] {
    return this.topicSet === null ? [] : [...this.topicSet];
  }

  /** Publishes to a topic's other subscribers (not this connection). Returns how many it reached. */
  publish(topic: string, data: Exclude<SendData, Blob>, options: ConnectionSendOptions = {}): number {
    return this.context.topics?.publish(topic, data, options, this) ?? 0;
  }

  // ProtocolHandler

  onMessage(data: Buffer, binary: boolean): void {
    const message = binary ? data : data.toString();
    const { counters, tap } = this.context;
    if (counters !== undefined) {
      counters.messagesIn++;
      counters.bytesIn += data.length;
    }
    // A message that overdrew the inflate budget is handled; reading pauses after it.
    const pause = this.codec?.budget?.takePause() ?? 0;
    if (pause > 0) this.pauseForBudget(pause);
    if (tap !== null) tap(this as WebSocketConnection<unknown>, 'in', message);
    this.context.handlers.message(this, message);
  }

  onPing(payload: Buffer): void {
    this.context.handlers.ping?.(this, payload);
  }

  onPong(payload: Buffer): void {
    this.context.handlers.pong?.(this, payload);
  }

  onClose(_info: CloseInfo): void {}

  onProtocolError(_error: ProtocolError): void {}

  // Internals

  private sent(bytes: number, data: SendData): void {
    const { counters, tap } = this.context;
    if (counters !== undefined) {
      counters.messagesOut++;
      counters.bytesOut += bytes;
    }
    if (tap !== null) tap(this as WebSocketConnection<unknown>, 'out', typeof data === 'string' ? data : toBytes(data as ArrayBufferView));
  }

  private shouldCompress(length: number, options: ConnectionSendOptions): boolean {
    return options.compress ?? length >= this.context.deflateThreshold;
  }

  private overLimit(): boolean {
    if (this.bufferedAmount <= this.context.backpressureLimit) return false;
    if (this.context.slowConsumer !== 'drop') {
      if (this.context.counters) this.context.counters.slowConsumerCloses++;
      if (this.context.slowConsumer === 'close') this.close(CloseCode.PolicyViolation, 'slow consumer: backpressure limit exceeded');
      else this.close(CloseCode.TryAgainLater, 'slow consumer: reconnect and recover');
    } else if (this.context.counters) {
      this.context.counters.droppedMessages++;
    }
    return true;
  }

  private queued(bytes: number): number {
    this.scheduleFlush();
    if (this.bufferedAmount > this.socket.writableHighWaterMark) {
      this.drainWanted = true;
      return SendResult.Backpressure;
    }
    return bytes;
  }

  private sendLater(data: SendData, options: ConnectionSendOptions): void {
    const run = (): void => {
      this.send(data, options);
    };
    if (this.pendingSends !== null) {
      this.pendingSends.push(run);
      return;
    }
    // Only a Blob starts a wait: its bytes are read asynchronously.
    this.pendingSends = [];
    (data as Blob).arrayBuffer().then(
      (buffer) => {
        const waiting = this.pendingSends ?? [];
        this.pendingSends = null;
        this.send(buffer, { binary: options.binary ?? true, compress: options.compress });
        for (let i = 0; i < waiting.length; i++) {
          // A later Blob starts a new wait; the rest queue behind it again.
          const again = this.waitingSends();
          if (again !== null) {
            again.push(...waiting.slice(i));
            break;
          }
          waiting[i]!();
        }
      },
      () => {
        this.pendingSends = null;
        this.close(CloseCode.InternalError, 'could not read a Blob to send');
      },
    );
  }

  /** Read through a method: a send in the loop above may have started a new wait. */
  private waitingSends(): Array<() => void> | null {
    return this.pendingSends;
  }

  private static onSocketData(this: OwnedSocket, chunk: Buffer): void {
    this[kConnection]!.onData(chunk);
  }

  private static onSocketEnd(this: OwnedSocket): void {
    this[kConnection]!.onEnd();
  }

  private static onSocketDrain(this: OwnedSocket): void {
    this[kConnection]!.onDrain();
  }

  private static onSocketClose(this: OwnedSocket): void {
    this[kConnection]!.onTransportClose();
  }

  private onData(chunk: Buffer): void {
    const now = Date.now();
    this.lastReceivedAt = now;
    this.awaitingPong = false;
    this.receive(chunk, now);
  }

  /** Feeds `chunk` to the protocol, or with null resumes it, then writes what it queued. */
  private receive(chunk: Buffer | null, now: number): void {
    this.reading = true;
    try {
      if (chunk === null) this.engine.resume();
      else this.engine.receiveData(chunk);
    } catch (error) {
      // Only an application handler can throw here; the protocol has already failed this
      // connection (and only this one) with 1011.
      this.reportError(error);
    }
    this.reading = false;
    // A frame or message left partial: note when it began (a new count means a new one).
    if (!this.engine.receivingPartial) {
      this.partialSince = 0;
    } else if (this.partialSince === 0 || this.engine.receivedCount !== this.partialCount) {
      this.partialSince = now;
      this.partialCount = this.engine.receivedCount;
    }
    this.flush();
    // Read backpressure: a peer that sends but does not read stops being read from.
    if (!this.readPaused && this.bufferedAmount > this.context.backpressureLimit) {
      this.readPaused = true;
      this.pauseReading(now);
    }
  }

  /** Stops reading for `ms`: the protocol keeps the rest of the read, the socket the rest. */
  private pauseForBudget(ms: number): void {
    this.engine.pause();
    if (this.context.counters) this.context.counters.inflatePauses++;
    this.pauseReading(Date.now());
    this.throttle = setTimeout(WebSocketConnection.onBudgetRefilled, ms, this);
  }

  private static onBudgetRefilled(conn: WebSocketConnection<unknown>): void {
    conn.throttle = null;
    if (conn.closed) return;
    // What the protocol kept is read first; it may overdraw the budget again.
    conn.receive(null, Date.now());
    conn.resumeReading();
  }

  private pauseReading(now: number): void {
    if (this.pausedAt !== 0) return;
    this.pausedAt = now;
    this.socket.pause();
  }

  /** Reads again once nothing holds reading: backpressure, the inflate budget, pause(). */
  private resumeReading(): void {
    if (this.pausedAt === 0 || this.readPaused || this.userPaused || this.throttle !== null || this.engine.paused) return;
    // The time this side did not read does not count against the peer's partial message.
    if (this.partialSince !== 0) this.partialSince += Date.now() - this.pausedAt;
    this.pausedAt = 0;
    this.socket.resume();
  }

  private onDrain(): void {
    if (this.readPaused) {
      this.readPaused = false;
      this.resumeReading();
    }
    if (this.drainWanted && !this.closed) {
      this.drainWanted = false;
      this.call(() => this.context.handlers.drain?.(this));
    }
  }

  private onEnd(): void {
    this.engine.receiveEof();
    this.flush();
  }

  private onTransportClose(): void {
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    if (this.throttle !== null) clearTimeout(this.throttle);
    this.throttle = null;
    if (this.closed) return;
    this.closed = true;
    if (this.context.topics !== undefined && this.topicSet !== null) {
      for (const topic of this.topicSet) this.context.topics.remove(topic, this);
    }
    this.topicSet = null;
    const received = this.engine.closeReceived;
    const code = received?.code ?? CloseCode.AbnormalClosure;
    this.call(() => this.context.handlers.close?.(this, code, received?.reason ?? ''));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.reading) return;
    this.flushScheduled = true;
    flushQueue.push(this as WebSocketConnection<unknown>);
    if (!flushQueued) {
      flushQueued = true;
      process.nextTick(flushQueuedConnections);
    }
  }

  /** Writes what is queued now (the tick's flush calls it). */
  flushNow(): void {
    if (this.flushScheduled) this.flush();
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.engine.bufferedAmount > 0 && !this.socket.destroyed) {
      writeChunks(this.socket, this.engine.takeOutgoing());
    }
    if (this.engine.shouldCloseTransport && !this.socket.writableEnded) {
      this.socket.end();
      this.armCloseTimer();
    }
  }

  private armCloseTimer(): void {
    if (this.closeTimer !== null) return;
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.context.closeTimeout);
    this.closeTimer.unref();
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.reportError(error);
      this.fail(CloseCode.InternalError, 'internal error');
    }
  }

  private reportError(error: unknown): void {
    if (this.context.counters) this.context.counters.handlerErrors++;
    if (this.context.handlers.error) {
      try {
        this.context.handlers.error(this, error);
        return;
      } catch {
        // fall through to the default report
      }
    }
    console.error('hotline: a connection handler threw; the connection was closed with 1011:', error);
  }
}

function ignoreError(): void {}
