// Fastify and hotline on one port: the app's routes, and a hotline.v1 channel endpoint at /ws.
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { attach, channelsEndpoint } from 'hotline';

const channels = channelsEndpoint();
await channels.ready;

const fastify = Fastify();
// An ordinary route that reads hotline's state: the WebSocket connections open now.
fastify.get('/online', async () => ({ connections: channels.server.connections.size }));

// fastify.server is its node:http server: upgrades to /ws are hotline's.
const hotline = attach(fastify.server, { websocket: { '/ws': channels.server } });
await fastify.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
console.log(`listening on http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`);

// Stop in order: WebSocket clients are told 1001 (the SDK reconnects elsewhere), then HTTP, then the channel engine.
process.once('SIGTERM', async () => {
  await hotline.closeConnections();
  await fastify.close();
  await channels.hub.close();
});
