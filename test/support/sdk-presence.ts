// What the SDK presence tests read of a channel's live member map: its client ids, the
// presence events it emits, and a subscription whose map is live from the start.
import type { Channel, HotlineClient, Member } from '../../src/client/index.js';

/** The client ids a presence map holds, sorted (duplicates kept, so that one shows). */
export function ids(channel: Channel<unknown>): string[] {
  return channel.presence
    .get()
    .map((member) => String(member['client']))
    .sort();
}

/** Every presence event a channel emits from now on, as [kind, client id]. */
export function events(channel: Channel<unknown>): Array<[string, string]> {
  const seen: Array<[string, string]> = [];
  for (const kind of ['join', 'update', 'leave'] as const) channel.on(kind, (member: Member) => seen.push([kind, String(member['client'])]));
  return seen;
}

/** A channel subscribed with its presence map read first, so that the map follows every event. */
export async function joined(client: HotlineClient, name: string): Promise<Channel<unknown>> {
  const channel = client.channel(name) as Channel<unknown>;
  channel.presence.get();
  await channel.subscribe();
  return channel;
}
