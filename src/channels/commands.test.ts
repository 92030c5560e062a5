// The server API's commands between nodes, over a bus that connects NodeCommands the way
// the Redis engine does (each message delivered later, counts from who listens): a user's
// command is answered by every node, a client's by its own node, answers find their way
// back by the sender's node id and command number, and what waits is capped and timed out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Json } from '../wire/index.js';
import { CallError } from './call-error.js';
import { NodeCommands, nodeOf, type Action, type LocalTargets, type ConnectionTarget, type Question } from './commands.js';
import type { NodeBus } from './engine.js';

/** Nodes on one bus; a node can stop listening, or listen and never answer. */
class Network {
  readonly nodes = new Map<string, { commands: NodeCommands; deaf: boolean }>();
  /** When set, every send fails, as a bus whose backend is down. */
  down = false;
  /** Answers ('done', 'result', 'failed') are held until released, so they can overtake the counts. */
  holdAnswers = false;
  private held: Array<() => void> = [];

  bus(nodeId: string): NodeBus {
    return {
      nodeId,
      sendToNode: (node, text) => this.send([node], text).then((n) => n > 0),
      sendToAll: (text) => this.send([...this.nodes.keys()], text),
    };
  }

  releaseAnswers(): void {
    const held = this.held;
    this.held = [];
    for (const deliver of held) deliver();
  }

  private async send(to: string[], text: string): Promise<number> {
    if (this.down) throw new Error('the bus is down');
    let listening = 0;
    for (const id of to) {
      const node = this.nodes.get(id);
      if (node === undefined) continue;
      listening++;
      const deliver = (): void => {
        if (!node.deaf) node.commands.receive(text);
      };
      const isAnswer = /^\{"k":"(done|told|result|failed)"/.test(text);
      if (this.holdAnswers && isAnswer) this.held.push(deliver);
      else setImmediate(deliver);
    }
    return listening;
  }
}

/** A node's connections: client ids `NODE.N`, each with a user; what they were sent is kept. */
class Node implements LocalTargets {
  readonly commands: NodeCommands;
  readonly actions: Array<[ConnectionTarget, Action]> = [];
  readonly clients = new Map<string, string>();
  /** The reply each client gives to a call. */
  replies = new Map<string, () => Promise<Json>>();

  constructor(
    network: Network,
    readonly id: string,
    users: Record<string, string>,
    limits = { maxPending: 100, nodeTimeout: 1000 },
  ) {
    for (const [n, user] of Object.entries(users)) this.clients.set(`${id}.${n}`, user);
    this.commands = new NodeCommands(network.bus(id), this, limits, (error) => {
      throw error;
    });
    network.nodes.set(id, { commands: this.commands, deaf: false });
  }

  has(client: string): boolean {
    return this.clients.has(client);
  }

  act(to: ConnectionTarget, action: Action): number {
    this.actions.push([to, action]);
    if ('client' in to) return this.clients.has(to.client) ? 1 : 0;
    return [...this.clients.values()].filter((user) => user === to.user).length;
  }

  tell(question: Question): Json {
    return { node: this.id, question, clients: this.clients.size };
  }

  call(client: string): Promise<Json> {
    const reply = this.replies.get(client);
    if (!this.clients.has(client) || reply === undefined) return Promise.reject(new CallError('client_gone', `no client ${client}`));
    return reply();
  }
}

const send: Action = { k: 'send', text: '{"op":"message","data":1}' };

test('nodeOf reads the node from a client id', () => {
  assert.equal(nodeOf('abc.12'), 'abc');
  assert.equal(nodeOf('abc.1.2'), 'abc');
  for (const notOne of ['', 'abc', '.12']) assert.equal(nodeOf(notOne), null);
});

test("a user's command reaches every node and counts the user's connections on all of them", async () => {
  const net = new Network();
  const a = new Node(net, 'a', { 1: 'ada', 2: 'lin' });
  const b = new Node(net, 'b', { 1: 'ada', 2: 'ada' });
  const c = new Node(net, 'c', { 1: 'sam' });
  assert.equal(await a.commands.act({ user: 'ada' }, send), 3);
  for (const node of [a, b, c]) assert.deepEqual(node.actions, [[{ user: 'ada' }, send]], `node ${node.id} carried it out`);
  assert.equal(await c.commands.act({ user: 'nobody' }, send), 0, 'every node answered 0');
  assert.equal(a.commands.waiting, 0);
});

test('a question is answered by every node, this one included, and waits for all of them', async () => {
  const net = new Network();
  const a = new Node(net, 'a', { 1: 'ada', 2: 'lin' });
  new Node(net, 'b', { 1: 'ada' });
  net.holdAnswers = true;
  const asked = a.commands.ask({ q: 'info' });
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  net.releaseAnswers();
  const answers = (await asked) as Array<{ node: string; question: Question; clients: number }>;
  assert.deepEqual(
    answers.sort((x, y) => x.node.localeCompare(y.node)),
    [
      { node: 'a', question: { q: 'info' }, clients: 2 },
      { node: 'b', question: { q: 'info' }, clients: 1 },
    ],
  );
  assert.equal(a.commands.waiting, 0);
});

test('a question a node never answers fails with timeout after the node timeout', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const net = new Network();
  const a = new Node(net, 'a', { 1: 'ada' }, { maxPending: 10, nodeTimeout: 500 });
  new Node(net, 'b', {});
  net.nodes.get('b')!.deaf = true;
  const asked = a.commands.ask({ q: 'channels', limit: 10 });
  const outcome: { error?: unknown } = {};
  asked.catch((e: unknown) => (outcome.error = e));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(typeof outcome.error, 'undefined', 'still waiting for b');
  t.mock.timers.tick(500);
  await Promise.resolve();
  assert.ok(outcome.error instanceof CallError && outcome.error.code === 'timeout', String(outcome.error));
});

