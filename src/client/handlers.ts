import { MAX_REPLY_CODE_LENGTH, MAX_REPLY_MESSAGE_LENGTH, type Json, type ServerCall } from '../wire/index.js';

/**
 * A handler of the server's calls to this client: it gets the call's params and returns
 * (or resolves to) the reply's result, any JSON (`undefined` is sent as null). What it
 * throws goes back as the reply's error: an error's string `code` (a HotlineError's, or
 * your own such as 'forbidden'), else `internal`, with its message.
 */
export type CallHandler<P = Json> = (params: P) => unknown;

/** The fields of a `reply` request besides op and id. */
export type ReplyFields = { call: number; result: Json } | { call: number; error: { code: string; message: string } };

/**
 * The handlers the application registered for the server's calls (`client.handle`), and
 * the running of one call: a method without a handler is answered `not_found`, and a reply
 * that would come after the server stopped waiting (its `timeout`) is not sent.
 */
export class CallHandlers {
  private readonly handlers = new Map<string, CallHandler>();

  /** Registers the handler of `method` (replacing one there was); returns the function that removes it. */
  handle(method: string, handler: CallHandler): () => void {
    this.handlers.set(method, handler);
    return () => {
      if (this.handlers.get(method) === handler) this.handlers.delete(method);
    };
  }

  /** Runs the call's handler and hands its reply to `reply`, unless the server no longer waits for it. */
  run(call: ServerCall, reply: (fields: ReplyFields) => void): void {
    const receivedAt = Date.now();
    const handler = this.handlers.get(call.method);
    const send = (fields: ReplyFields): void => {
      if (Date.now() - receivedAt < call.timeout) reply(fields);
    };
    if (handler === undefined) return send({ call: call.call, error: { code: 'not_found', message: `no handler for ${call.method}` } });
    let running: Promise<unknown>;
    try {
      running = Promise.resolve(handler(call.params));
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(
      (result) => send(resultFields(call.call, result)),
      (error: unknown) => send({ call: call.call, error: errorOf(error) }),
    );
  }
}

/** The result as a reply: JSON, or the error of a handler that returned something JSON cannot carry. */
function resultFields(call: number, result: unknown): ReplyFields {
  try {
    const json = JSON.stringify(result ?? null) as string | undefined;
    if (json !== undefined) return { call, result: JSON.parse(json) as Json };
  } catch {
    // a cycle, a BigInt
  }
  return { call, error: { code: 'internal', message: 'the handler returned something JSON cannot carry' } };
}

function errorOf(error: unknown): { code: string; message: string } {
  const fields = typeof error === 'object' && error !== null ? (error as { code?: unknown; message?: unknown }) : {};
  const code = typeof fields.code === 'string' && fields.code.length > 0 && fields.code.length <= MAX_REPLY_CODE_LENGTH ? fields.code : 'internal';
  const message = typeof fields.message === 'string' ? fields.message : String(error);
  return { code, message: message.slice(0, MAX_REPLY_MESSAGE_LENGTH) };
}
