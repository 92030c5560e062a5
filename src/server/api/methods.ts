/**
 * The HTTP API's methods, one home for each: its request and answer as JSON Schema, an
 * example of both, and what it does with the server API ({@link ChannelsApi}). The handler
 * validates requests with these schemas and the OpenAPI document is written from them, so
 * the two cannot drift apart.
 *
 * Names and fields follow Centrifugo's server API where it has the same thing (publish,
 * broadcast, history, presence, channels, disconnect, unsubscribe, info); field names are
 * camelCase, as every hotline option is (`idempotencyKey`, not `idempotency_key`).
 */
import { MAX_CHANNELS_LIMIT, type ChannelsApi, type ServerPublishResult } from '../../channels/index.js';
import { DEFAULT_WIRE_LIMITS, type Json } from '../../wire/index.js';
import { ApiError, apiErrorOf, type ApiErrorCode } from './errors.js';

export type JsonSchema = Record<string, unknown>;

/** What a method reaches: the server API, and the bounds of its answers. */
export interface ApiContext {
  channels: ChannelsApi<unknown>;
  /** A history page stops growing past this many bytes (the hub's maxHistoryAnswerBytes). */
  maxHistoryBytes: number;
}

export interface ApiMethod {
  summary: string;
  description: string;
  /** The request body's schema (always an object). */
  request: JsonSchema;
  /** The schema of the answer's `result`. */
  result: JsonSchema;
  example: { request: Record<string, Json>; result: Json };
  /** The error codes it can answer besides those of every method. */
  errors: ApiErrorCode[];
  run(context: ApiContext, body: Record<string, unknown>): Promise<unknown>;
}

/** The most channels one broadcast publishes to. */
export const MAX_BROADCAST_CHANNELS = 1000;
/** Publishes of one broadcast in flight at once: a broadcast does not flood the engine. */
const BROADCAST_CONCURRENCY = 16;

const channel = { type: 'string', minLength: 1, description: 'A channel name, as clients subscribe to it.' };
const data = { description: 'Any JSON value: what subscribers receive as the message, and what history keeps.' };
const idempotencyKey = {
  type: 'string',
  minLength: 1,
  maxLength: DEFAULT_WIRE_LIMITS.maxKeyLength,
  description: 'Makes the publish idempotent: a repeat of the same key within the idempotency window (2 minutes by default) is not delivered again, on any node.',
};
const offset = { type: 'integer', minimum: 0 };
const publishResult = {
  type: 'object',
  properties: {
    epoch: { type: 'string', description: "The channel's epoch: offsets compare within one epoch." },
    offset: { ...offset, description: "The message's offset in the channel's stream." },
    delivered: { type: 'integer', minimum: 0, description: 'Subscribers it reached on every node; 0 for a repeated idempotency key.' },
  },
  required: ['epoch', 'offset', 'delivered'],
};
/** `user` or `client`, exactly one: whose connections a disconnect or unsubscribe reaches. */
const target = {
  user: { type: 'string', minLength: 1, description: "Every connection of this user (the token's `sub`), on every node." },
  client: { type: 'string', minLength: 1, description: 'One connection, by its client id (`NODE.N`).' },
};

function targetOf(body: Record<string, unknown>): { user: string } | { client: string } {
  const { user, client } = body as { user?: string; client?: string };
  if (user !== undefined && client === undefined) return { user };
  if (client !== undefined && user === undefined) return { client };
  throw new ApiError('bad_request', 'user: give either user or client, not both and not neither');
}

