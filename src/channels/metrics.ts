import type { ErrorCode, RequestOp } from '../wire/index.js';

/** Counters of every channel operation, for /metrics. All only ever increase but `subscriptions` and `sessions`. */
export interface ChannelMetrics {
  /** Requests received, by op (valid ones; malformed ones count under errors.bad_request). */
  requests: Record<RequestOp, number>;
  /** `err` answers, by code. */
  errors: Record<ErrorCode, number>;
  /** Messages published (not counting idempotent repeats). */
  publishes: number;
  /** Publishes answered as repeats of an earlier key. */
  duplicatePublishes: number;
  /** Messages written to subscribers, live or replayed. */
  deliveries: number;
  /** Ephemeral publishes (no offset, no history). */
  ephemeralPublishes: number;
  /** Ephemeral messages written to subscribers. */
  ephemeralDeliveries: number;
  /**
   * Ephemeral messages not written to a subscriber that had half its backpressure limit
   * buffered: they are dropped first, so that its channel messages still fit.
   */
  ephemeralDrops: number;
  /** Presence states set or cleared (`state` requests carried out). */
  stateUpdates: number;
  /** Subscriptions that asked to recover, by outcome. */
  recoveries: {
    /** Answered `recovered: true`: every missed message was replayed. */
    recovered: number;
    /** Answered `recovered: false`: the client must reload what it shows. */
    notRecovered: number;
  };
  /** Connections closed with 1008 for sustained abuse. */
  abuseCloses: number;
  /** Times a connection stopped being read because maxPendingRequests of its requests were waiting. */
  readPauses: number;
  /** Connections closed with 1013 because live messages kept during their replay passed the backpressure limit. */
  slowConsumerCloses: number;
  /** Open sessions and their subscriptions, now. */
  sessions: number;
  /** Subscriptions held by those sessions, now. */
  subscriptions: number;
}

export function newChannelMetrics(): ChannelMetrics {
  return {
    requests: { sub: 0, unsub: 0, pub: 0, state: 0, presence: 0, history: 0, rpc: 0, ping: 0, auth: 0, reply: 0 },
    errors: {
      bad_request: 0,
      unauthorized: 0,
      forbidden: 0,
      not_found: 0,
      rate_limited: 0,
      too_large: 0,
      internal: 0,
    },
    publishes: 0,
    duplicatePublishes: 0,
    deliveries: 0,
    ephemeralPublishes: 0,
    ephemeralDeliveries: 0,
    ephemeralDrops: 0,
    stateUpdates: 0,
    recoveries: { recovered: 0, notRecovered: 0 },
    abuseCloses: 0,
    readPauses: 0,
    slowConsumerCloses: 0,
    sessions: 0,
    subscriptions: 0,
  };
}
