/**
 * Verifies a JWT against the configured keys: an HMAC secret, a PEM public key, a JWKS URL
 * (any of them at once). The token's `alg` picks the key kind, and each kind accepts only
 * its own algorithms: an HMAC secret never verifies an RS256 token and a public key never
 * an HS256 one (the HS/RS confusion where a public key's text is used as a secret), and
 * `none` is accepted by nothing. The checks run cheapest first: length, header, algorithm,
 * then the signature, then the claims.
 */
import { Buffer } from 'node:buffer';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions, type ProtectedHeaderParameters } from 'jose';
import { DEFAULT_WIRE_LIMITS } from '../../wire/index.js';
import type { TokenConfig } from '../config/sections.js';
import { TokenConfigError, TokenError } from './errors.js';
import { RemoteKeySet } from './jwks.js';

/** The shortest HMAC secret accepted (bytes of UTF-8): 256 bits, as RFC 7518 asks of HS256. */
export const MIN_HMAC_SECRET_BYTES = 32;
/** Default leeway for `exp` and `nbf` (ms). */
export const DEFAULT_CLOCK_TOLERANCE = 5_000;
/** The longest token looked at: the same bound as an `auth` request's token. */
export const MAX_TOKEN_LENGTH = DEFAULT_WIRE_LIMITS.maxTokenLength;

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC_ALGORITHMS: Readonly<Record<string, string>> = { 'prime256v1': 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
/** Every algorithm a public key or a JWKS may use. */
const ASYMMETRIC_ALGORITHMS = [...RSA_ALGORITHMS, 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** The algorithms a PEM public key can verify, from its type (and curve). */
function publicKeyAlgorithms(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return RSA_ALGORITHMS;
    case 'rsa-pss':
      return RSA_ALGORITHMS.filter((alg) => alg.startsWith('PS'));
    case 'ec': {
      const alg = EC_ALGORITHMS[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (alg === undefined) throw new TokenConfigError(`token.publicKey: the curve ${key.asymmetricKeyDetails?.namedCurve} is not one JWT uses (P-256, P-384, P-521)`);
      return [alg];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      throw new TokenConfigError(`token.publicKey: a ${key.asymmetricKeyType} key cannot verify a JWT (RSA, EC or Ed25519 can)`);
  }
}

/** One kind of key and the algorithms it verifies. */
interface KeySource {
  algorithms: readonly string[];
  key: KeyObject | Uint8Array | JWTVerifyGetKey;
}

/** What a verification asks beyond the signature and the configured `aud`/`iss`. */
export interface VerifyRequirements {
  /** Claims the token must carry (`exp`, `channel`). */
  required?: string[];
}

/** Checks tokens against the configured keys; built once at startup, shared by connection and subscription tokens. */
export class TokenVerifier {
  private readonly hmac: KeySource | undefined;
  private readonly publicKey: KeySource | undefined;
  private readonly jwks: KeySource | undefined;
  /** The remote key set, when one is configured (tests read its fetch count). */
  readonly keySet: RemoteKeySet | undefined;
  private readonly accepted: ReadonlySet<string>;
  private readonly options: JWTVerifyOptions;

  /**
   * `now` is the JWKS cache's clock (tests move it); token times are checked against the real one.
   * @throws TokenConfigError for a configuration the server must not start with.
   */
  constructor(config: TokenConfig, now?: () => number) {
    if (config.hmacSecret !== undefined) {
      const secret = Buffer.from(config.hmacSecret, 'utf8');
      if (secret.length < MIN_HMAC_SECRET_BYTES) {
        throw new TokenConfigError(`token.hmacSecret is ${secret.length} bytes; at least ${MIN_HMAC_SECRET_BYTES} are needed (a guessable secret lets anyone mint tokens)`);
      }
      this.hmac = { algorithms: HMAC_ALGORITHMS, key: new Uint8Array(secret) };
    }
    if (config.publicKey !== undefined) {
      // node would derive the public half of a private key: refused, a private key does not belong in a server's config.
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(config.publicKey)) throw new TokenConfigError('token.publicKey holds a private key: give the public key (SPKI PEM)');
      let key: KeyObject;
      try {
        key = createPublicKey({ key: config.publicKey, format: 'pem' });
      } catch (error) {
        throw new TokenConfigError(`token.publicKey is not a PEM public key: ${(error as Error).message}`);
      }
      this.publicKey = { algorithms: publicKeyAlgorithms(key), key };
    }
    if (config.jwksUrl !== undefined) {
      let url: URL;
      try {
        url = new URL(config.jwksUrl);
      } catch {
        throw new TokenConfigError(`token.jwksUrl is not a URL: ${config.jwksUrl}`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TokenConfigError('token.jwksUrl must be an http(s) URL');
      this.keySet = new RemoteKeySet(url, { timeout: config.jwksTimeout, cooldown: config.jwksCooldown, now });
      const keySet = this.keySet;
      this.jwks = { algorithms: ASYMMETRIC_ALGORITHMS, key: (header, token) => keySet.key(header, token) };
    }
    const kinds = [this.hmac, this.publicKey, this.jwks].filter((source) => source !== undefined);
    if (kinds.length === 0) throw new TokenConfigError('token: set hmacSecret, publicKey or jwksUrl');
    const possible = new Set(kinds.flatMap((source) => source.algorithms));
    if (config.algorithms !== undefined) {
      for (const alg of config.algorithms) {
        if (!possible.has(alg)) throw new TokenConfigError(`token.algorithms: ${alg} cannot be verified with the configured keys (${[...possible].join(', ')})`);
      }
      this.accepted = new Set(config.algorithms);
    } else {
      this.accepted = possible;
    }
    this.options = {
      audience: config.audience,
      issuer: config.issuer,
      clockTolerance: (config.clockTolerance ?? DEFAULT_CLOCK_TOLERANCE) / 1000,
    };
  }

  /** The algorithms a token may be signed with. */
  get algorithms(): readonly string[] {
    return [...this.accepted];
  }

  /** The token's verified claims; a TokenError saying why not otherwise. */
  async verify(token: string, requirements: VerifyRequirements = {}): Promise<JWTPayload> {
    if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('malformed', `longer than ${MAX_TOKEN_LENGTH} characters`);
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new TokenError('malformed');
    }
    const alg = header.alg;
    if (typeof alg !== 'string' || !this.accepted.has(alg)) throw new TokenError('algorithm', String(alg));
    const source = this.sourceFor(alg, header.kid !== undefined);
    if (source === undefined) throw new TokenError('algorithm', alg);
    try {
      const key = source.key;
      const options = { ...this.options, algorithms: [alg], requiredClaims: requirements.required };
      const { payload } =
        typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options);
      return payload;
    } catch (error) {
      throw refusalOf(error);
    }
  }

  /**
   * HS* goes to the secret, nothing else. Others go to the public key when it fits the
   * algorithm and the token names no key id (or there is no JWKS), and to the JWKS otherwise.
   */
  private sourceFor(alg: string, hasKid: boolean): KeySource | undefined {
    if (HMAC_ALGORITHMS.includes(alg)) return this.hmac;
    const fits = this.publicKey !== undefined && this.publicKey.algorithms.includes(alg);
    if (fits && (!hasKid || this.jwks === undefined)) return this.publicKey;
    return this.jwks;
  }
}

/** jose's error as the reason a client is told. */
function refusalOf(error: unknown): TokenError {
  if (error instanceof TokenError) return error;
  if (error instanceof errors.JWTExpired) return new TokenError('expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return new TokenError('not_yet_valid');
    if (error.claim === 'aud') return new TokenError('audience');
    if (error.claim === 'iss') return new TokenError('issuer');
    return new TokenError('claims', `"${error.claim}" ${error.reason === 'missing' ? 'is missing' : 'is invalid'}`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return new TokenError('signature');
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return new TokenError('algorithm');
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) return new TokenError('unknown_key');
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return new TokenError('malformed');
  // A key that does not fit its algorithm (a JWKS entry of the wrong type), and the like.
  if (error instanceof errors.JOSEError || error instanceof TypeError) return new TokenError('signature', 'the key does not fit the token');
  throw error;
}
