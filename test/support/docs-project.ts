// The TypeScript and JavaScript blocks of the docs as files of one project inside the packed
// install (./packed.ts), type-checked by one `tsc -b` and emitted for running. Two
// projects: `node/` (strict, module and moduleResolution nodenext, Node's types, as `tsc
// --init` for a Node app) and `browser/` (strict, the DOM's types, resolved as a bundler
// does, `/hotline.js` being the bundle `hotline serve` serves). Each block is one module.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { where, type CodeBlock } from './docs-extract.js';
import { ROOT, type PackedProject } from './packed.js';

export interface SnippetFile {
  block: CodeBlock;
  /** Relative to the project: node/README-37.ts. */
  source: string;
  /** The emitted JavaScript, absolute. */
  output: string;
  browser: boolean;
}

export const CODE_LANGS: ReadonlySet<string> = new Set(['ts', 'typescript', 'js', 'javascript', 'mjs', 'mts']);

const COMMON = {
  composite: true,
  declaration: true,
  target: 'ES2022',
  strict: true,
  skipLibCheck: true,
  allowJs: true,
  checkJs: true,
  noEmitOnError: false,
  rootDir: '.',
};

function tsconfigs(dir: string, kinds: ReadonlySet<string>): void {
  const write = (path: string, value: object): void => writeFileSync(join(dir, path), JSON.stringify(value, null, 2));
  // Only projects with files: tsc refuses one with no inputs.
  write('tsconfig.json', { files: [], references: [...kinds].map((kind) => ({ path: `./${kind}` })) });
  write('node/tsconfig.json', {
    compilerOptions: { ...COMMON, lib: ['ES2022'], module: 'nodenext', moduleResolution: 'nodenext', types: ['node'], outDir: '../out/node' },
    include: ['*.ts', '*.js'],
  });
  write('browser/tsconfig.json', {
    compilerOptions: {
      ...COMMON,
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      module: 'esnext',
      moduleResolution: 'bundler',
      types: [],
      outDir: '../out/browser',
      paths: { '/hotline.js': ['../node_modules/hotline/dist/client/index.d.ts'] },
    },
    include: ['*.ts', '*.js'],
  });
}

/** Packages a block imports (not Node's, not hotline, not relative or absolute paths). */
export function importedPackages(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)) {
    const spec = match[1]!;
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
    if (name !== 'hotline') names.add(name);
  }
  return [...names];
}

/** The DefinitelyTyped package of `name` (`@scope/pkg` is `@types/scope__pkg`). */
function typesPackage(name: string): string {
  return `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`;
}

/** Writes each block as a module of the project; links the packages they import. */
export function writeSnippets(project: PackedProject, blocks: readonly CodeBlock[]): { files: SnippetFile[]; missing: Map<CodeBlock, string[]> } {
  mkdirSync(join(project.dir, 'node'), { recursive: true });
  mkdirSync(join(project.dir, 'browser'), { recursive: true });
  tsconfigs(project.dir, new Set(blocks.map((block) => (block.browser ? 'browser' : 'node'))));
  // What a user installs beside hotline: Node's types, and the optional peers (the Redis
  // engine's `redis`) that the docs say to install for what they show.
  const { peerDependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { peerDependencies?: Record<string, string> };
  project.link(['@types/node', ...Object.keys(peerDependencies ?? {})]);
  const missing = new Map<CodeBlock, string[]>();
  const files = blocks.map((block) => {
    const kind = block.browser ? 'browser' : 'node';
    const js = block.lang === 'js' || block.lang === 'javascript' || block.lang === 'mjs';
    const name = `${block.file.replace(/\.md$/, '').replace(/[^\w]+/g, '-')}-${block.line}`;
    const source = `${kind}/${name}.${js ? 'js' : 'ts'}`;
    // A module of its own, so blocks' top-level names never meet.
    writeFileSync(join(project.dir, source), `${block.text}export {};\n`);
    const imported = importedPackages(block.text);
    // A package without types of its own (ws) is typed by its DefinitelyTyped package.
    const typings = imported.map(typesPackage).filter((name) => existsSync(join(ROOT, 'node_modules', name)));
    const absent = project.link([...imported, ...typings]);
    if (absent.length > 0) missing.set(block, absent);
    return { block, source, output: join(project.dir, 'out', kind, `${name}.js`), browser: block.browser };
  });
  return { files, missing };
}

/** Type-checks (and emits) every snippet with one `tsc -b`; the errors of each, as Markdown lines. */
export function typeCheck(project: PackedProject, files: readonly SnippetFile[]): Map<SnippetFile, string[]> {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-b', 'tsconfig.json', '--pretty', 'false'], { cwd: project.dir, encoding: 'utf8' });
  const errors = new Map<SnippetFile, string[]>(files.map((file) => [file, []]));
  const bySource = new Map(files.map((file) => [file.source, file]));
  const unplaced: string[] = [];
  let last: string[] | undefined;
  for (const line of result.stdout.split('\n')) {
    const match = /^(.+?)\((\d+),(\d+)\): error (TS\d+: .*)$/.exec(line);
    if (match === null) {
      // An indented line continues the previous error's message.
      if (line.startsWith(' ') && last !== undefined) last[last.length - 1] += `\n${line}`;
      else if (line.includes('error TS')) unplaced.push(line);
      continue;
    }
    const file = bySource.get(match[1]!);
    if (file === undefined) {
      unplaced.push(line);
      last = undefined;
      continue;
    }
    last = errors.get(file)!;
    last.push(`${file.block.file}:${file.block.line + Number(match[2])}:${match[3]} ${match[4]}`);
  }
  if (unplaced.length > 0 || (result.status !== 0 && [...errors.values()].every((list) => list.length === 0))) {
    throw new Error(`tsc -b failed outside the snippets (${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return errors;
}

export function describeSnippet(file: SnippetFile): string {
  return `${where(file.block)} (${file.block.lang}${file.browser ? ', browser' : ''})`;
}
