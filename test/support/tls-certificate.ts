// A self-signed certificate for localhost and 127.0.0.1, made at test time with openssl,
// for the tests of wss:// and TLS errors.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  /** Holds key.pem and cert.pem; remove it when done. */
  dir: string;
  key: Buffer;
  cert: Buffer;
}

/** The certificate, or null (after a loud warning naming `what` is skipped) when openssl is missing or fails. */
export function makeCertificate(what: string): TestCertificate | null {
  const dir = mkdtempSync(join(tmpdir(), 'hotline-tls-'));
  const result = spawnSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  if (result.error !== undefined || result.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    console.warn(`\n*** openssl is missing or failed: ${what} SKIPPED ***\n`);
    return null;
  }
  return { dir, key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
}
