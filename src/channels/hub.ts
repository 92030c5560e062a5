import {
  encodeOk,
  encodeUnsubPush,
  parseMsgpackRequest,
  parseRequest,
  resolveWireLimits,
  type ErrorCode,
  type Json,
  type ParseRequestResult,
  type SubRequest,
  type WireLimits,
} from '../wire/index.js';
import { authorize, ChannelRulebook } from './access.js';
import { CallError } from './call-error.js';
import { LocalBus, NodeCommands, type Action, type LocalTargets, type ConnectionTarget, type Question } from './commands.js';
import type { HubCore } from './core.js';
import { isNodeBus, isPresenceManager, type Broker, type ChannelMessage, type EngineListener, type NodeBus, type PresenceManager } from './engine.js';
import { globMatch } from './glob.js';
import { history } from './history.js';
import { DEFAULTS, type Broadcaster, type ChannelClient, type ChannelHubOptions } from './hub-options.js';
import { authenticate } from './identity.js';
import { LocalChannels, type ChannelStats } from './local-channels.js';
import { MemoryEngine } from './memory-engine.js';
import { newChannelMetrics, type ChannelMetrics } from './metrics.js';
import { assignPresenceKey, join, leave, leaveAs, listsMembers, presence, presenceKey, pushesJoinLeave, setState } from './presence.js';
import { publish } from './publish.js';
import { rpc } from './rpc.js';
import { ChannelsApi } from './server-api.js';
import { Session, type QueuedRequest } from './session.js';
import { Subscription } from './subscription.js';

/** A session's entry among the hub's: emptied when the session ends. */
interface SessionSlot<A> {
  session: Session<A> | null;
}

/**
 * The hotline.v1 channel protocol for the connections of one node: requests in, answers
 * and channel messages out, with everything shared between connections (and nodes) kept
 * by a {@link Broker} and a {@link PresenceManager} (one engine, usually). Each connection
 * is a {@link Session}; who subscribes to what is kept by {@link LocalChannels}, which
 * subscribes each channel in the broker once per node and broadcasts each message, encoded
 * once, to the live subscribers; a {@link Subscription} recovers from history before it
 * goes live. The other requests have a module each: publish, history, presence, rpc, and
 * identity (`auth`). The application's side is {@link api} ({@link ChannelsApi}); its
 * commands for users' and clients' connections reach every node through the engine's
 * {@link NodeBus} ({@link NodeCommands}), and this hub carries out those for its own.
 *
 * C is the server's own connection type: the broadcaster is handed the live subscribers as
 * the server passed them to {@link connect}.
 */
export class ChannelHub<A = unknown, C extends ChannelClient<A> = ChannelClient<A>> {
  /** Counters of every operation since the hub started, for /metrics. */
  readonly metrics: ChannelMetrics = newChannelMetrics();
  /** Where messages go: the `engine` option, or a memory engine. */
  readonly engine: Broker;
  /** Who is in each channel: the `presence` option, or the engine. */
  readonly presence: PresenceManager;
  /** This node's id: the first part of its client ids (`NODE.N`). */
  readonly nodeId: string;
  /** The channels from the application's side: publish, presence, history, and users' and clients' connections. */
  readonly api: ChannelsApi<A>;
  /**
   * The sessions by client id (commands address a client by it). Each behind a slot that is
   * emptied when its session ends: a Map in V8's old generation rebuilds its table there as
   * entries come and go, and a table left behind keeps what it held reachable for young-
   * generation collections until a full one; an emptied slot holds no session, connection or
   * socket (see src/node/connection-set.ts).
   */
  private readonly sessions = new Map<string, SessionSlot<A>>();
  private readonly commands: NodeCommands;
  private readonly channels: LocalChannels<A, C>;
  private readonly core: HubCore<A>;
  private readonly limits: WireLimits;
  /**
   * The most values a msgpack request may hold: as many as its data could hold and still fit
   * `maxDataLength` as JSON (two characters a value at least, as in `0,`), and the envelope.
   */
  private readonly maxMsgpackValues: number;
  private readonly rules: ChannelRulebook;
  /** The presence manager when it is not the engine itself: started and closed on its own. */
  private readonly separatePresence: PresenceManager | null;
  private started: Promise<void> | null = null;
  /**
   * Leaves waiting out the presence grace of a disconnected client, by channel and key:
   * a reconnect that subscribes again here within it cancels its leave (and elsewhere,
   * takes the key over, so that the leave finds it held by another connection).
   */
  private readonly graceLeaves = new Map<string, ReturnType<typeof setTimeout>>();
  /** When this hub was made, for the `info` of its node. */
  private readonly since: number;

