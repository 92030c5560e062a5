import {
  DEFAULT_HISTORY_LIMIT,
  SUBPROTOCOL,
  parseServerMessage,
  type HistoryOk,
  type InferOutput,
  type Json,
  type Member,
  type ServerMessage,
  type StandardSchemaV1,
} from '../wire/index.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { Channel, type ChannelHost, type HistoryOptions, type HistoryPage, type SubscribedEvent } from './channel.js';
import { Emitter } from './emitter.js';
import { HotlineError } from './errors.js';

/** The part of the WebSocket interface the client uses: the browser's, or hotline's for Node. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown>;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string }>;
  onerror: Handler<unknown>;
}

/**
 * An event handler property, compared bivariantly (as methods are), so that WebSocket
 * classes whose handlers take their own Event types fit: the browser's and hotline's.
 */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'] | null;

export type WebSocketConstructorLike = new (url: string, protocols: string | string[]) => WebSocketLike;

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ClientOptions {
  /** The WebSocket class: by default the platform's (browsers); in Node pass `WebSocket` from 'hotline'. */
  WebSocket?: WebSocketConstructorLike;
  /** Reconnection: full-jitter exponential backoff (defaults: 1 s, ×2, at most 30 s, unlimited). */
  reconnect?: BackoffOptions;
  /** Give up on a connection attempt that has not opened after this long (ms, default 10000). */
  connectTimeout?: number;
  /** Ping when nothing arrived for this long (ms, default 20000; 0 disables heartbeats). */
  pingInterval?: number;
  /** Declare the connection dead when nothing answers a ping for this long (ms, default 10000). */
  pingTimeout?: number;
  /** Time for the server to answer a request once sent (ms, default 10000). */
  requestTimeout?: number;
  /** Requests made while disconnected wait in a queue: at most this many (default 100)… */
  queueSize?: number;
  /** …for at most this long (ms, default 30000). */
  queueTimeout?: number;
  /**
   * Credentials sent over the connection (an `auth` request) before anything else, on every
   * (re)connect: a token, or a function that gets a fresh one. When the server says when
   * they expire, the client re-authenticates ahead of it without dropping subscriptions.
   * A token the server refuses closes the client.
   */
  token?: string | (() => string | Promise<string>);
  /**
   * Close codes after which reconnecting is pointless (default: 1002, 1003, 1007, 1008 and
   * 4401/4403, which a server can use for authentication failures).
   */
  finalCloseCodes?: readonly number[];
}

export type ClientEvents = {
  state: [state: ClientState];
  /** A connection closed; `willRetry` says whether the client reconnects. */
  close: [event: { code: number; reason: string; willRetry: boolean }];
};

const DEFAULT_FINAL_CODES = [1002, 1003, 1007, 1008, 4401, 4403];
/** Message too big: the server refused something sent (or a client refused something received). */
const MESSAGE_TOO_BIG = 1009;
/**
 * Drops a retried request may be in flight for before it fails instead: a request whose
 * answer is too big for this client fails the connection every time it is answered (the
 * WebSocket reports 1006 then, not 1009), and must not be asked again forever.
 */
const MAX_DROPS_IN_FLIGHT = 3;
/** Pages of one history() read restarted because the channel's epoch changed under them. */
const HISTORY_RESTARTS = 3;
const OPEN = 1;

interface Pending {
  id: number;
  text: string;
  /** Safe to send again after a drop (idempotent: pub with its key, history, presence). */
  retry: boolean;
  sent: boolean;
  /** Connections that dropped while it was in flight. */
  drops: number;
  queuedAt: number;
  timer: ReturnType<typeof setTimeout> | null;
  timeout: number;
  resolve(reply: ServerMessage): void;
  reject(error: HotlineError): void;
}

type WebCrypto = { randomUUID?: () => string; getRandomValues?: (array: Uint8Array) => Uint8Array };

