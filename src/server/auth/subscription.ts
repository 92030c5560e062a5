/**
 * Subscription tokens: a JWT the backend signs (with the connection tokens' keys) to let
 * one user into one channel, sent with the `sub` request. It must carry `channel` (equal
 * to the channel subscribed) and `exp` (a ticket without an end would open the channel for
 * good to whoever saw it once). Its `sub` must equal the connection's user; a token without
 * `sub` is taken only by an anonymous connection: a backend that knows the user binds the
 * token to them, so a token leaked from one user's page cannot let another signed-in user
 * in, while a guest (no user to bind to) can still be given a channel, for as long as `exp`.
 */
import { ChannelError } from '../../channels/index.js';
import type { SubscriptionTokenVerifier } from '../config/sections.js';
import { TokenError } from './errors.js';
import type { TokenVerifier } from './verify.js';

/** The subscription-token check `sub` requests of `token` namespaces ask (see the file's header). */
export class SubscriptionTokens implements SubscriptionTokenVerifier {
  constructor(private readonly verifier: TokenVerifier) {}

  /** Resolves when the token lets `user` into `channel`; a ChannelError (`unauthorized`, `forbidden`, `internal`) otherwise. */
  async verify(token: string, channel: string, user: string | undefined): Promise<void> {
    let claims;
    try {
      claims = await this.verifier.verify(token, { required: ['exp', 'channel'] });
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      if (error.refusal === 'keys_unavailable') throw new ChannelError('internal', `unavailable: ${error.message}`);
      throw new ChannelError('unauthorized', `invalid subscription token: ${error.message}`);
    }
    if (claims['channel'] !== channel) throw new ChannelError('forbidden', `the subscription token is not for ${channel}`);
    const sub = claims.sub;
    if (sub === undefined) {
      if (user !== undefined) throw new ChannelError('forbidden', `the subscription token has no "sub": it is for anonymous connections, and this one is ${user}`);
    } else if (sub !== user) {
      throw new ChannelError('forbidden', user === undefined ? 'the subscription token is for a signed-in user' : `the subscription token is not for ${user}`);
    }
  }
}
