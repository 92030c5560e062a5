/**
 * The conformance suite against hotline's Node WebSocket client over real TCP: the harness
 * plays the server on a raw socket, the client echoes. Besides the wire, each case checks
 * what the WHATWG API reported: a failed connection fires error then close with 1006
 * (wasClean false); a closing handshake fires close with the server's code, wasClean true.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { casesFor } from './cases.js';
import { formatReport, runCase } from './harness.js';
import type { ConformanceCase } from './model.js';
import { TcpClientPeer } from './tcp-client-peer.js';
import { OP_CLOSE, materialize } from './wire.js';

/** How long the client's close event may take after the harness's transport closed. */
const CLOSE_EVENT_DEADLINE_MS = 2_000;

/** The code and reason of the harness's last close frame, when the case says it plainly. */
function harnessClose(c: ConformanceCase): { code: number; reason: string | null } | null {
  for (let i = c.actions.length - 1; i >= 0; i--) {
    const action = c.actions[i]!;
    if (action.do === 'close') {
      if (action.code === undefined) return { code: 1005, reason: '' };
      const reason = action.reason === undefined ? '' : typeof action.reason === 'string' ? action.reason : null;
      return { code: action.code, reason };
    }
    if (action.do === 'send') {
      const frame = [...action.frames].reverse().find((f) => f.opcode === OP_CLOSE);
      if (frame === undefined) continue;
      const payload = materialize(frame.payload ?? new Uint8Array(0));
      if (payload.length === 0) return { code: 1005, reason: '' };
      return { code: payload.readUInt16BE(0), reason: Buffer.from(payload.subarray(2)).toString() };
    }
    if (action.do === 'raw' || action.do === 'pieces' || action.do === 'fragmented' || action.do === 'deflate') return null;
  }
  return null;
}

describe('conformance: client role (hotline Node WebSocket over TCP)', { concurrency: 8 }, () => {
  let peer: TcpClientPeer | undefined;

  before(async () => {
    peer = await TcpClientPeer.listen();
  });

  after(async () => {
    await peer?.close();
  });

  for (const c of casesFor('client')) {
    test(`node-client ${c.id} ${c.description}`, async () => {
      assert.ok(peer, 'the listener did not start');
      const casePeer = peer.forCase();
      const report = await runCase(casePeer, c);
      assert.ok(report.passed, formatReport(report));

      const end = await casePeer.end(CLOSE_EVENT_DEADLINE_MS);
      assert.ok(end !== null, `case ${c.id}: the client fired no close event within ${CLOSE_EVENT_DEADLINE_MS} ms`);
      const outcome = c.expect.outcome;
      if (outcome.kind === 'fail') {
        assert.deepEqual(end.events, ['open', 'error', 'close'], `case ${c.id}: events`);
        assert.equal(end.code, 1006, `case ${c.id}: a failed connection closes with 1006`);
        assert.equal(end.wasClean, false, `case ${c.id}: wasClean`);
      } else {
        assert.deepEqual(end.events, ['open', 'close'], `case ${c.id}: events`);
        assert.equal(end.wasClean, true, `case ${c.id}: wasClean`);
        const sent = harnessClose(c);
        if (sent !== null) {
          assert.equal(end.code, sent.code, `case ${c.id}: close code`);
          if (sent.reason !== null) assert.equal(end.reason, sent.reason, `case ${c.id}: close reason`);
        }
      }
    });
  }
});
