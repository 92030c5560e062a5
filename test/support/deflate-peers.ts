// Two WebSocket clients behind one small interface, for the permessage-deflate interop
// tests: the `ws` package's client and hotline's own Node client. Each queues what it
// receives so a test can send a burst and then read the replies in order.
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import WsClient, { type ClientOptions as WsClientOptions } from 'ws';
import { WebSocket as HotlineClient, type WebSocketOptions as HotlineClientOptions } from '../../src/node/client.js';

export interface Received {
  data: Buffer;
  binary: boolean;
}

export interface Peer {
  send(data: string | Buffer): void;
  /** The next message, in order. */
  next(): Promise<Received>;
  /** Sends a ping and waits for its pong. */
  pingPong(payload: string): Promise<void>;
  /** Closes with 1000 and resolves with the code the close event reports. */
  close(): Promise<number>;
}

/** A FIFO of received messages that a test reads with `next()`. */
class Inbox {
  private readonly queue: Received[] = [];
  private readonly waiters: Array<{ resolve: (m: Received) => void; reject: (e: Error) => void }> = [];
  private closedWith: string | null = null;

  put(message: Received): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(message);
    else this.queue.push(message);
  }

  /** No more messages will come: whoever waits gets an error instead of hanging. */
  end(why: string): void {
    this.closedWith = why;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`no message: ${why}`));
  }

  next(): Promise<Received> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closedWith !== null) return Promise.reject(new Error(`no message: ${this.closedWith}`));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

/** The `ws` package's client. */
export class WsPeer implements Peer {
  private readonly inbox = new Inbox();
  readonly closed: Promise<number>;
  /** Sec-WebSocket-Extensions of the 101 response, as ws received it. */
  responseExtensions: string | undefined;
  /** Payloads of the pings the server sent, in order. */
  readonly pings: Buffer[] = [];

  private constructor(readonly ws: WsClient) {
    ws.on('message', (data: Buffer, binary: boolean) => this.inbox.put({ data, binary }));
    ws.on('ping', (payload: Buffer) => this.pings.push(payload));
    this.closed = new Promise((resolve) =>
      ws.once('close', (code: number) => {
        this.inbox.end(`closed with ${code}`);
        resolve(code);
      }),
    );
  }

  static async open(url: string, options: WsClientOptions): Promise<WsPeer> {
    const ws = new WsClient(url, options);
    const peer = new WsPeer(ws);
    ws.once('upgrade', (response) => {
      const value = response.headers['sec-websocket-extensions'];
      peer.responseExtensions = Array.isArray(value) ? value.join(', ') : value;
    });
    ws.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', (code: number) => reject(new Error(`ws closed (${code}) before it opened`)));
    });
    return peer;
  }

  send(data: string | Buffer, options: { fin?: boolean; compress?: boolean } = {}): void {
    this.ws.send(data, { binary: typeof data !== 'string', fin: options.fin ?? true, compress: options.compress ?? true });
  }

  next(): Promise<Received> {
    return this.inbox.next();
  }

  async pingPong(payload: string): Promise<void> {
    const pong = once(this.ws, 'pong');
    this.ws.ping(payload);
    const [data] = (await pong) as [Buffer];
    if (data.toString() !== payload) throw new Error(`pong carried ${JSON.stringify(data.toString())}`);
  }

  async close(): Promise<number> {
    if (this.ws.readyState !== WsClient.CLOSED) this.ws.close(1000, 'done');
    return this.closed;
  }
}

/** hotline's Node client (binaryType 'nodebuffer'). */
export class HotlinePeer implements Peer {
  private readonly inbox = new Inbox();
  readonly closed: Promise<number>;

  private constructor(readonly ws: HotlineClient) {
    ws.binaryType = 'nodebuffer';
    ws.addEventListener('message', (event) => {
      const data = event.data;
      if (typeof data === 'string') this.inbox.put({ data: Buffer.from(data), binary: false });
      else this.inbox.put({ data: data as Buffer, binary: true });
    });
    this.closed = new Promise((resolve) =>
      ws.addEventListener('close', (event) => {
        this.inbox.end(`closed with ${event.code}`);
        resolve(event.code);
      }),
    );
  }

  static async open(url: string, options: HotlineClientOptions): Promise<HotlinePeer> {
    const peer = new HotlinePeer(new HotlineClient(url, [], options));
    await new Promise<void>((resolve, reject) => {
      peer.ws.addEventListener('open', () => resolve(), { once: true });
      peer.ws.addEventListener('close', (e) => reject(new Error(`the client closed (${e.code}) before it opened`)), { once: true });
    });
    return peer;
  }

  send(data: string | Buffer): void {
    this.ws.send(data);
  }

  next(): Promise<Received> {
    return this.inbox.next();
  }

  async pingPong(payload: string): Promise<void> {
    const pong = new Promise<Buffer>((resolve) => this.ws.addEventListener('pong', (e) => resolve(e.data), { once: true }));
    this.ws.ping(payload);
    const data = await pong;
    if (data.toString() !== payload) throw new Error(`pong carried ${JSON.stringify(data.toString())}`);
  }

  async close(): Promise<number> {
    if (this.ws.readyState !== HotlineClient.CLOSED) this.ws.close(1000, 'done');
    return this.closed;
  }
}
