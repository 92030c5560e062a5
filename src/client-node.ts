/**
 * `hotline/client` as Node resolves it (the `node` condition of its export): the SDK of
 * `./client/index.ts`, whose `connect()` and `HotlineClient` use hotline's Node WebSocket
 * when no `WebSocket` option is given, as browsers' builds use the page's own.
 */
import { HotlineClient as PlatformClient, type ClientOptions } from './client/index.js';
import { WebSocket } from './node/client.js';

export * from './client/index.js';

/** The SDK's client; without a `WebSocket` option it uses hotline's Node WebSocket. */
export class HotlineClient extends PlatformClient {
  constructor(url: string, options: ClientOptions = {}) {
    super(url, { ...options, WebSocket: options.WebSocket ?? WebSocket });
  }
}

/** Connects to a hotline.v1 endpoint; in Node, through hotline's WebSocket unless told otherwise. */
export function connect(url: string, options: ClientOptions = {}): HotlineClient {
  return new HotlineClient(url, options);
}
