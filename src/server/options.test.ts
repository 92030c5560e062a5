import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS as HUB_DEFAULTS } from '../channels/hub-options.js';
import { DEFAULT_BACKPRESSURE_LIMIT } from '../node/connection-context.js';
import { DEFAULT_CLOSE_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT } from '../node/timeouts.js';
import { ARRIVAL_LIMITS, DEFAULT_MAX_PENDING_BYTES, DEFAULT_MAX_PENDING_REQUESTS } from '../channels/intake.js';
import { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL, DEFAULT_IDEMPOTENCY_WINDOW, DEFAULT_MAX_CHANNELS, DEFAULT_MAX_HISTORY_BYTES } from '../channels/index.js';
import { DEFAULT_INFLATE_RATE } from '../node/inflate-budget.js';
import { DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_IDLE_TIMEOUT, DEFAULT_MESSAGE_TIMEOUT } from '../node/server.js';
import { DEFAULT_NODE_TTL } from '../redis/defaults.js';
import { DEFAULT_MAX_HISTORY_ANSWER_BYTES, DEFAULT_WIRE_LIMITS } from '../wire/index.js';
import { parseServeArgs } from './config/load.js';
import { describeServeOptions, envOf, flagOf, OptionError, SERVE_OPTIONS, type ServeOptionKey } from './options.js';
import { DEFAULT_CONNECTION_RATE_PER_ADDRESS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_RECONNECT_WINDOW, DEFAULT_SHUTDOWN_TIMEOUT } from './serve.js';

const KEYS = Object.keys(SERVE_OPTIONS) as ServeOptionKey[];

function error(args: string[], env: Record<string, string> = {}): string {
  try {
    parseServeArgs(args, env);
  } catch (caught) {
    assert.ok(caught instanceof OptionError, `an OptionError, not ${String(caught)}`);
    assert.equal(caught.code, 'BAD_OPTION');
    assert.ok(!caught.message.includes('\n'), `one line: ${caught.message}`);
    return caught.message;
  }
  assert.fail(`${args.join(' ')} was accepted`);
}

test('without arguments: the defaults, which are the library constants', () => {
  const config = parseServeArgs([]);
  assert.deepEqual(config, {
    port: 8080,
    host: '127.0.0.1',
    trustProxy: undefined,
    tlsCert: undefined,
    tlsKey: undefined,
    redis: undefined,
    redisCluster: undefined,
    redisNodeTtl: DEFAULT_NODE_TTL,
    redisDurable: false,
    logLevel: 'info',
    origins: [],
    adminSecret: undefined,
    inspector: undefined,
    inspectorPreviews: false,
    metrics: undefined,
    maxConnections: DEFAULT_MAX_CONNECTIONS,
    maxConnectionsPerAddress: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    connectionRatePerAddress: DEFAULT_CONNECTION_RATE_PER_ADDRESS,
    // Per endpoint: each endpoint's own default applies (1 MiB and 'drop' on /echo, 256 KiB and 'try-again-later' on /ws).
    maxPayload: undefined,
    deflate: true,
    handshakeTimeout: DEFAULT_HANDSHAKE_TIMEOUT,
    heartbeatInterval: DEFAULT_HEARTBEAT_INTERVAL,
    idleTimeout: DEFAULT_IDLE_TIMEOUT,
    messageTimeout: DEFAULT_MESSAGE_TIMEOUT,
    inflateRate: DEFAULT_INFLATE_RATE,
    closeTimeout: DEFAULT_CLOSE_TIMEOUT,
    shutdownTimeout: DEFAULT_SHUTDOWN_TIMEOUT,
    reconnectWindow: DEFAULT_RECONNECT_WINDOW,
    workers: 1,
    backpressureLimit: DEFAULT_BACKPRESSURE_LIMIT,
    slowConsumer: undefined,
    publishRate: HUB_DEFAULTS.publishRate,
    subscribeRate: HUB_DEFAULTS.subscribeRate,
    rpcRate: HUB_DEFAULTS.rpcRate,
    historyRate: ARRIVAL_LIMITS.history.limit,
    presenceRate: ARRIVAL_LIMITS.presence.limit,
    unsubscribeRate: ARRIVAL_LIMITS.unsub.limit,
    pingRate: ARRIVAL_LIMITS.ping.limit,
    authRate: ARRIVAL_LIMITS.auth.limit,
    maxPendingRequests: DEFAULT_MAX_PENDING_REQUESTS,
    maxPendingBytes: DEFAULT_MAX_PENDING_BYTES,
    maxHistoryAnswerBytes: DEFAULT_MAX_HISTORY_ANSWER_BYTES,
    maxSubscriptions: HUB_DEFAULTS.maxSubscriptions,
    maxDataLength: HUB_DEFAULTS.maxDataLength,
    presenceGrace: HUB_DEFAULTS.presenceGrace,
    joinLeave: HUB_DEFAULTS.joinLeave,
    maxPresenceMembers: HUB_DEFAULTS.maxPresenceMembers,
    maxPresenceStateLength: HUB_DEFAULTS.maxPresenceStateLength,
    maxJsonDepth: DEFAULT_WIRE_LIMITS.maxJsonDepth,
    abuseLimit: HUB_DEFAULTS.abuseLimit,
    abuseWindow: HUB_DEFAULTS.abuseWindow,
    historySize: DEFAULT_HISTORY_SIZE,
    historyTtl: DEFAULT_HISTORY_TTL,
    maxHistoryBytes: DEFAULT_MAX_HISTORY_BYTES,
    maxChannels: DEFAULT_MAX_CHANNELS,
    idempotencyWindow: DEFAULT_IDEMPOTENCY_WINDOW,
  });
  assert.equal(DEFAULT_MAX_CONNECTIONS, 10_000);
  assert.equal(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, 1000);
  assert.deepEqual(DEFAULT_CONNECTION_RATE_PER_ADDRESS, { perSecond: 100, burst: 1000 });
});

