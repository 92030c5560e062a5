/**
 * Whether a parsed JSON value holds a number that JSON cannot carry: `JSON.parse` reads
 * `1e400` (or 400 digits) as Infinity, which `JSON.stringify` would write back as `null`, so
 * such data would be acknowledged and then delivered changed. Walks the value once, without
 * recursion (its depth is bounded before parsing, but a stack is as cheap).
 */
export function hasNonFiniteNumber(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === 'number') {
      if (!Number.isFinite(item)) return true;
    } else if (Array.isArray(item)) {
      for (const element of item) stack.push(element);
    } else if (typeof item === 'object' && item !== null) {
      for (const key in item) if (Object.hasOwn(item, key)) stack.push((item as Record<string, unknown>)[key]);
    }
  }
  return false;
}
