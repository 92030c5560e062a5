// What the core exposes so that its owner can pace a peer and time it, without a clock of
// its own: pause()/resume() (the owner stops reading after a message and goes on later,
// losing nothing), and receivingPartial/receivedCount (whether a frame or a fragmented
// message is half received, and whether it is the same one as before).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { encodeFrame } from './frame-encoder.js';
import { Opcode } from './opcode.js';
import { WebSocketProtocol } from './websocket-protocol.js';

function frame(opcode: number, payload: string, fin = true): Buffer {
  return Buffer.concat(encodeFrame(opcode, Buffer.from(payload), { fin, mask: true }));
}

/** A server-side protocol that records messages and control frames, and pauses after any message `pauseAfter` accepts. */
function server(pauseAfter: (text: string) => boolean = () => false) {
  const events: string[] = [];
  const proto: WebSocketProtocol = new WebSocketProtocol(
    {
      onMessage: (data) => {
        events.push(data.toString());
        if (pauseAfter(data.toString())) proto.pause();
      },
      onPing: (payload) => events.push(`ping:${payload.toString()}`),
      onProtocolError: (error) => events.push(`error:${error.code}`),
    },
    { role: 'server' },
  );
  return { proto, events };
}

const STREAM = Buffer.concat([
  frame(Opcode.Text, 'one'),
  frame(Opcode.Text, 'tw', false),
  frame(Opcode.Ping, 'p'),
  frame(Opcode.Continuation, 'o'),
  frame(Opcode.Text, 'three'),
  frame(Opcode.Binary, ''),
  frame(Opcode.Text, 'four'),
]);
const ALL = ['one', 'ping:p', 'two', 'three', '', 'four'];

describe('pause() and resume()', () => {
  test('paused after every message, resumed each time: the same messages, in order, at every split', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const { proto, events } = server(() => true);
      proto.receiveData(Buffer.from(STREAM.subarray(0, cut)));
      proto.receiveData(Buffer.from(STREAM.subarray(cut)));
      let resumes = 0;
      while (proto.paused) {
        proto.resume();
        resumes++;
        assert.ok(resumes <= ALL.length, 'each resume reads at least one message');
      }
      assert.deepEqual(events, ALL, `split at ${cut}`);
    }
  });

  test('a pause takes effect once the handler returns: nothing more is decoded, even a ping', () => {
    const { proto, events } = server((text) => text === 'one');
    proto.receiveData(Buffer.from(STREAM));
    assert.deepEqual(events, ['one']);
    assert.equal(proto.paused, true);
    assert.equal(proto.bufferedAmount, 0, 'the ping held back is not answered yet');
    proto.receiveData(frame(Opcode.Text, 'five'));
    assert.deepEqual(events, ['one'], 'bytes fed while paused are held too');
    proto.resume();
    assert.deepEqual(events, [...ALL, 'five']);
    assert.ok(proto.bufferedAmount > 0, 'the pong went out once the ping was read');
  });

  test('an error in held bytes is reported when they are read, with its close code', () => {
    const { proto, events } = server(() => true);
    proto.receiveData(Buffer.concat([frame(Opcode.Text, 'one'), Buffer.from([0x83, 0x80, 0, 0, 0, 0])]));
    assert.deepEqual(events, ['one']);
    proto.resume();
    assert.deepEqual(events, ['one', 'error:RESERVED_OPCODE']);
    assert.equal(proto.paused, false);
    assert.equal(proto.failure?.closeCode, 1002);
  });

  test('held bytes are dropped when the peer closes first or the transport ends', () => {
    const { proto, events } = server(() => true);
    proto.receiveData(Buffer.concat([frame(Opcode.Text, 'one'), frame(Opcode.Text, 'two')]));
    proto.receiveEof();
    assert.equal(proto.paused, false);
    proto.resume();
    assert.deepEqual(events, ['one']);
  });
});

describe('receivingPartial and receivedCount', () => {
  test('partial inside a frame, and inside a fragmented message between its frames; not between messages', () => {
    const { proto } = server();
    const whole = frame(Opcode.Text, 'hello');
    assert.equal(proto.receivingPartial, false);
    proto.receiveData(whole.subarray(0, 1));
    assert.equal(proto.receivingPartial, true, 'one header byte');
    proto.receiveData(whole.subarray(1, whole.length - 1));
    assert.equal(proto.receivingPartial, true, 'all but the last byte');
    proto.receiveData(whole.subarray(whole.length - 1));
    assert.equal(proto.receivingPartial, false);
    assert.equal(proto.receivedCount, 1);

    proto.receiveData(frame(Opcode.Text, 'a', false));
    assert.equal(proto.receivingPartial, true, 'a fragmented message has begun');
    proto.receiveData(frame(Opcode.Ping, ''));
    assert.equal(proto.receivingPartial, true, 'a ping inside it does not end it');
    assert.equal(proto.receivedCount, 1, 'nor does it count');
    proto.receiveData(frame(Opcode.Continuation, 'b', false));
    assert.equal(proto.receivingPartial, true);
    proto.receiveData(frame(Opcode.Continuation, 'c'));
    assert.equal(proto.receivingPartial, false);
    assert.equal(proto.receivedCount, 2);

    proto.receiveData(frame(Opcode.Ping, 'x'));
    assert.equal(proto.receivedCount, 3, 'a control frame between messages counts');
  });

  test('messages sent back to back with every read ending inside one: the count tells each new one apart', () => {
    const { proto } = server();
    const one = frame(Opcode.Binary, 'x'.repeat(50));
    const stream = Buffer.concat([one, one, one]);
    proto.receiveData(Buffer.from(stream.subarray(0, 40)));
    assert.deepEqual([proto.receivingPartial, proto.receivedCount], [true, 0]);
    proto.receiveData(Buffer.from(stream.subarray(40, 100)));
    assert.deepEqual([proto.receivingPartial, proto.receivedCount], [true, 1]);
    proto.receiveData(Buffer.from(stream.subarray(100, 160)));
    assert.deepEqual([proto.receivingPartial, proto.receivedCount], [true, 2]);
    proto.receiveData(Buffer.from(stream.subarray(160)));
    assert.deepEqual([proto.receivingPartial, proto.receivedCount], [false, 3]);
  });

  test('nothing is partial once the connection failed or the peer closed', () => {
    const failed = server();
    failed.proto.receiveData(Buffer.from([0x81]));
    assert.equal(failed.proto.receivingPartial, true);
    failed.proto.receiveData(Buffer.from([0x05])); // unmasked: refused
    assert.equal(failed.proto.receivingPartial, false);
    const closed = server();
    closed.proto.receiveData(Buffer.concat([frame(Opcode.Text, 'a', false), frame(Opcode.Close, '')]));
    assert.equal(closed.proto.receivingPartial, false);
  });
});
