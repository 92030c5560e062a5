import { encodeHistoryEntry, utf8Length, type EncodedHistoryEntry } from '../wire/index.js';
import type { ChannelMessage } from './engine.js';

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
