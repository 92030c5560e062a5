import type { WebSocketConnection } from '../node/connection.js';
import type { WebSocketServer } from '../node/server.js';
import type { ApiCallLog } from './api/calls.js';
import type { NamespacesConfig } from './config/sections.js';

/** How many recent messages the inspector keeps to show. */
const INSPECT_FRAMES = 200;
const PREVIEW = 160;

/** A connection of another transport than the WebSocket (an /sse stream, an HTTP session), as the inspector lists it. */
export interface InspectedStream {
  /** The path it was opened at. */
  endpoint: string;
  /** Its client id in the hub. */
  id: string;
  address: string;
  /** When it opened (ms since the epoch). */
  since: number;
  /** Who it is (the hub's view), or undefined when anonymous. */
  user: string | undefined;
}

interface InspectedFrame {
  time: number;
  connection: number;
  endpoint: string;
  direction: 'in' | 'out';
  type: 'text' | 'binary';
  size: number;
  /** The message's start (text, or hex for binary); null unless previews were asked for. */
  preview: string | null;
}

/**
 * The live view behind /inspect: while an inspector page is connected, it keeps the last
 * messages of every endpoint and sends a snapshot each second (connections, channels,
 * message rates, new messages) over the inspector's WebSocket.
 */
export class Inspector {
  onTapChange: (on: boolean) => void = () => {};
  private readonly viewers = new Set<WebSocketConnection<unknown>>();
  private readonly ids = new WeakMap<WebSocketConnection<unknown>, { id: number; since: number }>();
  private nextId = 1;
  private frames: InspectedFrame[] = [];
  private sentUpTo = 0;
  private frameCount = 0;
  private timer: NodeJS.Timeout | null = null;
  private endpoints: Record<string, WebSocketServer<unknown>> = {};
  private hub: {
    channelStats(): Array<{ name: string; subscribers: number; messages: number }>;
    userOf(client: never): string | undefined;
  } | null = null;
  private api: ApiCallLog | null = null;
  private streams: () => Iterable<InspectedStream> = () => [];
  private namespaces: object[] = [];
  private last = { time: 0, in: 0, out: 0, channels: new Map<string, number>() };

  /** @param previews Whether frames carry the start of their contents (which may hold secrets). */
  constructor(private readonly previews: boolean) {}

  /** What it shows: the endpoints' connections, the hub's channels and users, the API's calls and the namespaces. */
  watch(
    endpoints: Record<string, WebSocketServer<unknown>>,
    hub: NonNullable<Inspector['hub']>,
    extra: { calls?: ApiCallLog; namespaces?: NamespacesConfig; streams?: () => Iterable<InspectedStream> } = {},
  ): void {
    this.endpoints = endpoints;
    this.hub = hub;
    this.api = extra.calls ?? null;
    this.streams = extra.streams ?? (() => []);
    // A namespace's schema may be long: whether it has one is what the page shows.
    this.namespaces = Object.entries(extra.namespaces ?? {}).map(([pattern, { schema, publishRate, ...rest }]) => ({
      pattern,
      ...rest,
      ...(publishRate && { publishRate: `${publishRate.perSecond}/s${publishRate.burst === undefined ? '' : ` burst ${publishRate.burst}`}` }),
      schema: schema !== undefined,
    }));
  }

  idOf(conn: WebSocketConnection<unknown>): number {
    return this.entry(conn).id;
  }

  opened(conn: WebSocketConnection<unknown>): void {
    this.entry(conn);
  }

  add(viewer: WebSocketConnection<unknown>): void {
    this.viewers.add(viewer);
    if (this.viewers.size === 1) {
      this.onTapChange(true);
      this.last = { time: Date.now(), ...this.totals(), channels: new Map() };
      this.timer = setInterval(() => this.broadcast(), 1000);
    }
    // The frames already broadcast; the next broadcast brings the newer ones to every viewer.
    const unsent = Math.min(this.frames.length, this.frameCount - this.sentUpTo);
    viewer.send(JSON.stringify(this.snapshot(this.frames.slice(0, this.frames.length - unsent))));
  }

