import { createClient, createCluster, ErrorReply, type RedisClientOptions, type RedisClientType, type RedisClusterType } from 'redis';
import { EngineUnavailableError } from '../channels/index.js';
import type { Script } from './scripts.js';

type Client = RedisClientType;
type Cluster = RedisClusterType;
type Listener = (message: string, channel: string) => void;

export interface LinkOptions {
  /** A command that Redis has not answered after this long fails as unavailable (ms). */
  commandTimeout: number;
  /** connect() fails when Redis cannot be reached for this long (ms). */
  connectTimeout: number;
  /** Commands waiting for Redis on one connection before more are refused as unavailable. */
  maxQueuedCommands: number;
  /** More options for node-redis' createClient; the URL wins. */
  client?: RedisClientOptions;
  /** The URLs are seed nodes of a Redis Cluster (sharded pub/sub), not one server. */
  cluster?: boolean;
}

/** What the link tells its engine about the connections. */
export interface LinkEvents {
  /** A connection failed or dropped (node-redis reconnects it by itself). */
  lost(): void;
  /** A connection is ready again. */
  regained(): void;
}

/** Error replies that mean "not now" rather than a mistake. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|NOAUTH|WRONGPASS|NOPERM)\b/;

/**
 * A node's connections to Redis: one for commands and scripts, one for pub/sub, or, on a
 * Redis Cluster, node-redis' cluster client, which keeps a command connection per primary
 * and a sharded pub/sub connection per primary that holds one of our channels, and
 * follows MOVED/ASK. Every call is bounded by the command timeout, and "cannot reach Redis"
 * (disconnected, a full queue, a timeout, a transient error reply) fails as
 * {@link EngineUnavailableError}: nothing is queued while disconnected, so a call never
 * waits for Redis to come back.
 */
export class RedisLink {
  private readonly commands: Client | null = null;
  private readonly subscriber: Client | null = null;
  private readonly cluster: Cluster | null = null;
  /** The last connection error, for the message of a failed connect. */
  lastError = '';

  constructor(
    /** One URL, or (cluster) the seed nodes' URLs separated by commas. */
    readonly url: string,
    nodeId: string,
    private readonly options: LinkOptions,
  ) {
    const clientOptions: RedisClientOptions = {
      ...options.client,
      // Never queue while disconnected: a call fails at once instead of waiting for Redis.
      disableOfflineQueue: true,
      commandsQueueMaxLength: options.maxQueuedCommands,
      // Calls are bounded here (commandTimeout); no second timer per command.
      commandOptions: { timeout: 0, ...options.client?.commandOptions },
      socket: {
        connectTimeout: Math.min(options.connectTimeout, 5_000),
        // Quick at first (a restart takes a moment), then every 1 s at most.
        reconnectStrategy: (retries: number) => Math.min(25 * 2 ** retries, 1_000) + Math.floor(Math.random() * 25),
        ...options.client?.socket,
      } as RedisClientOptions['socket'],
    };
    if (options.cluster === true) {
      const seeds = clusterSeeds(url);
      // The seeds only find the topology; every node's connection takes `defaults`, so the
      // credentials and TLS of the first seed URL apply to all of them.
      const first = new URL(seeds[0]!);
      const defaults: RedisClientOptions = {
        ...clientOptions,
        name: `hotline:${nodeId}`,
        ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
        ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      };
      if (first.protocol === 'rediss:') defaults.socket = { ...defaults.socket, tls: true } as RedisClientOptions['socket'];
      this.cluster = createCluster({
        rootNodes: seeds.map((seed) => ({ url: seed })),
        defaults,
        // A primary that stopped answering: look for its replica's promotion after 1 s of
        // reconnecting, not the default 5 s.
        topologyRefreshOnReconnectionAttemptStrategy: 1_000,
      } as Parameters<typeof createCluster>[0]) as unknown as Cluster;
    } else {
      // Named so that CLIENT LIST tells the nodes and their two connections apart.
      this.commands = createClient({ ...clientOptions, url, name: `hotline:${nodeId}:cmd` }) as unknown as Client;
      this.subscriber = createClient({ ...clientOptions, url, name: `hotline:${nodeId}:sub` }) as unknown as Client;
    }
  }

