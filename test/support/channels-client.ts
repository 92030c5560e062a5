// A hotline.v1 client for tests that speaks raw JSON over a `ws` WebSocket: requests get
// the next id and resolve with the answer that carries it (ok, pong or err, never
// rejected on err), and every message the server sent is kept, in order, in `log`. Below
// it, the checks every channel test makes of an answer (ok, err). On a connection that
// selected hotline.v1.msgpack it speaks msgpack instead (@msgpack/msgpack's own encode and
// decode, not hotline's), and logs each binary frame decoded.
import assert from 'node:assert/strict';
import { decode, encode } from '@msgpack/msgpack';
import WebSocket from 'ws';

/** A message from the server as it came off the wire (loosely typed: tests check shapes). */
export interface WireMessage {
  op: string;
  id?: number;
  ch?: string;
  offset?: number;
  data?: unknown;
  code?: string;
  message?: string;
  epoch?: string;
  recovered?: boolean;
  delivered?: number;
  member?: Record<string, unknown>;
  members?: Array<Record<string, unknown>>;
  messages?: Array<{ offset: number; data: unknown }>;
  result?: unknown;
  [field: string]: unknown;
}

export interface ConnectOptions {
  /** Subprotocols to offer (default: hotline.v1). */
  protocols?: string[];
  headers?: Record<string, string>;
  /** How long connecting, a request or a wait may take before it fails (ms, default 10000). */
  timeout?: number;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

interface Waiter {
  test: (message: WireMessage) => boolean;
  resolve: (message: WireMessage) => void;
}

export const SUBPROTOCOL = 'hotline.v1';
export const MSGPACK_SUBPROTOCOL = 'hotline.v1.msgpack';

export class ChannelsClient {
  /** Every message the server sent, parsed, in arrival order. */
  readonly log: WireMessage[] = [];
  /** Text frames that were not JSON objects (there should be none). */
  readonly unparsed: string[] = [];
  /** Binary frames received on a JSON connection (there should be none). */
  binaryFrames = 0;
  /** Each msgpack frame as it came, beside its decoded message in `log` (msgpack connections only). */
  readonly rawFrames: Buffer[] = [];
  /** Settles when the connection closes, with the code and reason the client saw. */
  readonly closed: Promise<CloseInfo>;
  private nextId = 1;
  private readonly pending = new Map<number, { settle: (message: WireMessage) => void; fail: (error: Error) => void }>();
  private waiters: Waiter[] = [];
  private readonly timeout: number;

