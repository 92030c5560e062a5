// A client that publishes to one channel continuously while a test breaks Redis under it
// (test/redis-outage.test.ts, test/redis-cluster.test.ts): every answer is recorded, ok
// (with its offset) or err (it must be `internal` "unavailable: …"), so that the test can
// account for every message.
import assert from 'node:assert/strict';
import type { ChannelsClient } from './channels-client.js';
import { sleep } from './wait.js';

/**
 * Publishes `"n"` for n = 1, 2, … one at a time until `stop()` is called; every answer is
 * recorded by the epoch it belongs to (the `ok` of a publish carries no epoch, so `epochOf`
 * tells which one the publisher's node was in: the test reads it from history).
 */
export class Publisher {
  readonly acked: Array<{ offset: number; data: string; at: number }> = [];
  readonly failed: Array<{ data: string; message: string; at: number }> = [];
  private running = true;
  /** Settles after each answer. */
  private answered: Promise<void> = Promise.resolve();
  readonly done: Promise<void>;
  private stopped: Promise<{ offset: number; data: string }> | undefined;

  constructor(
    private readonly client: ChannelsClient,
    private readonly ch: string,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    let n = 0;
    let settle = (): void => {};
    this.answered = new Promise((resolve) => (settle = resolve));
    try {
      while (this.running) {
        const data = `m${++n}`;
        const answer = await this.client.request('pub', { ch: this.ch, data });
        if (answer.op === 'ok') this.acked.push({ offset: answer.offset!, data, at: Date.now() });
        else {
          assert.equal(answer.op, 'err', JSON.stringify(answer));
          assert.equal(answer.code, 'internal');
          assert.match(answer.message ?? '', /^unavailable: /);
          this.failed.push({ data, message: answer.message!, at: Date.now() });
        }
        const wake = settle;
        this.answered = new Promise((resolve) => (settle = resolve));
        wake();
        // A steady stream, not a flood: the point is a publish in flight at every moment.
        await sleep(answer.op === 'ok' ? 3 : 20); // pacing, not a wait for anything
      }
    } finally {
      this.running = false;
      settle();
    }
  }

  async waitForAcks(count: number, what: string, ms = 20_000): Promise<void> {
    await this.waitUntil(() => this.acked.length >= count, what, ms);
  }

  async waitForFailures(count: number, what: string, ms = 10_000): Promise<void> {
    await this.waitUntil(() => this.failed.length >= count, what, ms);
  }

  /** Checked after each answer (the loop's own pace), until `ms` passes. */
  private async waitUntil(condition: () => boolean, what: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      if (!this.running) throw new Error(`the publisher stopped before ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${this.acked.length} acks, ${this.failed.length} errors)`);
      await this.answered;
    }
  }

  /** Stops publishing; then publishes one last marker and returns it (it arrives after everything else). */
  stop(): Promise<{ offset: number; data: string }> {
    this.stopped ??= (async () => {
      this.running = false;
      await this.done;
      const answer = await this.client.request('pub', { ch: this.ch, data: 'end' });
      assert.equal(answer.op, 'ok', `the marker was published: ${JSON.stringify(answer)}`);
      return { offset: answer.offset!, data: 'end' };
    })();
    return this.stopped;
  }
}

