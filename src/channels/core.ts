import type { ErrorCode } from '../wire/index.js';
import type { ChannelRulebook } from './access.js';
import type { Broker, PresenceManager } from './engine.js';
import type { ChannelClient, ChannelHubOptions, RequestContext } from './hub-options.js';
import type { ChannelMetrics } from './metrics.js';
import type { Session } from './session.js';

/** What the hub's parts share: its options, the engine's two parts, its counters and clock. */
export interface HubCore<A> {
  readonly options: ChannelHubOptions<A>;
  /** The rules of each channel (schema, presence, publish rate). */
  readonly rules: ChannelRulebook;
  readonly broker: Broker;
  readonly presence: PresenceManager;
  readonly metrics: ChannelMetrics;
  readonly now: () => number;
  /** An error that is not the peer's fault (a hook or handler threw): `onError`, or the console. */
  report(error: unknown, context: RequestContext<A>): void;
  /** A connection the hub closed itself (abuse, expiry, too slow): its subscriptions and presence go. */
  disconnect(client: ChannelClient<A>): void;
  /** Drops a subscription the client did not ask to drop, and tells it so with an `unsub` push (false: there was none). */
  endSubscription(session: Session<A>, channel: string, code: ErrorCode, message: string): boolean;
}
