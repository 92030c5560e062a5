/**
 * Connection tokens: who a connection is, from a JWT found in its upgrade request
 * (`Authorization: Bearer`, then the configured cookie, then the query parameter), decided
 * before the 101; and the same check for the `auth` request that refreshes it. A request
 * without a token connects anonymously unless tokens are `required`; a token that is there
 * but does not verify is always refused, never taken as no token at all. It takes headers
 * and a URL only, so an SSE or HTTP transport can ask it the same question.
 */
import type { ChannelIdentity, RequestContext } from '../../channels/index.js';
import { ChannelError } from '../../channels/index.js';
import type { UpgradeRejection, UpgradeRequest } from '../../node/server.js';
import type { Member } from '../../wire/index.js';
import { cookie } from '../admin.js';
import type { TokenClaims, TokenConfig } from '../config/sections.js';
import { REFUSAL_TEXT, TokenError } from './errors.js';
import type { TokenVerifier } from './verify.js';

/** The default query parameter read for a token: browsers cannot set headers on a WebSocket. */
export const DEFAULT_TOKEN_QUERY_PARAM = 'token';

/**
 * A token-checking connection's `auth`: the verified claims, or null for an anonymous one.
 * Null, not undefined: the hub makes a connection whose auth is undefined authenticate
 * before anything else, and an anonymous connection is allowed as it is.
 */
export type TokenAuth = TokenClaims | null;

/** The token a request carries, where the configuration says to look, in order; undefined without one. */
export function tokenOf(req: Pick<UpgradeRequest, 'headers' | 'url'>, config: TokenConfig): string | undefined {
  const authorization = req.headers['authorization'];
  const value = Array.isArray(authorization) ? authorization[0] : authorization;
  // Another scheme (Basic for a proxy in front) is not ours to read: look further.
  if (value !== undefined && /^bearer(\s|$)/i.test(value)) return value.slice(6).trim();
  if (config.cookie !== undefined) {
    const fromCookie = cookie(req.headers, config.cookie);
    if (fromCookie !== undefined) return fromCookie;
  }
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  if (query === -1) return undefined;
  const param = new URLSearchParams(url.slice(query + 1)).get(config.queryParam ?? DEFAULT_TOKEN_QUERY_PARAM);
  return param ?? undefined;
}

/** The 401 (or, when the keys could not be fetched, 503) refusing a token, with RFC 6750's reason. */
export function tokenRejection(error: TokenError): UpgradeRejection {
  if (error.refusal === 'keys_unavailable') {
    return { status: 503, message: 'the token cannot be checked now: signing keys unavailable', headers: { 'Retry-After': '5' } };
  }
  const description = REFUSAL_TEXT[error.refusal];
  return {
    status: 401,
    message: `invalid token: ${error.message}`,
    headers: { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${description}"` },
  };
}

/** Without a token where one is required: RFC 6750 names no error when no credentials were sent. */
export const TOKEN_REQUIRED: UpgradeRejection = { status: 401, message: 'a token is required', headers: { 'WWW-Authenticate': 'Bearer' } };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The identity verified claims make: `sub` the user and member id, `info` the member's data, `exp` the expiry. */
export function identityOf(payload: Record<string, unknown>): ChannelIdentity<TokenAuth> {
  const { sub, info, channels, exp } = payload;
  if (typeof sub !== 'string' || sub.length === 0) throw new TokenError('claims', '"sub" must be a non-empty string');
  // A subscription token names its channel; taken as a connection token it would log its holder in.
  if (payload['channel'] !== undefined) throw new TokenError('claims', 'a subscription token (with "channel") cannot open a connection');
  if (info !== undefined && !isPlainObject(info)) throw new TokenError('claims', '"info" must be an object');
  if (channels !== undefined && !(Array.isArray(channels) && channels.every((c) => typeof c === 'string'))) {
    throw new TokenError('claims', '"channels" must be an array of strings');
  }
  // Claims are parsed JSON, so `info` is JSON too.
  const member: Member = info === undefined ? { id: sub } : { id: sub, info: info as Member };
  return { auth: payload as TokenClaims, user: sub, member, expiresAt: typeof exp === 'number' ? exp * 1000 : undefined };
}

/** The `/ws` endpoint's `authenticate` and the hub's `authenticateToken`, from one verifier. */
export class ConnectionTokens {
  constructor(
    private readonly verifier: TokenVerifier,
    private readonly config: TokenConfig,
  ) {}

  /** Before the upgrade: an identity (anonymous without a token, unless required), or a refusal. */
  readonly authenticate = async (req: UpgradeRequest): Promise<ChannelIdentity<TokenAuth> | { reject: UpgradeRejection }> => {
    const token = tokenOf(req, this.config);
    if (token === undefined) return this.config.required === true ? { reject: TOKEN_REQUIRED } : { auth: null };
    try {
      return identityOf(await this.verifier.verify(token));
    } catch (error) {
      if (error instanceof TokenError) return { reject: tokenRejection(error) };
      throw error;
    }
  };

  /**
   * An `auth` request: the same checks, answered `unauthorized` with the reason. A
   * connection that is someone keeps being them: a token for another `sub` is `forbidden`.
   * An anonymous connection becomes whoever its first token says.
   */
  readonly authenticateToken = async (token: string, context: RequestContext<TokenAuth>): Promise<ChannelIdentity<TokenAuth>> => {
    let identity: ChannelIdentity<TokenAuth>;
    try {
      identity = identityOf(await this.verifier.verify(token));
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      if (error.refusal === 'keys_unavailable') throw new ChannelError('internal', `unavailable: ${error.message}`);
      throw new ChannelError('unauthorized', `invalid token: ${error.message}`);
    }
    const current = context.auth?.sub;
    if (current !== undefined && identity.user !== current) {
      throw new ChannelError('forbidden', `this connection is ${current}: a refreshed token must carry the same "sub"`);
    }
    return identity;
  };
}
