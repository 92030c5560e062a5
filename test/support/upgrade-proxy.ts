// A reverse proxy in front of a server for the fallback tests, as a corporate proxy that breaks
// WebSockets: plain HTTP requests (streamed both ways, so SSE flows) are forwarded; an
// `Upgrade` goes on as a plain GET without its Upgrade headers (the server answers 426) until
// `allowUpgrades` is set, then it is tunnelled. `cutStreams()`
// drops every response in progress (a stream cut without a word, as a proxy timeout does).
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';

export class UpgradeProxy {
  /** Whether upgrades get through (forwarded without their Upgrade headers while false). */
  allowUpgrades = false;
  /** Upgrades refused so far. */
  refusedUpgrades = 0;
  /** While set, POSTs are read whole and held here (as a buffering proxy holds a request body) until {@link releasePosts}. */
  holdPosts = false;
  /** The server's answers to the POSTs released, in order. */
  readonly releasedAnswers: number[] = [];
  private held: Array<{ req: IncomingMessage; res: ServerResponse; body: Buffer }> = [];
  private readonly responses = new Set<ServerResponse>();
  private readonly tunnels = new Set<Socket | Duplex>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: number,
  ) {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.forward(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
  }

  static async start(target: number): Promise<UpgradeProxy> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
    return new UpgradeProxy(server, address.port, target);
  }

  /**
   * Drops every response still being written (streams and all). An answer written whole is
   * done, though its 'close' may come a little later than the client had it, so a client
   * that awaited a request just before sees only its stream cut.
   */
  cutStreams(): number {
    let cut = 0;
    for (const res of this.responses) {
      if (res.writableEnded) continue;
      res.destroy();
      cut++;
    }
    return cut;
  }

  async close(): Promise<void> {
    for (const res of this.responses) res.destroy();
    for (const socket of this.tunnels) socket.destroy();
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  /**
   * Responses still being written: a session's stream, and the answer to a POST until the
   * proxy has written it whole (a request's reply comes over the stream, so the client may
   * have it before its POST's answer is done here).
   */
  get responsesInProgress(): number {
    let count = 0;
    for (const res of this.responses) if (!res.writableEnded) count++;
    return count;
  }

  /** POSTs held now (read whole). */
  get heldPosts(): number {
    return this.held.length;
  }

  /**
   * Sends the held POSTs on to the server, each whole, whether or not its client still waits
   * (a buffering proxy forwards what it read); an answer nobody waits for is dropped.
   */
  releasePosts(): void {
    const held = this.held;
    this.held = [];
    for (const { req, res, body } of held) this.send(req, res, body);
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    if (this.holdPosts && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.once('end', () => this.held.push({ req, res, body: Buffer.concat(chunks) }));
      return;
    }
    this.send(req, res, null);
  }

  /** Forwards one request: its body streamed, or `body` when it was read already. */
  private send(req: IncomingMessage, res: ServerResponse, body: Buffer | null): void {
    this.responses.add(res);
    res.once('close', () => this.responses.delete(res));
    const upstream = request({ host: '127.0.0.1', port: this.target, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (body !== null) this.releasedAnswers.push(answer.statusCode ?? 0);
      if (res.destroyed) return void answer.resume();
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      res.flushHeaders();
      answer.pipe(res);
      res.once('close', () => answer.destroy());
    });
    upstream.once('error', () => res.destroy());
    if (body !== null) {
      // Held: it goes on even if its client left meanwhile.
      upstream.end(body);
      return;
    }
    res.once('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  /**
   * What a proxy that does not know WebSockets does: it drops the hop-by-hop `Connection` and
   * `Upgrade` headers and forwards a plain GET, whose answer (hotline's 426 on a WebSocket
   * path) goes back to the client, which never gets its 101.
   */
  private asPlainRequest(req: IncomingMessage, socket: Duplex): void {
    const headers = { ...req.headers };
    delete headers.connection;
    delete headers.upgrade;
    socket.on('error', () => {});
    const upstream = request({ host: '127.0.0.1', port: this.target, method: req.method, path: req.url, headers }, (answer) => {
      const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
      for (let i = 0; i < answer.rawHeaders.length; i += 2) {
        const name = answer.rawHeaders[i]!.toLowerCase();
        if (name !== 'connection' && name !== 'upgrade' && name !== 'transfer-encoding') lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
      }
      const body: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => body.push(chunk));
      answer.once('end', () => {
        const bytes = Buffer.concat(body);
        socket.end(`${lines.filter((line) => !line.toLowerCase().startsWith('content-length:')).join('\r\n')}\r\ncontent-length: ${bytes.length}\r\nconnection: close\r\n\r\n${bytes.toString('latin1')}`, 'latin1');
      });
    });
    upstream.once('error', () => socket.destroy());
    upstream.end();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.allowUpgrades) {
      this.refusedUpgrades++;
      this.asPlainRequest(req, socket);
      return;
    }
    const upstream = connect(this.target, '127.0.0.1', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    this.tunnels.add(socket);
    this.tunnels.add(upstream);
    const drop = (): void => {
      socket.destroy();
      upstream.destroy();
      this.tunnels.delete(socket);
      this.tunnels.delete(upstream);
    };
    upstream.once('error', drop).once('close', drop);
    socket.once('error', drop).once('close', drop);
  }
}