test('--connection-rate-per-address: a rate with a burst, or 0 / off for none, from a flag, a variable or a file', () => {
  assert.deepEqual(parseServeArgs(['--connection-rate-per-address', '5:20']).connectionRatePerAddress, { perSecond: 5, burst: 20 });
  assert.equal(parseServeArgs(['--connection-rate-per-address', '0']).connectionRatePerAddress, null, 'given as 0, not defaulted');
  assert.equal(parseServeArgs(['--connection-rate-per-address=off']).connectionRatePerAddress, null);
  assert.equal(parseServeArgs([], { HOTLINE_CONNECTION_RATE_PER_ADDRESS: '0' }).connectionRatePerAddress, null);
  const dir = mkdtempSync(join(tmpdir(), 'hotline-rate-'));
  try {
    for (const [json, expected] of [['0', null], ['"off"', null], ['"7:70"', { perSecond: 7, burst: 70 }], ['{ "perSecond": 3 }', { perSecond: 3 }]] as const) {
      const file = join(dir, 'hotline.json');
      writeFileSync(file, `{ "connectionRatePerAddress": ${json} }`);
      assert.deepEqual(parseServeArgs(['--config', file]).connectionRatePerAddress, expected, json);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => parseServeArgs(['--connection-rate-per-address', '-1']), /--connection-rate-per-address must be requests per second, optionally with a burst/);
});

test('every knob is read from its flag, as --x V and --x=V', () => {
  const config = parseServeArgs([
    '--port=9000',
    '--max-connections', '50',
    '--max-payload', '65536',
    '--handshake-timeout', '2500',
    '--heartbeat-interval', '0',
    '--idle-timeout=60000',
    '--close-timeout', '1000',
    '--shutdown-timeout', '0',
    '--backpressure-limit', '4096',
    '--slow-consumer', 'close',
    '--publish-rate', '10',
    '--subscribe-rate', '20:200',
    '--rpc-rate', '0.5:2',
    '--max-subscriptions', '10',
    '--max-data-length', '1000',
    '--max-json-depth', '8',
    '--abuse-limit', '5',
    '--abuse-window', '500',
    '--no-deflate',
    '--origin', 'https://app.example',
    '--origin=https://other.example:8443',
    '--no-inspector',
    '--metrics',
    '--inspector-previews',
  ]);
  assert.equal(config.port, 9000);
  assert.equal(config.maxConnections, 50);
  assert.equal(config.maxPayload, 65536);
  assert.equal(config.handshakeTimeout, 2500);
  assert.equal(config.heartbeatInterval, 0);
  assert.equal(config.idleTimeout, 60000);
  assert.equal(config.closeTimeout, 1000);
  assert.equal(config.shutdownTimeout, 0);
  assert.equal(config.backpressureLimit, 4096);
  assert.equal(config.slowConsumer, 'close');
  assert.deepEqual(config.publishRate, { perSecond: 10 });
  assert.deepEqual(config.subscribeRate, { perSecond: 20, burst: 200 });
  assert.deepEqual(config.rpcRate, { perSecond: 0.5, burst: 2 });
  assert.equal(config.maxSubscriptions, 10);
  assert.equal(config.maxDataLength, 1000);
  assert.equal(config.maxJsonDepth, 8);
  assert.equal(config.abuseLimit, 5);
  assert.equal(config.abuseWindow, 500);
  assert.equal(config.deflate, false);
  assert.deepEqual(config.origins, ['https://app.example', 'https://other.example:8443'], 'lists add up');
  assert.equal(config.inspector, false);
  assert.equal(config.metrics, true);
  assert.equal(config.inspectorPreviews, true);
});

test('a repeated option: the last one wins, for switches too', () => {
  assert.equal(parseServeArgs(['--port', '1', '--port', '2']).port, 2);
  assert.equal(parseServeArgs(['--inspector', '--no-inspector']).inspector, false);
  assert.equal(parseServeArgs(['--no-inspector', '--inspector']).inspector, true);
  assert.deepEqual(parseServeArgs(['--origin', '*']).origins, ['*']);
});

test('--trust-proxy: a number of proxies, true, or addresses and CIDRs that add up', () => {
  assert.equal(parseServeArgs(['--trust-proxy', '1']).trustProxy, 1);
  assert.equal(parseServeArgs(['--trust-proxy=true']).trustProxy, true);
  assert.deepEqual(parseServeArgs(['--trust-proxy', '10.0.0.0/8, loopback', '--trust-proxy', '::1']).trustProxy, ['10.0.0.0/8', 'loopback', '::1']);
  assert.equal(error(['--trust-proxy', 'proxy.example']), "--trust-proxy: 'proxy.example' is not an IP address, a CIDR range or loopback/linklocal/uniquelocal (a number of proxies, 'true', or addresses and CIDRs)");
  assert.equal(error(['--trust-proxy', '10.0.0.0/33']), "--trust-proxy: '10.0.0.0/33' has an invalid prefix length (a number of proxies, 'true', or addresses and CIDRs)");
});

test('bad values: one line naming the option, its unit and what was given', () => {
  const cases: Array<[args: string[], message: string]> = [
    [['--idle-timeout', '30s'], "--idle-timeout must be a whole number of milliseconds from 0 to 2147483647, not '30s'"],
    [['--handshake-timeout', '0'], "--handshake-timeout must be a whole number of milliseconds from 1 to 2147483647, not '0'"],
    [['--heartbeat-interval', '2147483648'], "--heartbeat-interval must be a whole number of milliseconds from 0 to 2147483647, not '2147483648'"],
    [['--max-payload', '1e6'], "--max-payload must be a whole number of bytes from 0 to 2147483647, not '1e6'"],
    [['--backpressure-limit', '0'], "--backpressure-limit must be a whole number of bytes from 1 to 2147483647, not '0'"],
    [['--max-connections', '-1'], "--max-connections must be a whole number from 0 to 2147483647, not '-1'"],
    [['--max-connections', ''], "--max-connections must be a whole number from 0 to 2147483647, not ''"],
    [['--port', '65536'], "--port must be a whole number from 0 to 65535, not '65536'"],
    [['--max-subscriptions', '0'], "--max-subscriptions must be a whole number from 1 to 2147483647, not '0'"],
    [['--max-json-depth', '1'], "--max-json-depth must be a whole number from 2 to 2147483647, not '1'"],
    [['--slow-consumer', 'kill'], "--slow-consumer must be one of drop, close, try-again-later, not 'kill'"],
    [['--log-level', 'loud'], "--log-level must be one of debug, info, warn, error, silent, not 'loud'"],
    [['--redis', 'localhost:6379'], "--redis must be a redis:// or rediss:// URL, not 'localhost:6379'"],
    [['--admin-secret', 'short'], '--admin-secret must be at least 16 visible ASCII characters without spaces (try: openssl rand -hex 16)'],
    [['--admin-secret', 'sixteen chars with spaces'], '--admin-secret must be at least 16 visible ASCII characters without spaces (try: openssl rand -hex 16)'],
    [['--tls-cert', 'c.pem'], '--tls-cert and --tls-key go together'],
  ];
  for (const [args, message] of cases) assert.equal(error(args), message);
  for (const bad of ['0', '-5', 'fast', '10:0', '10:', ':5', '10/20']) {
    assert.equal(error(['--publish-rate', bad]), `--publish-rate must be requests per second, optionally with a burst: 50 or 50:100, not '${bad}'`);
  }
  assert.match(error(['--origin', 'https://app.example/chat']), /^--origin: 'https:\/\/app\.example\/chat' is not an origin: no path, query or credentials \(did you mean 'https:\/\/app\.example'\?\), or '\*'$/);
  assert.match(error(['--origin', 'app.example']), /^--origin: 'app\.example' is not an origin/);
});

test('bad arguments: unknown options, missing values, values given to switches', () => {
  assert.equal(error(['--max-conections', '5']), 'unknown option --max-conections (hotline serve --help lists the options)');
  assert.equal(error(['--idle-timeout']), '--idle-timeout needs a value: --idle-timeout MS');
  assert.equal(error(['--no-deflate=yes']), '--no-deflate takes no value');
  assert.equal(error(['--no-port']), 'unknown option --no-port (hotline serve --help lists the options)');
  assert.equal(error(['serve']), "unexpected argument 'serve' (hotline serve --help lists the options)");
});

test('the admin secret also comes from HOTLINE_ADMIN_SECRET; the flag wins; an empty variable is unset', () => {
  const secret = 'a'.repeat(16);
  assert.equal(envOf('adminSecret'), 'HOTLINE_ADMIN_SECRET');
  assert.equal(parseServeArgs([], { HOTLINE_ADMIN_SECRET: secret }).adminSecret, secret);
  assert.equal(parseServeArgs(['--admin-secret', 'b'.repeat(20)], { HOTLINE_ADMIN_SECRET: secret }).adminSecret, 'b'.repeat(20));
  assert.equal(parseServeArgs([], { HOTLINE_ADMIN_SECRET: '' }).adminSecret, undefined);
  assert.equal(error([], { HOTLINE_ADMIN_SECRET: 'short' }), 'HOTLINE_ADMIN_SECRET must be at least 16 visible ASCII characters without spaces (try: openssl rand -hex 16)');
  // Every option reads its variable; a flag wins over it.
  assert.equal(parseServeArgs([], { HOTLINE_PORT: '1' }).port, 1);
  assert.equal(parseServeArgs(['--port', '2'], { HOTLINE_PORT: '1' }).port, 2);
  assert.equal(error([], { HOTLINE_PORT: 'x' }), "HOTLINE_PORT must be a whole number from 0 to 65535, not 'x'");
});

test('--help documents every option with its unit and default', () => {
  const help = describeServeOptions();
  for (const key of KEYS) {
    const def = SERVE_OPTIONS[key];
    const flag = flagOf(key);
    assert.ok(help.includes(def.kind.arg === undefined ? `--${flag}, --no-${flag}` : `--${flag} ${def.kind.arg}`), `--${flag} is in --help`);
  }
  assert.match(help, /--idle-timeout MS .*\n.*\[default: 120000 ms\]/);
  assert.match(help, /--max-connections N .*\n.*\[default: 10000\]/);
  assert.match(help, /--max-payload BYTES [^]*Default: 1 MiB on \/echo; on \/ws [^]*\(256 KiB/);
  assert.match(help, /--inflate-rate BYTES [^]*\[default: 4194304 = 4 MiB\]/);
  assert.match(help, /--publish-rate RATE\[:BURST\] .*\n.*\[default: 50:100\]/);
  for (const line of help.split('\n')) assert.ok(line.length <= 98, `under 99 columns: ${line}`);
});
