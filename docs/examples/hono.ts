// Hono (on @hono/node-server) and hotline on one port: the app's routes, and a hotline.v1
// channel endpoint at /ws.
import { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { attach, channelsEndpoint } from 'hotline';

const channels = channelsEndpoint();
await channels.ready;

const app = new Hono();
// An ordinary route that reads hotline's state: the WebSocket connections open now.
app.get('/online', (c) => c.json({ connections: channels.server.connections.size }));

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: '127.0.0.1' }, (info) => {
  console.log(`listening on http://127.0.0.1:${info.port}`);
});
// The adapter's type also covers HTTP/2; by default it is a node:http server, which attach() takes.
if (!(server instanceof Server)) throw new Error('expected a node:http server');
// Upgrades to /ws are hotline's; Hono keeps every other request.
const hotline = attach(server, { websocket: { '/ws': channels.server } });

// Stop in order: WebSocket clients are told 1001 (the SDK reconnects elsewhere), then HTTP, then the channel engine.
process.once('SIGTERM', async () => {
  await hotline.closeConnections();
  server.close();
  await channels.hub.close();
});
