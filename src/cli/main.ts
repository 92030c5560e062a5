#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { serve } from '../server/serve.js';
import { echoHandlers } from '../server/echo.js';
import { channelsEndpoint } from '../server/channels.js';

const USAGE = `usage: hotline serve [--port 8080] [--host 127.0.0.1] [--max-payload BYTES] [--no-deflate]

Serves WebSocket endpoints:
  /echo   echoes every message back as it came (text as text, binary as binary)
  /ws     the hotline.v1 channel protocol (subprotocol hotline.v1): channels with
          history, recovery and presence, in memory
permessage-deflate is accepted when a client offers it, unless --no-deflate.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'serve') {
    process.stderr.write(`hotline: unknown command '${command}'\n${USAGE}`);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      'max-payload': { type: 'string' },
      'no-deflate': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`hotline: --port must be a number from 0 to 65535, not '${values.port}'\n`);
    return 2;
  }
  let maxPayload: number | undefined;
  if (values['max-payload'] !== undefined) {
    maxPayload = Number(values['max-payload']);
    if (!Number.isInteger(maxPayload) || maxPayload < 0) {
      process.stderr.write(`hotline: --max-payload must be a whole number of bytes\n`);
      return 2;
    }
  }
  const endpointOptions = { maxPayload, perMessageDeflate: !values['no-deflate'] };
  const channels = channelsEndpoint(endpointOptions);
  await channels.ready;
  let server;
  try {
    server = await serve({
      port,
      host: values.host,
      websocket: { '/echo': echoHandlers, '/ws': channels.server },
      endpoint: endpointOptions,
      request(req, res) {
        if (req.url === '/hotline.js' || req.url === '/hotline.js.map') {
          serveSdk(req.url, res);
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`hotline\n\nWebSocket endpoints:\n  ws://${values.host}:${port}/echo\n  ws://${values.host}:${port}/ws (hotline.v1)\n`);
      },
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      process.stderr.write(`hotline: port ${port} on ${values.host} is already in use; pick another with --port\n`);
      return 1;
    }
    throw error;
  }
  const base = `${server.host}:${server.port}`;
  process.stdout.write(`hotline listening on http://${base}  (echo: ws://${base}/echo, channels: ws://${base}/ws)\n`);
  const running = server;
  const stop = (signal: string) => {
    process.stdout.write(`hotline: ${signal}, closing connections with 1001\n`);
    running
      .close()
      .then(() => channels.hub.close())
      .then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return -1;
}

/** The SDK bundle that `npm run build` writes beside dist/cli/. */
const SDK_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

function serveSdk(path: string, res: ServerResponse): void {
  readFile(join(SDK_DIR, path.slice(1))).then(
    (body) => {
      res.writeHead(200, {
        'content-type': path.endsWith('.map') ? 'application/json' : 'text/javascript; charset=utf-8',
        'cache-control': 'no-cache',
      });
      res.end(body);
    },
    () => {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('the SDK bundle is missing: run npm run build\n');
    },
  );
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
