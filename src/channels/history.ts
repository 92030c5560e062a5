import {
  DEFAULT_MAX_HISTORY_ANSWER_BYTES,
  encodeHistoryEntry,
  encodeHistoryOk,
  utf8Length,
  type EncodedHistoryEntry,
  type HistoryRequest,
} from '../wire/index.js';
import { authorize } from './access.js';
import type { HubCore } from './core.js';
import type { ChannelMessage } from './engine.js';
import { DEFAULTS } from './hub-options.js';
import type { Session } from './session.js';
import { pace } from './subscription.js';

/**
 * A `history` request: a page of the newest `limit` messages (before `before`) that fit in
 * `maxHistoryAnswerBytes`, with `more` when older ones are kept. One more than asked is
 * read to know. Sent once the connection has room, so big pages wait for a slow reader.
 */
export async function history<A>(core: HubCore<A>, session: Session<A>, request: HistoryRequest): Promise<void> {
  const { id, ch: channel, before } = request;
  const { options } = core;
  const check = options.canReadHistory ?? options.canSubscribe;
  await authorize(check?.call(options, session.context, channel), channel, 'read');
  const limit = request.limit ?? options.defaultHistoryLimit ?? DEFAULTS.defaultHistoryLimit;
  const result = await core.broker.history(channel, { limit: limit + 1, before });
  const page = historyPage(result.messages, limit, options.maxHistoryAnswerBytes ?? DEFAULT_MAX_HISTORY_ANSWER_BYTES);
  await pace(session);
  session.reply(encodeHistoryOk(id, result.position.epoch, page.entries, page.more));
}

/**
 * The newest of `messages` (oldest first) that make at most `limit` entries and `maxBytes`
 * of answer, and whether older ones were left out. At least one entry, however big: a page
 * must move the reader on.
 */
export function historyPage(messages: readonly ChannelMessage[], limit: number, maxBytes: number): { entries: EncodedHistoryEntry[]; more: boolean } {
  // The envelope: {"op":"ok","id":…,"epoch":"…","messages":[],"more":true}, generously.
  let bytes = 160;
  let first = messages.length;
  while (first > 0 && messages.length - first < limit) {
    const message = messages[first - 1]!;
    const entry = utf8Length(encodeHistoryEntry({ offset: message.offset, dataJson: message.data })) + 1;
    if (bytes + entry > maxBytes && first < messages.length) break;
    bytes += entry;
    first--;
  }
  const entries = messages.slice(first).map((m) => ({ offset: m.offset, dataJson: m.data }));
  return { entries, more: first > 0 };
}
