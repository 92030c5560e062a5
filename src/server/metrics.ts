import type { ChannelMetrics } from '../channels/index.js';
import { ChannelCloseCode } from '../wire/index.js';
import type { ServerCounters } from '../node/server.js';

type Labels = Record<string, string>;

/** Builds Prometheus text exposition format (version 0.0.4), one metric family at a time. */
export class PrometheusText {
  private out = '';

  family(name: string, type: 'counter' | 'gauge', help: string, samples: Array<[Labels, number]>): this {
    this.out += `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
    for (const [labels, value] of samples) {
      const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
      this.out += `${name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${Number.isFinite(value) ? value : 0}\n`;
    }
    return this;
  }

  toString(): string {
    return this.out;
  }
}

/** What each endpoint reports: its counters, and its open connections. */
type EndpointFigures = ServerCounters & { connections: number };

/** The families of each endpoint: name, type, help, and the figure they show. */
const ENDPOINT_FAMILIES: ReadonlyArray<readonly [name: string, type: 'counter' | 'gauge', help: string, figure: keyof EndpointFigures]> = [
  ['hotline_connections', 'gauge', 'Open WebSocket connections.', 'connections'],
  ['hotline_connections_accepted_total', 'counter', 'WebSocket upgrades completed.', 'accepted'],
  ['hotline_upgrades_rejected_total', 'counter', 'Upgrade requests refused with an HTTP status.', 'rejected'],
  ['hotline_messages_received_total', 'counter', 'Messages received.', 'messagesIn'],
  ['hotline_messages_sent_total', 'counter', 'Messages queued to send.', 'messagesOut'],
  ['hotline_received_bytes_total', 'counter', 'Payload bytes of messages received.', 'bytesIn'],
  ['hotline_sent_bytes_total', 'counter', 'Frame bytes queued to send.', 'bytesOut'],
  ['hotline_dropped_messages_total', 'counter', 'Sends dropped by the slow-consumer policy.', 'droppedMessages'],
  ['hotline_slow_consumer_closes_total', 'counter', 'Connections closed as slow consumers.', 'slowConsumerCloses'],
  ['hotline_handler_errors_total', 'counter', 'Application handlers that threw (connection closed with 1011).', 'handlerErrors'],
  ['hotline_heartbeat_timeouts_total', 'counter', 'Connections terminated for not answering pings.', 'heartbeatTimeouts'],
  ['hotline_idle_closes_total', 'counter', 'Connections closed for idleness.', 'idleCloses'],
  ['hotline_message_timeouts_total', 'counter', 'Connections failed (1008) for not completing a frame or message within messageTimeout.', 'messageTimeouts'],
  ['hotline_inflate_pauses_total', 'counter', 'Times reading from a connection paused because it inflated more than inflateRate allows.', 'inflatePauses'],
];

/** Every endpoint's figures, by path. */
export function endpointMetrics(text: PrometheusText, endpoints: Array<[path: string, connections: number, counters: ServerCounters]>): void {
  const figures = endpoints.map(([endpoint, connections, counters]): [Labels, EndpointFigures] => [{ endpoint }, { ...counters, connections }]);
  for (const [name, type, help, figure] of ENDPOINT_FAMILIES) {
    text.family(name, type, help, figures.map(([labels, values]) => [labels, values[figure]]));
  }
}

export function channelMetrics(text: PrometheusText, m: ChannelMetrics, engineHealthy: boolean): void {
  text
    .family('hotline_channel_requests_total', 'counter', 'hotline.v1 requests, by op.', Object.entries(m.requests).map(([op, n]) => [{ op }, n]))
    .family('hotline_channel_errors_total', 'counter', 'hotline.v1 err answers, by code.', Object.entries(m.errors).map(([code, n]) => [{ code }, n]))
    .family('hotline_channel_publishes_total', 'counter', 'Messages published to channels.', [[{}, m.publishes]])
    .family('hotline_channel_duplicate_publishes_total', 'counter', 'Publishes answered as repeats of an idempotency key.', [[{}, m.duplicatePublishes]])
    .family('hotline_channel_deliveries_total', 'counter', 'Channel messages written to subscribers.', [[{}, m.deliveries]])
    .family('hotline_channel_ephemeral_publishes_total', 'counter', 'Ephemeral publishes (no offset, no history).', [[{}, m.ephemeralPublishes]])
    .family('hotline_channel_ephemeral_deliveries_total', 'counter', 'Ephemeral messages written to subscribers.', [[{}, m.ephemeralDeliveries]])
    .family('hotline_channel_ephemeral_drops_total', 'counter', 'Ephemeral messages not written to a subscriber holding half its backpressure limit (dropped first, so that channel messages fit).', [[{}, m.ephemeralDrops]])
    .family('hotline_channel_presence_states_total', 'counter', 'Presence states set or cleared.', [[{}, m.stateUpdates]])
    .family('hotline_channel_recoveries_total', 'counter', 'Subscriptions that asked to recover, by outcome.', [
      [{ outcome: 'recovered' }, m.recoveries.recovered],
      [{ outcome: 'not_recovered' }, m.recoveries.notRecovered],
    ])
    .family('hotline_channel_abuse_closes_total', 'counter', `Connections closed with ${ChannelCloseCode.PolicyViolation} for sustained abuse.`, [[{}, m.abuseCloses]])
    .family('hotline_channel_read_pauses_total', 'counter', 'Times a connection stopped being read while maxPendingRequests of its requests waited.', [[{}, m.readPauses]])
    .family('hotline_channel_replay_slow_closes_total', 'counter', `Connections closed with ${ChannelCloseCode.TryAgainLater}: too slow to take their replay and the messages kept meanwhile.`, [[{}, m.slowConsumerCloses]])
    .family('hotline_channel_sessions', 'gauge', 'Open hotline.v1 sessions.', [[{}, m.sessions]])
    .family('hotline_channel_subscriptions', 'gauge', 'Channel subscriptions held.', [[{}, m.subscriptions]])
    .family('hotline_engine_healthy', 'gauge', '1 while the channel engine can serve.', [[{}, engineHealthy ? 1 : 0]]);
}

/** The HTTP API's calls, by method (`unknown` for paths that name none) and status. */
export function apiMetrics(text: PrometheusText, calls: Array<{ method: string; status: string; count: number }>): void {
  text.family(
    'hotline_api_requests_total',
    'counter',
    'HTTP API calls, by method and status.',
    calls.map(({ method, status, count }) => [{ method, status }, count]),
  );
}
