import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Buffer } from 'node:buffer';
import {
  buildRejectResponse,
  buildServerResponse,
  validateClientRequest,
  type ServerHandshakeOptions,
} from '../protocol/handshake.js';
import { HandshakeError } from '../protocol/errors.js';
import type { HttpRequestHead } from '../protocol/http-head.js';
import { CloseCode } from '../protocol/close-code.js';
import { WebSocketConnection, type ConnectionHandlers, type ConnectionOptions } from './connection.js';

export interface WebSocketServerOptions<T> extends ConnectionOptions, ServerHandshakeOptions {
  handlers: ConnectionHandlers<T>;
}

/** The request head as the protocol core reads it, from what node:http parsed. */
export function requestHead(req: IncomingMessage): HttpRequestHead {
  const headers = new Map<string, string>();
  const rawHeaders: Array<[string, string]> = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    rawHeaders.push([raw[i]!, value]);
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
  }
  return { method: req.method ?? '', target: req.url ?? '/', version: req.httpVersion, headers, rawHeaders };
}

/**
 * Accepts WebSocket upgrades for one endpoint and keeps track of its connections. Use it
 * from any Node HTTP server's 'upgrade' event through {@link handleUpgrade}.
 */
export class WebSocketServer<T = undefined> {
  readonly connections = new Set<WebSocketConnection<T>>();
  private readonly options: WebSocketServerOptions<T>;

  constructor(options: WebSocketServerOptions<T>) {
    this.options = options;
  }

  /**
   * Completes the opening handshake on `socket` or answers it with the HTTP error the
   * request deserves. Returns the connection, or null when the request was refused.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, data?: T): WebSocketConnection<T> | null {
    let accepted;
    try {
      accepted = validateClientRequest(requestHead(req), this.options);
    } catch (error) {
      if (!(error instanceof HandshakeError)) throw error;
      socket.on('error', () => {});
      socket.end(buildRejectResponse(error.status, error.message, error.headers));
      return null;
    }
    socket.write(buildServerResponse({ accept: accepted.accept, protocol: accepted.protocol }));
    const handlers = this.options.handlers;
    const connections = this.connections;
    const tracked: ConnectionHandlers<T> = {
      ...handlers,
      close(conn, code, reason) {
        connections.delete(conn);
        handlers.close?.(conn, code, reason);
      },
    };
    const conn = new WebSocketConnection<T>(
      socket as Socket,
      tracked,
      data as T,
      accepted.protocol ?? '',
      this.options,
    );
    connections.add(conn);
    conn.start(head);
    return conn;
  }

  /** Closes every connection with `code` (1001 by default). */
  closeAll(code: number = CloseCode.GoingAway, reason = 'server shutting down'): void {
    for (const conn of this.connections) conn.close(code, reason);
  }

  terminateAll(): void {
    for (const conn of this.connections) conn.terminate();
  }
}

