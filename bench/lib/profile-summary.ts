/**
 * Summarises V8 CPU profiles (.cpuprofile, as `node --cpu-prof` writes them, e.g. from
 * `bench/server.ts --profile DIR`): where the time went, by function (self and inclusive)
 * and by area (hotline's src/, ws, Node's internals, GC, native code, idle).
 *
 *   node --import tsx bench/lib/profile-summary.ts FILE.cpuprofile|DIR [...] [--top N] [--all]
 *                                                  [--callers NAME]
 *
 * --callers NAME   also show which functions call the functions whose name contains NAME,
 *                  with the inclusive time spent in NAME under each
 *
 * Times are shares of the sampled time the thread was not idle, unless --all. A directory
 * stands for the profiles in it; a process writes one per thread, and the one of tsx's
 * module-loader thread (busy only at start-up) is skipped.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const IDLE = '(idle)';

function shortUrl(url: string): string {
  if (url === '') return '';
  const main = url.indexOf('/work/main/');
  if (main !== -1) return url.slice(main + '/work/main/'.length);
  const modules = url.lastIndexOf('node_modules/');
  if (modules !== -1) return url.slice(modules + 'node_modules/'.length);
  return url.replace(/^file:\/\//, '');
}

function functionKey(frame: CallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  const url = shortUrl(frame.url);
  return url === '' ? name : `${name}  ${url}:${frame.lineNumber + 1}`;
}

/** Which part of the stack a frame belongs to. */
function areaOf(frame: CallFrame): string {
  const name = frame.functionName;
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'native (program)';
  const url = frame.url;
  if (url.includes('/work/main/src/protocol/')) return 'hotline src/protocol';
  if (url.includes('/work/main/src/node/')) return 'hotline src/node';
  if (url.includes('/work/main/src/')) return 'hotline src (other)';
  if (url.includes('/work/main/bench/')) return 'bench harness';
  if (url.includes('node_modules/ws/')) return 'ws';
  if (url.includes('node_modules/')) return 'other packages';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  if (url === '') return 'native / builtins';
  return 'other';
}

function pct(part: number, whole: number): string {
  return `${((part / whole) * 100).toFixed(1)}%`.padStart(6);
}

function summarise(file: string, top: number, includeIdle: boolean, callersOf: string | undefined): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  const callers = new Map<string, number>();
  let total = 0;
  let idle = 0;
  const add = (map: Map<string, number>, key: string, value: number): void => {
    map.set(key, (map.get(key) ?? 0) + value);
  };
  for (let i = 0; i < profile.samples.length; i++) {
    // A sample's time is the delta to the next sample.
    const delta = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]!);
    if (node === undefined) continue;
    if (node.callFrame.functionName === IDLE) {
      idle += delta;
      if (!includeIdle) continue;
    }
    total += delta;
    add(self, functionKey(node.callFrame), delta);
    // Area by the innermost frame that is not native glue, so a builtin called from
    // hotline code counts as hotline's.
    let areaNode: ProfileNode | undefined = node;
    while (areaNode !== undefined && areaNode.callFrame.url === '' && !areaNode.callFrame.functionName.startsWith('(')) {
      const up = parent.get(areaNode.id);
      areaNode = up === undefined ? undefined : byId.get(up);
    }
    add(areas, areaOf((areaNode ?? node).callFrame), delta);
    const seen = new Set<string>();
    let counted = false;
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      const key = functionKey(frame);
      if (callersOf !== undefined && !counted && frame.functionName.includes(callersOf)) {
        // The outermost JavaScript caller that is not itself a match.
        let up = parent.get(id);
        while (up !== undefined && byId.get(up)!.callFrame.functionName.includes(callersOf)) up = parent.get(up);
        const caller = up === undefined ? '(root)' : functionKey(byId.get(up)!.callFrame);
        add(callers, `${frame.functionName} <- ${caller}`, delta);
        counted = true;
      }
      if (key === '(root)' || seen.has(key)) continue;
      seen.add(key);
      add(inclusive, key, delta);
    }
  }
  const wall = profile.endTime - profile.startTime;
  const loader = [...inclusive.entries()].find(([key]) => key.startsWith('handleMessage  node:internal/modules/esm/worker'));
  if (loader !== undefined && loader[1] > 0.3 * total) {
    console.log(`\n${basename(dirname(file))}/${basename(file)}: the module loader's thread; skipped`);
    return;
  }
  console.log(`\n${basename(dirname(file))}/${basename(file)}: ${(wall / 1e6).toFixed(2)} s profiled, ${((idle / wall) * 100).toFixed(0)}% idle; shares of ${includeIdle ? 'all' : 'busy'} time`);
  const list = (title: string, map: Map<string, number>, n: number): void => {
    console.log(`  ${title}`);
    for (const [key, value] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)) {
      console.log(`    ${pct(value, total)}  ${key}`);
    }
  };
  list('by area (innermost JavaScript frame):', areas, 20);
  list(`self time, top ${top}:`, self, top);
  list(`inclusive time, top ${top}:`, inclusive, top);
  if (callersOf !== undefined) list(`callers of *${callersOf}* (inclusive time):`, callers, top);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '30' },
    all: { type: 'boolean', default: false },
    callers: { type: 'string' },
  },
});
if (positionals.length === 0) {
  console.error('usage: node --import tsx bench/lib/profile-summary.ts FILE.cpuprofile [...] [--top N] [--all]');
  process.exit(2);
}
for (const path of positionals) {
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((name) => name.endsWith('.cpuprofile'))
        .sort()
        .map((name) => join(path, name))
    : [path];
  for (const file of files) summarise(file, Number(values.top), values.all === true, values.callers);
}
