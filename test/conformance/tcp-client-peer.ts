/**
 * hotline's Node `WebSocket` (src/node/client.ts) as the client-role peer, over real TCP.
 * The harness plays the server: this module listens on 127.0.0.1, answers each client's
 * opening handshake itself on the raw socket (nothing of hotline's server side is used),
 * and hands the socket to the harness as the Link. The client echoes every message, text
 * as text and binary as binary.
 *
 * Each connection gets its own request path, so that concurrent cases find their own
 * socket. Besides the wire, which the harness judges, the peer records what the client's
 * API reported (error and close events) so that the test can check those too.
 *
 * permessage-deflate: the client is left with its default offer unless the case has a
 * deflate setup, which configures the client to make the case's offer; the listener
 * answers with the case's response (nothing when there is none) and hands the client's
 * Sec-WebSocket-Extensions to the harness, which judges it.
 */
import { Buffer } from 'node:buffer';
import { createServer, type Server, type Socket } from 'node:net';
import { computeAccept } from '../../src/protocol/handshake.js';
import { HttpHeadParser } from '../../src/protocol/http-head.js';
import { WebSocket } from '../../src/node/client.js';
import { maxPayloadFor, type ConnectOptions, type Link, type LinkListener, type Peer } from './harness.js';
import { SocketLink } from './fuzzing-client.js';
import { clientOptionsFor, formatDeflateSpec } from './deflate.js';

const HOST = '127.0.0.1';
const HANDSHAKE_TIMEOUT_MS = 5_000;

/** What the client's API reported when the connection ended. */
export interface ClientEnd {
  /** Events in order: 'open', 'error', 'close' (messages are left out). */
  readonly events: readonly string[];
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

/** The server half of one connection: waits for the client's request on `path`. */
interface Pending {
  /** The Sec-WebSocket-Extensions to answer with, if any. */
  readonly extensions: string | null;
  /** `offered`: the client's Sec-WebSocket-Extensions (null when absent). */
  accept(socket: Socket, rest: Buffer, offered: string | null): void;
}

/** One case's view of the peer: it remembers the client it opened. */
export class CaseClientPeer implements Peer {
  readonly role = 'client' as const;
  private ended: Promise<ClientEnd> | null = null;

  constructor(private readonly owner: TcpClientPeer) {}

  async connect(listener: LinkListener, options: ConnectOptions): Promise<Link> {
    const { link, ended } = await this.owner.open(listener, options);
    this.ended = ended;
    return link;
  }

  /** What the client's API reported, once its close event fired (null if it did not within `ms`). */
  async end(ms: number): Promise<ClientEnd | null> {
    if (this.ended === null) return null;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    });
    try {
      return await Promise.race([this.ended, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** hotline's Node client over TCP, connecting to a listener that the harness answers. */
export class TcpClientPeer implements Peer {
  readonly role = 'client' as const;
  private readonly pending = new Map<string, Pending>();
  private readonly sockets = new Set<Socket>();
  private nextId = 0;

  private constructor(
    private readonly server: Server,
    private readonly port: number,
  ) {}

  static async listen(): Promise<TcpClientPeer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, HOST, () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    const peer = new TcpClientPeer(server, address.port);
    server.on('connection', (socket) => peer.handshake(socket));
    return peer;
  }

  /** A Peer for one case, which keeps what the client reported. */
  forCase(): CaseClientPeer {
    return new CaseClientPeer(this);
  }

  async connect(listener: LinkListener, options: ConnectOptions): Promise<Link> {
    return (await this.open(listener, options)).link;
  }

  /** Starts a client, answers its handshake, and returns the link and the client's end. */
  open(listener: LinkListener, options: ConnectOptions): Promise<{ link: Link; ended: Promise<ClientEnd> }> {
    const path = `/case/${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const setup = options.deflate;
      let client: WebSocket;
      try {
        client = new WebSocket(`ws://${HOST}:${this.port}${path}`, undefined, {
          // The suite's default limit is the client's own default: cases up to 16 MiB pass
          // with no option set, as they would for an application that sets none.
          ...(options.limit === 'small' ? { maxPayload: maxPayloadFor(options.limit) } : {}),
          ...(setup === undefined ? {} : { perMessageDeflate: clientOptionsFor(setup.offer) }),
        });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      client.binaryType = 'nodebuffer';
      client.onmessage = (event) => client.send(event.data);
      const events: string[] = [];
      client.onopen = () => events.push('open');
      client.onerror = () => events.push('error');
      const endedPromise = new Promise<ClientEnd>((resolveEnd) => {
        client.onclose = (event) => {
          events.push('close');
          resolveEnd({ events, code: event.code, reason: event.reason, wasClean: event.wasClean });
        };
      });
      const timer = setTimeout(() => {
        this.pending.delete(path);
        client.close();
        reject(new Error(`the client did not complete its opening handshake within ${HANDSHAKE_TIMEOUT_MS} ms`));
      }, HANDSHAKE_TIMEOUT_MS);

      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        listener.end();
      };
      this.pending.set(path, {
        extensions: setup?.response == null ? null : formatDeflateSpec(setup.response),
        accept: (socket, rest, offered) => {
          clearTimeout(timer);
          socket.on('data', (chunk: Buffer) => listener.data(chunk));
          socket.on('end', end);
          socket.on('close', end);
          // A client sends nothing before the 101 arrives; if it did, the harness judges it.
          if (rest.length > 0) queueMicrotask(() => listener.data(Buffer.from(rest)));
          resolve({ link: new SocketLink(socket, offered), ended: endedPromise });
        },
      });
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Reads the client's request head and answers it with a 101, as a minimal server would. */
  private handshake(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    const parser = new HttpHeadParser('request');
    const onData = (chunk: Buffer): void => {
      let head;
      try {
        head = parser.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      if (head === null) return;
      socket.off('data', onData);
      // The stream stays flowing: the link's listener is added below, in this same tick.
      const pending = this.pending.get(head.target);
      const key = head.headers.get('sec-websocket-key');
      if (pending === undefined || key === undefined) {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.pending.delete(head.target);
      const rest = Buffer.from(parser.rest);
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\n' +
          'Upgrade: websocket\r\n' +
          'Connection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${computeAccept(key)}\r\n` +
          (pending.extensions === null ? '' : `Sec-WebSocket-Extensions: ${pending.extensions}\r\n`) +
          '\r\n',
        'latin1',
      );
      pending.accept(socket, rest, head.headers.get('sec-websocket-extensions') ?? null);
    };
    socket.on('data', onData);
  }
}