  constructor(options: ChannelHubOptions<A> = {}) {
    const engine = options.engine ?? new MemoryEngine({ now: options.now });
    const presenceManager = options.presence ?? (isPresenceManager(engine) ? engine : undefined);
    if (presenceManager === undefined) throw new TypeError('ChannelHub: the engine keeps no presence; pass a `presence` manager');
    this.engine = engine;
    this.presence = presenceManager;
    this.separatePresence = (presenceManager as object) === engine ? null : presenceManager;
    this.limits = resolveWireLimits(options.limits);
    this.maxMsgpackValues = Math.ceil((options.maxDataLength ?? DEFAULTS.maxDataLength) / 2) + 64;
    this.rules = new ChannelRulebook(options.channels);
    this.channels = new LocalChannels(engine, this.metrics);
    this.since = (options.now ?? Date.now)();
    this.core = {
      options,
      rules: this.rules,
      broker: engine,
      presence: presenceManager,
      metrics: this.metrics,
      now: options.now ?? Date.now,
      report: options.onError ?? defaultOnError,
      // Closed by the hub (abuse, expiry, the server API): gone at once, with no grace.
      disconnect: (client) => this.forget(client, false),
      endSubscription: (session, channel, code, message) => this.endSubscription(session, channel, code, message),
    };
    // The engine's node bus reaches every node; without one, this node alone.
    const bus: NodeBus = isNodeBus(engine) ? engine : new LocalBus();
    this.nodeId = bus.nodeId;
    this.commands = new NodeCommands(
      bus,
      this.localTargets(),
      {
        maxPending: options.maxPendingCommands ?? DEFAULTS.maxPendingCommands,
        nodeTimeout: options.nodeTimeout ?? DEFAULTS.nodeTimeout,
      },
      // No connection to blame: a malformed command from a node, or one that failed here.
      (error) => console.error('hotline: a command from another node failed:', error),
    );
    if (bus instanceof LocalBus) bus.listen((text) => this.commands.receive(text));
    this.api = new ChannelsApi(this.core, this.rules, this.limits, this.commands);
  }

  /** Starts the engine; the server calls it once, with how to reach a channel's live subscribers. */
  start(broadcaster: Broadcaster<C>): Promise<void> {
    this.channels.deliverThrough(broadcaster);
    const listener: EngineListener = {
      message: (message) => this.channels.deliver(message),
      ephemeral: (channel, data, client) => this.channels.deliverEphemeral(channel, data, client),
      // Kept and counted either way; only the push of a join or leave is left out where it is off.
      presence: (event) => {
        if (event.kind === 'update' || pushesJoinLeave(this.core, event.channel)) this.channels.presenceChanged(event);
      },
      health: (healthy) => {
        if (healthy) void this.channels.resync();
      },
      command: (text) => this.commands.receive(text),
    };
    this.started ??= Promise.all([this.engine.start(listener), this.separatePresence?.start?.(listener)]).then(() => {});
    return this.started;
  }

  /** Fails the server API's waiting commands and closes the engine (and a separate presence manager). */
  async close(): Promise<void> {
    this.commands.close();
    for (const timer of this.graceLeaves.values()) clearTimeout(timer);
    this.graceLeaves.clear();
    await Promise.all([this.engine.close(), this.separatePresence?.close?.()]);
  }

