import { ChannelHub, type ChannelClient, type ChannelHubOptions, type ChannelIdentity, type ChannelsApi } from '../channels/index.js';
import type { WebSocketConnection } from '../node/connection.js';
import {
  WebSocketServer,
  type UpgradeDecision,
  type UpgradeRejection,
  type UpgradeRequest,
  type WebSocketServerOptions,
} from '../node/server.js';
import { isPromiseLike } from '../node/promise-like.js';
import { headerMap, setClientAddress } from '../node/trust-proxy.js';
import {
  MSGPACK_SUBPROTOCOL,
  SUBPROTOCOL,
  encodingOf,
  msgpackOfJson,
  type Contract,
  type HasRpc,
  type Json,
  type Member,
  type NoContract,
  type RpcHandlerParamsOf,
  type RpcNameOf,
  type InferInput,
  type WireEncoding,
} from '../wire/index.js';
import { broadcastEncoded, type BroadcastRoute } from './encoded-broadcast.js';
import type { RequestContext } from '../channels/index.js';

/**
 * The hub's options and the endpoint's (`slowConsumer` defaults to 'try-again-later' here:
 * a subscriber too slow for live messages is closed with 1013 and recovers them).
 */
export interface ChannelsEndpointOptions<A, C extends Contract = NoContract>
  extends Omit<ChannelHubOptions<A>, 'rpc'>,
    Omit<WebSocketServerOptions<ChannelConnectionData<A>>, 'handlers' | 'upgrade' | 'protocols' | 'topics'> {
  /**
   * The endpoint's channels and rpc methods with their schemas, shared with the SDK
   * (`defineContract`): each channel's schema becomes its rule (beside `channels`), and the
   * rpc handlers below are typed by it, their answers checked against each `result`.
   */
  contract?: C;
  /** Rpc methods: by the contract's names and types when there is one. */
  rpc?: RpcHandlers<A, C>;
  /**
   * Largest message in bytes (default 256 KiB, what the largest hotline.v1 request needs;
   * more when `maxDataLength` is raised). Larger ones close the connection with 1009.
   */
  maxPayload?: number;
  /**
   * Who may connect, decided before the upgrade completes: an identity, or a refusal with
   * an HTTP status (401 without credentials, 403 with bad ones). Default: everyone, as
   * `{ auth: undefined }`, with no presence member. With `authenticateToken` set, an
   * identity whose `auth` is undefined must send an `auth` request first. `client` is the
   * id the connection will have once open.
   */
  authenticate?(
    req: UpgradeRequest,
    /** The id the connection will have (`context.client.id` in hooks), decided at the upgrade. */
    client: string,
  ):
    | ChannelIdentity<A>
    | {
        /** Refuse the upgrade with this HTTP answer. */
        reject: UpgradeRejection;
      }
    | Promise<
        | ChannelIdentity<A>
        | {
            /** Refuse the upgrade with this HTTP answer. */
            reject: UpgradeRejection;
          }
      >;
  /**
   * Upgrade request headers kept with each connection for hooks (`client.headers`; lower-case
   * names, default none): only these, so a connection holds no more of its request than hooks need.
   */
  keepHeaders?: readonly string[];
}

/** A handler of the contract's method M: params as its schema produces them, an answer its `result` accepts. */
export type ContractRpcHandler<A, C, M extends string> = (
  params: RpcHandlerParamsOf<C, M>,
  context: RequestContext<A>,
) => ContractResult<C, M> | Promise<ContractResult<C, M>>;

type ContractResult<C, M extends string> = C extends { rpc: Record<M, { result: infer S }> } ? InferInput<S> : Json | undefined;

/** The endpoint's rpc methods: the contract's, each typed, or any without one. */
export type RpcHandlers<A, C> =
  HasRpc<C> extends true
    ? { [M in RpcNameOf<C>]: ContractRpcHandler<A, C, M> }
    : NonNullable<ChannelHubOptions<A>['rpc']>;

/**
 * A connection of another transport than the endpoint's WebSocket (an SSE stream) in the
 * same hub: it writes each channel message itself, and says whether it took it (false: it
 * is closed, or closing as too slow, never thinned).
 */
