import type { Socket } from 'node:net';
import type { Buffer } from 'node:buffer';
import {
  CloseCode,
  ProtocolState,
  WebSocketProtocol,
  type CloseInfo,
  type ProtocolError,
  type ProtocolHandler,
} from '../protocol/index.js';
import { writeChunks } from './write.js';

/** What a connection's owner is told. Every handler is optional but `message`. */
export interface ConnectionHandlers<T = unknown> {
  open?(conn: WebSocketConnection<T>): void;
  /** Text arrives as a string, binary as a Buffer. */
  message(conn: WebSocketConnection<T>, message: string | Buffer): void;
  close?(conn: WebSocketConnection<T>, code: number, reason: string): void;
  ping?(conn: WebSocketConnection<T>, payload: Buffer): void;
  pong?(conn: WebSocketConnection<T>, payload: Buffer): void;
  /** A handler threw: the connection is failed with 1011 and this is told once. */
  error?(conn: WebSocketConnection<T>, error: unknown): void;
}

export interface ConnectionOptions {
  maxPayload?: number;
  /** How long to wait for the peer's close frame, and then for it to close TCP (ms). */
  closeTimeout?: number;
}

export const DEFAULT_CLOSE_TIMEOUT = 5_000;

/**
 * A server-side WebSocket connection on a Node socket: it feeds the socket's bytes to the
 * sans-I/O protocol, writes what the protocol queues (everything queued during one read
 * goes out in one write), and runs the timers of the closing handshake.
 */
export class WebSocketConnection<T = unknown> implements ProtocolHandler {
  readonly data: T;
  readonly remoteAddress: string;
  readonly protocol: string;
  private readonly socket: Socket;
  private readonly handlers: ConnectionHandlers<T>;
  private readonly engine: WebSocketProtocol;
  private readonly closeTimeout: number;
  private closeTimer: NodeJS.Timeout | null = null;
  private flushScheduled = false;
  private closed = false;

  constructor(
    socket: Socket,
    handlers: ConnectionHandlers<T>,
    data: T,
    protocol: string,
    options: ConnectionOptions = {},
  ) {
    this.socket = socket;
    this.handlers = handlers;
    this.data = data;
    this.protocol = protocol;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.closeTimeout = options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
    this.engine = new WebSocketProtocol(this, { role: 'server', maxPayload: options.maxPayload });

    socket.setNoDelay(true);
    socket.setTimeout(0);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onSocketClose());
    // A socket error is followed by 'close', which reports the abnormal closure.
    socket.on('error', () => {});
  }

  /** Starts the connection once the handshake response is written; `head` holds early frames. */
  start(head: Buffer): void {
    this.call(() => this.handlers.open?.(this));
    if (head.length > 0) this.onData(head);
  }

  get readyState(): number {
    return this.closed ? ProtocolState.Closed : this.engine.state;
  }

  /** Bytes handed to the socket and not yet written out, plus those still queued here. */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.engine.bufferedAmount;
  }

  send(message: string | Uint8Array, options: { binary?: boolean } = {}): boolean {
    if (!this.engine.canSend || this.closed) return false;
    this.engine.send(message, options);
    this.scheduleFlush();
    return true;
  }

  ping(payload?: string | Uint8Array): void {
    if (!this.engine.canSend || this.closed) return;
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

  /** Destroys the socket at once, without a closing handshake. */
  terminate(): void {
    this.socket.destroy();
  }

  // ProtocolHandler

  onMessage(data: Buffer, binary: boolean): void {
    this.handlers.message(this, binary ? data : data.toString());
  }

  onPing(payload: Buffer): void {
    this.handlers.ping?.(this, payload);
  }

  onPong(payload: Buffer): void {
    this.handlers.pong?.(this, payload);
  }

  onClose(_info: CloseInfo): void {}

  onProtocolError(_error: ProtocolError): void {}

  // Socket events

  private onData(chunk: Buffer): void {
    try {
      this.engine.receiveData(chunk);
    } catch (error) {
      // Only an application handler can throw here; the protocol has already failed this
      // connection (and only this one) with 1011.
      this.reportError(error);
    }
    this.flush();
  }

  private onEnd(): void {
    this.engine.receiveEof();
    this.flush();
  }

  private onSocketClose(): void {
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    if (this.closed) return;
    this.closed = true;
    const received = this.engine.closeReceived;
    const code = received?.code ?? CloseCode.AbnormalClosure;
    this.call(() => this.handlers.close?.(this, code, received?.reason ?? ''));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => this.flush());
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
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.closeTimeout);
    this.closeTimer.unref();
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.reportError(error);
      if (!this.closed) {
        this.engine.fail(CloseCode.InternalError, 'internal error');
        this.flush();
      }
    }
  }

  private reportError(error: unknown): void {
    if (this.handlers.error) {
      try {
        this.handlers.error(this, error);
        return;
      } catch {
        // fall through to the default report
      }
    }
    console.error('hotline: a connection handler threw; the connection was closed with 1011:', error);
  }
}
