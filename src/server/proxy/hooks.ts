/**
 * The proxy hooks of `hotline serve` (ProxyConfig): on connect, subscribe, publish and rpc
 * the server asks the app's backend over HTTP (backend.ts), checks its answer (answers.ts)
 * and carries it out. The hooks add to the server's own rules (a token's identity, the
 * namespaces): those decide first, and what they refuse never reaches the backend.
 *
 * A backend that is busy, slow, down or answers wrongly never lets a request vanish: the
 * client is answered `internal` (which the SDK retries for a subscribe) with a message
 * saying so, an upgrade is refused 503 (502 for a wrong answer), and the server logs why.
 */
import { ChannelError, type ChannelIdentity, type ChannelProxy, type RequestContext } from '../../channels/index.js';
import type { UpgradeRejection, UpgradeRequest } from '../../node/server.js';
import type { Json, JsonObject } from '../../wire/index.js';
import type { ProxyConfig, ProxyEndpointConfig, TokenClaims } from '../config/sections.js';
import type { Logger } from '../log.js';
import type { PrometheusText } from '../metrics.js';
import { connectAnswer, publishAnswer, rpcAnswer, subscribeAnswer, type ConnectRequest, type ProxyRequestBase } from './answers.js';
import { Backend, BackendFailure, PROXY_DEFAULTS } from './backend.js';

export type HookName = 'connect' | 'subscribe' | 'publish' | 'rpc';

/** The upgrade headers passed on when a hook lists none. */
export const DEFAULT_PROXY_HEADERS: readonly string[] = ['cookie', 'authorization', 'origin', 'user-agent'];

/** How a connection was let in, before the connect hook (a token's identity, or anonymous). */
export type Authenticate = (req: UpgradeRequest, client: string) => Promise<ChannelIdentity<unknown> | { reject: UpgradeRejection }>;

interface Hook {
  url: URL;
  timeout: number;
  headers: readonly string[];
}

export class ProxyHooks {
  readonly backend: Backend;
  /** Calls made, by hook; failed ones by hook and kind (`subscribe timeout`), for /metrics. */
  readonly calls = new Map<HookName, number>();
  readonly failures = new Map<string, number>();
  private readonly hooks: Partial<Record<HookName, Hook>>;
  /** Failures logged per hook and kind in the current second, so a flood of them is not a flood of log lines. */
  private logged = new Map<string, number>();
  private logSecond = 0;

  constructor(
    config: ProxyConfig,
    private readonly logger: Logger,
    defaults: { maxAnswerBytes?: number } = {},
  ) {
    this.backend = new Backend({
      maxInFlight: config.maxInFlight ?? PROXY_DEFAULTS.maxInFlight,
      maxInFlightPerConnection: config.maxInFlightPerConnection ?? PROXY_DEFAULTS.maxInFlightPerConnection,
      maxAnswerBytes: config.maxAnswerBytes ?? defaults.maxAnswerBytes ?? PROXY_DEFAULTS.maxAnswerBytes,
    });
    const hooks: Partial<Record<HookName, Hook>> = {};
    for (const name of ['connect', 'subscribe', 'publish', 'rpc'] as const) {
      const endpoint: ProxyEndpointConfig | undefined = config[name];
      if (endpoint === undefined) continue;
      const url = new URL(endpoint.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`proxy.${name}.url must be an http: or https: URL, not ${endpoint.url}`);
      hooks[name] = {
        url,
        timeout: endpoint.timeout ?? PROXY_DEFAULTS.timeout,
        headers: (endpoint.headers ?? DEFAULT_PROXY_HEADERS).map((h) => h.toLowerCase()),
      };
    }
    this.hooks = hooks;
  }

  /** The upgrade headers some hook passes on: what /ws keeps of each connection's request. */
  get keepHeaders(): string[] {
    const names = new Set<string>();
    for (const name of ['subscribe', 'publish', 'rpc'] as const) for (const header of this.hooks[name]?.headers ?? []) names.add(header);
    return [...names];
  }

  /** The hub's side: the subscribe, publish and rpc hooks configured (undefined when none is). */
  channelProxy(): ChannelProxy<unknown> | undefined {
    const { subscribe, publish, rpc } = this.hooks;
    if (subscribe === undefined && publish === undefined && rpc === undefined) return undefined;
    const proxy: ChannelProxy<unknown> = {};
    if (subscribe !== undefined) {
      proxy.subscribe = async (context, channel) => {
        const answer = await this.ask('subscribe', subscribe, context, { channel }, subscribeAnswer);
        if (!answer.allow) throw new ChannelError(answer.code ?? 'forbidden', answer.reason ?? `the backend refused the subscription to ${channel}`);
      };
    }
    if (publish !== undefined) {
      proxy.publish = async (context, channel, data) => {
        const answer = await this.ask('publish', publish, context, { channel, data: data as Json }, publishAnswer);
        if (!answer.allow) throw new ChannelError(answer.code ?? 'forbidden', answer.reason ?? `the backend refused the publish to ${channel}`);
        return answer.data === undefined ? undefined : { data: answer.data };
      };
    }
    if (rpc !== undefined) {
      proxy.rpc = async (context, method, params) => {
        const answer = await this.ask('rpc', rpc, context, params === undefined ? { method } : { method, params }, rpcAnswer);
        if ('error' in answer) throw new ChannelError(answer.error.code, answer.error.message ?? `${method} failed`);
        return answer.result;
      };
    }
    return proxy;
  }