  remove(viewer: WebSocketConnection<unknown>): void {
    this.viewers.delete(viewer);
    if (this.viewers.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.onTapChange(false);
  }

  frame(conn: WebSocketConnection<unknown>, endpoint: string, direction: 'in' | 'out', data: string | Buffer): void {
    const text = typeof data === 'string';
    this.frames.push({
      time: Date.now(),
      connection: this.idOf(conn),
      endpoint,
      direction,
      type: text ? 'text' : 'binary',
      size: text ? Buffer.byteLength(data) : data.length,
      preview: !this.previews ? null : text ? data.slice(0, PREVIEW) : data.subarray(0, PREVIEW / 2).toString('hex'),
    });
    this.frameCount++;
    if (this.frames.length > INSPECT_FRAMES) this.frames.splice(0, this.frames.length - INSPECT_FRAMES);
  }

  private entry(conn: WebSocketConnection<unknown>): { id: number; since: number } {
    let entry = this.ids.get(conn);
    if (entry === undefined) {
      entry = { id: this.nextId++, since: Date.now() };
      this.ids.set(conn, entry);
    }
    return entry;
  }

  private totals(): { in: number; out: number } {
    let messagesIn = 0;
    let messagesOut = 0;
    for (const server of Object.values(this.endpoints)) {
      messagesIn += server.counters.messagesIn;
      messagesOut += server.counters.messagesOut;
    }
    return { in: messagesIn, out: messagesOut };
  }

  private broadcast(): void {
    const fresh = this.frames.slice(Math.max(0, this.frames.length - (this.frameCount - this.sentUpTo)));
    this.sentUpTo = this.frameCount;
    const text = JSON.stringify(this.snapshot(fresh));
    for (const viewer of this.viewers) viewer.send(text);
  }

  private snapshot(frames: InspectedFrame[]): object {
    const now = Date.now();
    const seconds = Math.max(0.001, (now - this.last.time) / 1000);
    const totals = this.totals();
    const rates = { in: (totals.in - this.last.in) / seconds, out: (totals.out - this.last.out) / seconds };
    const channelCounts = new Map<string, number>();
    const channels = (this.hub?.channelStats() ?? []).slice(0, 500).map((c) => {
      channelCounts.set(c.name, c.messages);
      const before = this.last.channels.get(c.name) ?? c.messages;
      return { name: c.name, subscribers: c.subscribers, rate: (c.messages - before) / seconds };
    });
    this.last = { time: now, ...totals, channels: channelCounts };
    const connections: object[] = [];
    for (const [endpoint, server] of Object.entries(this.endpoints)) {
      for (const conn of server.connections) {
        if (connections.length >= 500) break;
        const entry = this.entry(conn);
        connections.push({
          id: entry.id,
          endpoint,
          address: conn.remoteAddress,
          protocol: conn.protocol,
          extensions: conn.extensions,
          age: now - entry.since,
          bytesIn: conn.bytesReceived,
          bytesOut: conn.bytesSent,
          user: this.userOf(conn),
          transport: 'websocket',
        });
      }
    }
    // The other transports' connections: no frames, subprotocol or byte counts of their own.
    for (const stream of this.streams()) {
      if (connections.length >= 500) break;
      connections.push({
        id: stream.id,
        endpoint: stream.endpoint,
        address: stream.address,
        protocol: 'hotline.v1',
        extensions: '',
        age: now - stream.since,
        bytesIn: null,
        bytesOut: null,
        user: stream.user ?? null,
        transport: 'sse',
      });
    }
    const api = this.api?.latest() ?? { calls: [], total: 0 };
    return { type: 'snapshot', time: now, previews: this.previews, connections, channels, rates, frames, api, namespaces: this.namespaces };
  }

  /** The user of a /ws connection (null when anonymous, or not a channel connection). */
  private userOf(conn: WebSocketConnection<unknown>): string | null {
    const client = (conn.data as { client?: unknown } | undefined)?.client;
    if (client === undefined || client === null || this.hub === null) return null;
    return this.hub.userOf(client as never) ?? null;
  }
}