export interface TransportClient<A> extends ChannelClient<A> {
  /** Writes one channel message (hotline.v1 `msg` JSON) in the transport's form; false when it did not take it. */
  deliver(text: string): boolean;
}

/** A channel connection's data: its identity, and the hub's view of it once open. */
export interface ChannelConnectionData<A> {
  /** What `authenticate` decided at the upgrade (a later `auth` request changes the hub's view, not this). */
  identity: ChannelIdentity<A>;
  /** The connection as the hub sees it; null until it opens. */
  client: ChannelClient<A> | null;
  /** The client id decided at the upgrade. */
  id: string;
  /** The upgrade headers kept (`keepHeaders`). */
  headers?: Readonly<Record<string, string>>;
}

/**
 * The largest message `/ws` accepts by default: 256 KiB. The largest request hotline.v1
 * allows is a publish of `maxDataLength` (65,536 UTF-16 code units of JSON by default),
 * at most 3 bytes of UTF-8 each, plus what surrounds it (op, id, channel, key: well under
 * 64 KiB, as is the longest token). Anything larger is refused with 1009 from its frame
 * header, or as soon as inflating it passes the limit, before it is parsed.
 */
export const DEFAULT_CHANNELS_MAX_PAYLOAD = 256 * 1024;
const ENVELOPE = 64 * 1024;

/** The default for `/ws` (and the HTTP API's body), grown with `maxDataLength` when that is raised. */
export function channelsMaxPayload(maxDataLength: number | undefined): number {
  return maxDataLength === undefined ? DEFAULT_CHANNELS_MAX_PAYLOAD : Math.max(DEFAULT_CHANNELS_MAX_PAYLOAD, 3 * maxDataLength + ENVELOPE);
}
const OPEN = 1;
/** Every connection's identity when nothing authenticates: one object for all, frozen so no one changes it for the rest. */
const ANONYMOUS: ChannelIdentity<undefined> = Object.freeze({ auth: undefined });

class ConnectionClient<A> implements ChannelClient<A> {
  /** Waiting for the connection to drain (or close); made by the first wait. */
  private waiters: Array<() => void> | null = null;

  constructor(
    /** `NODE.N`: the node's id (unique across nodes sharing an engine) and a counter. */
    readonly id: string,
    readonly conn: WebSocketConnection<ChannelConnectionData<A>>,
    readonly auth: A,
    readonly member: Member | undefined,
    readonly user: string | undefined,
    readonly headers: Readonly<Record<string, string>> | undefined,
  ) {
    this.encoding = encodingOf(conn.protocol);
  }

  /** The connection's encoding, from the subprotocol it chose: what the hub sends as JSON is written in it. */
  readonly encoding: WireEncoding;

  send(text: string): void {
    this.conn.send(this.encoding === 'msgpack' ? msgpackOfJson(text) : text);
  }

  sendReliable(text: string): void {
    this.conn.send(this.encoding === 'msgpack' ? msgpackOfJson(text) : text, { force: true });
  }

  get bufferedAmount(): number {
    return this.conn.bufferedAmount;
  }

  get backpressureLimit(): number {
    return this.conn.backpressureLimit;
  }

  drained(): Promise<void> {
    if (this.conn.readyState !== OPEN) return Promise.resolve();
    return new Promise((resolve) => (this.waiters ??= []).push(resolve));
  }

  /** The connection drained, or closed: whoever waited may go on. */
  wake(): void {
    const waiting = this.waiters;
    if (waiting === null) return;
    this.waiters = null;
    for (const resolve of waiting) resolve();
  }

  close(code: number, reason: string): void {
    this.conn.close(code, reason);
  }

  pause(): void {
    this.conn.pause();
  }

  resume(): void {
    this.conn.resume();
  }
}

