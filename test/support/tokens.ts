// Tokens for the tests of `hotline serve`'s JWT authentication: keys made once per process
// and JWTs signed with jose, the way a backend would, plus the hand-made ones an attacker
// sends (alg none, a forged payload, HS256 signed with the public key's text).
import { Buffer } from 'node:buffer';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';

export const SECRET = 'test-secret-of-at-least-thirty-two-bytes';
export const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const RSA_PUBLIC_PEM = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** Seconds since the epoch, as `exp` and `nbf` count. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export function hs256(claims: JWTPayload, secret: string = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new Uint8Array(Buffer.from(secret)));
}

export function signWith(claims: JWTPayload, alg: string, key: KeyObject, kid?: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(kid === undefined ? { alg } : { alg, kid }).sign(key);
}

/** header.payload.signature from parts given as objects, and the signature as given. */
export function handMade(header: object, payload: object, signature: string): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part(header)}.${part(payload)}.${signature}`;
}

/** The token with its payload replaced and its signature kept. */
export function tampered(token: string, payload: object): string {
  const [header, , signature] = token.split('.');
  return `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${signature}`;
}