  /** Whether pub/sub is sharded (a cluster): scripts SPUBLISH, channels are SSUBSCRIBEd. */
  get sharded(): boolean {
    return this.cluster !== null;
  }

  /** The connections are up (on a cluster: the topology is known; a shard may still be down). */
  get ready(): boolean {
    if (this.cluster !== null) return this.cluster.isReady;
    return this.commands!.isReady && this.subscriber!.isReady;
  }

  /** Commands can be sent. */
  get commandsReady(): boolean {
    return this.cluster !== null ? this.cluster.isReady : this.commands!.isReady;
  }

  /** PUBLISH (SPUBLISH on a cluster: only the channel's shard carries it); how many listened. */
  async publish(name: string, text: string): Promise<number> {
    const work = this.cluster !== null ? this.cluster.sPublish(name, text) : this.commands!.publish(name, text);
    return Number(await this.deadline(work, 'publish'));
  }

  /** A PING (on a cluster, to one primary): that Redis answers within the command timeout. */
  async probe(): Promise<void> {
    const work: Promise<unknown> = this.cluster !== null ? this.cluster.sendCommand(undefined, false, ['PING']) : this.commands!.ping();
    await this.deadline(work, 'heartbeat');
  }

  /** Subscribes to pub/sub channels (sharded on a cluster, each on its own shard). */
  async listen(names: string[], listener: Listener): Promise<void> {
    if (this.cluster !== null) {
      const cluster = this.cluster;
      await this.deadline(Promise.all(names.map((name) => cluster.sSubscribe(name, listener))), 'subscribe');
    } else {
      await this.deadline(this.subscriber!.subscribe(names, listener), 'subscribe');
    }
  }

  async unlisten(name: string, listener: Listener): Promise<void> {
    const work = this.cluster !== null ? this.cluster.sUnsubscribe(name, listener) : this.subscriber!.unsubscribe(name, listener);
    await this.deadline(work, 'unsubscribe');
  }

