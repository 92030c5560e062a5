import type { ConnectionHandlers } from '../node/connection.js';

/** The /echo endpoint: every message goes back as it came, text as text, binary as binary. */
export const echoHandlers: ConnectionHandlers<undefined> = {
  message(conn, message) {
    conn.send(message);
  },
};
