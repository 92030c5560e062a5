// The endpoints of `hotline serve` (/echo and /ws, permessage-deflate on) in a process of
// their own, with endpoint options the CLI cannot set yet, for attack tests:
//
//   node --import tsx test/support/limits-server.ts OPTIONS_JSON
//
// OPTIONS_JSON holds WebSocketServerOptions for both endpoints (messageTimeout,
// heartbeatInterval, idleTimeout, inflateRate, maxPayload, …). It serves /metrics as the
// app does (the endpoint counters), prints `listening on http://127.0.0.1:PORT/` once it
// listens, and exits on SIGTERM or SIGINT or when its stdin ends. The parent's side is
// startLimitsTarget in ./limits-target.ts.
import { serve } from '../../src/server/serve.js';
import { channelsEndpoint } from '../../src/server/channels.js';
import { echoHandlers } from '../../src/server/echo.js';
import { endpointMetrics, PrometheusText } from '../../src/server/metrics.js';
import { WebSocketServer, type WebSocketServerOptions } from '../../src/node/server.js';
import { stopWhenTold } from './stop-when-told.js';

const options = JSON.parse(process.argv[2] ?? '{}') as Omit<WebSocketServerOptions<undefined>, 'handlers'>;
const common = { perMessageDeflate: true, ...options };
const echo = new WebSocketServer<undefined>({ ...common, handlers: echoHandlers });
const channels = channelsEndpoint(common);
await channels.ready;
const endpoints: Record<string, WebSocketServer<unknown>> = {
  '/echo': echo as WebSocketServer<unknown>,
  '/ws': channels.server as WebSocketServer<unknown>,
};

const server = await serve({
  port: 0,
  host: '127.0.0.1',
  websocket: endpoints,
  shutdownTimeout: 500,
  request(req, res) {
    if (req.url === '/metrics') {
      const text = new PrometheusText();
      endpointMetrics(text, Object.entries(endpoints).map(([path, s]) => [path, s.connections.size, s.counters]));
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(text.toString());
      return;
    }
    res.writeHead(404);
    res.end();
  },
});
process.stdout.write(`listening on http://127.0.0.1:${server.port}/\n`);

stopWhenTold(async () => {
  await server.close();
  await channels.hub.close();
});
