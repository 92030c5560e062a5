// `decodeText: false` (src/node/connection-context.ts): text reaches the message handler as
// the bytes that came, as ws gives it, still checked as UTF-8; /echo sends it back as text.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { serve } from '../src/index.js';
import { waitFor } from './support/wait.js';

describe('decodeText: false', () => {
  test('text arrives as its UTF-8 bytes with isBinary false, binary with isBinary true; invalid UTF-8 still fails with 1007', async () => {
    const received: Array<[string, boolean]> = [];
    const app = await serve({
      websocket: {
        '/raw': {
          decodeText: false,
          handlers: {
            message(conn, message, isBinary) {
              assert.ok(Buffer.isBuffer(message), 'a Buffer for text and binary alike');
              received.push([message.toString('hex'), isBinary]);
              conn.send(message, { binary: isBinary });
            },
          },
        },
      },
    });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${app.port}/raw`, { perMessageDeflate: false });
      await once(ws, 'open');
      const echoes: Array<[string, boolean]> = [];
      ws.on('message', (data: Buffer, isBinary: boolean) => echoes.push([data.toString('hex'), isBinary]));
      ws.send('héllo ✓');
      ws.send(Buffer.from([0, 255, 1]));
      await waitFor(() => echoes.length === 2, 'both echoes');
      const expected: Array<[string, boolean]> = [
        [Buffer.from('héllo ✓').toString('hex'), false],
        ['00ff01', true],
      ];
      assert.deepEqual(received, expected);
      assert.deepEqual(echoes, expected, 'text went back as text, binary as binary');

      // A text frame whose payload is not UTF-8: the check still runs without the decoding.
      const closed = once(ws, 'close');
      const socket = Reflect.get(ws, '_socket') as Socket;
      socket.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28]));
      const [code] = (await closed) as [number];
      assert.equal(code, 1007);
      assert.equal(received.length, 2, 'the invalid message never reached the handler');
    } finally {
      await app.close();
    }
  });
});
