// /metrics and /healthz of `hotline serve` (the built CLI), read as Prometheus would: the
// text is parsed by parse-prometheus-text-format, and each test looks at how the numbers
// move. `npm test` builds first; to run this file alone, run `npm run build` before it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import WebSocket from 'ws';
import { requireBuiltCli, startCli, type CliServer } from './support/cli-server.js';
import { waitFor } from './support/wait.js';

requireBuiltCli();

type Families = Map<string, PrometheusFamily>;

/** The sum of a family's samples whose labels include `labels` (NaN when there is none). */
function value(families: Families, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  assert.ok(family !== undefined, `the family ${name} is missing`);
  const samples = family.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (samples.length === 0) return NaN;
  return samples.reduce((sum, m) => sum + Number(m.value), 0);
}

const ENDPOINT_FAMILIES: Record<string, PrometheusFamily['type']> = {
  hotline_connections: 'GAUGE',
  hotline_connections_accepted_total: 'COUNTER',
  hotline_upgrades_rejected_total: 'COUNTER',
  hotline_messages_received_total: 'COUNTER',
  hotline_messages_sent_total: 'COUNTER',
  hotline_received_bytes_total: 'COUNTER',
  hotline_sent_bytes_total: 'COUNTER',
  hotline_dropped_messages_total: 'COUNTER',
  hotline_slow_consumer_closes_total: 'COUNTER',
  hotline_handler_errors_total: 'COUNTER',
  hotline_heartbeat_timeouts_total: 'COUNTER',
  hotline_idle_closes_total: 'COUNTER',
};

const OTHER_FAMILIES: Record<string, PrometheusFamily['type']> = {
  hotline_channel_requests_total: 'COUNTER',
  hotline_channel_errors_total: 'COUNTER',
  hotline_channel_publishes_total: 'COUNTER',
  hotline_channel_duplicate_publishes_total: 'COUNTER',
  hotline_channel_deliveries_total: 'COUNTER',
  hotline_channel_recoveries_total: 'COUNTER',
  hotline_channel_abuse_closes_total: 'COUNTER',
  hotline_channel_read_pauses_total: 'COUNTER',
  hotline_channel_replay_slow_closes_total: 'COUNTER',
  hotline_channel_sessions: 'GAUGE',
  hotline_channel_subscriptions: 'GAUGE',
  hotline_engine_healthy: 'GAUGE',
  process_resident_memory_bytes: 'GAUGE',
  nodejs_heap_space_size_total_bytes: 'GAUGE',
};

