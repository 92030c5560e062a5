/**
 * JWT authentication for `hotline serve`, built from `token` in the configuration: one
 * verifier (the keys), the connection check (upgrade and `auth`), the subscription check.
 */
import type { SubscriptionTokenVerifier, TokenConfig } from '../config/sections.js';
import { ConnectionTokens } from './connection.js';
import { SubscriptionTokens } from './subscription.js';
import { TokenVerifier } from './verify.js';

export { ConnectionTokens, identityOf, tokenOf, tokenRejection, TOKEN_REQUIRED, DEFAULT_TOKEN_QUERY_PARAM, type TokenAuth } from './connection.js';
export { SubscriptionTokens } from './subscription.js';
export { TokenVerifier, MIN_HMAC_SECRET_BYTES, DEFAULT_CLOCK_TOLERANCE, MAX_TOKEN_LENGTH } from './verify.js';
export { RemoteKeySet, DEFAULT_JWKS_COOLDOWN, DEFAULT_JWKS_TIMEOUT, JWKS_MAX_AGE, MAX_JWKS_BYTES } from './jwks.js';
export { TokenError, TokenConfigError, REFUSAL_TEXT, type TokenRefusal } from './errors.js';

/** What `token` builds: the verifier, the /ws endpoint's connection checks, and the subscription-token check. */
export interface TokenAuthentication {
  readonly verifier: TokenVerifier;
  readonly connections: ConnectionTokens;
  readonly subscriptions: SubscriptionTokenVerifier;
}

/**
 * Everything `token` configures; throws a TokenConfigError (a short secret, a key that is
 * not one) at startup rather than at the first connection.
 */
export function tokenAuthentication(config: TokenConfig): TokenAuthentication {
  const verifier = new TokenVerifier(config);
  // The key set is fetched now, so the first connections do not wait for it.
  void verifier.keySet?.refresh();
  return { verifier, connections: new ConnectionTokens(verifier, config), subscriptions: new SubscriptionTokens(verifier) };
}
