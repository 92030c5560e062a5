// The code blocks of the project's Markdown (README.md and docs/**/*.md), with the markers
// that say how a block is checked. A marker is an HTML comment on the lines just before
// the opening fence (blank lines may stand between):
//
//   <!-- not-checked: REASON -->   nothing checks this block (measured output, elided text…)
//   <!-- not-run: REASON -->       TypeScript or JavaScript: type-checked, not run
//   <!-- run: browser -->          TypeScript or JavaScript for a page: type-checked with the
//                                  DOM's types and run in Chromium, not in Node
//
// A marker without a reason, or one this file does not know, is a problem of the block.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface CodeBlock {
  /** The Markdown file, relative to the repository (or to wherever it was read from). */
  file: string;
  /** Line of the opening fence, from 1. */
  line: number;
  /** First word of the info string, lower-cased; '' for none. */
  lang: string;
  text: string;
  notChecked?: string;
  notRun?: string;
  browser: boolean;
  problems: string[];
}

/** `file:line`, how failures name a block. */
export function where(block: CodeBlock): string {
  return `${block.file}:${block.line}`;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const CLOSE = /^\s*(`{3,}|~{3,})\s*$/;
const MARKER = /^\s*<!--\s*([a-z-]+)\s*:?\s*(.*?)\s*-->\s*$/;

function applyMarker(block: CodeBlock, comment: string): void {
  const match = MARKER.exec(comment);
  if (match === null) return;
  const [, name, argument] = match as unknown as [string, string, string];
  if (name === 'not-checked' || name === 'not-run') {
    if (argument === '') block.problems.push(`<!-- ${name}: … --> needs a reason`);
    else if (name === 'not-checked') block.notChecked = argument;
    else block.notRun = argument;
  } else if (name === 'run') {
    if (argument === 'browser') block.browser = true;
    else block.problems.push(`unknown <!-- run: ${argument} --> (known: browser)`);
  } else if (name.startsWith('not-') || name === 'check' || name === 'checked') {
    block.problems.push(`unknown marker <!-- ${name}: … --> (known: not-checked, not-run, run: browser)`);
  }
}

/** The fenced code blocks of one Markdown text. */
export function extractBlocks(markdown: string, file: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (open === null) continue;
    const indent = open[1]!.length;
    const fence = open[2]!;
    const block: CodeBlock = { file, line: i + 1, lang: open[3]!.toLowerCase(), text: '', browser: false, problems: [] };
    // The comments just above, nearest last.
    const comments: string[] = [];
    for (let j = i - 1; j >= 0; j--) {
      const above = lines[j]!.trim();
      if (above === '') continue;
      if (!above.startsWith('<!--')) break;
      comments.unshift(above);
    }
    for (const comment of comments) applyMarker(block, comment);
    const body: string[] = [];
    let closed = false;
    for (i++; i < lines.length; i++) {
      const line = lines[i]!;
      const close = CLOSE.exec(line)?.[1];
      if (close !== undefined && close[0] === fence[0] && close.length >= fence.length) {
        closed = true;
        break;
      }
      body.push(line.slice(Math.min(indent, line.length - line.trimStart().length)));
    }
    if (!closed) block.problems.push('the block is never closed');
    block.text = body.join('\n') + '\n';
    blocks.push(block);
  }
  return blocks;
}

/** README.md and every .md under docs/, sorted. */
export function docFiles(root: string): string[] {
  const out = [join(root, 'README.md')];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.md')) out.push(path);
    }
  };
  walk(join(root, 'docs'));
  return out;
}

/** Every code block of the project's Markdown. */
export function projectBlocks(root: string): CodeBlock[] {
  return docFiles(root).flatMap((path) => extractBlocks(readFileSync(path, 'utf8'), relative(root, path)));
}
