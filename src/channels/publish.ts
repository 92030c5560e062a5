import { encodeOk, reviveBytes, stringifyWithBytes, validateWith, type PubRequest } from '../wire/index.js';
import { authorize, type ChannelRulebook } from './access.js';
import { ChannelError } from './channel-error.js';
import type { HubCore } from './core.js';
import type { PublishResult } from './engine.js';
import { DEFAULTS } from './hub-options.js';
import { presenceKey } from './presence.js';
import type { Session } from './session.js';

/** The publisher of the server's own publishes (the server API): apart from every client's, shared by every node. */
export const SERVER_PUBLISHER = 'srv';

/**
 * A `pub` request: the channel's data checks ({@link checkData}), canPublish must allow it;
 * then the broker stores and delivers it ({@link store}) and the answer says its offset and
 * how many subscribers it reached (0 for a repeated key). An ephemeral one goes through the
 * same checks and rate, then to the subscribers of the moment only (no offset, no history).
 */
export async function publish<A>(core: HubCore<A>, rules: ChannelRulebook, session: Session<A>, request: PubRequest): Promise<void> {
  const { ch: channel, id } = request;
  if (!session.takePublish(rules.for(channel))) return session.fail(id, 'rate_limited', 'publishing too fast');
  const checked = await checkData(core, rules, channel, request.data);
  await authorize(core.options.canPublish?.(session.context, channel, checked.value), channel, 'publish to');
  const json = await askProxy(core, rules, session, channel, checked);
  if (session.closed) return;
  if (request.ephemeral === true) {
    const ephemeral = core.broker.publishEphemeral;
    if (ephemeral === undefined) throw new ChannelError('bad_request', 'this server\'s engine carries no ephemeral messages');
    // The server says who sent it: a payload's claim to be another client proves nothing.
    const delivered = await ephemeral.call(core.broker, channel, json, presenceKey(session));
    core.metrics.ephemeralPublishes++;
    return session.reply(encodeOk(id, { delivered }));
  }
  const key = request.key;
  const result = await store(core, channel, json, key === undefined ? undefined : { key, publisher: publisherOf(session, request) });
  session.reply(encodeOk(id, { offset: result.offset, delivered: result.duplicate ? 0 : result.subscribers }));
}

/**
 * The backend's say on a publish (`proxy.publish`), asked once the rules allowed it: it may
 * refuse it, or rewrite the data, which then goes through the channel's checks again. A
 * rewrite the checks refuse is the backend's fault, not the client's: `internal`, reported.
 */
async function askProxy<A>(core: HubCore<A>, rules: ChannelRulebook, session: Session<A>, channel: string, checked: { value: unknown; json: string }): Promise<string> {
  const hook = core.options.proxy?.publish;
  if (hook === undefined) return checked.json;
  const answer = await hook(session.context, channel, checked.value);
  if (answer === undefined) return checked.json;
  try {
    return (await checkData(core, rules, channel, answer.data)).json;
  } catch (error) {
    if (!(error instanceof ChannelError)) throw error;
    core.report(new Error(`the backend rewrote a publish to ${channel} into data the channel refuses: ${error.message}`), session.context);
    throw new ChannelError('internal', `the backend rewrote the data into something ${channel} does not accept`);
  }
}

/**
 * What every publish's data goes through, from a client or from the server: the channel's
 * schema checks (and may transform) it, and its JSON must fit `maxDataLength`. Throws a
 * ChannelError (`bad_request`, `too_large`) otherwise.
 */
export async function checkData<A>(core: HubCore<A>, rules: ChannelRulebook, channel: string, data: unknown): Promise<{ value: unknown; json: string }> {
  // Bytes are Uint8Arrays for the schema and hooks, whichever encoding carried them; they
  // are stored in their JSON form ({"$bin": base64}).
  let value = reviveBytes(data);
  const schema = rules.for(channel)?.schema;
  if (schema !== undefined) {
    const checked = await validateWith(schema, value);
    if (!checked.ok) throw new ChannelError('bad_request', `invalid data for ${channel}: ${checked.message}`);
    value = checked.value;
  }
  const json = stringifyWithBytes(value);
  if (json === undefined) throw new ChannelError('bad_request', 'data is not JSON');
  fitsDataLength(core, json, 'data');
  return { value, json };
}

/** Refuses (`too_large`) JSON past `maxDataLength`. */
export function fitsDataLength<A>(core: HubCore<A>, json: string, what: string): void {
  const max = core.options.maxDataLength ?? DEFAULTS.maxDataLength;
  if (json.length > max) throw new ChannelError('too_large', `${what} is ${json.length} characters of JSON; the limit is ${max}`);
}

/** Stores and delivers checked data; a key seen with other data is refused `bad_request`, and nothing is published. */
export async function store<A>(core: HubCore<A>, channel: string, json: string, keyed?: { key: string; publisher: string }): Promise<PublishResult> {
  const result = await core.broker.publish(channel, json, keyed ?? {});
  if (result.conflict === true) {
    throw new ChannelError('bad_request', `key ${JSON.stringify(keyed?.key)} was used for other data in ${channel}: use a fresh key for each message`);
  }
  if (result.duplicate) core.metrics.duplicatePublishes++;
  else core.metrics.publishes++;
  return result;
}

/**
 * Whose keys a publish's key is among: the authenticated user's, else the client's random
 * sender id (kept across its reconnects), else this connection's alone.
 */
function publisherOf<A>(session: Session<A>, request: PubRequest): string {
  if (session.user !== undefined) return `u:${session.user}`;
  if (request.sender !== undefined) return `s:${request.sender}`;
  return `c:${session.client.id}`;
}
