/** The limits that request validation enforces. Sizes are counted in UTF-16 code units. */
export interface WireLimits {
  maxChannelNameLength: number;
  maxKeyLength: number;
  maxMethodLength: number;
  /** The longest token an `auth` request (a connection token) or a `sub` request (a subscription token) may carry. */
  maxTokenLength: number;
  /** The largest `limit` a history request may ask for. */
  maxHistoryLimit: number;
  /** How deeply a request may nest objects and arrays; the request itself is level 1. */
  maxJsonDepth: number;
}

export const DEFAULT_WIRE_LIMITS: Readonly<WireLimits> = Object.freeze({
  maxChannelNameLength: 200,
  maxKeyLength: 128,
  maxMethodLength: 100,
  maxTokenLength: 8192,
  maxHistoryLimit: 1000,
  maxJsonDepth: 64,
});

/** How many messages a `history` request without `limit` gets; the SDK asks for as many. */
export const DEFAULT_HISTORY_LIMIT = 50;

/**
 * The largest `history` answer, in bytes of JSON text: longer ones are paged (`more`,
 * `before`). Well under the 1 MiB that clients accept by default (hotline's Node client's
 * `maxPayload`), so a history answer never closes a client's connection with 1009.
 */
export const DEFAULT_MAX_HISTORY_ANSWER_BYTES = 512 * 1024;

/** Epochs are made by the server, so their limit is part of the protocol, not an option. */
export const MAX_EPOCH_LENGTH = 64;

/**
 * The defaults with `overrides` applied. Throws a RangeError for a limit that is not a
 * positive safe integer, so a bad option fails at start-up rather than on the first request.
 */
export function resolveWireLimits(overrides: Partial<WireLimits> = {}): WireLimits {
  const limits: WireLimits = { ...DEFAULT_WIRE_LIMITS };
  for (const name of Object.keys(DEFAULT_WIRE_LIMITS) as (keyof WireLimits)[]) {
    const value = overrides[name];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, not ${String(value)}`);
    }
    limits[name] = value;
  }
  return limits;
}

/** The longest `error.code` of a `reply` (fixed: codes are short words). */
export const MAX_REPLY_CODE_LENGTH = 64;
/** The longest `error.message` of a `reply` (fixed). */
export const MAX_REPLY_MESSAGE_LENGTH = 1024;
