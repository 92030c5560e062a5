/**
 * The conformance suite against hotline's server role: the real echo server over TCP,
 * one server for the whole run (plus one with a small message limit for 9.9.x), a fresh
 * connection per case, driven by the raw fuzzing client.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serve, type RunningServer } from '../../src/server/serve.js';
import { echoHandlers } from '../../src/server/echo.js';
import { casesFor } from './cases.js';
import { TcpServerPeer } from './fuzzing-client.js';
import { formatReport, maxPayloadFor, runCase } from './harness.js';

const HOST = '127.0.0.1';
const PATH = '/echo';

async function startEcho(maxPayload: number): Promise<RunningServer> {
  return serve({ port: 0, host: HOST, websocket: { [PATH]: echoHandlers }, endpoint: { maxPayload }, shutdownTimeout: 1_000 });
}

void describe('conformance: server role (hotline echo server over TCP)', { concurrency: 8 }, () => {
  let servers: RunningServer[] = [];
  let peer: TcpServerPeer | undefined;

  before(async () => {
    const main = await startEcho(maxPayloadFor('default'));
    const small = await startEcho(maxPayloadFor('small'));
    servers = [main, small];
    peer = new TcpServerPeer({
      default: { host: HOST, port: main.port, path: PATH },
      small: { host: HOST, port: small.port, path: PATH },
    });
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  for (const c of casesFor('server')) {
    void test(`server ${c.id} ${c.description}`, async () => {
      assert.ok(peer, 'servers did not start');
      const report = await runCase(peer, c);
      assert.ok(report.passed, formatReport(report));
    });
  }
});
