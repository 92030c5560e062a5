// `hotline serve`'s app (createApp: /ws, /echo, the pages) in a process of its own, with
// AppOptions the CLI cannot set yet (`token`, until the config file lands):
//
//   node --import tsx test/support/app-server.ts OPTIONS_JSON
//
// Prints `listening on http://127.0.0.1:PORT/` once it listens, or `app-server failed: …`
// and exits 1 when createApp refuses the options; exits on SIGTERM or SIGINT or when its
// stdin ends. The parent's side is startScriptTarget in ./limits-target.ts.
import { createApp, type AppOptions } from '../../src/server/app.js';
import { Logger } from '../../src/server/log.js';
import { serve } from '../../src/server/serve.js';
import { stopWhenTold } from './stop-when-told.js';

const options = JSON.parse(process.argv[2] ?? '{}') as AppOptions;
let app;
try {
  app = createApp({ ...options, logger: new Logger('warn') });
} catch (error) {
  process.stdout.write(`app-server failed: ${(error as Error).message}\n`);
  process.exit(1);
}
await app.ready;
const server = await serve({ port: 0, host: '127.0.0.1', websocket: app.websocket, request: app.request, shutdownTimeout: 500 });
process.stdout.write(`listening on http://127.0.0.1:${server.port}/\n`);

stopWhenTold(async () => {
  await server.close();
  await app.close();
});
