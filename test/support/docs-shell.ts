// Checks of shell blocks: every command is one this checker knows, and what it names is
// real. `npm run X`, `npm start` and `npm test` name scripts of package.json; flags given
// to `hotline SUBCOMMAND` (directly, through npx, or through an npm script that runs the
// CLI) are in that subcommand's --help; flags given to another npm script are options read
// by its entry file or a file under the entry's folder; `npm install NAME` names this package or one it
// declares; `node FILE` names a file that exists, and `scripts/run-tests.mjs PART` a part
// of some test file's path. A command it does not know is a problem: teach it here, or mark
// the block not-checked.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface ShellContext {
  root: string;
  packageJson: {
    name: string;
    scripts: Record<string, string>;
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  /** `hotline SUBCOMMAND --help`, or '' for a subcommand that does not exist. */
  help(subcommand: string): string;
  testFiles: readonly string[];
}

/** Words of one line, quotes removed; `$(…)` is one opaque word; a `#` word starts a comment. */
function words(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length || line[i] === '#') break;
    let word = '';
    while (i < line.length && line[i] !== ' ' && line[i] !== '\t') {
      const c = line[i]!;
      if (c === "'" || c === '"') {
        const end = line.indexOf(c, i + 1);
        word += line.slice(i + 1, end === -1 ? undefined : end);
        i = end === -1 ? line.length : end + 1;
      } else if (c === '$' && line[i + 1] === '(') {
        let depth = 1;
        for (i += 2; i < line.length && depth > 0; i++) {
          if (line[i] === '(') depth++;
          else if (line[i] === ')') depth--;
        }
        word += '$(…)';
      } else {
        word += c;
        i++;
      }
    }
    out.push(word);
  }
  return out;
}

/** The commands of a block: lines joined at `\`, split at `&&`, `||`, `;` and `|`. */
function commands(text: string): string[][] {
  const joined = text.replace(/\\\n/g, ' ').split('\n');
  const out: string[][] = [];
  for (const line of joined) {
    let current: string[] = [];
    for (const word of words(line.replace(/^\s*\$ /, ''))) {
      if (['&&', '||', ';', '|'].includes(word)) {
        if (current.length > 0) out.push(current);
        current = [];
      } else current.push(word);
    }
    if (current.length > 0) out.push(current);
  }
  // Leading VAR=value assignments are the environment, not the command.
  return out.map((command) => command.slice(command.findIndex((word) => !/^[A-Z_][A-Z0-9_]*=/.test(word)))).filter((c) => c.length > 0);
}

const flagsOf = (args: readonly string[]): string[] => args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]!);

function hotlineFlags(context: ShellContext, subcommand: string | undefined, args: readonly string[]): string[] {
  if (subcommand === undefined || subcommand === '--version' || subcommand === '--help') return [];
  const help = context.help(subcommand);
  if (help === '') return [`hotline has no subcommand ${subcommand}`];
  return flagsOf(args)
    .filter((flag) => flag !== '--help' && !new RegExp(`(^|[\\s,\\[(])${flag}(?![\\w-])`, 'm').test(help))
    .map((flag) => `hotline ${subcommand} has no flag ${flag} (not in its --help)`);
}

/** Flags passed to an npm script: checked against what the script runs. */
function scriptFlags(context: ShellContext, name: string, args: readonly string[]): string[] {
  const script = context.packageJson.scripts[name]!;
  const cli = /\bdist\/cli\/main\.js\s+(\w+)/.exec(script);
  if (cli !== null) return hotlineFlags(context, cli[1], args);
  const entry = /(\S+\.(?:ts|mjs|js))\b/.exec(script)?.[1];
  if (entry === undefined) return flagsOf(args).length > 0 ? [`npm run ${name} takes no flags the checker can verify`] : [];
  const dir = join(context.root, dirname(entry));
  const sources = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|mjs|js)$/.test(f))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
  // Read as a literal ('--seed') or declared as a node:util parseArgs option (seed: { type … }).
  const reads = (flag: string): boolean =>
    sources.includes(`'${flag}'`) || sources.includes(`"${flag}"`) || new RegExp(`['"]?\\b${flag.slice(2)}['"]?\\s*:\\s*\\{\\s*type\\b`).test(sources);
  return flagsOf(args)
    .filter((flag) => !reads(flag))
    .map((flag) => `npm run ${name}: ${entry} and the files under ${dirname(entry)}/ read no ${flag}`);
}

function checkNpm(context: ShellContext, args: readonly string[]): string[] {
  const [sub, ...rest] = args;
  const { packageJson } = context;
  if (sub === 'install' || sub === 'i' || sub === 'ci') {
    const declared = new Set([packageJson.name, ...Object.keys({ ...packageJson.dependencies, ...packageJson.peerDependencies, ...packageJson.devDependencies })]);
    return rest.filter((a) => !a.startsWith('-')).map((a) => a.replace(/(.)@[^/]*$/, '$1')).filter((name) => !declared.has(name)).map((name) => `npm install ${name}: not this package nor one it declares`);
  }
  let name: string | undefined;
  let after: string[];
  if (sub === 'start' || sub === 'test') [name, after] = [sub, rest];
  else if (sub === 'run' || sub === 'run-script') [name, after] = [rest[0], rest.slice(1)];
  else return [`npm ${sub ?? ''}: a command the checker does not know`];
  if (name === undefined || !(name in packageJson.scripts)) return [`npm run ${name ?? ''}: package.json has no such script`];
  const dash = after.indexOf('--');
  return dash === -1 ? [] : scriptFlags(context, name, after.slice(dash + 1));
}

function checkNode(context: ShellContext, args: readonly string[]): string[] {
  const problems: string[] = [];
  let i = 0;
  // Node's own options; --import and -r take a value.
  while (i < args.length && args[i]!.startsWith('-')) i += ['--import', '-r', '--require', '--loader'].includes(args[i]!) ? 2 : 1;
  const file = args[i];
  if (file === undefined) return ['node without a file'];
  if (!existsSync(join(context.root, file))) return [`node ${file}: no such file`];
  const rest = args.slice(i + 1);
  if (file === 'scripts/run-tests.mjs') {
    for (const part of rest) {
      if (part.startsWith('--')) {
        if (part !== '--unit' && part !== '--integration') problems.push(`run-tests.mjs has no flag ${part}`);
      } else if (!context.testFiles.some((f) => f.includes(part))) problems.push(`run-tests.mjs ${part}: no test file's path contains it`);
    }
  }
  for (const word of [file, ...rest]) {
    if (/\.(ts|mjs|js)$/.test(word) && word.includes('/') && !existsSync(join(context.root, word))) problems.push(`no such file ${word}`);
  }
  return problems;
}

/** Problems of a shell block; none when every command checks out. */
export function checkShell(text: string, context: ShellContext): string[] {
  const problems: string[] = [];
  for (const command of commands(text)) {
    const [program, ...args] = command as [string, ...string[]];
    if (program === 'npm') problems.push(...checkNpm(context, args));
    else if (program === 'npx' && args[0] === 'hotline') problems.push(...hotlineFlags(context, args[1], args.slice(2)));
    else if (program === 'hotline') problems.push(...hotlineFlags(context, args[0], args.slice(1)));
    else if (program === 'node') problems.push(...checkNode(context, args));
    else problems.push(`${command.join(' ')}: a command the checker does not know`);
  }
  return problems.length === 0 && commands(text).length === 0 ? ['no command in this block'] : problems;
}
