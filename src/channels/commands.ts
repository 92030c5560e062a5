import type { Json, ReplyError } from '../wire/index.js';
import { CallError, isCallErrorCode, type CallErrorCode } from './call-error.js';
import type { NodeBus } from './engine.js';

/** Whose connections a command is for: every connection of a user, on every node, or one connection by its client id. */
export type ConnectionTarget =
  | {
      /** The user id every connection of that user authenticated as (`ChannelIdentity.user`). */
      user: string;
    }
  | {
      /** One connection's client id, `NODE.N`, as hooks and rpc handlers see it in `context.client.id`. */
      client: string;
    };

/** What a command does to each connection it reaches. */
export type Action =
  | { k: 'send'; text: string }
  | { k: 'disconnect'; code: number; reason: string }
  | { k: 'unsub'; ch: string; message: string };

/**
 * What a node is asked about itself (the server API's `info` and `channels`): its figures,
 * or its channels whose names match `pattern`, after `after` in name order, at most `limit`.
 */
export type Question = { q: 'info' } | { q: 'channels'; pattern?: string; after?: string; limit: number };

/** What travels between nodes: commands, and the answers that go back to the node that sent them. */
type Envelope =
  | { k: 'do'; r: number; from: string; to: ConnectionTarget; action: Action }
  | { k: 'call'; r: number; from: string; client: string; method: string; params: string; timeout: number }
  | { k: 'ask'; r: number; from: string; question: Question }
  | { k: 'done'; r: number; n: number }
  | { k: 'told'; r: number; answer: Json }
  | { k: 'result'; r: number; result: string }
  | { k: 'failed'; r: number; code: CallErrorCode; message: string; remote?: ReplyError };

type Answer = Extract<Envelope, { k: 'done' | 'told' | 'result' | 'failed' }>;

/** What a node does for the commands that reach it: the hub, with its own connections. */
export interface LocalTargets {
  /** Whether the client is connected to this node. */
  has(client: string): boolean;
  /** Carries out the action on the target's connections here; returns how many it reached. */
  act(to: ConnectionTarget, action: Action): number;
  /** Calls a client connected here and settles with its reply (or rejects with a CallError). */
  call(client: string, method: string, paramsJson: string, timeout: number): Promise<Json>;
  /** Answers a question about this node. */
  tell(question: Question): Json;
}

export interface CommandLimits {
  /** Commands of this node waiting for answers from nodes, at most. */
  maxPending: number;
  /** How long a send, disconnect or unsubscribe waits for the nodes it reached (ms). */
  nodeTimeout: number;
}

interface Pending {
  timer: ReturnType<typeof setTimeout>;
  answer(answer: Answer): void;
  fail(error: CallError): void;
}

/** The node part of a client id (`NODE.N`), or null for what is no client id. */
export function nodeOf(client: string): string | null {
  const dot = client.indexOf('.');
  return dot > 0 ? client.slice(0, dot) : null;
}

/**
 * The server API's commands across nodes, over a {@link NodeBus}. A command carries the id
 * of the node that sent it and a number of its own (`r`); whoever carries it out sends the
 * answer to that node, which finds the waiting command by its number. A user's command goes
 * to every node, and each answers how many of the user's connections it reached (0 when it
 * has none), so the sender waits for as many answers as the bus counted listeners; a
 * client's command goes to the node named in its client id (a client of this node is
 * reached directly). What waits is bounded: at most
 * `maxPending` commands, each until its timeout, after which a late answer finds nothing.
 */