  /** Connects both, or fails after the connect timeout with the last error seen. */
  async connect(events: LinkEvents): Promise<void> {
    const failed = (error: unknown): void => {
      this.lastError = messageOf(error);
      events.lost();
    };
    if (this.cluster !== null) {
      // Per connection to a cluster node (commands or sharded pub/sub): any one lost makes
      // the engine unhealthy until a recovery has re-read every channel.
      this.cluster.on('error', (error: unknown) => (this.lastError = messageOf(error)));
      this.cluster.on('node-error', failed);
      this.cluster.on('node-reconnecting', () => events.lost());
      this.cluster.on('node-disconnect', () => events.lost());
      this.cluster.on('node-ready', () => events.regained());
      this.cluster.on('sharded-channel-moved-error', failed);
    }
    for (const client of [this.commands, this.subscriber]) {
      if (client === null) continue;
      client.on('error', failed);
      client.on('end', () => events.lost());
      client.on('reconnecting', () => events.lost());
      client.on('ready', () => events.regained());
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      const { connectTimeout } = this.options;
      timer = setTimeout(
        () => reject(new EngineUnavailableError(`cannot reach Redis at ${redactUrl(this.url)} within ${connectTimeout} ms${this.lastError ? `: ${this.lastError}` : ''}`)),
        connectTimeout,
      );
    });
    const connecting = this.cluster !== null ? this.cluster.connect() : Promise.all([this.commands!.connect(), this.subscriber!.connect()]);
    connecting.catch(() => {}); // after a time-out, close() makes it fail: nobody waits for it then
    try {
      await Promise.race([connecting, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs a script by its SHA, loading it when Redis does not have it (a script cache flushed
   * since {@link loadScripts}). `args` may be a function: it is asked again for the retry, so
   * that a write retried behind newer ones on the connection carries the newest value, not
   * the one it was first sent with (a subscriber count must not go back).
   */
  async run(script: Script, keys: string[], args: string[] | (() => string[])): Promise<unknown> {
    const tail = (): string[] => [String(keys.length), ...keys, ...(typeof args === 'function' ? args() : args)];
    // On a cluster the first key routes the script to its slot's primary (all keys share it).
    const send = (command: string[]): Promise<unknown> =>
      this.cluster !== null ? this.cluster.sendCommand(keys[0], false, command) : this.commands!.sendCommand(command);
    try {
      return await this.deadline(send(['EVALSHA', script.sha, ...tail()]), script.name);
    } catch (error) {
      if (!(error instanceof EngineUnavailableError) && messageOf(error).startsWith('NOSCRIPT')) {
        return this.deadline(send(['EVAL', script.source, ...tail()]), script.name);
      }
      throw error;
    }
  }

  /**
   * Loads the scripts into Redis (every primary of a cluster) before they are run. A NOSCRIPT
   * retry goes out behind whatever the connection sent meanwhile, so commands of one node
   * (a presence join and its leave, two counts) could reach Redis out of order; loaded
   * first, a retry happens only after Redis lost its script cache while connected. On a
   * cluster a shard that is down is skipped (its scripts load on first use, as before), so
   * that one shard's outage does not hold the engine's recovery back.
   */
  async loadScripts(scripts: readonly Script[]): Promise<void> {
    const load = (client: Client): Promise<unknown> => Promise.all(scripts.map((script) => client.sendCommand(['SCRIPT', 'LOAD', script.source])));
    const cluster = this.cluster;
    if (cluster === null) {
      await this.deadline(load(this.commands!), 'script load');
      return;
    }
    const primaries = cluster.masters.map(async (master) => load((await cluster.nodeClient(master)) as unknown as Client));
    await this.deadline(Promise.allSettled(primaries), 'script load').catch(() => {});
  }

  /** Bounds a Redis call by the command timeout and turns "cannot reach Redis" into EngineUnavailableError. */
  async deadline<T>(work: Promise<T>, what: string): Promise<T> {
    const { commandTimeout } = this.options;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new EngineUnavailableError(`Redis did not answer ${what} within ${commandTimeout} ms`)), commandTimeout);
    });
    try {
      return await Promise.race([work, timeout]);
    } catch (error) {
      if (error instanceof EngineUnavailableError) throw error;
      const message = messageOf(error);
      if (error instanceof ErrorReply && !TRANSIENT_REPLY.test(message)) throw error;
      throw new EngineUnavailableError(`Redis ${what}: ${message}`, { cause: error });
    } finally {
      clearTimeout(timer);
      work.catch(() => {});
    }
  }

  /** Closes the connections once the commands already sent are answered (or the command timeout passed). */
  async close(): Promise<void> {
    const clients = this.cluster !== null ? [this.cluster] : [this.subscriber!, this.commands!];
    await Promise.allSettled(clients.map((client) => this.quit(client)));
  }

  private async quit(client: Client | Cluster): Promise<void> {
    if (!client.isOpen) {
      client.destroy();
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        client.close(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.options.commandTimeout);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (client.isOpen) client.destroy();
    }
  }
}

/** The URL (or each of a comma-separated list) without its password, for messages and `hotline serve`'s startup lines. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/,]*):[^@/,]*@/g, '//$1:***@');
}

/** A cluster's seed URLs: `redis://n1:7000,redis://n2:7001` (a bare `host:port` means redis://). */
export function clusterSeeds(list: string): string[] {
  const seeds = list
    .split(',')
    .map((seed) => seed.trim())
    .filter((seed) => seed !== '')
    .map((seed) => (/^[a-z]+:\/\//i.test(seed) ? seed : `redis://${seed}`));
  if (seeds.length === 0) throw new RangeError('RedisEngine: a cluster needs at least one seed node URL');
  for (const seed of seeds) {
    let parsed: URL;
    try {
      parsed = new URL(seed);
    } catch {
      throw new RangeError(`RedisEngine: not a URL: ${redactUrl(seed)}`);
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new RangeError(`RedisEngine: a cluster seed must be redis:// or rediss://, not ${redactUrl(seed)}`);
  }
  return seeds;
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return messageOf(error.errors[0]);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
