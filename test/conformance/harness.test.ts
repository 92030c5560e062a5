/**
 * Tests of the conformance harness itself: the case list is well formed, and the judge
 * fails peers that misbehave in each way a strict suite must catch (missing echo, wrong
 * close code, late failure, masking, frames after close, TCP left open).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { ALL_CASES, casesFor, compareIds } from './cases.js';
import { runCase, type Link, type LinkListener, type Peer } from './harness.js';
import { MemoryClientPeer } from './memory-peer.js';
import type { ConformanceCase, Role } from './model.js';
import { WebSocketProtocol } from '../../src/protocol/websocket-protocol.js';

function caseById(id: string): ConformanceCase {
  const c = ALL_CASES.find((k) => k.id === id);
  assert.ok(c, `case ${id} exists`);
  return c;
}

function withTimeout(c: ConformanceCase, timeoutMs: number): ConformanceCase {
  return { ...c, timeoutMs };
}

type Respond = (bytes: Buffer, emit: (bytes: Buffer) => void, end: () => void, call: number) => void;

/** A peer whose every reaction is scripted by `respond`. */
class ScriptedPeer implements Peer {
  constructor(
    readonly role: Role,
    private readonly respond: Respond,
  ) {}

  connect(listener: LinkListener): Promise<Link> {
    let closed = false;
    let ended = false;
    let call = 0;
    const respond = this.respond;
    return Promise.resolve({
      write(bytes: Buffer): Promise<void> {
        if (closed || ended) return Promise.resolve();
        respond(
          bytes,
          (out) => listener.data(out),
          () => {
            ended = true;
            listener.end();
          },
          call++,
        );
        return Promise.resolve();
      },
      close(): void {
        closed = true;
      },
    });
  }
}

/** hotline's client protocol, but every write reaches it one write late. */
class LaggingClientPeer implements Peer {
  readonly role = 'client' as const;

  connect(listener: LinkListener): Promise<Link> {
    let held: Buffer | null = null;
    let ended = false;
    const protocol: WebSocketProtocol = new WebSocketProtocol(
      {
        onMessage(data: Buffer, binary: boolean): void {
          if (protocol.canSend) protocol.send(data, { binary });
        },
      },
      { role: 'client', maxPayload: 0 },
    );
    const feed = (bytes: Buffer): void => {
      protocol.receiveData(bytes);
      for (const chunk of protocol.takeOutgoing()) listener.data(chunk);
      if (protocol.shouldCloseTransport && !ended) {
        ended = true;
        listener.end();
      }
    };
    return Promise.resolve({
      write(bytes: Buffer): Promise<void> {
        if (held !== null) feed(held);
        held = Buffer.from(bytes);
        return Promise.resolve();
      },
      close(): void {
        if (held !== null) feed(held);
        held = null;
      },
    });
  }
}

const CLOSE_1000_UNMASKED = Buffer.from([0x88, 0x02, 0x03, 0xe8]);
const CLOSE_1002_UNMASKED = Buffer.from([0x88, 0x02, 0x03, 0xea]);

void describe('conformance harness', () => {
  void test('case ids are unique, ordered within sections, and there are at least 400 per role', () => {
    const ids = ALL_CASES.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const c of ALL_CASES) assert.match(c.id, /^\d+(\.\d+){1,2}$/);
    assert.ok(casesFor('server').length >= 400);
    assert.ok(casesFor('client').length >= 400);
    assert.equal(compareIds('6.9.2', '6.10.1') < 0, true);
  });

  void test('every sync waits for no more echoes than the case expects', () => {
    for (const c of ALL_CASES) {
      for (const a of c.actions) {
        if (a.do === 'sync') assert.ok(a.events <= c.expect.events.length, `${c.id}: sync beyond the expected events`);
      }
    }
  });

  void test('a silent peer fails: missing echo, connection left open', async () => {
    const silent = new ScriptedPeer('server', () => {});
    const report = await runCase(silent, withTimeout(caseById('1.1.2'), 50));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.startsWith('missing text 125 B')), report.failures.join('\n'));
    assert.ok(report.failures.some((f) => f.includes('stayed open')), report.failures.join('\n'));
  });

  void test('a peer that closes with the wrong code fails', async () => {
    const peer = new ScriptedPeer('client', (_bytes, emit, end) => {
      emit(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xea])); // masked close 1002
      end();
    });
    const report = await runCase(peer, caseById('6.3.1'));
    assert.equal(report.passed, false);
    assert.ok(report.failures.includes('close code 1002, expected 1007'), report.failures.join('\n'));
  });

  void test('a peer that fails too late fails the fail-fast cases', async () => {
    for (const id of ['6.4.1', '6.4.3']) {
      const report = await runCase(new LaggingClientPeer(), caseById(id));
      assert.equal(report.passed, false, id);
      assert.ok(report.failures.some((f) => f.startsWith('fail-fast:')), `${id}: ${report.failures.join('\n')}`);
    }
  });

  void test('a server that masks its frames breaks the protocol', async () => {
    const peer = new ScriptedPeer('server', (_bytes, emit, end) => {
      emit(Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]));
      emit(CLOSE_1000_UNMASKED);
      end();
    });
    const report = await runCase(peer, withTimeout(caseById('10.2.7'), 200));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('server sent a masked text frame')), report.failures.join('\n'));
  });

  void test('a frame after the close frame is caught', async () => {
    const peer = new ScriptedPeer('server', (_bytes, emit, end) => {
      emit(CLOSE_1002_UNMASKED);
      emit(Buffer.from([0x8a, 0x00])); // pong after close
      end();
    });
    const report = await runCase(peer, caseById('2.5'));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('pong frame after the close frame')), report.failures.join('\n'));
  });

  void test('a server that answers the close but keeps TCP open fails', async () => {
    const peer = new ScriptedPeer('server', (bytes, emit) => {
      if ((bytes[0]! & 0x0f) === 0x8) emit(CLOSE_1000_UNMASKED);
    });
    const report = await runCase(peer, withTimeout(caseById('7.3.3'), 50));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('did not close the TCP connection')), report.failures.join('\n'));
  });

  void test('a peer that sends its failing close frame but keeps the transport open fails', async () => {
    const peer = new ScriptedPeer('server', (_bytes, emit) => emit(CLOSE_1002_UNMASKED));
    const report = await runCase(peer, withTimeout(caseById('2.5'), 50));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('did not close the transport')), report.failures.join('\n'));
  });

  void test('an extra echo is caught', async () => {
    const peer = new ScriptedPeer('client', (bytes, emit, end, call) => {
      if (call === 0) {
        emit(Buffer.from([0x8a, 0x80, 1, 2, 3, 4])); // masked empty pong that nobody asked for
        return;
      }
      if ((bytes[0]! & 0x0f) === 0x8) {
        emit(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
        end();
      }
    });
    const report = await runCase(peer, caseById('2.7'));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.startsWith('unexpected pong')), report.failures.join('\n'));
  });

  void test('hotline’s client passes a sample of cases through the in-memory peer', async () => {
    const peer = new MemoryClientPeer();
    for (const id of ['1.1.1', '2.6', '5.19', '6.4.3', '7.3.1', '9.9.3']) {
      const report = await runCase(peer, caseById(id));
      assert.equal(report.passed, true, `${id}: ${report.failures.join('\n')}`);
    }
  });
});
