// Once the closing handshake is done, the server closes TCP itself (RFC 6455 §7.1.1): the
// peer gets the close frame, then the server's FIN, and the server's `close` handler runs
// without waiting for the peer to close its side. Seen from raw sockets that keep their
// side open (allowHalfOpen), with a close timeout far longer than the test may take, so a
// server that waited for the peer's FIN would fail here.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { serve, type RunningServer, type WebSocketConnection } from '../src/index.js';
import { clientFrame, rawConnect, type RawConnection } from './support/attack.js';
import { closePayload } from './support/bytes.js';
import { waitFor, within } from './support/wait.js';

const OPCODE_CLOSE = 0x8;
const LONG_CLOSE_TIMEOUT = 10 * 60_000;
const TEST_TIMEOUT = 30_000;

/** The server's close frame for `code` and `reason`, as it goes on the wire (unmasked). */
function serverClose(code: number, reason = ''): Buffer {
  const payload = closePayload(code, reason);
  return Buffer.concat([Buffer.from([0x80 | OPCODE_CLOSE, payload.length]), payload]);
}

/** A raw client that keeps its own side open after the server's FIN; `ended` settles on that FIN. */
async function halfOpenPeer(port: number): Promise<RawConnection & { ended: Promise<unknown> }> {
  const peer = await rawConnect(port, '/ws');
  peer.socket.allowHalfOpen = true;
  return { ...peer, ended: once(peer.socket, 'end') };
}

async function closingServer(): Promise<{ app: RunningServer; opened: Promise<WebSocketConnection<undefined>>; closed: Promise<{ code: number; reason: string }> }> {
  let open!: (conn: WebSocketConnection<undefined>) => void;
  let close!: (info: { code: number; reason: string }) => void;
  const opened = new Promise<WebSocketConnection<undefined>>((resolve) => (open = resolve));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (close = resolve));
  const app = await serve({
    websocket: {
      '/ws': {
        closeTimeout: LONG_CLOSE_TIMEOUT,
        handlers: {
          open,
          message() {},
          close(_conn, code, reason) {
            close({ code, reason });
          },
        },
      },
    },
  });
  return { app, opened, closed };
}

describe('closing handshake: the server closes TCP first', () => {
  test('the peer closes: close frame echoed, then FIN, and `close` runs while the peer keeps its side open', { timeout: TEST_TIMEOUT }, async () => {
    const { app, opened, closed } = await closingServer();
    try {
      const peer = await halfOpenPeer(app.port);
      await opened;
      peer.socket.write(clientFrame(OPCODE_CLOSE, closePayload(1000, 'bye')));
      const [info] = await within(Promise.all([closed, peer.ended]), "the server's close handler and its FIN");
      assert.deepEqual(info, { code: 1000, reason: 'bye' });
      assert.deepEqual(peer.received(), serverClose(1000), 'exactly one close frame (1000, no reason), then FIN');
      assert.equal(peer.socket.destroyed, false, 'the peer has not closed its side');
      assert.equal(app.endpoints.get('/ws')!.connections.size, 0, 'the connection is gone');
      peer.socket.destroy();
    } finally {
      await app.close();
    }
  });

  test('the server closes: its close frame, the peer answers, then FIN, and `close` runs while the peer keeps its side open', { timeout: TEST_TIMEOUT }, async () => {
    const { app, opened, closed } = await closingServer();
    try {
      const peer = await halfOpenPeer(app.port);
      const conn = await opened;
      conn.close(4001, 'done');
      const expected = serverClose(4001, 'done');
      await waitFor(() => peer.received().length >= expected.length, "the server's close frame");
      assert.deepEqual(peer.received(), expected);
      peer.socket.write(clientFrame(OPCODE_CLOSE, closePayload(4001)));
      const [info] = await within(Promise.all([closed, peer.ended]), "the server's close handler and its FIN");
      assert.deepEqual(info, { code: 4001, reason: '' });
      assert.deepEqual(peer.received(), expected, 'nothing after the close frame but FIN');
      assert.equal(peer.socket.destroyed, false, 'the peer has not closed its side');
      peer.socket.destroy();
    } finally {
      await app.close();
    }
  });
});
