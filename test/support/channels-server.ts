// The channel endpoint served over real sockets, for the tests of hotline.v1: serve() with
// channelsEndpoint on /ws (127.0.0.1, a port the system picks), and raw clients it hands
// out and terminates when it closes.
import { channelsEndpoint, type ChannelsEndpointOptions } from '../../src/server/channels.js';
import { serve, type RunningServer } from '../../src/server/serve.js';
import { ChannelsClient, type ConnectOptions } from './channels-client.js';

export type ChannelsEndpoint<A> = ReturnType<typeof channelsEndpoint<A>>;

export interface ChannelsServer<A> {
  readonly server: RunningServer;
  readonly endpoint: ChannelsEndpoint<A>;
  /** ws://127.0.0.1:PORT/ws, with `?query` when one is given (`user=u1`). */
  url(query?: string): string;
  /** A raw hotline.v1 client of /ws (with `?query`), terminated when the server closes. */
  connect(query?: string, options?: ConnectOptions): Promise<ChannelsClient>;
  /** Terminates the clients, then closes the server and the hub. */
  close(): Promise<void>;
}

export async function startChannels<A = undefined>(options: ChannelsEndpointOptions<A> = {}): Promise<ChannelsServer<A>> {
  const endpoint = channelsEndpoint<A>(options);
  await endpoint.ready;
  const server = await serve({ port: 0, websocket: { '/ws': endpoint.server } });
  const clients: ChannelsClient[] = [];
  const url = (query?: string): string => `ws://127.0.0.1:${server.port}/ws${query === undefined ? '' : `?${query}`}`;
  return {
    server,
    endpoint,
    url,
    async connect(query, connectOptions) {
      const client = await ChannelsClient.connect(url(query), connectOptions);
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.terminate();
      await server.close();
      await endpoint.hub.close();
    },
  };
}

/** Runs `body` against a fresh server, closed afterwards whatever happens. */
export async function withChannels<A = undefined>(options: ChannelsEndpointOptions<A>, body: (s: ChannelsServer<A>) => Promise<void>): Promise<void> {
  const s = await startChannels<A>(options);
  try {
    await body(s);
  } finally {
    await s.close();
  }
}
