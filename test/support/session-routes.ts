// The plain HTTP side of test/support/sdk-server.ts when it serves the HTTP fallback: /sse and
// /sse/session of its channel endpoint, the SDK bundle (/hotline.js, from dist/) and a blank
// page at / for a browser to start from.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { ChannelsEndpoint } from '../../src/server/channels.js';
import { httpSessionEndpoint } from '../../src/server/http-session.js';
import { sseEndpoint } from '../../src/server/sse.js';

const bundle = fileURLToPath(new URL('../../dist/hotline.js', import.meta.url));

export function sessionRoutes<A>(channels: ChannelsEndpoint<A>): { request(req: IncomingMessage, res: ServerResponse): void; close(): void } {
  const sse = sseEndpoint(channels);
  const session = httpSessionEndpoint(channels, { admission: sse.admission });
  return {
    request(req, res) {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/sse') return sse.handleRequest(req, res);
      if (path === '/sse/session') return session.handleRequest(req, res);
      if (path === '/hotline.js') {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
        return void res.end(readFileSync(bundle));
      }
      if (path === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return void res.end('<!doctype html><title>fallback</title>');
      }
      res.writeHead(404).end();
    },
    close() {
      sse.close();
      session.close();
    },
  };
}