  /**
   * The connect hook after `before` (a token's check; default: anonymous) let the upgrade
   * in, or `before` alone when no connect hook is configured. The backend's allow keeps
   * what `before` proved, save the fields it names (user, info, expiresAt).
   */
  authenticate(before?: Authenticate): Authenticate | undefined {
    const hook = this.hooks.connect;
    if (hook === undefined) return before;
    return async (req, client) => {
      const prior = before === undefined ? { auth: undefined } : await before(req, client);
      if ('reject' in prior) return prior;
      const body: ConnectRequest = {
        ...base(client, prior.user, req.headers, hook.headers),
        url: req.url ?? '/',
        address: req.clientAddress ?? req.socket.remoteAddress ?? '',
      };
      let answer;
      this.count('connect');
      try {
        answer = connectAnswer(await this.backend.post(hook.url, body, hook.timeout));
      } catch (error) {
        const failure = this.failed('connect', hook, error);
        const status = failure.answeredWrongly ? 502 : 503;
        return { reject: { status, message: refusalText('connect', hook, failure), headers: status === 503 ? { 'Retry-After': '1' } : {} } };
      }
      if (!answer.allow) return { reject: { status: answer.status ?? 403, message: answer.reason ?? 'the backend refused the connection' } };
      if (answer.user === undefined && answer.info === undefined && answer.expiresAt === undefined) return prior;
      const user = answer.user ?? prior.user;
      const claims = prior.auth as TokenClaims | undefined;
      const info = (answer.info ?? claims?.info) as JsonObject | undefined;
      const expiresAt = answer.expiresAt ?? prior.expiresAt;
      const identity: ChannelIdentity<unknown> = { ...prior };
      if (user !== undefined) {
        // As a token's identity is: its claims as `auth`, `sub` the user and presence member.
        identity.auth = { ...claims, sub: user, ...(info === undefined ? {} : { info }), ...(expiresAt === undefined ? {} : { exp: Math.floor(expiresAt / 1000) }) };
        identity.user = user;
        identity.member = info === undefined ? { id: user } : { id: user, info };
      }
      if (expiresAt !== undefined) identity.expiresAt = expiresAt;
      return identity;
    };
  }

  close(): void {
    this.backend.close();
  }

  /** The proxy's figures for /metrics. */
  metrics(text: PrometheusText): void {
    const failures = [...this.failures].map(([key, n]): [Record<string, string>, number] => {
      const [hook, kind] = key.split(' ') as [string, string];
      return [{ hook, kind }, n];
    });
    text
      .family('hotline_proxy_calls_total', 'counter', 'Proxy hook calls to the backend, by hook (refused ones included).', [...this.calls].map(([hook, n]) => [{ hook }, n]))
      .family('hotline_proxy_failures_total', 'counter', 'Proxy hook calls that gave no usable answer, by hook and kind.', failures)
      .family('hotline_proxy_in_flight', 'gauge', 'Proxy hook calls in flight now.', [[{}, this.backend.inFlight]]);
  }

  private count(name: HookName): void {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
  }

  /** POSTs one hub request's hook and checks the answer; a failure becomes the `internal` ChannelError the client sees. */
  private async ask<T>(name: HookName, hook: Hook, context: RequestContext<unknown>, fields: Record<string, Json>, check: (answer: unknown) => T): Promise<T> {
    const client = context.client;
    const body = { ...base(client.id, context.user, client.headers ?? {}, hook.headers), ...fields };
    this.count(name);
    try {
      return check(await this.backend.post(hook.url, body, hook.timeout, client.id));
    } catch (error) {
      throw new ChannelError('internal', refusalText(name, hook, this.failed(name, hook, error)));
    }
  }

  /** Logs a failed call (at most a few lines a second per hook and kind) and returns it as a BackendFailure. */
  private failed(name: HookName, hook: Hook, error: unknown): BackendFailure {
    const failure = error instanceof BackendFailure ? error : new BackendFailure('malformed', String(error));
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.logSecond) {
      this.logSecond = second;
      this.logged = new Map();
    }
    const key = `${name} ${failure.kind}`;
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
    const count = (this.logged.get(key) ?? 0) + 1;
    this.logged.set(key, count);
    if (count <= LOG_LINES_PER_SECOND) {
      this.logger.log(failure.answeredWrongly ? 'error' : 'warn', 'proxy failed', { hook: name, url: hook.url.href, kind: failure.kind, detail: failure.message });
    }
    return failure;
  }
}

/** Log lines per second per hook and kind of failure: enough to see it, too few to flood the log. */
const LOG_LINES_PER_SECOND = 5;

function base(client: string, user: string | undefined, from: Readonly<Record<string, string | string[] | undefined>>, names: readonly string[]): ProxyRequestBase {
  const headers: Record<string, string> = {};
  for (const name of names) {
    const value = from[name];
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return user === undefined ? { client, transport: 'websocket', headers } : { client, transport: 'websocket', user, headers };
}

/** What the client (or the refused upgrade) is told: what went wrong, not the backend's address or its answer. */
function refusalText(name: HookName, hook: Hook, failure: BackendFailure): string {
  switch (failure.kind) {
    case 'busy':
      return `the backend is busy (too many ${name} calls in flight); try again`;
    case 'timeout':
      return `the backend did not answer ${name} within ${hook.timeout} ms`;
    case 'unreachable':
      return `the backend could not be reached for ${name}`;
    default:
      return `the backend's answer to ${name} was not valid`;
  }
}
