/**
 * Whether `name` matches `pattern`, where `*` stands for any run of characters (none
 * included) and every other character for itself: `chat:*`, `*:lobby`, `user:*:inbox`.
 * Greedy with one backtrack point, so it runs in O(name × pattern) at worst, never
 * exponentially as a regular expression built from a caller's pattern could.
 */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let resume = 0;
  while (n < name.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.length && pattern[p] === name[n]) {
      p++;
      n++;
    } else if (star !== -1) {
      p = star + 1;
      n = ++resume;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
