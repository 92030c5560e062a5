/**
 * The conformance suite against hotline's server role: the real echo server over TCP,
 * a fresh connection per case, driven by the raw fuzzing client. One server runs for each
 * combination of limit (the default, and the small one of 9.9.x and 12.6.x) and
 * permessage-deflate configuration (`off` for the RFC 6455 categories; `default`,
 * `takeover` and `narrow` for 12.x and 13.x, see {@link DeflateServerConfig}) that the
 * cases use.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serve, type RunningServer } from '../../src/server/serve.js';
import { echoHandlers } from '../../src/server/echo.js';
import type { ServerDeflateOptions } from '../../src/node/server.js';
import { casesFor } from './cases.js';
import { TcpServerPeer, type FuzzingTarget, type ServerKey } from './fuzzing-client.js';
import { formatReport, maxPayloadFor, runCase } from './harness.js';
import type { DeflateServerConfig, Limit } from './model.js';

const HOST = '127.0.0.1';
const PATH = '/echo';

/** The `perMessageDeflate` option of each configuration. */
const DEFLATE_OPTIONS: Readonly<Record<DeflateServerConfig, boolean | ServerDeflateOptions>> = {
  off: false,
  default: true,
  takeover: { serverNoContextTakeover: false },
  narrow: { serverNoContextTakeover: false, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11, threshold: 0 },
};

async function startEcho(limit: Limit, deflate: DeflateServerConfig): Promise<RunningServer> {
  return serve({
    port: 0,
    host: HOST,
    websocket: { [PATH]: echoHandlers },
    // No heartbeat pings or idle closes: the run outlasts their periods, and a ping the
    // case did not ask for would be an unexpected event.
    endpoint: { maxPayload: maxPayloadFor(limit), perMessageDeflate: DEFLATE_OPTIONS[deflate], heartbeatInterval: 0, idleTimeout: 0 },
    shutdownTimeout: 1_000,
  });
}

describe('conformance: server role (hotline echo server over TCP)', { concurrency: 8 }, () => {
  const cases = casesFor('server');
  let servers: RunningServer[] = [];
  let peer: TcpServerPeer | undefined;

  before(async () => {
    const keys = new Set<ServerKey>(['default/off', 'small/off']);
    for (const c of cases) keys.add(`${c.limit}/${c.deflate?.server ?? 'off'}`);
    const targets = new Map<ServerKey, FuzzingTarget>();
    for (const key of keys) {
      const [limit, deflate] = key.split('/') as [Limit, DeflateServerConfig];
      const server = await startEcho(limit, deflate);
      servers.push(server);
      targets.set(key, { host: HOST, port: server.port, path: PATH });
    }
    peer = new TcpServerPeer(targets);
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  for (const c of cases) {
    test(`server ${c.id} ${c.description}`, async () => {
      assert.ok(peer, 'servers did not start');
      const report = await runCase(peer, c);
      assert.ok(report.passed, formatReport(report));
    });
  }
});
