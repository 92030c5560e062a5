/**
 * A JWKS fetched from a URL, kept, and fetched again when it grows old or a token names a
 * key it does not hold. jose's remote key set does the same, but fetches again on every
 * token while the endpoint fails (no key set yet, or an old one): a flood of tokens would
 * become a flood of requests to the identity provider. Here every fetch, failed or not,
 * counts against one cooldown: at most one fetch per `cooldown` ms, whatever tokens arrive
 * (an unknown `kid`, an old key set, a failing endpoint); concurrent tokens wait on the
 * same fetch, and none waits past `timeout`. A key set that could not be refreshed stays
 * in use.
 */
import { Buffer } from 'node:buffer';
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import { TokenError } from './errors.js';

/** How long a fetched key set is used before it is fetched again (ms): 10 minutes, as jose's default. */
export const JWKS_MAX_AGE = 10 * 60_000;
/** Defaults of `jwksTimeout` and `jwksCooldown` (ms). */
export const DEFAULT_JWKS_TIMEOUT = 5_000;
export const DEFAULT_JWKS_COOLDOWN = 30_000;
/** The largest key set body read (bytes): a few dozen keys fit many times over. */
export const MAX_JWKS_BYTES = 512 * 1024;

type LocalSet = ReturnType<typeof createLocalJWKSet>;
type Key = Awaited<ReturnType<LocalSet>>;

/** The fetch timeout and cooldown (ms), and the cache's clock (tests move it). */
export interface RemoteKeySetOptions {
  timeout?: number;
  cooldown?: number;
  now?: () => number;
}

/** One JWKS URL's keys, fetched at most once per cooldown (see the file's header). */
export class RemoteKeySet {
  /** Fetches started, successful or not (for tests and metrics). */
  fetches = 0;
  private local: LocalSet | undefined;
  private fetchedAt = -Infinity;
  private attemptedAt = -Infinity;
  private pending: Promise<void> | undefined;
  private lastFailure = '';
  private readonly timeout: number;
  private readonly cooldown: number;
  private readonly now: () => number;

  constructor(
    private readonly url: URL,
    options: RemoteKeySetOptions = {},
  ) {
    this.timeout = options.timeout ?? DEFAULT_JWKS_TIMEOUT;
    this.cooldown = options.cooldown ?? DEFAULT_JWKS_COOLDOWN;
    this.now = options.now ?? Date.now;
  }

  /** The key a token's header names; a TokenError (`unknown_key`, `keys_unavailable`) otherwise. */
  async key(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<Key> {
    if (this.local === undefined || this.now() - this.fetchedAt >= JWKS_MAX_AGE) await this.refresh();
    if (this.local === undefined) throw new TokenError('keys_unavailable', this.lastFailure);
    try {
      return await this.local(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
    }
    // A key it does not hold: perhaps rotated in since the last fetch.
    await this.refresh();
    try {
      return await this.local(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey) throw new TokenError('unknown_key');
      throw error;
    }
  }

  /** Fetches again unless one is under way (then waits for it) or the last began within the cooldown. */
  refresh(): Promise<void> {
    if (this.pending !== undefined) return this.pending;
    if (this.now() - this.attemptedAt < this.cooldown) return Promise.resolve();
    this.attemptedAt = this.now();
    this.fetches++;
    this.pending = this.fetch()
      .then(
        (set) => {
          this.local = createLocalJWKSet(set);
          this.fetchedAt = this.now();
        },
        (error: unknown) => {
          this.lastFailure = error instanceof Error ? error.message : String(error);
        },
      )
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  private async fetch(): Promise<JSONWebKeySet> {
    const signal = AbortSignal.timeout(this.timeout);
    let response: Response;
    try {
      response = await fetch(this.url, { signal, redirect: 'error', headers: { accept: 'application/jwk-set+json, application/json' } });
    } catch (error) {
      throw new Error(signal.aborted ? `no answer from the JWKS URL within ${this.timeout} ms` : `the JWKS URL could not be fetched: ${(error as Error).message}`, { cause: error });
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`the JWKS URL answered ${response.status}`);
    }
    const text = await readLimited(response, MAX_JWKS_BYTES, signal, this.timeout);
    const set = JSON.parse(text) as unknown;
    if (typeof set !== 'object' || set === null || !Array.isArray((set as { keys?: unknown }).keys)) {
      throw new Error('the JWKS URL did not answer a key set ({"keys": [...]})');
    }
    return set as JSONWebKeySet;
  }
}

/** The body as text, refused past `limit` bytes or once the timeout's signal fires. */
async function readLimited(response: Response, limit: number, signal: AbortSignal, timeout: number): Promise<string> {
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) throw new Error(`the key set is larger than ${limit} bytes`);
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    if (signal.aborted) throw new Error(`the key set did not arrive within ${timeout} ms`, { cause: error });
    throw error;
  }
  return Buffer.concat(chunks).toString('utf8');
}
