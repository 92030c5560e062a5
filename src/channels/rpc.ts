import { encodeOk, reviveBytes, stringifyWithBytes, validateWith, type Json, type RpcRequest } from '../wire/index.js';
import type { HubCore } from './core.js';
import type { Session } from './session.js';

/**
 * An `rpc` request: the method's schema checks (and may transform) the params, then its
 * handler answers; a method the hub does not have goes to the backend (`proxy.rpc`) if any.
 */
export async function rpc<A>(core: HubCore<A>, session: Session<A>, request: RpcRequest): Promise<void> {
  const { id, method } = request;
  if (!session.take('rpc')) return session.fail(id, 'rate_limited', 'calling too fast');
  const methods = core.options.rpc ?? {};
  // Own properties only: "constructor" or "__proto__" name no method.
  const entry = Object.hasOwn(methods, method) ? methods[method] : undefined;
  if (entry === undefined) {
    const proxy = core.options.proxy?.rpc;
    if (proxy === undefined) return session.fail(id, 'not_found', `no rpc method ${JSON.stringify(method)}`);
    const answer = await proxy(session.context, method, request.params);
    if (session.closed) return;
    return session.reply(encodeOk(id, { result: answer }));
  }
  const { handler, schema, result: resultSchema } = typeof entry === 'function' ? { handler: entry, schema: undefined, result: undefined } : entry;
  // Bytes as Uint8Array for the schema and handler, as publish data is.
  let params: unknown = reviveBytes(request.params);
  if (schema !== undefined) {
    const checked = await validateWith(schema, params);
    if (!checked.ok) return session.fail(id, 'bad_request', `invalid params for ${method}: ${checked.message}`);
    params = checked.value;
  }
  let result = await handler(params, session.context);
  if (resultSchema !== undefined) {
    // The contract promises callers this type: an answer outside it is the server's bug
    // (answered `internal`, told to onError), never passed on as if it were valid.
    const checked = await validateWith(resultSchema, result ?? null);
    if (!checked.ok) throw new Error(`rpc ${method} answered a result outside its contract: ${checked.message}`);
    result = checked.value as Json;
  }
  if (session.closed) return;
  session.reply(encodeOk(id, { result: withBytesAsJson(result ?? null) }));
}

/** A handler's result with any bytes in it in their JSON form (JSON.stringify would write a Uint8Array as an object of indices). */
function withBytesAsJson(result: Json): Json {
  if (typeof result !== 'object' || result === null) return result;
  const json = stringifyWithBytes(result);
  return json === undefined ? null : (JSON.parse(json) as Json);
}
