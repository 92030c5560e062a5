// Every code block of the docs gets a verdict: how it was checked (type-checked, run, shell
// commands, wire messages, config files, paths), or the reason it opted out, and what is
// wrong with it. A ```jsonc block is a `hotline serve` config file (JSON with comments, as
// the files are written): the config loader checks it, so every key and value in the docs is
// one the server accepts; ```json blocks are wire messages.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { CodeBlock } from './docs-extract.js';
import { CODE_LANGS, typeCheck, writeSnippets, type SnippetFile } from './docs-project.js';
import { runSnippets, type RunKind } from './docs-run.js';
import { checkShell, type ShellContext } from './docs-shell.js';
import { checkJsonLines, checkPlainText } from './docs-text.js';
import { NGINX, testBlock } from './nginx.js';
import { ROOT, type PackedProject } from './packed.js';
import { ConfigError, parseConfigText } from '../../src/server/config/load.js';

export type CheckKind = 'typescript' | 'shell' | 'wire' | 'config' | 'text' | 'nginx';

/** A config file's problems, as `hotline config check` would print them. */
function checkConfigFile(text: string): string[] {
  try {
    parseConfigText('the config block', text);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return [...error.lines];
    throw error;
  }
}

export interface Verdict {
  /** How it was checked; null when it opted out (`optedOut` says why) or could not be. */
  checked: CheckKind | null;
  optedOut?: string;
  /** How it ran, if it did; `notRun` says why a program did not. */
  ran?: RunKind;
  against?: string;
  notRun?: string;
  problems: string[];
}

const SHELL_LANGS: ReadonlySet<string> = new Set(['sh', 'bash', 'shell', 'console', 'zsh']);
const PLAIN_LANGS: ReadonlySet<string> = new Set(['', 'text', 'txt', 'plain']);

function shellContext(project: PackedProject): ShellContext {
  const helps = new Map<string, string>();
  return {
    root: ROOT,
    packageJson: JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as ShellContext['packageJson'],
    testFiles: ['src', 'test'].flatMap((dir) =>
      readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.test.ts')).map((f) => `${dir}/${f}`),
    ),
    help(subcommand) {
      if (!helps.has(subcommand)) {
        // The packed package's command, as `npx hotline` runs it.
        const result = spawnSync(process.execPath, [project.bin, subcommand, '--help'], { encoding: 'utf8' });
        helps.set(subcommand, result.status === 0 ? result.stdout : '');
      }
      return helps.get(subcommand)!;
    },
  };
}

/** Checks every block; TypeScript once for all of them, then the runnable ones run. */
export async function checkBlocks(blocks: readonly CodeBlock[], project: PackedProject): Promise<Map<CodeBlock, Verdict>> {
  const verdicts = new Map<CodeBlock, Verdict>();
  const shell = shellContext(project);
  const code: CodeBlock[] = [];
  for (const block of blocks) {
    const verdict: Verdict = { checked: null, problems: [...block.problems] };
    verdicts.set(block, verdict);
    if (block.notChecked !== undefined) {
      verdict.optedOut = block.notChecked;
      continue;
    }
    if (CODE_LANGS.has(block.lang)) {
      verdict.checked = 'typescript';
      code.push(block);
    } else if (SHELL_LANGS.has(block.lang)) {
      verdict.checked = 'shell';
      verdict.problems.push(...checkShell(block.text, shell));
    } else if (block.lang === 'jsonc') {
      verdict.checked = 'config';
      verdict.problems.push(...checkConfigFile(block.text));
    } else if (block.lang === 'json' || block.lang === 'jsonl') {
      verdict.checked = 'wire';
      verdict.problems.push(...checkJsonLines(block.text));
    } else if (block.lang === 'nginx') {
      // nginx -t here; test/nginx-deploy.test.ts also runs the deployment guide's block in front of hotline.
      verdict.checked = 'nginx';
      if (!existsSync(NGINX)) {
        if (process.env.CI === 'true') verdict.problems.push('nginx is not installed: CI must check nginx blocks (.ci/run installs it)');
        else verdict.notRun = 'nginx is not installed here';
      } else {
        const refusal = testBlock(block.text);
        if (refusal !== null) verdict.problems.push(`nginx -t refuses it: ${refusal}`);
      }
    } else if (PLAIN_LANGS.has(block.lang)) {
      verdict.checked = 'text';
      verdict.problems.push(...checkPlainText(block.text, ROOT));
    } else {
      verdict.problems.push(`no checker for \`\`\`${block.lang} blocks: add one to test/support/docs-check.ts, or mark the block not-checked`);
    }
  }

  const { files, missing } = writeSnippets(project, code);
  const errors = typeCheck(project, files);
  const runnable: SnippetFile[] = [];
  for (const file of files) {
    const verdict = verdicts.get(file.block)!;
    const absent = missing.get(file.block);
    if (absent !== undefined) verdict.problems.push(`imports ${absent.join(', ')}, which this checkout does not have installed`);
    verdict.problems.push(...errors.get(file)!);
    if (file.block.notRun !== undefined) verdict.notRun = file.block.notRun;
    else if (verdict.problems.length > 0) verdict.notRun = 'it does not type-check';
    else runnable.push(file);
  }
  for (const [file, outcome] of await runSnippets(project, runnable)) {
    const verdict = verdicts.get(file.block)!;
    verdict.ran = outcome.kind;
    verdict.against = outcome.against;
    verdict.problems.push(...outcome.problems);
  }
  return verdicts;
}
