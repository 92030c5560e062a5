/**
 * Every knob of `hotline serve`, defined once: its kind (how it is parsed from a flag, a
 * HOTLINE_* variable or a config file, and checked: config/kinds.ts), its default, and the
 * line of `--help` that documents it. The config file's schema and reference are generated
 * from this table (config/schema.ts).
 *
 * Durations are milliseconds and sizes bytes, as everywhere in hotline.
 */
import { DEFAULTS as HUB_DEFAULTS } from '../channels/hub-options.js';
import { ARRIVAL_LIMITS, DEFAULT_MAX_PENDING_BYTES, DEFAULT_MAX_PENDING_REQUESTS } from '../channels/intake.js';
import { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL, DEFAULT_IDEMPOTENCY_WINDOW, DEFAULT_MAX_CHANNELS, DEFAULT_MAX_HISTORY_BYTES } from '../channels/index.js';
import { DEFAULT_INFLATE_RATE } from '../node/inflate-budget.js';
import { DEFAULT_BACKPRESSURE_LIMIT, type SlowConsumerPolicy } from '../node/connection-context.js';
import { DEFAULT_CLOSE_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT } from '../node/timeouts.js';
import { DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_IDLE_TIMEOUT, DEFAULT_MESSAGE_TIMEOUT } from '../node/server.js';
import { ChannelCloseCode, DEFAULT_MAX_HISTORY_ANSWER_BYTES, DEFAULT_WIRE_LIMITS, MAX_RECONNECT_WINDOW } from '../wire/index.js';
import { DEFAULT_NODE_TTL } from '../redis/defaults.js';
import { MIN_ADMIN_SECRET_LENGTH } from './admin.js';
import { bytes, choice, count, ms, OptionError, origins, rate, rateOrOff, text, toggle, trustProxy, whole, workerCountKind, type Kind } from './config/kinds.js';
import type { LogLevel } from './log.js';
import { DEFAULT_CONNECTION_RATE_PER_ADDRESS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_RECONNECT_WINDOW, DEFAULT_SHUTDOWN_TIMEOUT } from './serve.js';

export { OptionError };

type Section = 'Listening' | 'Browsers and operators' | 'Connections' | 'Channels (/ws)' | 'Channel state (every engine)' | 'Channel state (memory engine)';

export interface OptionDef<V> {
  section: Section;
  kind: Kind<V>;
  /** Applied when the option is not given; absent: nothing is set (the help says what happens). */
  default?: V;
  help: string;
  /** The flag when it is not the kebab-case of the key. */
  flag?: string;
}

const secret = text('SECRET', (value, name) => {
  if (value.length < MIN_ADMIN_SECRET_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
    throw new OptionError(`${name} must be at least ${MIN_ADMIN_SECRET_LENGTH} visible ASCII characters without spaces (try: openssl rand -hex 16)`);
  }
});

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

function option<V>(def: OptionDef<V>): OptionDef<V> {
  return def;
}

