// Checks of the code blocks that are not programs: hotline.v1 messages (a `json` block, or
// a plain block of `→`/`←` lines) against the wire validators both sides use, and plain
// blocks (diagrams, trees) for the repository paths they name.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseRequest, parseServerMessage } from '../../src/wire/index.js';

/** Why `line` is not a message the server would accept or send, or null when it is one. */
function wireProblem(line: string, direction: 'request' | 'server' | 'either'): string | null {
  const request = parseRequest(line);
  const server = parseServerMessage(line);
  if (direction === 'request') return request.ok ? null : `not a valid request (${request.message}): ${line}`;
  if (direction === 'server') return server !== null ? null : `not a message a server sends: ${line}`;
  if (request.ok || server !== null) return null;
  return `neither a valid request (${request.message}) nor a server message: ${line}`;
}

/** A `json` block: one hotline.v1 message per line, requests and answers. */
export function checkJsonLines(text: string): string[] {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  if (lines.length === 0) return ['an empty block'];
  return lines.map((line) => wireProblem(line.trim(), 'either')).filter((p): p is string => p !== null);
}

const ARROW = /^\s*([→←])\s*(.*)$/;

/**
 * A session: `→` lines are requests, `←` lines what the server sends. A request the server
 * refuses may be shown on purpose: then the next `←` line must be the `err` the validator
 * gives it, same id, code and message.
 */
function checkTranscript(lines: readonly string[], arrows: ReadonlyArray<RegExpExecArray | null>): string[] {
  const problems: string[] = [];
  arrows.forEach((match, i) => {
    if (match === null) return problems.push(`a transcript line without → or ←: ${lines[i]!}`);
    const text = match[2]!;
    if (match[1] === '←') {
      if (parseServerMessage(text) === null) problems.push(`not a message a server sends: ${text}`);
      return;
    }
    const request = parseRequest(text);
    if (request.ok) return;
    const answer = arrows.slice(i + 1).find((next) => next?.[1] === '←')?.[2];
    const expected = JSON.stringify({ op: 'err', id: request.id, code: request.code, message: request.message });
    if (answer === undefined || JSON.stringify(JSON.parse(answer)) !== expected) {
      problems.push(`not a valid request (${request.message}): ${text}; if the refusal is the point, the next ← line must be ${expected}`);
    }
  });
  return problems;
}
const PATH = /(?<![\w./-])((?:src|test|docs|scripts|bench|web)\/[\w./-]*)/g;

/**
 * A plain block. Lines of `→ request` / `← message` are checked as a session transcript;
 * otherwise the repository paths it names must exist. A block with neither has nothing to
 * check: it needs a `not-checked` marker.
 */
export function checkPlainText(text: string, root: string): string[] {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const arrows = lines.map((line) => ARROW.exec(line));
  if (arrows.some((match) => match !== null)) return checkTranscript(lines, arrows);
  const paths = [...text.matchAll(PATH)].map((match) => match[1]!.replace(/[.,:]$/, ''));
  if (paths.length === 0) return ['nothing to check in this block: mark it <!-- not-checked: why -->'];
  return paths.filter((path) => !existsSync(join(root, path))).map((path) => `names ${path}, which does not exist`);
}
