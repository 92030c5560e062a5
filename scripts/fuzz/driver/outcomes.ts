// What inputs led to (an error code, an accepted head, …): targets call outcome(), and the
// run collects the counts only while it runs an input whole (--stats).

/** What inputs led to (an error code, an accepted head, …), counted while a run collects them. */
let outcomes: Map<string, number> | null = null;

/** Counts into `into` from now on; null stops counting. */
export function collectOutcomes(into: Map<string, number> | null): void {
  outcomes = into;
}

export function outcome(label: string): void {
  if (outcomes !== null) outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
}
