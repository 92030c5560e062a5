/**
 * The HTTP side of the proxy hooks: POSTs a JSON body to the backend and reads its JSON
 * answer, within bounds the clients cannot move: calls in flight server-wide (past it
 * refused without calling) and per connection (past it waiting, at most the timeout), the
 * time of each call, the answer's size, and the sockets (keep-alive, at most one per call
 * in flight). Every way a call fails is a BackendFailure
 * whose kind says whose fault it is; hooks.ts turns it into what the client sees.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/**
 * Why a call to the backend gave no usable answer:
 * - `busy`: `maxInFlight` calls were already in flight; the backend was not called;
 * - `timeout`: no whole answer within the hook's timeout, or no slot of the connection's
 *   free within it;
 * - `unreachable`: no connection (ECONNREFUSED, a reset, DNS);
 * - `status`: an HTTP status other than 200;
 * - `too_large`: an answer longer than `maxAnswerBytes`;
 * - `malformed`: not JSON, or JSON not of the hook's answer shape (answers.ts).
 */
export type BackendFailureKind = 'busy' | 'timeout' | 'unreachable' | 'status' | 'too_large' | 'malformed';

export class BackendFailure extends Error {
  override readonly name = 'BackendFailure';
  constructor(
    readonly kind: BackendFailureKind,
    message: string,
  ) {
    super(message);
  }

  /** Whether the backend is at fault by answering wrongly (rather than being slow, down or busy). */
  get answeredWrongly(): boolean {
    return this.kind === 'status' || this.kind === 'too_large' || this.kind === 'malformed';
  }
}

export const PROXY_DEFAULTS = {
  timeout: 3_000,
  maxInFlight: 1_000,
  maxInFlightPerConnection: 8,
  maxAnswerBytes: 256 * 1024,
  /** Idle keep-alive sockets kept per backend origin. */
  maxFreeSockets: 64,
};

export interface BackendOptions {
  maxInFlight: number;
  maxInFlightPerConnection: number;
  maxAnswerBytes: number;
}

/** One connection's calls: in flight, and waiting for one of its slots. */
interface Lane {
  running: number;
  waiting: Array<() => void>;
}

export class Backend {
  /** Calls in flight now (the HTTP request made, its answer not yet read). */
  inFlight = 0;
  /** Calls refused because `maxInFlight` were in flight. */
  refused = 0;
  private readonly lanes = new Map<string, Lane>();
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;

  constructor(private readonly options: BackendOptions) {
    const agent = { keepAlive: true, maxSockets: options.maxInFlight, maxFreeSockets: Math.min(options.maxInFlight, PROXY_DEFAULTS.maxFreeSockets) };
    this.http = new HttpAgent(agent);
    this.https = new HttpsAgent(agent);
  }

  /**
   * POSTs `body` to `url` and resolves to the answer's parsed JSON. `lane` (a client id)
   * shares `maxInFlightPerConnection` between one connection's calls. Rejects with a
   * BackendFailure.
   */
  async post(url: URL, body: unknown, timeout: number, lane?: string): Promise<unknown> {
    if (lane !== undefined) await this.enter(lane, timeout);
    try {
      if (this.inFlight >= this.options.maxInFlight) {
        this.refused++;
        throw new BackendFailure('busy', `${this.options.maxInFlight} calls to the backend are in flight already`);
      }
      this.inFlight++;
      // The call's own time starts once it is sent: a call given only the rest of its wait
      // would often be abandoned while the backend still works on it.
      const deadline = new Deadline(timeout);
      try {
        return await this.send(url, Buffer.from(JSON.stringify(body)), deadline);
      } finally {
        deadline.clear();
        this.inFlight--;
      }
    } finally {
      if (lane !== undefined) this.leave(lane);
    }
  }

  close(): void {
    this.http.destroy();
    this.https.destroy();
  }

  /** Takes one of the connection's slots, waiting (at most `timeout` ms) while it has none free. */
  private enter(key: string, timeout: number): Promise<void> {
    let lane = this.lanes.get(key);
    if (lane === undefined) this.lanes.set(key, (lane = { running: 0, waiting: [] }));
    if (lane.running < this.options.maxInFlightPerConnection) {
      lane.running++;
      return Promise.resolve();
    }
    const queued = lane;
    return new Promise((resolve, reject) => {
      const go = (): void => {
        clearTimeout(timer);
        queued.running++;
        resolve();
      };
      const timer = setTimeout(() => {
        queued.waiting.splice(queued.waiting.indexOf(go), 1);
        if (queued.running === 0 && queued.waiting.length === 0) this.lanes.delete(key);
        reject(new BackendFailure('timeout', `no slot among the connection's ${this.options.maxInFlightPerConnection} calls in flight within ${timeout} ms`));
      }, timeout);
      queued.waiting.push(go);
    });
  }

  private leave(key: string): void {
    const lane = this.lanes.get(key);
    if (lane === undefined) return;
    lane.running--;
    const next = lane.waiting.shift();
    if (next !== undefined) next();
    else if (lane.running === 0) this.lanes.delete(key);
  }

  private send(url: URL, payload: Buffer, deadline: Deadline): Promise<unknown> {
    const https = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (failure: BackendFailure): void => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(failure);
      };
      const req = (https ? httpsRequest : httpRequest)(url, {
        method: 'POST',
        agent: https ? this.https : this.http,
        headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': payload.length },
      });
      deadline.onExpiry(() => fail(new BackendFailure('timeout', `no answer within ${deadline.ms} ms`)));
      req.on('error', (error: NodeJS.ErrnoException) => fail(new BackendFailure('unreachable', error.code ?? error.message)));
      req.on('response', (res: IncomingMessage) => {
        if (res.statusCode !== 200) return fail(new BackendFailure('status', `HTTP ${res.statusCode}`));
        const max = this.options.maxAnswerBytes;
        const declared = Number(res.headers['content-length']);
        if (declared > max) return fail(new BackendFailure('too_large', `an answer of ${declared} bytes (at most ${max})`));
        const chunks: Buffer[] = [];
        let length = 0;
        res.on('data', (chunk: Buffer) => {
          length += chunk.length;
          if (length > max) return fail(new BackendFailure('too_large', `an answer of more than ${max} bytes`));
          chunks.push(chunk);
        });
        res.on('error', () => fail(new BackendFailure('unreachable', 'the answer was cut off')));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          deadline.onExpiry(null);
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch {
            reject(new BackendFailure('malformed', 'the answer is not JSON'));
          }
        });
      });
      req.end(payload);
    });
  }
}

/** One call's time limit, shared by its wait for a slot and its HTTP exchange. */
class Deadline {
  private action: (() => void) | null = null;
  private expired = false;
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(readonly ms: number) {
    this.timer = setTimeout(() => {
      this.expired = true;
      this.action?.();
    }, ms);
  }

  /** What to do when time is up (null: nothing); at once when it is up already. */
  onExpiry(action: (() => void) | null): void {
    this.action = action;
    if (this.expired) action?.();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.action = null;
  }
}
