// The server side of one WebSocket connection: its whole API (send, publish, topics, close,
// pause) and the protocol's handler. Its helpers each have a file: the shared flush and
// close timer (frame-pump.ts), when it reads (read-pacer.ts), the options and handlers its
// server resolves once for all (connection-context.ts), a topic's publishes of a tick
// (topic-batch.ts). What is left is one job, past 450 lines because the API is wide and
// every send keeps its place: behind a Blob being read, behind a topic's batch.
import type { Socket } from 'node:net';
import { Buffer } from 'node:buffer';
import {
  CloseCode,
  Opcode,
  ProtocolState,
  WebSocketProtocol,
  type CloseInfo,
  type ProtocolError,
  type ProtocolHandler,
} from '../protocol/index.js';
import { SendResult, type ConnectionContext, type ConnectionSendOptions, type SendData } from './connection-context.js';
import type { ZlibDeflateCodec } from './deflate.js';
import { DirectWriter } from './direct-writes.js';
import { FramePump } from './frame-pump.js';
import { ReadPacer, type PacedReader } from './read-pacer.js';
import { ReadSlab, readIntoShared } from './shared-reads.js';
import { kSlot } from './connection-set.js';

export {
  ConnectionContext,
  DEFAULT_BACKPRESSURE_LIMIT,
  SendResult,
  type ConnectionSendOptions,
  type SendData,
  type ConnectionCounters,
  type ConnectionHandlers,
  type ConnectionOptions,
  type MessageTap,
  type SlowConsumerPolicy,
} from './connection-context.js';

/** The connection a socket belongs to, so that one set of listener functions serves all sockets. */
const kConnection = Symbol('hotline.connection');
/** A server's ping with no payload, as the heartbeat sends it: encoded once for every connection. */
const HEARTBEAT_PING = Buffer.from([0x80 | Opcode.Ping, 0]);
type OwnedSocket = Socket & { [kConnection]?: WebSocketConnection<unknown> };

function toBytes(data: ArrayBuffer | ArrayBufferView): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/**
 * A server-side WebSocket connection on a Node socket: it feeds the socket's bytes to the
 * sans-I/O protocol and hands what the protocol queues to its {@link FramePump} (one write
 * per read or per tick, and the closing handshake's timer); its {@link ReadPacer} decides
 * when it reads (backpressure, the inflate budget, `pause()`).
 */
export class WebSocketConnection<T = unknown> implements ProtocolHandler, PacedReader {
  /** Per-connection application data, decided at upgrade time. */
  data: T;
  /** The subprotocol selected at upgrade time ('' for none). */
  readonly protocol: string;
  /** When bytes last arrived (ms since the epoch); the server's heartbeat reads it. */
  lastReceivedAt = Date.now();
  /** Set when a heartbeat ping went out, cleared by any incoming bytes. */
  awaitingPong = false;

  private readonly socket: Socket;
  private readonly context: ConnectionContext<T>;
  /** The sans-I/O core (named apart from `protocol`, the subprotocol, as WHATWG names that). */
  readonly #protocol: WebSocketProtocol;
  /**
   * Made by the first frame queued: an idle connection, open and silent, keeps none, and
   * the server's sweep lets go of one that has nothing left to write (see {@link compact}).
   */
  private pumpState: FramePump | null = null;
  /** Inside a read: a pump made now holds its frames until the read ends. */
  private reading = false;
  /** Where this connection's small reads are copied; made by the first, let go of by {@link compact}. */
  private readSlab: ReadSlab | null = null;
  /** Created when reading first needs pacing (a pause, a partial frame, backpressure): most connections never do. */
  private pacer: ReadPacer | null = null;
  /** Set when permessage-deflate was negotiated. */
  private readonly codec: ZlibDeflateCodec | null;
  /** Created on the first subscribe: most connections of an echo or RPC server have none. */
  private topicSet: Set<string> | null = null;
  private address: string | undefined = undefined;
  /** Where this connection sits in its server's set of open connections. */
  [kSlot] = -1;
  private closed = false;
  private drainWanted = false;
  /** Sends waiting behind a Blob being read, to keep their order. */
  private pendingSends: Array<() => void> | null = null;

