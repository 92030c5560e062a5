import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
import { TokenConfigError, TokenError, type TokenRefusal } from './errors.js';
import { TokenVerifier } from './verify.js';

const SECRET = 'a-secret-of-at-least-thirty-two-bytes!';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const pem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();
const now = (): number => Math.floor(Date.now() / 1000);

function sign(claims: JWTPayload, alg: string, key: KeyObject | Uint8Array, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, ...header }).sign(key);
}
const hmacKey = new Uint8Array(Buffer.from(SECRET));

/** A token signed by hand, as a backend without a JWT library (or an attacker) would. */
function handMade(header: object, payload: object, signature: (input: string) => string): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${part(header)}.${part(payload)}`;
  return `${input}.${signature(input)}`;
}

async function refusal(verifier: TokenVerifier, token: string, required?: string[]): Promise<TokenRefusal> {
  try {
    await verifier.verify(token, { required });
  } catch (error) {
    assert.ok(error instanceof TokenError, String(error));
    return error.refusal;
  }
  assert.fail('the token was accepted');
}

test('startup refuses what must not run: a short secret, no key, a non-PEM or private key, an algorithm no key verifies', () => {
  assert.throws(() => new TokenVerifier({ hmacSecret: 'x'.repeat(31) }), (e: unknown) => e instanceof TokenConfigError && /31 bytes; at least 32/.test(e.message));
  assert.doesNotThrow(() => new TokenVerifier({ hmacSecret: 'x'.repeat(32) }));
  assert.throws(() => new TokenVerifier({}), /set hmacSecret, publicKey or jwksUrl/);
  assert.throws(() => new TokenVerifier({ publicKey: 'not a key' }), /not a PEM public key/);
  const privatePem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  assert.throws(() => new TokenVerifier({ publicKey: privatePem }), /holds a private key/);
  assert.throws(() => new TokenVerifier({ hmacSecret: SECRET, algorithms: ['none'] }), /none cannot be verified/);
  assert.throws(() => new TokenVerifier({ hmacSecret: SECRET, algorithms: ['RS256'] }), /RS256 cannot be verified/);
  assert.throws(() => new TokenVerifier({ jwksUrl: 'file:///etc/passwd' }), /http\(s\) URL/);
});

test('each key kind verifies its own algorithms: HS256/384/512, RS256, PS256, ES256, EdDSA', async () => {
  const hmac = new TokenVerifier({ hmacSecret: SECRET });
  for (const alg of ['HS256', 'HS384', 'HS512']) assert.equal((await hmac.verify(await sign({ sub: 'u' }, alg, hmacKey))).sub, 'u', alg);
  const rsaVerifier = new TokenVerifier({ publicKey: pem(rsa.publicKey) });
  for (const alg of ['RS256', 'PS256', 'RS512']) assert.equal((await rsaVerifier.verify(await sign({ sub: 'r' }, alg, rsa.privateKey))).sub, 'r', alg);
  assert.deepEqual(new TokenVerifier({ publicKey: pem(ec.publicKey) }).algorithms, ['ES256']);
  assert.equal((await new TokenVerifier({ publicKey: pem(ec.publicKey) }).verify(await sign({ sub: 'e' }, 'ES256', ec.privateKey))).sub, 'e');
  assert.equal((await new TokenVerifier({ publicKey: pem(ed.publicKey) }).verify(await sign({ sub: 'd' }, 'EdDSA', ed.privateKey))).sub, 'd');
});

test('the standard library alone mints an HS256 token that verifies (what a backend in any language does)', async () => {
  const token = handMade({ alg: 'HS256', typ: 'JWT' }, { sub: 'py', exp: now() + 60 }, (input) => createHmac('sha256', SECRET).update(input).digest('base64url'));
  assert.equal((await new TokenVerifier({ hmacSecret: SECRET }).verify(token)).sub, 'py');
});

test('no algorithm confusion: alg none, HS256 signed with the public key text, RS256 against a secret, an algorithm left out of `algorithms`', async () => {
  const both = new TokenVerifier({ hmacSecret: SECRET, publicKey: pem(rsa.publicKey) });
  const none = handMade({ alg: 'none' }, { sub: 'x' }, () => '');
  assert.equal(await refusal(both, none), 'algorithm');
  const publicOnly = new TokenVerifier({ publicKey: pem(rsa.publicKey) });
  const confused = await sign({ sub: 'x' }, 'HS256', new Uint8Array(Buffer.from(pem(rsa.publicKey))));
  assert.equal(await refusal(publicOnly, confused), 'algorithm');
  // Even with a secret configured beside the key, the public key's text is not the secret.
  assert.equal(await refusal(both, confused), 'signature');
  const secretOnly = new TokenVerifier({ hmacSecret: SECRET });
  assert.equal(await refusal(secretOnly, await sign({ sub: 'x' }, 'RS256', rsa.privateKey)), 'algorithm');
  const narrowed = new TokenVerifier({ hmacSecret: SECRET, algorithms: ['HS512'] });
  assert.equal(await refusal(narrowed, await sign({ sub: 'x' }, 'HS256', hmacKey)), 'algorithm');
});

test('exp and nbf with the clock tolerance, aud, iss, a tampered payload, a malformed or too long token, a missing required claim', async () => {
  const verifier = new TokenVerifier({ hmacSecret: SECRET, audience: 'app', issuer: 'backend', clockTolerance: 5_000 });
  const good = { sub: 'u', aud: 'app', iss: 'backend' };
  assert.equal((await verifier.verify(await sign({ ...good, exp: now() - 2 }, 'HS256', hmacKey))).sub, 'u', 'within the tolerance');
  assert.equal(await refusal(verifier, await sign({ ...good, exp: now() - 30 }, 'HS256', hmacKey)), 'expired');
  assert.equal(await refusal(verifier, await sign({ ...good, nbf: now() + 60 }, 'HS256', hmacKey)), 'not_yet_valid');
  assert.equal(await refusal(verifier, await sign({ ...good, aud: 'other' }, 'HS256', hmacKey)), 'audience');
  assert.equal(await refusal(verifier, await sign({ sub: 'u', iss: 'backend' }, 'HS256', hmacKey)), 'audience');
  assert.equal(await refusal(verifier, await sign({ ...good, iss: 'someone' }, 'HS256', hmacKey)), 'issuer');
  const [header, , signature] = (await sign(good, 'HS256', hmacKey)).split('.');
  const forged = Buffer.from(JSON.stringify({ ...good, sub: 'admin' })).toString('base64url');
  assert.equal(await refusal(verifier, `${header}.${forged}.${signature}`), 'signature');
  assert.equal(await refusal(verifier, 'not.a.token'), 'malformed');
  assert.equal(await refusal(verifier, 'x'.repeat(9000)), 'malformed');
  assert.equal(await refusal(verifier, await sign(good, 'HS256', hmacKey), ['exp']), 'claims');
  assert.equal(await refusal(new TokenVerifier({ hmacSecret: 'y'.repeat(40) }), await sign(good, 'HS256', hmacKey)), 'signature');
});
