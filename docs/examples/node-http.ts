// node:http alone, routing upgrades itself with handleUpgrade(): the lower level attach()
// is built on, for when the routing is yours (several endpoints, other listeners, checks of
// your own before hotline sees the request).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { channelsEndpoint } from 'hotline';

const channels = channelsEndpoint();
await channels.ready;

const server = createServer((req, res) => {
  if (req.url === '/online') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ connections: channels.server.connections.size }));
    return;
  }
  res.writeHead(404).end();
});

server.on('upgrade', (req, socket, head) => {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost');
  if (pathname === '/ws') {
    // Checks the handshake, runs the endpoint's hooks, then answers 101 or the right HTTP error.
    channels.server.handleUpgrade(req, socket, head).catch(() => socket.destroy());
    return;
  }
  // An upgrade no listener serves must be answered, or the socket stays open.
  socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
});

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

// Stop in order: WebSocket clients are told 1001, the server closes once they are gone
// (each closing handshake is bounded by closeTimeout), then the channel engine.
process.once('SIGTERM', () => {
  channels.server.stop();
  channels.server.closeAll();
  server.close(() => void channels.hub.close());
});
