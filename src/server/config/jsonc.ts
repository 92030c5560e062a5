/**
 * JSON with comments (JSONC, as tsconfig.json): `//` and `/* *\/` comments and trailing
 * commas are allowed, nothing else beyond JSON. A parser of its own rather than a stripper
 * in front of JSON.parse, because JSON.parse does not always say where the error is, and
 * a config error must name the line and column. Duplicate keys are errors (the second
 * would silently win), and `__proto__` is an ordinary key.
 */

/** A syntax error at a 1-based line and column. */
export class JsoncError extends Error {
  readonly code = 'BAD_JSON';
  constructor(
    readonly line: number,
    readonly column: number,
    readonly reason: string,
  ) {
    super(`line ${line}, column ${column}: ${reason}`);
  }
}

/** Nesting deeper than this is refused: a config never needs it, and recursion must stay bounded. */
const MAX_DEPTH = 64;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const LITERALS: ReadonlyArray<[string, unknown]> = [
  ['true', true],
  ['false', false],
  ['null', null],
];

export function parseJsonc(text: string): unknown {
  let i = 0;

  const fail = (reason: string, at = i): never => {
    let line = 1;
    let start = 0;
    for (let k = 0; k < at && k < text.length; k++) {
      if (text[k] === '\n') {
        line++;
        start = k + 1;
      }
    }
    throw new JsoncError(line, at - start + 1, reason);
  };
  const describe = (at: number): string => (at >= text.length ? 'the end of the file' : JSON.stringify(text[at]));

  const skip = (): void => {
    while (i < text.length) {
      const c = text[i]!;
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\uFEFF') i++;
      else if (c === '/' && text[i + 1] === '/') {
        while (i < text.length && text[i] !== '\n') i++;
      } else if (c === '/' && text[i + 1] === '*') {
        const end = text.indexOf('*/', i + 2);
        if (end === -1) fail('a /* comment is never closed');
        i = end + 2;
      } else return;
    }
  };

  const string = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') i++;
      if (text[i] === '\n') fail('a string does not end on its line');
      i++;
    }
    if (i >= text.length) fail('a string is never closed', start);
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail('a string holds a bad escape or a control character', start);
    }
  };

  const value = (depth: number): unknown => {
    skip();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH} levels`);
      return c === '{' ? object(depth + 1) : array(depth + 1);
    }
    if (c === '"') return string();
    NUMBER.lastIndex = i;
    const number = NUMBER.exec(text);
    if (number !== null) {
      i += number[0].length;
      return Number(number[0]);
    }
    for (const [word, literal] of LITERALS) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return literal;
      }
    }
    return fail(`expected a value, found ${describe(i)}`);
  };

  /** After an element: a comma (a trailing one allowed) or the closing bracket; true when closed. */
  const next = (close: string, what: string): boolean => {
    skip();
    if (text[i] === close) {
      i++;
      return true;
    }
    if (text[i] !== ',') fail(`expected ',' or '${close}' after ${what}, found ${describe(i)}`);
    i++;
    skip();
    if (text[i] === close) {
      i++;
      return true;
    }
    return false;
  };

  const object = (depth: number): Record<string, unknown> => {
    const result: Record<string, unknown> = {};
    i++;
    skip();
    if (text[i] === '}') {
      i++;
      return result;
    }
    for (;;) {
      skip();
      if (text[i] !== '"') fail(`expected a key in double quotes, found ${describe(i)}`);
      const at = i;
      const key = string();
      if (Object.hasOwn(result, key)) fail(`the key ${JSON.stringify(key)} appears twice`, at);
      skip();
      if (text[i] !== ':') fail(`expected ':' after the key ${JSON.stringify(key)}, found ${describe(i)}`);
      i++;
      Object.defineProperty(result, key, { value: value(depth), enumerable: true, writable: true, configurable: true });
      if (next('}', 'a property')) return result;
    }
  };

  const array = (depth: number): unknown[] => {
    const result: unknown[] = [];
    i++;
    skip();
    if (text[i] === ']') {
      i++;
      return result;
    }
    for (;;) {
      result.push(value(depth));
      if (next(']', 'an element')) return result;
    }
  };

  const result = value(0);
  skip();
  if (i < text.length) fail(`unexpected ${describe(i)} after the end of the value`);
  return result;
}
