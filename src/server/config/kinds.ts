/**
 * How each kind of `hotline serve` value is written: as text (a flag, a HOTLINE_* variable),
 * as JSON (a config file), and shown (--help, the reference). One home per kind: its parser,
 * its JSON Schema and its check of a JSON value, so that a flag and a file key of the same
 * option accept the same values and say the same thing about bad ones.
 */
import type { RateLimit } from '../../channels/rate-limit.js';
import { compileTrustProxy, type TrustProxy } from '../../node/trust-proxy.js';
import { parseOrigin } from '../../protocol/origin.js';

/** A value that cannot be used; the message is one line that names the option. */
export class OptionError extends Error {
  readonly code = 'BAD_OPTION';
}

/** A JSON Schema (draft 2020-12), as plain data. */
export type JsonSchema = { [keyword: string]: unknown };

/** How one kind of value is read from text and JSON, and shown. */
export interface Kind<V> {
  /** The placeholder in --help (MS, BYTES, …); none for a switch. */
  arg?: string;
  /** `name` is how the user wrote the option (--idle-timeout, HOTLINE_ADMIN_SECRET), for errors. */
  parse(text: string, name: string): V;
  /** What a config file may hold for it; `description` says what is expected when a union fails. */
  schema: JsonSchema;
  /** A JSON value the schema accepted, as the option's value (checks the schema cannot express). */
  fromJson(value: unknown, name: string): V;
  show(value: V): string;
  /** For an option given more than once: combine (lists), instead of the last one winning. */
  combine?(earlier: V, later: V): V;
}

const MAX_INT = 2 ** 31 - 1;
const same = <V>(value: unknown): V => value as V;

/** A whole number from `min` to `max` (timers beyond 2^31-1 ms fire at once in Node, so that is the cap). */
export function whole(arg: string, unit: string, min: number, max = MAX_INT, show: (n: number) => string = String): Kind<number> {
  return {
    arg,
    parse(text, name) {
      const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
      if (!(n >= min && n <= max)) {
        throw new OptionError(`${name} must be a whole number${unit === '' ? '' : ` of ${unit}`} from ${min} to ${max}, not '${text}'`);
      }
      return n;
    },
    schema: { type: 'integer', minimum: min, maximum: max },
    fromJson: same,
    show,
  };
}

export const ms = (min: number): Kind<number> => whole('MS', 'milliseconds', min, MAX_INT, (n) => `${n} ms`);
export const bytes = (min: number): Kind<number> =>
  whole('BYTES', 'bytes', min, MAX_INT, (n) => (n >= 1024 && n % 1024 === 0 ? `${n} = ${n % 1048576 === 0 ? `${n / 1048576} MiB` : `${n / 1024} KiB`}` : `${n} bytes`));
export const count = (min: number): Kind<number> => whole('N', '', min);

export function choice<T extends string>(values: readonly T[], arg: string): Kind<T> {
  return {
    arg,
    parse(text, name) {
      if (!(values as readonly string[]).includes(text)) throw new OptionError(`${name} must be one of ${values.join(', ')}, not '${text}'`);
      return text as T;
    },
    schema: { enum: [...values] },
    fromJson: same,
    show: (value) => value,
  };
}

export function text(arg: string, check?: (value: string, name: string) => void): Kind<string> {
  const parse = (value: string, name: string): string => {
    check?.(value, name);
    return value;
  };
  return { arg, parse, schema: { type: 'string' }, fromJson: (value, name) => parse(value as string, name), show: (value) => value };
}

/** A switch: `--x` and `--no-x` on the command line; true/false (1/0, on/off, yes/no) in the environment. */
export const toggle: Kind<boolean> = {
  parse(value, name) {
    const lower = value.toLowerCase();
    if (['true', '1', 'on', 'yes'].includes(lower)) return true;
    if (['false', '0', 'off', 'no'].includes(lower)) return false;
    throw new OptionError(`${name} must be true or false, not '${value}'`);
  },
  schema: { type: 'boolean' },
  fromJson: same,
  show: (value) => (value ? 'on' : 'off'),
};

const RATE_TEXT = /^(\d{1,7}(?:\.\d{1,3})?)(?::(\d{1,7}))?$/;
const MAX_RATE = 9_999_999;

