// A TCP proxy between a WebSocket client and server that records what crossed the wire in
// both directions: the opening handshake as text, then every frame header (RSV bits,
// opcode, length) and the payloads of frames up to 64 KiB. A frame is recorded before it
// is forwarded, so once a peer has received something, the proxy has seen it.
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FrameParser, isControl, messagesOf, type WireFrame, type WireMessage } from './deflate-wire.js';

/** What one direction of a proxied connection carried. */
export class WireDirection {
  /** The HTTP head (request or response), without the blank line. */
  head = '';
  readonly frames: WireFrame[] = [];
  private headBytes: Buffer | null = Buffer.alloc(0);
  private readonly parser = new FrameParser((frame) => this.frames.push(frame));

  /** Data messages, in order. */
  get messages(): WireMessage[] {
    return messagesOf(this.frames);
  }

  /** Control frames (close, ping, pong), in order. */
  get controls(): WireFrame[] {
    return this.frames.filter(isControl);
  }

  /** A header field of the head (names compared case-insensitively), or undefined. */
  header(name: string): string | undefined {
    const wanted = name.toLowerCase();
    const values = this.head
      .split('\r\n')
      .slice(1)
      .filter((line) => line.slice(0, line.indexOf(':')).trim().toLowerCase() === wanted)
      .map((line) => line.slice(line.indexOf(':') + 1).trim());
    return values.length === 0 ? undefined : values.join(', ');
  }

  /** Feeds bytes in the order they crossed; frames are parsed once the head is complete. */
  record(chunk: Buffer): void {
    if (this.headBytes !== null) {
      const all = Buffer.concat([this.headBytes, chunk]);
      const end = all.indexOf('\r\n\r\n');
      if (end === -1) {
        this.headBytes = all;
        return;
      }
      this.head = all.subarray(0, end).toString('latin1');
      this.headBytes = null;
      chunk = all.subarray(end + 4);
    }
    if (chunk.length > 0) this.parser.push(chunk);
  }
}

export interface ProxiedConnection {
  /** Client to server: the upgrade request, then the client's (masked) frames. */
  readonly toServer: WireDirection;
  /** Server to client: the response, then the server's frames. */
  readonly toClient: WireDirection;
  /** Resolves once both sockets are closed. */
  readonly closed: Promise<void>;
}

export class RecordingProxy {
  readonly connections: ProxiedConnection[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly waiting: Array<(connection: ProxiedConnection) => void> = [];
  /** How many connections nextConnection() has handed out. */
  private taken = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on an ephemeral port of 127.0.0.1 and forwards to 127.0.0.1:`targetPort`. */
  static async start(targetPort: number): Promise<RecordingProxy> {
    const server = createServer({ noDelay: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
    const proxy = new RecordingProxy(server, address.port);
    server.on('connection', (client) => proxy.accept(client, targetPort));
    return proxy;
  }

  /** The next connection the proxy accepts (or the one just accepted, if none was taken yet). */
  nextConnection(): Promise<ProxiedConnection> {
    const taken = this.taken;
    if (taken < this.connections.length) {
      this.taken++;
      return Promise.resolve(this.connections[taken]!);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, targetPort: number): void {
    const upstream = connect(targetPort, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const toServer = new WireDirection();
    const toClient = new WireDirection();
    const closedOne = (socket: Socket): Promise<void> =>
      new Promise((resolve) =>
        socket.once('close', () => {
          this.sockets.delete(socket);
          resolve();
        }),
      );
    const closed = Promise.all([closedOne(client), closedOne(upstream)]).then(() => undefined);
    const pipe = (from: Socket, to: Socket, direction: WireDirection): void => {
      from.on('data', (chunk: Buffer) => {
        direction.record(chunk);
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      // Half-closes pass through, so each side sees the other's FIN as it was sent.
      from.on('end', () => to.end());
      from.on('error', () => to.destroy());
      from.on('close', () => {
        if (!to.writableEnded) to.destroy();
      });
    };
    pipe(client, upstream, toServer);
    pipe(upstream, client, toClient);
    const connection: ProxiedConnection = { toServer, toClient, closed };
    this.connections.push(connection);
    const waiter = this.waiting.shift();
    if (waiter !== undefined) {
      this.taken++;
      waiter(connection);
    }
  }
}
