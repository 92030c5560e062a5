// What the core keeps past a read is its own. A transport may hand several small reads out of
// one slab (src/node/shared-reads.ts does), and a read may be 64 KiB: a message delivered
// within its read is a view of it (no copy), but an unfinished message, or bytes held while
// paused, must not keep the read's memory alive once receiveData returns.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { encodeFrame } from './frame-encoder.js';
import { Opcode } from './opcode.js';
import { WebSocketProtocol } from './websocket-protocol.js';

const SLAB = 64 * 1024;

function frame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  return Buffer.concat(encodeFrame(opcode, typeof payload === 'string' ? Buffer.from(payload) : payload, { fin, mask: true }));
}

/** `bytes` as a read would come: a view at the start of a much larger store. */
function readInSlab(bytes: Buffer): Buffer {
  const read = Buffer.from(new ArrayBuffer(SLAB), 0, bytes.length);
  bytes.copy(read);
  return read;
}

function server(pauseAfterEach = false) {
  const messages: Buffer[] = [];
  const proto: WebSocketProtocol = new WebSocketProtocol(
    {
      onMessage: (data) => {
        messages.push(data);
        if (pauseAfterEach) proto.pause();
      },
    },
    { role: 'server' },
  );
  return { proto, messages };
}

describe('what the core keeps past a read', () => {
  test('a message whole within its read is a view of it: no copy', () => {
    const { proto, messages } = server();
    const read = readInSlab(frame(Opcode.Binary, 'whole'));
    proto.receiveData(read);
    assert.equal(String(messages[0]), 'whole');
    assert.equal(messages[0]!.buffer, read.buffer);
  });

  test('an unfinished message holds its bytes, not the read they came in', () => {
    const { proto, messages } = server();
    const payload = Buffer.alloc(300, 'a');
    // The first fragment and the start of the next frame's header end the first read; the
    // second read brings an empty last fragment, so the message is the first piece alone.
    const first = frame(Opcode.Binary, payload, false);
    const last = frame(Opcode.Continuation, Buffer.alloc(0));
    const read1 = readInSlab(Buffer.concat([first, last.subarray(0, 1)]));
    proto.receiveData(read1);
    assert.equal(messages.length, 0);
    proto.receiveData(readInSlab(last.subarray(1)));
    assert.equal(messages.length, 1);
    assert.ok(messages[0]!.equals(payload), 'the message, byte for byte');
    assert.notEqual(messages[0]!.buffer, read1.buffer, 'a store of its own, not the first read');
    assert.ok(messages[0]!.buffer.byteLength < SLAB / 8, `${messages[0]!.buffer.byteLength} B kept for a 300 B message`);
  });

  test('bytes left in a read when a handler pauses are held as a copy of just those bytes', () => {
    const { proto, messages } = server(true);
    const read = readInSlab(Buffer.concat([frame(Opcode.Text, 'one'), frame(Opcode.Text, 'two')]));
    proto.receiveData(read);
    assert.deepEqual(messages.map(String), ['one']);
    const later = readInSlab(frame(Opcode.Text, 'three'));
    proto.receiveData(later);
    proto.resume();
    proto.resume();
    assert.deepEqual(messages.map(String), ['one', 'two', 'three']);
    for (const message of messages.slice(1)) {
      assert.notEqual(message.buffer, read.buffer, 'not the first read');
      assert.notEqual(message.buffer, later.buffer, 'not the read pushed while paused');
      assert.ok(message.buffer.byteLength <= 32, `${message.buffer.byteLength} B held`);
    }
  });
});
