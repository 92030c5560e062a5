/**
 * Ajv's errors as one line each, for people: the key path as it reads in the file
 * (namespaces."chat:*".publish), what was expected, and what was there. A union (a rate,
 * trustProxy) that fails says what it accepts once, not one line per branch.
 */
import type { ErrorObject } from 'ajv/dist/2020.js';
import type { JsonSchema } from './kinds.js';

/** A path of keys as written in JavaScript: plain names bare, others quoted, indexes in brackets. */
export function keyPath(keys: readonly (string | number)[]): string {
  let path = '';
  for (const key of keys) {
    if (typeof key === 'number') path += `[${key}]`;
    else path += `${path === '' ? '' : '.'}${/^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key)}`;
  }
  return path;
}

/** Ajv's instancePath (a JSON Pointer) as keys. */
function pointerKeys(pointer: string, data: unknown): Array<string | number> {
  if (pointer === '') return [];
  const keys: Array<string | number> = [];
  let at = data;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const index = Array.isArray(at) && /^\d+$/.test(key) ? Number(key) : key;
    keys.push(index);
    at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined;
  }
  return keys;
}

/** A value in a message: short JSON. */
export function shown(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

const TYPES: Record<string, string> = {
  integer: 'a whole number',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

/** The closest of `names` to `name` (a typo), if it is close. */
function closest(name: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of names) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** What a failed keyword expected, as words. */
function expected(error: ErrorObject): string {
  const schema = (error.parentSchema ?? {}) as JsonSchema;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'type':
      return String(params.type).split(',').map((t) => TYPES[t] ?? t).join(' or ');
    case 'enum':
      return `one of ${(params.allowedValues as unknown[]).map((v) => (typeof v === 'string' ? v : shown(v))).join(', ')}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum': {
      const what = schema.type === 'integer' ? 'a whole number' : 'a number';
      if (schema.exclusiveMinimum !== undefined) return `${what} above ${String(schema.exclusiveMinimum)}${schema.maximum === undefined ? '' : ` up to ${String(schema.maximum)}`}`;
      if (schema.minimum !== undefined && schema.maximum !== undefined) return `${what} from ${String(schema.minimum)} to ${String(schema.maximum)}`;
      return `${what} ${error.message ?? ''}`;
    }
    case 'minLength':
      return `at least ${String(params.limit)} characters long`;
    case 'maxLength':
      return `at most ${String(params.limit)} characters long`;
    case 'pattern':
      return typeof schema.description === 'string' ? schema.description : `text matching ${String(params.pattern)}`;
    case 'anyOf':
    case 'oneOf':
      return typeof schema.description === 'string' ? schema.description : 'one of the allowed forms';
    case 'minItems':
      return `a list of at least ${String(params.limit)}`;
    case 'uniqueItems':
      return 'a list without repeats';
    default:
      return error.message ?? 'valid';
  }
}

/**
 * One line per problem, each starting with `prefix` (the file's name): unknown keys (with
 * the likely intended one), missing keys, and values that are not what the key expects.
 */
export function describeErrors(prefix: string, errors: readonly ErrorObject[], data: unknown): string[] {
  // A union's branches each fail; the union's own error says it once.
  const unions = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => `${e.schemaPath}/`);
  const lines: string[] = [];
  for (const error of errors) {
    if (unions.some((union) => error.schemaPath.startsWith(union))) continue;
    const keys = pointerKeys(error.instancePath, data);
    const path = keyPath(keys);
    const params = error.params as Record<string, unknown>;
    if (error.keyword === 'additionalProperties') {
      const extra = String(params.additionalProperty);
      const known = Object.keys(((error.parentSchema ?? {}) as { properties?: object }).properties ?? {});
      const guess = closest(extra, known);
      const hint = guess !== undefined ? ` (did you mean ${guess}?)` : known.length > 0 && known.length <= 12 ? ` (expected one of ${known.join(', ')})` : '';
      lines.push(`${prefix}unknown key ${keyPath([...keys, extra])}${hint}`);
    } else if (error.keyword === 'required') {
      lines.push(`${prefix}${path === '' ? 'the file' : path} needs ${keyPath([...keys, String(params.missingProperty)])}`);
    } else {
      lines.push(`${prefix}${path === '' ? 'the file' : path} must be ${expected(error)} (got ${shown(error.data)})`);
    }
  }
  return [...new Set(lines)];
}
