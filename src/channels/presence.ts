import { encodeOk, type Member } from '../wire/index.js';
import { authorize } from './access.js';
import { ChannelError } from './channel-error.js';
import type { HubCore } from './core.js';
import type { Session } from './session.js';

/**
 * A connection's presence: it is a member of each channel it subscribed to, as its
 * identity's member (a connection without one is not listed), until it unsubscribes.
 */

/** A `presence` request: the members of a channel, for a connection that may read it. */
export async function presence<A>(core: HubCore<A>, session: Session<A>, id: number, channel: string): Promise<void> {
  const { options } = core;
  const check = options.canReadPresence ?? options.canSubscribe;
  await authorize(check?.call(options, session.context, channel), channel, 'see presence in');
  if (!keepsPresence(core, channel)) throw new ChannelError('not_found', `${channel} keeps no presence`);
  const members = await core.presence.members(channel);
  session.reply(encodeOk(id, { members }));
}

/** Whether the channel's rules keep presence (by default they do). */
function keepsPresence<A>(core: HubCore<A>, channel: string): boolean {
  return core.rules.for(channel)?.presence !== false;
}

/** Joins a channel whose sub was answered: a failure cannot be answered again, so it is reported, and presence misses one member. */
export async function join<A>(core: HubCore<A>, session: Session<A>, channel: string): Promise<void> {
  const member = session.member;
  if (member === undefined || !keepsPresence(core, channel)) return;
  try {
    await core.presence.join(channel, session.client.id, member);
  } catch (error) {
    core.report(error, session.context);
  }
}

/** Leaves a channel whose subscription ended; its leave is announced to the rest. */
export function leave<A>(core: HubCore<A>, session: Session<A>, channel: string): void {
  if (session.member !== undefined && keepsPresence(core, channel)) core.presence.leave(channel, session.client.id).catch(() => {});
}

/** The identity's member changed: in each channel, it leaves as the old one and joins as the new. */
export async function replaceMember<A>(core: HubCore<A>, session: Session<A>, member: Member | undefined): Promise<void> {
  const former = session.member;
  session.member = member;
  if (JSON.stringify(former) === JSON.stringify(member)) return;
  for (const channel of session.subscriptions.keys()) {
    if (!keepsPresence(core, channel)) continue;
    try {
      if (former !== undefined) await core.presence.leave(channel, session.client.id);
      if (member !== undefined && session.subscriptions.has(channel)) await core.presence.join(channel, session.client.id, member);
    } catch (error) {
      core.report(error, session.context);
    }
  }
}
