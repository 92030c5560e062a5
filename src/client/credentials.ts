/** Where a client's token comes from: the `token` and `tokenParam` options of `connect()`. */
export interface CredentialOptions {
  token?: string | (() => string | Promise<string>);
  tokenParam?: string;
}

/**
 * A client's credentials: where its token comes from, where it goes (an `auth` message, or
 * the upgrade URL with `tokenParam`), and the one refresh allowed after an upgrade refused
 * with 401/403 (allowed again once a connection opens).
 */
export class Credentials {
  /** Set once the token was refreshed after a refusal; cleared when a connection opens. */
  private refreshed = false;
  /** A token fetched for the next attempt (that refresh), used once. */
  private next: string | null = null;

  constructor(private readonly options: CredentialOptions) {}

  /** Whether the upgrade URL carries the token (then no `auth` message is sent). */
  get inUrl(): boolean {
    return this.options.token !== undefined && this.options.tokenParam !== undefined;
  }

  /** Whether each connection sends an `auth` message first. */
  get inMessage(): boolean {
    return this.options.token !== undefined && this.options.tokenParam === undefined;
  }

  /** Whether a fresh token can be had: `token` is a function. */
  get refreshable(): boolean {
    return typeof this.options.token === 'function';
  }

  /** A token, fetched now. */
  fetch(): Promise<string> {
    const token = this.options.token!;
    return Promise.resolve(typeof token === 'string' ? token : token());
  }

  /** The token for a connection: the one refreshed for it, if any, else a fresh one. */
  take(): Promise<string> {
    const fetched = this.next;
    this.next = null;
    return fetched === null ? this.fetch() : Promise.resolve(fetched);
  }

  /** `url` with the token in its query string. */
  urlWith(url: string, token: string): string {
    const withToken = new URL(url);
    withToken.searchParams.set(this.options.tokenParam!, token);
    return withToken.href;
  }

  /** After an upgrade refused with 401/403: whether to refresh and retry (once until a connection opens). */
  refreshAfterRefusal(): boolean {
    if (!this.refreshable || this.refreshed) return false;
    this.refreshed = true;
    return true;
  }

  /** The refreshed token, for the next attempt. */
  keep(token: string): void {
    this.next = token;
  }

  opened(): void {
    this.refreshed = false;
  }
}
