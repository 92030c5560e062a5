// What the commands share in reading their arguments: strict flags with positionals, and the
// answer to bad usage (one line on stderr, exit status 2).
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Flags = NonNullable<ParseArgsConfig['options']>;
type Parsed<F extends Flags> = ReturnType<typeof parseArgs<{ args: string[]; options: F; allowPositionals: true; strict: true }>>;

/** The exit status of a command used wrongly. */
export const USAGE_ERROR = 2;

/** Writes `hotline: message` to stderr; returns {@link USAGE_ERROR}. */
export function usageError(message: string): number {
  process.stderr.write(`hotline: ${message}\n`);
  return USAGE_ERROR;
}

/** A command's flags and positionals, or why they cannot be read (an unknown flag, a missing value). */
export function parseCommandArgs<const F extends Flags>(args: string[], flags: F): Parsed<F> | string {
  try {
    return parseArgs({ args, options: flags, allowPositionals: true, strict: true });
  } catch (error) {
    return (error as Error).message;
  }
}
