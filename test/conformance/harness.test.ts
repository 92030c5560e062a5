/**
 * Tests of the conformance harness itself: the case list is well formed, and the judge
 * fails peers that misbehave in each way a strict suite must catch (missing echo, wrong
 * close code, late failure, masking, frames after close, TCP left open; with
 * permessage-deflate: a response that does not accept the offer, RSV1 on a continuation,
 * a context kept after agreeing to reset it, a window larger than agreed).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import { ALL_CASES, casesFor, compareIds } from './cases.js';
import { acceptanceProblem, clientOptionsFor, deflateOffersOf, formatDeflateSpec, judgeServerResponse } from './deflate.js';
import { runCase, type Link, type LinkListener, type Peer } from './harness.js';
import { MemoryClientPeer } from './memory-peer.js';
import type { ConformanceCase, DeflateParamsSpec, Role } from './model.js';
import { generatePattern } from './wire.js';
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
  /** @param extensions what the handshake's Sec-WebSocket-Extensions said, if it had one. */
  constructor(
    readonly role: Role,
    private readonly respond: Respond,
    private readonly extensions?: string | null,
  ) {}

  connect(listener: LinkListener): Promise<Link> {
    let closed = false;
    let ended = false;
    let call = 0;
    const respond = this.respond;
    return Promise.resolve({
      ...(this.extensions === undefined ? {} : { extensions: this.extensions }),
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

/** A server frame (unmasked, short) with the given first byte. */
function serverFrame(b0: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([b0, payload.length]), payload]);
}

/** An echo server that answers with `frames[call]` and, to the close frame, close 1000. */
function deflateServer(extensions: string, frames: readonly Buffer[]): ScriptedPeer {
  return new ScriptedPeer(
    'server',
    (bytes, emit, end, call) => {
      if ((bytes[0]! & 0x0f) === 0x8) {
        emit(CLOSE_1000_UNMASKED);
        end();
        return;
      }
      const frame = frames[call];
      if (frame !== undefined) emit(frame);
    },
    extensions,
  );
}
const CLOSE_1002_UNMASKED = Buffer.from([0x88, 0x02, 0x03, 0xea]);

describe('conformance harness', () => {
  test('case ids are unique, ordered within sections, and there are at least 400 per role', () => {
    const ids = ALL_CASES.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const c of ALL_CASES) assert.match(c.id, /^\d+(\.\d+){1,2}$/);
    assert.ok(casesFor('server').length >= 400);
    assert.ok(casesFor('client').length >= 400);
    assert.equal(compareIds('6.9.2', '6.10.1') < 0, true);
  });

  test('every sync waits for no more echoes than the case expects', () => {
    for (const c of ALL_CASES) {
      for (const a of c.actions) {
        if (a.do === 'sync') assert.ok(a.events <= c.expect.events.length, `${c.id}: sync beyond the expected events`);
      }
    }
  });

  test('a silent peer fails: missing echo, connection left open', async () => {
    const silent = new ScriptedPeer('server', () => {});
    const report = await runCase(silent, withTimeout(caseById('1.1.2'), 50));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.startsWith('missing text 125 B')), report.failures.join('\n'));
    assert.ok(report.failures.some((f) => f.includes('stayed open')), report.failures.join('\n'));
  });

  test('a peer that closes with the wrong code fails', async () => {
    const peer = new ScriptedPeer('client', (_bytes, emit, end) => {
      emit(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xea])); // masked close 1002
      end();
    });
    const report = await runCase(peer, caseById('6.3.1'));
    assert.equal(report.passed, false);
    assert.ok(report.failures.includes('close code 1002, expected 1007'), report.failures.join('\n'));
  });

  test('a peer that fails too late fails the fail-fast cases', async () => {
    for (const id of ['6.4.1', '6.4.3']) {
      const report = await runCase(new LaggingClientPeer(), caseById(id));
      assert.equal(report.passed, false, id);
      assert.ok(report.failures.some((f) => f.startsWith('fail-fast:')), `${id}: ${report.failures.join('\n')}`);
    }
  });

  test('a server that masks its frames breaks the protocol', async () => {
    const peer = new ScriptedPeer('server', (_bytes, emit, end) => {
      emit(Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]));
      emit(CLOSE_1000_UNMASKED);
      end();
    });
    const report = await runCase(peer, withTimeout(caseById('10.2.7'), 200));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('server sent a masked text frame')), report.failures.join('\n'));
  });

  test('a frame after the close frame is caught', async () => {
    const peer = new ScriptedPeer('server', (_bytes, emit, end) => {
      emit(CLOSE_1002_UNMASKED);
      emit(Buffer.from([0x8a, 0x00])); // pong after close
      end();
    });
    const report = await runCase(peer, caseById('2.5'));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('pong frame after the close frame')), report.failures.join('\n'));
  });

  test('a server that answers the close but keeps TCP open fails', async () => {
    const peer = new ScriptedPeer('server', (bytes, emit) => {
      if ((bytes[0]! & 0x0f) === 0x8) emit(CLOSE_1000_UNMASKED);
    });
    const report = await runCase(peer, withTimeout(caseById('7.3.3'), 50));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('did not close the TCP connection')), report.failures.join('\n'));
  });

  test('a peer that sends its failing close frame but keeps the transport open fails', async () => {
    const peer = new ScriptedPeer('server', (_bytes, emit) => emit(CLOSE_1002_UNMASKED));
    const report = await runCase(peer, withTimeout(caseById('2.5'), 50));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('did not close the transport')), report.failures.join('\n'));
  });

  test('an extra echo is caught', async () => {
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

  test('every permessage-deflate case answers its offer validly, and client-role cases make one offer', () => {
    for (const c of ALL_CASES) {
      const setup = c.deflate;
      if (setup === undefined) continue;
      const offers = deflateOffersOf(setup.offer);
      const valid = offers.filter((o): o is DeflateParamsSpec => typeof o !== 'string');
      if (setup.response !== null) {
        const response = setup.response;
        assert.ok(
          valid.some((o) => acceptanceProblem(o, response) === null),
          `${c.id}: ${formatDeflateSpec(response)} accepts none of ${setup.offer}`,
        );
        assert.equal(judgeServerResponse(setup.offer, formatDeflateSpec(response), response).problems.length, 0, c.id);
      }
      if (c.roles.includes('client')) {
        assert.equal(offers.length, 1, `${c.id}: a client makes one offer`);
        assert.doesNotThrow(() => clientOptionsFor(setup.offer), c.id);
      }
      if (c.roles.includes('server') && setup.server === 'off') assert.equal(setup.response, null, c.id);
    }
  });

  test('a server that does not accept a requested server_no_context_takeover fails the handshake', async () => {
    const peer = deflateServer('permessage-deflate', []);
    const report = await runCase(peer, caseById('13.3.1'));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('accepts none of the offers')), report.failures.join('\n'));
  });

  test('a server that answers other parameters than the case expects fails', async () => {
    const peer = deflateServer('permessage-deflate; server_max_window_bits=12', []);
    const report = await runCase(peer, withTimeout(caseById('12.5.1'), 50));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('expected "permessage-deflate"')), report.failures.join('\n'));
  });

  test('RSV1 on a continuation frame from the peer is caught', async () => {
    // "Hello" compressed (RFC 7692 §7.2.3.1) in 2 frames, RSV1 on both.
    const peer = deflateServer('permessage-deflate', [
      Buffer.concat([serverFrame(0x41, Buffer.from('f248cd', 'hex')), serverFrame(0xc0, Buffer.from('c9c90700', 'hex'))]),
    ]);
    const report = await runCase(peer, caseById('12.5.1'));
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('RSV bits 4 set on a continuation frame')), report.failures.join('\n'));
  });

  test('a server that keeps its context after agreeing to server_no_context_takeover is caught', async () => {
    // The second "Hello" refers to the first (§7.2.3.2), which the agreed reset forbids.
    const peer = deflateServer('permessage-deflate; server_no_context_takeover', [
      serverFrame(0xc1, Buffer.from('f248cdc9c90700', 'hex')),
      serverFrame(0xc1, Buffer.from('f200110000', 'hex')),
    ]);
    const c = caseById('12.5.3');
    const report = await runCase(peer, { ...withTimeout(c, 200), deflate: { ...c.deflate!, response: { serverNoContextTakeover: true } } });
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('is not valid under the agreed permessage-deflate')), report.failures.join('\n'));
  });

  test('a server that compresses with a larger window than agreed is caught', async () => {
    // 2000 bytes that repeat their first 1000: a distance of 1000, beyond a 9-bit window's 512.
    const data = Buffer.concat([generatePattern('binary', 1, 1000), generatePattern('binary', 1, 1000)]);
    const compressed = deflateRawSync(data, { windowBits: 15, finishFlush: zlibConstants.Z_SYNC_FLUSH }).subarray(0, -4);
    const frame = Buffer.concat([Buffer.from([0xc2, 126, compressed.length >> 8, compressed.length & 0xff]), compressed]);
    const c: ConformanceCase = {
      id: '0.0.1',
      description: 'scripted',
      roles: ['server'],
      limit: 'default',
      timeoutMs: 500,
      heavy: false,
      actions: [{ do: 'send', frames: [{ opcode: 0x2, payload: Buffer.from('x') }] }, { do: 'sync', events: 1 }, { do: 'close', code: 1000 }],
      expect: { events: [{ type: 'binary', data: data }], outcome: { kind: 'close', codes: [1000] } },
      deflate: { offer: 'permessage-deflate; server_max_window_bits=9', response: { serverMaxWindowBits: 9 }, server: 'takeover' },
    };
    // With 15 bits agreed the same frame is fine.
    const wide = { offer: 'permessage-deflate; server_max_window_bits=15', response: { serverMaxWindowBits: 15 }, server: 'takeover' as const };
    const honest = await runCase(deflateServer('permessage-deflate; server_max_window_bits=15', [frame]), { ...c, deflate: wide });
    assert.equal(honest.passed, true, honest.failures.join('\n'));
    const report = await runCase(deflateServer('permessage-deflate; server_max_window_bits=9', [frame]), c);
    assert.equal(report.passed, false);
    assert.ok(report.failures.some((f) => f.includes('beyond the agreed window of 512 bytes')), report.failures.join('\n'));
  });

  test('hotline’s client passes a sample of cases through the in-memory peer', async () => {
    const peer = new MemoryClientPeer();
    for (const id of ['1.1.1', '2.6', '5.19', '6.4.3', '7.3.1', '9.9.3', '12.5.3', '12.6.20', '13.10.3']) {
      const report = await runCase(peer, caseById(id));
      assert.equal(report.passed, true, `${id}: ${report.failures.join('\n')}`);
    }
  });
});
