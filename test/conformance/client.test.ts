/**
 * The conformance suite against hotline's client role: the sans-I/O WebSocketProtocol in
 * role 'client' with an echoing handler, driven through an in-memory link. The harness
 * plays the server (unmasked frames); every write is one receiveData call, so chops and
 * syncs reach the protocol exactly as written.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { casesFor } from './cases.js';
import { formatReport, runCase } from './harness.js';
import { MemoryClientPeer } from './memory-peer.js';

describe('conformance: client role (hotline WebSocketProtocol, in memory)', { concurrency: 8 }, () => {
  const peer = new MemoryClientPeer();
  for (const c of casesFor('client')) {
    test(`client ${c.id} ${c.description}`, async () => {
      const report = await runCase(peer, c);
      assert.ok(report.passed, formatReport(report));
    });
  }
});
