// Express and hotline on one port: the app's routes, and a hotline.v1 channel endpoint at /ws.
import type { AddressInfo } from 'node:net';
import express from 'express';
import { attach, channelsEndpoint } from 'hotline';

const channels = channelsEndpoint();
await channels.ready;

const app = express();
// An ordinary route that reads hotline's state: the WebSocket connections open now.
app.get('/online', (_req, res) => {
  res.json({ connections: channels.server.connections.size });
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', (error) => {
  if (error) throw error;
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
// Upgrades to /ws are hotline's; Express keeps every other request.
const hotline = attach(server, { websocket: { '/ws': channels.server } });

// Stop in order: WebSocket clients are told 1001 (the SDK reconnects elsewhere), then HTTP, then the channel engine.
process.once('SIGTERM', async () => {
  await hotline.closeConnections();
  server.close();
  await channels.hub.close();
});
