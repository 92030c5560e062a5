import { ChannelCloseCode, replyFor, type Data, type ReplyTo, type RequestOp, type ServerMessage } from '../wire/index.js';
import { HotlineError } from './errors.js';
import { Timer } from './timer.js';

/**
 * What happens to a request in flight when its connection drops: `resend` goes again after
 * the reconnect (idempotent: a publish with its key, history, presence); `fail` fails with
 * `disconnected` (an rpc may have run); `forget` drops it without a word (its owner starts
 * over by itself: a channel resubscribes, a new connection authenticates again).
 */
export type OnDrop = 'resend' | 'fail' | 'forget';

/**
 * Drops a resent request may be in flight for before it fails instead: a request whose
 * answer is too big for this client fails the connection every time it is answered (the
 * WebSocket reports 1006 then, not 1009), and must not be asked again forever.
 */
const MAX_DROPS_IN_FLIGHT = 3;

interface Pending {
  readonly id: number;
  /** The request as an object: encoded when sent, in the encoding of the connection it goes on. */
  readonly message: Readonly<Record<string, unknown>>;
  readonly onDrop: OnDrop;
  /** ms for the server to answer once sent. */
  readonly timeout: number;
  readonly queuedAt: number;
  /** Connections that dropped while it was in flight. */
  drops: number;
  /** Its queue timeout while it waits for a connection, its answer timeout once sent. */
  readonly timer: Timer;
  /** Settles it with the server's answer (ok, pong or err). */
  answer(message: ServerMessage): void;
  fail(error: HotlineError): void;
}

export interface RequestOptions {
  requestTimeout?: number;
  queueSize?: number;
  queueTimeout?: number;
}

/** Where requests go: the connection, when there is an open one. */
export interface RequestLink {
  /** Whether requests go out now (connected, and authenticated when that is asked for). */
  online(): boolean;
  send(message: object): void;
}

/**
 * Every request from its making to its answer: ids, the bounded queue of requests made while
 * disconnected, each request's timeouts, and what a dropped connection does to each.
 */
export class Requests {
  private nextId = 1;
  /** Sent and unanswered, by id. */
  private readonly inFlight = new Map<number, Pending>();
  /** Waiting for a connection, in order. */
  private queue: Pending[] = [];

  constructor(
    private readonly options: RequestOptions,
    private readonly link: RequestLink,
  ) {}

  /** An id for a request nobody waits for the answer of (`unsub`, `ping`). */
  id(): number {
    return this.nextId++;
  }

  /**
   * The one place a request is made. `done` gets the answer typed for `op` (an answer that
   * lacks a field the op needs fails as `internal`: a server bug is reported, not trusted);
   * `failed` gets an `err` answer, a timeout or what a drop does to it.
   */
  make<Op extends RequestOp>(
    op: Op,
    fields: Record<string, Data>,
    onDrop: OnDrop,
    done: (reply: ReplyTo[Op]) => void,
    failed: (error: HotlineError) => void,
    timeout = this.options.requestTimeout ?? 10_000,
  ): Pending {
    const id = this.id();
    const timer = new Timer();
    return {
      id,
      message: { op, id, ...fields },
      onDrop,
      timeout,
      queuedAt: Date.now(),
      drops: 0,
      timer,
      answer(message) {
        timer.clear();
        if (message.op === 'err') return failed(new HotlineError(message.code, message.message));
        const reply = replyFor(op, message);
        if (reply === null) failed(new HotlineError('internal', `the answer to ${op} lacks a field it must have`));
        else done(reply);
      },
      fail(error) {
        timer.clear();
        failed(error);
      },
    };
  }

  /** Whether no request is waiting for an answer on the connection. */
  get idle(): boolean {
    return this.inFlight.size === 0;
  }

  /** Makes a request and sends it, or queues it until the connection is back. */
  ask<Op extends RequestOp>(op: Op, fields: Record<string, Data>, onDrop: OnDrop, timeout?: number): Promise<ReplyTo[Op]> {
    return new Promise((resolve, reject) => {
      const request = this.make(op, fields, onDrop, resolve, reject, timeout);
      if (this.link.online()) this.send(request);
      else if (this.queue.length >= (this.options.queueSize ?? 100)) reject(new HotlineError('queue_full', 'too many requests are waiting for the connection'));
      else this.enqueue(request);
    });
  }

  /** Sends now (the caller knows the connection is open), with its answer timeout. */
  send(request: Pending): void {
    this.inFlight.set(request.id, request);
    request.timer.set(request.timeout, () => {
      this.inFlight.delete(request.id);
      request.fail(new HotlineError('timeout', `no answer within ${request.timeout} ms`));
    });
    this.link.send(request.message);
  }

  /** Sends everything queued, in order. */
  flush(): void {
    const queued = this.queue;
    this.queue = [];
    for (const request of queued) this.send(request);
  }

  /** An answer from the server (ok, pong or err) to a request of this connection, if it is one. */
  answer(id: number, message: ServerMessage): void {
    const request = this.inFlight.get(id);
    if (request === undefined) return;
    this.inFlight.delete(id);
    request.answer(message);
  }

  /**
   * The connection closed with `code`: requests in flight that are safe to send again go
   * first in the queue, in their order; the others fail or are forgotten.
   */
  dropped(code: number): void {
    const again: Pending[] = [];
    for (const request of [...this.inFlight.values()].sort((a, b) => a.id - b.id)) {
      this.inFlight.delete(request.id);
      const refusal = notResent(request, code);
      if (refusal === undefined) {
        again.push(request);
        this.armQueueTimer(request);
      } else if (refusal === null) request.timer.clear();
      else request.fail(refusal);
    }
    this.queue = again.concat(this.queue);
  }

  /** Fails every request, queued or in flight (the client closed). */
  failAll(error: HotlineError): void {
    const all = [...this.inFlight.values(), ...this.queue];
    this.inFlight.clear();
    this.queue = [];
    for (const request of all) request.fail(error);
  }

  private enqueue(request: Pending): void {
    this.queue.push(request);
    this.armQueueTimer(request);
  }

  private armQueueTimer(request: Pending): void {
    const left = (this.options.queueTimeout ?? 30_000) - (Date.now() - request.queuedAt);
    request.timer.set(Math.max(0, left), () => {
      this.queue = this.queue.filter((r) => r !== request);
      request.fail(new HotlineError('queue_timeout', 'the connection did not come back in time'));
    });
  }
}

/** Why a request in flight when the connection closed is not sent again; undefined to resend it, null to forget it. */
function notResent(request: Pending, code: number): HotlineError | null | undefined {
  if (request.onDrop === 'forget') return null;
  if (code === ChannelCloseCode.MessageTooBig) {
    // Sending the same bytes again brings the same 1009.
    return new HotlineError('too_large', 'the connection closed with 1009 (message too big) while this request was in flight; it is not sent again');
  }
  if (request.onDrop === 'fail') return new HotlineError('disconnected', 'the connection dropped before the answer');
  if (++request.drops < MAX_DROPS_IN_FLIGHT) return undefined;
  return new HotlineError('disconnected', `the connection dropped ${request.drops} times while this request was in flight; it is not sent again`);
}
