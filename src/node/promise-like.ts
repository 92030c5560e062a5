/** Whether a hook answered with a promise (or any thenable) rather than its decision. */
export function isPromiseLike<V>(value: V | PromiseLike<V>): value is PromiseLike<V> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