  private constructor(
    readonly ws: WebSocket,
    timeout: number,
  ) {
    this.timeout = timeout;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        resolve({ code, reason: reason.toString() });
        // Nothing more will come: unanswered requests fail now rather than at their time-out.
        const pending = [...this.pending.values()];
        this.pending.clear();
        for (const { fail } of pending) fail(new Error(`the connection closed (${code}) before the answer came`));
      });
    });
    ws.on('error', () => {});
    ws.on('message', (raw: Buffer, binary: boolean) => {
      if (binary && this.msgpack) {
        let message: unknown;
        try {
          message = decode(raw);
        } catch {
          this.unparsed.push(raw.toString('hex'));
          return;
        }
        this.rawFrames.push(raw);
        if (typeof message === 'object' && message !== null && !Array.isArray(message)) this.receive(message as WireMessage);
        else this.unparsed.push(raw.toString('hex'));
        return;
      }
      if (binary) {
        this.binaryFrames++;
        return;
      }
      const text = raw.toString();
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        this.unparsed.push(text);
        return;
      }
      if (typeof message !== 'object' || message === null || Array.isArray(message)) {
        this.unparsed.push(text);
        return;
      }
      this.receive(message as WireMessage);
    });
  }

  static async connect(url: string, options: ConnectOptions = {}): Promise<ChannelsClient> {
    const ws = new WebSocket(url, options.protocols ?? [SUBPROTOCOL], { headers: options.headers, perMessageDeflate: false });
    const client = new ChannelsClient(ws, options.timeout ?? 10_000);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`no connection to ${url} within ${client.timeout} ms`)), client.timeout);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        ws.off('open', opened);
        ws.terminate();
        reject(error);
      };
      const opened = (): void => {
        clearTimeout(timer);
        resolve();
      };
      ws.once('open', opened);
      ws.once('unexpected-response', (_req, res) => fail(new Error(`the upgrade was refused with ${String(res.statusCode)}`)));
      ws.once('error', (error) => fail(error));
      ws.once('close', () => fail(new Error(`the connection to ${url} closed before it opened`)));
    });
    return client;
  }

  /** Whether the server selected hotline.v1.msgpack: requests go as msgpack binary frames. */
  get msgpack(): boolean {
    return this.ws.protocol === MSGPACK_SUBPROTOCOL;
  }

  /** The id the next request will get. */
  peekId(): number {
    return this.nextId;
  }

  /** Sends `{op, id, ...fields}` and resolves with its answer. */
  request(op: string, fields: Record<string, unknown> = {}): Promise<WireMessage> {
    const id = this.nextId++;
    const answer = this.answer(id);
    if (this.msgpack) this.sendBinary(encode({ op, id, ...fields }));
    else this.sendJson({ op, id, ...fields });
    return answer;
  }

  /** Resolves with the answer carrying `id` (for requests sent raw). */
  answer(id: number): Promise<WireMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to request ${id} within ${this.timeout} ms`));
      }, this.timeout);
      timer.unref();
      this.pending.set(id, {
        settle: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  sendJson(value: unknown): void {
    this.ws.send(JSON.stringify(value));
  }

  /** Sends a text frame as it is (malformed JSON and all). */
  sendText(text: string): void {
    this.ws.send(text);
  }

  sendBinary(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  /** The next message (from now on, or already logged from index `from`) that passes `test`. */
  waitFor(test: (message: WireMessage) => boolean, what = 'a message', ms = this.timeout, from?: number): Promise<WireMessage> {
    if (from !== undefined) {
      const found = this.log.slice(from).find(test);
      if (found !== undefined) return Promise.resolve(found);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        test,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      timer.unref();
      this.waiters.push(waiter);
    });
  }

  /** Waits until `condition` holds (it is checked after each message and now). */
  async until(condition: () => boolean, what: string, ms = this.timeout): Promise<void> {
    if (condition()) return;
    await this.waitFor(() => condition(), what, ms);
  }

  /** The `msg`s received for a channel, in order. */
  messages(ch: string): WireMessage[] {
    return this.log.filter((m) => m.op === 'msg' && m.ch === ch);
  }

  /** Messages of one op (and channel) received so far. */
  ofOp(op: string, ch?: string): WireMessage[] {
    return this.log.filter((m) => m.op === op && (ch === undefined || m.ch === ch));
  }

  /** Closes cleanly and waits for the close. */
  async close(): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    return this.closed;
  }

  /** Destroys the socket without a close frame. */
  terminate(): void {
    this.ws.terminate();
  }

  private receive(message: WireMessage): void {
    this.log.push(message);
    if (typeof message.id === 'number' && (message.op === 'ok' || message.op === 'err' || message.op === 'pong')) {
      const waiting = this.pending.get(message.id);
      if (waiting !== undefined) {
        this.pending.delete(message.id);
        waiting.settle(message);
      }
    }
    if (this.waiters.length > 0) {
      const waiting = this.waiters;
      this.waiters = [];
      for (const waiter of waiting) {
        if (waiter.test(message)) waiter.resolve(message);
        else this.waiters.push(waiter);
      }
    }
  }
}

/** Checks that a request was answered ok (pong for a ping). */
export function assertOk(answer: WireMessage, op: string, fields: Record<string, unknown> = {}): void {
  assert.equal(answer.op, op === 'ping' ? 'pong' : 'ok', `${op} ${JSON.stringify(fields)} was answered ${JSON.stringify(answer)}`);
}

/** Sends a request and checks it was answered ok (or pong). */
export async function ok(client: ChannelsClient, op: string, fields: Record<string, unknown> = {}): Promise<WireMessage> {
  const answer = await client.request(op, fields);
  assertOk(answer, op, fields);
  return answer;
}

/** Checks an err answer's exact shape and code (with `id`, or none); returns its message. */
export function assertErr(answer: WireMessage, code: string, id: number | undefined): string {
  const expected: Record<string, unknown> = { op: 'err', code, message: answer.message };
  if (id !== undefined) expected['id'] = id;
  assert.deepEqual(answer, expected);
  assert.equal(typeof answer.message, 'string');
  assert.ok(answer.message!.length > 0, 'the message says something');
  return answer.message!;
}

/** Presence members without the `client` id the hub sets on each (it varies per connection). */
export function withoutClient(members: ReadonlyArray<Record<string, unknown>> | undefined): Array<Record<string, unknown>> {
  // The server sets `client` on every member (random per run): checked to be there, then left out of comparisons.
  for (const member of members ?? []) assert.ok(typeof member['client'] === 'string' && member['client'] !== '', `a client id in ${JSON.stringify(member)}`);
  return (members ?? []).map(({ client: _client, ...rest }) => rest);
}
