#!/usr/bin/env node
import { benchCommand, BENCH_USAGE } from './bench-command.js';
import { connectCommand, CONNECT_USAGE } from './connect-command.js';
import { serveCommand, SERVE_USAGE } from './serve-command.js';

const USAGE = `usage: hotline <command> [options]

commands:
  serve     run the server: WebSocket endpoints, demo pages, inspector, metrics
  connect   an interactive terminal client for any WebSocket URL
  bench     load-test a WebSocket echo endpoint: messages/s, latency, handshakes/s

${SERVE_USAGE}
${CONNECT_USAGE}
${BENCH_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'serve') return serveCommand(rest);
  if (command === 'connect') return connectCommand(rest);
  if (command === 'bench') return benchCommand(rest);
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