describe('/metrics and /healthz of hotline serve', { timeout: 60_000 }, () => {
  let server: CliServer;

  before(async () => {
    server = await startCli();
  });

  after(async () => {
    await server?.stop();
  });

  async function scrape(): Promise<Families> {
    const response = await fetch(`${server.http}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const families = parsePrometheusTextFormat(await response.text());
    return new Map(families.map((f) => [f.name, f]));
  }

  /** Scrapes until `check` holds (the server counts some things after the client sees them). */
  function scrapeUntil(check: (families: Families) => boolean, what: string): Promise<Families> {
    return waitFor(async () => {
      const families = await scrape();
      return check(families) && families;
    }, `/metrics to show ${what}`, { ms: 10_000, every: 50 });
  }

  async function openWs(path: string, protocol?: string): Promise<WebSocket> {
    const ws = protocol === undefined ? new WebSocket(`${server.ws}${path}`) : new WebSocket(`${server.ws}${path}`, protocol);
    await once(ws, 'open');
    return ws;
  }

  test('/healthz answers 200 "ok"', async () => {
    const response = await fetch(`${server.http}/healthz`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await response.text(), 'ok\n');
  });

  test('every family is there, with its type and help, and a sample for each endpoint', async () => {
    const families = await scrape();
    for (const [name, type] of Object.entries({ ...ENDPOINT_FAMILIES, ...OTHER_FAMILIES })) {
      const family = families.get(name);
      assert.ok(family !== undefined, `${name} is missing`);
      assert.equal(family.type, type, `${name} is a ${type}`);
      assert.ok(family.help.length > 0, `${name} has a help text`);
      for (const sample of family.metrics) assert.ok(Number.isFinite(Number(sample.value)), `${name}: ${sample.value} is a number`);
    }
    for (const name of Object.keys(ENDPOINT_FAMILIES)) {
      const endpoints = families.get(name)!.metrics.map((m) => m.labels?.endpoint).sort();
      assert.deepEqual(endpoints, ['/echo', '/ws'], `${name} by endpoint`);
    }
    // Every op and error code of hotline.v1 has its sample (later versions may add more).
    const ops = new Set(families.get('hotline_channel_requests_total')!.metrics.map((m) => m.labels?.op));
    for (const op of ['sub', 'unsub', 'pub', 'presence', 'history', 'rpc', 'ping']) assert.ok(ops.has(op), `requests by op: ${op}`);
    const codes = new Set(families.get('hotline_channel_errors_total')!.metrics.map((m) => m.labels?.code));
    for (const code of ['bad_request', 'unauthorized', 'forbidden', 'not_found', 'rate_limited', 'too_large', 'internal']) {
      assert.ok(codes.has(code), `errors by code: ${code}`);
    }
    assert.equal(value(families, 'hotline_engine_healthy'), 1);
    assert.ok(value(families, 'process_resident_memory_bytes') > 1024 * 1024);
  });

  test('hotline_connections for /echo rises with an open connection and falls after it closes', async () => {
    const before = await scrape();
    const open = value(before, 'hotline_connections', { endpoint: '/echo' });
    const accepted = value(before, 'hotline_connections_accepted_total', { endpoint: '/echo' });
    const ws = await openWs('/echo');
    const during = await scrapeUntil((f) => value(f, 'hotline_connections', { endpoint: '/echo' }) === open + 1, 'the open connection');
    assert.equal(value(during, 'hotline_connections_accepted_total', { endpoint: '/echo' }), accepted + 1);
    assert.equal(value(during, 'hotline_connections', { endpoint: '/ws' }), value(before, 'hotline_connections', { endpoint: '/ws' }));
    ws.close(1000);
    await once(ws, 'close');
    const afterwards = await scrapeUntil((f) => value(f, 'hotline_connections', { endpoint: '/echo' }) === open, 'the connection gone');
    assert.equal(value(afterwards, 'hotline_connections_accepted_total', { endpoint: '/echo' }), accepted + 1, 'accepted only ever grows');
  });

  test('message and byte counters move after an echo', async () => {
    const ws = await openWs('/echo');
    const before = await scrape();
    const text = 'x'.repeat(100);
    ws.send(text);
    const [echoed] = (await once(ws, 'message')) as [Buffer];
    assert.equal(echoed.toString(), text);
    const echo = { endpoint: '/echo' };
    const after = await scrapeUntil((f) => value(f, 'hotline_messages_sent_total', echo) === value(before, 'hotline_messages_sent_total', echo) + 1, 'the echo');
    assert.equal(value(after, 'hotline_messages_received_total', echo), value(before, 'hotline_messages_received_total', echo) + 1);
    assert.equal(value(after, 'hotline_received_bytes_total', echo), value(before, 'hotline_received_bytes_total', echo) + 100);
    assert.ok(value(after, 'hotline_sent_bytes_total', echo) > value(before, 'hotline_sent_bytes_total', echo));
    // The other endpoint saw none of it.
    assert.equal(value(after, 'hotline_messages_received_total', { endpoint: '/ws' }), value(before, 'hotline_messages_received_total', { endpoint: '/ws' }));
    ws.close(1000);
    await once(ws, 'close');
  });

  test('channel counters move after a hotline.v1 sub, pub and bad request', async () => {
    const before = await scrape();
    const ws = await openWs('/ws', 'hotline.v1');
    assert.equal(ws.protocol, 'hotline.v1');
    const replies: Array<Record<string, unknown>> = [];
    ws.on('message', (data: Buffer) => replies.push(JSON.parse(data.toString()) as Record<string, unknown>));
    const reply = (find: (r: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> =>
      waitFor(() => replies.find(find), what, { ms: 10_000, state: () => JSON.stringify(replies) });
    ws.send(JSON.stringify({ op: 'sub', id: 1, ch: 'metrics:test' }));
    assert.equal((await reply((r) => r.id === 1, 'sub answer')).op, 'ok');
    ws.send(JSON.stringify({ op: 'pub', id: 2, ch: 'metrics:test', data: { n: 1 } }));
    assert.equal((await reply((r) => r.id === 2, 'pub answer')).op, 'ok');
    await reply((r) => r.op === 'msg', 'the message');
    ws.send(JSON.stringify({ op: 'nonsense', id: 3 }));
    assert.equal((await reply((r) => r.id === 3, 'err answer')).code, 'bad_request');

    const during = await scrapeUntil(
      (f) => value(f, 'hotline_channel_requests_total', { op: 'pub' }) === value(before, 'hotline_channel_requests_total', { op: 'pub' }) + 1,
      'the pub',
    );
    const delta = (name: string, labels: Record<string, string> = {}): number => value(during, name, labels) - value(before, name, labels);
    assert.equal(delta('hotline_channel_requests_total', { op: 'sub' }), 1);
    assert.equal(delta('hotline_channel_requests_total', { op: 'pub' }), 1);
    assert.equal(delta('hotline_channel_requests_total', { op: 'history' }), 0);
    assert.equal(delta('hotline_channel_errors_total', { code: 'bad_request' }), 1);
    assert.equal(delta('hotline_channel_publishes_total'), 1);
    assert.equal(delta('hotline_channel_deliveries_total'), 1);
    assert.equal(delta('hotline_channel_sessions'), 1);
    assert.equal(delta('hotline_channel_subscriptions'), 1);
    assert.equal(delta('hotline_connections', { endpoint: '/ws' }), 1);
    // Three requests in; three answers, its own presence join and a message out.
    assert.equal(delta('hotline_messages_received_total', { endpoint: '/ws' }), 3);
    assert.equal(delta('hotline_messages_sent_total', { endpoint: '/ws' }), 5);

    ws.close(1000);
    await once(ws, 'close');
    await scrapeUntil(
      (f) =>
        value(f, 'hotline_channel_sessions') === value(before, 'hotline_channel_sessions') &&
        value(f, 'hotline_channel_subscriptions') === value(before, 'hotline_channel_subscriptions'),
      'the session and its subscription gone',
    );
  });

  test('a refused upgrade is counted under hotline_upgrades_rejected_total', async () => {
    const before = await scrape();
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.http}/echo`, {
        headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '8', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
      });
      req.on('response', (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      req.on('upgrade', () => reject(new Error('the upgrade was accepted')));
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 426);
    const after = await scrapeUntil(
      (f) => value(f, 'hotline_upgrades_rejected_total', { endpoint: '/echo' }) === value(before, 'hotline_upgrades_rejected_total', { endpoint: '/echo' }) + 1,
      'the refused upgrade',
    );
    assert.equal(value(after, 'hotline_connections_accepted_total', { endpoint: '/echo' }), value(before, 'hotline_connections_accepted_total', { endpoint: '/echo' }));
  });
});