  /** A connection opened. */
  connect(client: C, expiresAt?: number): void {
    const session = new Session(client, this.core);
    this.sessions.set(client.id, { session });
    this.metrics.sessions++;
    session.setExpiry(expiresAt);
  }

  /**
   * A connection closed, cleanly or not: its subscriptions go, and its presence after the
   * grace period (unless its client subscribes again meanwhile).
   */
  disconnect(client: C): void {
    this.forget(client, true);
  }

  /** A text frame from a connection: a request in JSON, unless the connection speaks msgpack. */
  handleText(client: C, text: string): void {
    const session = this.sessionOf(client);
    if (session === undefined || session.closed) return;
    if (client.encoding === 'msgpack') return session.fail(undefined, 'bad_request', 'hotline.v1.msgpack messages are msgpack binary frames, not text');
    this.accept(session, parseRequest(text, this.limits), text.length);
  }

  /** A binary frame: a request in msgpack on a hotline.v1.msgpack connection; on a JSON one, refused. */
  handleBinary(client: C, bytes?: Uint8Array): void {
    const session = this.sessionOf(client);
    if (session === undefined || session.closed) return;
    if (client.encoding !== 'msgpack' || bytes === undefined) return session.fail(undefined, 'bad_request', 'hotline.v1 messages are JSON text frames, not binary');
    this.accept(session, parseMsgpackRequest(bytes, this.limits, this.maxMsgpackValues), bytes.length);
  }

  /** A request read in either encoding: refused, or queued in its turn (`size` counts toward the pending bound). */
  private accept(session: Session<A>, parsed: ParseRequestResult, size: number): void {
    if (!parsed.ok) return session.fail(parsed.id, parsed.code, parsed.message);
    this.metrics.requests[parsed.request.op]++;
    session.receive(parsed.request, size, (request) => this.execute(session, request));
  }

  /** Channels with subscribers on this node: their subscribers (and how many are live) and messages delivered. */
  channelStats(): ChannelStats[] {
    return this.channels.stats();
  }

  /** The user a connection is (after its latest `auth`), for the inspector. */
  userOf(client: C): string | undefined {
    return this.sessionOf(client)?.user;
  }

  /** Local subscribers of a channel (recovering or live). */
  localSubscribers(channel: string): number {
    return this.channels.subscribers(channel);
  }

  /** The session of `client`, while it has one. */
  private sessionOf(client: ChannelClient<A>): Session<A> | undefined {
    const session = this.sessions.get(client.id)?.session;
    return session != null && session.client === client ? session : undefined;
  }

  private *liveSessions(): Generator<Session<A>, undefined, undefined> {
    for (const { session } of this.sessions.values()) if (session !== null) yield session;
    return undefined;
  }

  /** The connection is gone (`grace`: its presence waits for a reconnect), or the hub closed it. */
  private forget(client: ChannelClient<A>, grace: boolean): void {
    const slot = this.sessions.get(client.id);
    const session = slot?.session;
    if (session == null || session.client !== client) return;
    session.end();
    slot!.session = null;
    this.sessions.delete(client.id);
    this.metrics.sessions--;
    for (const channel of session.subscriptions.channels()) this.dropSubscription(session, channel, grace && !session.sentAway);
  }

  /** A request in its turn (an rpc: once those before it ran). */
  private execute(session: Session<A>, request: QueuedRequest): Promise<void> {
    const { core } = this;
    switch (request.op) {
      case 'auth':
        return authenticate(core, session, request.id, request.token);
      case 'rpc':
        return rpc(core, session, request);
    }
    if (session.closed) return Promise.resolve();
    switch (request.op) {
      case 'sub':
        return this.subscribe(session, request);
      case 'unsub':
        if (session.subscriptions.has(request.ch)) this.dropSubscription(session, request.ch);
        session.reply(encodeOk(request.id));
        return Promise.resolve();
      case 'pub':
        return publish(core, this.rules, session, request);
      case 'state':
        return setState(core, session, request);
      case 'history':
        return history(core, session, request);
      case 'presence':
        return presence(core, session, request.id, request.ch);
    }
  }

