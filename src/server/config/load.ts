/**
 * `hotline serve`'s configuration from its three sources, each key from the first that has
 * it: flags, then HOTLINE_* variables, then the config file (--config FILE or
 * HOTLINE_CONFIG), then the defaults. Every key of the file is a flag and a variable too
 * (options.ts for the flat ones, schema.ts for the sections' leaves). The file is JSON with
 * comments, validated whole against the generated schema, so that every problem in it is
 * reported at once, one line each, naming the file and the key.
 */
import { readFileSync } from 'node:fs';
import { envOf, flagOf, SERVE_OPTION_KEYS, SERVE_OPTIONS, type ServeConfig, type ServeOptionKey } from '../options.js';
import { describeErrors, keyPath } from './errors.js';
import { parseJsonc, JsoncError } from './jsonc.js';
import { OptionError, type Kind } from './kinds.js';
import { configAjv, configSchema, SECTION_SETTINGS, sectionEnv, sectionFlag, sectionPath, type SectionSetting } from './schema.js';
import type { ApiConfig, NamespacesConfig, ProxyConfig, TokenConfig } from './sections.js';

/** The config's sections, as createApp takes them. */
export interface ServeSections {
  namespaces?: NamespacesConfig;
  token?: TokenConfig;
  api?: ApiConfig;
  proxy?: ProxyConfig;
}

export interface LoadedConfig {
  /** Every flat option, given or defaulted. */
  config: ServeConfig;
  sections: ServeSections;
  /** The config file read, if any. */
  file?: string;
}

