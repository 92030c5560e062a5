// The `hotline serve` application (createApp) in a process of its own, with AppOptions the
// CLI cannot take yet (proxy hooks), for tests that need a real server process:
//
//   node --import tsx test/support/app-server.ts OPTIONS_JSON
//
// OPTIONS_JSON holds AppOptions that are plain JSON. Logs at warn level to stderr. Prints `listening on http://127.0.0.1:PORT/` once it
// listens, and exits on SIGTERM or SIGINT or when its stdin ends (./limits-target.ts's
// startScriptTarget is its parent's side).
import { createApp, type AppOptions } from '../../src/server/app.js';
import { Logger } from '../../src/server/log.js';
import { serve } from '../../src/server/serve.js';
import { stopWhenTold } from './stop-when-told.js';

const options = JSON.parse(process.argv[2] ?? '{}') as AppOptions;
const app = createApp({ ...options, logger: new Logger('warn', (line) => process.stderr.write(line)) });
await app.ready;
const server = await serve({ port: 0, host: '127.0.0.1', websocket: app.websocket, request: app.request, shutdownTimeout: 500 });
process.stdout.write(`listening on http://127.0.0.1:${server.port}/\n`);

stopWhenTold(async () => {
  await server.close();
  await app.close();
});
