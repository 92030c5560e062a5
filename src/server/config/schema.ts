/**
 * The config file's JSON Schema, generated: each flat option's kind gives its own (options.ts,
 * kinds.ts), and the sections of sections.ts (namespaces, token, api, proxy) are described
 * here, leaf by leaf, so that every leaf is also a flag and a HOTLINE_* variable
 * (token.hmacSecret: --token-hmac-secret, HOTLINE_TOKEN_HMAC_SECRET). Object-valued leaves
 * (namespaces, a proxy hook) are given as JSON there.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { validateChannelName } from '../../wire/index.js';
import { MIN_ADMIN_SECRET_LENGTH } from '../admin.js';
import { SERVE_OPTIONS, type ServeOptionKey } from '../options.js';
import { describeErrors, keyPath } from './errors.js';
import { bytes, count, ms, OptionError, rate, text, toggle, type JsonSchema, type Kind } from './kinds.js';
import type { NamespaceConfig, NamespacesConfig } from './sections.js';

/** An Ajv for hotline's own schemas and the users' (namespaces' data schemas): 2020-12, every error. */
export function newAjv(): Ajv2020 {
  return new Ajv2020({ allErrors: true, verbose: true });
}

export const ACCESS = ['anyone', 'authenticated', 'claim', 'token', 'server'] as const;
const access: JsonSchema = { enum: [...ACCESS] };

/** One namespace's options (NamespaceConfig). */
export const NAMESPACE_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    subscribe: access,
    publish: access,
    history: access,
    presenceRead: access,
    presence: { type: 'boolean' },
    joinLeave: { type: 'boolean' },
    historySize: count(0).schema,
    historyTtl: ms(0).schema,
    schema: { type: 'object' },
    stateSchema: { type: 'object' },
    publishRate: rate.schema,
  },
  additionalProperties: false,
};

const NAMESPACES_SCHEMA: JsonSchema = { type: 'object', additionalProperties: NAMESPACE_SCHEMA };

const HTTP_URL = '^https?://[^\\s]+$';
const ENDPOINT_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    url: { type: 'string', pattern: HTTP_URL, description: 'an http:// or https:// URL' },
    timeout: ms(1).schema,
    headers: { type: 'array', items: { type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" } },
  },
  required: ['url'],
  additionalProperties: false,
};

export const ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

let ajv: Ajv2020 | null = null;
/** The shared Ajv for the config's own schemas, made when first needed (compiling costs a few ms). */
export function configAjv(): Ajv2020 {
  ajv ??= newAjv();
  return ajv;
}

/** A value given as JSON text on the command line or in the environment, checked against `schema`. */
function json<V>(arg: string, schema: JsonSchema, check: (value: V, name: string) => V = (value) => value): Kind<V> {
  let validate: ValidateFunction | null = null;
  return {
    arg,
    parse(textValue, name) {
      let value: unknown;
      try {
        value = JSON.parse(textValue);
      } catch (error) {
        throw new OptionError(`${name} must be JSON: ${(error as Error).message}`);
      }
      validate ??= configAjv().compile(schema);
      if (!validate(value)) {
        throw new OptionError(describeErrors(`${name}: `, validate.errors ?? [], value).join('; '));
      }
      return check(value as V, name);
    },
    schema,
    fromJson: (value, name) => check(value as V, name),
    show: (value) => JSON.stringify(value),
  };
}

/** A comma-separated list on the command line, an array in a file. */
function list(arg: string, values: readonly string[]): Kind<string[]> {
  return {
    arg,
    parse(textValue, name) {
      const items = textValue.split(',').map((item) => item.trim());
      for (const item of items) if (!values.includes(item)) throw new OptionError(`${name} must list some of ${values.join(', ')}, not '${item}'`);
      return items;
    },
    schema: { type: 'array', items: { enum: [...values] }, minItems: 1, uniqueItems: true },
    fromJson: (value) => value as string[],
    show: (value) => value.join(','),
  };
}

/** Where a namespace's pattern or data schema is wrong: one line naming it. */
function checkNamespaces(namespaces: NamespacesConfig, name: string): NamespacesConfig {
  const normalized: NamespacesConfig = {};
  for (const [pattern, options] of Object.entries(namespaces)) {
    const where = `${name}.${keyPath([pattern])}`;
    const bare = pattern.endsWith('*') ? pattern.slice(0, -1) : pattern;
    const problem = bare === '' && pattern === '*' ? null : validateChannelName(bare);
    if (problem !== null) throw new OptionError(`${where} is not a channel name or a prefix ending in '*': ${problem}`);
    const namespace: NamespaceConfig = { ...options };
    if (options.publishRate !== undefined) namespace.publishRate = rate.fromJson(options.publishRate, `${where}.publishRate`);
    for (const key of ['schema', 'stateSchema'] as const) {
      if (options[key] === undefined) continue;
      try {
        newAjv().compile(options[key]);
      } catch (error) {
        throw new OptionError(`${where}.${key} is not a usable JSON Schema: ${(error as Error).message}`);
      }
    }
    Object.defineProperty(normalized, pattern, { value: namespace, enumerable: true, writable: true, configurable: true });
  }
  return normalized;
}

