// Launches the system Chromium for browser interop tests, through playwright-core (which
// never downloads a browser). Where Chromium is missing, browser tests skip and say so
// loudly; under CI=true they fail instead, since CI installs it.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function onCi(): boolean {
  return process.env.CI === 'true';
}

function missingMessage(): string {
  return `${CHROMIUM_PATH} is missing (install the Debian package "chromium")`;
}

/**
 * What to pass as `skip` to a browser test or suite: `false` when the tests should run, or
 * the reason they are skipped. Prints one clear line to stderr when skipping. Under CI=true
 * a missing Chromium does not skip: the tests run and {@link launchChromium} fails them.
 */
export function chromiumSkip(): string | false {
  if (existsSync(CHROMIUM_PATH)) return false;
  if (onCi()) {
    process.stderr.write(`\n!!! browser tests: ${missingMessage()}; CI=true, so they FAIL instead of skipping\n\n`);
    return false;
  }
  const reason = `${missingMessage()}: browser tests skipped`;
  process.stderr.write(`\n!!! SKIPPING browser tests: ${missingMessage()}\n\n`);
  return reason;
}

/** Starts headless Chromium; throws a clear error when the executable is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`cannot run browser tests: ${missingMessage()}${onCi() ? ' (CI=true requires it)' : ''}`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS],
  });
}
