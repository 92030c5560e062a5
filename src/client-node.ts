/**
 * `hotline/client` as Node resolves it (the `node` condition of its export): the SDK of
 * `./client/index.ts`, whose `connect()` and `HotlineClient` use hotline's Node WebSocket
 * when no `WebSocket` option is given, as browsers' builds use the page's own.
 */
import { HotlineClient as PlatformClient, type ClientOptions, type Contract, type NoContract } from './client/index.js';
import { WebSocket } from './node/client.js';

export * from './client/index.js';

/** The SDK's client; without a `WebSocket` option it uses hotline's Node WebSocket. */
export class HotlineClient<C extends Contract = NoContract> extends PlatformClient<C> {
  constructor(url: string, options: ClientOptions = {}) {
    super(url, { ...options, WebSocket: options.WebSocket ?? WebSocket });
  }
}

/** Connects to a hotline.v1 endpoint; in Node, through hotline's WebSocket unless told otherwise. */
export function connect<C extends Contract = NoContract>(url: string, options: ClientOptions & { contract?: C } = {}): HotlineClient<C> {
  return new HotlineClient<C>(url, options);
}
