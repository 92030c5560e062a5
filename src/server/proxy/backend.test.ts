// The HTTP side of the proxy hooks against a node:http server in this process: what is
// sent, and each bound and failure (busy, a connection's slots, the timeout, the answer's
// size, a status, not JSON, nothing listening), each waited on as the event it is.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../../../test/support/ports.js';
import { Backend, BackendFailure, type BackendFailureKind } from './backend.js';

type Handler = (body: unknown, res: ServerResponse, req: IncomingMessage) => void;

const options = { maxInFlight: 4, maxInFlightPerConnection: 2, maxAnswerBytes: 1024 };

function failsWith(kind: BackendFailureKind, detail?: RegExp): (error: unknown) => boolean {
  return (error) => {
    if (error instanceof BackendFailure && error.kind === kind && (detail === undefined || detail.test(error.message))) return true;
    throw new Error(`expected ${kind} ${String(detail)}, got ${String(error)} (${(error as BackendFailure).kind})`);
  };
}

describe('Backend', () => {
  let server: Server;
  let base: string;
  const routes = new Map<string, Handler>();
  /** Answers held back by the test, to release when it likes. */
  const held: Array<() => void> = [];
  let received = 0;

  before(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      req.on('end', () => {
        received++;
        routes.get(req.url!)!(JSON.parse(text), res, req);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const json = (res: ServerResponse, value: unknown): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    routes.set('/echo', (body, res, req) => json(res, { body, type: req.headers['content-type'], method: req.method }));
    routes.set('/hold', (body, res) => held.push(() => json(res, body)));
    routes.set('/never', () => {});
    routes.set('/big', (_body, res) => {
      const text = JSON.stringify({ pad: 'x'.repeat(2000) });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    routes.set('/big-chunked', (_body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"pad":"');
      res.end(`${'x'.repeat(2000)}"}`);
    });
    routes.set('/status', (_body, res) => {
      res.writeHead(500);
      res.end('{"allow":true}');
    });
    routes.set('/html', (_body, res) => {
      res.writeHead(200);
      res.end('<html></html>');
    });
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const release = async (count: number): Promise<void> => {
    while (held.length < count) await new Promise((resolve) => setImmediate(resolve));
    for (const answer of held.splice(0, count)) answer();
  };

  test('POSTs the body as JSON and resolves to the parsed answer', async () => {
    const backend = new Backend(options);
    try {
      assert.deepEqual(await backend.post(new URL(`${base}/echo`), { channel: 'a', n: 1 }, 1000), {
        body: { channel: 'a', n: 1 },
        type: 'application/json',
        method: 'POST',
      });
      assert.equal(backend.inFlight, 0);
    } finally {
      backend.close();
    }
  });

  test('past maxInFlight a call is refused at once, without reaching the backend', async () => {
    const backend = new Backend(options);
    try {
      const before = received;
      const running = ['a', 'b', 'c', 'd'].map((lane) => backend.post(new URL(`${base}/hold`), { lane }, 5000, lane));
      while (received - before < 4) await new Promise((resolve) => setImmediate(resolve));
      await assert.rejects(backend.post(new URL(`${base}/hold`), { lane: 'e' }, 5000, 'e'), failsWith('busy', /4 calls to the backend are in flight/));
      assert.equal(received - before, 4, 'the refused call was not sent');
      assert.equal(backend.refused, 1);
      await release(4);
      assert.deepEqual(await Promise.all(running), ['a', 'b', 'c', 'd'].map((lane) => ({ lane })));
    } finally {
      backend.close();
    }
  });

  test('a connection’s calls past its slots wait their turn, and fail as timed out when none frees in time', async () => {
    const backend = new Backend(options);
    try {
      const before = received;
      const calls = [1, 2, 3].map((n) => backend.post(new URL(`${base}/hold`), { n }, 5000, 'one'));
      while (received - before < 2) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(backend.inFlight, 2, 'the third waits for a slot');
      await release(2);
      await release(1);
      assert.deepEqual(await Promise.all(calls), [{ n: 1 }, { n: 2 }, { n: 3 }]);
      const blocking = [1, 2].map((n) => backend.post(new URL(`${base}/hold`), { n }, 5000, 'two'));
      await assert.rejects(backend.post(new URL(`${base}/hold`), {}, 50, 'two'), failsWith('timeout', /no slot among the connection's 2 calls/));
      await release(2);
      await Promise.all(blocking);
    } finally {
      backend.close();
    }
  });

  test('no answer within the timeout: timeout, and the slot is free again', async () => {
    const backend = new Backend(options);
    try {
      await assert.rejects(backend.post(new URL(`${base}/never`), {}, 100, 'x'), failsWith('timeout', /no answer within 100 ms/));
      assert.equal(backend.inFlight, 0);
    } finally {
      backend.close();
    }
  });

  test('answers past maxAnswerBytes (declared or streamed), other statuses and non-JSON are the backend’s fault', async () => {
    const backend = new Backend(options);
    try {
      await assert.rejects(backend.post(new URL(`${base}/big`), {}, 1000), failsWith('too_large', /an answer of 2010 bytes \(at most 1024\)/));
      await assert.rejects(backend.post(new URL(`${base}/big-chunked`), {}, 1000), failsWith('too_large', /more than 1024/));
      await assert.rejects(backend.post(new URL(`${base}/status`), {}, 1000), failsWith('status', /HTTP 500/));
      await assert.rejects(backend.post(new URL(`${base}/html`), {}, 1000), failsWith('malformed', /not JSON/));
      for (const kind of ['too_large', 'status', 'malformed'] as const) assert.ok(new BackendFailure(kind, '').answeredWrongly);
      assert.equal(backend.inFlight, 0);
    } finally {
      backend.close();
    }
  });

  test('nothing listening: unreachable', async () => {
    const backend = new Backend(options);
    try {
      const port = await freePort();
      await assert.rejects(backend.post(new URL(`http://127.0.0.1:${port}/x`), {}, 1000), failsWith('unreachable', /ECONNREFUSED/));
      assert.ok(!new BackendFailure('unreachable', '').answeredWrongly);
    } finally {
      backend.close();
    }
  });
});