  /**
   * A `sub`: the subscription joins the channel's live stream first (keeping what arrives),
   * reads history, is answered, then replays what it missed and goes live; see
   * {@link Subscription}. The connection joins the channel's presence once answered.
   */
  private async subscribe(session: Session<A>, request: SubRequest): Promise<void> {
    const { ch: channel, id } = request;
    if (!session.take('sub')) return session.fail(id, 'rate_limited', 'subscribing too fast');
    if (session.subscriptions.has(channel)) return session.fail(id, 'bad_request', `already subscribed to ${channel}`);
    const max = this.core.options.maxSubscriptions ?? DEFAULTS.maxSubscriptions;
    if (session.subscriptions.size >= max) return session.fail(id, 'too_large', `at most ${max} subscriptions per connection`);
    if (request.sender !== undefined && request.sender !== session.sender) {
      // One client id per connection: the presence key of its subscriptions must not change under them.
      if (session.presenceKey !== undefined) return session.fail(id, 'bad_request', 'a connection keeps one client id: send the same "sender" with every sub');
      session.sender = request.sender;
    }
    await assignPresenceKey(session);
    await authorize(this.core.options.canSubscribe?.(session.context, channel, request.token), channel, 'subscribe to');
    // The backend is asked last: what the rules refuse costs it nothing.
    await this.core.options.proxy?.subscribe?.(session.context, channel);
    if (session.closed) return;
    // The credentials may have expired while the hook decided.
    if (session.refused(id)) return;

    const subscription = new Subscription(session, channel, this.metrics, request.token);
    session.subscriptions.add(subscription);
    this.metrics.subscriptions++;
    let missed: ChannelMessage[];
    try {
      await this.channels.add(subscription);
      const result = await this.engine.history(channel, { since: request.since });
      if (!subscription.current) return;
      const { position, recovered } = result;
      if (request.since !== undefined) {
        if (recovered) this.metrics.recoveries.recovered++;
        else this.metrics.recoveries.notRecovered++;
      }
      session.reply(encodeOk(id, { epoch: position.epoch, offset: position.offset, recovered, client: presenceKey(session) }));
      subscription.answer(position);
      const ending = subscription.ending;
      // Ended by the server while it was being answered: answered first, then ended.
      if (ending !== null) return void this.endSubscription(session, channel, ending.code, ending.message);
      missed = recovered ? result.messages : [];
    } catch (error) {
      if (subscription.current) this.dropSubscription(session, channel);
      throw error;
    }
    // Not awaited: a replay paced by a slow reader must not hold up the requests after it.
    subscription.replay(missed).then(
      (through) => {
        if (through) this.channels.replayed(subscription);
      },
      (error: unknown) => this.core.report(error, session.context),
    );
    const waiting = this.graceLeaves.get(graceKey(channel, presenceKey(session)));
    if (waiting !== undefined) {
      clearTimeout(waiting);
      this.graceLeaves.delete(graceKey(channel, presenceKey(session)));
    }
    await join(this.core, session, channel);
  }

  /**
   * Ends a subscription. The connection's member leaves at once when it unsubscribed or was
   * unsubscribed, and after the presence grace when it disconnected (`gone`), so that a
   * client reconnecting meanwhile is neither a leave nor a join.
   */
  private dropSubscription(session: Session<A>, channel: string, gone = false): void {
    const subscription = session.subscriptions.get(channel);
    if (subscription === undefined) return;
    session.subscriptions.delete(channel);
    this.metrics.subscriptions--;
    // Out of the channel first: a member's own leave is not sent to it.
    this.channels.remove(subscription);
    const grace = this.core.options.presenceGrace ?? DEFAULTS.presenceGrace;
    if (!gone || grace <= 0 || !subscription.answered || !listsMembers(this.core, channel)) return leave(this.core, session, channel);
    // The timer keeps the two ids the leave needs, not the session: a session holds its
    // connection, socket and buffers, and every client that disconnected kept all of that
    // alive through the grace (5 s by default), each young collection copying it.
    session.states?.delete(channel);
    const member = presenceKey(session);
    const clientId = session.client.id;
    const key = graceKey(channel, member);
    clearTimeout(this.graceLeaves.get(key));
    const timer = setTimeout(() => {
      if (this.graceLeaves.get(key) === timer) this.graceLeaves.delete(key);
      leaveAs(this.core, channel, member, clientId);
    }, grace);
    (timer as { unref?: () => void }).unref?.();
    this.graceLeaves.set(key, timer);
  }

