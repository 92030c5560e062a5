/**
 * The messages of the hotline.v1 channel protocol. Every message is one JSON object in one
 * text frame; the unions are discriminated on `op`.
 */
import type { ErrorCode } from './codes.js';

/** Any value JSON can carry. */
export type Json = null | boolean | number | string | Json[] | JsonObject;

/** A JSON object: presence state, members, and the objects inside channel data. */
export interface JsonObject {
  [key: string]: Json;
}

/**
 * Channel data as the SDK (and the server's hooks and schemas) hold it: JSON values and
 * bytes. Bytes travel as msgpack `bin` on a `hotline.v1.msgpack` connection and as
 * `{"$bin": "<base64>"}` in JSON; a Node Buffer is a Uint8Array too.
 */
export type Data = null | boolean | number | string | Uint8Array | Data[] | { [key: string]: Data };

/**
 * A presence member: the JSON object the server attached to a connection's identity (its
 * `id` and `info`, say), plus two fields the hub sets: `client`, the subscriber's public
 * client id, and `state`, the presence state the client set on the channel, if any. Only
 * `state` is the client's: it can never overwrite the identity's fields.
 */
export type Member = JsonObject;

/** Where a subscriber stopped: the channel's epoch and the last offset it has seen. */
export interface Since {
  epoch: string;
  offset: number;
}

// ---------------------------------------------------------------------------------------
// Client to server
// ---------------------------------------------------------------------------------------

export interface SubRequest {
  op: 'sub';
  id: number;
  ch: string;
  /** Present to recover the messages published after this position. */
  since?: Since;
  /** A subscription token for the channel, signed by the application's backend (private channels). */
  token?: string;
  /**
   * The client's random id, kept across its reconnects (the same as `pub`'s `sender`): its
   * presence is keyed by it (scoped to the connection's user), so a reconnect within the
   * grace period is neither a leave nor a join. Never shown to others: members carry a
   * digest of it as `client`.
   */
  sender?: string;
}

export interface UnsubRequest {
  op: 'unsub';
  id: number;
  ch: string;
}

export interface PubRequest {
  op: 'pub';
  id: number;
  ch: string;
  data: Json;
  /** Makes the publish idempotent: a repeat with the same key is not delivered again. */
  key?: string;
  /**
   * A random id the client keeps across its reconnects; the server scopes keys to it when
   * the connection has no authenticated user, so nobody else can hit them.
   */
  sender?: string;
  /**
   * True: to the channel's current subscribers only, with no offset, kept in no history,
   * never recovered; delivered as `ephemeral`, and the first thing dropped for a slow reader.
   */
  ephemeral?: boolean;
}

/**
 * Sets (or, without `state`, clears) the connection's presence state on a channel it is
 * subscribed to: the other subscribers get an `update` with its member.
 */
export interface StateRequest {
  op: 'state';
  id: number;
  ch: string;
  /** A small JSON object (a cursor, "typing"); absent or null clears it. */
  state?: JsonObject;
}

export interface PresenceRequest {
  op: 'presence';
  id: number;
  ch: string;
}

export interface HistoryRequest {
  op: 'history';
  id: number;
  ch: string;
  /** How many of the newest messages; absent leaves the choice to the server. */
  limit?: number;
  /** Only messages older than this offset: the next page, after an answer that said `more`. */
  before?: number;
}

export interface RpcRequest {
  op: 'rpc';
  id: number;
  method: string;
  params?: Json;
}

export interface PingRequest {
  op: 'ping';
  id: number;
}

/**
 * Authenticates (or re-authenticates, with a fresh token before the last one expires) on
 * a live connection, for clients that cannot put credentials in the upgrade request.
 * Subscriptions are kept.
 */
export interface AuthRequest {
  op: 'auth';
  id: number;
  token: string;
}

/** Why a client could not answer a server's `call`: `not_found` when it has no handler for the method. */
export interface ReplyError {
  code: string;
  message: string;
}

/**
 * The client's answer to a server's {@link ServerCall} (an addition): exactly one of
 * `result` and `error`. Like every request it is answered, with `ok`, or `bad_request`
 * when no call with that number waits for a reply on this connection.
 */
export interface ReplyRequest {
  op: 'reply';
  id: number;
  /** The `call` number of the server's call it answers. */
  call: number;
  result?: Json;
  error?: ReplyError;
}

export type ClientRequest =
  | SubRequest
  | UnsubRequest
  | PubRequest
  | StateRequest
  | PresenceRequest
  | HistoryRequest
  | RpcRequest
  | PingRequest
  | AuthRequest
  | ReplyRequest;

export type RequestOp = ClientRequest['op'];

/** Every request op, in the order the documentation lists them. */
export const REQUEST_OPS: readonly RequestOp[] = ['sub', 'unsub', 'pub', 'state', 'presence', 'history', 'rpc', 'ping', 'auth', 'reply'];

