import { binaryForm, encodeDirectMessage, exceedsJsonDepth, utf8Length, validateChannelName, type Json, type Member, type WireLimits } from '../wire/index.js';
import type { ChannelRulebook } from './access.js';
import { ChannelError } from './channel-error.js';
import type { NodeCommands, ConnectionTarget } from './commands.js';
import type { HubCore } from './core.js';
import { historyPage } from './history.js';
import { DEFAULTS } from './hub-options.js';
import { presenceSnapshot, type PresenceSnapshot } from './presence.js';
import { checkData, fitsDataLength, SERVER_PUBLISHER, store } from './publish.js';

export type { ConnectionTarget } from './commands.js';

/** Options of {@link ChannelsApi.publish}. */
export interface ServerPublishOptions {
  /**
   * Makes the publish idempotent, as a client's `key`: a repeat within the idempotency
   * window is not delivered again. The server's keys are its own, shared by every node
   * (a job retried on another node is recognised) and apart from every client's.
   */
  key?: string;
}

/** Where {@link ChannelsApi.publish} put the message, and how many it reached. */
export interface ServerPublishResult {
  /** The channel's epoch: with `offset`, a position a client can subscribe `since`. */
  epoch: string;
  /** The message's offset (for a repeated key, the first publish's). */
  offset: number;
  /** Subscribers it reached on every node; 0 for a repeated key. */
  delivered: number;
}

/** Which page of history {@link ChannelsApi.history} reads. */
export interface ServerHistoryOptions {
  /** How many of the newest messages (default `defaultHistoryLimit`, at most the wire's `maxHistoryLimit`). */
  limit?: number;
  /** Only messages older than this offset. */
  before?: number;
  /**
   * Stop adding older messages once the page holds this many bytes of JSON (at least one
   * message, however big; default: no limit). `more` then tells the caller to page on.
   */
  maxBytes?: number;
}

/** A page of a channel's history, as {@link ChannelsApi.history} read it. */
export interface ServerHistory {
  /** The channel's current epoch: subscribe `since` it and the last offset to follow on without a gap. */
  epoch: string;
  /** Oldest first. */
  messages: Array<{
    /** The message's offset in `epoch`. */
    offset: number;
    /** The message as published, parsed. */
    data: Json;
  }>;
  /** Older messages are kept: read them with `before` set to the first offset here. */
  more: boolean;
}

/** How {@link ChannelsApi.disconnect} closes a user's or client's connections. */
export interface DisconnectOptions {
  /**
   * The close code: 1000, 1001, 1008, 1011, 1012, 1013 or an application's 3000–4999
   * (default 4403, after which the SDK does not reconnect; 1012 makes it reconnect).
   */
  code?: number;
  /** At most 123 bytes of UTF-8 (default 'disconnected by the server'). */
  reason?: string;
}

/** How {@link ChannelsApi.unsubscribe} ends a user's or client's subscription to a channel. */
export interface UnsubscribeOptions {
  /** The `message` of the `unsub` push (default 'unsubscribed by the server'). */
  reason?: string;
}

/** Options of {@link ChannelsApi.call}, a call to a client's handler. */
export interface CallOptions {
  /** How long to wait for the reply (ms, default `callTimeout`: 10000). */
  timeout?: number;
}

/** One node's figures, as the server API's `info` gives them. */
export interface NodeInfo {
  /** The node's id: the first part of its clients' ids. */
  node: string;
  /** Open hotline.v1 connections. */
  connections: number;
  /** Distinct users among them (anonymous connections not counted). */
  users: number;
  /** Channels with subscribers on the node. */
  channels: number;
  /** Subscriptions held on the node. */
  subscriptions: number;
  /** Seconds since the node started. */
  uptime: number;
}

export interface ChannelsQuery {
  /** Only channels whose names match: `*` stands for any run of characters (`chat:*`). */
  pattern?: string;
  /** Only channels whose names sort after this one: the last name of the previous page. */
  after?: string;
  /** How many at most (default 100, at most {@link MAX_CHANNELS_LIMIT}). */
  limit?: number;
}

export interface ChannelsPage {
  /** By name, with their subscribers on every node. */
  channels: Array<{ name: string; subscribers: number }>;
  /** More channels match: ask again with `after` set to the last name here. */
  more: boolean;
}

/** The most channels one `channels` page lists: what every node sends is bounded by it. */
export const MAX_CHANNELS_LIMIT = 1000;
const DEFAULT_CHANNELS_LIMIT = 100;

/** Close codes an application may end a connection with, besides its own 3000–4999. */
const DISCONNECT_CODES: ReadonlySet<number> = new Set([1000, 1001, 1008, 1011, 1012, 1013]);
/** setTimeout's longest delay. */
const MAX_TIMEOUT = 2 ** 31 - 1;

/**
 * The channels from the application's side (HTTP routes, jobs): publish as clients do,
 * read presence and history, and reach users' and clients' connections on every node:
 * send them a message, disconnect them, end a subscription, call a handler and await its
 * reply. Arguments are checked as a client's requests are (a ChannelError with the code a
 * client would get); reaching connections fails with a CallError.
 */
