import { runTarget } from './fuzz/driver/run.js';
import { TARGETS } from './fuzz/targets/index.js';
import { formatFinding } from './fuzz/driver/report.js';
for (const name of ['frame-server', 'frame-client', 'frame-server-deflate', 'frame-client-deflate', 'fragments']) {
  const r = await runTarget(TARGETS.get(name)!, { seed: name === 'fragments' ? 64551 : 6455, ms: 2000, budgetMs: 5000, minimizeMs: 1000 });
  console.log(name, r.executions, r.findings.map(formatFinding).map((s) => s.slice(0, 200)));
}
