// A hotline channel server in a child process, for the SDK's fault tests: they SIGKILL it
// mid-stream and start it again on the same port.
//
//   node --import tsx test/support/sdk-server.ts PORT [OPTIONS_JSON]
//
// PORT 0 picks a free port. OPTIONS_JSON (all optional): {"historySize": n, "publishRate":
// {"perSecond": n, "burst": n}, "subscribeRate": {…}, "standby": true, "session": true, "unavailable": [CHANNEL…],
// "forbidden": [CHANNEL…]}. Subscribing to (or reading) a channel in "unavailable" fails with
// `internal` (its permission check throws, as when the service behind it is down) until the
// rpc `allow` names it; one in "forbidden" is refused with `forbidden`. With "standby", the server loads, prints
// `sdk-server loaded`, and waits for a line `listen` on stdin before it listens: a test
// starts the replacement of a server it is about to kill ahead of time, so that the restart
// takes milliseconds however long a process takes to start. With "session", it also serves /sse,
// the HTTP fallback session (/sse/session), /hotline.js and a blank page (session-routes.ts).
// Once listening it prints one line,
//
//   sdk-server ready port=PORT at=EPOCH_MS
//
// where EPOCH_MS is Date.now() right after the port listens (the parent and the child share
// the clock, so the parent can time reconnects from it). SIGTERM closes every connection
// with 1001 and exits 0; SIGKILL is the crash the tests want. The server also exits when
// its stdin ends, so a parent that dies without cleaning up does not leave it behind.
//
// rpc methods: `echo` (answers its params), `never` (never answers), `kick` (closes the
// caller's connection with 1008, policy violation), `allow` (params: a channel name; ends its
// "unavailable"; answers how many subscribes were refused for it meanwhile).
import { serve } from '../../src/server/serve.js';
import { channelsEndpoint } from '../../src/server/channels.js';
import { MemoryEngine } from '../../src/channels/memory-engine.js';
import { ChannelError } from '../../src/channels/channel-error.js';
import type { Json } from '../../src/wire/index.js';
import { sessionRoutes } from './session-routes.js';
import { stopWhenTold } from './stop-when-told.js';

interface ServerOptions {
  historySize?: number;
  publishRate?: { perSecond: number; burst: number };
  subscribeRate?: { perSecond: number; burst: number };
  standby?: boolean;
  session?: boolean;
  unavailable?: string[];
  forbidden?: string[];
}

const port = Number(process.argv[2] ?? '0');
const options = JSON.parse(process.argv[3] ?? '{}') as ServerOptions;

/** Refusals so far of each channel still unavailable. */
const unavailable = new Map((options.unavailable ?? []).map((channel) => [channel, 0]));
const forbidden = new Set(options.forbidden ?? []);

const endpoint = channelsEndpoint({
  engine: new MemoryEngine({ historySize: options.historySize ?? 10_000, historyTtl: 0 }),
  publishRate: options.publishRate ?? { perSecond: 1000, burst: 1000 },
  ...(options.subscribeRate === undefined ? {} : { subscribeRate: options.subscribeRate }),
  // With "session": the upgrade's (or the session GET's) `?member=NAME` is the presence member.
  ...(options.session === true
    ? {
        authenticate: (req: { url?: string }) => {
          const member = new URL(req.url ?? '/', 'http://x').searchParams.get('member');
          return member === null ? { auth: undefined } : { auth: undefined, member: { id: member } };
        },
      }
    : {}),
  canSubscribe: (_context, channel) => {
    const refused = unavailable.get(channel);
    if (refused !== undefined) {
      unavailable.set(channel, refused + 1);
      throw new ChannelError('internal', `${channel} is unavailable for now`);
    }
    return !forbidden.has(channel);
  },
  rpc: {
    allow: (params) => {
      const refused = unavailable.get(String(params)) ?? 0;
      unavailable.delete(String(params));
      return refused;
    },
    echo: (params) => (params ?? null) as Json,
    never: () => new Promise<Json>(() => {}),
    kick: (_params, { client }) => {
      client.close(1008, 'kicked');
      return null;
    },
  },
});
await endpoint.ready;
if (options.standby === true) {
  process.stdout.write('sdk-server loaded\n');
  await new Promise<void>((resolve) => {
    let input = '';
    const onData = (chunk: Buffer): void => {
      input += chunk.toString();
      if (!input.includes('listen\n')) return;
      process.stdin.off('data', onData);
      resolve();
    };
    process.stdin.on('data', onData);
  });
}
const routes = options.session === true ? sessionRoutes(endpoint) : undefined;
const server = await serve({ port, websocket: { '/ws': endpoint.server }, request: routes?.request });
process.stdout.write(`sdk-server ready port=${server.port} at=${Date.now()}\n`);

stopWhenTold(async () => {
  routes?.close();
  await server.close();
  await endpoint.hub.close();
});