/** Runs `task` on each item with at most `limit` in flight; results in the items' order. */
async function bounded<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export const API_METHODS: Readonly<Record<string, ApiMethod>> = {
  publish: {
    summary: 'Publish a message to a channel',
    description:
      "Published as a client's publish is: checked by the channel's schema (its namespace's, when namespaces are configured), given the next offset of the channel's epoch, kept in history and recovered after a reconnect. Client publish permissions do not apply: the backend decides.",
    request: {
      type: 'object',
      properties: { channel, data, idempotencyKey },
      required: ['channel', 'data'],
      additionalProperties: false,
    },
    result: publishResult,
    example: { request: { channel: 'chat:lobby', data: { text: 'hello' }, idempotencyKey: 'order-1842' }, result: { epoch: 'kq3v1a', offset: 7, delivered: 2 } },
    errors: ['too_large', 'unavailable'],
    async run({ channels }, body) {
      const { channel: name, data: value, idempotencyKey: key } = body as { channel: string; data: unknown; idempotencyKey?: string };
      return channels.publish(name, value, { key });
    },
  },
  broadcast: {
    summary: 'Publish one message to many channels',
    description: `The same message to each channel, as publish does (each channel its own offset and history), at most ${MAX_BROADCAST_CHANNELS} channels. One channel failing fails none of the others: each has its own result or error, in the order given.`,
    request: {
      type: 'object',
      properties: {
        channels: { type: 'array', items: channel, minItems: 1, maxItems: MAX_BROADCAST_CHANNELS, description: `At most ${MAX_BROADCAST_CHANNELS} channel names.` },
        data,
        idempotencyKey: { ...idempotencyKey, description: "Applies to each channel: a retried broadcast delivers nothing twice." },
      },
      required: ['channels', 'data'],
      additionalProperties: false,
    },
    result: {
      type: 'object',
      properties: {
        responses: {
          type: 'array',
          items: {
            type: 'object',
            properties: { channel: { type: 'string' }, result: publishResult, error: { $ref: '#/components/schemas/ErrorDetail' } },
            required: ['channel'],
          },
        },
      },
      required: ['responses'],
    },
    example: {
      request: { channels: ['user:ada', 'user:lin'], data: { text: 'maintenance at 22:00' } },
      result: {
        responses: [
          { channel: 'user:ada', result: { epoch: 'kq3v1a', offset: 3, delivered: 1 } },
          { channel: 'user:lin', result: { epoch: 'x81ffb', offset: 12, delivered: 0 } },
        ],
      },
    },
    errors: ['too_large'],
    async run({ channels }, body) {
      const { channels: names, data: value, idempotencyKey: key } = body as { channels: string[]; data: unknown; idempotencyKey?: string };
      const responses = await bounded(names, BROADCAST_CONCURRENCY, async (name) => {
        try {
          const result: ServerPublishResult = await channels.publish(name, value, { key });
          return { channel: name, result };
        } catch (error) {
          const failed = apiErrorOf(error);
          return { channel: name, error: { code: failed.code, message: failed.message } };
        }
      });
      return { responses };
    },
  },
  history: {
    summary: "Read a channel's newest messages",
    description:
      "The newest `limit` messages kept (before `before`), oldest first, as a client's history request reads them: a page stops at maxHistoryAnswerBytes (512 KiB by default) with `more`; read older ones with `before` set to the first offset of the page.",
    request: {
      type: 'object',
      properties: {
        channel,
        limit: { type: 'integer', minimum: 1, maximum: 1000, description: 'How many of the newest messages (default 50).' },
        before: { ...offset, description: 'Only messages older than this offset.' },
      },
      required: ['channel'],
      additionalProperties: false,
    },
    result: {
      type: 'object',
      properties: {
        epoch: { type: 'string' },
        messages: { type: 'array', items: { type: 'object', properties: { offset, data }, required: ['offset', 'data'] } },
        more: { type: 'boolean', description: 'Older messages are kept.' },
      },
      required: ['epoch', 'messages', 'more'],
    },
    example: {
      request: { channel: 'chat:lobby', limit: 2 },
      result: { epoch: 'kq3v1a', messages: [{ offset: 6, data: { text: 'hi' } }, { offset: 7, data: { text: 'hello' } }], more: true },
    },
    errors: ['unavailable'],
    async run({ channels, maxHistoryBytes }, body) {
      const { channel: name, limit, before } = body as { channel: string; limit?: number; before?: number };
      return channels.history(name, { limit, before, maxBytes: maxHistoryBytes });
    },
  },
  presence: {
    summary: "A channel's members on every node",
    description:
      "What a client's `presence` request gets: one member per client subscribed on any node, anonymous ones included (`client` its client id, `state` its presence state; with an identity, `id` the user and `info` the token's `info`), at most `maxPresenceMembers` of them, `count` of all and `truncated: true` when there are more. A channel whose member list is off answers its subscriber `count` alone.",
    request: { type: 'object', properties: { channel }, required: ['channel'], additionalProperties: false },
    result: {
      type: 'object',
      properties: {
        members: { type: 'array', items: { type: 'object', properties: { client: { type: 'string' }, id: { type: 'string' }, info: {}, state: { type: 'object' } }, required: ['client'] } },
        count: { type: 'integer', minimum: 0 },
        truncated: { const: true },
      },
      required: ['count'],
    },
    example: {
      request: { channel: 'chat:lobby' },
      result: { members: [{ id: 'ada', info: { name: 'Ada' }, client: '5f0c9a1e2b7d4c3a8e6f1b2d3c4a5e6f' }, { client: '9b2e7f4a1c6d8e0f3a5b7c9d1e2f4a6b', state: { typing: true } }], count: 2 },
    },
    errors: ['unavailable'],
    async run({ channels }, body) {
      return { ...(await channels.presenceSnapshot((body as { channel: string }).channel)) };
    },
  },
  channels: {
    summary: 'The channels with subscribers, with their counts',
    description: `Channels with subscribers on any node, by name, with their subscribers on every node added up; a page of at most \`limit\` (${MAX_CHANNELS_LIMIT} at most), then \`more\`: ask again with \`after\` set to the last name.`,
    request: {
      type: 'object',
      properties: {
        pattern: { type: 'string', description: 'Only names that match: `*` stands for any run of characters (`chat:*`).' },
        after: { type: 'string', description: 'Only names that sort after this one (the last of the previous page).' },
        limit: { type: 'integer', minimum: 1, maximum: MAX_CHANNELS_LIMIT, description: 'At most this many (default 100).' },
      },
      additionalProperties: false,
    },
    result: {
      type: 'object',
      properties: {
        channels: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, subscribers: { type: 'integer' } }, required: ['name', 'subscribers'] } },
        more: { type: 'boolean' },
      },
      required: ['channels', 'more'],
    },
    example: { request: { pattern: 'chat:*' }, result: { channels: [{ name: 'chat:lobby', subscribers: 2 }], more: false } },
    errors: ['timeout', 'unavailable', 'too_many_pending'],
    async run({ channels }, body) {
      return channels.channels(body as { pattern?: string; after?: string; limit?: number });
    },
  },
  disconnect: {
    summary: "Close a user's connections on every node",
    description:
      "Closes every connection of the user (or one connection, by client id) on every node. Without `code`, `reconnect` decides it: false (the default) closes with 4403, after which the SDK does not reconnect; true with 1012, after which it does (with its new token, say).",
    request: {
      type: 'object',
      properties: {
        ...target,
        code: { type: 'integer', description: 'The close code: 1000, 1001, 1008, 1011, 1012, 1013 or 3000–4999.' },
        reason: { type: 'string', description: 'The close reason, at most 123 bytes of UTF-8.' },
        reconnect: { type: 'boolean', description: 'Whether the SDK should reconnect (default false); ignored when `code` is given.' },
      },
      additionalProperties: false,
    },
    result: { type: 'object', properties: { disconnected: { type: 'integer', description: 'Connections closed.' } }, required: ['disconnected'] },
    example: { request: { user: 'ada', reason: 'banned' }, result: { disconnected: 2 } },
    errors: ['timeout', 'unavailable', 'too_many_pending'],
    async run({ channels }, body) {
      const { code, reason, reconnect } = body as { code?: number; reason?: string; reconnect?: boolean };
      return { disconnected: await channels.disconnect(targetOf(body), { code: code ?? (reconnect === true ? 1012 : 4403), reason }) };
    },
  },
  unsubscribe: {
    summary: "End a user's subscription to a channel",
    description:
      'Ends the subscriptions of the user (or of one connection) to the channel on every node: each client gets an `unsub` push with code `forbidden`, and the SDK does not resubscribe by itself.',
    request: {
      type: 'object',
      properties: { ...target, channel, reason: { type: 'string', maxLength: 1024, description: 'The `message` of the unsub push.' } },
      required: ['channel'],
      additionalProperties: false,
    },
    result: { type: 'object', properties: { unsubscribed: { type: 'integer', description: 'Subscriptions ended.' } }, required: ['unsubscribed'] },
    example: { request: { user: 'ada', channel: 'chat:lobby' }, result: { unsubscribed: 1 } },
    errors: ['timeout', 'unavailable', 'too_many_pending'],
    async run({ channels }, body) {
      const { channel: name, reason } = body as { channel: string; reason?: string };
      return { unsubscribed: await channels.unsubscribe(targetOf(body), name, { reason }) };
    },
  },
  info: {
    summary: 'The nodes, with their connections and channels',
    description: 'Every node sharing the engine (one without --redis), with its figures.',
    request: { type: 'object', additionalProperties: false },
    result: {
      type: 'object',
      properties: {
        nodes: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              node: { type: 'string', description: "The node's id: the first part of its clients' ids." },
              connections: { type: 'integer' },
              users: { type: 'integer', description: 'Distinct users among its connections.' },
              channels: { type: 'integer', description: 'Channels with subscribers on the node.' },
              subscriptions: { type: 'integer' },
              uptime: { type: 'integer', description: 'Seconds since the node started.' },
            },
            required: ['node', 'connections', 'users', 'channels', 'subscriptions', 'uptime'],
          },
        },
      },
      required: ['nodes'],
    },
    example: { request: {}, result: { nodes: [{ node: 'mf1x8k2p9q', connections: 3, users: 2, channels: 1, subscriptions: 3, uptime: 120 }] } },
    errors: ['timeout', 'unavailable', 'too_many_pending'],
    async run({ channels }) {
      return { nodes: await channels.info() };
    },
  },
};
