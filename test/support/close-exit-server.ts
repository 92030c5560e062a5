// A process that serves `/ws` with a channel endpoint, has one client subscribe, then calls
// `server.close()` and nothing else: no `hub.close()`, no `process.exit()`. It must then
// exit by itself, with nothing of the server or its engine left holding the event loop.
//
//   node --import tsx test/support/close-exit-server.ts [REDIS_URL]
//
// Without a URL the memory engine is used. Prints `subscribed` once the client's `sub` was
// answered and `closed` once `server.close()` resolved.
import { once } from 'node:events';
import { RedisEngine } from '../../src/redis/index.js';
import { channelsEndpoint } from '../../src/server/channels.js';
import { serve } from '../../src/server/serve.js';
import { WebSocket, type WebSocketMessageEvent } from '../../src/node/client.js';
import type { CloseEvent } from '../../src/node/events.js';

const url = process.argv[2];
const channels = channelsEndpoint(url === undefined ? {} : { engine: new RedisEngine(url) });
await channels.ready;
const server = await serve({ port: 0, websocket: { '/ws': channels.server } });

const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, 'hotline.v1');
await once(ws, 'open');
ws.send(JSON.stringify({ op: 'sub', id: 1, ch: 'room' }));
const [answer] = (await once(ws, 'message')) as [WebSocketMessageEvent];
if ((JSON.parse(String(answer.data)) as { op: string }).op !== 'ok') throw new Error(`sub was answered ${answer.data}`);
console.log('subscribed');

const closed = once(ws, 'close');
await server.close();
const [event] = (await closed) as [CloseEvent];
console.log(`closed ${event.code}`);
