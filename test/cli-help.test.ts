// The CLI's help and version, as a user types them: `hotline --version`, and `--help` (or
// `-h`) on every command prints that command's usage on stdout and exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CLI, requireBuiltCli } from './support/cli-server.js';

function hotline(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  requireBuiltCli();
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

/** The commands `hotline --help` lists: each must answer --help (a new command is covered as it is listed). */
function listedCommands(): string[] {
  requireBuiltCli();
  const help = execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  const section = /\ncommands:\n((?: {2}\S+ +.+\n)+)/.exec(help);
  assert.ok(section, help);
  return [...section[1]!.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!);
}

const commands = listedCommands();
test('hotline --help lists its commands', () => {
  for (const known of ['serve', 'connect', 'bench']) assert.ok(commands.includes(known), `${known} is listed: ${commands.join(', ')}`);
});

for (const command of commands) {
  test(`hotline ${command} --help prints its usage and exits 0`, async () => {
    for (const flag of ['--help', '-h']) {
      const { code, stdout, stderr } = await hotline([command, flag]);
      assert.equal(code, 0, stderr);
      assert.equal(stderr, '');
      assert.match(stdout, new RegExp(`^usage: hotline ${command} `));
    }
    // Also after other arguments: a user adds --help to the line they were typing.
    const late = await hotline([command, 'ws://127.0.0.1:1/x', '--help']);
    assert.equal(late.code, 0, late.stderr);
    assert.match(late.stdout, new RegExp(`^usage: hotline ${command} `));
  });
}

test('hotline --help lists the commands; hotline --version prints the package version', async () => {
  const help = await hotline(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: hotline <command>/);
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const flag of ['--version', '-v']) {
    const answer = await hotline([flag]);
    assert.equal(answer.code, 0);
    assert.equal(answer.stdout, `hotline ${version}\n`);
  }
});