function randomKey(): string {
  const crypto = (globalThis as { crypto?: WebCrypto }).crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

/**
 * This client's `sender` id: the server scopes idempotency keys to it (when the connection
 * has no authenticated user), so it must not be guessable. randomUUID needs a secure
 * context; getRandomValues does not.
 */
function unguessableId(): string {
  const crypto = (globalThis as { crypto?: WebCrypto }).crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  if (crypto?.getRandomValues) return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  return randomKey();
}

/**
 * A hotline.v1 client that stays connected: it reconnects with backoff, resubscribes every
 * channel from its last offset, retries unanswered publishes with their idempotency keys,
 * and queues requests made while disconnected. Create it with {@link connect}.
 */
export class HotlineClient extends Emitter<ClientEvents> implements ChannelHost {
  readonly url: string;
  private readonly options: ClientOptions;
  private readonly WebSocketClass: WebSocketConstructorLike;
  private readonly channels = new Map<string, Channel<never>>();
  private readonly pending = new Map<number, Pending>();
  /** Sent with every publish, the same across reconnects, so that a retry's key is recognised. */
  private readonly sender = unguessableId();
  /** Requests not yet sent, in order. */
  private queue: Pending[] = [];
  private readonly subscribing = new Map<string, Array<{ resolve(e: SubscribedEvent): void; reject(e: Error): void }>>();
  private socket: WebSocketLike | null = null;
  private currentState: ClientState = 'connecting';
  private nextId = 1;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private lastReceived = 0;
  private pingSentAt = 0;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly onOnline = (): void => {
    // Back online: no reason to sit out the backoff.
    if (this.currentState === 'reconnecting' && this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.open();
    }
  };

  constructor(url: string, options: ClientOptions = {}) {
    super();
    this.url = url;
    this.options = options;
    const platform = (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
    const WebSocketClass = options.WebSocket ?? platform;
    if (WebSocketClass === undefined) {
      throw new TypeError("no WebSocket class: in Node, pass { WebSocket } from 'hotline'");
    }
    this.WebSocketClass = WebSocketClass;
    const target = globalThis as { addEventListener?: (type: string, listener: () => void) => void };
    target.addEventListener?.('online', this.onOnline);
    this.open();
  }

  get state(): ClientState {
    return this.currentState;
  }

  /** The channel `name` (one object per name); typed by `T` or by a Standard Schema. */
  channel<S extends StandardSchemaV1>(name: string, options: { schema: S }): Channel<InferOutput<S>>;
  channel<T = Json>(name: string): Channel<T>;
  channel(name: string): Channel<unknown> {
    let channel = this.channels.get(name);
    if (channel === undefined) {
      channel = new Channel<never>(name, this);
      this.channels.set(name, channel);
    }
    return channel as Channel<unknown>;
  }

  /** Calls a server rpc method. Not retried after a drop (it may have run): fails with 'disconnected'. */
  rpc<R = Json>(method: string, params?: Json, options: { timeout?: number } = {}): Promise<R> {
    const fields: Record<string, Json> = { method };
    if (params !== undefined) fields.params = params;
    return this.request('rpc', fields, false, options.timeout).then((reply) => (reply as unknown as { result: R }).result);
  }

  /** Closes for good: no reconnection; queued and pending requests fail with 'closed'. */
  close(): void {
    if (this.currentState === 'closed') return;
    this.shutdown(new HotlineError('closed', 'the client was closed'));
    const socket = this.socket;
    this.detach();
    socket?.close(1000, '');
  }

  // ───────────────────────── ChannelHost ─────────────────────────

  subscribeChannel(channel: Channel<never>): Promise<SubscribedEvent> {
    if (this.currentState === 'closed') return Promise.reject(new HotlineError('closed', 'the client was closed'));
    return new Promise((resolve, reject) => {
      const waiting = this.subscribing.get(channel.name) ?? [];
      waiting.push({ resolve, reject });
      this.subscribing.set(channel.name, waiting);
      if (channel.wanted) {
        // Already subscribed (or on its way): answer with where it stands.
        if (channel.position !== null && waiting.length === 1 && this.currentState === 'open') {
          this.subscribing.delete(channel.name);
          resolve({ ...channel.position, recovered: true, first: false });
        }
        return;
      }
      channel.wanted = true;
      if (this.currentState === 'open') this.sendSub(channel, true);
    });
  }

  unsubscribeChannel(channel: Channel<never>): void {
    if (!channel.wanted) return;
    channel.wanted = false;
    channel.position = null;
    const waiting = this.subscribing.get(channel.name) ?? [];
    this.subscribing.delete(channel.name);
    for (const w of waiting) w.reject(new HotlineError('cancelled', 'unsubscribed before the server answered'));
    if (this.currentState === 'open') this.sendRaw({ op: 'unsub', id: this.nextId++, ch: channel.name });
  }

  publishTo(name: string, data: Json, key: string | undefined): Promise<{ offset: number; delivered: number }> {
    return this.request('pub', { ch: name, data, key: key ?? randomKey(), sender: this.sender }, true).then((reply) => {
      const ok = reply as { offset: number; delivered: number };
      return { offset: ok.offset, delivered: ok.delivered };
    });
  }

  /**
   * Follows history pages (each bounded in bytes by the server) back from `before` until
   * `limit` messages are in or none older are kept. The limit is always sent, the server's
   * default when not given, so that pages after the first know where to stop.
   */
  async historyOf(name: string, options: HistoryOptions): Promise<HistoryPage<Json>> {
    const limit = options.limit ?? DEFAULT_HISTORY_LIMIT;
    for (let restarts = 0; ; restarts++) {
      const read = await this.historyPages(name, limit, options.before);
      if (read !== null) return read;
      // The channel's history was lost between two pages (a new epoch): offsets restarted.
      if (restarts === HISTORY_RESTARTS) throw new HotlineError('internal', `the history of ${name} kept changing epoch while it was read`);
    }
  }

  /** One read of history pages, or null when the epoch changed between pages. */
  private async historyPages(name: string, limit: number, before: number | undefined): Promise<HistoryPage<Json> | null> {
    let messages: HistoryOk['messages'] = [];
    let epoch: string | undefined;
    for (;;) {
      const fields: Record<string, Json> = { ch: name, limit: limit - messages.length };
      if (before !== undefined) fields.before = before;
      const page = (await this.request('history', fields, true)) as HistoryOk;
      if (epoch !== undefined && page.epoch !== epoch) return null;
      epoch = page.epoch;
      messages = page.messages.concat(messages);
      const more = page.more === true;
      if (!more || messages.length >= limit || page.messages.length === 0) return { epoch, messages, more };
      before = page.messages[0]!.offset;
    }
  }

  presenceOf(name: string): Promise<Member[]> {
    return this.request('presence', { ch: name }, true).then((reply) => (reply as { members: Member[] }).members);
  }

  /**
   * A channel saw a gap in its offsets (a message lost on the way): leave and subscribe
   * again from its position. The server handles a connection's requests in order, so
   * nothing of the old subscription follows the new one's answer, and the replay fills
   * the gap (or the answer says recovered:false). Not open: the reconnect resubscribes.
   */
  resync(channel: Channel<never>): void {
    if (!channel.wanted || this.currentState !== 'open' || this.socket?.readyState !== OPEN) return;
    this.sendRaw({ op: 'unsub', id: this.nextId++, ch: channel.name });
    this.sendSub(channel, false);
  }

  // ───────────────────────── connection ─────────────────────────

  private setState(state: ClientState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit('state', state);
  }

  private open(): void {
    this.retryTimer = null;
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketClass(this.url, SUBPROTOCOL);
    } catch (error) {
      // An invalid URL will never work.
      this.shutdown(new HotlineError('closed', `cannot connect: ${error instanceof Error ? error.message : String(error)}`));
      throw error;
    }
    this.socket = socket;
    socket.onopen = () => this.onOpen(socket);
    socket.onmessage = (event) => this.onMessage(socket, event.data);
    socket.onclose = (event) => this.onClose(socket, event.code, event.reason);
    socket.onerror = () => {};
    const timeout = this.options.connectTimeout ?? 10_000;
    this.connectTimer = setTimeout(() => {
      // A server that accepted TCP but never answers the handshake.
      if (this.socket === socket && socket.readyState !== OPEN) this.drop(socket, 4000, 'connect timeout');
    }, timeout);
  }

  private onOpen(socket: WebSocketLike): void {
    if (this.socket !== socket) return;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.attempt = 0;
    this.lastReceived = Date.now();
    if (this.options.token === undefined) {
      this.ready(socket);
      return;
    }
    this.tokenNow().then(
      (token) => {
        if (this.socket !== socket) return;
        // Sent first: the server handles a connection's requests in order, so everything
        // after it is authenticated without waiting for the answer.
        this.sendAuth(token);
        this.ready(socket);
      },
      () => this.drop(socket, 4000, 'could not get a token'),
    );
  }

  private tokenNow(): Promise<string> {
    const token = this.options.token!;
    return Promise.resolve(typeof token === 'string' ? token : token());
  }

  private sendAuth(token: string): void {
    const id = this.nextId++;
    this.transmit({
      id,
      text: JSON.stringify({ op: 'auth', id, token }),
      retry: false,
      sent: false,
      drops: 0,
      queuedAt: Date.now(),
      timer: null,
      timeout: this.options.requestTimeout ?? 10_000,
      resolve: (reply) => this.scheduleRefresh((reply as { expiresAt?: number }).expiresAt),
      reject: (error) => {
        if (error.code === 'unauthorized' || error.code === 'forbidden' || error.code === 'bad_request') {
          const socket = this.socket;
          this.shutdown(new HotlineError(error.code, `authentication failed: ${error.message}`));
          this.detach();
          socket?.close(1000, '');
        }
      },
    });
  }

  private scheduleRefresh(expiresAt: number | undefined): void {
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    if (expiresAt === undefined || typeof this.options.token !== 'function') return;
    const left = expiresAt - Date.now();
    // Refresh with a quarter of the lifetime (at most a minute) to spare.
    this.refreshTimer = setTimeout(() => {
      const socket = this.socket;
      this.tokenNow().then(
        (token) => {
          if (this.socket === socket && this.currentState === 'open') this.sendAuth(token);
        },
        () => {},
      );
    }, Math.max(0, left - Math.min(60_000, left / 4)));
  }

  private ready(socket: WebSocketLike): void {
    if (this.socket !== socket) return;
    this.setState('open');
    // A 'state' listener may have closed the client.
    if (this.socket !== socket) return;
    // Subscriptions first, so that publishes retried below are seen by them.
    for (const channel of this.channels.values()) {
      if (channel.wanted) this.sendSub(channel, channel.position === null);
    }
    const queued = this.queue;
    this.queue = [];
    for (const request of queued) this.transmit(request);
    this.startHeartbeat(socket);
  }

  private onMessage(socket: WebSocketLike, data: unknown): void {
    if (this.socket !== socket || typeof data !== 'string') return;
    this.lastReceived = Date.now();
    this.pingSentAt = 0;
    const message = parseServerMessage(data);
    if (message === null) return;
    switch (message.op) {
      case 'msg':
        this.channels.get(message.ch)?.receive(message.offset, message.data);
        return;
      case 'join':
      case 'leave':
        this.channels.get(message.ch)?.presenceEvent(message.op, message.member);
        return;
      case 'unsub':
        this.endedByServer(message.ch, new HotlineError(message.code, message.message));
        return;
      case 'ok':
      case 'pong':
      case 'err': {
        if (message.id === undefined) return;
        const request = this.pending.get(message.id);
        if (request === undefined) return;
        this.pending.delete(message.id);
        if (request.timer !== null) clearTimeout(request.timer);
        if (message.op === 'err') request.reject(new HotlineError(message.code, message.message));
        else request.resolve(message);
        return;
      }
    }
  }

  /** The server ended a subscription (the identity changed, or credentials expired): it is not resumed. */
  private endedByServer(name: string, error: HotlineError): void {
    const channel = this.channels.get(name);
    if (channel === undefined || !channel.wanted) return;
    channel.wanted = false;
    channel.position = null;
    const waiting = this.subscribing.get(name) ?? [];
    this.subscribing.delete(name);
    for (const w of waiting) w.reject(error);
    channel.failed(error);
  }

  private onClose(socket: WebSocketLike, code: number, reason: string): void {
    if (this.socket !== socket) return;
    this.disconnected(code, reason);
  }

  /** Gives up on a socket that looks dead and carries on as if it had closed. */
  private drop(socket: WebSocketLike, code: number, reason: string): void {
    this.detach();
    try {
      socket.close();
    } catch {
      // closing a socket that never opened may throw on some platforms
    }
    this.disconnected(code, reason);
  }

  private detach(): void {
    const socket = this.socket;
    if (socket !== null) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
    }
    this.socket = null;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }

  private disconnected(code: number, reason: string): void {
    this.detach();
    if (this.currentState === 'closed') return;
    // Requests in flight: idempotent ones go again after the reconnect, in their order, before
    // anything queued since; an rpc may have run, so it fails.
    const again: Pending[] = [];
    for (const request of [...this.pending.values()].sort((a, b) => a.id - b.id)) {
      if (!request.sent) continue;
      this.pending.delete(request.id);
      if (request.timer !== null) clearTimeout(request.timer);
      const refusal = this.notRetried(request, code);
      if (refusal === null) {
        request.sent = false;
        again.push(request);
        this.armQueueTimer(request);
      } else {
        request.reject(refusal);
      }
    }
    this.queue = [...again, ...this.queue];
    const finalCodes = this.options.finalCloseCodes ?? DEFAULT_FINAL_CODES;
    const retries = this.options.reconnect?.retries ?? Infinity;
    const willRetry = !finalCodes.includes(code) && this.attempt < retries;
    this.emit('close', { code, reason, willRetry });
    // A listener may have closed the client (the compiler cannot know emit() may do that).
    if ((this.currentState as ClientState) === 'closed') return;
    if (!willRetry) {
      this.shutdown(new HotlineError('closed', `the server closed the connection (${code}${reason ? ` ${reason}` : ''})`));
      return;
    }
    this.setState('reconnecting');
    if ((this.currentState as ClientState) !== 'reconnecting') return;
    const delay = backoffDelay(this.attempt++, this.options.reconnect);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Why a request in flight when the connection closed with `code` is not sent again, or null to retry it. */
  private notRetried(request: Pending, code: number): HotlineError | null {
    if (code === MESSAGE_TOO_BIG) {
      // Sending the same bytes again brings the same 1009.
      return new HotlineError('too_large', 'the connection closed with 1009 (message too big) while this request was in flight; it is not sent again');
    }
    if (!request.retry) return new HotlineError('disconnected', 'the connection dropped before the answer');
    if (++request.drops < MAX_DROPS_IN_FLIGHT) return null;
    return new HotlineError('disconnected', `the connection dropped ${request.drops} times while this request was in flight; it is not sent again`);
  }

  private shutdown(error: HotlineError): void {
    this.setState('closed');
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const target = globalThis as { removeEventListener?: (type: string, listener: () => void) => void };
    target.removeEventListener?.('online', this.onOnline);
    for (const request of [...this.pending.values(), ...this.queue]) {
      if (request.timer !== null) clearTimeout(request.timer);
      request.reject(error);
    }
    this.pending.clear();
    this.queue = [];
    for (const [, waiting] of this.subscribing) for (const w of waiting) w.reject(error);
    this.subscribing.clear();
  }

  private startHeartbeat(socket: WebSocketLike): void {
    const interval = this.options.pingInterval ?? 20_000;
    if (interval <= 0) return;
    const timeout = this.options.pingTimeout ?? 10_000;
    const tick = Math.max(50, Math.min(interval, timeout) / 2);
    this.heartbeat = setInterval(() => {
      if (this.socket !== socket) return;
      const now = Date.now();
      if (this.pingSentAt !== 0) {
        // A dead connection the OS has not noticed: nothing arrived since the ping.
        if (now - this.pingSentAt >= timeout) this.drop(socket, 4000, 'heartbeat timeout');
      } else if (now - this.lastReceived >= interval) {
        this.pingSentAt = now;
        this.sendRaw({ op: 'ping', id: this.nextId++ });
      }
    }, tick);
  }

  // ───────────────────────── requests ─────────────────────────

  private sendRaw(message: Record<string, Json>): void {
    const socket = this.socket;
    if (socket !== null && socket.readyState === OPEN) socket.send(JSON.stringify(message));
  }

  private sendSub(channel: Channel<never>, first: boolean): void {
    const since = channel.position;
    const fields: Record<string, Json> = { ch: channel.name };
    if (since !== null) fields.since = { epoch: since.epoch, offset: since.offset };
    const id = this.nextId++;
    const settle = (outcome: { event?: SubscribedEvent; error?: Error }): void => {
      const waiting = this.subscribing.get(channel.name) ?? [];
      this.subscribing.delete(channel.name);
      for (const w of waiting) {
        if (outcome.event !== undefined) w.resolve(outcome.event);
        else w.reject(outcome.error!);
      }
    };
    const request: Pending = {
      id,
      text: JSON.stringify({ op: 'sub', id, ...fields }),
      retry: false,
      sent: false,
      drops: 0,
      queuedAt: Date.now(),
      timer: null,
      timeout: this.options.requestTimeout ?? 10_000,
      resolve: (reply) => {
        const ok = reply as { epoch: string; offset: number; recovered: boolean };
        if (!channel.wanted) return;
        const event: SubscribedEvent = { epoch: ok.epoch, offset: ok.offset, recovered: ok.recovered, first };
        channel.subscribed(event);
        settle({ event });
      },
      reject: (error) => {
        // Dropped connections resubscribe on the next open; anything else ends the subscription.
        if (error.code === 'timeout') {
          // The server may still answer, so the subscription's state is unknown: start over
          // on a fresh connection, which resubscribes.
          const socket = this.socket;
          if (socket !== null && channel.wanted) this.drop(socket, 4000, 'subscription timeout');
          return;
        }
        if (error.code === 'disconnected' || error.code === 'closed') {
          if (error.code === 'closed') settle({ error });
          return;
        }
        channel.wanted = false;
        channel.position = null;
        channel.failed(error);
        settle({ error });
      },
    };
    this.transmit(request);
  }

  private request(op: string, fields: Record<string, Json>, retry: boolean, timeout?: number): Promise<ServerMessage> {
    if (this.currentState === 'closed') return Promise.reject(new HotlineError('closed', 'the client was closed'));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const request: Pending = {
        id,
        text: JSON.stringify({ op, id, ...fields }),
        retry,
        sent: false,
        drops: 0,
        queuedAt: Date.now(),
        timer: null,
        timeout: timeout ?? this.options.requestTimeout ?? 10_000,
        resolve,
        reject,
      };
      if (this.currentState === 'open' && this.socket?.readyState === OPEN) {
        this.transmit(request);
        return;
      }
      if (this.queue.length >= (this.options.queueSize ?? 100)) {
        reject(new HotlineError('queue_full', 'too many requests are waiting for the connection'));
        return;
      }
      this.queue.push(request);
      this.armQueueTimer(request);
    });
  }

  private armQueueTimer(request: Pending): void {
    const left = (this.options.queueTimeout ?? 30_000) - (Date.now() - request.queuedAt);
    request.timer = setTimeout(() => {
      const index = this.queue.indexOf(request);
      if (index !== -1) this.queue.splice(index, 1);
      request.reject(new HotlineError('queue_timeout', 'the connection did not come back in time'));
    }, Math.max(0, left));
  }

  private transmit(request: Pending): void {
    if (request.timer !== null) clearTimeout(request.timer);
    request.sent = true;
    this.pending.set(request.id, request);
    request.timer = setTimeout(() => {
      if (this.pending.get(request.id) !== request) return;
      this.pending.delete(request.id);
      request.reject(new HotlineError('timeout', `no answer within ${request.timeout} ms`));
    }, request.timeout);
    this.socket!.send(request.text);
  }
}

/** Connects to a hotline.v1 endpoint (such as ws://host/ws) and stays connected. */
export function connect(url: string, options: ClientOptions = {}): HotlineClient {
  return new HotlineClient(url, options);
}
