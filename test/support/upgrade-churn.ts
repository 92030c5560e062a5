// A churn of WebSocket connections for the collector tests (test/accept.test.ts,
// test/workers.test.ts), and what V8's GC trace (`node --trace-gc-nvp`) says of it.
import { once } from 'node:events';
import { connect } from 'node:net';

// An upgrade request to /echo and a masked close frame 1000, then the client's end: hotline
// answers 101 and its own close, and closes; a plain server ends when the client does.
const REQUEST = Buffer.concat([
  Buffer.from('GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
  Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]),
]);

/** Opens `count` connections to `port`, 16 at a time, each sending REQUEST and waiting for its close. */
export async function churn(port: number, count: number): Promise<void> {
  let started = 0;
  const one = async (): Promise<void> => {
    while (started < count) {
      started++;
      const socket = connect(port, '127.0.0.1');
      socket.end(REQUEST);
      socket.resume();
      await once(socket, 'close');
    }
  };
  await Promise.all(Array.from({ length: 16 }, one));
}

/** One young-generation collection (scavenge) of a `--trace-gc-nvp` trace. */
export interface Scavenge {
  pid: number;
  /** Milliseconds since that process started. */
  ms: number;
  /** Bytes it moved to the old generation. */
  promoted: number;
}

/** The scavenges among `lines`: `[pid:isolate]   1234 ms: pause=... gc=s ... promoted=N ...`. */
export function scavenges(lines: Iterable<string>): Scavenge[] {
  const found: Scavenge[] = [];
  for (const line of lines) {
    const at = /^\[(\d+):[^\]]*\]\s+(\d+) ms: .* gc=s .* promoted=(\d+)/.exec(line);
    if (at !== null) found.push({ pid: Number(at[1]), ms: Number(at[2]), promoted: Number(at[3]) });
  }
  return found;
}
