/**
 * Whether JSON `text` nests objects and arrays more than `maxDepth` levels deep (a top-level
 * `{}` is one level). One linear pass over the text that skips string contents, so it is
 * safe to run before JSON.parse: V8 parses any depth, but the data would later overflow
 * the stack wherever it is serialized again. Malformed text is left for JSON.parse to
 * reject; the answer for it only bounds how deep an opening bracket run goes.
 */
export function exceedsJsonDepth(text: string, maxDepth: number): boolean {
  let depth = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x22 /* " */) {
      i = endOfString(text, i + 1);
    }
  }
  return false;
}

/** The index of the quote that closes the string whose contents start at `from`, or the end. */
function endOfString(text: string, from: number): number {
  let at = from;
  while (true) {
    const quote = text.indexOf('"', at);
    if (quote === -1) return text.length;
    // An odd run of backslashes before the quote escapes it. Runs are counted only back to
    // the previous quote, so the whole scan stays linear.
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote;
    at = quote + 1;
  }
}
