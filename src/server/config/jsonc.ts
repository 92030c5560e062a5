/**
 * JSON with comments (JSONC, as tsconfig.json): `//` and `/* *\/` comments and trailing
 * commas are allowed, nothing else beyond JSON. Read with VS Code's jsonc-parser, which says
 * where each error is (a config error must name the line and column); on top of it,
 * duplicate keys are errors (the second would silently win), nesting is bounded, and
 * `__proto__` is an ordinary key.
 */
import { printParseErrorCode, visit } from 'jsonc-parser';

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

/** Nesting deeper than this is refused: a config never needs it. */
const MAX_DEPTH = 64;

/** jsonc-parser's error names (printParseErrorCode), said as a person would. */
const REASONS: Record<string, string> = {
  InvalidSymbol: 'unexpected character',
  InvalidNumberFormat: 'a number is not valid',
  PropertyNameExpected: 'expected a key in double quotes',
  ValueExpected: 'expected a value',
  ColonExpected: "expected ':' after a key",
  CommaExpected: "expected ','",
  CloseBraceExpected: "expected '}'",
  CloseBracketExpected: "expected ']'",
  EndOfFileExpected: 'unexpected text after the end of the value',
  InvalidCommentToken: 'a comment is not valid',
  UnexpectedEndOfComment: 'a /* comment is never closed',
  UnexpectedEndOfString: 'a string is never closed',
  UnexpectedEndOfNumber: 'a number ends too soon',
  InvalidUnicode: 'a \\u escape is not valid',
  InvalidEscapeCharacter: 'a string holds a bad escape',
  InvalidCharacter: 'a string holds a control character',
};

type Container = { kind: 'object'; value: Record<string, unknown>; key: string | null } | { kind: 'array'; value: unknown[] };

export function parseJsonc(text: string): unknown {
  const stack: Container[] = [];
  let root: unknown;
  let done = false;
  const fail = (line: number, character: number, reason: string): never => {
    throw new JsoncError(line + 1, character + 1, reason);
  };
  const put = (value: unknown): void => {
    const top = stack[stack.length - 1];
    if (top === undefined) {
      root = value;
      done = true;
    } else if (top.kind === 'array') top.value.push(value);
    else {
      // defineProperty: `__proto__` becomes an own key (which the schema then calls unknown), never the prototype.
      Object.defineProperty(top.value, top.key!, { value, enumerable: true, writable: true, configurable: true });
      top.key = null;
    }
  };
  const open = (container: Container, line: number, character: number): void => {
    if (stack.length >= MAX_DEPTH) fail(line, character, `nested deeper than ${MAX_DEPTH} levels`);
    put(container.value);
    stack.push(container);
  };
  visit(
    text,
    {
      onObjectBegin: (_offset, _length, line, character) => open({ kind: 'object', value: {}, key: null }, line, character),
      onArrayBegin: (_offset, _length, line, character) => open({ kind: 'array', value: [] }, line, character),
      onObjectEnd: () => void stack.pop(),
      onArrayEnd: () => void stack.pop(),
      onObjectProperty: (property, _offset, _length, line, character) => {
        const top = stack[stack.length - 1] as Extract<Container, { kind: 'object' }>;
        if (Object.hasOwn(top.value, property)) fail(line, character, `the key ${JSON.stringify(property)} appears twice`);
        top.key = property;
      },
      onLiteralValue: (value) => put(value),
      onError: (error, offset, length, line, character) => {
        const name = printParseErrorCode(error);
        const inside = stack[stack.length - 1]?.kind;
        const reason = name === 'CommaExpected' && inside !== undefined ? `expected ',' or '${inside === 'object' ? '}' : ']'}'` : (REASONS[name] ?? 'not valid JSON');
        const found = offset < text.length ? `, found ${JSON.stringify(text.slice(offset, offset + Math.max(1, Math.min(length, 20))))}` : '';
        fail(line, character, reason + found);
      },
    },
    { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false },
  );
  if (!done) fail(0, 0, 'expected a value');
  return root;
}
