import type { ConnectionHandlers, ConnectionOptions } from '../node/connection.js';

/** The /echo endpoint: every message goes back as it came, text as text, binary as binary. */
export const echoHandlers: ConnectionHandlers<undefined> = {
  message(conn, message, isBinary) {
    conn.send(message, { binary: isBinary });
  },
};

/** Text is sent back as the bytes it came in (already checked as UTF-8): no string between. */
export const echoOptions: ConnectionOptions = { decodeText: false };
