/**
 * The fuzzing client: a raw `node:net` WebSocket client that performs the opening
 * handshake and then writes whatever bytes a case prescribes, so that hotline's server
 * can be tested with frames no well-behaved client would send.
 */
import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import { buildClientRequest, computeAccept } from '../../src/protocol/handshake.js';
import { HttpHeadParser } from '../../src/protocol/http-head.js';
import { maxPayloadFor, type ConnectOptions, type Link, type LinkListener, type Peer } from './harness.js';
import type { DeflateServerConfig, Limit } from './model.js';

export interface FuzzingTarget {
  host: string;
  port: number;
  path: string;
}

const HANDSHAKE_TIMEOUT_MS = 5_000;

/** A `Link` over a TCP socket; shared by the server-role client and the client-role listener. */
export class SocketLink implements Link {
  private closed = false;

  /** @param extensions the handshake's Sec-WebSocket-Extensions (see {@link Link.extensions}). */
  constructor(
    private readonly socket: Socket,
    readonly extensions: string | null = null,
  ) {}

  write(bytes: Buffer): Promise<void> {
    const socket = this.socket;
    if (this.closed || socket.destroyed || socket.writableEnded) return Promise.resolve();
    return new Promise((resolve) => {
      // Errors (EPIPE, ECONNRESET after the other side closed) end the write, not the case.
      socket.write(bytes, () => setImmediate(resolve));
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
  }
}

/**
 * Opens a TCP connection, performs the client's opening handshake and returns the link.
 * The handshake is checked: status 101 and the `Sec-WebSocket-Accept` computed from our key.
 * `extensions`, when not empty, is sent verbatim as Sec-WebSocket-Extensions (offers that
 * no well-behaved client would make included); the server's answer is the link's
 * `extensions`, for the harness to judge.
 */
export function openFuzzingConnection(target: FuzzingTarget, listener: LinkListener, extensions = ''): Promise<Link> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    const parser = new HttpHeadParser('response');
    const built = buildClientRequest({ host: `${target.host}:${target.port}`, path: target.path });
    const key = built.key;
    // The request ends with its empty line; the offer goes in before it, as written.
    const request = extensions === '' ? built.request : `${built.request.slice(0, -2)}Sec-WebSocket-Extensions: ${extensions}\r\n\r\n`;
    let open = false;
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      listener.end();
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`opening handshake timed out after ${HANDSHAKE_TIMEOUT_MS} ms`));
    }, HANDSHAKE_TIMEOUT_MS);

    socket.on('error', (error) => {
      if (!open) {
        clearTimeout(timer);
        reject(error);
      }
    });
    socket.on('end', end);
    socket.on('close', () => {
      if (!open) {
        clearTimeout(timer);
        reject(new Error('connection closed during the opening handshake'));
      }
      end();
    });
    socket.on('data', (chunk: Buffer) => {
      if (open) {
        listener.data(chunk);
        return;
      }
      let head;
      try {
        head = parser.push(chunk);
      } catch (error) {
        clearTimeout(timer);
        socket.destroy();
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      if (head === null) return;
      clearTimeout(timer);
      const accept = head.headers.get('sec-websocket-accept');
      if (head.status !== 101 || accept !== computeAccept(key)) {
        socket.destroy();
        reject(new Error(`handshake refused: status ${head.status}, accept ${String(accept)}`));
        return;
      }
      open = true;
      const link = new SocketLink(socket, head.headers.get('sec-websocket-extensions') ?? null);
      resolve(link);
      const rest = parser.rest;
      if (rest.length > 0) {
        queueMicrotask(() => listener.data(Buffer.from(rest)));
      }
    });
    socket.write(request, 'latin1');
  });
}

/** The key of the server a case needs: its limit and its permessage-deflate configuration. */
export type ServerKey = `${Limit}/${DeflateServerConfig}`;

/** hotline's server role, reached over TCP: one echo server per limit and deflate configuration. */
export class TcpServerPeer implements Peer {
  readonly role = 'server' as const;

  constructor(private readonly targets: ReadonlyMap<ServerKey, FuzzingTarget>) {}

  connect(listener: LinkListener, options: ConnectOptions): Promise<Link> {
    const key: ServerKey = `${options.limit}/${options.deflate?.server ?? 'off'}`;
    const target = this.targets.get(key);
    if (target === undefined) return Promise.reject(new Error(`no server was started for ${key}`));
    return openFuzzingConnection(target, listener, options.deflate?.offer ?? '');
  }

  /** The maximum payload each server must be started with. */
  static maxPayload(limit: Limit): number {
    return maxPayloadFor(limit);
  }
}
