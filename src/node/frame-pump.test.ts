// The tick's flush: frames queued outside a read go out once the loop's I/O callbacks have
// run. A throw inside one pass (a bug) must not leave the flush stuck: every pump after
// it, and every later one, still writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { WebSocketProtocol } from '../protocol/index.js';
import { beforeNextFlush, FramePump } from './frame-pump.js';

/** A socket that keeps what is written to it (no libuv handle: the pump writes through socket.write). */
function memorySocket(): { socket: Socket; written: Buffer[]; wrote: () => Promise<void> } {
  const written: Buffer[] = [];
  let wake: (() => void) | null = null;
  const socket = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk);
      wake?.();
      done();
    },
  });
  const wrote = (): Promise<void> => new Promise((resolve) => (wake = resolve));
  return { socket: socket as unknown as Socket, written, wrote };
}

function pumpWith(text: string): { pump: FramePump; written: Buffer[]; wrote: () => Promise<void> } {
  const { socket, written, wrote } = memorySocket();
  const protocol = new WebSocketProtocol({ onMessage: () => {} }, { role: 'server' });
  protocol.send(text);
  return { pump: new FramePump(socket, protocol, 1_000), written, wrote };
}

/** Takes the process's next uncaught exception instead of the test runner. */
function nextUncaught(): Promise<Error> {
  const runners = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  return new Promise((resolve) => {
    process.once('uncaughtException', (error) => {
      for (const runner of runners) process.on('uncaughtException', runner);
      resolve(error);
    });
  });
}

test('a task that throws during the flush: the pumps of that pass still write, in the next pass', async () => {
  const failure = nextUncaught();
  const first = pumpWith('first');
  const later = pumpWith('later');
  beforeNextFlush(() => {
    throw new Error('a task failed');
  });
  first.pump.schedule();
  const written = first.wrote();
  assert.equal((await failure).message, 'a task failed');
  await written;
  assert.deepEqual(first.written.map((b) => b.subarray(2).toString()), ['first']);

  // And the flush still runs for a pump scheduled afterwards.
  const wroteLater = later.wrote();
  later.pump.schedule();
  await wroteLater;
  assert.deepEqual(later.written.map((b) => b.subarray(2).toString()), ['later']);
});

test('a pump whose flush throws: the pumps after it write, and it is not flushed again for it', async () => {
  const failure = nextUncaught();
  const broken = pumpWith('lost to a bug');
  const after = pumpWith('after');
  broken.pump.flush = () => {
    throw new Error('a flush failed');
  };
  broken.pump.schedule();
  after.pump.schedule();
  const written = after.wrote();
  assert.equal((await failure).message, 'a flush failed');
  await written;
  assert.deepEqual(after.written.map((b) => b.subarray(2).toString()), ['after']);
  assert.equal(broken.written.length, 0);
});
