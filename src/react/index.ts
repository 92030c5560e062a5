/**
 * hotline/react: React bindings for the hotline SDK. React is an optional peer dependency:
 * only this entry point imports it.
 *
 * Subscriptions are counted per client and channel: components on the same channel share
 * one subscription, which ends when the last of them unmounts. The end waits for a
 * microtask, so StrictMode's unmount-and-mount of every effect (and a component moving in
 * the tree) does not unsubscribe and subscribe again: nothing leaks, nothing churns. Every
 * hook reads live values with useSyncExternalStore, and none suspends.
 */
import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import type { Channel, ChannelEvents, ClientState, HotlineClient, MessageMeta } from '../client/index.js';
import type { Json, JsonObject, Member } from '../wire/index.js';

const ClientContext = createContext<HotlineClient | null>(null);

/** The props of {@link HotlineProvider}. */
export interface HotlineProviderProps {
  /** The client the hooks below use (made once, outside render: `connect(url)`). */
  client: HotlineClient;
  /** The components that use it. */
  children?: ReactNode;
}

/** Makes `client` the one the hooks of its children use. */
export function HotlineProvider(props: HotlineProviderProps): ReactNode {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

/** The client of the nearest {@link HotlineProvider}; throws outside one. */
export function useClient(): HotlineClient {
  const client = useContext(ClientContext);
  if (client === null) throw new Error('hotline/react: useClient() and the channel hooks need a <HotlineProvider client={…}> above them');
  return client;
}

/** The client's state (`connecting`, `open`, `reconnecting`, `closed`), re-rendering on each change. */
export function useConnectionState(): ClientState {
  const client = useClient();
  const subscribe = useCallback((changed: () => void) => client.on('state', changed), [client]);
  return useSyncExternalStore(subscribe, () => client.state, () => client.state);
}

/** Components holding each channel, per client: the subscription lives while any does. */
const holders = new WeakMap<HotlineClient, Map<string, number>>();

function hold(client: HotlineClient, channel: Channel<unknown>): () => void {
  let counts = holders.get(client);
  if (counts === undefined) holders.set(client, (counts = new Map()));
  const held = counts.get(channel.name) ?? 0;
  counts.set(channel.name, held + 1);
  // A refusal is the channel's `error` event and `errored` state: useChannelState shows it.
  if (held === 0) channel.subscribe().catch(() => {});
  return () => {
    const left = (counts.get(channel.name) ?? 1) - 1;
    counts.set(channel.name, left);
    queueMicrotask(() => {
      if (counts.get(channel.name) !== 0) return;
      counts.delete(channel.name);
      channel.unsubscribe();
    });
  };
}

/**
 * Subscribes to the channel `name` while the component is mounted (shared with every other
 * component on it) and returns the SDK's channel. `onMessage`, if given, gets each message
 * (the latest function passed is called: it need not be memoized).
 */
export function useChannel<T = Json>(name: string, onMessage?: (data: T, meta: MessageMeta) => void): Channel<T> {
  const client = useClient();
  const channel = client.channel(name) as unknown as Channel<T>;
  const handler = useRef(onMessage);
  handler.current = onMessage;
  useEffect(() => {
    const release = hold(client, channel as unknown as Channel<unknown>);
    const off = channel.on('message', (data, meta) => handler.current?.(data, meta));
    return () => {
      off();
      release();
    };
  }, [client, channel]);
  return channel;
}

/**
 * Calls `handler` for each `event` of the channel (`ephemeral`, `join`, `update`, `leave`,
 * `state`, …) while mounted, subscribing to it like {@link useChannel}.
 */
export function useChannelEvent<T = Json, K extends keyof ChannelEvents<T> = keyof ChannelEvents<T>>(
  name: string,
  event: K,
  handler: (...args: ChannelEvents<T>[K]) => void,
): Channel<T> {
  const channel = useChannel<T>(name);
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => channel.on(event, (...args) => latest.current(...args)), [channel, event]);
  return channel;
}

/** The last `limit` messages of the channel (default 100) since the component mounted, oldest first. */
export function useMessages<T = Json>(name: string, limit = 100): T[] {
  const [messages, setMessages] = useState<T[]>([]);
  useChannel<T>(name, (data) => setMessages((kept) => [...kept.slice(Math.max(0, kept.length + 1 - limit)), data]));
  return messages;
}

/** What {@link usePresence} returns: the live members and this client's presence state. */
export interface PresenceView {
  /** Who is on the channel now (the same array until it changes). */
  members: readonly Member[];
  /** Subscribers on every node (more than `members.length` when the server's list is truncated). */
  count: number;
  /** True when the server listed only the first of `count` members (its bound). */
  truncated: boolean;
  /** False on a channel that pushes no joins and leaves: `members` then misses who came and went (see `channel.presence.joinLeave`). */
  joinLeave: boolean;
  /** This client's own id among the members (`member.client`), once subscribed. */
  clientId: string | undefined;
  /** Sets this client's presence state (sent again after every reconnect). */
  enter(state?: JsonObject): Promise<void>;
  /** Changes it (the same as enter). */
  update(state: JsonObject): Promise<void>;
  /** Clears it; the client stays a member while subscribed. */
  leave(): Promise<void>;
}

/** The channel's members, live, subscribing to it like {@link useChannel}. */
export function usePresence(name: string): PresenceView {
  const channel = useChannel(name);
  const presence = channel.presence;
  const subscribe = useCallback((changed: () => void) => presence.subscribe(changed), [presence]);
  const members = useSyncExternalStore(subscribe, () => presence.get(), () => presence.get());
  return {
    members,
    count: presence.count,
    truncated: presence.truncated,
    joinLeave: presence.joinLeave,
    clientId: presence.clientId,
    enter: useCallback((state?: JsonObject) => presence.enter(state), [presence]),
    update: useCallback((state: JsonObject) => presence.update(state), [presence]),
    leave: useCallback(() => presence.leave(), [presence]),
  };
}

/** How {@link usePublish}'s function publishes. */
export interface PublishHookOptions {
  /** Sends an ephemeral message: no offset, no history, not retried after a drop. */
  ephemeral?: boolean;
}

/** What {@link usePublish}'s function resolves to. */
export interface PublishHookResult {
  /** The message's offset (absent for an ephemeral message, which has none). */
  offset?: number;
  /** Subscribers it reached, on every node. */
  delivered: number;
}

/**
 * A stable function that publishes to the channel `name` (it does not subscribe):
 * `publish(data)`, or `publish(data, { ephemeral: true })`.
 */
export function usePublish<In = Json>(name: string): (data: In, options?: PublishHookOptions) => Promise<PublishHookResult> {
  const client = useClient();
  return useCallback(
    (data: In, options: PublishHookOptions = {}) => {
      const channel = client.channel(name) as unknown as Channel<unknown, In>;
      return options.ephemeral === true ? channel.publish(data, { ephemeral: true }) : channel.publish(data);
    },
    [client, name],
  );
}
