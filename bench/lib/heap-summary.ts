/**
 * What a number of connections added to a heap: compares two V8 heap snapshots (as
 * `bench/server.ts --heap-snapshot DIR` writes them, before and after opening idle
 * connections) by object kind, and divides by the number of connections.
 *
 *   node --import tsx bench/lib/heap-summary.ts BEFORE.heapsnapshot AFTER.heapsnapshot
 *                                              [--per N] [--top N] [--detail KIND]
 *
 * --detail KIND    for the objects of one kind (as printed, e.g. "Object (object)"), the most
 *                  common property names and what holds them (in AFTER)
 *
 * Objects are grouped by node type and name (for objects: the constructor's name; for
 * closures: the function's name; "system / ..." names are V8's internal structures).
 * Sizes are shallow (self) sizes, which add up to the JS heap's live size.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

interface Group {
  count: number;
  size: number;
}

function load(file: string): Snapshot {
  return JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
}

/** The group a node belongs to: its type and name (strings by type only). */
function keyOf(data: Snapshot, index: number): string {
  const fields = data.snapshot.meta.node_fields;
  const type = data.snapshot.meta.node_types[0][data.nodes[index + fields.indexOf('type')]!] ?? '?';
  let name = data.strings[data.nodes[index + fields.indexOf('name')]!] ?? '?';
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '';
  else if (name.length > 60) name = `${name.slice(0, 57)}...`;
  return name === '' ? `(${type})` : `${name} (${type})`;
}

function groups(data: Snapshot): Map<string, Group> {
  const fields = data.snapshot.meta.node_fields;
  const stride = fields.length;
  const sizeAt = fields.indexOf('self_size');
  const result = new Map<string, Group>();
  const nodes = data.nodes;
  for (let i = 0; i < nodes.length; i += stride) {
    const key = keyOf(data, i);
    const group = result.get(key);
    if (group === undefined) result.set(key, { count: 1, size: nodes[i + sizeAt]! });
    else {
      group.count++;
      group.size += nodes[i + sizeAt]!;
    }
  }
  return result;
}

/** Property names and holders of the nodes of one group, most common first. */
function detail(data: Snapshot, kind: string, top: number): void {
  const nodeFields = data.snapshot.meta.node_fields;
  const stride = nodeFields.length;
  const edgeCountAt = nodeFields.indexOf('edge_count');
  const edgeFields = data.snapshot.meta.edge_fields;
  const edgeStride = edgeFields.length;
  const edgeTypes = data.snapshot.meta.edge_types[0];
  const edgeTypeAt = edgeFields.indexOf('type');
  const edgeNameAt = edgeFields.indexOf('name_or_index');
  const edgeToAt = edgeFields.indexOf('to_node');
  const members = new Set<number>();
  for (let i = 0; i < data.nodes.length; i += stride) if (keyOf(data, i) === kind) members.add(i);
  const shapes = new Map<string, number>();
  const holders = new Map<string, number>();
  const count = (map: Map<string, number>, key: string): void => void map.set(key, (map.get(key) ?? 0) + 1);
  let edge = 0;
  for (let i = 0; i < data.nodes.length; i += stride) {
    const edges = data.nodes[i + edgeCountAt]!;
    const names: string[] = [];
    for (let e = 0; e < edges; e++, edge += edgeStride) {
      const type = edgeTypes[data.edges[edge + edgeTypeAt]!];
      const nameOrIndex = data.edges[edge + edgeNameAt]!;
      const name = type === 'element' || type === 'hidden' ? `[${nameOrIndex}]` : (data.strings[nameOrIndex] ?? '?');
      if (members.has(i) && (type === 'property' || type === 'internal' || type === 'context')) names.push(name);
      if (members.has(data.edges[edge + edgeToAt]!) && type !== 'weak') count(holders, `${keyOf(data, i)} .${name}`);
    }
    if (members.has(i)) count(shapes, names.slice(0, 8).join(', '));
  }
  const list = (title: string, map: Map<string, number>): void => {
    console.log(`  ${title}`);
    for (const [key, n] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`    ${String(n).padStart(7)}  ${key}`);
    }
  };
  console.log(`\n${kind}: ${members.size} in all`);
  list('properties (first 8):', shapes);
  list('held by:', holders);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    per: { type: 'string', default: '10000' },
    top: { type: 'string', default: '40' },
    detail: { type: 'string', multiple: true },
  },
});
if (positionals.length !== 2) {
  console.error('usage: node --import tsx bench/lib/heap-summary.ts BEFORE.heapsnapshot AFTER.heapsnapshot [--per N] [--top N]');
  process.exit(2);
}
const per = Number(values.per);
const before = groups(load(positionals[0]!));
const afterData = load(positionals[1]!);
const after = groups(afterData);
const rows: Array<{ key: string; count: number; size: number }> = [];
let total = 0;
for (const [key, group] of after) {
  const base = before.get(key) ?? { count: 0, size: 0 };
  const size = group.size - base.size;
  total += size;
  rows.push({ key, count: group.count - base.count, size });
}
for (const [key, base] of before) {
  if (!after.has(key)) {
    total -= base.size;
    rows.push({ key, count: -base.count, size: -base.size });
  }
}
rows.sort((a, b) => b.size - a.size);
console.log(`heap growth per connection (${per.toLocaleString('en-US')} connections): ${(total / per).toFixed(0)} B of live JS objects`);
console.log('   bytes  objects  kind');
for (const row of rows.slice(0, Number(values.top))) {
  console.log(`${(row.size / per).toFixed(1).padStart(8)}  ${(row.count / per).toFixed(2).padStart(7)}  ${row.key}`);
}
for (const kind of values.detail ?? []) detail(afterData, kind, 8);
