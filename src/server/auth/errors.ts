/**
 * Why a token was not accepted, as one code per reason: the upgrade's 401 names it in
 * `WWW-Authenticate` (RFC 6750's `error_description`), an `auth` or `sub` request's `err`
 * in its message. `keys_unavailable` is the server's trouble, not the token's (the JWKS
 * could not be fetched): it is answered 503 / `internal`, which the client may retry.
 */
export type TokenRefusal =
  | 'malformed'
  | 'algorithm'
  | 'signature'
  | 'expired'
  | 'not_yet_valid'
  | 'audience'
  | 'issuer'
  | 'claims'
  | 'unknown_key'
  | 'keys_unavailable';

/** What a client reads for each refusal: short, and never an echo of the token. */
export const REFUSAL_TEXT: Readonly<Record<TokenRefusal, string>> = {
  malformed: 'malformed',
  algorithm: 'algorithm not accepted',
  signature: 'bad signature',
  expired: 'expired',
  not_yet_valid: 'not yet valid',
  audience: 'wrong audience',
  issuer: 'wrong issuer',
  claims: 'invalid claims',
  unknown_key: 'unknown key',
  keys_unavailable: 'signing keys unavailable',
};

/** A token that was refused, and why; `detail` adds what the reason alone does not say (which claim). */
export class TokenError extends Error {
  readonly code = 'ERR_TOKEN_REFUSED';

  constructor(
    readonly refusal: TokenRefusal,
    readonly detail?: string,
  ) {
    super(detail === undefined ? REFUSAL_TEXT[refusal] : `${REFUSAL_TEXT[refusal]}: ${detail}`);
    this.name = 'TokenError';
  }
}

/** A token configuration the server cannot start with (a short secret, a key that is not a PEM public key, …). */
export class TokenConfigError extends Error {
  readonly code = 'ERR_TOKEN_CONFIG';

  constructor(message: string) {
    super(message);
    this.name = 'TokenConfigError';
  }
}
