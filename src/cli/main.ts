#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCommand, BENCH_USAGE } from './bench-command.js';
import { configCommand, CONFIG_USAGE } from './config-command.js';
import { connectCommand, CONNECT_USAGE } from './connect-command.js';
import { serveCommand, SERVE_USAGE } from './serve-command.js';

const USAGE = `usage: hotline <command> [options]

commands:
  serve     run the server: WebSocket endpoints, demo pages, inspector, metrics
  config    check a config file of hotline serve, or write a starter one
  connect   an interactive terminal client for any WebSocket URL
  bench     load-test a WebSocket echo endpoint: messages/s, latency, handshakes/s

hotline --version prints the version; hotline COMMAND --help, a command's usage.

${SERVE_USAGE}
${CONFIG_USAGE}
${CONNECT_USAGE}
${BENCH_USAGE}`;

const COMMANDS: Record<string, { run(args: string[]): Promise<number>; usage: string }> = {
  serve: { run: serveCommand, usage: SERVE_USAGE },
  config: { run: configCommand, usage: CONFIG_USAGE },
  connect: { run: connectCommand, usage: CONNECT_USAGE },
  bench: { run: benchCommand, usage: BENCH_USAGE },
};

/** The package's version, from its package.json (two folders up from dist/cli/ and src/cli/). */
function version(): string {
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`hotline ${version()}\n`);
    return 0;
  }
  const sub = COMMANDS[command];
  if (sub !== undefined) {
    // --help anywhere among a command's arguments prints its usage, whatever else is there.
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(sub.usage);
      return 0;
    }
    return sub.run(rest);
  }
  process.stderr.write(`hotline: unknown command '${command}'\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`hotline: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
