// A contract: the channels and rpc methods of one hotline.v1 endpoint, with their schemas,
// declared once and imported by both ends. The server takes its schemas as rules (data that
// does not match is refused before it is stored) and types its rpc handlers from them; the
// SDK types what it publishes, receives and calls. Only types and the schemas travel: no
// code of the server reaches the client bundle.
import type { Json } from './messages.js';
import type { StandardSchemaV1 } from './standard-schema.js';

/** An rpc method: what its params must be (checked by the server), and what it answers. */
export interface RpcContract {
  /** The params' schema: the server refuses others `bad_request`; callers are typed by its input. */
  params?: StandardSchemaV1;
  /** The result's schema: the server answers `internal` rather than send a result outside it. */
  result?: StandardSchemaV1;
}

/**
 * Channels by name or by prefix pattern ending in `*` (`'room:*'`; the longest match wins,
 * as in the endpoint's `channels` rules), and rpc methods by name.
 */
export interface Contract {
  /** Each channel's (or pattern's) data schema: publishes are checked by it, subscribers typed by its output. */
  channels?: Record<string, StandardSchemaV1>;
  /** The rpc methods clients may call, by name. */
  rpc?: Record<string, RpcContract>;
}

/** No contract: names are any strings, data and results JSON. */
export type NoContract = Record<never, never>;

/** Returns the contract as given, typed for both ends (`channelsEndpoint({ contract })`, `connect(url, { contract })`). */
export function defineContract<C extends Contract>(contract: C): C {
  return contract;
}

/** The type a schema accepts. */
export type InferInput<S> = S extends StandardSchemaV1<infer I, unknown> ? I : never;
/** The type a schema produces (what a handler or subscriber sees after the check). */
type Output<S> = S extends StandardSchemaV1<unknown, infer O> ? O : never;

/** `'room:*'` as the names it matches: `` `room:${string}` ``. */
type NamesOf<Pattern extends string> = Pattern extends `${infer Prefix}*` ? `${Prefix}${string}` : Pattern;

type ChannelsOf<C> = C extends { channels: infer Channels extends Record<string, StandardSchemaV1> } ? Channels : never;
type RpcOf<C> = C extends { rpc: infer Methods extends Record<string, RpcContract> } ? Methods : never;

/** The schema keys of C's channels that match the name N. */
type MatchingKeys<C, N extends string> = {
  [K in keyof ChannelsOf<C> & string]: N extends NamesOf<K> ? K : never;
}[keyof ChannelsOf<C> & string];

/** A channel name C declares (any string without a contract). */
export type ChannelNameOf<C> = [ChannelsOf<C>] extends [never] ? string : NamesOf<keyof ChannelsOf<C> & string>;

/** What a subscriber of channel N receives: its schema's output (JSON without a contract). */
export type ChannelDataOf<C, N extends string> = [ChannelsOf<C>] extends [never]
  ? Json
  : [MatchingKeys<C, N>] extends [never]
    ? Json
    : Output<ChannelsOf<C>[MatchingKeys<C, N>]>;

/** What a publisher to channel N sends: its schema's input (JSON without a contract). */
export type ChannelInputOf<C, N extends string> = [ChannelsOf<C>] extends [never]
  ? Json
  : [MatchingKeys<C, N>] extends [never]
    ? Json
    : InferInput<ChannelsOf<C>[MatchingKeys<C, N>]>;

/** An rpc method C declares (any string without a contract). */
export type RpcNameOf<C> = [RpcOf<C>] extends [never] ? string : keyof RpcOf<C> & string;

/** The params a caller of method M sends (optional JSON without a contract or params schema). */
export type RpcParamsOf<C, M extends string> = [RpcOf<C>] extends [never]
  ? Json | undefined
  : RpcOf<C>[M] extends {
        /** The method's params schema, when it declares one. */
        params: infer S;
      }
    ? InferInput<S>
    : Json | undefined;

/** The params method M's handler receives: the params schema's output. */
export type RpcHandlerParamsOf<C, M extends string> = [RpcOf<C>] extends [never]
  ? unknown
  : RpcOf<C>[M] extends { params: infer S } ? Output<S> : unknown;

/** What method M answers (JSON without a contract or result schema). */
export type RpcResultOf<C, M extends string> = [RpcOf<C>] extends [never]
  ? Json
  : RpcOf<C>[M] extends {
        /** The method's result schema, when it declares one. */
        result: infer S;
      }
    ? Output<S>
    : Json;

/** Whether C declares rpc methods (then handlers are typed by it). */
export type HasRpc<C> = [RpcOf<C>] extends [never] ? false : true;
