// A TCP load balancer in front of several servers, as a cloud balancer or HAProxy in TCP
// mode would be in a deploy: each new connection goes to the next backend in turn, and to
// the one after when that one refuses (it is restarting). Bytes are piped as they come.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

export class TcpBalancer {
  private next = 0;
  private readonly sockets = new Set<Socket>();
  private readonly routed = new Map<number, number>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly backends: readonly number[],
  ) {}

  /** Listens on a free port of 127.0.0.1 in front of `backends` (ports of 127.0.0.1). */
  static async start(backends: readonly number[]): Promise<TcpBalancer> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('balancer: no address');
    const balancer = new TcpBalancer(server, address.port, backends);
    server.on('connection', (client) => balancer.route(client));
    return balancer;
  }

  private route(client: Socket): void {
    this.track(client);
    client.pause();
    const first = this.next++ % this.backends.length;
    const attempt = (tried: number): void => {
      if (tried === this.backends.length || client.destroyed) {
        client.destroy();
        return;
      }
      const upstream = connect(this.backends[(first + tried) % this.backends.length]!, '127.0.0.1');
      let connected = false;
      upstream.once('error', () => {
        if (!connected) attempt(tried + 1);
      });
      upstream.once('connect', () => {
        connected = true;
        const port = this.backends[(first + tried) % this.backends.length]!;
        this.routed.set(port, (this.routed.get(port) ?? 0) + 1);
        this.track(upstream);
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.once('close', () => upstream.destroy());
        upstream.once('close', () => client.destroy());
        client.resume();
      });
    };
    attempt(0);
  }

  /** How many connections went to the backend on `port` so far. */
  connectionsTo(port: number): number {
    return this.routed.get(port) ?? 0;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