export class ChannelsApi<A> {
  constructor(
    private readonly core: HubCore<A>,
    private readonly rules: ChannelRulebook,
    private readonly limits: WireLimits,
    private readonly commands: NodeCommands,
  ) {}

  /**
   * Publishes as a client's `pub` does, without canPublish (the server decides): checked
   * by the channel's schema, given the next offset of its epoch, kept in history and
   * recovered after a reconnect like any other message.
   */
  async publish(channel: string, data: unknown, options: ServerPublishOptions = {}): Promise<ServerPublishResult> {
    this.checkChannel(channel);
    const { key } = options;
    if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > this.limits.maxKeyLength)) {
      throw new ChannelError('bad_request', `key must be a non-empty string of at most ${this.limits.maxKeyLength} characters`);
    }
    // Through JSON first, so that the schema sees what a client's publish would carry.
    const { json } = await checkData(this.core, this.rules, channel, JSON.parse(this.toJson(data, 'data')));
    const result = await store(this.core, channel, json, key === undefined ? undefined : { key, publisher: SERVER_PUBLISHER });
    return { epoch: result.epoch, offset: result.offset, delivered: result.duplicate ? 0 : result.subscribers };
  }

  /** The members of the channel's subscribers on every node, all of them (see {@link presenceSnapshot} for a bounded answer). */
  async presence(channel: string): Promise<Member[]> {
    this.checkChannel(channel);
    return this.core.presence.members(channel);
  }

  /**
   * The channel's presence as a client's `presence` request gets it: at most
   * `maxPresenceMembers` members, their `count` on every node and `truncated` when there
   * are more; a channel whose member list is off answers its subscriber `count` alone.
   */
  async presenceSnapshot(channel: string): Promise<PresenceSnapshot> {
    this.checkChannel(channel);
    return presenceSnapshot(this.core, channel);
  }

  /** The newest messages kept in the channel (before `before`), oldest first. */
  async history(channel: string, options: ServerHistoryOptions = {}): Promise<ServerHistory> {
    this.checkChannel(channel);
    const limit = options.limit ?? this.core.options.defaultHistoryLimit ?? DEFAULTS.defaultHistoryLimit;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > this.limits.maxHistoryLimit) {
      throw new ChannelError('bad_request', `limit must be an integer from 1 to ${this.limits.maxHistoryLimit}`);
    }
    const { before } = options;
    if (before !== undefined && (!Number.isSafeInteger(before) || before < 0)) throw new ChannelError('bad_request', 'before must be an offset');
    const result = await this.core.broker.history(channel, { limit: limit + 1, before });
    const { maxBytes = Infinity } = options;
    if (maxBytes !== Infinity && (!Number.isSafeInteger(maxBytes) || maxBytes < 1)) throw new ChannelError('bad_request', 'maxBytes must be a positive integer');
    const page = historyPage(result.messages, limit, maxBytes);
    return { epoch: result.position.epoch, messages: page.entries.map((e) => ({ offset: e.offset, data: JSON.parse(e.dataJson) as Json })), more: page.more };
  }

  /**
   * The channels with subscribers on any node, by name, with their subscribers on every
   * node added up: a page of at most `limit`, each node sending at most that many.
   */
  async channels(query: ChannelsQuery = {}): Promise<ChannelsPage> {
    const { pattern, after, limit = DEFAULT_CHANNELS_LIMIT } = query;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_CHANNELS_LIMIT) throw new ChannelError('bad_request', `limit must be an integer from 1 to ${MAX_CHANNELS_LIMIT}`);
    const longest = this.limits.maxChannelNameLength;
    if (pattern !== undefined && (typeof pattern !== 'string' || pattern.length > longest)) throw new ChannelError('bad_request', `pattern must be a string of at most ${longest} characters`);
    if (after !== undefined && (typeof after !== 'string' || after.length > longest)) throw new ChannelError('bad_request', `after must be a string of at most ${longest} characters`);
    const answers = (await this.commands.ask({ q: 'channels', pattern, after, limit })) as unknown as Array<{ channels: Array<[string, number]>; more: boolean }>;
    const subscribers = new Map<string, number>();
    let more = false;
    for (const answer of answers) {
      more ||= answer.more;
      for (const [name, count] of answer.channels) subscribers.set(name, (subscribers.get(name) ?? 0) + count);
    }
    const names = [...subscribers.keys()].sort();
    if (names.length > limit) more = true;
    return { channels: names.slice(0, limit).map((name) => ({ name, subscribers: subscribers.get(name)! })), more };
  }

  /** Every node's figures, by node id. */
  async info(): Promise<NodeInfo[]> {
    const nodes = (await this.commands.ask({ q: 'info' })) as unknown as NodeInfo[];
    return nodes.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }

  /**
   * Sends `data` to every connection of the target, on every node, as a `message` (no
   * channel, no offset: not kept, not recovered; for that, publish to a channel of the
   * user's). Resolves to how many connections it reached.
   */
  async send(target: ConnectionTarget, data: unknown): Promise<number> {
    const to = this.checkTarget(target);
    const json = this.toJson(data, 'data');
    return this.commands.act(to, { k: 'send', text: encodeDirectMessage(json) });
  }

  /** Closes every connection of the target, on every node; resolves to how many it closed. */
  async disconnect(target: ConnectionTarget, options: DisconnectOptions = {}): Promise<number> {
    const to = this.checkTarget(target);
    const code = options.code ?? 4403;
    if (!(DISCONNECT_CODES.has(code) || (Number.isInteger(code) && code >= 3000 && code <= 4999))) {
      throw new ChannelError('bad_request', `close code ${code} is not one an application may send (1000, 1001, 1008, 1011, 1012, 1013, 3000–4999)`);
    }
    const reason = options.reason ?? 'disconnected by the server';
    if (typeof reason !== 'string' || utf8Length(reason) > 123) throw new ChannelError('bad_request', 'reason must be a string of at most 123 bytes of UTF-8');
    return this.commands.act(to, { k: 'disconnect', code, reason });
  }

  /**
   * Ends the target's subscriptions to `channel`, on every node: each client gets an
   * `unsub` push with code `forbidden` (the SDK does not resubscribe by itself). It may
   * subscribe again if canSubscribe lets it. Resolves to how many subscriptions ended.
   */
  async unsubscribe(target: ConnectionTarget, channel: string, options: UnsubscribeOptions = {}): Promise<number> {
    const to = this.checkTarget(target);
    this.checkChannel(channel);
    const message = options.reason ?? 'unsubscribed by the server';
    if (typeof message !== 'string' || message.length > 1024) throw new ChannelError('bad_request', 'reason must be a string of at most 1024 characters');
    return this.commands.act(to, { k: 'unsub', ch: channel, message });
  }

  /**
   * Calls the handler the client registered for `method` (`client.handle(method, fn)` in
   * the SDK) and resolves with what it returned, wherever the client is connected. Fails
   * with a CallError: `timeout`, `no_handler`, `handler_error`, `client_gone`,
   * `too_many_pending`, `unavailable`.
   */
  async call<R = Json>(client: string, method: string, params: unknown = null, options: CallOptions = {}): Promise<R> {
    if (typeof client !== 'string' || client.length === 0) throw new ChannelError('bad_request', 'client must be a client id');
    if (typeof method !== 'string' || method.length === 0 || method.length > this.limits.maxMethodLength) {
      throw new ChannelError('bad_request', `method must be a non-empty string of at most ${this.limits.maxMethodLength} characters`);
    }
    const timeout = options.timeout ?? this.core.options.callTimeout ?? DEFAULTS.callTimeout;
    if (!Number.isSafeInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT) throw new ChannelError('bad_request', `timeout must be whole ms from 1 to ${MAX_TIMEOUT}`);
    const json = this.toJson(params, 'params');
    return (await this.commands.call(client, method, json, timeout)) as R;
  }

  private checkChannel(channel: string): void {
    const problem = typeof channel === 'string' ? validateChannelName(channel, this.limits.maxChannelNameLength) : 'it is not a string';
    if (problem !== null) throw new ChannelError('bad_request', `${JSON.stringify(channel)} is not a channel name: ${problem}`);
  }

  /** Only the documented field, so nothing else travels between nodes. */
  private checkTarget(target: ConnectionTarget): ConnectionTarget {
    const user = (target as { user?: unknown } | null)?.user;
    const client = (target as { client?: unknown } | null)?.client;
    if (typeof user === 'string' && user.length > 0 && client === undefined) return { user };
    if (typeof client === 'string' && client.length > 0 && user === undefined) return { client };
    throw new ChannelError('bad_request', 'target must be { user: string } or { client: string }');
  }

  /**
   * `value` as the JSON a client gets: refused (`bad_request`) when JSON cannot carry it (a
   * cycle, a BigInt, a number like Infinity, which JSON.stringify would write as null) or
   * it nests deeper than a client's request may; `too_large` past `maxDataLength`.
   */
  private toJson(value: unknown, what: string): string {
    let json: string | undefined;
    try {
      json = JSON.stringify(value, function (this: Record<string, unknown>, key: string, item: unknown) {
        if (typeof item === 'number' && !Number.isFinite(item)) throw new ChannelError('bad_request', `${what} holds ${item}, which JSON cannot carry`);
        // Bytes (a Uint8Array, a Buffer, any view) in their JSON form, not as toJSON or an index map writes them.
        const raw = this[key];
        return ArrayBuffer.isView(raw) ? binaryForm(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)) : item;
      });
    } catch (error) {
      if (error instanceof ChannelError) throw error;
      throw new ChannelError('bad_request', `${what} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (json === undefined) throw new ChannelError('bad_request', `${what} is not JSON`);
    fitsDataLength(this.core, json, what);
    // Level 1 is the message around it.
    if (exceedsJsonDepth(json, this.limits.maxJsonDepth - 1)) throw new ChannelError('bad_request', `${what} nests deeper than ${this.limits.maxJsonDepth - 1} levels`);
    return json;
  }
}