// ---------------------------------------------------------------------------------------
// Server to client
// ---------------------------------------------------------------------------------------

export interface SubOk {
  op: 'ok';
  id: number;
  epoch: string;
  /** The channel's latest offset when the subscription started (0 when it has none). */
  offset: number;
  /** Whether every message after `since` was replayed; false without `since`. */
  recovered: boolean;
  /** This connection's public client id: the `client` of its presence member. */
  client?: string;
}

export interface UnsubOk {
  op: 'ok';
  id: number;
}

export interface PubOk {
  op: 'ok';
  id: number;
  offset: number;
  /** How many subscribers it reached; 0 for a repeated idempotency key. */
  delivered: number;
}

/** An ephemeral publish's answer: no offset, as it has none. */
export interface EphemeralPubOk {
  op: 'ok';
  id: number;
  /** How many subscribers it was sent to, on every node (as far as the server counts them). */
  delivered: number;
}

export interface PresenceOk {
  op: 'ok';
  id: number;
  /** The members, up to the server's bound; absent on a channel whose member list is off (only `count` is kept). */
  members?: Member[];
  /** Subscribers of the channel on every node. */
  count: number;
  /** Present (true) when there are more members than the server lists: `members` holds the first ones. */
  truncated?: boolean;
  /** Present (false) when the channel pushes no `join` or `leave`: a member map kept from events then misses arrivals and departures. */
  joinLeave?: boolean;
}

export interface HistoryEntry {
  offset: number;
  data: Json;
}

export interface HistoryOk {
  op: 'ok';
  id: number;
  epoch: string;
  /** Oldest first. */
  messages: HistoryEntry[];
  /** Present (true) when older messages are kept: ask for them with `before` set to the first offset here. */
  more?: boolean;
}

export interface RpcOk {
  op: 'ok';
  id: number;
  result: Json;
}

export interface AuthOk {
  op: 'ok';
  id: number;
  /** When these credentials expire (ms since the epoch), if they do: re-authenticate before. */
  expiresAt?: number;
}

export interface Pong {
  op: 'pong';
  id: number;
}

/** A message published on a channel the connection is subscribed to. */
export interface ChannelMessage {
  op: 'msg';
  ch: string;
  offset: number;
  data: Json;
}

export interface Join {
  op: 'join';
  ch: string;
  member: Member;
}

export interface Leave {
  op: 'leave';
  ch: string;
  member: Member;
}

/** A member's presence state changed (its `state` field, or its identity after an `auth`). */
export interface Update {
  op: 'update';
  ch: string;
  member: Member;
}

/** An ephemeral publish: no offset, so it is never part of a gap or a recovery. */
export interface EphemeralMessage {
  op: 'ephemeral';
  ch: string;
  /** The publisher's client id (its presence member's `client`), set by the server: a payload cannot claim another's. */
  client?: string;
  data: Json;
}

/**
 * The server ended a subscription on its own (the connection's identity changed and may no
 * longer read the channel, or its credentials expired): no `msg` for it follows.
 */
export interface UnsubPush {
  op: 'unsub';
  ch: string;
  code: ErrorCode;
  message: string;
}

/**
 * The server calls a method the client registered (an addition; `socket.emitWithAck` in
 * Socket.IO): the client answers with a `reply` request carrying the same `call` number,
 * within `timeout` ms, after which the server no longer waits.
 */
export interface ServerCall {
  op: 'call';
  /** Numbers this connection's calls, from 1. */
  call: number;
  method: string;
  params: Json;
  /** How long the server waits for the reply (ms). */
  timeout: number;
}

/**
 * A message from the server's application to this connection (an addition), outside any
 * channel: no offset, no history, not recovered after a reconnect.
 */
export interface DirectMessage {
  op: 'message';
  data: Json;
}

export interface ErrorMessage {
  op: 'err';
  /** The request's id; absent when the request could not be read far enough to find it. */
  id?: number;
  code: ErrorCode;
  message: string;
}

export type OkReply = SubOk | UnsubOk | PubOk | EphemeralPubOk | PresenceOk | HistoryOk | RpcOk | AuthOk;

/** The successful answer to each request op. */
export interface ReplyTo {
  sub: SubOk;
  unsub: UnsubOk;
  pub: PubOk | EphemeralPubOk;
  state: UnsubOk;
  presence: PresenceOk;
  history: HistoryOk;
  rpc: RpcOk;
  ping: Pong;
  auth: AuthOk;
  reply: UnsubOk;
}

export type ServerMessage = OkReply | Pong | ChannelMessage | EphemeralMessage | Join | Leave | Update | UnsubPush | ServerCall | DirectMessage | ErrorMessage;

export type ServerOp = ServerMessage['op'];
