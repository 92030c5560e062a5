import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { UpgradeRejection } from '../node/server.js';

/**
 * How an operator surface (the inspector, /metrics) answers: to anyone who reaches it, only
 * with the admin secret, or not at all (404).
 */
export type AdminAccess = 'open' | 'secret' | 'off';

/** The shortest admin secret accepted: guessing one over the network must be hopeless. */
export const MIN_ADMIN_SECRET_LENGTH = 16;

/** The cookie that carries an inspector session from the page to its WebSocket. */
export const INSPECTOR_COOKIE = 'hotline_inspector';

/** Whether a listening address reaches this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackAddress(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  if (lower === 'localhost' || lower.endsWith('.localhost')) return true;
  if (isIP(lower) === 4) return lower.startsWith('127.');
  if (isIP(lower) !== 6) return false;
  // The URL parser writes IPv6 in its shortest form: ::1, and ::ffff:7fxx:xxxx for a mapped 127.x.x.x.
  const short = new URL(`http://[${lower}]`).hostname;
  return short === '[::1]' || short.startsWith('[::ffff:7f');
}

/** Whether a request's Host header names this machine by a loopback name or address (the port aside). */
export function isLoopbackHostHeader(host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    return isLoopbackAddress(new URL(`http://${host}`).hostname);
  } catch {
    return false;
  }
}

/**
 * Whether a surface answers, and to whom: with a secret, it is on unless turned off; without
 * one, it is open when the server listens on loopback only, and off beyond loopback unless
 * explicitly turned on.
 */
export function adminAccess(enabled: boolean | undefined, secret: string | undefined, loopback: boolean): AdminAccess {
  if (enabled === false) return 'off';
  if (secret !== undefined) return 'secret';
  return enabled === true || loopback ? 'open' : 'off';
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant-time comparison of two strings of any length. */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

function header(headers: Readonly<Record<string, string | string[] | undefined>>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A cookie's value from a request's Cookie header (the first of that name). */
export function cookie(headers: Readonly<Record<string, string | string[] | undefined>>, name: string): string | undefined {
  const all = header(headers, 'cookie');
  if (all === undefined) return undefined;
  for (const part of all.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Decides who may use the operator surfaces. With a secret: `Authorization: Bearer SECRET`,
 * or (inspector only) the session cookie its login sets. Without one, a surface that is
 * open on a loopback-only server also wants a loopback Host header: a page that rebinds its
 * own name to 127.0.0.1 (DNS rebinding) is same-origin with the server, but its Host names it.
 */
export class AdminGate {
  private readonly sessionToken: string | undefined;

  constructor(
    private readonly secret: string | undefined,
    private readonly loopback: boolean,
  ) {
    // The cookie holds a token derived from the secret, never the secret itself.
    this.sessionToken = secret === undefined ? undefined : createHmac('sha256', secret).update('hotline inspector session').digest('base64url');
  }

  /** Null when the request may proceed, or how to refuse it. */
  check(headers: Readonly<Record<string, string | string[] | undefined>>, withCookie: boolean): UpgradeRejection | null {
    if (this.secret === undefined) {
      if (!this.loopback || isLoopbackHostHeader(header(headers, 'host'))) return null;
      return {
        status: 403,
        message: 'this server listens on loopback only: open it as localhost or 127.0.0.1 (or set an admin secret)',
      };
    }
    const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header(headers, 'authorization') ?? '')?.[1];
    if (bearer !== undefined && sameSecret(bearer, this.secret)) return null;
    const session = withCookie ? cookie(headers, INSPECTOR_COOKIE) : undefined;
    if (session !== undefined && sameSecret(session, this.sessionToken!)) return null;
    return {
      status: 401,
      message: 'the admin secret is required (Authorization: Bearer SECRET)',
      headers: { 'WWW-Authenticate': 'Bearer realm="hotline"' },
    };
  }

  /** Whether `given` is the secret (the inspector's login form). */
  isSecret(given: string): boolean {
    return this.secret !== undefined && sameSecret(given, this.secret);
  }

  /** The Set-Cookie value of an inspector session, for /inspect and /inspect/ws only. */
  sessionCookie(secure: boolean): string {
    return `${INSPECTOR_COOKIE}=${this.sessionToken}; Path=/inspect; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  }
}
