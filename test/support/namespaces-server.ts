// `hotline serve`'s app (createApp) with namespaces, in a process of its own, for the tests
// of the access levels that need an identity before JWT connection tokens land:
//
//   node --import tsx test/support/namespaces-server.ts NAMESPACES_JSON
//
// Who connects is read from the URL, as an application's authenticate would from a session:
// /ws?user=U&channels=a,b* is user U whose token's `channels` claim lists a and b*; without
// `user` the connection is anonymous. Subscription tokens: `sub|CHANNEL|USER` is valid for
// that channel and user (another channel or user: forbidden); anything else is unauthorized.
// Prints `namespaces-server ready port=PORT`; exits when stdin ends or on SIGTERM.
import { ChannelError } from '../../src/channels/index.js';
import { createApp } from '../../src/server/app.js';
import type { NamespacesConfig, TokenClaims } from '../../src/server/config/sections.js';
import { Logger } from '../../src/server/log.js';
import { serve } from '../../src/server/serve.js';
import { stopWhenTold } from './stop-when-told.js';

const namespaces = JSON.parse(process.argv[2] ?? '{}') as NamespacesConfig;
const app = createApp({
  namespaces,
  logger: new Logger('silent'),
  authenticate(req) {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const user = query.get('user');
    if (user === null) return { auth: undefined };
    const auth: TokenClaims = { sub: user, channels: (query.get('channels') ?? '').split(',').filter(Boolean) };
    return { auth, user, member: { id: user } };
  },
  subscriptionTokens: {
    verify(token, channel, user) {
      const [kind, forChannel, forUser] = token.split('|');
      if (kind !== 'sub' || forChannel === undefined) return Promise.reject(new ChannelError('unauthorized', 'not a subscription token'));
      if (forChannel !== channel || forUser !== user) return Promise.reject(new ChannelError('forbidden', `that token is for ${forChannel} and ${forUser}`));
      return Promise.resolve();
    },
  },
});
await app.ready;
const server = await serve({ port: 0, host: '127.0.0.1', websocket: app.websocket, request: app.request });
process.stdout.write(`namespaces-server ready port=${server.port}\n`);
stopWhenTold(async () => {
  await server.close();
  await app.close();
});
