import { encodeOk, validateWith, type JsonObject, type Member, type StateRequest } from '../wire/index.js';
import { authorize } from './access.js';
import { ChannelError } from './channel-error.js';
import type { HubCore } from './core.js';
import { DEFAULTS } from './hub-options.js';
import type { Session } from './session.js';

/**
 * Every subscriber is present. A connection is a member of each channel it subscribed to
 * (unless the channel's member list is off: then it is only counted), keyed by its client's
 * presence key: a digest of the connection's user and the SDK's random `sender` id, which
 * the client keeps across reconnects, so a reconnect that subscribes again within the grace
 * period takes its key over instead of leaving and joining. The key is scoped to the user,
 * so another identity that learned a sender id lands on another key; the digest is what
 * members show as `client`, so the sender id itself is never shown. A connection without a
 * sender id is keyed by its connection id. The member is the identity's (from auth, when
 * there is one) with `client` and the client's presence `state` set by the hub.
 */

/**
 * Makes the connection's presence key (its member's `client`; see above) at its first `sub`,
 * and keeps it, so that what the connection joined as is what it leaves as, until an `auth`
 * changes it ({@link replaceMember}). WebCrypto's SHA-256: this layer imports nothing of Node.
 */
export async function assignPresenceKey<A>(session: Session<A>): Promise<void> {
  if (session.presenceKey !== undefined) return;
  if (session.sender === undefined) {
    session.presenceKey = session.client.id;
    return;
  }
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${session.user ?? ''}\n${session.sender}`)));
  let text = '';
  for (const byte of digest.subarray(0, 16)) text += byte.toString(16).padStart(2, '0');
  session.presenceKey ??= text;
}

/** The connection's presence key, once its first `sub` made it (its connection id before). */
export function presenceKey<A>(session: Session<A>): string {
  return session.presenceKey ?? session.client.id;
}

/** The connection's member on a channel: its identity's fields, then the hub's `client` and `state`, which nothing else may set. */
export function memberOf<A>(session: Session<A>, channel: string): Member {
  const member: Member = { ...(session.member ?? {}), client: presenceKey(session) };
  const state = session.states?.get(channel);
  if (state !== undefined) member['state'] = state;
  else delete member['state'];
  return member;
}

/** Whether the channel's rules keep a member list (by default they do; off, only a count). */
export function listsMembers<A>(core: HubCore<A>, channel: string): boolean {
  return core.rules.for(channel)?.presence !== false;
}

/** Whether the channel's subscribers are told of its joins and leaves: its rules' `joinLeave`, else the hub's. */
export function pushesJoinLeave<A>(core: HubCore<A>, channel: string): boolean {
  return core.rules.for(channel)?.joinLeave ?? core.options.joinLeave ?? DEFAULTS.joinLeave;
}

/** A channel's presence as a `presence` request and the server API answer it. */
export interface PresenceSnapshot {
  /** The members, at most `maxPresenceMembers`; absent on a channel whose member list is off. */
  members?: Member[];
  /** Members on every node (subscribers, on a channel whose member list is off). */
  count: number;
  /** There are more members than `members` lists. */
  truncated?: true;
}

/**
 * The channel's members (at most `maxPresenceMembers`, with `truncated` when there are
 * more) and their count; a channel whose member list is off: its subscriber count alone.
 */
export async function presenceSnapshot<A>(core: HubCore<A>, channel: string): Promise<PresenceSnapshot> {
  if (!listsMembers(core, channel)) return { count: (await core.broker.subscriberCount?.(channel)) ?? 0 };
  const max = core.options.maxPresenceMembers ?? DEFAULTS.maxPresenceMembers;
  const [members, counted] = await Promise.all([core.presence.members(channel, max), core.presence.memberCount?.(channel)]);
  const count = counted ?? members.length;
  return count > members.length ? { members, count, truncated: true } : { members, count };
}

/** A `presence` request: the channel's {@link presenceSnapshot}, once the connection may see it. */
export async function presence<A>(core: HubCore<A>, session: Session<A>, id: number, channel: string): Promise<void> {
  const { options } = core;
  const check = options.canReadPresence ?? options.canSubscribe;
  await authorize(check?.call(options, session.context, channel), channel, 'see presence in');
  const snapshot = await presenceSnapshot(core, channel);
  // A client keeping a live member map must know that no join or leave will move it.
  const quiet = snapshot.members !== undefined && !pushesJoinLeave(core, channel);
  session.reply(encodeOk(id, quiet ? { ...snapshot, joinLeave: false } : { ...snapshot }));
}

/** Joins (or, with a new state, updates) a channel whose sub was answered; a failure cannot be answered again, so it is reported. */
export async function join<A>(core: HubCore<A>, session: Session<A>, channel: string): Promise<void> {
  if (!listsMembers(core, channel)) return;
  try {
    await core.presence.join(channel, presenceKey(session), memberOf(session, channel), session.client.id);
  } catch (error) {
    core.report(error, session.context);
  }
}

/**
 * Leaves a channel whose subscription ended, as the connection that held the key (one that
 * came back since holds it now and stays); its leave is announced to the rest.
 */
export function leave<A>(core: HubCore<A>, session: Session<A>, channel: string): void {
  session.states?.delete(channel);
  leaveAs(core, channel, presenceKey(session), session.client.id);
}

/**
 * {@link leave} for a connection that is gone, by its presence key and client id alone: what
 * waits out the presence grace keeps these, not the session (which holds its connection).
 */
export function leaveAs<A>(core: HubCore<A>, channel: string, key: string, clientId: string): void {
  if (listsMembers(core, channel)) core.presence.leave(channel, key, clientId).catch(() => {});
}

/**
 * A `state` request: sets (or clears) the connection's presence state on a channel it is
 * subscribed to. It costs a publish token (the connection's publish rate, or the channel's),
 * must fit `maxPresenceStateLength` as JSON and pass the channel's `stateSchema`; the other
 * subscribers get an `update`.
 */
export async function setState<A>(core: HubCore<A>, session: Session<A>, request: StateRequest): Promise<void> {
  const { ch: channel, id } = request;
  const rules = core.rules.for(channel);
  if (!session.takePublish(rules)) return session.fail(id, 'rate_limited', 'setting presence state too fast');
  if (!session.subscriptions.get(channel)?.answered) return session.fail(id, 'bad_request', `subscribe to ${channel} before setting presence state there`);
  if (!listsMembers(core, channel)) throw new ChannelError('not_found', `${channel} keeps no member list, so no presence state`);
  let state: JsonObject | undefined = request.state;
  if (state !== undefined) {
    const max = core.options.maxPresenceStateLength ?? DEFAULTS.maxPresenceStateLength;
    const length = JSON.stringify(state).length;
    if (length > max) throw new ChannelError('too_large', `presence state is ${length} characters of JSON; the limit is ${max}`);
    if (rules?.stateSchema !== undefined) {
      const checked = await validateWith(rules.stateSchema, state);
      if (!checked.ok) throw new ChannelError('bad_request', `invalid presence state for ${channel}: ${checked.message}`);
      state = checked.value as JsonObject;
    }
  }
  if (session.closed || !session.subscriptions.has(channel)) return;
  if (state === undefined) session.states?.delete(channel);
  else (session.states ??= new Map()).set(channel, state);
  core.metrics.stateUpdates++;
  await core.presence.join(channel, presenceKey(session), memberOf(session, channel), session.client.id);
  session.reply(encodeOk(id));
}

/**
 * The identity changed (an `auth`): in each channel, the old member leaves (under the key it
 * joined with) and the new one joins (under the new identity's key), its state kept.
 */
export async function replaceMember<A>(core: HubCore<A>, session: Session<A>, member: Member | undefined): Promise<void> {
  const formerKey = presenceKey(session);
  const hadKey = session.presenceKey !== undefined;
  session.presenceKey = undefined;
  if (hadKey) await assignPresenceKey(session);
  const former = session.member;
  session.member = member;
  if (JSON.stringify(former) === JSON.stringify(member) && formerKey === presenceKey(session)) return;
  for (const channel of session.subscriptions.channels()) {
    if (!listsMembers(core, channel)) continue;
    try {
      await core.presence.leave(channel, formerKey, session.client.id);
      if (session.subscriptions.has(channel)) await core.presence.join(channel, presenceKey(session), memberOf(session, channel), session.client.id);
    } catch (error) {
      core.report(error, session.context);
    }
  }
}