test('answers that overtake the count of listening nodes are counted', async () => {
  const net = new Network();
  const a = new Node(net, 'a', { 1: 'ada' });
  new Node(net, 'b', { 1: 'ada' });
  net.holdAnswers = true;
  const done = a.commands.act({ user: 'ada' }, send);
  // The count is known; the answers are held, then come.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  net.releaseAnswers();
  assert.equal(await done, 2);
});

test("a client's command goes to its own node only; one of a node that is not listening reaches nothing", async () => {
  const net = new Network();
  const a = new Node(net, 'a', { 1: 'ada' });
  const b = new Node(net, 'b', { 7: 'lin' });
  assert.equal(await a.commands.act({ client: 'b.7' }, send), 1);
  assert.deepEqual(b.actions, [[{ client: 'b.7' }, send]]);
  assert.deepEqual(a.actions, []);
  assert.equal(await a.commands.act({ client: 'a.1' }, send), 1, 'its own client, without the bus');
  assert.equal(await a.commands.act({ client: 'gone.1' }, send), 0);
  assert.equal(await a.commands.act({ client: 'not-a-client-id' }, send), 0);
  assert.equal(await a.commands.act({ client: 'b.8' }, send), 0, 'its node answers 0');
});

test("a call reaches the client's node and brings back its result or its error, code and all", async () => {
  const net = new Network();
  const a = new Node(net, 'a', {});
  const b = new Node(net, 'b', { 1: 'lin', 2: 'sam' });
  b.replies.set('b.1', () => Promise.resolve({ answer: [42] }));
  b.replies.set('b.2', () => Promise.reject(new CallError('handler_error', 'it broke', { code: 'forbidden', message: 'not you' })));
  assert.deepEqual(await a.commands.call('b.1', 'ask', 'null', 1000), { answer: [42] });
  await assert.rejects(a.commands.call('b.2', 'ask', 'null', 1000), (e: CallError) => e.code === 'handler_error' && e.remote?.code === 'forbidden');
  await assert.rejects(a.commands.call('b.3', 'ask', 'null', 1000), (e: CallError) => e.code === 'client_gone');
  await assert.rejects(a.commands.call('z.1', 'ask', 'null', 1000), (e: CallError) => e.code === 'client_gone' && /node is gone/.test(e.message));
  await assert.rejects(a.commands.call('nodot', 'ask', 'null', 1000), (e: CallError) => e.code === 'client_gone');
  assert.equal(a.commands.waiting, 0);
});

test('a node that received a command but never answers: timeout, and its late answer finds nothing', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const net = new Network();
  const a = new Node(net, 'a', { 1: 'ada' }, { maxPending: 100, nodeTimeout: 500 });
  new Node(net, 'b', { 1: 'ada' });
  net.holdAnswers = true;
  const done = a.commands.act({ user: 'ada' }, send);
  let error: unknown;
  done.catch((e: unknown) => (error = e));
  // Both nodes carry it out (setImmediate is not mocked); their answers are held.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  t.mock.timers.tick(500);
  await Promise.resolve();
  assert.ok(error instanceof CallError && error.code === 'timeout', String(error));
  assert.equal(a.commands.waiting, 0);
  net.releaseAnswers();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(a.commands.waiting, 0, 'the late answers found nothing');
});

test('at most maxPending commands wait: the next fails too_many_pending without being sent', async () => {
  const net = new Network();
  const a = new Node(net, 'a', {}, { maxPending: 2, nodeTimeout: 60_000 });
  const b = new Node(net, 'b', { 1: 'lin' });
  net.nodes.get('b')!.deaf = true;
  const waiting = [a.commands.act({ user: 'lin' }, send), a.commands.call('b.1', 'm', 'null', 60_000)];
  await assert.rejects(a.commands.act({ user: 'lin' }, send), (e: CallError) => e.code === 'too_many_pending');
  await assert.rejects(a.commands.call('b.1', 'm', 'null', 1000), (e: CallError) => e.code === 'too_many_pending');
  assert.equal(a.commands.waiting, 2);
  a.commands.close();
  for (const command of waiting) await assert.rejects(command, (e: CallError) => e.code === 'unavailable');
  assert.equal(a.commands.waiting, 0);
  assert.deepEqual(b.actions, []);
});

test('a bus that cannot send: unavailable, and nothing is left waiting', async () => {
  const net = new Network();
  const a = new Node(net, 'a', {});
  new Node(net, 'b', { 1: 'lin' });
  net.down = true;
  await assert.rejects(a.commands.act({ user: 'lin' }, send), (e: CallError) => e.code === 'unavailable' && /bus is down/.test(e.message));
  await assert.rejects(a.commands.call('b.1', 'm', 'null', 1000), (e: CallError) => e.code === 'unavailable');
  assert.equal(a.commands.waiting, 0);
});
