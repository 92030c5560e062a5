import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { UpgradeRejection } from '../node/server.js';
import type { AdminAccess, AdminGate } from './admin.js';

// The plain HTTP paths of `hotline serve`: the pages and the SDK, the inspector's page and
// its sign-in, /healthz and /metrics. What they show comes from the app that composes them.

/** What the HTTP paths need from the app. */
export interface RouteSources {
  /** Where the pages are (web/). */
  webRoot: string;
  /** Where dist/hotline.js is. */
  sdkRoot: string;
  admin: { inspector: AdminAccess; metrics: AdminAccess };
  gate: AdminGate;
  healthy(): boolean;
  metrics(): string;
}

const PAGES: Record<string, string> = {
  '/': 'index.html',
  '/demo/echo': 'demo/echo.html',
  '/demo/chat': 'demo/chat.html',
  '/demo/cursors': 'demo/cursors.html',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

const TEXT = 'text/plain; charset=utf-8';
/** The inspector's login form is a few dozen bytes. */
const MAX_LOGIN_BODY = 4096;

/** The request handler of the app's plain HTTP paths. */
export function routes(sources: RouteSources): (req: IncomingMessage, res: ServerResponse) => void {
  const { webRoot, sdkRoot, admin, gate } = sources;
  const refuse = (res: ServerResponse, refusal: UpgradeRejection): void => send(res, refusal.status, TEXT, `${refusal.message ?? ''}\n`, refusal.headers);

  const loginPage = (res: ServerResponse, message: string | null): void => {
    readFile(join(webRoot, 'inspect-login.html'), 'utf8').then(
      (page) => {
        const shown = message === null ? page : page.replace('<p id="login-message" role="alert" hidden></p>', `<p id="login-message" role="alert">${message}</p>`);
        send(res, 401, TYPES['.html']!, shown, { 'WWW-Authenticate': 'Bearer realm="hotline"' });
      },
      () => send(res, 401, TEXT, 'the admin secret is required\n'),
    );
  };

  const inspectPage = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method === 'POST') {
      readForm(req, MAX_LOGIN_BODY).then(
        (form) => {
          if (form === null) send(res, 413, TEXT, 'request body too large\n', { Connection: 'close' });
          else if (admin.inspector === 'open') send(res, 303, TEXT, 'see /inspect\n', { Location: '/inspect' });
          else if (!gate.isSecret(form.get('token') ?? '')) loginPage(res, 'That is not the admin secret.');
          else {
            const secure = (req.socket as TLSSocket).encrypted === true;
            send(res, 303, TEXT, 'see /inspect\n', { Location: '/inspect', 'Set-Cookie': gate.sessionCookie(secure) });
          }
        },
        () => res.destroy(),
      );
      return;
    }
    const refusal = gate.check(req.headers, true);
    if (refusal === null) sendFile(res, join(webRoot, 'inspect.html'));
    else if (refusal.status === 401) loginPage(res, null);
    else refuse(res, refusal);
  };

  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/inspect') {
      if (admin.inspector === 'off') send(res, 404, TEXT, 'the inspector is turned off\n');
      else if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') {
        send(res, 405, TEXT, 'method not allowed\n', { Allow: 'GET, HEAD, POST' });
      } else inspectPage(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, TEXT, 'method not allowed\n', { Allow: 'GET, HEAD' });
      return;
    }
    if (path === '/healthz') {
      if (sources.healthy()) send(res, 200, TEXT, 'ok\n');
      else send(res, 503, TEXT, 'channel engine unavailable\n');
      return;
    }
    if (path === '/metrics') {
      const refusal = admin.metrics === 'off' ? { status: 404, message: 'metrics are turned off' } : gate.check(req.headers, false);
      if (refusal === null) send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', sources.metrics());
      else refuse(res, refusal);
      return;
    }
    if (path === '/hotline.js' || path === '/hotline.js.map') {
      sendFile(res, join(sdkRoot, path.slice(1)), 'the SDK bundle is missing: run npm run build');
      return;
    }
    const page = PAGES[path];
    if (page !== undefined) {
      sendFile(res, join(webRoot, page));
      return;
    }
    if (path.startsWith('/assets/')) {
      const file = normalize(join(webRoot, path));
      // No way out of web/ through ../ or encoded separators.
      if (!file.startsWith(join(webRoot, 'assets') + sep) || path.includes('%')) {
        send(res, 404, TEXT, 'not found\n');
        return;
      }
      sendFile(res, file);
      return;
    }
    send(res, 404, TEXT, 'not found\n');
  };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache', ...headers });
  res.end(body);
}

function sendFile(res: ServerResponse, file: string, missing = 'not found'): void {
  readFile(file).then(
    (body) => send(res, 200, TYPES[extname(file)] ?? 'application/octet-stream', body),
    () => send(res, 404, TEXT, `${missing}\n`),
  );
}

/** The fields of a small urlencoded body; null when it is larger than `limit` bytes. */
function readForm(req: IncomingMessage, limit: number): Promise<URLSearchParams | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        resolve(null);
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (size <= limit) resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('error', reject);
  });
}
