// Attack: requests sent faster than the server can carry them out, on a server whose
// canSubscribe hook is asynchronous (each history request waits for it). Requests of a
// connection run in order, so without a bound every request read waits in memory: the
// queue (and the RSS) grows with what the attacker sends, and draining it takes as long as
// the attacker likes. With the bound, the server stops reading the connection while
// maxPendingRequests are in flight: the attacker's writes stall in TCP instead, every
// request is still answered once, and the neighbour is served throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { buildClientRequest } from '../src/protocol/handshake.js';
import { Opcode, WebSocketProtocol } from '../src/protocol/index.js';
import { assertServed, attackFixture, clientFrame, describeReport, MiB, openChannels, RssSampler } from './support/attack.js';
import { HubServer } from './support/hub-process.js';

const ATTACKERS = 2;
const REQUESTS = 60_000;

const fixture = attackFixture(() =>
  HubServer.start(
    {
      slowHook: true,
      // An application that allows fast reads: only the pending bound stands in the way.
      hub: { historyRate: { perSecond: 1e9, burst: 1e9 }, abuseLimit: 1e9 },
    },
    ['--max-old-space-size=512'],
  ),
);

/** How often each request (ids 1..count) was answered, and the close code if the attacker was closed. */
interface FloodResult {
  answers: Uint8Array;
  closed: number | null;
}

const historyRequest = (id: number): string => `{"op":"history","id":${id},"ch":"flood","limit":1}`;

/**
 * Tallies the answers to requests 1..count: `answer` takes each message the attacker got and
 * says when every request has had one; `result` is what the flood resolves with.
 */
function tally(count: number): { answer(text: string): boolean; result(closed: number | null): FloodResult } {
  const answers = new Uint8Array(count + 1);
  let answered = 0;
  return {
    answer(text) {
      const message = JSON.parse(text) as { op: string; id?: number };
      if ((message.op !== 'ok' && message.op !== 'err') || message.id === undefined) return false;
      answers[message.id]!++;
      return ++answered === count;
    },
    result: (closed) => ({ answers, closed }),
  };
}

/** Sends `count` history requests (ids 1..count) at once and resolves with how often each id was answered. */
async function flood(count: number): Promise<FloodResult> {
  const ws = await openChannels(`${fixture.target.ws}/ws`);
  const { answer, result } = tally(count);
  return new Promise((resolve) => {
    ws.on('message', (data: Buffer) => {
      if (!answer(data.toString())) return;
      ws.close();
      resolve(result(null));
    });
    ws.on('close', (code) => resolve(result(code)));
    for (let id = 1; id <= count; id++) ws.send(historyRequest(id));
  });
}

/**
 * The same flood from a raw socket whose first write holds the upgrade request and `first`
 * requests, more than the bound: the server pauses reading in the read that brought the
 * upgrade, and that pause must hold (Node restarts a socket's reading after such a read).
 */
async function floodFromTheUpgrade(count: number, first: number): Promise<FloodResult> {
  const url = new URL(`${fixture.target.ws}/ws`);
  const socket = connect(Number(url.port), url.hostname);
  await once(socket, 'connect');
  const { answer, result } = tally(count);
  const request = (id: number): Buffer => clientFrame(Opcode.Text, Buffer.from(historyRequest(id)));
  return new Promise((resolve) => {
    const protocol = new WebSocketProtocol(
      {
        onMessage(data) {
          if (!answer(data.toString())) return;
          socket.destroy();
          resolve(result(null));
        },
        onClose(info) {
          socket.destroy();
          resolve(result(info.code));
        },
      },
      { role: 'client', maxPayload: 0 },
    );
    let head: Buffer | null = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      if (head !== null) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        assert.match(head.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101 /);
        chunk = head.subarray(end + 4);
        head = null;
      }
      protocol.receiveData(chunk);
    });
    socket.on('close', () => resolve(result(null)));
    const { request: upgrade } = buildClientRequest({ host: url.host, path: '/ws', protocols: ['hotline.v1'] });
    const opening: Buffer[] = [Buffer.from(upgrade, 'latin1')];
    for (let id = 1; id <= first; id++) opening.push(request(id));
    socket.write(Buffer.concat(opening));
    for (let id = first + 1; id <= count; id++) socket.write(request(id));
  });
}

test(`${ATTACKERS} connections flood ${REQUESTS} history requests behind an asynchronous hook: every one answered once, RSS bounded, the neighbour served`, { timeout: 180_000 }, async () => {
  await floodAndCheck(() => flood(REQUESTS));
});

test(`the same, with the first 1,000 requests in the write that carries the upgrade request: the pause holds from that read on`, { timeout: 180_000 }, async () => {
  await floodAndCheck(() => floodFromTheUpgrade(REQUESTS, 1000));
});

async function floodAndCheck(attack: () => Promise<FloodResult>): Promise<void> {
  const peak = new RssSampler(fixture.target.pid);
  const results = await Promise.all(Array.from({ length: ATTACKERS }, attack));
  const rssPeak = peak.stop();
  const report = await fixture.neighbour.report();
  const stats = await fixture.target.stats();
  process.stdout.write(
    `request-queue: baseline ${(fixture.target.baseline / MiB).toFixed(1)} MiB, peak ${(rssPeak / MiB).toFixed(1)} MiB, read pauses ${stats.pauses}; neighbour ${describeReport(report)}\n`,
  );
  assert.ok(fixture.target.alive(), 'the server is still running');
  for (const { answers, closed } of results) {
    assert.equal(closed, null, 'the attacker was not closed');
    const unanswered = answers.subarray(1).findIndex((n) => n !== 1);
    assert.equal(unanswered, -1, `request ${unanswered + 1} was answered ${answers[unanswered + 1]} times`);
  }
  assert.ok((stats.pauses ?? 0) > 0, 'the server paused reading the attackers');
  const growth = rssPeak - fixture.target.baseline;
  assert.ok(growth < 48 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB (under 48 MiB)`);
  assertServed(report);
}
