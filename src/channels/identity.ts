import { encodeOk } from '../wire/index.js';
import { ChannelError } from './channel-error.js';
import type { HubCore } from './core.js';
import { replaceMember } from './presence.js';
import type { Session } from './session.js';

/**
 * An `auth` request: `authenticateToken` proves a new identity (or refreshes the one
 * there is). Subscriptions the new identity may not read end, as the member that joined
 * them, before the presence member is replaced and the request answered.
 */
export async function authenticate<A>(core: HubCore<A>, session: Session<A>, id: number, token: string): Promise<void> {
  const check = core.options.authenticateToken;
  if (check === undefined) return session.fail(id, 'bad_request', 'this server does not take tokens over the connection');
  const identity = await check(token, session.context);
  if (session.closed) return;
  session.identify(identity);
  await recheckSubscriptions(core, session);
  if (session.closed) return;
  await replaceMember(core, session, identity.member);
  session.reply(encodeOk(id, identity.expiresAt === undefined ? {} : { expiresAt: identity.expiresAt }));
}

/**
 * Every subscription is asked of canSubscribe again as the new identity: the ones it no
 * longer allows end, and the client is told with an `unsub` push. A hook that throws ends
 * them too (with its code): a subscription is never kept on a failed check.
 */
async function recheckSubscriptions<A>(core: HubCore<A>, session: Session<A>): Promise<void> {
  const check = core.options.canSubscribe;
  if (check === undefined || session.subscriptions.size === 0) return;
  const context = session.context;
  const verdicts = await Promise.all(
    session.subscriptions.subscriptions().map(async ({ channel, token }): Promise<[string, ChannelError | null]> => {
      try {
        return [channel, (await check(context, channel, token)) ? null : new ChannelError('forbidden', `no longer allowed to read ${channel}`)];
      } catch (error) {
        if (error instanceof ChannelError) return [channel, error];
        core.report(error, context);
        return [channel, new ChannelError('internal', `could not check ${channel} again`)];
      }
    }),
  );
  for (const [channel, refusal] of verdicts) {
    if (refusal !== null && !session.closed) core.endSubscription(session, channel, refusal.code, refusal.message);
  }
}
