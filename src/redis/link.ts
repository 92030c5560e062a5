import { createClient, ErrorReply, type RedisClientOptions, type RedisClientType } from 'redis';
import { EngineUnavailableError } from '../channels/index.js';
import type { Script } from './scripts.js';

type Client = RedisClientType;

export interface LinkOptions {
  /** A command that Redis has not answered after this long fails as unavailable (ms). */
  commandTimeout: number;
  /** connect() fails when Redis cannot be reached for this long (ms). */
  connectTimeout: number;
  /** Commands waiting for Redis on one connection before more are refused as unavailable. */
  maxQueuedCommands: number;
  /** More options for node-redis' createClient; the URL wins. */
  client?: RedisClientOptions;
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
 * A node's two connections to Redis: one for commands and scripts, one for pub/sub. Every
 * call is bounded by the command timeout, and "cannot reach Redis" (disconnected, a full
 * queue, a timeout, a transient error reply) fails as {@link EngineUnavailableError}:
 * nothing is queued while disconnected, so a call never waits for Redis to come back.
 */
export class RedisLink {
  readonly commands: Client;
  readonly subscriber: Client;
  /** The last connection error, for the message of a failed connect. */
  lastError = '';

  constructor(
    readonly url: string,
    nodeId: string,
    private readonly options: LinkOptions,
  ) {
    const clientOptions: RedisClientOptions = {
      ...options.client,
      url,
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
      },
    };
    // Named so that CLIENT LIST tells the nodes and their two connections apart.
    this.commands = createClient({ ...clientOptions, name: `hotline:${nodeId}:cmd` }) as unknown as Client;
    this.subscriber = createClient({ ...clientOptions, name: `hotline:${nodeId}:sub` }) as unknown as Client;
  }

  /** Both connections are up. */
  get ready(): boolean {
    return this.commands.isReady && this.subscriber.isReady;
  }

  /** Connects both, or fails after the connect timeout with the last error seen. */
  async connect(events: LinkEvents): Promise<void> {
    for (const client of [this.commands, this.subscriber]) {
      client.on('error', (error: unknown) => {
        this.lastError = messageOf(error);
        events.lost();
      });
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
    const connecting = Promise.all([this.commands.connect(), this.subscriber.connect()]);
    connecting.catch(() => {}); // after a time-out, close() makes it fail: nobody waits for it then
    try {
      await Promise.race([connecting, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a script by its SHA, loading it when Redis does not have it (first use, or after a restart). */
  async run(script: Script, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.deadline(this.commands.sendCommand(['EVALSHA', script.sha, ...tail]), script.name);
    } catch (error) {
      if (!(error instanceof EngineUnavailableError) && messageOf(error).startsWith('NOSCRIPT')) {
        return this.deadline(this.commands.sendCommand(['EVAL', script.source, ...tail]), script.name);
      }
      throw error;
    }
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

  /** Closes both connections once the commands already sent are answered (or the command timeout passed). */
  async close(): Promise<void> {
    await Promise.allSettled([this.quit(this.subscriber), this.quit(this.commands)]);
  }

  private async quit(client: Client): Promise<void> {
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

/** The URL without its password, for messages (and `hotline serve`'s startup lines). */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return messageOf(error.errors[0]);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
