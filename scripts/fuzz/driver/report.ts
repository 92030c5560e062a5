// How a finding is printed: what was found, where (seed, iteration) and how to replay it.
import type { Finding } from './run.js';

export function formatFinding(f: Finding): string {
  const lines = [`FINDING ${f.target} [${f.kind}] seed=${f.seed} iteration=${f.iteration ?? '-'}`, ...f.message.split('\n').map((l) => `  ${l}`)];
  if (f.description !== null) lines.push(`  reproducer${f.minimized !== null ? ' (minimized)' : ''}: ${f.description}`);
  const replay = f.minimized ?? f.input;
  if (replay !== null) lines.push(`  replay: npm run fuzz -- --target ${f.target} --replay ${replay}`);
  return lines.join('\n');
}