  constructor(
    socket: Socket,
    context: ConnectionContext<T>,
    data: T,
    protocol: string,
    codec: ZlibDeflateCodec | null = null,
    /** The client's address when trusted proxies tell it; else the socket's, looked up on use. */
    remoteAddress?: string,
  ) {
    this.socket = socket;
    this.address = remoteAddress;
    this.context = context;
    this.data = data;
    this.protocol = protocol;
    this.codec = codec;
    this.#protocol = new WebSocketProtocol(this, {
      role: 'server',
      maxPayload: context.maxPayload,
      deflate: codec ?? undefined,
    });

    socket.setNoDelay(true);
    socket.setTimeout(0);
    (socket as OwnedSocket)[kConnection] = this as WebSocketConnection<unknown>;
    if (!readIntoShared(socket, WebSocketConnection.onSocketData, WebSocketConnection.readSlabOf)) socket.on('data', WebSocketConnection.onSocketData);
    socket.on('end', WebSocketConnection.onSocketEnd);
    socket.on('drain', WebSocketConnection.onSocketDrain);
    socket.on('close', WebSocketConnection.onSocketClose);
    // A socket error is followed by 'close', which reports the abnormal closure.
    socket.on('error', ignoreError);
    // The socket may have been paused while its upgrade request was read.
    socket.resume();
  }

  /** What moves the protocol's frames onto the socket (see {@link pumpState}). */
  private get pump(): FramePump {
    let pump = this.pumpState;
    if (pump === null) {
      pump = this.pumpState = new FramePump(this.socket, this.#protocol, this.context.closeTimeout);
      if (this.reading) pump.beginRead();
    }
    return pump;
  }

  /**
   * Writes the handshake's `response` straight to the stream (no Writable state, request and
   * callback for it), then starts the connection; `head` holds early frames.
   */
  start(response: string, head: Buffer): void {
    this.writeWithoutPump(response);
    this.call(() => this.context.handlers.open?.(this));
    if (head.length > 0) this.onData(head);
  }

  /**
   * Stops reading from the peer, as `ws`'s `pause()`: what was already read is still
   * delivered, then nothing more until `resume()` (the peer's writes stall in TCP).
   */
  pause(): void {
    this.paced().pauseByUser();
  }

  /** Undoes `pause()`; reading stays paused while backpressure or the inflate budget also holds it. */
  resume(): void {
    this.pacer?.resumeByUser();
  }

  /** Whether `pause()` is in effect. */
  get isPaused(): boolean {
    return this.pacer?.pausedByUser ?? false;
  }

  /**
   * When the frame or fragmented message now partly received began to arrive (ms since
   * the epoch, less any time reading was paused by this side), or 0 for none; the
   * server's sweep reads it to enforce `messageTimeout`.
   */
  get partialSince(): number {
    return this.pacer?.partialSince ?? 0;
  }

  /** Bytes read from and written to the socket so far, framing included. */
  get bytesReceived(): number {
    return this.socket.bytesRead;
  }

  /** Bytes written to the socket so far, framing included (see {@link bytesReceived}). */
  get bytesSent(): number {
    return this.socket.bytesWritten;
  }

  /**
   * The client's IP address: the peer's (looked up on first use: most applications never
   * ask), or, with `trustProxy`, the one the trusted proxies forwarded.
   */
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
    return this.pacer?.paused ?? false;
  }

  /** 1 (open), 2 (closing handshake under way) or 3 (closed), numbered like the WHATWG `readyState`. */
  get readyState(): number {
    return this.closed ? ProtocolState.Closed : this.#protocol.state;
  }

  /** Bytes handed to the socket and not yet written out, plus those still queued here. */
  get bufferedAmount(): number {
    const buffered = (this.pumpState?.unwritten ?? this.socket.writableLength) + this.#protocol.bufferedAmount;
    return this.topicSet === null ? buffered : buffered + this.context.topics!.batchedBytes(this);
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
    const protocol = this.#protocol;
    if (this.closed || !protocol.canSend) return SendResult.Dropped;
    if (this.topicSet !== null) this.leaveBatch();
    if (this.pendingSends !== null || data instanceof Blob) {
      this.sendLater(data, options);
      return SendResult.Backpressure;
    }
    if (options.force !== true && this.overLimit()) return SendResult.Dropped;
    const before = protocol.bufferedAmount;
    const binary = options.binary ?? typeof data !== 'string';
    if (typeof data === 'string') {
      const compress = this.codec !== null && this.shouldCompress(Buffer.byteLength(data), options);
      protocol.send(data, { binary, compress });
    } else {
      const bytes = toBytes(data);
      const compress = this.codec !== null && this.shouldCompress(bytes.length, options);
      protocol.send(bytes, { binary, compress });
    }
    const bytes = protocol.bufferedAmount - before;
    this.sent(bytes, data, binary);
    return this.queued(bytes);
  }

  /**
   * Queues a frame encoded once for many connections (a publish). `message`, what the
   * frame carries, is only for a tap to show. Returns what `send` returns.
   */
  sendEncoded(frame: Buffer, message?: Exclude<SendData, Blob>): number {
    if (this.closed || !this.#protocol.canSend || this.pendingSends !== null) return SendResult.Dropped;
    if (this.topicSet !== null) this.leaveBatch();
    if (this.overLimit()) return SendResult.Dropped;
    this.#protocol.sendEncoded(frame);
    this.sent(frame.length, message ?? frame);
    return this.queued(frame.length);
  }

  /**
   * Sends a ping (at most 125 bytes; a string as UTF-8); the answer reaches the `pong`
   * handler. Does nothing once the closing handshake has begun. The server's own
   * heartbeat (`heartbeatInterval`) pings by itself.
   */
  ping(payload?: string | Uint8Array): void {
    if (this.closed || !this.#protocol.canSend) return;
    if (this.topicSet !== null) this.leaveBatch();
    this.#protocol.ping(payload);
    this.pump.schedule();
  }

  /**
   * The server's heartbeat ping (its sweep calls it). With nothing else waiting to be
   * written it goes straight to the socket, leaving no pump behind on an idle connection.
   */
  heartbeat(): void {
    if (this.closed || !this.#protocol.canSend) return;
    if (this.pumpState !== null || this.#protocol.bufferedAmount > 0) this.ping();
    else this.writeWithoutPump(HEARTBEAT_PING);
  }

  /**
   * Lets go of per-message state while no message is in progress, of the read slab, and of
   * the pump once it has nothing left to write (the server's sweep calls it).
   */
  compact(): void {
    this.#protocol.compact();
    this.readSlab = null;
    if (this.pumpState?.idle === true && this.#protocol.bufferedAmount === 0) this.pumpState = null;
  }

  /** Starts the closing handshake; the connection ends when the peer answers or the timeout passes. */
  close(code?: number, reason?: string): void {
    if (this.closed || !this.#protocol.canSend) return;
    if (this.topicSet !== null) this.leaveBatch();
    this.#protocol.close(code, reason);
    this.pump.flush();
    this.pump.armCloseTimer();
  }

  /**
   * Fails the connection (RFC 6455 §7.1.7): a close frame with `code` and `reason`, then
   * TCP is closed without waiting for the peer's answer. For a peer that broke a rule.
   */
  fail(code: number, reason = ''): void {
    if (this.closed) return;
    if (this.topicSet !== null) this.leaveBatch();
    this.#protocol.fail(code, reason);
    this.pump.flush();
  }

  /** Destroys the socket at once, without a closing handshake. */
  terminate(): void {
    this.socket.destroy();
  }

  /**
   * Subscribes this connection to `topic`, so that the server's `publish` (and other
   * connections' {@link publish}) reach it; again is a no-op, and it ends with the connection.
   * @throws TopicsDisabledError on an endpoint whose topics are off (the channel endpoint).
   */
  subscribe(topic: string): void {
    if (this.context.topics === undefined || this.closed) return;
    this.topicSet ??= new Set();
    if (this.topicSet.has(topic)) return;
    // First: it throws where topics are off.
    this.context.topics.add(topic, this);
    this.topicSet.add(topic);
  }

  /** Ends this connection's subscription to `topic`; a no-op when it had none. */
  unsubscribe(topic: string): void {
    if (this.context.topics === undefined || this.topicSet === null || !this.topicSet.delete(topic)) return;
    this.context.topics.remove(topic, this);
  }

  /** Whether this connection is subscribed to `topic`. */
  isSubscribed(topic: string): boolean {
    return this.topicSet?.has(topic) ?? false;
  }

  /** The topics this connection is subscribed to, as a fresh array. */
  get subscriptions(): string[] {
    return this.topicSet === null ? [] : [...this.topicSet];
  }

  /** Publishes to a topic's other subscribers (not this connection). Returns how many it reached. */
  publish(topic: string, data: Exclude<SendData, Blob>, options: ConnectionSendOptions = {}): number {
    return this.context.topics?.publish(topic, data, options, this) ?? 0;
  }

  // A topic's batch of publishes (topic-batch.ts)

  /**
   * @internal Bytes a topic's batch may still queue for this connection before it passes
   * its backpressure limit; -1 when publishes must reach it one by one (it takes none now,
   * or a tap shows each message).
   */
  batchHeadroom(): number {
    if (this.closed || !this.#protocol.canSend || this.pendingSends !== null || this.context.tap !== null) return -1;
    return this.context.backpressureLimit - this.bufferedAmount;
  }

  /** @internal Queues the frames a topic's batch kept for this connection, as sendEncoded would. */
  takeBatched(frames: readonly Buffer[], bytes: number): void {
    if (this.closed || !this.#protocol.canSend) return;
    for (let i = 0; i < frames.length; i++) this.#protocol.sendEncoded(frames[i]!);
    this.countOut(frames.length, bytes);
    this.queued(bytes);
  }

  /**
   * @internal Writes the frames a topic's batch kept for this connection (`plan` is them
   * made ready for a write, once for all): behind what it has queued, if anything.
   */
  writeBatch(frames: readonly Buffer[], plan: Buffer | Buffer[], bytes: number): void {
    // A socket destroyed or ended here has a protocol that can no longer send.
    if (this.closed || !this.#protocol.canSend) return;
    if (this.#protocol.bufferedAmount > 0 || this.reading) {
      this.takeBatched(frames, bytes);
      return;
    }
    this.countOut(frames.length, bytes);
    // The pump stays for the next tick's batch (its writer decided once how to write); the
    // sweep lets it go once the connection is idle. false: the socket holds its
    // high-water mark, and a 'drain' follows.
    if (!this.pump.writePlanned(plan, bytes)) this.drainWanted = true;
  }

  /** Counts messages queued or written to send, framing included in `bytes`. */
  private countOut(messages: number, bytes: number): void {
    const counters = this.context.counters;
    if (counters === undefined) return;
    counters.messagesOut += messages;
    counters.bytesOut += bytes;
  }

  /** Something else is sent: this tick's publishes not yet written to it are queued first. */
  private leaveBatch(): void {
    this.context.topics!.detach(this);
  }

  // ProtocolHandler

  onMessage(data: Buffer, binary: boolean): void {
    const message = binary || !this.context.decodeText ? data : data.toString();
    const { counters, tap } = this.context;
    if (counters !== undefined) {
      counters.messagesIn++;
      counters.bytesIn += data.length;
    }
    // A message that overdrew the inflate budget is handled; reading pauses after it.
    const pause = this.codec?.budget?.takePause() ?? 0;
    if (pause > 0) {
      if (counters !== undefined) counters.inflatePauses++;
      this.paced().throttleFor(pause);
    }
    if (tap !== null) tap(this as WebSocketConnection<unknown>, 'in', binary ? data : String(message));
    this.context.handlers.message(this, message, binary);
  }

  onPing(payload: Buffer): void {
    this.context.handlers.ping?.(this, payload);
  }

  onPong(payload: Buffer): void {
    this.context.handlers.pong?.(this, payload);
  }

  onClose(_info: CloseInfo): void {}

  onProtocolError(_error: ProtocolError): void {}

  // PacedReader

  /** @internal The inflate budget refilled: decodes what the protocol kept. */
  readKept(now: number): void {
    this.receive(null, now);
  }

  // Internals

  /** Counts a message queued to send; a tap sees it as the peer will: text as a string, binary as bytes. */
  private sent(bytes: number, data: SendData, binary = typeof data !== 'string'): void {
    this.countOut(1, bytes);
    const tap = this.context.tap;
    if (tap === null) return;
    let shown: string | Buffer;
    if (typeof data === 'string') shown = binary ? Buffer.from(data) : data;
    else shown = binary ? toBytes(data as ArrayBufferView) : toBytes(data as ArrayBufferView).toString();
    tap(this as WebSocketConnection<unknown>, 'out', shown);
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
    this.pump.schedule();
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

  private static readSlabOf(socket: OwnedSocket): ReadSlab {
    return (socket[kConnection]!.readSlab ??= new ReadSlab());
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
    // A read that queues nothing (a pong, a message the application does not answer) makes no pump.
    this.reading = true;
    this.pumpState?.beginRead();
    try {
      if (chunk === null) this.#protocol.resume();
      else this.#protocol.receiveData(chunk);
    } catch (error) {
      // Only an application handler can throw here; the protocol has already failed this
      // connection (and only this one) with 1011.
      this.reportError(error);
    }
    this.reading = false;
    // What the protocol queued by itself (a pong, its close frame) goes out as frames queued
    // through the pump do: in one write when the read ends.
    if (this.pumpState !== null) this.pumpState.endRead();
    else if (this.#protocol.bufferedAmount > 0 || this.#protocol.shouldCloseTransport) this.pump.flush();
    if (this.pacer !== null || this.#protocol.receivingPartial || this.bufferedAmount > this.context.backpressureLimit) {
      this.paced().afterRead(now);
    }
  }

  /**
   * Writes bytes no frame is queued behind (the handshake's response, a heartbeat ping)
   * straight to the stream. Bytes the kernel took whole leave nothing to track: the pump,
   * made by the next frame, gets a writer of its own. Bytes it did not are tracked by a pump
   * made with this writer.
   */
  private writeWithoutPump(bytes: string | Buffer): void {
    const writer = new DirectWriter(this.socket);
    if (typeof bytes === 'string') writer.writeString(bytes);
    else writer.write(bytes);
    if (writer.pending > 0) this.pumpState = new FramePump(this.socket, this.#protocol, this.context.closeTimeout, writer);
  }

  private paced(): ReadPacer {
    if (this.pacer === null) {
      this.pacer = new ReadPacer(this.socket, this.#protocol, this, this.context.backpressureLimit);
      if (this.closed) this.pacer.stop();
    }
    return this.pacer;
  }

  private onDrain(): void {
    this.pacer?.onDrain();
    if (this.drainWanted && !this.closed) {
      this.drainWanted = false;
      this.call(() => this.context.handlers.drain?.(this));
    }
  }

  private onEnd(): void {
    this.#protocol.receiveEof();
    this.pump.flush();
  }

  private onTransportClose(): void {
    this.pumpState?.stop();
    this.pacer?.stop();
    if (this.closed) return;
    this.closed = true;
    if (this.context.topics !== undefined && this.topicSet !== null) {
      for (const topic of this.topicSet) this.context.topics.remove(topic, this);
    }
    this.topicSet = null;
    const received = this.#protocol.closeReceived;
    const code = received?.code ?? CloseCode.AbnormalClosure;
    this.call(() => this.context.handlers.close?.(this, code, received?.reason ?? ''));
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