export class NodeCommands {
  private last = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly bus: NodeBus,
    private readonly local: LocalTargets,
    private readonly limits: CommandLimits,
    private readonly report: (error: unknown) => void,
  ) {}

  /** Commands waiting for answers now. */
  get waiting(): number {
    return this.pending.size;
  }

  /** Carries out `action` on every connection of the target, wherever it is; resolves to how many it reached. */
  act(to: ConnectionTarget, action: Action): Promise<number> {
    // A client of this node is reached without the bus.
    if ('client' in to && this.local.has(to.client)) return Promise.resolve(this.local.act(to, action));
    const node = 'client' in to ? nodeOf(to.client) : undefined;
    if (node === null) return Promise.resolve(0);
    return this.gather(
      (r) => ({ k: 'do', r, from: this.bus.nodeId, to, action }),
      node,
      (answer) => (answer.k === 'done' ? answer.n : undefined),
      (counts) => counts.reduce((sum, n) => sum + n, 0),
    );
  }

  /** Asks every node (this one too) about itself; resolves to their answers, once all of them answered. */
  ask(question: Question): Promise<Json[]> {
    return this.gather(
      (r) => ({ k: 'ask', r, from: this.bus.nodeId, question }),
      undefined,
      (answer) => (answer.k === 'told' ? answer.answer : undefined),
      (answers) => answers,
    );
  }

  /**
   * Sends a command to one node, or to every node, and waits for as many answers as the
   * bus counted listeners (or the node timeout); `accept` keeps the answers of its kind,
   * `combine` makes the result of them.
   */
  private gather<T, R>(
    command: (r: number) => Envelope,
    node: string | undefined,
    accept: (answer: Answer) => T | undefined,
    combine: (answers: T[]) => R,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let expected = Infinity;
      const answers: T[] = [];
      const r = this.open(this.limits.nodeTimeout, 'answer from every node', {
        answer: (answer) => {
          const kept = accept(answer);
          if (kept === undefined) return;
          answers.push(kept);
          if (answers.length >= expected) this.settle(r, () => resolve(combine(answers)));
        },
        fail: reject,
      });
      if (r === null) return;
      const text = JSON.stringify(command(r));
      const sent = node === undefined ? this.bus.sendToAll(text) : this.bus.sendToNode(node, text).then(Number);
      sent.then(
        (listening) => {
          // Answers may come before the count (they travel on another connection).
          expected = listening;
          if (answers.length >= expected) this.settle(r, () => resolve(combine(answers)));
        },
        (error: unknown) => this.settle(r, () => reject(unavailable(error))),
      );
    });
  }

  /** Calls a client wherever it is connected; settles with its reply. */
  call(client: string, method: string, paramsJson: string, timeout: number): Promise<Json> {
    if (this.local.has(client)) return this.local.call(client, method, paramsJson, timeout);
    const node = nodeOf(client);
    if (node === null) return Promise.reject(new CallError('client_gone', `no client ${JSON.stringify(client)} is connected`));
    return new Promise<Json>((resolve, reject) => {
      const r = this.open(timeout, `a reply to ${method}`, {
        answer: (answer) => {
          if (answer.k === 'result') this.settle(r, () => resolve(JSON.parse(answer.result) as Json));
          else if (answer.k === 'failed') this.settle(r, () => reject(new CallError(answer.code, answer.message, answer.remote)));
        },
        fail: reject,
      });
      if (r === null) return;
      const text = JSON.stringify({ k: 'call', r, from: this.bus.nodeId, client, method, params: paramsJson, timeout } satisfies Envelope);
      this.bus.sendToNode(node, text).then(
        (listening) => {
          if (!listening) this.settle(r, () => reject(new CallError('client_gone', `no client ${JSON.stringify(client)} is connected (its node is gone)`)));
        },
        (error: unknown) => this.settle(r, () => reject(unavailable(error))),
      );
    });
  }

  /** A command or an answer from the bus. */
  receive(text: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(text) as Envelope;
    } catch (error) {
      this.report(error);
      return;
    }
    try {
      this.carryOut(envelope);
    } catch (error) {
      // Not answered: the node that sent it learns from its timeout.
      this.report(error);
    }
  }

  private carryOut(envelope: Envelope): void {
    switch (envelope.k) {
      case 'do':
        this.answer(envelope.from, { k: 'done', r: envelope.r, n: this.local.act(envelope.to, envelope.action) });
        return;
      case 'call': {
        const { from, r } = envelope;
        this.local.call(envelope.client, envelope.method, envelope.params, envelope.timeout).then(
          (result) => this.answer(from, { k: 'result', r, result: JSON.stringify(result) }),
          (error: unknown) => {
            if (error instanceof CallError) this.answer(from, { k: 'failed', r, code: error.code, message: error.message, ...(error.remote && { remote: error.remote }) });
            else this.report(error);
          },
        );
        return;
      }
      case 'ask':
        this.answer(envelope.from, { k: 'told', r: envelope.r, answer: this.local.tell(envelope.question) });
        return;
      case 'done':
      case 'told':
      case 'result':
      case 'failed':
        if (envelope.k !== 'failed' || isCallErrorCode(envelope.code)) this.pending.get(envelope.r)?.answer(envelope);
        return;
    }
  }

  /** Every command still waiting fails (the hub closes). */
  close(): void {
    for (const [r, pending] of [...this.pending]) this.settle(r, () => pending.fail(new CallError('unavailable', 'the channel hub closed')));
  }

  /** Registers a command waiting for answers, or fails it at once when too many wait; null then. */
  private open(timeout: number, what: string, pending: Omit<Pending, 'timer'>): number | null {
    if (this.pending.size >= this.limits.maxPending) {
      pending.fail(new CallError('too_many_pending', `this node already has ${this.limits.maxPending} commands waiting for answers`));
      return null;
    }
    const r = ++this.last;
    const timer = setTimeout(() => this.settle(r, () => pending.fail(new CallError('timeout', `no ${what} within ${timeout} ms`))), timeout);
    this.pending.set(r, { ...pending, timer });
    return r;
  }

  /** Ends a waiting command once: later answers find nothing. */
  private settle(r: number | null, outcome: () => void): void {
    if (r === null) return;
    const pending = this.pending.get(r);
    if (pending === undefined) return;
    this.pending.delete(r);
    clearTimeout(pending.timer);
    outcome();
  }

  /** An answer to the node that sent a command; if it is lost, that node's timeout tells the caller. */
  private answer(node: string, answer: Answer): void {
    this.bus.sendToNode(node, JSON.stringify(answer)).catch(() => {});
  }
}

function unavailable(error: unknown): CallError {
  return new CallError('unavailable', `the other nodes cannot be reached: ${error instanceof Error ? error.message : String(error)}`);
}

/**
 * The node bus of a hub whose engine has none: this node alone, so a command reaches this
 * node's connections (and a client id of another node reaches nothing).
 */
export class LocalBus implements NodeBus {
  readonly nodeId = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 6).toString(36)}`;
  private deliver: (text: string) => void = () => {};

  listen(deliver: (text: string) => void): void {
    this.deliver = deliver;
  }

  sendToNode(node: string, text: string): Promise<boolean> {
    if (node !== this.nodeId) return Promise.resolve(false);
    queueMicrotask(() => this.deliver(text));
    return Promise.resolve(true);
  }

  sendToAll(text: string): Promise<number> {
    queueMicrotask(() => this.deliver(text));
    return Promise.resolve(1);
  }
}
