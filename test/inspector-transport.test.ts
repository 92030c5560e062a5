// The inspector of a real `hotline serve` lists every connection with its transport: a /ws
// WebSocket as `websocket`, an /sse stream and an HTTP fallback session as `sse` (with no
// byte counts, which those do not keep), each gone from the list once it closes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { openChannels } from './support/attack.js';
import { requireBuiltCli, startCli, type CliServer } from './support/cli-server.js';
import { SseReader } from './support/sse-reader.js';
import { waitFor } from './support/wait.js';

requireBuiltCli();

interface Row {
  id: string | number;
  endpoint: string;
  transport: string;
  protocol: string;
  bytesOut: number | null;
}

describe("the inspector shows each connection's transport", () => {
  let server: CliServer;
  before(async () => {
    server = await startCli();
  });
  after(async () => {
    await server?.stop();
  });

  test('websocket for /ws, sse for /sse and /sse/session', { timeout: 30_000 }, async () => {
    const ws = await openChannels(`${server.ws}/ws`);
    const stream = await SseReader.open(`${server.http}/sse?ch=inspect:a`);
    const session = await SseReader.open(`${server.http}/sse/session`);
    await session.until((r) => r.named('session').length === 1, 'the session event');
    const client = session.named('session')[0]!.client as string;

    const inspector = new WebSocket(`${server.ws}/inspect/ws`);
    let latest: Row[] = [];
    inspector.on('message', (data) => {
      latest = (JSON.parse(data.toString()) as { connections: Row[] }).connections;
    });
    const rows = await waitFor(() => (latest.length >= 3 ? latest : undefined), 'a snapshot with the three connections');
    const shown = rows.map((r) => [r.endpoint, r.transport]).sort();
    assert.deepEqual(shown, [
      ['/sse', 'sse'],
      ['/sse/session', 'sse'],
      ['/ws', 'websocket'],
    ]);
    const sessionRow = rows.find((r) => r.endpoint === '/sse/session')!;
    assert.deepEqual([sessionRow.id, sessionRow.protocol, sessionRow.bytesOut], [client, 'hotline.v1', null]);

    session.close();
    stream.close();
    await waitFor(() => latest.length === 1 && latest[0]!.transport === 'websocket', 'the streams to leave the list');
    inspector.close();
    ws.close();
  });
});