/** The hub's options: the contract's schemas joined to the channel rules and rpc methods. */
function hubOptions<A, C extends Contract>(options: ChannelsEndpointOptions<A, C>): ChannelHubOptions<A> {
  const { contract, rpc, ...rest } = options;
  const methods = (rpc ?? {}) as NonNullable<ChannelHubOptions<A>['rpc']>;
  if (contract === undefined) return { ...rest, rpc: methods };
  const channels: NonNullable<ChannelHubOptions<A>['channels']> = { ...rest.channels };
  for (const [pattern, schema] of Object.entries(contract.channels ?? {})) channels[pattern] = { ...channels[pattern], schema };
  const typed: NonNullable<ChannelHubOptions<A>['rpc']> = {};
  for (const [name, entry] of Object.entries(methods)) {
    const declared = Object.hasOwn(contract.rpc ?? {}, name) ? contract.rpc![name] : undefined;
    const method = typeof entry === 'function' ? { handler: entry } : entry;
    typed[name] = { ...method, schema: declared?.params ?? method.schema, result: declared?.result ?? method.result };
  }
  return { ...rest, channels, rpc: typed };
}

/** The named headers of the upgrade request (repeated ones joined with ", "), or undefined when none are kept. */
/** The upgrade's decision from what `authenticate` decided: the connection's data, or its refusal. */
function connectionData<A>(
  decided: ChannelIdentity<A> | { reject: UpgradeRejection },
  id: string,
  req: UpgradeRequest,
  keepHeaders: readonly string[],
): UpgradeDecision<ChannelConnectionData<A>> {
  if ('reject' in decided) return decided;
  return { data: { identity: decided, client: null, id, headers: keptHeaders(req, keepHeaders) } };
}

