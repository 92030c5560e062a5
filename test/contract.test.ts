// A contract declared once types both ends and holds at run time: the server refuses data
// outside a channel's schema and params outside a method's, its handlers get the schema's
// output, an answer outside the method's result schema is answered `internal` (never passed
// on), and the SDK's publish, subscribe and rpc are typed by the same declaration. The
// `@ts-expect-error` lines are checked by `npm run typecheck`: each fails the type check if
// the mistake it shows ever compiles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { channelsEndpoint, serve, WebSocket } from '../src/index.js';
import { connect, defineContract, HotlineError } from '../src/client/index.js';

const chat = defineContract({
  channels: {
    'room:*': z.object({ text: z.string().max(20) }),
    'score:*': z.number().int(),
  },
  rpc: {
    add: { params: z.tuple([z.number(), z.number()]), result: z.number() },
    shout: { params: z.object({ text: z.string() }), result: z.string().max(10) },
    now: { result: z.number() },
  },
});

/** Compile-time only: the types each end gets from the contract. */
function types(client: ReturnType<typeof connect<typeof chat>>): void {
  const room = client.channel('room:1');
  room.on('message', (message) => {
    const text: string = message.text;
    void text;
  });
  void room.publish({ text: 'hi' });
  // @ts-expect-error: a room takes { text }, not a number
  void room.publish(3);
  const score = client.channel('score:alice');
  void score.publish(3);
  // @ts-expect-error: a score is a number
  void score.publish({ text: 'x' });
  // @ts-expect-error: no channel of the contract is called "other"
  client.channel('other');
  const sum: Promise<number> = client.rpc('add', [1, 2]);
  void sum;
  // @ts-expect-error: add takes two numbers
  void client.rpc('add', ['1', 2]);
  // @ts-expect-error: add's params are required
  void client.rpc('add');
  void client.rpc('now');
  // @ts-expect-error: no method "sub" in the contract
  void client.rpc('sub', [1, 2]);
  const shout: Promise<string> = client.rpc('shout', { text: 'hey' });
  void shout;
  channelsEndpoint({
    contract: chat,
    rpc: {
      add: ([a, b]) => a + b,
      shout: ({ text }) => text.toUpperCase(),
      // @ts-expect-error: now answers a number
      now: () => 'noon',
    },
  });
  // @ts-expect-error: every method of the contract needs a handler
  channelsEndpoint({ contract: chat, rpc: { add: ([a, b]) => a + b } });
}
void types;

test('a contract types both ends and holds at run time', async (t) => {
  const errors: unknown[] = [];
  const channels = channelsEndpoint({
    contract: chat,
    rpc: {
      add: ([a, b]) => a + b,
      // Says more than the contract allows when asked to: the answer must not reach the caller.
      shout: ({ text }) => `${text.toUpperCase()}!!!`,
      now: () => 42,
    },
    onError: (error) => errors.push(error),
  });
  const server = await serve({ port: 0, websocket: { '/ws': channels.server } });
  t.after(() => server.close());
  const client = connect(`ws://127.0.0.1:${server.port}/ws`, { WebSocket, contract: chat });
  t.after(() => client.close());

  const room = client.channel('room:1');
  const received: string[] = [];
  let delivered: () => void = () => {};
  const arrived = new Promise<void>((resolve) => (delivered = resolve));
  await room.subscribe((message) => {
    received.push(message.text);
    delivered();
  });
  await room.publish({ text: 'hello' });
  await arrived;
  assert.deepEqual(received, ['hello']);

  // Data outside the channel's schema: refused, never stored or delivered.
  const tooLong = await room.publish({ text: 'x'.repeat(21) }).then(
    () => null,
    (error: unknown) => error,
  );
  assert.ok(tooLong instanceof HotlineError);
  assert.equal(tooLong.code, 'bad_request');
  const score = client.channel('score:alice');
  const fraction = await score.publish(1.5).then(
    () => null,
    (error: unknown) => error,
  );
  assert.equal((fraction as HotlineError).code, 'bad_request');

  assert.equal(await client.rpc('add', [1, 2]), 3);
  assert.equal(await client.rpc('now'), 42);
  // Params outside the method's schema: bad_request, the handler not called.
  const badParams = await client.rpc('add', [1, 'two'] as unknown as [number, number]).then(
    () => null,
    (error: unknown) => error,
  );
  assert.equal((badParams as HotlineError).code, 'bad_request');
  // An answer outside the result schema: internal for the caller, the reason to onError.
  const badAnswer = await client.rpc('shout', { text: 'hello world' }).then(
    () => null,
    (error: unknown) => error,
  );
  assert.equal((badAnswer as HotlineError).code, 'internal');
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /rpc shout answered a result outside its contract/);
  assert.equal(await client.rpc('shout', { text: 'hi' }), 'HI!!!');

  // The history holds only what passed the schema.
  const history = await room.history();
  assert.deepEqual(history.messages.map((m) => m.data.text), ['hello']);
});