/** A config file that cannot be used: one line per problem, each naming the file. */
export class ConfigError extends Error {
  readonly code = 'BAD_CONFIG';
  constructor(readonly lines: readonly string[]) {
    super(lines.join('\n'));
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** One key of the configuration, wherever it is written. */
interface Setting {
  /** Its path in the file, dotted (port, token.hmacSecret). */
  id: string;
  path: readonly string[];
  flag: string;
  env: string;
  kind: Kind<unknown>;
  default?: unknown;
}

const SETTINGS: readonly Setting[] = [
  ...SERVE_OPTION_KEYS.map((key): Setting => {
    const def = SERVE_OPTIONS[key];
    return { id: key, path: [key], flag: flagOf(key), env: envOf(key), kind: def.kind as Kind<unknown>, default: def.default };
  }),
  ...SECTION_SETTINGS.map((s: SectionSetting): Setting => ({ id: sectionPath(s).join('.'), path: sectionPath(s), flag: sectionFlag(s), env: sectionEnv(s), kind: s.kind })),
];

/** Values by setting id, from one source. */
type Layer = Map<string, unknown>;

/** The flag that names the config file, and its variable. */
export const CONFIG_FLAG = 'config';
export const CONFIG_ENV = 'HOTLINE_CONFIG';

/**
 * Reads a config file's text into values by key: its syntax, then the schema (every error),
 * then each kind's own checks. `name` is how errors name the file.
 * @throws ConfigError
 */
export function parseConfigText(name: string, text: string): Layer {
  let data: unknown;
  try {
    data = parseJsonc(text);
  } catch (error) {
    if (error instanceof JsoncError) throw new ConfigError([`${name}: ${error.message}`]);
    throw error;
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([`${name}: the file must hold one JSON object ({ "port": 8080, ... }), not ${Array.isArray(data) ? 'a list' : JSON.stringify(data)}`]);
  }
  const validate = configAjv().compile(configSchema());
  const errors = validate(data) ? [] : (validate.errors ?? []);
  const problems = describeErrors(`${name}: `, errors, data);
  // Keys the schema found wrong are not checked further; the others are, so that one run reports all.
  const wrong = errors.map((e) => `${e.instancePath}/`);
  const layer: Layer = new Map();
  for (const setting of SETTINGS) {
    const pointer = `/${setting.path.join('/')}/`;
    if (wrong.some((p) => p.startsWith(pointer))) continue;
    let value: unknown = data;
    for (const key of setting.path) value = value !== undefined && Object.hasOwn(value as object, key) ? (value as Record<string, unknown>)[key] : undefined;
    if (value === undefined) continue;
    try {
      layer.set(setting.id, setting.kind.fromJson(value, `${name}: ${keyPath(setting.path)}`));
    } catch (error) {
      if (!(error instanceof OptionError)) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return layer;
}

/** Reads and checks a config file. @throws ConfigError (a missing file included) */
export function readConfigFile(file: string): Layer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? String(error));
    throw new ConfigError([`${file}: cannot read the config file: ${why}`]);
  }
  return parseConfigText(file, text);
}

/** What a config file sets, for `hotline config check`: "5 options, 2 namespaces, token". */
export function summarize(layer: Layer): string {
  const flat = [...layer.keys()].filter((id) => !id.includes('.') && id !== 'namespaces').length;
  const namespaces = layer.get('namespaces') as NamespacesConfig | undefined;
  const sections = new Set([...layer.keys()].filter((id) => id.includes('.')).map((id) => id.split('.')[0]!));
  const parts = [`${flat} option${flat === 1 ? '' : 's'}`];
  if (namespaces !== undefined) parts.push(`${Object.keys(namespaces).length} namespace${Object.keys(namespaces).length === 1 ? '' : 's'}`);
  parts.push(...sections);
  return parts.join(', ');
}

/** Values from flags; `--config` is returned apart. `--x VALUE`, `--x=VALUE`, `--x`/`--no-x` for switches. */
function readFlags(args: readonly string[]): { layer: Layer; configFile?: string } {
  const byFlag = new Map<string, [Setting, boolean | undefined]>();
  for (const setting of SETTINGS) {
    if (setting.kind.arg === undefined) {
      byFlag.set(setting.flag, [setting, true]);
      byFlag.set(`no-${setting.flag}`, [setting, false]);
    } else byFlag.set(setting.flag, [setting, undefined]);
  }
  const layer: Layer = new Map();
  let configFile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new OptionError(`unexpected argument '${arg}' (hotline serve --help lists the options)`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const value = (placeholder: string): string => {
      if (eq !== -1) return arg.slice(eq + 1);
      if (i + 1 >= args.length) throw new OptionError(`--${name} needs a value: --${name} ${placeholder}`);
      return args[++i]!;
    };
    if (name === CONFIG_FLAG) {
      configFile = value('FILE');
      continue;
    }
    const entry = byFlag.get(name);
    if (entry === undefined) throw new OptionError(`unknown option --${name} (hotline serve --help lists the options)`);
    const [setting, switchValue] = entry;
    let parsed: unknown;
    if (switchValue !== undefined) {
      if (eq !== -1) throw new OptionError(`--${name} takes no value`);
      parsed = switchValue;
    } else parsed = setting.kind.parse(value(setting.kind.arg!), `--${name}`);
    const earlier = layer.get(setting.id);
    layer.set(setting.id, earlier !== undefined && setting.kind.combine ? setting.kind.combine(earlier, parsed) : parsed);
  }
  return { layer, configFile };
}

/** Values from HOTLINE_* variables (an empty one is unset). */
function readEnv(env: Env): Layer {
  const layer: Layer = new Map();
  for (const setting of SETTINGS) {
    const value = env[setting.env];
    if (value !== undefined && value !== '') layer.set(setting.id, setting.kind.parse(value, setting.env));
  }
  return layer;
}

/** The layers joined, the first that has a key winning; the flat options defaulted. */
function combine(layers: readonly Layer[]): { config: ServeConfig; sections: ServeSections } {
  const value = (id: string): unknown => layers.find((layer) => layer.has(id))?.get(id);
  const config = {} as Record<ServeOptionKey, unknown>;
  // Null is a value given (a limit turned off), not a missing one.
  for (const key of SERVE_OPTION_KEYS) {
    const given = value(key);
    config[key] = given === undefined ? SERVE_OPTIONS[key].default : given;
  }
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) throw new OptionError('--tls-cert and --tls-key go together');
  const sections: Record<string, Record<string, unknown>> = {};
  for (const s of SECTION_SETTINGS) {
    const v = value(sectionPath(s).join('.'));
    if (v === undefined) continue;
    if (s.key === undefined) (sections as Record<string, unknown>)[s.section] = v;
    else (sections[s.section] ??= {})[s.key] = v;
  }
  return { config: config as ServeConfig, sections: sections as ServeSections };
}

/**
 * Reads `hotline serve`'s arguments, the environment and the config file they name into
 * every option (defaults applied) and the sections.
 * @throws OptionError (a flag or variable) or ConfigError (the file), one line per problem.
 */
export function loadServeConfig(args: readonly string[], env: Env = {}): LoadedConfig {
  const flags = readFlags(args);
  const fromEnv = readEnv(env);
  const file = flags.configFile ?? (env[CONFIG_ENV] === '' ? undefined : env[CONFIG_ENV]);
  const fromFile = file === undefined ? new Map() : readConfigFile(file);
  return { ...combine([flags.layer, fromEnv, fromFile]), ...(file !== undefined && { file }) };
}

/** The flat options alone, from flags and variables (no file): what tests of the table use. */
export function parseServeArgs(args: readonly string[], env: Env = {}): ServeConfig {
  return loadServeConfig(args, env).config;
}

/** --help lines of --config and of the sections' flags. */
export function sectionHelpEntries(): Array<{ section: string; flag: string; kind: Kind<unknown>; help: string }> {
  const label: Record<SectionSetting['section'], string> = {
    namespaces: 'Namespaces (who may do what on which channels)',
    token: 'Tokens (JWT)',
    api: 'HTTP API',
    proxy: 'Proxy hooks',
  };
  return SECTION_SETTINGS.map((s) => ({ section: label[s.section], flag: sectionFlag(s), kind: s.kind, help: s.help }));
}
