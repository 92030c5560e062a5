import { DEFAULT_WIRE_LIMITS } from './limits.js';

/** The punctuation a channel name may use besides ASCII letters and digits. */
export const CHANNEL_NAME_PUNCTUATION = '_-:.@/=,';

const ALLOWED_DESCRIPTION = `A-Z, a-z, 0-9 and ${CHANNEL_NAME_PUNCTUATION.split('').join(' ')}`;

// A table lookup per character: names are checked on every sub and pub.
const allowed = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9]/.test(ch) || CHANNEL_NAME_PUNCTUATION.includes(ch)) allowed[c] = 1;
}

/**
 * Checks a channel name: 1 to `maxLength` characters, each an ASCII letter or digit or one
 * of `_ - : . @ / = ,` (so no whitespace, no quotes, nothing that needs escaping in JSON,
 * a URL path or a Redis key pattern). Returns what is wrong, or null for a valid name.
 */
export function validateChannelName(
  name: string,
  maxLength: number = DEFAULT_WIRE_LIMITS.maxChannelNameLength,
): string | null {
  if (name.length === 0) return 'it is empty';
  if (name.length > maxLength) return `it is ${name.length} characters long; the limit is ${maxLength}`;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code >= 128 || allowed[code] === 0) {
      return `character ${describeCharacter(name, i)} at index ${i} is not allowed (use ${ALLOWED_DESCRIPTION})`;
    }
  }
  return null;
}

export function isValidChannelName(
  name: unknown,
  maxLength: number = DEFAULT_WIRE_LIMITS.maxChannelNameLength,
): name is string {
  return typeof name === 'string' && validateChannelName(name, maxLength) === null;
}

/** Visible ASCII as itself in quotes, anything else as a code point, so messages stay readable. */
function describeCharacter(text: string, index: number): string {
  const code = text.codePointAt(index)!;
  if (code > 0x20 && code < 0x7f) return `"${text[index]!}"`;
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}
