/**
 * Origin policies for `ServerHandshakeOptions.origins`. Browsers send `Origin` on every
 * WebSocket handshake and let any page connect anywhere, with the user's cookies: a server
 * that authenticates by cookie must check it (cross-site WebSocket hijacking).
 */

/** Decides from the request's `Origin` (undefined when absent) and `Host` whether to accept it. */
export type OriginCheck = (origin: string | undefined, host: string) => boolean;

const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' };

/**
 * `value` as a serialized origin (`scheme://host[:port]`, lower case, without a default
 * port), or throws a TypeError that says what is wrong with it.
 */
export function parseOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`'${value}' is not an origin: write scheme://host[:port], such as https://app.example`);
  }
  if (!(url.protocol in DEFAULT_PORTS) || url.host === '') {
    throw new TypeError(`'${value}' is not an origin: the scheme must be http or https (or ws, wss), with a host`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || !/^[a-z][a-z0-9+.-]*:\/\/[^/]*\/?$/i.test(value)) {
    throw new TypeError(`'${value}' is not an origin: no path, query or credentials (did you mean '${url.origin}'?)`);
  }
  return url.origin;
}

/**
 * Whether `origin` names the host and port the request was sent to (its `Host` header),
 * the port being the scheme's default where either leaves it out. The scheme itself is not
 * compared: behind a TLS-terminating proxy an https page reaches a plain-http server.
 * `null` (sandboxed frames, file: pages) is never the same origin.
 */
export function isSameOrigin(origin: string, host: string): boolean {
  let page: URL;
  let target: URL;
  try {
    page = new URL(origin);
    if (!(page.protocol in DEFAULT_PORTS)) return false;
    // Read the Host with the page's scheme, so that an omitted port means the same default on both sides.
    target = new URL(`${page.protocol}//${host}`);
  } catch {
    return false;
  }
  if (target.username !== '' || target.pathname !== '/' || target.search !== '' || target.hash !== '') return false;
  return page.host === target.host;
}

/**
 * The policy browsers know as same-origin, plus a list: a request without `Origin` (not a
 * browser) is accepted, one whose `Origin` is the server's own (see {@link isSameOrigin}) or
 * in `also` (compared case-insensitively; `'*'` allows every origin) is accepted, any
 * other is refused with 403.
 * @throws TypeError for an entry of `also` that is not an origin (a trailing slash, a path).
 */
export function sameOrigin(also: readonly string[] = []): OriginCheck {
  if (also.includes('*')) return () => true;
  const allowed = new Set(also.map(parseOrigin));
  return (origin, host) => {
    if (origin === undefined) return true;
    if (isSameOrigin(origin, host)) return true;
    try {
      return allowed.has(parseOrigin(origin));
    } catch {
      return false;
    }
  };
}