const urlText = (what: string): Kind<string> =>
  text('URL', (value, name) => {
    if (!new RegExp(HTTP_URL).test(value)) throw new OptionError(`${name} must be an http:// or https:// URL${what}, not '${value}'`);
  });

/** A leaf of a section: a key of the file's object, also a flag and a variable. */
export interface SectionSetting {
  section: 'namespaces' | 'token' | 'api' | 'proxy';
  /** The key within the section; absent: the section is one value (namespaces). */
  key?: string;
  kind: Kind<unknown>;
  help: string;
}

const setting = <V>(section: SectionSetting['section'], key: string | undefined, kind: Kind<V>, help: string): SectionSetting =>
  ({ section, key, kind: kind as Kind<unknown>, help });

const endpoint = (hook: string): SectionSetting =>
  setting('proxy', hook, json('JSON', ENDPOINT_SCHEMA), `{"url": …, "timeout": MS, "headers": [...]}: POST each ${hook} to the backend`);

/** The sections' leaves, in the order of --help and the reference. */
export const SECTION_SETTINGS: readonly SectionSetting[] = [
  setting('namespaces', undefined, json('JSON', NAMESPACES_SCHEMA, checkNamespaces), 'channel options by name pattern ("chat:*"): who may subscribe, publish, read history and presence; history, presence, joinLeave, schema, stateSchema, publish rate. With namespaces, a channel in none is refused. Default: every channel open to everyone'),
  setting('token', 'hmacSecret', text('SECRET', (value, name) => {
    if (value.length < 32) throw new OptionError(`${name} must be at least 32 characters (try: openssl rand -hex 32)`);
  }), 'HS256/384/512 shared secret for connection and subscription tokens (JWT)'),
  setting('token', 'publicKey', text('PEM'), 'PEM public key (SPKI) for RS*, PS*, ES* or EdDSA tokens'),
  setting('token', 'jwksUrl', urlText(''), 'a JWKS URL: keys chosen by kid, cached and refreshed'),
  setting('token', 'jwksTimeout', ms(1), 'how long a JWKS fetch may take; tokens waiting on it get 503 past it [default: 5000 ms]'),
  setting('token', 'jwksCooldown', ms(0), 'least time between two JWKS fetches, whatever kids tokens name [default: 30000 ms]'),
  setting('token', 'algorithms', list('ALGS', ALGORITHMS), 'accepted algorithms (default: those of the configured keys; never none)'),
  setting('token', 'audience', text('AUD'), 'required aud claim'),
  setting('token', 'issuer', text('ISS'), 'required iss claim'),
  setting('token', 'clockTolerance', ms(0), 'leeway for exp and nbf [default: 5000 ms]'),
  setting('token', 'cookie', text('NAME'), 'cookie holding a connection token'),
  setting('token', 'queryParam', text('NAME'), 'query parameter holding a connection token [default: token]'),
  setting('token', 'required', toggle, 'refuse connections without a token with 401 [default: off]'),
  setting('api', 'key', text('KEY', (value, name) => {
    if (value.length < MIN_ADMIN_SECRET_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
      throw new OptionError(`${name} must be at least ${MIN_ADMIN_SECRET_LENGTH} visible ASCII characters without spaces (try: openssl rand -hex 16)`);
    }
  }), 'the HTTP API key (Authorization: apikey KEY); without one the API is off'),
  setting('api', 'maxBodyBytes', bytes(1), 'largest HTTP API request body; larger ones 413 [default: 256 KiB, more with --max-data-length]'),
  setting('api', 'requestTimeout', ms(1), 'how long an HTTP API request body may take to arrive; slower ones 408 [default: 10000 ms]'),
  endpoint('connect'),
  endpoint('subscribe'),
  endpoint('publish'),
  endpoint('rpc'),
  setting('proxy', 'maxInFlight', count(1), 'proxy calls in flight at once, every connection together [default: 1000]'),
  setting('proxy', 'maxInFlightPerConnection', count(1), "one connection's rpc calls to the backend at once; more wait their turn [default: 8]"),
  setting('proxy', 'maxAnswerBytes', bytes(1), "the largest answer read from the backend; a longer one is the backend's fault (internal) [default: 262144 = 256 KiB, more with a larger maxDataLength]"),
];

/** A setting's path in the file (token.hmacSecret), its flag and its variable. */
export function sectionPath(s: SectionSetting): string[] {
  return s.key === undefined ? [s.section] : [s.section, s.key];
}

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export const sectionFlag = (s: SectionSetting): string => sectionPath(s).map(kebab).join('-');
export const sectionEnv = (s: SectionSetting): string => `HOTLINE_${sectionFlag(s).replace(/-/g, '_').toUpperCase()}`;

/** The whole file: the flat options and the sections, and nothing else. */
export function configSchema(): JsonSchema {
  const properties: Record<string, JsonSchema> = { $schema: { type: 'string' } };
  for (const key of Object.keys(SERVE_OPTIONS) as ServeOptionKey[]) properties[key] = SERVE_OPTIONS[key].kind.schema;
  for (const s of SECTION_SETTINGS) {
    if (s.key === undefined) properties[s.section] = s.kind.schema;
    else {
      const section = (properties[s.section] ??= { type: 'object', properties: {}, additionalProperties: false });
      (section.properties as Record<string, JsonSchema>)[s.key] = s.kind.schema;
    }
  }
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties, additionalProperties: false };
}
