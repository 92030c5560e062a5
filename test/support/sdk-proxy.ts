// A TCP proxy for the SDK's fault tests, between a client and a hotline server: it can cut
// every connection without a WebSocket close frame (a TCP reset towards the client, as a
// dead NAT entry or a crashed load balancer would), stop forwarding on the connections it
// holds (a network that silently drops everything), turn new connections away, or accept
// them and never answer (a server that is up but hung), or hold what the server sends (a
// client that stops reading: TCP backpressure reaches the server, nothing is lost).
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * What the proxy does with a new connection:
 * - `forward`: connects to the target and copies bytes both ways;
 * - `reset`: accepts and resets it at once (the client sees the connection fail);
 * - `tarpit`: accepts, reads and discards what comes, never answers.
 */
export type ProxyMode = 'forward' | 'reset' | 'tarpit';

interface Pair {
  client: Socket;
  upstream: Socket | null;
  /** Bytes in that direction are dropped instead of forwarded. */
  dropToServer: boolean;
  dropToClient: boolean;
}

export class CutProxy {
  /** Connections accepted so far, in every mode. */
  accepted = 0;
  /** Bytes forwarded to the server, and bytes a freeze dropped on their way there. */
  readonly toServer = { forwarded: 0, dropped: 0 };
  mode: ProxyMode;
  /** The port `forward` connects to. */
  target: number;
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    target: number,
    mode: ProxyMode,
  ) {
    this.target = target;
    this.mode = mode;
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listens on an ephemeral port of 127.0.0.1. */
  static async start(target: number, mode: ProxyMode = 'forward'): Promise<CutProxy> {
    const server = createServer({ noDelay: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
    return new CutProxy(server, address.port, target, mode);
  }

  /** Client connections open now. */
  get open(): number {
    return this.pairs.size;
  }

  /**
   * Resets every connection the proxy holds: the client gets a TCP reset and no close
   * frame, the server sees its side end. Returns how many were cut.
   */
  cut(): number {
    const count = this.pairs.size;
    for (const pair of [...this.pairs]) this.destroy(pair, true);
    return count;
  }

  /**
   * From now on, bytes on the connections open now are dropped in `direction` instead of
   * forwarded; the sockets stay open. New connections are not affected.
   */
  freeze(direction: 'toServer' | 'toClient' | 'both'): void {
    for (const pair of this.pairs) {
      if (direction !== 'toClient') pair.dropToServer = true;
      if (direction !== 'toServer') pair.dropToClient = true;
    }
  }

  /**
   * Stops reading what the server sends on the connections open now, as a client that
   * stops reading would: the server's writes back up (TCP backpressure); nothing is lost.
   */
  hold(): void {
    for (const pair of this.pairs) pair.upstream?.pause();
  }

  /** Reads and forwards again what {@link hold} held back. */
  release(): void {
    for (const pair of this.pairs) pair.upstream?.resume();
  }

  async close(): Promise<void> {
    this.cut();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await closed;
  }

  private accept(client: Socket): void {
    this.accepted++;
    client.on('error', () => {});
    if (this.mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = { client, upstream: null, dropToServer: false, dropToClient: false };
    this.pairs.add(pair);
    client.on('close', () => this.destroy(pair, false));
    if (this.mode === 'tarpit') {
      client.on('data', () => {});
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: this.target, noDelay: true });
    pair.upstream = upstream;
    upstream.on('error', () => {});
    // The server went away (or was never there): the client sees its connection end too.
    upstream.on('close', () => this.destroy(pair, false));
    client.on('data', (chunk: Buffer) => {
      if (pair.dropToServer) {
        this.toServer.dropped += chunk.length;
        return;
      }
      this.toServer.forwarded += chunk.length;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.dropToClient) client.write(chunk);
    });
  }

  private destroy(pair: Pair, reset: boolean): void {
    if (!this.pairs.delete(pair)) return;
    if (reset && !pair.client.destroyed) pair.client.resetAndDestroy();
    else pair.client.destroy();
    pair.upstream?.destroy();
  }
}