function keptHeaders(req: UpgradeRequest, names: readonly string[]): Record<string, string> | undefined {
  if (names.length === 0) return undefined;
  const kept: Record<string, string> = {};
  for (const name of names) {
    const value = req.headers[name];
    if (value !== undefined) kept[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return kept;
}

/** The hub's view of a connection, once open: always a ConnectionClient (made in `open`). */
function clientOf<A>(conn: WebSocketConnection<ChannelConnectionData<A>>): ConnectionClient<A> | null {
  return conn.data.client as ConnectionClient<A> | null;
}

/**
 * The channel endpoint: its WebSocket server, its hub, and the channels from the
 * application's side ({@link ChannelsApi}: publish, presence, history, send, disconnect,
 * unsubscribe, call), its methods bound so that they can be passed around.
 */
export interface ChannelsEndpoint<A>
  extends Pick<ChannelsApi<A>, 'publish' | 'presence' | 'history' | 'send' | 'disconnect' | 'unsubscribe' | 'call'> {
  /** The WebSocket server to mount at a path (`serve({ websocket: { '/ws': endpoint.server } })`); its topics are off. */
  readonly server: WebSocketServer<ChannelConnectionData<A>>;
  /** The channel hub behind it: its engine, metrics and node id. */
  readonly hub: ChannelHub<A>;
  /** Settles once the engine started. */
  readonly ready: Promise<void>;
  /**
   * Who a plain HTTP request to a transport beside the WebSocket (`sseEndpoint`) is, decided
   * as an upgrade would be: the endpoint's `origins` (403), then its `authenticate`, told the
   * id the connection will have (`client`).
   */
  identify(
    req: UpgradeRequest,
    client: string,
  ): Promise<
    | ChannelIdentity<A>
    | {
        /** Refuse the request with this HTTP answer. */
        reject: UpgradeRejection;
      }
  >;
}

/**
 * The `/ws` endpoint: WebSocket connections speaking hotline.v1 (the subprotocol is selected
 * when offered; a client that offers none is served the same protocol) through one
 * {@link ChannelHub}. The hub keeps each channel's subscribers; a channel message is
 * encoded (and compressed) once as a shared frame and written to every live one. Raw
 * topics are off on its server (`server.publish` throws a TopicsDisabledError): frames that
 * are not hotline.v1 messages never reach its connections.
 */
export function channelsEndpoint<A = undefined, C extends Contract = NoContract>(
  options: ChannelsEndpointOptions<A, C> = {},
): ChannelsEndpoint<A> {
  const hub = new ChannelHub<A, ConnectionClient<A> | TransportClient<A>>(hubOptions(options));
  const { authenticate } = options;
  const keepHeaders = (options.keepHeaders ?? []).map((name) => name.toLowerCase());
  const origins = options.origins;
  let nextClient = 0;
  const server = new WebSocketServer<ChannelConnectionData<A>>({
    ...options,
    topics: false,
    maxPayload: options.maxPayload ?? channelsMaxPayload(options.maxDataLength),
    // A subscriber that cannot keep up is closed rather than left with a hole: the SDK
    // reconnects and recovers what it missed, paced by its own reading.
    slowConsumer: options.slowConsumer ?? 'try-again-later',
    // A client that offers msgpack at all asked for it (the SDK offers JSON beside it, for
    // servers without it); one that offers none is served JSON.
    protocols: [MSGPACK_SUBPROTOCOL, SUBPROTOCOL],
    // Without an authenticate hook, or with one that decides at once, the upgrade completes
    // in the read that brought it: no promise, no pause while nothing is awaited.
    upgrade(req) {
      const id = `${hub.nodeId}.${(nextClient++).toString(36)}`;
      if (authenticate === undefined) return connectionData<A>(ANONYMOUS as ChannelIdentity<A>, id, req, keepHeaders);
      const decided = authenticate(req, id);
      if (isPromiseLike(decided)) return Promise.resolve(decided).then((identity) => connectionData(identity, id, req, keepHeaders));
      return connectionData(decided, id, req, keepHeaders);
    },
    handlers: {
      open(conn) {
        const { identity, id, headers } = conn.data;
        const client = new ConnectionClient(id, conn, identity.auth, identity.member, identity.user, headers);
        conn.data.client = client;
        hub.connect(client, conn.data.identity.expiresAt);
      },
      message(conn, message) {
        const client = clientOf(conn);
        if (client === null) return;
        if (typeof message === 'string') hub.handleText(client, message);
        else hub.handleBinary(client, message);
      },
      close(conn) {
        const client = clientOf(conn);
        if (client === null) return;
        hub.disconnect(client);
        client.wake();
      },
      drain(conn) {
        clientOf(conn)?.wake();
      },
    },
  });
  // Shutting the server down closes the hub's engine, so a Redis engine lets the process exit.
  server.closeWith(hub);
  type Frame = ReturnType<typeof server.topics.frame>;
  const route: BroadcastRoute<ConnectionClient<A> | TransportClient<A>, Frame> = {
    encodingOf: (client) => (client instanceof ConnectionClient ? client.encoding : null),
    frame: (encoding, text) => server.topics.frame(encoding === 'msgpack' ? msgpackOfJson(text) : text),
    sendFrame: (frame, client) => frame.sendTo((client as ConnectionClient<A>).conn),
    deliver: (client, text) => (client as TransportClient<A>).deliver(text),
  };
  // Made a frame once per encoding that has a WebSocket subscriber, when it needs it.
  const ready = hub.start({ broadcast: (text, subscribers) => broadcastEncoded(text, subscribers, route) });
  const { api } = hub;
  return {
    server,
    hub,
    ready,
    async identify(req, client) {
      // As the handshake checks it, except that a list lets a request without Origin pass:
      // browsers send none on a same-origin GET, as EventSource makes.
      const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
      const host = typeof req.headers.host === 'string' ? req.headers.host : '';
      if (origins !== undefined) {
        const ok =
          typeof origins === 'function' ? origins(origin, host) : origin === undefined || origins.some((o) => o.toLowerCase() === origin.toLowerCase());
        if (!ok) return { reject: { status: 403, message: `origin ${origin ?? '(none)'} is not allowed` } };
      }
      if (req.clientAddress === undefined) setClientAddress(req, server.clientAddressOf(req.socket, headerMap(req.headers)));
      return authenticate === undefined ? { auth: undefined as A } : authenticate(req, client);
    },
    publish: api.publish.bind(api),
    presence: api.presence.bind(api),
    history: api.history.bind(api),
    send: api.send.bind(api),
    disconnect: api.disconnect.bind(api),
    unsubscribe: api.unsubscribe.bind(api),
    call: api.call.bind(api),
  };
}
