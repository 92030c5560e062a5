// The layering of docs/architecture.md, enforced: imports go down the picture, never up;
// the sans-I/O core stays free of sockets and timers; the protocol core and Node I/O have no
// runtime dependencies beyond Node (hotline serve: Ajv for its config); the browser SDK
// imports no Node built-ins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

/** Which layers each layer may import (files directly in src/ form the 'entry' layer). */
const allowedLayers: Record<string, readonly string[]> = {
  protocol: [],
  wire: [],
  client: ['wire'],
  react: ['client', 'wire'],
  channels: ['wire'],
  node: ['protocol'],
  redis: ['channels', 'wire'],
  server: ['node', 'redis', 'channels', 'protocol', 'wire'],
  cli: ['server', 'node', 'redis', 'channels', 'protocol', 'wire', 'client'],
  entry: ['server', 'node', 'redis', 'channels', 'protocol', 'wire', 'client'],
};

/** Node built-ins a layer may use; `true` means any. Sockets, timers and zlib stay out of the core. */
const allowedBuiltins: Record<string, readonly string[] | true> = {
  protocol: ['node:buffer', 'node:crypto'],
  wire: [],
  client: [],
  react: [],
  channels: [],
  node: true,
  redis: true,
  server: true,
  cli: true,
  entry: true,
};

/**
 * Third-party packages a layer may import at run time (the core: none; the wire codec:
 * MessagePack, for the hotline.v1.msgpack encoding; the server: a JSON Schema validator for
 * config files and channel schemas, a JSONC parser for config files, and JWT verification).
 */
const allowedPackages: Record<string, readonly string[]> = {
  protocol: [],
  wire: ['@msgpack/msgpack'],
  client: [],
  // An optional peer dependency: only hotline/react imports it.
  react: ['react'],
  channels: [],
  node: [],
  server: ['ajv', 'jsonc-parser', 'jose'],
  cli: [],
  entry: [],
  redis: ['redis', 'ioredis'],
};

function layerOf(file: string): string {
  const parts = relative(src, file).split(sep);
  return parts.length === 1 ? 'entry' : parts[0]!;
}

export function importViolations(file: string, text: string): string[] {
  const layer = layerOf(file);
  const problems: string[] = [];
  const name = relative(root, file);
  if (!(layer in allowedLayers)) return [`${name}: layer '${layer}' is not in the design`];
  const info = ts.preProcessFile(text, true, true);
  for (const { fileName: spec } of info.importedFiles) {
    if (spec.startsWith('.')) {
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(src + sep)) {
        problems.push(`${name}: imports '${spec}' from outside src/`);
        continue;
      }
      const targetLayer = layerOf(target);
      if (targetLayer !== layer && !allowedLayers[layer]!.includes(targetLayer)) {
        problems.push(`${name}: layer '${layer}' may not import layer '${targetLayer}' ('${spec}')`);
      }
    } else if (spec.startsWith('node:') || isBareBuiltin(spec)) {
      const builtins = allowedBuiltins[layer]!;
      if (!spec.startsWith('node:')) problems.push(`${name}: import Node built-ins as 'node:${spec}'`);
      else if (builtins !== true && !builtins.includes(spec)) {
        problems.push(`${name}: layer '${layer}' may not import '${spec}'`);
      }
    } else {
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!allowedPackages[layer]!.includes(pkg)) {
        problems.push(`${name}: layer '${layer}' may not depend on package '${pkg}'`);
      }
    }
  }
  return problems;
}

const builtinNames = new Set(['buffer', 'crypto', 'net', 'tls', 'http', 'https', 'zlib', 'fs', 'timers', 'stream', 'events', 'os', 'path', 'url', 'util', 'child_process', 'dgram', 'dns', 'worker_threads']);
function isBareBuiltin(spec: string): boolean {
  return builtinNames.has(spec.split('/')[0]!);
}

/** Globals that do I/O or keep time, which the sans-I/O core must not touch. */
const ioGlobals = new Set(['setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'process', 'fetch', 'WebSocket', 'Date', 'performance', 'require']);

export function ioGlobalUses(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node) && ioGlobals.has(node.text)) {
      const parent = node.parent;
      const isPropertyName = ts.isPropertyAccessExpression(parent) && parent.name === node;
      if (!isPropertyName) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart());
        found.push(`${relative(root, file)}:${line + 1}: the sans-I/O core uses '${node.text}'`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

test('every source file imports only what its layer allows', () => {
  const files = sourceFiles(src);
  assert.ok(files.length > 10, 'expected to find the sources');
  const problems = files.flatMap((file) => importViolations(file, readFileSync(file, 'utf8')));
  assert.deepEqual(problems, []);
});

test('the protocol core uses no timers, clocks or process state', () => {
  const files = sourceFiles(join(src, 'protocol'));
  const problems = files.flatMap((file) => ioGlobalUses(file, readFileSync(file, 'utf8')));
  assert.deepEqual(problems, []);
  assert.equal(ioGlobalUses(join(src, 'protocol', 'x.ts'), 'setTimeout(() => {}, 1);').length, 1);
  assert.equal(ioGlobalUses(join(src, 'protocol', 'x.ts'), 'const t = Date.now();').length, 1);
  assert.equal(ioGlobalUses(join(src, 'protocol', 'x.ts'), 'const o = { timer: 1 }; o.timer;').length, 0);
});

test('the checker catches a socket import in the protocol core', () => {
  const file = join(src, 'protocol', 'bad.ts');
  assert.deepEqual(importViolations(file, "import { Socket } from 'node:net';"), [
    "src/protocol/bad.ts: layer 'protocol' may not import 'node:net'",
  ]);
  assert.deepEqual(importViolations(file, "import { setTimeout } from 'node:timers/promises';"), [
    "src/protocol/bad.ts: layer 'protocol' may not import 'node:timers/promises'",
  ]);
  assert.equal(importViolations(file, "import { createHash } from 'node:crypto';").length, 0);
});

test('the checker catches upward and sideways imports', () => {
  assert.deepEqual(importViolations(join(src, 'protocol', 'x.ts'), "import '../node/connection.js';"), [
    "src/protocol/x.ts: layer 'protocol' may not import layer 'node' ('../node/connection.js')",
  ]);
  assert.equal(importViolations(join(src, 'client', 'x.ts'), "export * from '../node/server.js';").length, 1);
  assert.equal(importViolations(join(src, 'client', 'x.ts'), "import { Buffer } from 'node:buffer';").length, 1);
  assert.equal(importViolations(join(src, 'node', 'x.ts'), "import WebSocket from 'ws';").length, 1);
  assert.equal(importViolations(join(src, 'node', 'x.ts'), "const z = await import('zlib');").length, 1);
  assert.equal(importViolations(join(src, 'server', 'x.ts'), "import { x } from '../node/server.js';").length, 0);
});
