/**
 * The timeouts both ends of a connection use by default, server and client alike: one home,
 * so that the two sides and `hotline serve`'s flags cannot drift apart.
 */

/**
 * Time for the opening handshake (10 s): on the server from accepting a connection to a
 * complete upgrade request, on the client from connecting to the server's 101 response.
 */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;

/**
 * Time for the closing handshake (5 s): for the peer's close frame once ours went out, and
 * then for the peer to close TCP once this side ended it.
 */
export const DEFAULT_CLOSE_TIMEOUT = 5_000;
