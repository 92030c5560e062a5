/**
 * The shape of `hotline serve`'s configuration beyond its flat options (options.ts): who
 * may do what on which channels (namespaces), how connections prove who they are (JWT),
 * how a backend reaches the server (the HTTP API) and how the server asks the backend
 * (proxy hooks). One home for the types every part of the server reads; the JSON Schema
 * that validates a config file, and the loader, live beside this file.
 *
 * Names follow the flat options (camelCase, milliseconds, bytes); where Centrifugo has the
 * same idea, its users will recognise it (namespaces, connection and subscription tokens,
 * `Authorization: apikey`, proxy hooks).
 */

/**
 * Who may do something on a namespace's channels.
 * - `anyone`: every connection, anonymous ones included.
 * - `authenticated`: connections with a verified identity (a token's `sub`, or an
 *   application's `authenticate`).
 * - `claim`: authenticated connections whose token lists the channel in its `channels`
 *   claim (exact names, or prefixes ending in `*`).
 * - `token`: (subscribe only) a subscription token for that channel, signed by the
 *   backend, sent with the `sub` request; `claim` holders are let in too.
 * - `server`: no client; only the server API (HTTP API, `channels.publish` in Node).
 */
export type Access = 'anyone' | 'authenticated' | 'claim' | 'token' | 'server';

/** Requests per second, and the burst above it: `50` or `"50:100"` in a file. */
export interface RateConfig {
  perSecond: number;
  burst?: number;
}

/** The options of the channels whose names a namespace's pattern matches. */
export interface NamespaceConfig {
  /** Who may subscribe (default `authenticated`). */
  subscribe?: Access;
  /** Who may publish from a client (default `server`: clients may not publish at all). */
  publish?: Access;
  /** Who may read history (default: as `subscribe`). */
  history?: Access;
  /** Who may read presence (default: as `subscribe`). */
  presenceRead?: Access;
  /** Whether members are tracked (default true); off, presence answers only what the engine counts. */
  presence?: boolean;
  /** Whether subscribers are pushed joins and leaves (default: the server's `joinLeave`, on); off, presence still answers. */
  joinLeave?: boolean;
  /** Messages kept per channel for history and recovery (default: the engine's). */
  historySize?: number;
  /** How long a message stays in history, ms (default: the engine's). */
  historyTtl?: number;
  /** A JSON Schema (draft 2020-12) that published data must match; others get `bad_request`. */
  schema?: Record<string, unknown>;
  /** A JSON Schema (draft 2020-12) that a client's presence state must match; others get `bad_request` naming the field. */
  stateSchema?: Record<string, unknown>;
  /** Publishes per second per connection on these channels (default: the server-wide rate). */
  publishRate?: RateConfig;
}

/**
 * Namespaces by channel-name pattern: an exact name, or a prefix ending in `*` (`chat:*`);
 * the longest match wins, and `*` alone matches every channel. With namespaces configured,
 * a channel in none is refused (`forbidden`).
 */
export type NamespacesConfig = Record<string, NamespaceConfig>;

/** How connection and subscription tokens (JWT) are verified, and where they are found. */
export interface TokenConfig {
  /** A shared secret for HS256/HS384/HS512 (at least 32 bytes). */
  hmacSecret?: string;
  /** A PEM public key (SPKI) for RS*, PS*, ES* or EdDSA. */
  publicKey?: string;
  /** A JWKS URL, fetched when needed, cached and refreshed (keys chosen by `kid`). */
  jwksUrl?: string;
  /** How long a JWKS fetch may take, ms (default 5000); past it the tokens waiting on it are answered 503. */
  jwksTimeout?: number;
  /** The least time between two JWKS fetches, ms (default 30000): a token with an unknown `kid` fetches again at most this often. */
  jwksCooldown?: number;
  /** Accepted algorithms (default: those of the configured key kinds; never `none`). */
  algorithms?: string[];
  /** Required `aud` when set. */
  audience?: string;
  /** Required `iss` when set. */
  issuer?: string;
  /** Leeway for `exp` and `nbf`, ms (default 5000). */
  clockTolerance?: number;
  /** Cookie holding a connection token (default: none read). */
  cookie?: string;
  /** Query parameter holding a connection token (default `token`; browsers cannot set headers on a WebSocket). */
  queryParam?: string;
  /** Refuse connections without a token with 401 (default false: they connect anonymously). */
  required?: boolean;
}

/** The server's HTTP API for backends. */
export interface ApiConfig {
  /** Required as `Authorization: apikey KEY`; without one the API is off (404). */
  key?: string;
  /**
   * Largest request body, bytes (default 256 KiB, what a publish of maxDataLength needs;
   * more when maxDataLength is raised). A larger one is answered 413 and its connection closed.
   */
  maxBodyBytes?: number;
  /** How long a request's body may take to arrive, ms (default 10000); past it 408 and the connection closed. */
  requestTimeout?: number;
}

/** One proxy hook: the backend URL the server POSTs to, and how long it waits. */
export interface ProxyEndpointConfig {
  url: string;
  /** ms (default 3000); past it (or when the backend is down) the client is answered `internal`, which it may retry. */
  timeout?: number;
  /** Request headers of the upgrade passed on to the backend (default: Cookie, Authorization, Origin, User-Agent). */
  headers?: string[];
}

/** Calls to the app's backend on connect, subscribe, publish and rpc. */
export interface ProxyConfig {
  connect?: ProxyEndpointConfig;
  subscribe?: ProxyEndpointConfig;
  publish?: ProxyEndpointConfig;
  rpc?: ProxyEndpointConfig;
  /**
   * Proxy calls in flight at once, every connection together (default 1000); past it a call
   * is refused without reaching the backend (`internal` to the client, 503 to an upgrade).
   * It also bounds the sockets open to the backend.
   */
  maxInFlight?: number;
  /**
   * Proxy calls of one connection in flight at once (default 8; only rpc calls run side by
   * side, subscribes and publishes go one at a time); more wait their turn, within their
   * timeout, so one connection cannot take the whole `maxInFlight`.
   */
  maxInFlightPerConnection?: number;
  /** Largest answer read from the backend, bytes (default 256 KiB); a longer one is the backend's fault (`internal`). */
  maxAnswerBytes?: number;
}

/**
 * What a verified connection token carries, as the identity's `auth` of a token-authenticated
 * connection: `sub` is the user (and presence member id), `info` the member's public data,
 * `channels` the channels (names, or prefixes ending in `*`) the `claim` access lets it into.
 */
export interface TokenClaims {
  sub: string;
  exp?: number;
  info?: Record<string, unknown>;
  channels?: string[];
  [claim: string]: unknown;
}

/**
 * Checks a subscription token sent with a `sub` request (namespaces whose `subscribe` is
 * `token`): resolves when it allows `user` (undefined: anonymous) into `channel`, and
 * rejects with a ChannelError (`unauthorized` for a bad or expired token, `forbidden` for
 * a good one that is for another channel or user) otherwise.
 */
export interface SubscriptionTokenVerifier {
  verify(token: string, channel: string, user: string | undefined): Promise<void>;
}
