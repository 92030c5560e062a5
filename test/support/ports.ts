// Ports for servers that tests start, and restart on the same port.
//
// A port the system picked (bind to port 0) lies in its ephemeral range, from which it also
// picks the local port of every outgoing connection and the port of every other bind to 0.
// While a server a test stopped is down, another test's server or client on this busy
// machine can take that port: a browser reconnecting then reaches a stranger (an
// EventSource answered 404 stops for good), and the restart finds the port in use. So the
// ports handed out here lie below that range, where nothing is given out by the system.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where the ports handed out start: above the ones well-known services use. */
const LOWEST = 16_384;
/** Ports tried below the ephemeral range before taking one the system picks. */
const ATTEMPTS = 20;

/** The first port of the kernel's ephemeral range (Linux; 32768, its default, elsewhere). */
function ephemeralStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(first) && first > LOWEST) return first;
  } catch {
    // Not Linux: the default range.
  }
  return 32_768;
}

/** Binds 127.0.0.1:port and lets it go: the port bound, or null when it was taken. */
function tryPort(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : null;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A port of 127.0.0.1 that is free now: `preferred` when it is, else one below the
 * ephemeral range (see above), else one the system picks. A race with another test that
 * chose the same port is still possible: starting a server retries on a taken port.
 */
export async function freePort(preferred = 0): Promise<number> {
  if (preferred !== 0) {
    const port = await tryPort(preferred);
    if (port !== null) return port;
  }
  const end = ephemeralStart();
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = await tryPort(LOWEST + Math.floor(Math.random() * (end - LOWEST)));
    if (port !== null) return port;
  }
  const port = await tryPort(0);
  if (port === null) throw new Error('could not find a free port');
  return port;
}
