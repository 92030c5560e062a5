// hotline beside an existing `ws` server on one node:http server, behind a proxy that runs
// on the same machine (nginx, say) and tells who the client is in X-Forwarded-For.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { attach, channelsEndpoint } from 'hotline';

// Believe X-Forwarded-For and Forwarded only from the proxy: here, loopback.
const channels = channelsEndpoint({ trustProxy: 'loopback' });
await channels.ready;

const server = createServer((req, res) => {
  if (req.url === '/clients') {
    // Each connection's remoteAddress is the client's, as the proxy forwarded it.
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify([...channels.server.connections].map((conn) => conn.remoteAddress)));
    return;
  }
  res.writeHead(404).end();
});

// The ws server keeps its path: its own upgrade listener takes /legacy and leaves the rest
// (a listener must not answer paths it does not serve, or it answers over the others).
const legacy = new WebSocketServer({ noServer: true });
legacy.on('connection', (socket) => socket.on('message', (data) => socket.send(`legacy: ${String(data)}`)));
server.on('upgrade', (req, socket, head) => {
  if (req.url === '/legacy') legacy.handleUpgrade(req, socket, head, (ws) => legacy.emit('connection', ws, req));
});
// hotline takes /ws, and leaves other paths to the listener above.
const hotline = attach(server, { websocket: { '/ws': channels.server } });

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

process.once('SIGTERM', async () => {
  for (const socket of legacy.clients) socket.close(1001);
  await hotline.closeConnections();
  server.close();
  await channels.hub.close();
});