/** The table. Its order is the order of --help. */
export const SERVE_OPTIONS = {
  port: option({ section: 'Listening', kind: whole('N', '', 0, 65535), default: 8080, help: 'TCP port; 0: any free one' }),
  host: option({
    section: 'Listening',
    kind: text('ADDRESS', (value, name) => {
      if (value === '') throw new OptionError(`${name} must be an address such as 127.0.0.1, 0.0.0.0 or ::`);
    }),
    default: '127.0.0.1',
    help: 'address to listen on; 0.0.0.0 or :: for every interface (see --admin-secret)',
  }),
  trustProxy: option({
    section: 'Listening',
    kind: trustProxy,
    help: "behind proxies: believe X-Forwarded-For and Forwarded from them, for the client's address in logs and the inspector. A number of proxies in front (1: one load balancer), their addresses or CIDRs (10.0.0.0/8, loopback, uniquelocal), or true for every hop. Default: the headers are ignored (anyone can send them)",
  }),
  tlsCert: option({ section: 'Listening', kind: text('FILE'), help: 'PEM certificate: serve https and wss (with --tls-key)' }),
  tlsKey: option({ section: 'Listening', kind: text('FILE'), help: 'PEM private key of --tls-cert' }),
  redis: option({
    section: 'Listening',
    kind: text('URL', (value, name) => {
      if (!/^rediss?:\/\//.test(value)) throw new OptionError(`${name} must be a redis:// or rediss:// URL, not '${value}'`);
    }),
    help: 'redis://[:password@]host[:port][/db] (rediss:// for TLS): share channels, history and presence with every node on the same Redis. Without it they live in this process and are lost on restart',
  }),
  redisCluster: option({
    section: 'Listening',
    kind: text('URLS', (value, name) => {
      const seeds = value.split(',').filter((seed) => seed.trim() !== '');
      if (seeds.length === 0 || seeds.some((seed) => !/^rediss?:\/\/[^,]+$/.test(seed.trim()))) {
        throw new OptionError(`${name} must be redis:// or rediss:// URLs of cluster nodes separated by commas, not '${value}'`);
      }
    }),
    help: 'redis://n1:7000,redis://n2:7001 (some nodes of a Redis Cluster, 7+, or Valkey; the first URL\'s password and TLS apply to all): as --redis, with each channel on its shard and sharded pub/sub',
  }),
  redisNodeTtl: option({
    section: 'Listening',
    kind: ms(100),
    default: DEFAULT_NODE_TTL,
    help: "with --redis: how long a node that stopped without saying goodbye (crashed, killed, cut off from Redis) stays present; the other nodes announce its members' leaves, and drop its subscriber counts, within this plus a third of it (the heartbeat). Shorter forgets a crash sooner, at more Redis traffic",
  }),
  redisDurable: option({
    section: 'Listening',
    kind: toggle,
    default: false,
    help: "with --redis: Redis loses no acknowledged write across a restart or failover (appendfsync always, replicas in sync through WAIT), so channels keep their epochs. Default: after a restart or failover each channel's epoch ends and resubscribers get recovered: false, since a snapshot or promoted replica may lack the newest messages, whose offsets would be reused",
  }),
  workers: option({
    section: 'Listening',
    kind: workerCountKind,
    default: 1,
    help: "worker processes behind the one port (Node's cluster module), sharing channels through --redis, which more than one needs; 'auto': one per core. A worker that dies is restarted; SIGTERM drains them all. --max-connections is shared out among them",
  }),
  logLevel: option({ section: 'Listening', kind: choice(LOG_LEVELS, 'LEVEL'), default: 'info' as LogLevel, help: 'debug (every message), info (connections), warn, error or silent' }),

  origins: option({
    section: 'Browsers and operators',
    kind: origins,
    flag: 'origin',
    default: [],
    help: "a web page origin (https://app.example) allowed on /echo and /ws besides the server's own; repeat for several. '*' allows every site: unsafe once anything authenticates by cookie. Clients that send no Origin (not browsers) are always accepted",
  }),
  adminSecret: option({
    section: 'Browsers and operators',
    kind: secret,
    help: 'required by the inspector and /metrics (Authorization: Bearer SECRET, or the inspector\'s sign-in). Prefer the variable HOTLINE_ADMIN_SECRET: command lines are visible to other users',
  }),
  inspector: option({
    section: 'Browsers and operators',
    kind: toggle,
    help: 'the inspector (/inspect, /inspect/ws). Default: on with an admin secret; without one, on when listening on loopback only, else off (--inspector opens it to anyone)',
  }),
  inspectorPreviews: option({
    section: 'Browsers and operators',
    kind: toggle,
    default: false,
    help: "show the start of each message's contents in the inspector (they may hold secrets)",
  }),
  metrics: option({ section: 'Browsers and operators', kind: toggle, help: '/metrics (Prometheus text); default as --inspector' }),

  maxConnections: option({
    section: 'Connections',
    kind: count(0),
    default: DEFAULT_MAX_CONNECTIONS,
    help: 'WebSocket connections at once, every endpoint together; past it 503 (0: no limit)',
  }),
  maxConnectionsPerAddress: option({
    section: 'Connections',
    kind: count(0),
    default: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    help: 'WebSocket connections at once from one client address (IPv6: one /64; behind --trust-proxy, the forwarded one); past it 429 (0: no limit)',
  }),
  connectionRatePerAddress: option({
    section: 'Connections',
    kind: rateOrOff,
    default: DEFAULT_CONNECTION_RATE_PER_ADDRESS,
    help: 'new WebSocket connections per second from one client address, and the burst above it; past it 429 (0: no limit)',
  }),
  maxPayload: option({
    section: 'Connections',
    kind: bytes(0),
    help: 'largest message, after decompression; past it close 1009 (0: no limit). Default: 1 MiB on /echo; on /ws what the largest hotline.v1 request needs (256 KiB, more with a larger --max-data-length)',
  }),
  deflate: option({ section: 'Connections', kind: toggle, default: true, help: 'accept permessage-deflate when a client offers it' }),
  handshakeTimeout: option({
    section: 'Connections',
    kind: ms(1),
    default: DEFAULT_HANDSHAKE_TIMEOUT,
    help: 'from accepting a connection (TLS included) to a complete request; then it is closed',
  }),
  heartbeatInterval: option({
    section: 'Connections',
    kind: ms(0),
    default: DEFAULT_HEARTBEAT_INTERVAL,
    help: 'ping every connection this often; one silent since the last ping is cut (0: off)',
  }),
  idleTimeout: option({ section: 'Connections', kind: ms(0), default: DEFAULT_IDLE_TIMEOUT, help: 'close 1001 a connection that sent nothing for this long (0: off)' }),
  messageTimeout: option({
    section: 'Connections',
    kind: ms(0),
    default: DEFAULT_MESSAGE_TIMEOUT,
    help: 'a frame or fragmented message must end this long after its first byte; else close 1008 (0: off)',
  }),
  inflateRate: option({
    section: 'Connections',
    kind: bytes(0),
    default: DEFAULT_INFLATE_RATE,
    help: 'bytes a connection may inflate (permessage-deflate) per second; past it reading from it pauses (0: no limit)',
  }),
  closeTimeout: option({ section: 'Connections', kind: ms(1), default: DEFAULT_CLOSE_TIMEOUT, help: "wait for the peer's close frame this long, then drop the socket" }),
  shutdownTimeout: option({ section: 'Connections', kind: ms(0), default: DEFAULT_SHUTDOWN_TIMEOUT, help: 'on SIGTERM/SIGINT, wait this long for clients to answer 1001' }),
  reconnectWindow: option({
    section: 'Connections',
    kind: whole('MS', 'milliseconds', 0, MAX_RECONNECT_WINDOW, (n) => `${n} ms`),
    default: DEFAULT_RECONNECT_WINDOW,
    help: "on SIGTERM/SIGINT, the 1001 close asks clients to spread their reconnects over this long (the SDK waits a random time within it), so a rolling deploy does not bring a node's clients to the others at once (0: no hint)",
  }),
  backpressureLimit: option({ section: 'Connections', kind: bytes(1), default: DEFAULT_BACKPRESSURE_LIMIT, help: 'unsent bytes a connection may buffer; past it reading from it pauses and --slow-consumer applies' }),
  slowConsumer: option({
    section: 'Connections',
    kind: choice(['drop', 'close', 'try-again-later'] as const, 'POLICY') as Kind<SlowConsumerPolicy>,
    help: "past --backpressure-limit: drop sends to it, close it with 1008, or close it with 1013 (try-again-later: the SDK reconnects and recovers). Default: drop on /echo, try-again-later on /ws, where a dropped message would leave a hole",
  }),

  publishRate: option({ section: 'Channels (/ws)', kind: rate, default: HUB_DEFAULTS.publishRate, help: 'publishes per second per connection, and the burst above it; past it rate_limited' }),
  subscribeRate: option({ section: 'Channels (/ws)', kind: rate, default: HUB_DEFAULTS.subscribeRate, help: 'subscribes per second per connection, and the burst (a reconnecting client resubscribes at once)' }),
  rpcRate: option({ section: 'Channels (/ws)', kind: rate, default: HUB_DEFAULTS.rpcRate, help: 'rpc calls per second per connection, and the burst' }),
  historyRate: option({ section: 'Channels (/ws)', kind: rate, default: ARRIVAL_LIMITS.history.limit, help: 'history requests per second per connection, and the burst' }),
  presenceRate: option({ section: 'Channels (/ws)', kind: rate, default: ARRIVAL_LIMITS.presence.limit, help: 'presence requests per second per connection, and the burst' }),
  unsubscribeRate: option({ section: 'Channels (/ws)', kind: rate, default: ARRIVAL_LIMITS.unsub.limit, help: 'unsubscribes per second per connection, and the burst' }),
  pingRate: option({ section: 'Channels (/ws)', kind: rate, default: ARRIVAL_LIMITS.ping.limit, help: 'hotline.v1 pings per second per connection, and the burst' }),
  authRate: option({ section: 'Channels (/ws)', kind: rate, default: ARRIVAL_LIMITS.auth.limit, help: 'auth requests per second per connection, and the burst' }),
  maxPendingRequests: option({
    section: 'Channels (/ws)',
    kind: count(1),
    default: DEFAULT_MAX_PENDING_REQUESTS,
    help: 'requests of one connection waiting for their answer; past it the connection is not read until half are answered',
  }),
  maxPendingBytes: option({
    section: 'Channels (/ws)',
    kind: whole('CHARS', 'characters', 1),
    default: DEFAULT_MAX_PENDING_BYTES,
    help: 'the text of those requests together; past it likewise',
  }),
  maxHistoryAnswerBytes: option({
    section: 'Channels (/ws)',
    kind: bytes(1),
    default: DEFAULT_MAX_HISTORY_ANSWER_BYTES,
    help: 'largest history answer, as JSON; longer histories are read in pages (more, before)',
  }),
  presenceGrace: option({
    section: 'Channels (/ws)',
    kind: ms(0),
    default: HUB_DEFAULTS.presenceGrace,
    help: 'a disconnected client stays present this long: a reconnect with the same client id within it is neither a leave nor a join (0: leave at once)',
  }),
  joinLeave: option({
    section: 'Channels (/ws)',
    kind: toggle,
    default: HUB_DEFAULTS.joinLeave,
    help: "push joins and leaves to a channel's subscribers (a namespace's joinLeave says otherwise for its channels). Each is a frame to every subscriber: off for channels of thousands, where presence still answers and state updates still go out",
  }),
  maxPresenceMembers: option({
    section: 'Channels (/ws)',
    kind: count(1),
    default: HUB_DEFAULTS.maxPresenceMembers,
    help: 'members a presence answer lists; past it the first ones, the count of all, and truncated: true',
  }),
  maxPresenceStateLength: option({
    section: 'Channels (/ws)',
    kind: whole('CHARS', 'characters', 1),
    default: HUB_DEFAULTS.maxPresenceStateLength,
    help: "a client's presence state on a channel, as JSON text; past it too_large",
  }),
  maxSubscriptions: option({ section: 'Channels (/ws)', kind: count(1), default: HUB_DEFAULTS.maxSubscriptions, help: 'channels one connection may subscribe to; past it too_large' }),
  maxDataLength: option({
    section: 'Channels (/ws)',
    kind: whole('CHARS', 'characters', 1),
    default: HUB_DEFAULTS.maxDataLength,
    help: "a publish's data, as JSON text; past it too_large",
  }),
  maxJsonDepth: option({ section: 'Channels (/ws)', kind: count(2), default: DEFAULT_WIRE_LIMITS.maxJsonDepth, help: 'nesting of objects and arrays in a request; deeper: bad_request' }),
  abuseLimit: option({
    section: 'Channels (/ws)',
    kind: count(1),
    default: HUB_DEFAULTS.abuseLimit,
    help: `bad_request and rate_limited answers within --abuse-window before close ${ChannelCloseCode.PolicyViolation}`,
  }),
  abuseWindow: option({ section: 'Channels (/ws)', kind: ms(1), default: HUB_DEFAULTS.abuseWindow, help: 'the window of --abuse-limit' }),

  historySize: option({ section: 'Channel state (every engine)', kind: count(0), default: DEFAULT_HISTORY_SIZE, help: 'messages kept per channel for history and recovery (0: none)' }),
  historyTtl: option({ section: 'Channel state (every engine)', kind: ms(0), default: DEFAULT_HISTORY_TTL, help: 'how long a message stays in history (0: no limit)' }),
  idempotencyWindow: option({ section: 'Channel state (every engine)', kind: ms(1), default: DEFAULT_IDEMPOTENCY_WINDOW, help: 'how long a publish key is remembered' }),
  maxHistoryBytes: option({ section: 'Channel state (memory engine)', kind: bytes(1), default: DEFAULT_MAX_HISTORY_BYTES, help: 'history and publish keys kept across all channels; past it the oldest go first (recovering from before them: recovered false)' }),
  maxChannels: option({
    section: 'Channel state (memory engine)',
    kind: count(1),
    default: DEFAULT_MAX_CHANNELS,
    help: 'channels kept; past it the least recently published one nobody uses is forgotten',
  }),
};

export type ServeOptionKey = keyof typeof SERVE_OPTIONS;
type ValueOf<D> = D extends OptionDef<infer V> ? V : never;
/** What the options say: every key given or defaulted; the rest (no default) undefined. */
export type ServeConfig = { [K in ServeOptionKey]: ValueOf<(typeof SERVE_OPTIONS)[K]> | undefined };

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function flagOf(key: ServeOptionKey): string {
  return SERVE_OPTIONS[key].flag ?? kebab(key);
}

export function envOf(key: ServeOptionKey): string {
  return `HOTLINE_${kebab(key).replace(/-/g, '_').toUpperCase()}`;
}

/** The options' keys, in the table's order. */
export const SERVE_OPTION_KEYS = Object.keys(SERVE_OPTIONS) as ServeOptionKey[];

/** Words of `text` in lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** One line of --help: a section heading is printed where it changes. */
export interface HelpEntry {
  section: string;
  flag: string;
  kind: Kind<unknown>;
  help: string;
  default?: unknown;
}

/** Entries of --help in columns: the flag and its placeholder, then the text wrapped, with the default. */
export function describeEntries(entries: readonly HelpEntry[]): string {
  const lines: string[] = [];
  let section: string | null = null;
  const column = 30;
  for (const entry of entries) {
    if (entry.section !== section) {
      section = entry.section;
      lines.push('', `${section}:`);
    }
    const { flag, kind } = entry;
    const usage = `  ${kind.arg === undefined ? `--${flag}, --no-${flag}` : `--${flag} ${kind.arg}`}`;
    const empty = entry.default === undefined || (Array.isArray(entry.default) && entry.default.length === 0);
    const text = wrap(`${entry.help}${empty ? '' : ` [default: ${kind.show(entry.default)}]`}`, 98 - column);
    if (usage.length >= column) lines.push(usage);
    else lines.push(usage.padEnd(column) + text.shift()!);
    for (const line of text) lines.push(' '.repeat(column) + line);
  }
  return lines.join('\n') + '\n';
}

/** The options part of `hotline serve --help`: every option, its unit and its default. */
export function describeServeOptions(): string {
  return describeEntries(
    SERVE_OPTION_KEYS.map((key) => {
      const def = SERVE_OPTIONS[key] as OptionDef<unknown>;
      return { section: def.section, flag: flagOf(key), kind: def.kind, help: def.help, default: def.default };
    }),
  );
}
