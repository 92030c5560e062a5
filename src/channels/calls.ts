import { encodeCall, type Json, type ReplyRequest } from '../wire/index.js';
import { CallError } from './call-error.js';

interface Waiting {
  method: string;
  timer: ReturnType<typeof setTimeout>;
  resolve(result: Json): void;
  reject(error: CallError): void;
}

/**
 * The server's calls to one connection that wait for its reply: numbered from 1, at most
 * `max` at once (past it a call fails `too_many_pending` without being sent), each ended by
 * its reply, its timeout or the connection's end, whichever comes first. Only a reply to a
 * call still waiting counts: a second reply, a late one, or one to a number never sent
 * finds nothing (the session answers it `bad_request`).
 */
export class ClientCalls {
  /** The number of the latest call. */
  private last = 0;
  /** Made by the first call: most connections are never called, and an idle one is kept small. */
  private waiting: Map<number, Waiting> | null = null;

  constructor(private readonly max: number) {}

  /** Calls waiting for a reply now. */
  get size(): number {
    return this.waiting?.size ?? 0;
  }

  /** Sends the call with `send`; settles with the client's result, or rejects with a {@link CallError}. */
  start(send: (text: string) => void, method: string, paramsJson: string, timeout: number): Promise<Json> {
    if (this.size >= this.max) {
      return Promise.reject(new CallError('too_many_pending', `the connection already has ${this.max} calls waiting for a reply`));
    }
    const call = ++this.last;
    const waiting = (this.waiting ??= new Map());
    return new Promise<Json>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(call);
        reject(new CallError('timeout', `no reply to ${method} within ${timeout} ms`));
      }, timeout);
      waiting.set(call, { method, timer, resolve, reject });
      send(encodeCall(call, method, paramsJson, timeout));
    });
  }

  /** A reply from the client: false when no call with its number is waiting. */
  reply(request: ReplyRequest): boolean {
    const waiting = this.waiting?.get(request.call);
    if (waiting === undefined) return false;
    this.waiting!.delete(request.call);
    clearTimeout(waiting.timer);
    const { error } = request;
    if (error === undefined) waiting.resolve(request.result ?? null);
    else if (error.code === 'not_found') waiting.reject(new CallError('no_handler', `the client has no handler for ${waiting.method}: ${error.message}`, error));
    else waiting.reject(new CallError('handler_error', `the client's handler for ${waiting.method} failed (${error.code}): ${error.message}`, error));
    return true;
  }

  /** The connection closed: every call waiting fails with `client_gone`. */
  end(): void {
    if (this.waiting === null) return;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const { timer, reject, method } of waiting) {
      clearTimeout(timer);
      reject(new CallError('client_gone', `the connection closed before it replied to ${method}`));
    }
  }
}