/** PER_SECOND[:BURST]: a token bucket refilled at PER_SECOND that holds BURST; `{perSecond, burst}` in a file too. */
export const rate: Kind<RateLimit> = {
  arg: 'RATE[:BURST]',
  parse(value, name) {
    const match = RATE_TEXT.exec(value);
    const perSecond = match === null ? NaN : Number(match[1]);
    const burst = match?.[2] === undefined ? undefined : Number(match[2]);
    if (!(perSecond > 0) || (burst !== undefined && burst < 1)) {
      throw new OptionError(`${name} must be requests per second, optionally with a burst: 50 or 50:100, not '${value}'`);
    }
    return burst === undefined ? { perSecond } : { perSecond, burst };
  },
  schema: {
    description: 'requests per second (50), with a burst ("50:100"), or {"perSecond": 50, "burst": 100}',
    anyOf: [
      { type: 'number', exclusiveMinimum: 0, maximum: MAX_RATE },
      { type: 'string', pattern: RATE_TEXT.source },
      {
        type: 'object',
        properties: { perSecond: { type: 'number', exclusiveMinimum: 0, maximum: MAX_RATE }, burst: { type: 'integer', minimum: 1, maximum: MAX_RATE } },
        required: ['perSecond'],
        additionalProperties: false,
      },
    ],
  },
  fromJson(value, name) {
    if (typeof value === 'number') return { perSecond: value };
    if (typeof value === 'string') return rate.parse(value, name);
    return value as RateLimit;
  },
  show: (value) => (value.burst === undefined ? String(value.perSecond) : `${value.perSecond}:${value.burst}`),
};

/** {@link rate}, or `0`/`off` for no limit at all (null). */
export const rateOrOff: Kind<RateLimit | null> = {
  arg: 'RATE[:BURST]',
  parse: (value, name) => (value === '0' || value.toLowerCase() === 'off' ? null : rate.parse(value, name)),
  schema: {
    description: `${rate.schema['description'] as string}; 0 or "off" for no limit`,
    anyOf: [{ const: 0 }, { const: 'off' }, ...(rate.schema['anyOf'] as JsonSchema[])],
  },
  fromJson: (value, name) => (value === 0 || value === 'off' ? null : rate.fromJson(value, name)),
  show: (value) => (value === null ? 'off' : rate.show(value)),
};

function checkTrustProxy(value: TrustProxy, name: string): TrustProxy {
  try {
    compileTrustProxy(value);
  } catch (error) {
    throw new OptionError(`${name}: ${(error as Error).message.replace(/^trustProxy: /, '')} (a number of proxies, 'true', or addresses and CIDRs)`);
  }
  return value;
}

/** `true`, a number of proxies, or addresses and CIDRs (comma-separated; a repeated flag adds more). */
export const trustProxy: Kind<TrustProxy> = {
  arg: 'HOPS|ADDRESSES',
  parse(value, name) {
    const parsed: TrustProxy = value === 'true' ? true : value === 'false' ? false : /^\d{1,3}$/.test(value) ? Number(value) : value.split(',').map((a) => a.trim());
    return checkTrustProxy(parsed, name);
  },
  schema: {
    description: 'true, false, a number of proxies, or a list of addresses and CIDRs',
    anyOf: [{ type: 'boolean' }, { type: 'integer', minimum: 0, maximum: 999 }, { type: 'array', items: { type: 'string' } }],
  },
  fromJson: (value, name) => checkTrustProxy(value as TrustProxy, name),
  show: (value) => (Array.isArray(value) ? value.join(',') : String(value)),
  combine: (earlier, later) => (Array.isArray(earlier) && Array.isArray(later) ? [...earlier, ...later] : later),
};

function checkOrigin(value: string, name: string): string {
  if (value === '*') return value;
  try {
    return parseOrigin(value);
  } catch (error) {
    throw new OptionError(`${name}: ${(error as Error).message}, or '*'`);
  }
}

/** Allowed origins: each an origin, or '*' for any. */
export const origins: Kind<string[]> = {
  arg: 'ORIGIN',
  parse: (value, name) => [checkOrigin(value, name)],
  schema: { type: 'array', items: { type: 'string' } },
  fromJson: (value, name) => (value as string[]).map((origin, i) => checkOrigin(origin, `${name}[${i}]`)),
  show: (value) => value.join(' '),
  combine: (earlier, later) => [...earlier, ...later],
};

/** A number of worker processes from 1 to 256, or 'auto' for one per core. */
const MAX_WORKERS = 256;
export const workerCountKind: Kind<number | 'auto'> = {
  arg: 'N|auto',
  parse(value, name) {
    if (value === 'auto') return 'auto';
    const n = /^\d{1,3}$/.test(value) ? Number(value) : NaN;
    if (!(n >= 1 && n <= MAX_WORKERS)) throw new OptionError(`${name} must be a number of processes from 1 to ${MAX_WORKERS}, or auto, not '${value}'`);
    return n;
  },
  schema: { description: `a number of processes from 1 to ${MAX_WORKERS}, or "auto"`, anyOf: [{ type: 'integer', minimum: 1, maximum: MAX_WORKERS }, { const: 'auto' }] },
  fromJson: same,
  show: String,
};
