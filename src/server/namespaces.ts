/**
 * Namespaces (config/sections.ts) as the channel hub's rules and permission hooks: who may
 * subscribe, publish, read history and presence on each channel, its data's JSON Schema
 * (Ajv, compiled once per namespace, given to the hub as a Standard Schema), presence on or
 * off, a publish rate, and the engine's retention for its channels. With namespaces, a
 * channel in none is refused.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js';
import {
  ChannelError,
  type ChannelHubOptions,
  type ChannelRetention,
  type ChannelRules,
  type Permission,
  type RequestContext,
  type StandardSchemaV1,
} from '../channels/index.js';
import { ChannelRulebook } from '../channels/access.js';
import { keyPath } from './config/errors.js';
import { newAjv } from './config/schema.js';
import type { Access, NamespaceConfig, NamespacesConfig, SubscriptionTokenVerifier } from './config/sections.js';

/** A namespace as the hub's rules for its channels, with what the hooks need to decide. */
interface CompiledNamespace extends ChannelRules {
  pattern: string;
  config: NamespaceConfig;
}

/** What namespaces give the hub (rules and hooks) and the engine (retention). */
export interface NamespaceRules<A> extends Pick<ChannelHubOptions<A>, 'channels' | 'canSubscribe' | 'canPublish' | 'canReadHistory' | 'canReadPresence'> {
  /** The engine's `channelRetention`: a namespace's historySize and historyTtl. */
  retention(channel: string): ChannelRetention | undefined;
}

/** A JSON Schema, compiled once, as the Standard Schema the hub validates published data with. */
export function jsonSchemaRule(schema: Record<string, unknown>): StandardSchemaV1 {
  const validate: ValidateFunction = newAjv().compile(schema);
  return {
    '~standard': {
      version: 1,
      vendor: 'ajv',
      validate(value) {
        if (validate(value)) return { value };
        return {
          issues: (validate.errors ?? []).map((error) => ({
            message: error.message ?? 'is not valid',
            path: error.instancePath === '' ? [] : error.instancePath.slice(1).split('/').map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~')),
          })),
        };
      },
    },
  };
}

/** Whether `channel` is among a token's `channels` claim (names, or prefixes ending in `*`). */
function claims(auth: unknown, channel: string): boolean {
  const listed = auth !== null && typeof auth === 'object' ? (auth as { channels?: unknown }).channels : undefined;
  if (!Array.isArray(listed)) return false;
  return listed.some((entry) => typeof entry === 'string' && (entry.endsWith('*') ? channel.startsWith(entry.slice(0, -1)) : entry === channel));
}

const authenticated = (auth: unknown): boolean => auth !== undefined && auth !== null;

/** The user of a connection now: a token's `sub`, else who the upgrade authenticated. */
function userOf<A>(context: RequestContext<A>): string | undefined {
  const sub = context.auth !== null && typeof context.auth === 'object' ? (context.auth as { sub?: unknown }).sub : undefined;
  return typeof sub === 'string' ? sub : context.client.user;
}

/**
 * Compiles namespaces; `tokens` checks subscription tokens (namespaces whose `subscribe` is
 * `token`: without one, those refuse every `sub` that is not let in by a claim).
 * @throws Error when a namespace's schema does not compile (the config loader reports it first).
 */
export function compileNamespaces<A>(config: NamespacesConfig, tokens?: SubscriptionTokenVerifier): NamespaceRules<A> {
  const channels: Record<string, CompiledNamespace> = {};
  for (const [pattern, namespace] of Object.entries(config)) {
    const rules: CompiledNamespace = { pattern, config: namespace };
    if (namespace.schema !== undefined) rules.schema = jsonSchemaRule(namespace.schema);
    if (namespace.stateSchema !== undefined) rules.stateSchema = jsonSchemaRule(namespace.stateSchema);
    if (namespace.presence === false) rules.presence = false;
    if (namespace.joinLeave !== undefined) rules.joinLeave = namespace.joinLeave;
    if (namespace.publishRate !== undefined) rules.publishRate = namespace.publishRate;
    channels[pattern] = rules;
  }
  // The hooks find a channel's namespace as the hub finds its rules: the longest match.
  const book = new ChannelRulebook(channels);
  const find = (channel: string): CompiledNamespace | undefined => book.for(channel) as CompiledNamespace | undefined;
  const namespaceOf = (channel: string): CompiledNamespace => {
    const found = find(channel);
    if (found === undefined) throw new ChannelError('forbidden', `${channel} is in no namespace of this server`);
    return found;
  };

  /** Decides one access level for one request; throws the refusal the client is told. */
  const decide = async (access: Access, context: RequestContext<A>, channel: string, action: string, ns: CompiledNamespace, token?: string): Promise<boolean> => {
    const where = `namespace ${keyPath([ns.pattern])}`;
    switch (access) {
      case 'anyone':
        return true;
      case 'server':
        throw new ChannelError('forbidden', `only the server may ${action} ${channel} (${where})`);
      case 'authenticated':
      case 'claim':
        if (!authenticated(context.auth)) throw new ChannelError('unauthorized', `authenticate to ${action} ${channel} (${where})`);
        if (access === 'authenticated' || claims(context.auth, channel)) return true;
        throw new ChannelError('forbidden', `your token's channels claim does not list ${channel} (${where})`);
      case 'token': {
        if (claims(context.auth, channel)) return true;
        // Beyond subscribing, 'token' means: subscribed, which took a valid token.
        if (token === undefined && action !== 'subscribe to') {
          if (context.isSubscribed?.(channel) === true) return true;
          throw new ChannelError('forbidden', `subscribe to ${channel} with a subscription token first (${where})`);
        }
        if (token === undefined) throw new ChannelError('unauthorized', `${channel} needs a subscription token (${where})`);
        if (tokens === undefined) throw new ChannelError('unauthorized', `this server checks no subscription tokens, so nobody may subscribe to ${channel} (${where})`);
        await tokens.verify(token, channel, userOf(context));
        return true;
      }
    }
  };

  const subscribeAccess = (ns: CompiledNamespace): Access => ns.config.subscribe ?? 'authenticated';
  return {
    channels,
    canSubscribe: (context, channel, token): Permission => {
      const ns = namespaceOf(channel);
      return decide(subscribeAccess(ns), context, channel, 'subscribe to', ns, token);
    },
    canPublish: (context, channel): Permission => {
      const ns = namespaceOf(channel);
      return decide(ns.config.publish ?? 'server', context, channel, 'publish to', ns);
    },
    canReadHistory: (context, channel): Permission => {
      const ns = namespaceOf(channel);
      return decide(ns.config.history ?? subscribeAccess(ns), context, channel, 'read the history of', ns);
    },
    canReadPresence: (context, channel): Permission => {
      const ns = namespaceOf(channel);
      return decide(ns.config.presenceRead ?? subscribeAccess(ns), context, channel, 'read the presence of', ns);
    },
    retention(channel) {
      const ns = find(channel)?.config;
      if (ns?.historySize === undefined && ns?.historyTtl === undefined) return undefined;
      return { historySize: ns.historySize, historyTtl: ns.historyTtl };
    },
  };
}

/** The engine's `channelRetention` for these namespaces, for an engine made apart from createApp (Redis). */
export function namespaceRetention(config: NamespacesConfig): (channel: string) => ChannelRetention | undefined {
  return compileNamespaces(config).retention;
}