  /**
   * Drops a subscription the client did not ask to drop, and tells it so; one not answered
   * yet ends right after its answer (a `sub` is always answered). False when there is none.
   */
  private endSubscription(session: Session<A>, channel: string, code: ErrorCode, message: string): boolean {
    const subscription = session.subscriptions.get(channel);
    if (subscription === undefined) return false;
    if (!subscription.answered) {
      subscription.ending ??= { code, message };
      return true;
    }
    // Unsubscribed as the member that joined: its leave is announced.
    this.dropSubscription(session, channel);
    session.reply(encodeUnsubPush(channel, code, message));
    return true;
  }

  /** What the server API's commands do to this node's connections. */
  private localTargets(): LocalTargets {
    // A user's sessions are found by a walk (a command is the application's, not a client's,
    // and identities change with `auth`); a client's by its id.
    const sessionsOf = (to: ConnectionTarget): Array<Session<A>> => {
      if ('client' in to) {
        const session = this.sessions.get(to.client)?.session;
        return session == null || session.closed ? [] : [session];
      }
      return [...this.liveSessions()].filter((session) => session.user === to.user && !session.closed);
    };
    return {
      has: (client) => this.sessions.has(client),
      act: (to: ConnectionTarget, action: Action): number => {
        let reached = 0;
        for (const session of sessionsOf(to)) {
          if (action.k === 'send') {
            if (session.closed) continue;
            session.client.send(action.text);
            reached++;
          } else if (action.k === 'disconnect') {
            if (session.closed) continue;
            session.close(action.code, action.reason);
            reached++;
          } else if (this.endSubscription(session, action.ch, 'forbidden', action.message)) {
            reached++;
          }
        }
        return reached;
      },
      call: (client, method, paramsJson, timeout) => {
        const session = this.sessions.get(client)?.session;
        if (session == null || session.closed) return Promise.reject(new CallError('client_gone', `no client ${JSON.stringify(client)} is connected`));
        return session.calls.start((text) => session.client.send(text), method, paramsJson, timeout);
      },
      tell: (question) => this.tell(question),
    };
  }

  /** This node's answer to the server API's `info` and `channels` (see NodeInfo and NodeChannels in server-api.ts). */
  private tell(question: Question): Json {
    if (question.q === 'info') {
      const users = new Set<string>();
      for (const session of this.liveSessions()) if (session.user !== undefined) users.add(session.user);
      return {
        node: this.nodeId,
        connections: this.sessions.size,
        users: users.size,
        channels: this.channels.count,
        subscriptions: this.metrics.subscriptions,
        uptime: Math.floor((this.core.now() - this.since) / 1000),
      };
    }
    const { pattern, after, limit } = question;
    const names: string[] = [];
    for (const name of this.channels.names()) {
      if ((after === undefined || name > after) && (pattern === undefined || globMatch(pattern, name))) names.push(name);
    }
    // The first `limit` by name on every node make the first `limit` of all nodes, counted whole.
    names.sort();
    const more = names.length > limit;
    return { channels: names.slice(0, limit).map((name) => [name, this.channels.subscribers(name)]), more };
  }
}

/** A grace leave's entry: a channel name holds no newline. */
function graceKey(channel: string, key: string): string {
  return `${channel}\n${key}`;
}

function defaultOnError(error: unknown): void {
  console.error('hotline: a channel hook or rpc handler threw; answered internal:', error);
}
