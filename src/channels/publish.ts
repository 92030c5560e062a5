import { encodeOk, validateWith, type PubRequest } from '../wire/index.js';
import { authorize, type ChannelRulebook } from './access.js';
import type { HubCore } from './core.js';
import { DEFAULTS } from './hub-options.js';
import type { Session } from './session.js';

/**
 * A `pub` request: the channel's schema checks (and may transform) the data, its JSON must
 * fit `maxDataLength`, canPublish must allow it; then the broker stores and delivers it and
 * the answer says its offset and how many subscribers it reached (0 for a repeated key).
 */
export async function publish<A>(core: HubCore<A>, rules: ChannelRulebook, session: Session<A>, request: PubRequest): Promise<void> {
  const { ch: channel, id } = request;
  const { options, metrics } = core;
  if (!session.take('pub')) return session.fail(id, 'rate_limited', 'publishing too fast');
  let data: unknown = request.data;
  const schema = rules.for(channel)?.schema;
  if (schema !== undefined) {
    const checked = await validateWith(schema, data);
    if (!checked.ok) return session.fail(id, 'bad_request', `invalid data for ${channel}: ${checked.message}`);
    data = checked.value;
  }
  const json = JSON.stringify(data) as string | undefined;
  if (json === undefined) return session.fail(id, 'bad_request', 'data is not JSON');
  const max = options.maxDataLength ?? DEFAULTS.maxDataLength;
  if (json.length > max) return session.fail(id, 'too_large', `data is ${json.length} characters of JSON; the limit is ${max}`);
  await authorize(options.canPublish?.(session.context, channel, data), channel, 'publish to');
  if (session.closed) return;
  const key = request.key;
  const result = await core.broker.publish(channel, json, key === undefined ? {} : { key, publisher: publisherOf(session, request) });
  if (result.conflict === true) {
    return session.fail(id, 'bad_request', `key ${JSON.stringify(key)} was used for other data in ${channel}: use a fresh key for each message`);
  }
  if (result.duplicate) metrics.duplicatePublishes++;
  else metrics.publishes++;
  session.reply(encodeOk(id, { offset: result.offset, delivered: result.duplicate ? 0 : result.subscribers }));
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
